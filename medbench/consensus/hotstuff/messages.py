"""HotStuff messages: frozen slotted dataclasses, one :class:`Kind` enum, one canonical encoding.

Theory of operation
-------------------
Chained HotStuff (Yin et al., PODC 2019, §5 and Algorithm 3) exchanges four protocol messages:
the leader's PROPOSAL of a block, a replica's VOTE for it (its partial signature, sent to the
leader of the next view), the NEW-VIEW a replica sends the next leader when a view times out
(it carries the sender's highest quorum certificate, :class:`QC`), and — for a replica that missed
blocks — SYNC-REQUEST / SYNC-RESPONSE. Clients send REQUESTs and get REPLYs.

Every message's wire form is, as in :mod:`medbench.consensus.pbft.messages`,

    encode((body, auth))    with    body = encode((code, field_1, ..., field_k))

with ``auth`` the sender's authenticator over ``body`` (:mod:`medbench.consensus.auth`). Nested
messages travel as their ``(body, auth)`` pair and are never re-encoded.

A :class:`Block` is not a message of its own: it is the paper's *node* (§4.2 "createLeaf"):
``(view, height, parent, justify, timestamp, batch, proposer)``, with ``parent`` the hash of the
block ``justify`` certifies, ``justify`` the QC the proposer extends (the paper's
``b.justify``), ``timestamp`` the proposer's clock (the agreed time of the block, as PBFT's
pre-prepare carries one: TOCS §4.6) and ``batch`` the client requests it orders. Its *hash* is
SHA-256 of its canonical body; a VOTE signs ``(view, block hash, voter)``.

A :class:`QC` is ``(view, block hash, votes)``: the individually signed votes of a quorum. The
paper aggregates the partial signatures into one threshold signature (§3); this kit models that
signature as the ``strong_quorum(n)`` (``n - f`` at ``n = 3f + 1``) individual votes it would
aggregate, each verified on its own, so a QC costs ``n - f`` verifications and, on the wire, one
``(voter, signature)`` pair per vote. Votes in a QC are carried as ``(voter, auth)`` pairs, the
vote bodies being implied by the QC's view and hash.

``body()``, ``encode()``, :attr:`Block.hash` and ``digest()`` are computed once and cached on the
object; construction validates field types and ranges, so an ill-typed message cannot exist;
:func:`medbench.consensus.hotstuff.wire.decode_message` parses untrusted bytes and raises only
:class:`MessageError`. Semantic checks (quorum size, distinct voters, signatures, the leader
rule) are the replica's, so that hostile input can be built, delivered, refused and counted.

Local events (a client's SUBMIT, a TIMEOUT) are kinds too, listed in :data:`LOCAL_KINDS`; they
have no wire code and a replica rejects them from a peer.
"""

from __future__ import annotations

import dataclasses
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
MAX_BATCH = 1 << 16
MAX_VOTES = 4096
MAX_SYNC_BLOCKS = 1024
ZERO_HASH = bytes(DIGEST_SIZE)


class Kind(StrEnum):
    """Every message kind; the value is the short name metrics count messages by."""

    REQUEST = "request"
    REPLY = "reply"
    PROPOSAL = "proposal"
    VOTE = "vote"
    NEW_VIEW = "new-view"
    SYNC_REQUEST = "sync-request"
    SYNC_RESPONSE = "sync-response"
    SUBMIT = "submit"
    TIMEOUT = "timeout"


LOCAL_KINDS: frozenset[Kind] = frozenset({Kind.SUBMIT, Kind.TIMEOUT})
"""Kinds that only the node's own driver may deliver (``src == node_id``), never a peer."""

WIRE_CODES: dict[Kind, int] = {
    Kind.REQUEST: 1,
    Kind.REPLY: 2,
    Kind.PROPOSAL: 3,
    Kind.VOTE: 4,
    Kind.NEW_VIEW: 5,
    Kind.SYNC_REQUEST: 6,
    Kind.SYNC_RESPONSE: 7,
}
BLOCK_CODE = 16
"""First field of a block's body (a block is hashed and nested, never sent on its own)."""

_VOTE_CODE = WIRE_CODES[Kind.VOTE]
_REPLY_CODE = WIRE_CODES[Kind.REPLY]


