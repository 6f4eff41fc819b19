"""CPU cost model of a node: what handling a message costs, in nanoseconds of virtual CPU.

Theory of operation
-------------------
Each simulated node is a single server. Handling one input keeps its CPU busy for

    message_base_ns + decode_base_ns + decode_per_byte_ns * size      (receiving a message)
  + sum over the operations the node counted (sign, verify, hash, ...)  (see below)
  + for every Send it emits: encode_base_ns + encode_per_byte_ns * size + send_per_dst_ns * |dsts|

and inputs that arrive while it is busy wait in a FIFO queue. The figures come from a
:class:`CostProfile`: :meth:`CostProfile.default` is a fixed, host-independent profile (so a run is
reproducible anywhere), and :func:`medbench.experiments.calibrate.calibrate` measures one on this
host.

**How a protocol reports its operations** (the choice of this kit): a node *may* define
``take_costs() -> Mapping[str, int]`` returning the operation counts since its previous call; the
simulator looks it up once (at the start and after a recovery) and calls it after every ``step``
and ``tick``. :class:`OpCounter` is a ready-made counter
for that. The operation names the profile knows are listed in :data:`OPS`
(``sign``, ``verify``, ``hash`` (calls), ``hash_bytes``, ``encode_bytes``, ``decode_bytes``,
``merkle_leaves``, ``flop`` (floating-point operations of model training and validation, as
ModelChain's proof of information counts them)); any other name is charged
``CostProfile.extra_ns[name]`` per unit (0 if absent) and still counted. A
:class:`~medbench.node.Note` of kind ``"cost"`` whose detail is such a mapping is charged the
same way, for nodes that prefer to report through ``Ready.notes``.

**Stable storage** (``persist_ns``): the time one commit to stable storage takes (an fsync'd
SQLite transaction under ``synchronous=FULL``). 0 in the default profile (persistence is free, as
the simulator has always assumed); a profile measured by ``calibrate`` carries this host's figure,
and the simulator then makes every output that persists records wait for its commit on the host's
disk (see :mod:`medbench.sim.engine`, *Hosts*). ``persist_cpu_ns`` is the CPU a commit itself
costs (SQLite and the kernel's fsync work), charged to the node (operation ``persist``).

With ``crypto="modeled"`` a protocol skips the real signature and hash computations but counts
them; with ``crypto="real"`` it performs them *and* counts them. Either way the simulator charges
the profile's figures, so virtual time never depends on the host's wall clock and a run stays a
function of (parameters, seed); real mode only costs wall time and checks that the bytes verify.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

OPS: tuple[str, ...] = (
    "sign",
    "verify",
    "hash",
    "hash_bytes",
    "encode_bytes",
    "decode_bytes",
    "merkle_leaves",
    "flop",
)
"""Operation names a :class:`CostProfile` prices directly."""


DEFAULT_PROVENANCE: dict[str, str] = {
    "host": "a 2020s x86 core (reference figures; the host was not recorded)",
    "date": "2026-11-22",
    "method": (
        "set by hand as round figures when the simulator was written (commit 46d249c, "
        "2026-11-22): Ed25519 sign/verify of PyNaCl, hashlib SHA-256, the canonical codec; "
        "flop_ns added with ModelChain's learning cost (commit 5f0b066, 2026-12-02), measured "
        "as numpy's time per counted FLOP of one learning step on such a core. Not a "
        "calibration of this host: 'medbench calibrate' measures one"
    ),
    "conditions": "not recorded",
}
"""What is known of where :meth:`CostProfile.default`'s figures came from."""

_TEXT_FIELDS = frozenset({"host", "date", "method", "conditions"})


class CostProfileError(ValueError):
    """A profile file is malformed."""


MAX_UNIT_NS = 1e12
"""Largest cost of one unit of an operation (1000 s): a profile's figures times any count a run
makes stay finite."""


