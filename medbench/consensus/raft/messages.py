"""Raft messages: frozen slotted dataclasses, one :class:`Kind` enum, one canonical encoding.

Theory of operation
-------------------
The RPCs of Raft (Ongaro & Ousterhout, USENIX ATC 2014, extended version: Figure 2 and §7,
Figure 13) are messages here, each request and its response a pair: RequestVote (§5.2),
AppendEntries (§5.3, also the heartbeat), InstallSnapshot (§7). Clients send REQUESTs and get
REPLYs (§8).

Raft tolerates crashes, not lies: its messages carry **no authenticator**. A message's wire form
is its body, ``encode((code, field_1, ..., field_k))`` (:mod:`medbench.codec`), computed once and
cached. Construction validates field types and ranges, so an ill-typed message cannot exist, and
:func:`medbench.consensus.raft.wire.decode_message` refuses malformed or oversized bytes with
:class:`MessageError` — but a well-formed message is believed whoever sent it (that is the point of
comparing Raft with the BFT protocols; ``tests/raft`` shows a lying node breaking safety).

A log :class:`Entry` is ``(term, index, request)``; ``request`` is ``None`` for the no-op entry a
new leader appends (§8). Local events (a client's SUBMIT, a TIMEOUT) are kinds too, listed in
:data:`LOCAL_KINDS`; they have no wire code and a node rejects them from a peer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from medbench import codec
from medbench.hashing import sha256

DIGEST_SIZE = 32
MAX_U63 = (1 << 63) - 1
MAX_OPERATION_BYTES = 1 << 20
MAX_ENTRIES = 1 << 16
MAX_SNAPSHOT_CLIENTS = 1 << 20
NO_NODE = -1


class Kind(StrEnum):
    """Every message kind; the value is the short name metrics count messages by."""

    REQUEST = "request"
    REPLY = "reply"
    REQUEST_VOTE = "request-vote"
    REQUEST_VOTE_RESPONSE = "request-vote-response"
    APPEND_ENTRIES = "append-entries"
    APPEND_ENTRIES_RESPONSE = "append-entries-response"
    INSTALL_SNAPSHOT = "install-snapshot"
    INSTALL_SNAPSHOT_RESPONSE = "install-snapshot-response"
    SUBMIT = "submit"
    TIMEOUT = "timeout"


LOCAL_KINDS: frozenset[Kind] = frozenset({Kind.SUBMIT, Kind.TIMEOUT})
"""Kinds that only the node's own driver may deliver (``src == node_id``), never a peer."""

WIRE_CODES: dict[Kind, int] = {
    Kind.REQUEST: 1,
    Kind.REPLY: 2,
    Kind.REQUEST_VOTE: 3,
    Kind.REQUEST_VOTE_RESPONSE: 4,
    Kind.APPEND_ENTRIES: 5,
    Kind.APPEND_ENTRIES_RESPONSE: 6,
    Kind.INSTALL_SNAPSHOT: 7,
    Kind.INSTALL_SNAPSHOT_RESPONSE: 8,
}


class MessageError(ValueError):
    """A message is malformed: bad bytes from a peer, or a bad field given to a constructor."""


def _uint(name: str, value: object) -> None:
    if type(value) is not int or not 0 <= value <= MAX_U63:
        raise MessageError(f"{name} must be an integer in 0..2^63-1, got {value!r}")


def _node(name: str, value: object) -> None:
    if type(value) is not int or not NO_NODE <= value <= MAX_U63:
        raise MessageError(f"{name} must be a node id or -1, got {value!r}")


def _bytes(name: str, value: object, limit: int) -> None:
    if type(value) is not bytes or len(value) > limit:
        raise MessageError(f"{name} must be at most {limit} bytes")


def _bool(name: str, value: object) -> None:
    if type(value) is not bool:
        raise MessageError(f"{name} must be a bool")


def short(data: bytes) -> str:
    """The first 8 hex digits of ``data``, for readable reprs and traces."""
    return data[:4].hex()


def _cache() -> Any:
    return field(default=None, init=False, repr=False, compare=False)


