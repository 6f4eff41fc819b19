"""What every baseline protocol shares: wire messages, the client's Submit, counters, signers.

Theory of operation
-------------------
The baselines (PoW, PoA, DPoS, PoI, central relay; docs/medical-chain.md §1.8, §2) are sans-IO state
machines behind :class:`medbench.node.Node`. This module holds the parts they have in common:

* :class:`WireMessage` — a frozen, slotted dataclass whose fields are checked by a per-class
  *schema* (one checker per field). The same check runs at construction (caller misuse raises
  :class:`MalformedMessage`) and again in ``step`` (a peer may hand us anything), so a node never
  trusts a message object's types. ``encode()`` gives the canonical bytes ``[kind, *fields]`` of
  :mod:`medbench.codec`; :func:`decode_message` reads them back through the same schema.
* :class:`Submit` — the *local* message a client uses to hand a transaction to its node
  (``src == node_id``); a Submit arriving from any other source is rejected, like raft's local
  messages.
* :class:`TxGossip` — a transaction flooded to peers; its encoding carries ``size`` zero bytes
  so that the wire size is the transaction's size (blocks then carry IDs only, compact-block style).
* :class:`Counters` — exact counts of hash evaluations, signature operations, rewards and fees,
  blocks and rejections, so that Table 1 is filled from measurements.
* Client signatures — the same rule for every system of Table 1: the client signs each
  transaction once (:meth:`BaselineNode.sign_client_tx`, charged at the node it submits to, the
  client's site), and every node that accepts a block verifies the signatures of the block's
  transactions it has not verified before (:meth:`BaselineNode.verify_client_signatures`), as an
  Ethereum or MDSM full node checks each transaction once. PBFT pays the same work: each replica
  verifies each client REQUEST once. The baselines' transactions carry no signature bytes, so
  these two counters are *modeled* (charged from the cost profile, like modeled mining): they
  price the work, they cannot catch a forged transaction.
* :class:`BaselineNode` — dispatch by message class, local-message rule, rejection notes, clock
  from ``tick`` and :meth:`BaselineNode.next_deadline`.

Driver contract (all baselines)
-------------------------------
A node learns time only from ``tick(now)``. After every ``step``/``tick`` the driver reads
``next_deadline()`` (absolute microseconds, or ``None``) and should call ``tick(t)`` with ``t`` at
or after it; a driver that ticks on a fixed period also works (timers then fire up to one
period late). A node never needs the time of a ``step``: everything it schedules is anchored
on block timestamps, slot boundaries or its own tick times.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from medbench import codec, hashwork
from medbench.hashing import sha256
from medbench.merkle import root as merkle_root
from medbench.node import Note, Ready, Send

U64_MAX = (1 << 64) - 1
MAX_TXS_PER_MESSAGE = 1 << 16
MAX_TX_SIZE = 1 << 20


class MalformedMessage(ValueError):
    """A message field is outside its schema (raised locally; counted when it comes from a peer)."""


class Rejected(Exception):
    """A well-formed message broke a protocol rule; ``reason`` is the counted label."""

    def __init__(self, reason: str, detail: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class MembershipError(ValueError):
    """A protocol was asked to start with fewer members than its rules need."""


# ---------------------------------------------------------------- field checkers (the schemas)

Check = Callable[[Any], None]


def u64(v: Any) -> None:
    """An unsigned 64-bit integer (not a bool)."""
    if type(v) is not int or not 0 <= v <= U64_MAX:
        raise MalformedMessage(f"expected u64, got {type(v).__name__}")


def b32(v: Any) -> None:
    """Exactly 32 bytes (a SHA-256 digest or an Ed25519 public key)."""
    if type(v) is not bytes or len(v) != 32:
        raise MalformedMessage("expected 32 bytes")


def bytes_max(limit: int) -> Check:
    """Bytes of at most ``limit`` length."""

    def check(v: Any) -> None:
        if type(v) is not bytes or len(v) > limit:
            raise MalformedMessage(f"expected bytes of at most {limit}")

    return check


def seq_of(item: Check, limit: int) -> Check:
    """A tuple or list of at most ``limit`` items, each passing ``item``."""

    def check(v: Any) -> None:
        if type(v) not in (tuple, list) or len(v) > limit:
            raise MalformedMessage(f"expected a sequence of at most {limit}")
        for x in v:
            item(x)

    return check


def tx_entry(v: Any) -> None:
    """One transaction reference inside a block: ``(tx_id, size, submit_time)``."""
    if type(v) not in (tuple, list) or len(v) != 3:
        raise MalformedMessage("expected a (tx_id, size, submit_time) triple")
    b32(v[0])
    u64(v[1])
    u64(v[2])
    if v[1] > MAX_TX_SIZE:
        raise MalformedMessage("transaction too large")


tx_entries = seq_of(tx_entry, MAX_TXS_PER_MESSAGE)


def _freeze(v: Any) -> Any:
    """Lists (as decoded from the wire) to tuples, recursively, so messages stay hashable."""
    if type(v) is list:
        return tuple(_freeze(x) for x in v)
    return v


# ---------------------------------------------------------------- messages


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


class WireMessage:
    """Base of every baseline message: schema-checked fields, ``kind`` and canonical ``encode``."""

    __slots__ = ()
    KIND: ClassVar[str]
    SCHEMA: ClassVar[tuple[Check, ...]]
    LOCAL: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.check()

    @property
    def kind(self) -> str:
        """Short name used to count messages by type."""
        return self.KIND

    def fields(self) -> tuple[Any, ...]:
        """The field values in declaration order (the wire order)."""
        return tuple(getattr(self, n) for n in _field_names(type(self)))

    def check(self) -> None:
        """Raise :class:`MalformedMessage` unless every field passes its schema checker."""
        names = _field_names(type(self))
        if len(names) != len(self.SCHEMA):  # pragma: no cover - a definition error, not input
            raise AssertionError(f"{type(self).__name__}: schema/field count mismatch")
        for name, chk in zip(names, self.SCHEMA, strict=True):
            chk(getattr(self, name, None))

    def encode(self) -> bytes:
        """Canonical bytes ``[kind, *fields]``; their length is the wire size."""
        return codec.encode([self.KIND, *self.fields()])


@dataclass(frozen=True, slots=True)
class Submit(WireMessage):
    """Local: a client hands us transaction ``tx_id`` (``size`` bytes, made at ``submit_time``)."""

    tx_id: bytes
    size: int
    submit_time: int

    KIND: ClassVar[str] = "submit"
    SCHEMA: ClassVar[tuple[Check, ...]] = (b32, u64, u64)
    LOCAL: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class TxGossip(WireMessage):
    """A transaction flooded to peers; the encoding carries ``size`` bytes of body."""

    tx_id: bytes
    size: int
    submit_time: int

    KIND: ClassVar[str] = "tx"
    SCHEMA: ClassVar[tuple[Check, ...]] = (b32, u64, u64)

    def check(self) -> None:
        """Schema check plus the size bound."""
        WireMessage.check(self)
        if self.size > MAX_TX_SIZE:
            raise MalformedMessage("transaction too large")

    def encode(self) -> bytes:
        """``[kind, tx_id, size, submit_time, body]`` with a ``size``-byte body."""
        return codec.encode([self.KIND, self.tx_id, self.size, self.submit_time, bytes(self.size)])


def decode_tx_gossip(value: list[Any]) -> TxGossip:
    """Read the 4-field wire form of :class:`TxGossip` (body length must equal ``size``)."""
    if len(value) != 5 or type(value[4]) is not bytes or len(value[4]) != value[2]:
        raise MalformedMessage("tx: body does not match size")
    return TxGossip(value[1], value[2], value[3])


def decode_message(data: Any, classes: Iterable[type[WireMessage]]) -> WireMessage:
    """Parse canonical bytes ``[kind, *fields]`` into one of ``classes``.

    Raises only :class:`MalformedMessage`. :class:`TxGossip`'s body field is checked and dropped.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"expected bytes, got {type(data).__name__}")
    try:
        value = codec.decode(bytes(data))
    except codec.DecodeError as exc:
        raise MalformedMessage(f"undecodable: {exc}") from None
    if type(value) is not list or not value or type(value[0]) is not str:
        raise MalformedMessage("expected [kind, *fields]")
    if value[0] == TxGossip.KIND:
        return decode_tx_gossip(value)
    cls = {c.KIND: c for c in classes}.get(value[0])
    if cls is None:
        raise MalformedMessage(f"unknown kind {value[0]!r}")
    args = [_freeze(v) for v in value[1:]]
    if len(args) != len(_field_names(cls)):
        raise MalformedMessage(f"{cls.KIND}: wrong field count")
    return cls(*args)


