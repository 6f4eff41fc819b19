"""PBFT messages: frozen slotted dataclasses, one :class:`Kind` enum, one canonical encoding.

Theory of operation
-------------------
Every protocol message of Castro & Liskov (TOCS 2002 §4) and of Medical Chain (docs/medical-chain.md
§1.1, §1.5: the BLOCK message from blocker to primary) is a frozen, slotted dataclass. Its wire form
is

    encode((body, auth))    with    body = encode((code, field_1, ..., field_k))

where ``code`` is the message's small integer wire code, the fields are in a fixed order and
``auth`` is the authenticator (a signature, a MAC vector or a modeled tag, see
:mod:`medbench.consensus.auth`) computed over ``body``. Because the body is a byte string of
its own, a message nested inside another (requests inside a PRE-PREPARE, PREPAREs inside a
VIEW-CHANGE) is carried as its ``(body, auth)`` pair: it is never re-encoded and its authenticator
can be checked by whoever receives the outer message.

One module on purpose (at the kit's ~700-line guide): it is the message catalogue, every kind
beside its validation, so the wire format can be read and checked in one place.

``body()``, ``encode()`` and ``digest()`` are computed once and cached on the object (the simulator
sizes every message by ``len(msg.encode())``; the replica hashes each request and batch once).
Construction validates field types and ranges, so an ill-typed message cannot exist;
:func:`medbench.consensus.pbft.wire.decode_message` parses untrusted bytes and raises only
:class:`MessageError`.

Local events (a client's SUBMIT, a TIMEOUT) are kinds too, listed in :data:`LOCAL_KINDS`; they have
no wire code, the decoder never yields them and a replica rejects them from a peer
(the ``isLocalMsg`` rule of etcd raft).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from medbench import codec
from medbench.consensus.auth import Auth
from medbench.hashing import sha256

DIGEST_SIZE = 32
MAX_U63 = (1 << 63) - 1
MAX_AUTH_ENTRIES = 4096
MAX_AUTH_BYTES = 256
MAX_OPERATION_BYTES = 1 << 20
MAX_REFUSAL_CHARS = 64


class Kind(StrEnum):
    """Every message kind; the value is the short name metrics count messages by."""

    REQUEST = "request"
    PRE_PREPARE = "pre-prepare"
    PREPARE = "prepare"
    COMMIT = "commit"
    REPLY = "reply"
    CHECKPOINT = "checkpoint"
    VIEW_CHANGE = "view-change"
    NEW_VIEW = "new-view"
    FETCH = "fetch"
    STATE = "state"
    BLOCK = "block"
    SUBMIT = "submit"
    TIMEOUT = "timeout"


LOCAL_KINDS: frozenset[Kind] = frozenset({Kind.SUBMIT, Kind.TIMEOUT})
"""Kinds that only the node's own driver may deliver (``src == node_id``), never a peer."""

WIRE_CODES: dict[Kind, int] = {
    Kind.REQUEST: 1,
    Kind.PRE_PREPARE: 2,
    Kind.PREPARE: 3,
    Kind.COMMIT: 4,
    Kind.REPLY: 5,
    Kind.CHECKPOINT: 6,
    Kind.VIEW_CHANGE: 7,
    Kind.NEW_VIEW: 8,
    Kind.FETCH: 9,
    Kind.STATE: 10,
    Kind.BLOCK: 11,
}

Verify: TypeAlias = Callable[[int, bytes, Auth], bool]
"""``verify(sender, body, auth)``: a keyring's check of one authenticator."""


class MessageError(ValueError):
    """A message is malformed: bad bytes from a peer, or a bad field given to a constructor."""


