"""A guard on size: estimate a run's messages and peak memory from its parameters, before it runs.

Theory of operation
-------------------
These are *estimates*, per-protocol formulas with constants fitted to measured runs (peak
resident memory of a fresh process, messages counted by the simulator; ``python -m
medbench.experiments.size`` measures them again and prints formula against measurement). They
are meant to tell a 10-second run from a 10-hour one or a 5-GB one, not to predict to the
percent. On the calibration runs (:data:`CALIBRATION` and PBFT at n = 800, toy at n = 700)
PBFT's and toy-quorum's message counts were within 10 % (toy's exact), the baselines' within a
factor of 1.7, and peak memory within 0.8-1.15x.

Memory. The simulator keeps dense per-pair tables of its network (latency, bandwidth, loss, link
state: a few Python lists of ``N x N`` entries for ``N`` nodes, clients included), and the
protocols keep per-peer state, so memory grows as ``N^2``: this is what sent PBFT at
``n = 100,000`` past 5 GB before its first message. The model is
``base + per_pair * N^2 + per_request * requests + per_message * in_flight``.

Messages. PBFT: per batch, a pre-prepare to ``n - 1`` replicas, ``n(n - 1)`` prepares and
``n(n - 1)`` commits, and per request one message to the primary and ``n`` replies; batches are
``requests / b`` with ``b`` the requests one batch gathers: 1 with ``batch_delay_us = 0`` (the
primary cuts a batch as soon as a request is there, as measured), else ``min(batch, clients)``
when the load saturates (unpaced or closed) and about ``rate x batch_delay`` otherwise; plus a
checkpoint round (``n(n - 1)``) every ``checkpoint_interval`` batches. toy-quorum: exactly
:func:`medbench.experiments.toy.messages_per_tx`. Baselines: each transaction gossiped to every
node, and each block (one per ``block_time_us``/``period_us``/``slot_us``/``block_interval_us``
over the run) broadcast, plus DPoS audits; bounded by the run's virtual duration.

:class:`Budget` refuses a run whose estimate exceeds ``max_messages`` or ``max_memory_bytes``
(:class:`TooLarge`, an :class:`~medbench.experiments.ExperimentError`); ``medbench sweep
--force`` skips the check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medbench.experiments import load
from medbench.experiments.runner import ExperimentError

# Fitted constants (see calibrate(); bytes)
BASE_BYTES = 62e6  # interpreter, numpy, networkx, pydantic, the protocol modules
PER_PAIR_BYTES = 380.0  # per (node, node) pair: graph edge, topology tables, link state
PER_REQUEST_BYTES = 2_000.0  # records, submissions, client state, logs
PER_MESSAGE_BYTES = 50.0  # a message of one protocol round (heap entry, encoded body)


@dataclass(frozen=True, slots=True)
class Estimate:
    """Estimated messages and peak memory (bytes) of one run."""

    messages: float
    memory_bytes: float

    def describe(self) -> str:
        """``~1.2e+06 messages, ~340 MB``."""
        return f"~{self.messages:.2g} messages, ~{human_bytes(self.memory_bytes)}"


class TooLarge(ExperimentError):
    """A run's estimate exceeds the budget (``--force`` runs it anyway)."""


def human_bytes(b: float) -> str:
    """``3.4e9`` -> ``3.4 GB``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.3g} {unit}"
    return f"{b:.0f} B"


def parse_bytes(text: str) -> float:
    """``"4G"``, ``"500MB"``, ``"2e9"`` -> bytes."""
    t = text.strip().upper().removesuffix("B")
    scale = 1.0
    for suffix, s in (("K", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        if t.endswith(suffix):
            t, scale = t[:-1], s
            break
    try:
        value = float(t) * scale
    except ValueError:
        raise ValueError(f"bad size {text!r}: expected e.g. 4G, 500M or 2e9") from None
    if not value > 0:
        raise ValueError(f"size must be positive, not {text!r}")
    return value


def physical_memory() -> float:
    """Bytes of RAM on this host (0 if unknown)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0


