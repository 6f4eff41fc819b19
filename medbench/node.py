"""The node interface every protocol implements, and the value a step returns.

Theory of operation
-------------------
A protocol node (a PBFT replica, a PBFT client, a proof-of-work miner, a central relay, ...) is a
pure state machine in the style of etcd raft's ``RawNode``: it owns no clock, socket, random module
or database. A *driver* (the discrete-event simulator in :mod:`medbench.sim`, or the asyncio TCP
runtime) feeds it two kinds of input:

* ``step(src, msg)`` — a message ``msg`` arrived from node ``src`` (or, for local events such as a
  client submitting a request, from ``src == node_id``);
* ``tick(now)`` — the driver's clock reads ``now`` integer microseconds; nodes fire their timers
  from it.

Each call returns one :class:`Ready`. The driver's duty, in this order: write ``persist`` to stable
storage, then deliver ``messages``, then hand ``committed`` and ``completed`` to the application
and metrics, and count ``notes``. Persist before sending, so a crash never lets a node contradict
a message it already sent.

Every identical message to many destinations is one :class:`Send` with a tuple of destinations, so
a broadcast is one object: the driver sizes and encodes it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``msg`` to every node in ``dsts``."""

    dsts: tuple[int, ...]
    msg: Any


@dataclass(frozen=True, slots=True)
class Committed:
    """One decision, in order: ``sequence`` is the position in the node's total order."""

    sequence: int
    payload: Any


@dataclass(frozen=True, slots=True)
class Note:
    """A counted event that metrics care about: a rejection and its reason, a view change, ..."""

    kind: str
    detail: Any = None


@dataclass(slots=True)
class Ready:
    """Everything one ``step`` or ``tick`` asks of its driver (see the module docstring)."""

    messages: list[Send] = field(default_factory=list)
    persist: list[Any] = field(default_factory=list)
    committed: list[Committed] = field(default_factory=list)
    completed: list[Any] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def extend(self, other: Ready) -> Ready:
        """Append ``other``'s outputs to this one (keeping order) and return ``self``."""
        self.messages.extend(other.messages)
        self.persist.extend(other.persist)
        self.committed.extend(other.committed)
        self.completed.extend(other.completed)
        self.notes.extend(other.notes)
        return self

    def __bool__(self) -> bool:
        return bool(self.messages or self.persist or self.committed or self.completed or self.notes)


@runtime_checkable
class Node(Protocol):
    """What a driver needs from a protocol node."""

    node_id: int

    def step(self, src: int, msg: Any) -> Ready:
        """Handle one message from ``src``; never raise on bad input from a peer."""
        ...

    def tick(self, now: int) -> Ready:
        """The driver's clock reads ``now`` microseconds; fire due timers."""
        ...


@runtime_checkable
class Message(Protocol):
    """What a driver needs from a message: its kind and its canonical encoding."""

    @property
    def kind(self) -> str:
        """A short name used to count messages by type."""
        ...

    def encode(self) -> bytes:
        """Canonical bytes (:mod:`medbench.codec`); their length is the message's wire size."""
        ...