def check_param_names(cls: type, params: dict[str, Any], system: str) -> None:
    """Raise ``ValueError`` for keys of ``params`` that are not fields of dataclass ``cls``."""
    unknown = set(params) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {system} parameters: {sorted(unknown)}")


# ---------------------------------------------------------------- results handed to the driver


@dataclass(frozen=True, slots=True)
class CommittedBlock:
    """Payload of :class:`medbench.node.Committed`: one block accepted as final by this node."""

    height: int
    block_id: bytes
    producer: int
    txs: tuple[tuple[bytes, int, int], ...]


@dataclass(frozen=True, slots=True)
class TxCompleted:
    """Entry of ``Ready.completed``: a transaction submitted at this node is now final.

    The driver stamps the completion time (a node does not know the time of a ``step``).
    """

    tx_id: bytes
    submit_time: int


# ---------------------------------------------------------------- counters


@dataclass(slots=True)
class Counters:
    """Exact per-node counts for the comparison table (hashes, signatures, money, blocks)."""

    hash_mining: int = 0  # nonce trials: modeled (hash rate x mining time) or real
    hash_mining_real: int = 0  # SHA-256 calls actually executed by a real nonce search
    hash_block: int = 0  # block IDs computed (produce + verify)
    hash_merkle: int = 0  # Merkle-tree hashes over transaction IDs
    sign_ops: int = 0  # protocol signatures (block seals, MDSM blocks and audits)
    verify_ops: int = 0
    tx_sign_ops: int = 0  # client signatures on transactions (modeled, see the module doc)
    tx_verify_ops: int = 0  # client signatures checked, once per transaction and node
    blocks_produced: int = 0
    blocks_accepted: int = 0
    validations: int = 0  # blocks checked on behalf of others (MDSM's 100 + 20 checks)
    train_flops: int = 0  # PoI: floating-point operations of local training
    validate_flops: int = 0  # PoI: floating-point operations of update validation
    rejections: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int]:
        """Flat dictionary (rejections summed and by reason) for a results row."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        rej: Counter[str] = out.pop("rejections")
        out["rejections"] = sum(rej.values())
        for reason, n in sorted(rej.items()):
            out[f"rejected:{reason}"] = n
        return out


def merkle_hashes(n_leaves: int) -> int:
    """SHA-256 evaluations of an RFC 9162 root over ``n_leaves`` leaves (2n-1, or 1 if empty)."""
    return hashwork.merkle_hashes(n_leaves)


def tx_root(txs: Sequence[tuple[bytes, int, int]], counters: Counters) -> bytes:
    """Merkle root over the transaction IDs of ``txs``, counted."""
    counters.hash_merkle += merkle_hashes(len(txs))
    digest: bytes = merkle_root([t[0] for t in txs])
    return digest


def block_hash(header: Sequence[Any], counters: Counters) -> bytes:
    """``sha256(encode(header))``: a block ID, counted."""
    counters.hash_block += 1
    digest: bytes = sha256(codec.encode(list(header)))
    return digest


def recompute_block_id(header: Sequence[Any]) -> bytes:
    """:func:`block_hash` without counting (an auditor's re-check, not the node's own work)."""
    digest: bytes = sha256(codec.encode(list(header)))
    return digest


# ---------------------------------------------------------------- node base


class BaselineNode:
    """Shared plumbing of the baseline nodes (see the module docstring's driver contract).

    Subclasses fill ``HANDLERS`` (message class -> method name; also the classes accepted from
    bytes) and override :meth:`on_tick` and :meth:`next_deadline`.
    """

    HANDLERS: ClassVar[dict[type, str]] = {}

    def __init__(self, node_id: int, n: int) -> None:
        self.node_id = node_id
        self.n = n
        self.peers: tuple[int, ...] = tuple(i for i in range(n) if i != node_id)
        self.now = 0
        self.counters = Counters()
        self.tx_verified: set[bytes] = set()  # transactions whose client signature we checked

    # --- the Node interface

    def step(self, src: int, msg: Any) -> Ready:
        """Handle one message from ``src``; bad input becomes a counted ``rejected`` note."""
        ready = Ready()
        try:
            if isinstance(msg, (bytes, bytearray, memoryview)):
                msg = decode_message(msg, tuple(self.HANDLERS))
            handler = self.HANDLERS.get(type(msg))
            if handler is None:
                raise Rejected("unknown_message", type(msg).__name__)
            msg.check()
            if msg.LOCAL and src != self.node_id:
                raise Rejected("local_from_remote", msg.kind)
            if not msg.LOCAL and src == self.node_id:
                raise Rejected("remote_from_self", msg.kind)
            if type(src) is not int or not 0 <= src < self.n:
                raise Rejected("unknown_sender", src)
            getattr(self, handler)(src, msg, ready)
        except MalformedMessage as exc:
            self.reject(ready, "malformed", str(exc))
        except Rejected as exc:
            self.reject(ready, exc.reason, exc.detail)
        return ready

    def tick(self, now: int) -> Ready:
        """Advance the node's clock to ``now`` (never backwards) and fire due timers."""
        ready = Ready()
        if type(now) is int and now > self.now:
            self.now = now
        self.on_tick(ready)
        return ready

    def next_deadline(self) -> int | None:
        """Absolute time (µs) of the node's next timer, or ``None``; see the driver contract."""
        return None

    def on_tick(self, ready: Ready) -> None:
        """Fire timers due at ``self.now`` (override)."""

    @classmethod
    def describe(cls) -> str:
        """The rules this node follows: its module's theory of operation."""
        return inspect.getdoc(sys.modules[cls.__module__]) or ""

    # --- helpers

    def reject(self, ready: Ready, reason: str, detail: Any = None) -> None:
        """Count a rejection and report it as ``Note("rejected", (reason, detail))``."""
        self.counters.rejections[reason] += 1
        ready.notes.append(Note("rejected", (reason, detail)))

    def sign_client_tx(self) -> None:
        """Count the client's signature on a transaction submitted here (modeled)."""
        self.counters.tx_sign_ops += 1

    def verify_client_signatures(self, txs: Iterable[Sequence[Any]]) -> int:
        """Count one client-signature check per transaction of ``txs`` new to this node.

        Called for every block the node accepts; returns the checks counted (modeled: see the
        module docstring).
        """
        seen = self.tx_verified
        fresh = 0
        for tx in txs:
            if tx[0] not in seen:
                seen.add(tx[0])
                fresh += 1
        self.counters.tx_verify_ops += fresh
        return fresh

    def stats(self) -> dict[str, int]:
        """Counters as a flat dictionary (subclasses add chain-derived figures)."""
        return self.counters.as_dict()

    def stored_blocks(self) -> list[tuple[WireMessage, bool]]:
        """Every block this node keeps, genesis excluded, each with whether it is final."""
        return []

    def verify_chain(self) -> tuple[int, str | None]:
        """Re-check the final chain's hash links and IDs, uncounted: (blocks, first fault)."""
        return 0, None


def gossip_tx(node: BaselineNode, tx: TxGossip, ready: Ready) -> None:
    """Flood ``tx`` to every peer as one broadcast."""
    if node.peers:
        ready.messages.append(Send(node.peers, tx))


# ---------------------------------------------------------------- injected randomness


class Rng(Protocol):
    """A seeded random stream a driver injects into a node (the core owns no random module).

    :mod:`medbench.experiments.baselines` provides one over a numpy ``Generator`` per node.
    """

    def exponential_us(self, mean_us: float) -> int:
        """An exponential delay with mean ``mean_us`` microseconds, at least 1 µs."""
        ...

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)`` (``bound`` up to 2**64; 0 if ``bound <= 0``)."""
        ...