class _Message:
    """Behaviour shared by every wire message (a mixin for the slotted dataclasses below)."""

    __slots__ = ()
    KIND: ClassVar[Kind]
    _body: bytes | None

    @property
    def kind(self) -> Kind:
        """This message's :class:`Kind`."""
        return self.KIND

    def fields(self) -> tuple[Any, ...]:
        """The fixed-order fields of the body."""
        raise NotImplementedError

    def body(self) -> bytes:
        """Canonical bytes of ``(code, fields...)`` (cached)."""
        b = self._body
        if b is None:
            b = codec.encode((WIRE_CODES[self.KIND], *self.fields()))
            object.__setattr__(self, "_body", b)
        return b

    def encode(self) -> bytes:
        """The wire bytes: the body (Raft messages carry no authenticator)."""
        return self.body()


@dataclass(frozen=True, slots=True, repr=False)
class Request(_Message):
    """A client's command: ``client`` asks for ``operation`` with timestamp ``timestamp``.

    Client timestamps (the paper's serial numbers, §8) are increasing per client and give
    exactly-once execution.
    """

    KIND: ClassVar[Kind] = Kind.REQUEST
    client: int
    timestamp: int
    operation: bytes
    _body: bytes | None = _cache()
    _digest: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("client", self.client)
        _uint("timestamp", self.timestamp)
        _bytes("operation", self.operation, MAX_OPERATION_BYTES)

    def fields(self) -> tuple[Any, ...]:
        """``(client, timestamp, operation)``."""
        return (self.client, self.timestamp, self.operation)

    def digest(self) -> bytes:
        """SHA-256 of the body (cached): the request's ID."""
        d = self._digest
        if d is None:
            d = sha256(self.body())
            object.__setattr__(self, "_digest", d)
        return d

    def __repr__(self) -> str:
        return f"Request(c={self.client} t={self.timestamp} id={short(self.digest())})"


@dataclass(frozen=True, slots=True, repr=False)
class Reply(_Message):
    """The answer to a request: ``result`` if ``ok``; otherwise ``replica`` is not the leader
    and ``leader`` is its best guess of who is (``-1``: unknown)."""

    KIND: ClassVar[Kind] = Kind.REPLY
    client: int
    timestamp: int
    replica: int
    ok: bool
    result: bytes
    leader: int
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("client", self.client)
        _uint("timestamp", self.timestamp)
        _uint("replica", self.replica)
        _bool("ok", self.ok)
        _bytes("result", self.result, MAX_OPERATION_BYTES)
        _node("leader", self.leader)

    def fields(self) -> tuple[Any, ...]:
        """``(client, timestamp, replica, ok, result, leader)``."""
        return (self.client, self.timestamp, self.replica, self.ok, self.result, self.leader)

    def __repr__(self) -> str:
        what = f"res={short(self.result)}" if self.ok else f"not-leader hint={self.leader}"
        return f"Reply(c={self.client} t={self.timestamp} r={self.replica} {what})"


@dataclass(frozen=True, slots=True, repr=False)
class Entry:
    """A log entry (Figure 2): the term it was created in, its index, and the client request
    (``None``: the leader's no-op of §8)."""

    term: int
    index: int
    request: Request | None
    _wire: tuple[Any, ...] | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("index", self.index)
        if self.index == 0:
            raise MessageError("log indices start at 1")
        if self.request is not None and type(self.request) is not Request:
            raise MessageError("an entry holds a Request or None")

    def wire(self) -> tuple[Any, ...]:
        """``(term, index, (client, timestamp, operation) or None)`` (cached)."""
        w = self._wire
        if w is None:
            r = self.request
            w = (self.term, self.index, None if r is None else r.fields())
            object.__setattr__(self, "_wire", w)
        return w

    def __repr__(self) -> str:
        what = "no-op" if self.request is None else repr(self.request)
        return f"Entry(t={self.term} i={self.index} {what})"


