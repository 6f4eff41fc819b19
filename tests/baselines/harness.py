"""A small deterministic in-process driver for the baseline tests (the simulator replaces it).

Events sit in a heap ordered by ``(time, seq)``; each link has a fixed latency (a constant or a
function of ``(src, dst)``); nodes are ticked at their ``next_deadline()``. For each ``Ready``
the driver delivers ``messages`` and then records ``committed``, ``completed`` and ``notes`` (the
baselines keep no stable storage, so ``persist`` is always empty). Crashed nodes neither receive
nor tick.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medbench.consensus.baselines.common import Submit
from medbench.node import Committed, Ready


@dataclass
class Record:
    """Everything the harness saw."""

    committed: dict[int, list[tuple[int, Committed]]] = field(default_factory=dict)
    completed: dict[int, list[tuple[int, Any]]] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)
    note_log: list[tuple[int, int, Any]] = field(default_factory=list)
    messages: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0


class Harness:
    """Run ``nodes`` with per-link ``latency_us``; all order fixed by (time, seq)."""

    def __init__(
        self,
        nodes: list[Any],
        latency_us: int | Callable[[int, int], int] = 10_000,
        measure_bytes: bool = False,
        intercept: Callable[[int, int, Any], Any] | None = None,
    ) -> None:
        self.nodes = nodes
        self.latency = latency_us if callable(latency_us) else (lambda s, d: latency_us)
        self.measure_bytes = measure_bytes
        self.intercept = intercept  # may replace or drop (return None) a message in flight
        self.now = 0
        self.seq = 0
        self.heap: list[tuple[int, int, str, int, Any]] = []
        self.scheduled: dict[int, int | None] = {}
        self.crashed: set[int] = set()
        self.record = Record()
        for node in nodes:
            self._push(0, "tick", node.node_id, None)

    def _push(self, t: int, kind: str, dst: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, dst, payload))

    def submit(self, node_id: int, tx_id: bytes, size: int, at: int) -> None:
        """A client hands a transaction to ``node_id`` at time ``at``."""
        self._push(at, "local", node_id, Submit(tx_id, size, at))

    def deliver(self, src: int, dst: int, msg: Any, at: int) -> None:
        """Inject ``msg`` from ``src`` to ``dst`` at time ``at`` (for hostile-input tests)."""
        self._push(at, "msg", dst, (src, msg))

    def crash(self, node_id: int) -> None:
        """From now on ``node_id`` receives nothing and is never ticked."""
        self.crashed.add(node_id)

    def _handle(self, node_id: int, ready: Ready) -> None:
        for send in ready.messages:
            if self.measure_bytes:
                self.record.bytes_sent += len(send.msg.encode()) * len(send.dsts)
            self.record.messages[send.msg.kind] += len(send.dsts)
            for dst in send.dsts:
                msg = send.msg
                if self.intercept is not None:
                    msg = self.intercept(node_id, dst, msg)
                    if msg is None:
                        continue
                self._push(self.now + self.latency(node_id, dst), "msg", dst, (node_id, msg))
        for c in ready.committed:
            self.record.committed.setdefault(node_id, []).append((self.now, c))
        for c in ready.completed:
            self.record.completed.setdefault(node_id, []).append((self.now, c))
        for note in ready.notes:
            self.record.notes[note.kind] += 1
            self.record.note_log.append((self.now, node_id, note))
        self._reschedule(node_id)

    def _reschedule(self, node_id: int) -> None:
        deadline = self.nodes[node_id].next_deadline()
        if deadline is not None and self.scheduled.get(node_id) != deadline:
            self.scheduled[node_id] = deadline
            self._push(max(deadline, self.now), "tick", node_id, deadline)

    def run(self, until_us: int, max_events: int = 2_000_000) -> Record:
        """Process events up to time ``until_us`` (bounded by ``max_events``)."""
        for _ in range(max_events):
            if not self.heap or self.heap[0][0] > until_us:
                break
            t, _, kind, dst, payload = heapq.heappop(self.heap)
            self.now = t
            if dst in self.crashed:
                continue
            node = self.nodes[dst]
            if kind == "tick":
                if payload is not None and self.scheduled.get(dst) != payload:
                    continue  # superseded timer
                self.scheduled[dst] = None
                ready = node.tick(t)
            elif kind == "local":
                ready = node.step(dst, payload)
            else:
                src, msg = payload
                ready = node.step(src, msg)
            self._handle(dst, ready)
        else:
            raise AssertionError("harness event budget exhausted")
        self.now = until_us
        return self.record

    def committed_ids(self, node_id: int) -> list[bytes]:
        """Block IDs committed by ``node_id``, in order (later re-commits overwrite)."""
        by_seq: dict[int, bytes] = {}
        for _, c in self.record.committed.get(node_id, []):
            by_seq[c.sequence] = c.payload.block_id
        return [by_seq[k] for k in sorted(by_seq)]
