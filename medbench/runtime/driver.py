"""The driver loop shared by node and load-generator processes: rounds of steps, one commit, sends.

Theory of operation
-------------------
The sans-IO nodes (:mod:`medbench.node`) run on one asyncio event loop. Incoming frames wait in
their connection's inbox (:mod:`.transport`); a *round* (:meth:`Driver.run_round`) then:

1. opens one storage group (:meth:`medbench.store.NodeStore.group`: every write of the round is
   one SQLite transaction);
2. steps the local deliveries (a node's messages to itself, to its hospital client), then the
   inboxes fairly: connections in arrival order, at most ``quota`` frames each, at most
   ``budget`` frames per round; each frame is decoded with the codec's bounded decoder (a bad
   one is counted against its connection) and its source id checked against the ids the
   connection's certificate names;
3. ticks every local node with the monotonic clock (:class:`Clock`);
4. persists what the round's outputs ask (:meth:`Driver.persist`) and **commits** — one fsync
   for the whole round under ``synchronous=FULL`` (group commit);
5. only then hands the messages to the links (each broadcast encoded once), the decisions and
   completions to the application and metrics, and flushes every link (one write per link).

Persist-before-send therefore holds message by message (nothing a round produced leaves before
its records are durable) while a busy node pays one commit per round, not one per step. Rounds
follow each other as long as inboxes hold frames (yielding to the loop in between, so sockets
are read); an idle driver still ticks every ``tick_ms`` for timers.

Batching follows from rounds: the runtime runs PBFT with ``max_batch_delay_us = 1``, so requests
stepped in one round wait in the primary's queue until the round's tick, which proposes them as
one batch (at most ``max_batch_size``): one request per batch at low load, larger batches exactly
when requests arrive faster than rounds complete (the adaptive batching of BFT-SMaRt's and
Castro's implementations).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

from medbench.consensus import hotstuff, raft
from medbench.consensus.pbft.messages import Reply
from medbench.node import Ready
from medbench.runtime.framing import FrameError, decode_payload, message_frame
from medbench.runtime.transport import OPEN, Network


class Clock:
    """Microseconds since the consortium's epoch, advanced by the monotonic clock.

    The wall clock is read once, at start, to place the epoch; from then on only
    ``time.monotonic_ns`` moves the reading, so it never runs back within a process. Processes
    on one host share the monotonic clock; on different hosts their readings agree as well as
    their wall clocks did at start (PBFT's agreed time tolerates ``max_clock_skew_us``).
    """

    def __init__(self, epoch_unix_us: int) -> None:
        self._mono0 = time.monotonic_ns()
        self._base = time.time_ns() // 1000 - epoch_unix_us
        self._last = 0

    def now_us(self) -> int:
        """The current reading (strictly increasing between calls)."""
        t = self._base + (time.monotonic_ns() - self._mono0) // 1000
        if t <= self._last:
            t = self._last + 1
        self._last = t
        return t


class Driver:
    """Rounds over local nodes and a :class:`Network` (see the module docstring)."""

    budget = 512
    quota = 64
    round_ms = 20.0

    def __init__(self, clock: Clock, tick_ms: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.clock = clock
        self.tick_s = tick_ms / 1000.0
        self.nodes: dict[int, Any] = {}
        self.local: deque[tuple[int, int, Any]] = deque()
        self.net: Network | None = None
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self.rejections: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.sent_msgs: Counter[str] = Counter()
        self.sent_bytes: Counter[str] = Counter()
        self.rounds = 0
        self.steps = 0
        self.round_steps_max = 0
        self.stopped = False
        self.startup: list[tuple[int, Ready]] = []  # outputs to deliver with the first round
        self.timing: dict[str, float] = {"step": 0.0, "persist+commit": 0.0, "deliver": 0.0}

    # --- hooks for subclasses --------------------------------------------------------------------
    def dispatch(self, src: int, msg: Any) -> int | None:
        """The local node that handles ``msg`` (``None``: none)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """The storage group of one round (none by default)."""
        yield

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        """Write what ``outputs`` ask to persist, inside the round's group."""

    def output(self, node_id: int, ready: Ready) -> None:
        """Decisions, completions and notes of one output (after the commit)."""

    # --- scheduling ------------------------------------------------------------------------------
    def wake(self) -> None:
        """Run a round soon (new frames or a local delivery)."""
        if not self._scheduled and not self.stopped:
            self._scheduled = True
            self.loop.call_soon(self._run)

    def start(self) -> None:
        """Start the periodic tick timer."""
        self._arm()

    def stop(self) -> None:
        """No more rounds."""
        self.stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def _arm(self) -> None:
        """A periodic timer (never re-armed by rounds): an idle driver still ticks."""
        if not self.stopped:
            self._timer = self.loop.call_later(self.tick_s, self._periodic)

    def _periodic(self) -> None:
        self.wake()
        self._arm()

    def _run(self) -> None:
        self._scheduled = False
        if self.stopped:
            return
        self.run_round()
        net = self.net
        if self.local or (net is not None and net.queue):
            self.wake()

    # --- one round -------------------------------------------------------------------------------
    def run_round(self) -> None:
        """One round (see the module docstring)."""
        outs: list[tuple[int, Ready]] = []
        if self.startup:
            outs, self.startup = self.startup, []
        nodes = self.nodes
        net = self.net
        steps = 0
        t0 = time.perf_counter()
        deadline = t0 + self.round_ms / 1000.0
        busy = bool(self.local or outs or (net is not None and net.queue))
        # an idle round (timers only) needs no group: whatever its tick persists is committed by
        # the store call itself, still before anything is sent
        with self.group() if busy else contextlib.nullcontext():
            local = self.local
            for _ in range(len(local)):
                src, dst, msg = local.popleft()
                node = nodes.get(dst)
                if node is not None:
                    outs.append((dst, node.step(src, msg)))
                    steps += 1
            if net is not None:
                queue = net.queue
                quota = self.quota
                while queue and steps < self.budget and time.perf_counter() < deadline:
                    conn = queue.popleft()
                    conn.queued = False
                    if conn.state != OPEN:
                        continue
                    inbox = conn.inbox
                    cut = net.dropped_from(conn)
                    ids = conn.ids
                    take = conn.take
                    for _ in range(min(len(inbox), quota)):
                        kind, src, payload = take()
                        if cut:
                            net.drops["fault-in"] += 1
                            continue
                        if src not in ids:
                            conn.bad_frame("spoofed-source")
                            continue
                        try:
                            msg = decode_payload(kind, payload)
                        except FrameError as exc:
                            conn.bad_frame(exc.reason)
                            continue
                        target = self.dispatch(src, msg)
                        if target is None:
                            self.rejections["no-local-destination"] += 1
                            continue
                        outs.append((target, nodes[target].step(src, msg)))
                        steps += 1
                    conn.consumed()
                    if inbox and conn.state == OPEN:
                        net.ready(conn)
            now = self.clock.now_us()
            for nid, node in nodes.items():
                outs.append((nid, node.tick(now)))
            t1 = time.perf_counter()
            self.persist(outs)
        t2 = time.perf_counter()
        timing = self.timing
        timing["step"] += t1 - t0
        timing["persist+commit"] += t2 - t1
        self.rounds += 1
        self.steps += steps
        if steps > self.round_steps_max:
            self.round_steps_max = steps
        self._deliver(outs)
        timing["deliver"] += time.perf_counter() - t2

    def _deliver(self, outs: list[tuple[int, Ready]]) -> None:
        net = self.net
        nodes = self.nodes
        sent_msgs, sent_bytes = self.sent_msgs, self.sent_bytes
        for nid, ready in outs:
            if not ready:
                continue
            for send in ready.messages:
                msg = send.msg
                data = message_frame(nid, msg)
                kind = str(msg.kind)
                for dst in send.dsts:
                    if dst == nid:
                        continue
                    sent_msgs[kind] += 1
                    sent_bytes[kind] += len(data)
                    if dst in nodes:
                        self.local.append((nid, dst, msg))
                    elif net is not None:
                        net.send(dst, data)
            for note in ready.notes:
                self.notes[note.kind] += 1
                if note.kind == "reject" and isinstance(note.detail, tuple):
                    self.rejections[str(note.detail[-1])[:60]] += 1
            self.output(nid, ready)
        if net is not None:
            net.flush()


REPLY_TYPES = frozenset({Reply, hotstuff.Reply, raft.Reply})
"""The client-bound REPLY of each protocol the runtime drives."""


def reply_target(msg: Any, local_clients: frozenset[int] | set[int]) -> int | None:
    """The local client a REPLY (of any protocol) is for, if any."""
    if type(msg) in REPLY_TYPES and msg.client in local_clients:
        return int(msg.client)
    return None