@dataclass(frozen=True, slots=True)
class Budget:
    """The largest run a sweep starts without ``--force``."""

    max_messages: float = 5e8
    max_memory_bytes: float = 0.0  # 0: half of this host's RAM (8 GB if unknown)
    # (``medbench sweep`` divides that default by the number of runs that go at once)

    def memory_limit(self) -> float:
        """``max_memory_bytes`` or its default."""
        if self.max_memory_bytes > 0:
            return self.max_memory_bytes
        ram = physical_memory()
        return ram / 2 if ram > 0 else 8e9

    def check(self, est: Estimate, params: Mapping[str, Any]) -> None:
        """Raise :class:`TooLarge` naming the run and the limit it passes."""
        what = ", ".join(f"{k}={v}" for k, v in params.items() if k in ("protocol", "n"))
        mem = self.memory_limit()
        if est.memory_bytes > mem:
            raise TooLarge(
                f"run {what} would need an estimated {human_bytes(est.memory_bytes)} "
                f"(limit {human_bytes(mem)}; --max-memory to change, --force to run anyway)"
            )
        if est.messages > self.max_messages:
            raise TooLarge(
                f"run {what} would send an estimated {est.messages:.2g} messages "
                f"(limit {self.max_messages:.2g}; --max-messages to change, --force to run anyway)"
            )


def _nodes(p: Mapping[str, Any], clients_are_nodes: bool) -> int:
    n = int(p["n"])
    return n + int(p.get("clients", 0)) if clients_are_nodes else n


def _memory(nodes: int, requests: int, in_flight: float) -> float:
    return (
        BASE_BYTES
        + PER_PAIR_BYTES * nodes * nodes
        + PER_REQUEST_BYTES * requests
        + PER_MESSAGE_BYTES * in_flight
    )


def _duration_s(p: Mapping[str, Any]) -> float:
    return float(p.get("duration_ms", 60_000)) / 1000.0


def pbft(p: Mapping[str, Any]) -> dict[str, float]:
    """PBFT: see the module docstring."""
    n, requests = int(p["n"]), int(p["requests"])
    clients, batch = int(p["clients"]), int(p.get("batch", 16))
    w = load.workload(p)
    delay_s = float(p.get("batch_delay_us", 0)) / 1e6
    if delay_s <= 0:
        per_batch = 1.0  # the primary cuts a batch as soon as a request is there
    elif w.load == "closed" or w.rate_tps <= 0:
        per_batch = min(batch, clients * (w.outstanding if w.load == "closed" else 1))
    else:
        per_batch = min(batch, clients, max(1.0, w.rate_tps * delay_s))
    batches = requests / max(1.0, per_batch)
    k = max(1, int(p.get("checkpoint_interval", 16)))
    per_round = (n - 1) + 2 * n * (n - 1)
    messages = batches * per_round + (batches / k) * n * (n - 1) + requests * (1 + n)
    return {
        "messages": messages,
        "memory_bytes": _memory(_nodes(p, True), requests, per_round * min(batches, 1.0)),
    }


def toy(p: Mapping[str, Any]) -> dict[str, float]:
    """toy-quorum: exact messages per transaction, one client node."""
    n, requests = int(p["n"]), int(p["requests"])
    per_tx = 1 + (n - 1) + n * (n - 1) + n
    return {
        "messages": float(requests * per_tx),
        "memory_bytes": _memory(n + 1, requests, per_tx * min(requests, 4)),
    }


_BLOCK_PERIOD = ("block_time_us", "period_us", "slot_us", "block_interval_us")


_DEFAULT_PERIOD_US = {
    "pow": 15e6,
    "poi": 15e6,
    "poa": 15e6,
    "dpos": 3e6,
    "central": 1e6,
}
_DEFAULT_DEPTH = {"pow": 12, "poi": 12, "poa": 2, "dpos": 1, "central": 1}