@dataclass(frozen=True, slots=True, repr=False)
class RequestVote(_Message):
    """RequestVote RPC (§5.2): ``candidate`` asks for a vote in ``term``."""

    KIND: ClassVar[Kind] = Kind.REQUEST_VOTE
    term: int
    candidate: int
    last_log_index: int
    last_log_term: int
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("candidate", self.candidate)
        _uint("last_log_index", self.last_log_index)
        _uint("last_log_term", self.last_log_term)

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.candidate

    def fields(self) -> tuple[Any, ...]:
        """``(term, candidate, last_log_index, last_log_term)``."""
        return (self.term, self.candidate, self.last_log_index, self.last_log_term)

    def __repr__(self) -> str:
        return (
            f"RequestVote(t={self.term} c={self.candidate} "
            f"last={self.last_log_index}/{self.last_log_term})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class RequestVoteResponse(_Message):
    """RequestVote results (§5.2): ``voter``'s answer in ``term``."""

    KIND: ClassVar[Kind] = Kind.REQUEST_VOTE_RESPONSE
    term: int
    voter: int
    granted: bool
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("voter", self.voter)
        _bool("granted", self.granted)

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.voter

    def fields(self) -> tuple[Any, ...]:
        """``(term, voter, granted)``."""
        return (self.term, self.voter, self.granted)

    def __repr__(self) -> str:
        return f"RequestVoteResponse(t={self.term} v={self.voter} granted={self.granted})"


@dataclass(frozen=True, slots=True, repr=False)
class AppendEntries(_Message):
    """AppendEntries RPC (§5.3): ``leader`` replicates ``entries`` after
    ``(prev_log_index, prev_log_term)``; with no entries it is a heartbeat (§5.2)."""

    KIND: ClassVar[Kind] = Kind.APPEND_ENTRIES
    term: int
    leader: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("leader", self.leader)
        _uint("prev_log_index", self.prev_log_index)
        _uint("prev_log_term", self.prev_log_term)
        e = self.entries
        if type(e) is not tuple or len(e) > MAX_ENTRIES:
            raise MessageError(f"entries must be a tuple of at most {MAX_ENTRIES} entries")
        for k, entry in enumerate(e):
            if type(entry) is not Entry:
                raise MessageError("entries must be Entry objects")
            if entry.index != self.prev_log_index + 1 + k:
                raise MessageError("entries must follow prev_log_index without gaps")
        _uint("leader_commit", self.leader_commit)

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.leader

    def fields(self) -> tuple[Any, ...]:
        """``(term, leader, prev_log_index, prev_log_term, (entry wires...), leader_commit)``."""
        return (
            self.term,
            self.leader,
            self.prev_log_index,
            self.prev_log_term,
            tuple(e.wire() for e in self.entries),
            self.leader_commit,
        )

    def __repr__(self) -> str:
        e = self.entries
        what = f"{e[0].index}..{e[-1].index}" if e else "heartbeat"
        return (
            f"AppendEntries(t={self.term} l={self.leader} prev={self.prev_log_index}/"
            f"{self.prev_log_term} {what} commit={self.leader_commit})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class AppendEntriesResponse(_Message):
    """AppendEntries results (§5.3). On ``success``, ``index`` is the last index now known to
    match the leader's log. On failure, ``index`` is the ``prev_log_index`` that failed the
    consistency check (so the leader can tell a stale rejection) and ``hint`` the next index
    to try (the conflict-term optimisation at the end of §5.3)."""

    KIND: ClassVar[Kind] = Kind.APPEND_ENTRIES_RESPONSE
    term: int
    follower: int
    success: bool
    index: int
    hint: int
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("follower", self.follower)
        _bool("success", self.success)
        _uint("index", self.index)
        _uint("hint", self.hint)

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.follower

    def fields(self) -> tuple[Any, ...]:
        """``(term, follower, success, index, hint)``."""
        return (self.term, self.follower, self.success, self.index, self.hint)

    def __repr__(self) -> str:
        what = (
            f"ok match={self.index}" if self.success else f"reject at={self.index} hint={self.hint}"
        )
        return f"AppendEntriesResponse(t={self.term} f={self.follower} {what})"


(_a_term, _a_follower, _a_success, _a_index, _a_hint, _a_body) = (
    AppendEntriesResponse.__dict__[f].__set__
    for f in ("term", "follower", "success", "index", "hint", "_body")
)
_AER_CODE = WIRE_CODES[Kind.APPEND_ENTRIES_RESPONSE]


def own_append_response(
    term: int, follower: int, success: bool, index: int, hint: int
) -> AppendEntriesResponse:
    """``AppendEntriesResponse(...)`` without the field checks of its constructor, its body
    packed at once: for the answer a node builds from its own term and log on every
    AppendEntries (the hot path of replication). The object equals the checked constructor's
    (a test compares them)."""
    m = object.__new__(AppendEntriesResponse)
    _a_term(m, term)
    _a_follower(m, follower)
    _a_success(m, success)
    _a_index(m, index)
    _a_hint(m, hint)
    _a_body(m, codec.encode_plain((_AER_CODE, term, follower, success, index, hint)))
    return m


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The replicated state up to ``last_index`` (§7, Figure 12): the log prefix it replaces
    ends at ``(last_index, last_term)``; ``state_digest`` chains every applied entry and
    ``clients`` is the exactly-once table ``((client, timestamp, result), ...)``."""

    last_index: int
    last_term: int
    state_digest: bytes
    applied: int
    clients: tuple[tuple[int, int, bytes], ...]

    def __post_init__(self) -> None:
        _uint("last_index", self.last_index)
        _uint("last_term", self.last_term)
        if type(self.state_digest) is not bytes or len(self.state_digest) != DIGEST_SIZE:
            raise MessageError("state_digest must be 32 bytes")
        _uint("applied", self.applied)
        c = self.clients
        if type(c) is not tuple or len(c) > MAX_SNAPSHOT_CLIENTS:
            raise MessageError("clients must be a tuple")
        prev = -1
        for row in c:
            if type(row) is not tuple or len(row) != 3:
                raise MessageError("a client row is (client, timestamp, result)")
            _uint("client", row[0])
            _uint("timestamp", row[1])
            _bytes("result", row[2], MAX_OPERATION_BYTES)
            if row[0] <= prev:
                raise MessageError("client rows must be sorted and unique")
            prev = row[0]

    def wire(self) -> tuple[Any, ...]:
        """``(last_index, last_term, state_digest, applied, clients)``."""
        return (self.last_index, self.last_term, self.state_digest, self.applied, self.clients)


EMPTY_SNAPSHOT = Snapshot(0, 0, bytes(DIGEST_SIZE), 0, ())
"""The state before any entry: index 0, term 0."""


@dataclass(frozen=True, slots=True, repr=False)
class InstallSnapshot(_Message):
    """InstallSnapshot RPC (§7, Figure 13), in one piece (no ``offset``/``done`` chunks)."""

    KIND: ClassVar[Kind] = Kind.INSTALL_SNAPSHOT
    term: int
    leader: int
    snapshot: Snapshot
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("leader", self.leader)
        if type(self.snapshot) is not Snapshot:
            raise MessageError("snapshot must be a Snapshot")

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.leader

    def fields(self) -> tuple[Any, ...]:
        """``(term, leader, snapshot)``."""
        return (self.term, self.leader, self.snapshot.wire())

    def __repr__(self) -> str:
        s = self.snapshot
        return f"InstallSnapshot(t={self.term} l={self.leader} upto={s.last_index}/{s.last_term})"


@dataclass(frozen=True, slots=True, repr=False)
class InstallSnapshotResponse(_Message):
    """InstallSnapshot results: ``follower`` now holds everything up to ``last_index``."""

    KIND: ClassVar[Kind] = Kind.INSTALL_SNAPSHOT_RESPONSE
    term: int
    follower: int
    last_index: int
    _body: bytes | None = _cache()

    def __post_init__(self) -> None:
        _uint("term", self.term)
        _uint("follower", self.follower)
        _uint("last_index", self.last_index)

    @property
    def sender(self) -> int:
        """The node that sent this message."""
        return self.follower

    def fields(self) -> tuple[Any, ...]:
        """``(term, follower, last_index)``."""
        return (self.term, self.follower, self.last_index)

    def __repr__(self) -> str:
        return f"InstallSnapshotResponse(t={self.term} f={self.follower} upto={self.last_index})"


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
    """Local event: timer ``timer`` fired (``"election"`` or ``"heartbeat"``; from a peer it is
    rejected)."""

    KIND: ClassVar[Kind] = Kind.TIMEOUT
    timer: str

    @property
    def kind(self) -> Kind:
        """:attr:`Kind.TIMEOUT`."""
        return self.KIND


PeerMessage: TypeAlias = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | InstallSnapshot
    | InstallSnapshotResponse
)
Message: TypeAlias = Request | Reply | PeerMessage
WIRE_TYPES: tuple[type, ...] = (
    Request,
    Reply,
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
)