class MessageError(ValueError):
    """A message is malformed: bad bytes from a peer, or a bad field given to a constructor."""


def _uint(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_U63:
        raise MessageError(f"{name} must be an integer in 0..2^63-1, got {value!r}")


def _digest(name: str, value: object) -> None:
    if type(value) is not bytes or len(value) != DIGEST_SIZE:
        raise MessageError(f"{name} must be {DIGEST_SIZE} bytes, got {value!r:.40}")


def _bytes(name: str, value: object, limit: int) -> None:
    if type(value) is not bytes or len(value) > limit:
        raise MessageError(f"{name} must be at most {limit} bytes")


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


def _tuple_of(name: str, value: object, cls: type, limit: int) -> None:
    if type(value) is not tuple or len(value) > limit:
        raise MessageError(f"{name} must be a tuple of at most {limit} entries")
    for v in value:
        if type(v) is not cls:
            raise MessageError(f"{name} holds a {type(v).__name__}, not a {cls.__name__}")


def _bin_header(length: int) -> bytes:
    """The shortest MessagePack ``bin`` header for ``length`` bytes (what :mod:`medbench.codec`
    writes for a ``bytes`` value): bin8, bin16 or bin32."""
    if length < 0x100:
        return b"\xc4" + length.to_bytes(1, "big")
    if length < 0x10000:
        return b"\xc5" + length.to_bytes(2, "big")
    return b"\xc6" + length.to_bytes(4, "big")


def short(data: bytes) -> str:
    """The first 8 hex digits of ``data``, for readable reprs and traces."""
    return data[:4].hex()


def _cache() -> Any:
    return field(default=None, init=False, repr=False, compare=False)


class _Message:
    """Behaviour shared by every wire message (a mixin for the slotted dataclasses below).

    ``_verdict`` caches a successful signature check under a :class:`VerdictMemo` (see
    :mod:`medbench.consensus.hotstuff.certificates`); it is never part of the encoding.
    """

    __slots__ = ()
    KIND: ClassVar[Kind]
    auth: Auth
    _body: bytes | None
    _wire: bytes | None
    _digest: bytes | None
    _verdict: object | None

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
            auth = self.auth
            body = self.body()
            if type(auth) is bytes:  # the common case, framed directly (same bytes as codec)
                w = b"\x92" + _bin_header(len(body)) + body + _bin_header(len(auth)) + auth
            else:
                w = codec.encode((body, auth))
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


@dataclass(frozen=True, slots=True, repr=False)
class Request(_Message):
    """<REQUEST, o, t, c>: client ``client`` asks for ``operation`` with timestamp ``timestamp``.

    Client timestamps are totally ordered per client and give exactly-once execution.
    """

    KIND: ClassVar[Kind] = Kind.REQUEST
    client: int
    timestamp: int
    operation: bytes
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

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
class Reply(_Message):
    """<REPLY, v, t, c, i, r>: ``replica`` executed the client's request and got ``result``."""

    KIND: ClassVar[Kind] = Kind.REPLY
    view: int
    timestamp: int
    client: int
    replica: int
    result: bytes
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("timestamp", self.timestamp)
        _uint("client", self.client)
        _uint("replica", self.replica)
        _bytes("result", self.result, MAX_OPERATION_BYTES)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, timestamp, client, replica, result)``."""
        return (self.view, self.timestamp, self.client, self.replica, self.result)

    def __repr__(self) -> str:
        return (
            f"Reply(v={self.view} c={self.client} t={self.timestamp} r={self.replica} "
            f"res={short(self.result)})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class Vote(_Message):
    """voteMsg(generic, b, ⊥) of Algorithm 3: ``replica``'s partial signature on ``block_hash``.

    Sent to the leader of ``view + 1``, which combines ``n - f`` of them into a :class:`QC`.
    """

    KIND: ClassVar[Kind] = Kind.VOTE
    view: int
    block_hash: bytes
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _digest("block_hash", self.block_hash)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, block_hash, replica)``."""
        return (self.view, self.block_hash, self.replica)

    def __repr__(self) -> str:
        return f"Vote(v={self.view} b={short(self.block_hash)} r={self.replica})"