def _unit_ns(key: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CostProfileError(f"{key} must be a number, got {value!r:.40}")
    if not 0 <= value <= MAX_UNIT_NS:  # NaN too
        raise CostProfileError(f"{key} must be a number in 0..{MAX_UNIT_NS:g}, got {value!r:.40}")
    return float(value)


@dataclass(frozen=True, slots=True)
class CostProfile:
    """CPU costs in nanoseconds (per call, or per byte where the name says so)."""

    sign_ns: float = 22_000.0
    verify_ns: float = 55_000.0
    hash_base_ns: float = 500.0
    hash_per_byte_ns: float = 1.0
    encode_base_ns: float = 4_000.0
    encode_per_byte_ns: float = 0.1
    decode_base_ns: float = 5_000.0
    decode_per_byte_ns: float = 0.2
    message_base_ns: float = 3_000.0
    send_per_dst_ns: float = 500.0
    merkle_leaf_ns: float = 1_000.0
    flop_ns: float = 1.5
    persist_ns: float = 0.0
    persist_cpu_ns: float = 0.0
    extra_ns: dict[str, float] = field(default_factory=dict)
    host: str = "default"
    # Provenance: where the figures came from (a calibrated profile fills these in).
    date: str = ""  # when they were measured or set (ISO 8601)
    method: str = ""  # how: a tool and its settings, or "set by hand"
    conditions: str = ""  # the machine's state while measuring (load, steal, timing spread)

    @classmethod
    def default(cls) -> CostProfile:
        """The fixed reference profile (a 2020s x86 core, PyNaCl Ed25519, hashlib SHA-256).

        ``flop_ns`` is numpy's cost per counted FLOP of one ModelChain learning step at its
        default shape (200 x 10, call overhead included), measured on such a core. Its
        provenance fields (:data:`DEFAULT_PROVENANCE`) say what is known of their origin.
        """
        p = DEFAULT_PROVENANCE
        return cls(host=p["host"], date=p["date"], method=p["method"], conditions=p["conditions"])

    @classmethod
    def zero(cls) -> CostProfile:
        """A profile where nothing costs CPU time (pure network timing)."""
        zeros: dict[str, Any] = {
            f.name: 0.0 for f in fields(cls) if f.name.endswith("_ns") and f.name != "extra_ns"
        }
        return cls(**zeros, host="zero", method="every operation free: network timing only")

    def op_ns(self, op: str, count: int) -> int:
        """Nanoseconds for ``count`` units of operation ``op``."""
        return int(self.unit_ns(op) * count)

    def unit_ns(self, op: str) -> float:
        """Nanoseconds for one unit of operation ``op`` (``extra_ns`` or 0 for unknown names)."""
        if op == "sign":
            return self.sign_ns
        if op == "verify":
            return self.verify_ns
        if op == "hash":
            return self.hash_base_ns
        if op == "hash_bytes":
            return self.hash_per_byte_ns
        if op == "encode_bytes":
            return self.encode_per_byte_ns
        if op == "decode_bytes":
            return self.decode_per_byte_ns
        if op == "merkle_leaves":
            return self.merkle_leaf_ns
        if op == "flop":
            return self.flop_ns
        if op == "persist":
            return self.persist_cpu_ns
        return float(self.extra_ns.get(op, 0.0))

    def provenance(self) -> str:
        """One line on where the figures came from (host, date, method, conditions)."""
        parts = [f"host {self.host}"]
        if self.date:
            parts.append(f"date {self.date}")
        if self.method:
            parts.append(f"method: {self.method}")
        if self.conditions:
            parts.append(f"conditions: {self.conditions}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostProfile:
        """Inverse of :meth:`to_dict`; unknown keys and costs that are not finite numbers in
        ``0..MAX_UNIT_NS`` are a :class:`CostProfileError`."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise CostProfileError(f"unknown cost profile fields: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in _TEXT_FIELDS:
                kwargs[key] = str(value)
            elif key == "extra_ns":
                if not isinstance(value, Mapping):
                    raise CostProfileError("extra_ns must be a mapping")
                kwargs[key] = {str(k): _unit_ns(f"extra_ns[{k!r}]", v) for k, v in value.items()}
            else:
                kwargs[key] = _unit_ns(key, value)
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        """Write the profile as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CostProfile:
        """Read a profile written by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError too
            raise CostProfileError(f"{path}: not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CostProfileError(f"{path}: expected a JSON object")
        return cls.from_dict(data)


def host_name() -> str:
    """A short description of this host for a calibrated profile."""
    return f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip()


class OpCounter:
    """Operation counts for ``take_costs``: ``add("verify")``, then ``take()`` drains them."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, op: str, count: int = 1) -> None:
        """Count ``count`` more units of ``op``."""
        self._counts[op] = self._counts.get(op, 0) + count

    def take(self) -> dict[str, int]:
        """The counts since the last call (possibly empty); resets them."""
        counts = self._counts
        if counts:
            self._counts = {}
        return counts