def baseline(p: Mapping[str, Any]) -> dict[str, float]:
    """The baselines: gossip of every transaction and broadcast of every block.

    The run lasts until its last request is final (the offered span plus three block periods
    per confirmation) or its time limit; the central relay sends each transaction and block
    through the centre instead of gossiping them.
    """
    name = str(p.get("protocol", ""))
    n, requests = int(p["n"]), int(p["requests"])
    default_period = _DEFAULT_PERIOD_US.get(name, 1e6)
    period_us = next((float(p[k]) for k in _BLOCK_PERIOD if p.get(k)), default_period)
    depth = int(p.get("confirmations") or _DEFAULT_DEPTH.get(name, 1))
    span_s = load.offered_span_us(p) / 1e6 + 3 * depth * period_us / 1e6
    blocks = min(_duration_s(p), span_s) * 1e6 / max(period_us, 1.0)
    if name == "central":
        messages = 2 * requests + blocks * n
    else:
        per_block = n * (n - 1) * (2 if name == "dpos" else 1)
        messages = requests * n + blocks * per_block
    return {
        "messages": messages,
        "memory_bytes": _memory(n, requests, n * n + requests * n / 4),
    }


def generic(p: Mapping[str, Any]) -> dict[str, float]:
    """Any protocol without its own formula: every request costs ``n^2`` messages."""
    n, requests = int(p["n"]), int(p.get("requests", 0))
    return {
        "messages": float(requests * n * n),
        "memory_bytes": _memory(_nodes(p, True), requests, n * n),
    }


CALIBRATION: tuple[dict[str, Any], ...] = (
    {"protocol": "pbft", "n": 4, "requests": 200},
    {"protocol": "pbft", "n": 16, "requests": 100},
    {"protocol": "pbft", "n": 64, "requests": 20, "rate_tps": 0},
    {"protocol": "pbft", "n": 128, "requests": 8, "rate_tps": 0},
    {"protocol": "pbft", "n": 400, "requests": 4, "clients": 1, "rate_tps": 0},
    {"protocol": "toy-quorum", "n": 50, "requests": 50},
    {"protocol": "toy-quorum", "n": 300, "requests": 5},
    {"protocol": "central", "n": 50, "requests": 100},
    {"protocol": "poa", "n": 16, "requests": 100, "tick_us": 0},
)
"""The runs :func:`calibrate` measures."""

_PROBE = """
import json, resource, sys
from medbench import experiments
from medbench.experiments.params import schema_for, resolve
p = json.loads(sys.argv[1])
row = experiments.run(p, 0)
est = schema_for(p["protocol"]).estimate(resolve(p))
print(json.dumps({"messages": row["msgs_total"], "rss": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss * 1024, "est": est, "wall_s": row["wall_s"]}))
"""


def calibrate(runs: tuple[dict[str, Any], ...] = CALIBRATION) -> list[dict[str, Any]]:
    """Measure each run in a fresh process: messages and peak RSS against the estimate."""
    import json
    import subprocess
    import sys

    out = []
    for p in runs:
        got = subprocess.run(
            [sys.executable, "-c", _PROBE, json.dumps(p)],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        m = json.loads(got.stdout.strip().splitlines()[-1])
        out.append(
            {
                **p,
                "messages": m["messages"],
                "messages_est": round(m["est"]["messages"]),
                "rss_mb": round(m["rss"] / 1e6),
                "rss_est_mb": round(m["est"]["memory_bytes"] / 1e6),
                "wall_s": round(m["wall_s"], 2),
            }
        )
    return out


if __name__ == "__main__":  # pragma: no cover - a measurement, not a test
    for r in calibrate():
        print(r)


__all__ = [
    "Budget",
    "Estimate",
    "TooLarge",
    "baseline",
    "calibrate",
    "generic",
    "human_bytes",
    "parse_bytes",
    "pbft",
    "physical_memory",
    "toy",
]