def _uint(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_U63:
        raise MessageError(f"{name} must be an integer in 0..2^63-1, got {value!r}")


def _sint(name: str, value: object) -> None:
    if type(value) is not int or not -1 <= value <= MAX_U63:
        raise MessageError(f"{name} must be an integer in -1..2^63-1, got {value!r}")


def _digest(name: str, value: object) -> None:
    if type(value) is not bytes or len(value) != DIGEST_SIZE:
        raise MessageError(f"{name} must be {DIGEST_SIZE} bytes, got {value!r:.40}")


def _bytes(name: str, value: object, limit: int) -> None:
    if type(value) is not bytes or len(value) > limit:
        raise MessageError(f"{name} must be at most {limit} bytes")


def _text(name: str, value: object, limit: int) -> None:
    if type(value) is not str or len(value) > limit:
        raise MessageError(f"{name} must be a string of at most {limit} characters")


def _auth(value: object) -> None:
    if type(value) is bytes:
        if len(value) > MAX_AUTH_BYTES:
            raise MessageError("authenticator too long")
        return
    if type(value) is not tuple or len(value) > MAX_AUTH_ENTRIES:
        raise MessageError("authenticator must be bytes or a tuple of bytes")
    for entry in value:
        if type(entry) is not bytes or len(entry) > MAX_AUTH_BYTES:
            raise MessageError("authenticator entries must be short bytes")


def _tuple_of(name: str, value: object, cls: type | tuple[type, ...], limit: int) -> None:
    if type(value) is not tuple or len(value) > limit:
        raise MessageError(f"{name} must be a tuple of at most {limit} entries")
    for v in value:
        if not isinstance(v, cls):
            raise MessageError(f"{name} holds a {type(v).__name__}")


def short(data: bytes) -> str:
    """The first 8 hex digits of ``data``, for readable reprs and traces."""
    return data[:4].hex()


class _Message:
    """Behaviour shared by every wire message (a mixin for the slotted dataclasses below)."""

    __slots__ = ()
    KIND: ClassVar[Kind]
    auth: Auth
    _body: bytes | None
    _wire: bytes | None
    _digest: bytes | None

    @property
    def kind(self) -> Kind:
        """This message's :class:`Kind`."""
        return self.KIND

    def fields(self) -> tuple[Any, ...]:
        """The fixed-order fields of the body (nested messages as their ``(body, auth)``)."""
        raise NotImplementedError

    def body(self) -> bytes:
        """Canonical bytes of ``(code, fields...)``: what the authenticator covers (cached)."""
        b = self._body
        if b is None:
            b = codec.encode((WIRE_CODES[self.KIND], *self.fields()))
            object.__setattr__(self, "_body", b)
        return b

    def wire(self) -> tuple[bytes, Auth]:
        """The ``(body, auth)`` pair: the message's wire form before the outer encoding."""
        return (self.body(), self.auth)

    def encode(self) -> bytes:
        """Canonical wire bytes ``encode((body, auth))`` (cached)."""
        w = self._wire
        if w is None:
            w = codec.encode((self.body(), self.auth))
            object.__setattr__(self, "_wire", w)
        return w

    def digest(self) -> bytes:
        """SHA-256 of the body (cached): a request's ID, a message's identity in traces."""
        d = self._digest
        if d is None:
            d = sha256(self.body())
            object.__setattr__(self, "_digest", d)
        return d

    def with_auth(self, auth: Auth) -> Any:
        """A copy carrying ``auth``, sharing the cached body (the authenticator is not in it)."""
        _auth(auth)
        values = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.init
        }
        values["auth"] = auth
        out = type(self)(**values)
        object.__setattr__(out, "_body", self._body)
        object.__setattr__(out, "_digest", self._digest)
        return out


def _cache() -> Any:
    return field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True, repr=False)
class Request(_Message):
    """<REQUEST, o, t, c>: client ``client`` asks for ``operation`` with timestamp ``timestamp``.

    Client timestamps are totally ordered per client and give exactly-once execution (TOCS §4.1).
    """

    KIND: ClassVar[Kind] = Kind.REQUEST
    client: int
    timestamp: int
    operation: bytes
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("client", self.client)
        _uint("timestamp", self.timestamp)
        _bytes("operation", self.operation, MAX_OPERATION_BYTES)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(client, timestamp, operation)``."""
        return (self.client, self.timestamp, self.operation)

    def __repr__(self) -> str:
        return f"Request(c={self.client} t={self.timestamp} id={short(self.digest())})"


@dataclass(frozen=True, slots=True, repr=False)
class Block(_Message):
    """The paper's block message (docs/medical-chain.md §1.5): blocker ``blocker`` proposes a block.

    The header is (height, previous block ID, blocker, Merkle root of ``tx_ids``, timestamp);
    the Merkle root is recomputed from ``tx_ids`` by :mod:`medbench.consensus.pbft.blocker`.
    ``view`` is the view the blocker computed its turn in (the blocker rotation depends on the
    primary, docs/medical-chain.md §1.5). ``blocker == -1`` marks an integrated-mode block (no
    blocker).
    """

    KIND: ClassVar[Kind] = Kind.BLOCK
    view: int
    height: int
    prev_id: bytes
    blocker: int
    tx_ids: tuple[bytes, ...]
    timestamp: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("height", self.height)
        _digest("prev_id", self.prev_id)
        _sint("blocker", self.blocker)
        if type(self.tx_ids) is not tuple or len(self.tx_ids) > codec.MAX_CONTAINER_LEN:
            raise MessageError("tx_ids must be a tuple")
        for t in self.tx_ids:
            _digest("tx id", t)
        _uint("timestamp", self.timestamp)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, height, prev_id, blocker, tx_ids, timestamp)``."""
        return (self.view, self.height, self.prev_id, self.blocker, self.tx_ids, self.timestamp)

    def __repr__(self) -> str:
        return (
            f"Block(h={self.height} b={self.blocker} txs={len(self.tx_ids)} "
            f"prev={short(self.prev_id)} id={short(self.digest())})"
        )


