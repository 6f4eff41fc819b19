"""The requests a HotStuff replica holds until some leader orders them (its *mempool*).

Theory of operation
-------------------
Chained HotStuff changes leader every view (§5), so a client broadcasts its request to every
replica and each keeps it here, in arrival order, until it executes (:meth:`Mempool.drop`). A
leader takes the oldest requests that are neither executed already nor ordered in an uncommitted
ancestor of the block it extends (:meth:`Mempool.choose`); the arrival time of the oldest one
drives the batch delay. Each client may hold at most ``max_per_client`` waiting requests, so a
faulty or noisy client cannot fill the pool.
"""

from __future__ import annotations

from collections.abc import Container, Mapping

from medbench.consensus.hotstuff.messages import Request

Key = tuple[int, int]
"""A request's identity: ``(client, timestamp)``."""


class Mempool:
    """Waiting requests by ``(client, timestamp)``, in arrival order."""

    def __init__(self, max_per_client: int) -> None:
        self.max_per_client = max_per_client
        self.waiting: dict[Key, tuple[int, Request]] = {}  # key -> (arrival time, request)
        self.per_client: dict[int, int] = {}  # client -> its requests waiting

    def __len__(self) -> int:
        return len(self.waiting)

    def __contains__(self, key: object) -> bool:
        return key in self.waiting

    def full_for(self, client: int) -> bool:
        """The client already has ``max_per_client`` requests waiting."""
        return self.per_client.get(client, 0) >= self.max_per_client

    def add(self, req: Request, now: int) -> None:
        """Keep ``req`` (arrived at ``now``); the caller checked it and :meth:`full_for`."""
        self.waiting[(req.client, req.timestamp)] = (now, req)
        c = req.client
        self.per_client[c] = self.per_client.get(c, 0) + 1

    def drop(self, key: Key) -> None:
        """Forget a request (it executed, or it is stale)."""
        if self.waiting.pop(key, None) is not None:
            c = key[0]
            left = self.per_client[c] - 1
            if left > 0:
                self.per_client[c] = left
            else:
                del self.per_client[c]

    def choose(
        self, in_chain: Container[Key], executed: Mapping[int, int], limit: int, now: int
    ) -> tuple[list[Request], int]:
        """Up to ``limit`` requests, oldest first, not in ``in_chain`` and newer than the
        client's last executed timestamp (``executed``), with the arrival time of the oldest
        (``now`` if none). Stale requests met on the way are dropped."""
        out: list[Request] = []
        oldest = now
        stale: list[Key] = []
        for key, (arrived, req) in self.waiting.items():
            if key[1] <= executed.get(key[0], 0):
                stale.append(key)
                continue
            if key in in_chain:
                continue
            if not out:
                oldest = arrived
            out.append(req)
            if len(out) >= limit:
                break
        for key in stale:
            self.drop(key)
        return out, oldest