_new = object.__new__
(_r_view, _r_ts, _r_client, _r_replica, _r_result, _r_auth, _r_body, _r_wire, _r_digest,
 _r_verdict) = (Reply.__dict__[f].__set__ for f in (
    "view", "timestamp", "client", "replica", "result", "auth", "_body", "_wire", "_digest",
    "_verdict"))  # fmt: skip
(_v_view, _v_hash, _v_replica, _v_auth, _v_body, _v_wire, _v_digest, _v_verdict) = (
    Vote.__dict__[f].__set__
    for f in ("view", "block_hash", "replica", "auth", "_body", "_wire", "_digest", "_verdict")
)


def own_reply(view: int, timestamp: int, client: int, replica: int, result: bytes) -> Reply:
    """``Reply(view, timestamp, client, replica, result)`` without the field checks of its
    constructor: for the reply a replica builds from its own executed state (every value was
    checked when the request and the block were admitted), on the hot path of execution; its
    body is packed at once. The object equals the checked constructor's (a test compares
    them)."""
    r = _new(Reply)
    _r_view(r, view)
    _r_ts(r, timestamp)
    _r_client(r, client)
    _r_replica(r, replica)
    _r_result(r, result)
    _r_auth(r, b"")
    _r_body(r, codec.encode_plain((_REPLY_CODE, view, timestamp, client, replica, result)))
    _r_wire(r, None)
    _r_digest(r, None)
    _r_verdict(r, None)
    return r


def own_vote(view: int, block_hash: bytes, replica: int) -> Vote:
    """``Vote(view, block_hash, replica)`` without the field checks, for the vote a replica
    casts on a block it admitted (the view and the hash come from that block)."""
    v = _new(Vote)
    _v_view(v, view)
    _v_hash(v, block_hash)
    _v_replica(v, replica)
    _v_auth(v, b"")
    _v_body(v, codec.encode_plain((_VOTE_CODE, view, block_hash, replica)))
    _v_wire(v, None)
    _v_digest(v, None)
    _v_verdict(v, None)
    return v


@dataclass(frozen=True, slots=True, repr=False)
class QC:
    """A quorum certificate: the votes of a quorum for ``block_hash`` in ``view`` (§4.1).

    The threshold signature of the paper is modeled by the individual votes it would aggregate
    (see the module docstring). Every vote must name this QC's view and hash (checked here, so
    an inconsistent QC cannot exist); the *number*, distinctness and authenticity of the votes
    are checked by :func:`medbench.consensus.hotstuff.certificates.check_qc`.
    """

    view: int
    block_hash: bytes
    votes: tuple[Vote, ...]
    _wire: tuple[Any, ...] | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _digest("block_hash", self.block_hash)
        _tuple_of("votes", self.votes, Vote, MAX_VOTES)
        for v in self.votes:
            if v.view != self.view or v.block_hash != self.block_hash:
                raise MessageError("a QC's votes must name its view and block")

    def wire(self) -> tuple[Any, ...]:
        """``(view, block_hash, ((voter, auth), ...))`` (cached)."""
        w = self._wire
        if w is None:
            w = (self.view, self.block_hash, tuple((v.replica, v.auth) for v in self.votes))
            object.__setattr__(self, "_wire", w)
        return w

    def voters(self) -> tuple[int, ...]:
        """The replicas whose votes this QC carries, in order."""
        return tuple(v.replica for v in self.votes)

    def __repr__(self) -> str:
        return f"QC(v={self.view} b={short(self.block_hash)} n={len(self.votes)})"


def vote_body(view: int, block_hash: bytes, replica: int) -> bytes:
    """The body a vote signs: what a QC's ``(voter, auth)`` pair is checked against."""
    return codec.encode((_VOTE_CODE, view, block_hash, replica))