Item: TypeAlias = Request | Block
"""What a PBFT batch orders: client requests and (in blocker mode) blocks."""


@dataclass(frozen=True, slots=True, repr=False)
class PrePrepare(_Message):
    """<PRE-PREPARE, v, n, d, t>, m: the primary assigns sequence ``sequence`` to ``batch``.

    ``batch_digest`` is :func:`compute_batch_digest` of ``(timestamp, batch)``; ``timestamp`` is
    the primary's clock, the non-deterministic value of TOCS §4.6, used for block timestamps. An
    empty batch with timestamp 0 is the *null request* a new primary issues for a gap (§4.4).
    """

    KIND: ClassVar[Kind] = Kind.PRE_PREPARE
    view: int
    sequence: int
    batch_digest: bytes
    timestamp: int
    batch: tuple[Item, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("sequence", self.sequence)
        _digest("digest", self.batch_digest)
        _uint("timestamp", self.timestamp)
        _tuple_of("batch", self.batch, (Request, Block), codec.MAX_CONTAINER_LEN)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, sequence, digest, timestamp, batch, replica)``."""
        return (
            self.view,
            self.sequence,
            self.batch_digest,
            self.timestamp,
            tuple(item.wire() for item in self.batch),
            self.replica,
        )

    def __repr__(self) -> str:
        return (
            f"PrePrepare(v={self.view} s={self.sequence} d={short(self.batch_digest)} "
            f"n={len(self.batch)} r={self.replica})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class Prepare(_Message):
    """<PREPARE, v, n, d, i>: backup ``replica`` accepted the pre-prepare (TOCS §4.2)."""

    KIND: ClassVar[Kind] = Kind.PREPARE
    view: int
    sequence: int
    batch_digest: bytes
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("sequence", self.sequence)
        _digest("digest", self.batch_digest)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, sequence, digest, replica)``."""
        return (self.view, self.sequence, self.batch_digest, self.replica)

    def __repr__(self) -> str:
        d = short(self.batch_digest)
        return f"Prepare(v={self.view} s={self.sequence} d={d} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class Commit(_Message):
    """<COMMIT, v, n, d, i>: ``replica`` has prepared the batch (TOCS §4.2)."""

    KIND: ClassVar[Kind] = Kind.COMMIT
    view: int
    sequence: int
    batch_digest: bytes
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("sequence", self.sequence)
        _digest("digest", self.batch_digest)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, sequence, digest, replica)``."""
        return (self.view, self.sequence, self.batch_digest, self.replica)

    def __repr__(self) -> str:
        d = short(self.batch_digest)
        return f"Commit(v={self.view} s={self.sequence} d={d} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class Reply(_Message):
    """<REPLY, v, t, c, i, r>: ``replica`` executed the client's request and got ``result``.

    Or it refused the request without ordering it: ``refusal`` is then the validator's typed
    reason (its code, e.g. ``"no-grant"``) and ``result`` is empty. The client accepts either
    only from f+1 replicas that match on both fields (:mod:`.client`).
    """

    KIND: ClassVar[Kind] = Kind.REPLY
    view: int
    timestamp: int
    client: int
    replica: int
    result: bytes
    auth: Auth = b""
    refusal: str = ""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("timestamp", self.timestamp)
        _uint("client", self.client)
        _uint("replica", self.replica)
        _bytes("result", self.result, MAX_OPERATION_BYTES)
        _auth(self.auth)
        _text("refusal", self.refusal, MAX_REFUSAL_CHARS)
        if self.refusal and self.result:
            raise MessageError("a refusal carries no result")

    def fields(self) -> tuple[Any, ...]:
        """``(view, timestamp, client, replica, result, refusal)``."""
        return (self.view, self.timestamp, self.client, self.replica, self.result, self.refusal)

    def __repr__(self) -> str:
        what = f"refused={self.refusal}" if self.refusal else f"res={short(self.result)}"
        return f"Reply(v={self.view} c={self.client} t={self.timestamp} r={self.replica} {what})"


@dataclass(frozen=True, slots=True, repr=False)
class Checkpoint(_Message):
    """<CHECKPOINT, n, d, i>: ``replica``'s state digest after executing ``sequence`` (§4.3)."""

    KIND: ClassVar[Kind] = Kind.CHECKPOINT
    sequence: int
    state_digest: bytes
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("sequence", self.sequence)
        _digest("state_digest", self.state_digest)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(sequence, state_digest, replica)``."""
        return (self.sequence, self.state_digest, self.replica)

    def __repr__(self) -> str:
        return f"Checkpoint(s={self.sequence} d={short(self.state_digest)} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class PreparedProof:
    """A prepared certificate: a pre-prepare and 2f matching prepares from distinct backups."""

    pre_prepare: PrePrepare
    prepares: tuple[Prepare, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.pre_prepare, PrePrepare):
            raise MessageError("prepared proof needs a PrePrepare")
        _tuple_of("prepares", self.prepares, Prepare, MAX_AUTH_ENTRIES)

    def wire(self) -> tuple[Any, ...]:
        """``(pre-prepare wire, (prepare wires...))``."""
        return (self.pre_prepare.wire(), tuple(p.wire() for p in self.prepares))

    def __repr__(self) -> str:
        return f"P({self.pre_prepare!r} +{len(self.prepares)})"


@dataclass(frozen=True, slots=True, repr=False)
class ViewChange(_Message):
    """<VIEW-CHANGE, v+1, n, C, P, i> (TOCS §4.4).

    ``stable_sequence`` is the replica's stable checkpoint, ``checkpoint_proof`` its 2f+1
    CHECKPOINT messages (empty for the genesis checkpoint 0), ``prepared`` one certificate per
    sequence above it that the replica prepared (the highest view's).
    """

    KIND: ClassVar[Kind] = Kind.VIEW_CHANGE
    view: int
    stable_sequence: int
    checkpoint_proof: tuple[Checkpoint, ...]
    prepared: tuple[PreparedProof, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("stable_sequence", self.stable_sequence)
        _tuple_of("checkpoint_proof", self.checkpoint_proof, Checkpoint, MAX_AUTH_ENTRIES)
        _tuple_of("prepared", self.prepared, PreparedProof, codec.MAX_CONTAINER_LEN)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, stable_sequence, checkpoint_proof, prepared, replica)``."""
        return (
            self.view,
            self.stable_sequence,
            tuple(c.wire() for c in self.checkpoint_proof),
            tuple(p.wire() for p in self.prepared),
            self.replica,
        )

    def __repr__(self) -> str:
        seqs = ",".join(str(p.pre_prepare.sequence) for p in self.prepared)
        return f"ViewChange(v={self.view} h={self.stable_sequence} P=[{seqs}] r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class NewView(_Message):
    """<NEW-VIEW, v+1, V, O> (TOCS §4.4): 2f+1 view changes and the re-issued pre-prepares."""

    KIND: ClassVar[Kind] = Kind.NEW_VIEW
    view: int
    view_changes: tuple[ViewChange, ...]
    pre_prepares: tuple[PrePrepare, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _tuple_of("view_changes", self.view_changes, ViewChange, MAX_AUTH_ENTRIES)
        _tuple_of("pre_prepares", self.pre_prepares, PrePrepare, codec.MAX_CONTAINER_LEN)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, view_changes, pre_prepares, replica)``."""
        return (
            self.view,
            tuple(v.wire() for v in self.view_changes),
            tuple(p.wire() for p in self.pre_prepares),
            self.replica,
        )

    def __repr__(self) -> str:
        seqs = ",".join(str(p.sequence) for p in self.pre_prepares)
        return f"NewView(v={self.view} V={len(self.view_changes)} O=[{seqs}] r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class Fetch(_Message):
    """State transfer: ``replica`` asks for the executed batches from ``sequence`` on."""

    KIND: ClassVar[Kind] = Kind.FETCH
    sequence: int
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("sequence", self.sequence)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(sequence, replica)``."""
        return (self.sequence, self.replica)

    def __repr__(self) -> str:
        return f"Fetch(from={self.sequence} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class StateBatch:
    """One executed batch in a STATE answer: its sequence, timestamp and items."""

    sequence: int
    timestamp: int
    items: tuple[Item, ...]

    def __post_init__(self) -> None:
        _uint("sequence", self.sequence)
        _uint("timestamp", self.timestamp)
        _tuple_of("items", self.items, (Request, Block), codec.MAX_CONTAINER_LEN)

    def wire(self) -> tuple[Any, ...]:
        """``(sequence, timestamp, (item wires...))``."""
        return (self.sequence, self.timestamp, tuple(i.wire() for i in self.items))


@dataclass(frozen=True, slots=True, repr=False)
class State(_Message):
    """State transfer answer: batches from ``sequence`` up to the stable checkpoint they prove.

    ``proof`` is the 2f+1 CHECKPOINT certificate of ``checkpoint_sequence``; the receiver replays
    the chained state digest over ``batches`` and accepts them only if it matches (TOCS §5.3).
    """

    KIND: ClassVar[Kind] = Kind.STATE
    sequence: int
    checkpoint_sequence: int
    batches: tuple[StateBatch, ...]
    proof: tuple[Checkpoint, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("sequence", self.sequence)
        _uint("checkpoint_sequence", self.checkpoint_sequence)
        _tuple_of("batches", self.batches, StateBatch, codec.MAX_CONTAINER_LEN)
        _tuple_of("proof", self.proof, Checkpoint, MAX_AUTH_ENTRIES)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(sequence, checkpoint_sequence, batches, proof, replica)``."""
        return (
            self.sequence,
            self.checkpoint_sequence,
            tuple(b.wire() for b in self.batches),
            tuple(c.wire() for c in self.proof),
            self.replica,
        )

    def __repr__(self) -> str:
        return (
            f"State(from={self.sequence} to={self.checkpoint_sequence} "
            f"n={len(self.batches)} r={self.replica})"
        )


@dataclass(frozen=True, slots=True)
class Submit:
    """Local event: the client application asks the client node to run ``operation``."""

    KIND: ClassVar[Kind] = Kind.SUBMIT
    operation: bytes

    @property
    def kind(self) -> Kind:
        """:attr:`Kind.SUBMIT`."""
        return self.KIND


@dataclass(frozen=True, slots=True)
class Timeout:
    """Local event: timer ``timer`` fired (delivered by ``tick``; from a peer it is rejected)."""

    KIND: ClassVar[Kind] = Kind.TIMEOUT
    timer: str

    @property
    def kind(self) -> Kind:
        """:attr:`Kind.TIMEOUT`."""
        return self.KIND


Message: TypeAlias = (
    Request
    | Block
    | PrePrepare
    | Prepare
    | Commit
    | Reply
    | Checkpoint
    | ViewChange
    | NewView
    | Fetch
    | State
)
WIRE_TYPES: tuple[type, ...] = (
    Request,
    Block,
    PrePrepare,
    Prepare,
    Commit,
    Reply,
    Checkpoint,
    ViewChange,
    NewView,
    Fetch,
    State,
)


# --- digests -------------------------------------------------------------------------------------

NULL_DIGEST_INPUT = (0, ())


def compute_batch_digest(timestamp: int, batch: tuple[Item, ...]) -> bytes:
    """``sha256(encode((timestamp, (item digests...))))``: the digest a PRE-PREPARE names."""
    digest: bytes = sha256(codec.encode((timestamp, tuple(item.digest() for item in batch))))
    return digest


NULL_DIGEST = compute_batch_digest(0, ())
"""Digest of the null request (an empty batch with timestamp 0)."""
