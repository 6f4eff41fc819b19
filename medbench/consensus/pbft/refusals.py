"""What a replica refused, per client: the memory behind "a request shown as refused never commits".

Theory of operation
-------------------
A replica that refuses an authentic request (its validator said no) answers the client with an
authenticated refusal, persists it like a vote, and from then on never prepares, proposes or
re-judges that ``(client, timestamp)``: a client that collected refusals from a refusal quorum
has f+1 honest refusers among them, so the request can never gather a prepared certificate (see
:mod:`.client`). That argument needs the memory to hold **every** refusal a client could have been
shown, not only the newest one: a replica that forgot the refusal of an older timestamp because a
newer one came would judge the old request afresh and could prepare it (defect 5 of issue 13).

So the refusals are kept per client and per timestamp, for the timestamps above the client's last
executed one (a request at or below it is never executed again: exactly-once by timestamp, so its
refusal is spent when a newer request of the client executes, :meth:`Refusals.executed`). Memory
is bounded by a *refusal window* of ``window`` timestamps per client: when a client has more
refusals outstanding, the oldest is dropped and its timestamp becomes the client's *refusal
floor* — every request of that client at or below the floor counts as refused. Nothing is ever
re-judged, whatever a client sends; an honest client, which has one request outstanding at a time
and gives up a refused one before sending the next, never reaches back below its floor.

The structure is a pure function of the refusals added and the executions reported, in order, so a
replica rebuilt from its persisted records reaches the same refusals and the same floors.
"""

from __future__ import annotations

from collections.abc import Iterator

from medbench.consensus.pbft.messages import Reply

DEFAULT_WINDOW = 256
"""Refusals kept per client before the oldest becomes the client's floor."""


class Refusals:
    """Refusals per client above its last executed timestamp (see the module docstring)."""

    __slots__ = ("_by_client", "_floor", "window")

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("the refusal window holds at least one refusal")
        self.window = window
        self._by_client: dict[int, dict[int, Reply]] = {}
        self._floor: dict[int, int] = {}

    def reply(self, client: int, timestamp: int) -> Reply | None:
        """The refusal this replica sent for ``(client, timestamp)``, if it still holds it."""
        held = self._by_client.get(client)
        return None if held is None else held.get(timestamp)

    def refused(self, client: int, timestamp: int) -> bool:
        """True when this replica refused ``(client, timestamp)``: held, or at or below the
        client's floor."""
        if timestamp <= self._floor.get(client, 0):
            return True
        held = self._by_client.get(client)
        return held is not None and timestamp in held

    def add(self, reply: Reply) -> bool:
        """Remember the refusal ``reply``; ``False`` if it was already known."""
        c, t = reply.client, reply.timestamp
        if self.refused(c, t):
            return False
        held = self._by_client.setdefault(c, {})
        held[t] = reply
        if len(held) > self.window:
            oldest = min(held)
            del held[oldest]
            self._floor[c] = max(self._floor.get(c, 0), oldest)
        return True

    def executed(self, client: int, timestamp: int) -> None:
        """A request of ``client`` at ``timestamp`` executed: refusals at or below it are spent
        (exactly-once by timestamp already stops those requests)."""
        held = self._by_client.get(client)
        if held is not None:
            for t in [t for t in held if t <= timestamp]:
                del held[t]
            if not held:
                del self._by_client[client]
        if self._floor.get(client, 0) <= timestamp:
            self._floor.pop(client, None)

    def clients(self) -> Iterator[int]:
        """The clients with refusals held."""
        return iter(self._by_client)

    def __contains__(self, client: object) -> bool:
        return client in self._by_client or client in self._floor

    def __len__(self) -> int:
        """Refusals held (floors not counted)."""
        return sum(len(held) for held in self._by_client.values())


__all__ = ["DEFAULT_WINDOW", "Refusals"]