@dataclass(frozen=True, slots=True, repr=False)
class Block:
    """A node of the chain (§4.2, createLeaf): see the module docstring for the fields.

    ``hash`` is SHA-256 of :meth:`body`, cached. The genesis block (:data:`GENESIS`) is view 0,
    height 0; every other block must have ``parent == justify.block_hash`` and
    ``height = parent's height + 1`` (checked by the replica, not here).
    """

    view: int
    height: int
    parent: bytes
    justify: QC
    timestamp: int
    batch: tuple[Request, ...]
    proposer: int
    _body: bytes | None = _cache()
    _hash: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        _uint("height", self.height)
        _digest("parent", self.parent)
        if type(self.justify) is not QC:
            raise MessageError("justify must be a QC")
        _uint("timestamp", self.timestamp)
        _tuple_of("batch", self.batch, Request, MAX_BATCH)
        _uint("proposer", self.proposer)

    def body(self) -> bytes:
        """Canonical bytes of the block (cached): what its hash covers."""
        b = self._body
        if b is None:
            b = codec.encode(
                (
                    BLOCK_CODE,
                    self.view,
                    self.height,
                    self.parent,
                    self.justify.wire(),
                    self.timestamp,
                    tuple(r.wire() for r in self.batch),
                    self.proposer,
                )
            )
            object.__setattr__(self, "_body", b)
        return b

    @property
    def hash(self) -> bytes:
        """SHA-256 of the body (cached): the block's identity, what votes sign."""
        h = self._hash
        if h is None:
            h = sha256(self.body())
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return (
            f"Block(v={self.view} h={self.height} id={short(self.hash)} "
            f"parent={short(self.parent)} n={len(self.batch)})"
        )


GENESIS_QC_PLACEHOLDER = QC(0, ZERO_HASH, ())
GENESIS = Block(0, 0, ZERO_HASH, GENESIS_QC_PLACEHOLDER, 0, (), 0)
"""The genesis block: view 0, height 0, known to every replica, committed from the start."""
GENESIS_QC = QC(0, GENESIS.hash, ())
"""The certificate of the genesis block: no votes; the only QC of view 0 a replica accepts."""


@dataclass(frozen=True, slots=True, repr=False)
class NewView(_Message):
    """Msg(new-view, ⊥, qc_high) of Algorithm 4: ``replica`` left view ``view - 1`` and enters
    ``view``; it sends its highest QC to the leader of ``view``.

    ``vote`` is the sender's last vote when no QC it knows covers it (else ``None``): a vote sent
    to a leader that crashed is not lost, the next leader can still form that QC. ``busy`` says
    the sender has work (a request waiting, or requests in uncommitted blocks): it obliges the
    leader to propose even if the leader has none. Both are medbench additions, see
    :mod:`.pacemaker`. ``n - f`` NEW-VIEWs for one view form a *timeout certificate*, the proof
    a leader carries in a proposal that does not directly follow a QC of the previous view.
    """

    KIND: ClassVar[Kind] = Kind.NEW_VIEW
    view: int
    qc: QC
    vote: Vote | None
    busy: bool
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        _uint("view", self.view)
        if type(self.qc) is not QC:
            raise MessageError("qc must be a QC")
        if self.vote is not None and type(self.vote) is not Vote:
            raise MessageError("vote must be a Vote or None")
        if type(self.busy) is not bool:
            raise MessageError("busy must be a bool")
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(view, qc, vote wire or None, busy, replica)``."""
        vote = None if self.vote is None else self.vote.wire()
        return (self.view, self.qc.wire(), vote, self.busy, self.replica)

    def __repr__(self) -> str:
        vote = "" if self.vote is None else f" vote={self.vote.view}"
        busy = " busy" if self.busy else ""
        return f"NewView(v={self.view} qc={self.qc.view}{vote}{busy} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class Proposal(_Message):
    """msg(generic, b_new, ⊥) of Algorithm 3: the leader of ``block.view`` proposes ``block``.

    ``timeout_cert`` is empty when ``block.justify`` is the QC of the previous view (the happy
    path); otherwise it is the *timeout certificate* of ``block.view``: ``n - f`` distinct
    replicas' proofs that they left the previous view — a NEW-VIEW for ``block.view`` (it timed
    out) or a vote of ``block.view - 1`` (it voted, for whichever block). See :mod:`.pacemaker`.
    """

    KIND: ClassVar[Kind] = Kind.PROPOSAL
    block: Block
    timeout_cert: tuple[NewView | Vote, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        if type(self.block) is not Block:
            raise MessageError("block must be a Block")
        tc = self.timeout_cert
        if type(tc) is not tuple or len(tc) > MAX_VOTES:
            raise MessageError(f"timeout_cert must be a tuple of at most {MAX_VOTES} entries")
        for m in tc:
            if type(m) is not NewView and type(m) is not Vote:
                raise MessageError("a timeout certificate holds NEW-VIEWs and votes")
        _uint("replica", self.replica)
        _auth(self.auth)

    @property
    def view(self) -> int:
        """The block's view."""
        return self.block.view

    def fields(self) -> tuple[Any, ...]:
        """``(block body, (certificate entry wires...), replica)``."""
        return (self.block.body(), tuple(m.wire() for m in self.timeout_cert), self.replica)

    def __repr__(self) -> str:
        b = self.block
        tc = f" tc={len(self.timeout_cert)}" if self.timeout_cert else ""
        return (
            f"Proposal(v={b.view} h={b.height} id={short(b.hash)} qc={b.justify.view} "
            f"n={len(b.batch)}{tc} r={self.replica})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class SyncRequest(_Message):
    """Block sync: ``replica`` asks for the block ``block_hash`` and up to ``count - 1`` of its
    ancestors above height ``known_height``; an empty ``block_hash`` asks for the answering
    replica's highest QC and the chain below it (a restarted replica's first question)."""

    KIND: ClassVar[Kind] = Kind.SYNC_REQUEST
    block_hash: bytes
    known_height: int
    count: int
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        if self.block_hash != b"":
            _digest("block_hash", self.block_hash)
        _uint("known_height", self.known_height)
        _uint("count", self.count)
        if not 1 <= self.count <= MAX_SYNC_BLOCKS:
            raise MessageError(f"count must be in 1..{MAX_SYNC_BLOCKS}")
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(block_hash, known_height, count, replica)``."""
        return (self.block_hash, self.known_height, self.count, self.replica)

    def __repr__(self) -> str:
        what = short(self.block_hash) if self.block_hash else "high-qc"
        return f"SyncRequest({what} above={self.known_height} r={self.replica})"


@dataclass(frozen=True, slots=True, repr=False)
class SyncResponse(_Message):
    """Block sync answer: ``blocks`` from the asked block down (each the parent of the one
    before), and, for an empty-hash request, ``qc`` — the sender's highest QC, which certifies
    ``blocks[0]``."""

    KIND: ClassVar[Kind] = Kind.SYNC_RESPONSE
    qc: QC | None
    blocks: tuple[Block, ...]
    replica: int
    auth: Auth = b""
    _body: bytes | None = _cache()
    _wire: bytes | None = _cache()
    _digest: bytes | None = _cache()
    _verdict: object | None = _cache()

    def __post_init__(self) -> None:
        if self.qc is not None and type(self.qc) is not QC:
            raise MessageError("qc must be a QC or None")
        _tuple_of("blocks", self.blocks, Block, MAX_SYNC_BLOCKS)
        _uint("replica", self.replica)
        _auth(self.auth)

    def fields(self) -> tuple[Any, ...]:
        """``(qc or None, (block bodies...), replica)``."""
        qc = None if self.qc is None else self.qc.wire()
        return (qc, tuple(b.body() for b in self.blocks), self.replica)

    def __repr__(self) -> str:
        heights = f"{self.blocks[-1].height}..{self.blocks[0].height}" if self.blocks else "-"
        qc = "" if self.qc is None else f" qc={self.qc.view}"
        return f"SyncResponse(h={heights}{qc} r={self.replica})"


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
    """Local event: timer ``timer`` fired (``"view"`` or ``"sync"``; from a peer it is
    rejected)."""

    KIND: ClassVar[Kind] = Kind.TIMEOUT
    timer: str

    @property
    def kind(self) -> Kind:
        """:attr:`Kind.TIMEOUT`."""
        return self.KIND


Message: TypeAlias = Request | Reply | Proposal | Vote | NewView | SyncRequest | SyncResponse
WIRE_TYPES: tuple[type, ...] = (
    Request,
    Reply,
    Proposal,
    Vote,
    NewView,
    SyncRequest,
    SyncResponse,
)
