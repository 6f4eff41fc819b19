"""The deterministic discrete-event driver of protocol nodes.

Theory of operation
-------------------
The simulator owns a virtual clock in integer microseconds and one event heap of tuples
``(time, priority, sequence, data)``. ``sequence`` is a counter, so events at the same time and
priority run in the order they were scheduled and every run of the same inputs is identical.
Priorities at one instant: faults and callbacks (0), local inputs such as client submissions (1),
message deliveries (2), CPU wake-ups (3), the periodic tick (4).

**Nodes** implement :class:`medbench.node.Node`; node ``i`` of the list must have ``node_id == i``.
The driver carries out a :class:`~medbench.node.Ready` in the order the interface demands:
``persist`` is appended to the node's stable storage (a list that survives crashes and is handed
to the recovery factory), then ``messages`` leave, then ``committed``/``completed`` are recorded,
and ``notes`` are counted.

**Network.** A :class:`~medbench.node.Send` is encoded once: its size is ``len(msg.encode())``
(0 for messages without ``encode``). For each destination the message crosses the directed link
``src -> dst`` (a FIFO of the link's bandwidth: transmission starts when the link is free and
takes ``ceil(8 * size / bandwidth)`` us), then the link's latency (plus uniform jitter in
``[0, jitter_us]``; links stay FIFO, like TCP connections, so jitter never reorders a link).
Loss drops a copy with the link's probability when it is sent; a copy whose link is cut
(partition, isolated node) when it arrives is dropped, and so is a copy arriving at a crashed
node. Copies of one Send arriving at the same instant are one heap event (a broadcast on equal
links costs one push and one pop).

**CPU.** Each node is one server (see :mod:`medbench.sim.costs`): an input arriving while the node
is busy waits in its FIFO inbox. ``step`` runs when the input's service starts; the outputs leave
when the CPU time it cost has elapsed (the node's busy time is kept in nanoseconds and rounded up
to the microsecond only for events). The periodic tick is an input too: at each tick instant every
live node (in id order) receives it behind the inputs that arrived before, and ``tick(now)`` is
called with the time its service starts (the instant itself for an idle node).

Service is computed eagerly: when an input arrives, its start time ``max(arrival, busy)`` is
known at once (FIFO), so ``step`` runs immediately unless a *barrier* (a fault, a callback or the
end of the run) lies before that start; only then does it wait in the inbox for a wake-up event.
Nodes share no state, so this is the same queueing model as calling ``step`` at the start
instant, with far fewer heap events; only the (deterministic) order in which loss and jitter are
drawn differs. Consequences: ``Simulator.now`` during a ``step`` is the arrival instant, and a job
whose service started before a crash completes and its messages leave.

**Hosts** (optional). With ``hosts`` (the host of each node) the nodes of one host share its
``cores`` (an int, or one per host) and its disk: an input's service starts when its node is free
*and* one of the host's cores is (first come, first served across the host's nodes, so n node
processes on a 2-core machine cannot use more than 2 cores), and an output that persists records
waits for one commit of ``profile.persist_ns`` before its messages leave and its node takes its
next input (the commit's own CPU, ``persist_cpu_ns``, is charged first); the core is free again
once the CPU work is done. Commits of different nodes overlap: ``persist_ns`` is measured with as
many concurrent committers as the host runs nodes, so it carries the disk's contention (a FIFO
disk overstates it: a journalling file system merges concurrent fsyncs). A profile with
``persist_ns > 0`` and no ``hosts`` puts every node on a host of its own (one core, one disk).
Without hosts and with free persistence the model is the single server per node above.

**Processes and rounds** (optional, hosts only). ``procs`` groups nodes into processes: the nodes
of one process share one thread (one busy time), as a load generator's clients share its process.
With ``round_ticks`` a process works in rounds, as the real cluster's driver does
(:mod:`medbench.runtime.driver`): the messages its steps produce wait in its outbox until the
round ends — when the process is idle after the inputs that arrived before (deferred at most four
times under continuous load) — then every node of the process is ticked and the whole outbox
leaves (persist before send: not before the commits it waited for). A PBFT primary with a
one-microsecond batch delay thus proposes, as one batch, what arrived while it was busy, and a
load generator sends the requests of a round together. With hosts, an output that persists while
its node's previous commit has not yet started joins that commit (group commit).

**Deadline ticks.** A node that has a ``next_deadline()`` method (absolute microseconds or
``None``; the baselines of :mod:`medbench.consensus.baselines` do) is also ticked at that time:
after each of its steps and ticks the driver reads the deadline and, when it changed, schedules
a tick of that node alone (a per-node timer at tick priority; a superseded timer is skipped).
Such nodes get a first tick at 0. With ``tick_us=0`` they are driven by their deadlines only.

**Faults.** ``crash`` stops deliveries and ticks and empties the inbox; ``recover`` replaces the
node by ``recover(node_id, persisted)`` (the deployment's recovery factory) and resumes it.
``cut``/``heal``/``isolate``/``rejoin``/``partition``/``heal_all`` change which links drop.

**Closed loops.** :meth:`Simulator.submit_after` schedules a submission for when another
transaction completes (plus a think time): the driver's side of a closed-loop client that keeps
a fixed number of requests outstanding. The transaction counts as submitted when it is handed
to the node, so its latency starts then.

**Progress.** ``progress`` (a callable of ``(now_us, completed, awaited)``) is called each time
virtual time passes a multiple of ``progress_every_us``, between events: it adds no event and no
barrier, so a run with a progress callback is identical to one without.

**Randomness** (loss, jitter) comes only from the injected ``random.Random``.

**Trace digest.** A running SHA-256 over every delivery: for each delivered batch the line
``time src kind size`` followed by the destinations that received it, so two runs have the same
digest exactly when they delivered the same messages to the same nodes at the same times.

One module on purpose (over the kit's ~700-line guide): it is one concept, the event loop, whose
handlers share the heap, the CPU queues and the link state and call each other on the hot path;
split into files they would read worse and run slower.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from heapq import heappop, heappush
from typing import Any

from medbench.metrics import RunRecord
from medbench.node import Node, Ready
from medbench.sim import topology as topo
from medbench.sim.costs import CostProfile
from medbench.sim.faults import Action, FaultEvent

P_FAULT = 0
P_INPUT = 1
P_DELIVER = 2
P_WAKE = 3
P_TICK = 4

_TICK = object()  # marks a tick waiting in a node's inbox


class _RoundEnd:
    """Event data of a round-end tick of ``node`` (see "Round ticks")."""

    __slots__ = ("epoch", "node")

    def __init__(self, node: int, epoch: int) -> None:
        self.node = node
        self.epoch = epoch


RecoverFactory = Callable[[int, list[Any]], Node]


class SimulationError(RuntimeError):
    """The simulator was misused (bad node ids, recovering without a factory, ...)."""


def default_key(value: Any) -> Hashable:
    """Identify a committed payload or completed item: ``tx_id`` attribute, bytes, or value."""
    tx = getattr(value, "tx_id", None)
    if tx is not None:
        return tx  # type: ignore[no-any-return]
    try:
        hash(value)
    except TypeError:
        encode = getattr(value, "encode", None)
        return encode() if callable(encode) else repr(value)
    return value  # type: ignore[no-any-return]


def _kind_name(kind: Any) -> str:
    if isinstance(kind, str):
        return kind
    value = getattr(kind, "value", None)
    if isinstance(value, str):
        return value
    name = getattr(kind, "name", None)
    return name.lower() if isinstance(name, str) else str(kind)


class Simulator:
    """Discrete-event driver of ``nodes`` over ``topology`` (see the module docstring)."""

    def __init__(
        self,
        nodes: Sequence[Node],
        topology: topo.Topology | None = None,
        *,
        rng: random.Random | None = None,
        seed: int = 0,
        tick_us: int = 1000,
        profile: CostProfile | None = None,
        jitter_us: int = 0,
        recover: RecoverFactory | None = None,
        replicas: Iterable[int] | None = None,
        completion_key: Callable[[Any], Hashable] = default_key,
        commit_key: Callable[[Any], Hashable] = default_key,
        trace: bool = True,
        hosts: Sequence[int] | None = None,
        cores: int | Sequence[int] = 1,
        round_ticks: bool = False,
        procs: Sequence[int] | None = None,
    ) -> None:
        n = len(nodes)
        for i, node in enumerate(nodes):
            if node.node_id != i:
                raise SimulationError(f"node at index {i} has node_id {node.node_id}")
        self.topology = topology if topology is not None else topo.complete(n)
        if self.topology.size != n:
            raise SimulationError(f"topology has {self.topology.size} sites for {n} nodes")
        if tick_us < 0 or jitter_us < 0:
            raise SimulationError("tick_us and jitter_us must be non-negative")
        self.nodes: list[Node] = list(nodes)
        self._nodes = self.nodes  # the same list, read on the hot path
        self.n = n
        self.rng = rng if rng is not None else random.Random(seed)
        self.tick_us = tick_us
        self.profile = profile if profile is not None else CostProfile.zero()
        self.jitter_us = jitter_us
        self.recover_factory = recover
        self.completion_key = completion_key
        self.commit_key = commit_key
        self.now = 0
        self._heap: list[tuple[Any, ...]] = []
        self._seq = 0
        self._until = 0
        # Earliest instant at which something other than an input can touch a node (a fault, a
        # callback, the end of the run): inputs whose service starts before it are served at
        # once (see _serve_or_queue).
        self._barrier = 0
        self._fault_times: list[int] = []
        self._stopped = False
        self._stop_when_complete = False

        p = self.profile
        self._msg_base_ns = p.message_base_ns + p.decode_base_ns
        self._dec_byte_ns = p.decode_per_byte_ns
        self._enc_base_ns = p.encode_base_ns
        self._enc_byte_ns = p.encode_per_byte_ns
        self._dst_ns = p.send_per_dst_ns

        self._lat = [list(r) for r in self.topology.latency_us]
        self._bw = [list(r) for r in self.topology.bandwidth_bps]
        self._loss = [list(r) for r in self.topology.loss]
        self._lossy = self.topology.lossy
        self._link_free = [[0] * n for _ in range(n)]
        self._link_last = [[0] * n for _ in range(n)]  # last arrival per link (jitter only)
        self._blocked: list[set[int]] = [set() for _ in range(n)]

        self._alive = [True] * n
        self._busy = [0] * n  # ns at which the node's CPU becomes free
        self._inbox: list[deque[tuple[int, Any, int, int]]] = [deque() for _ in range(n)]
        self._wake_pending = [False] * n
        self._epoch = [0] * n
        self._take = [getattr(node, "take_costs", None) for node in self.nodes]
        self._deadline = [getattr(node, "next_deadline", None) for node in self.nodes]
        self._armed: list[int | None] = [None] * n  # deadline of the node's pending timer
        self._ticked = [-1] * n  # time of the node's last tick (a deadline re-arms after it)
        self._recv_ns: dict[int, int] = {}
        self.storage: list[list[Any]] = [[] for _ in range(n)]
        # hosts: shared cores and disks (see "Hosts"); None keeps one server per node
        self._persist_ns = int(self.profile.persist_ns)
        self._persist_cpu_ns = int(self.profile.persist_cpu_ns)
        if hosts is None and self._persist_ns > 0:
            hosts = range(n)
        self._host: list[int] | None = None
        self._core_free: list[list[int]] = []
        self._disk_free: list[int] = []
        if hosts is not None:
            host_of = list(hosts)
            if len(host_of) != n or (host_of and min(host_of) < 0):
                raise SimulationError("hosts needs one host index (>= 0) per node")
            n_hosts = max(host_of) + 1 if host_of else 0
            per_host = [cores] * n_hosts if isinstance(cores, int) else list(cores)
            if len(per_host) != n_hosts or any(c < 1 for c in per_host):
                raise SimulationError("cores: a positive count per host")
            self._host = host_of
            self._core_free = [[0] * c for c in per_host]
            self._disk_free = [0] * n_hosts
        self._cpu_end = 0  # set by _emit: when the CPU work of the output it carried out ends
        self._commit: list[tuple[int, int]] = [(-1, -1)] * n  # each node's last commit (ns)
        # processes (hosts only): the nodes of one process share one thread of execution
        self._proc: list[int] = list(range(n))
        self._members: list[list[int]] | None = None
        if procs is not None:
            if self._host is None:
                raise SimulationError("processes need hosts")
            self._proc = list(procs)
            if len(self._proc) != n or (self._proc and min(self._proc) < 0):
                raise SimulationError("procs needs one process index (>= 0) per node")
            self._members = [[] for _ in range(max(self._proc) + 1)]
            for i, pr in enumerate(self._proc):
                self._members[pr].append(i)
                if self._host[i] != self._host[self._members[pr][0]]:
                    raise SimulationError("a process runs on one host")
        self.round_ticks = round_ticks and self._host is not None
        n_procs = max(self._proc) + 1 if self._proc else 0
        self._outbox: list[list[tuple[int, Any, str, int, Sequence[int], int]]] = [
            [] for _ in range(n_procs)
        ]
        self._round_pending = [False] * n_procs
        self._round_defers = [0] * n_procs
        self._in_round_end = False

        self._kinds: dict[Any, str] = {}
        self._kind_bytes: dict[str, bytes] = {}
        self._dst_bytes = [b"%d," % i for i in range(n)]
        self._hash = hashlib.sha256() if trace else None

        # Counters (hot path: plain lists and dicts).
        self._msg_cpu_ns = [0] * n
        self._send_cpu_ns = [0] * n
        self._units: dict[str, float] = {}
        self._op_counts: list[dict[str, int]] = [{} for _ in range(n)]
        self.record = RunRecord(
            n_nodes=n, replicas=tuple(replicas) if replicas is not None else tuple(range(n))
        )
        self._commits: list[list[tuple[int, Hashable, int]]] = [[] for _ in range(n)]
        self._awaiting: set[Hashable] = set()
        self._chained: dict[Hashable, list[tuple[int, int, Any, Hashable]]] = {}
        self.progress: Callable[[int, int, int], None] | None = None
        self.progress_every_us = 1_000_000
        self._delivered = 0
        self._events = 0
        self._drop_cut = 0
        self._drop_loss = 0
        self._drop_dead = 0
        self._drop_input = 0
        if tick_us:
            self._push(0, P_TICK, None)
        for i in range(n):
            if self._deadline[i] is not None:
                self._armed[i] = 0
                self._push(0, P_TICK, (i, 0, 0))

    # ------------------------------------------------------------------ scheduling API
    def _push(self, t: int, prio: int, data: Any) -> None:
        self._seq += 1
        heappush(self._heap, (t, prio, self._seq, data))

    def _check_time(self, at_us: int) -> None:
        if at_us < self.now:
            raise SimulationError(f"cannot schedule at {at_us} us: the clock reads {self.now} us")

    def schedule_input(self, at_us: int, node: int, msg: Any) -> None:
        """At ``at_us``, hand ``msg`` to ``node`` as a local input (``step(node, msg)``)."""
        self._check_time(at_us)
        self._check_node(node)
        self._push(at_us, P_INPUT, (node, msg, None))

    def submit(self, at_us: int, node: int, msg: Any, tx: Hashable) -> None:
        """Like :meth:`schedule_input`, and record ``tx`` as submitted at ``at_us``.

        Its latency ends when some node lists an item whose key (``completion_key``) is ``tx``
        in ``Ready.completed``.
        """
        self._check_time(at_us)
        self._check_node(node)
        if tx not in self.record.submitted and tx not in self._awaiting:
            self._awaiting.add(tx)
        self._push(at_us, P_INPUT, (node, msg, tx))

    def submit_after(
        self, after: Hashable, delay_us: int, node: int, msg: Any, tx: Hashable
    ) -> None:
        """When transaction ``after`` completes, submit ``tx`` to ``node`` ``delay_us`` later.

        A closed-loop client: its next request leaves when an earlier one is answered. If
        ``after`` never completes, ``tx`` is never submitted (and still awaited: a run with
        ``stop_when_complete`` then goes on to its time limit).
        """
        if delay_us < 0:
            raise SimulationError("delay_us must be non-negative")
        self._check_node(node)
        if tx not in self.record.submitted:
            self._awaiting.add(tx)
        if after in self.record.completed:
            t = self.record.completed[after] + delay_us
            self._push(max(t, self.now), P_INPUT, (node, msg, tx))
            return
        self._chained.setdefault(after, []).append((delay_us, node, msg, tx))

    def call_at(self, at_us: int, fn: Callable[[Simulator], None]) -> None:
        """At ``at_us`` (before other events of that instant), call ``fn(simulator)``."""
        self._check_time(at_us)
        self._push_fault(at_us, fn)

    def schedule_faults(self, events: Iterable[FaultEvent]) -> None:
        """Schedule each :class:`~medbench.sim.faults.FaultEvent`."""
        for ev in events:
            self._check_time(ev.at_us)
            for node in ev.nodes:
                self._check_node(node)
            for group in ev.groups:
                for node in group:
                    self._check_node(node)
            if ev.action is Action.RECOVER and self.recover_factory is None:
                raise SimulationError("a recover event needs a recovery factory")
            self._push_fault(ev.at_us, ev)

    def _push_fault(self, at_us: int, data: Any) -> None:
        heappush(self._fault_times, at_us)
        self._push(at_us, P_FAULT, data)
        self._set_barrier()

    def _set_barrier(self) -> None:
        b = self._until + 1
        if self._fault_times and self._fault_times[0] < b:
            b = self._fault_times[0]
        self._barrier = b

    def _check_node(self, node: int) -> None:
        if not 0 <= node < self.n:
            raise SimulationError(f"no node {node} (nodes are 0..{self.n - 1})")

    # ------------------------------------------------------------------ faults
    def apply_fault(self, ev: FaultEvent) -> None:
        """Carry out one fault event now."""
        a = ev.action
        if a is Action.CRASH:
            self.crash(ev.nodes[0])
        elif a is Action.RECOVER:
            self.recover(ev.nodes[0])
        elif a is Action.CUT:
            self.cut(*ev.nodes)
        elif a is Action.HEAL:
            self.heal(*ev.nodes)
        elif a is Action.ISOLATE:
            self.isolate(ev.nodes[0])
        elif a is Action.REJOIN:
            self.rejoin(ev.nodes[0])
        elif a is Action.PARTITION:
            self.partition(ev.groups)
        else:
            self.heal_all()

    def crash(self, node: int) -> None:
        """Stop ``node``: no more deliveries or ticks; its queued inputs are lost."""
        self._check_node(node)
        if not self._alive[node]:
            return
        self._alive[node] = False
        self._epoch[node] += 1
        self._inbox[node].clear()
        self._wake_pending[node] = False
        self.record.notes.append((self.now, node, "crash", None))

    def recover(self, node: int) -> None:
        """Restart ``node`` from its persisted records through the recovery factory."""
        self._check_node(node)
        if self._alive[node]:
            return
        if self.recover_factory is None:
            raise SimulationError("no recovery factory was given")
        fresh = self.recover_factory(node, list(self.storage[node]))
        if fresh.node_id != node:
            raise SimulationError(f"recovery of node {node} returned node {fresh.node_id}")
        self.nodes[node] = fresh
        self._take[node] = getattr(fresh, "take_costs", None)
        self._deadline[node] = getattr(fresh, "next_deadline", None)
        self._armed[node] = None
        self._alive[node] = True
        self._busy[node] = self.now * 1000
        self.record.notes.append((self.now, node, "recover", None))
        if self._deadline[node] is not None:
            self._armed[node] = self.now
            self._push(self.now, P_TICK, (node, self.now, self._epoch[node]))

    def cut(self, a: int, b: int) -> None:
        """Drop messages sent either way between ``a`` and ``b``."""
        self._blocked[a].add(b)
        self._blocked[b].add(a)

    def heal(self, a: int, b: int) -> None:
        """Undo :meth:`cut` of ``a`` and ``b``."""
        self._blocked[a].discard(b)
        self._blocked[b].discard(a)

    def isolate(self, node: int) -> None:
        """Cut every link of ``node``."""
        for other in range(self.n):
            if other != node:
                self.cut(node, other)

    def rejoin(self, node: int) -> None:
        """Heal every link of ``node``."""
        for other in range(self.n):
            self.heal(node, other)

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Cut every link between nodes of different groups (nodes in no group keep links)."""
        side: dict[int, int] = {}
        for g, members in enumerate(groups):
            for m in members:
                side[m] = g
        for a, ga in side.items():
            for b, gb in side.items():
                if ga != gb:
                    self._blocked[a].add(b)

    def heal_all(self) -> None:
        """Heal every link."""
        for s in self._blocked:
            s.clear()

    def in_flight(self) -> int:
        """Copies of messages sent but not yet arrived."""
        return sum(len(e[3][4]) for e in self._heap if e[1] == P_DELIVER)

    def alive(self, node: int) -> bool:
        """True unless ``node`` is crashed."""
        return self._alive[node]

    def committed_count(self, node: int) -> int:
        """Entries ``node`` has listed in ``Ready.committed`` so far."""
        self._check_node(node)
        return len(self._commits[node])

    def drain(
        self,
        nodes: Iterable[int],
        chunk_us: int = 50_000,
        quiet_us: int = 1_000_000,
        max_us: int = 30_000_000,
    ) -> int:
        """Run on until every live node of ``nodes`` has caught up; returns the time added (us).

        A run stopped when the last transaction completed leaves replicas that have not yet
        committed what another already has (PoW depth, audits, replies in flight). The target is
        the most entries any of ``nodes`` committed by now; the simulation advances in chunks of
        ``chunk_us`` until each live node reached it, or no node committed anything for
        ``quiet_us`` (a node that never commits, such as a relay's centre, or one that cannot
        catch up), or ``max_us`` passed.
        """
        watch = [i for i in nodes if 0 <= i < self.n]
        start = self.now
        target = max((len(self._commits[i]) for i in watch), default=0)
        total = sum(len(self._commits[i]) for i in watch)
        last_change = start
        while self.now - start < max_us:
            self.run(self.now + chunk_us)
            if all(not self._alive[i] or len(self._commits[i]) >= target for i in watch):
                break
            now_total = sum(len(self._commits[i]) for i in watch)
            if now_total != total:
                total, last_change = now_total, self.now
            elif self.now - last_change >= quiet_us:
                break
        return self.now - start

    # ------------------------------------------------------------------ running
    def run(self, until_us: int, stop_when_complete: bool = False) -> RunRecord:
        """Process events up to virtual time ``until_us`` (inclusive) and return the record.

        With ``stop_when_complete`` the run ends as soon as every submitted transaction has
        completed. :meth:`run` may be called again to continue.
        """
        self._until = until_us
        self._set_barrier()
        self._stopped = False
        self._stop_when_complete = stop_when_complete
        if stop_when_complete and not self._awaiting and self.record.submitted:
            self._stopped = True
        heap = self._heap
        deliver = self._deliver if self._host is None else self._deliver_hosts
        wake = self._wake
        tick = self._tick_all
        events = 0
        progress = self.progress
        every = max(1, int(self.progress_every_us))
        report_at = (self.now // every + 1) * every if progress is not None else until_us
        limit = min(until_us, report_at)
        while heap and not self._stopped:
            if heap[0][0] > limit:
                if limit >= until_us or progress is None:
                    break
                # between events: report, then go on (no event, no barrier is added)
                progress(limit, len(self.record.completed), len(self._awaiting))
                report_at = (heap[0][0] // every + 1) * every
                limit = min(until_us, report_at)
                continue
            t, prio, _, data = heappop(heap)
            self.now = t
            events += 1
            if prio == P_DELIVER:
                deliver(t, data)
            elif prio == P_WAKE:
                wake(t, data)
            elif prio == P_TICK:
                if data is None:
                    tick(t)
                elif type(data) is _RoundEnd:
                    self._round_end(t, data)
                else:
                    self._timer(t, data)
            elif prio == P_INPUT:
                self._input(t, data)
            else:
                heappop(self._fault_times)
                if isinstance(data, FaultEvent):
                    self.apply_fault(data)
                else:
                    data(self)
                self._set_barrier()
        if not self._stopped:
            self.now = max(self.now, until_us)
        self._events += events
        return self.snapshot()

    def snapshot(self) -> RunRecord:
        """The record of the run so far (counters copied in)."""
        rec = self.record
        # Eagerly served jobs may finish after the clock's last event (see the module docstring).
        rec.end_us = max(self.now, max(rec.completed.values(), default=0))
        rec.delivered = self._delivered
        rec.events = self._events
        rec.dropped = {
            "cut": self._drop_cut,
            "loss": self._drop_loss,
            "crashed": self._drop_dead,
            "input_at_crashed": self._drop_input,
        }
        rec.commits = {i: list(c) for i, c in enumerate(self._commits) if c}
        cpu: dict[int, dict[str, int]] = {}
        counts: dict[int, dict[str, int]] = {}
        for i in range(self.n):
            # CPU per operation from the tallied counts (the busy time used the same units).
            ops = {op: int(self.profile.unit_ns(op) * c) for op, c in self._op_counts[i].items()}
            ops["message"] = self._msg_cpu_ns[i]
            ops["send"] = self._send_cpu_ns[i]
            cpu[i] = ops
            counts[i] = dict(self._op_counts[i])
        rec.cpu_ns = cpu
        rec.op_counts = counts
        rec.storage = {i: self._storage_of(i) for i in range(self.n)}
        rec.trace_digest = self._hash.hexdigest() if self._hash is not None else ""
        return rec

    def _storage_of(self, i: int) -> dict[str, int]:
        report = getattr(self.nodes[i], "storage_bytes", None)
        if callable(report):
            return {str(k): int(v) for k, v in report().items()}
        total = 0
        for item in self.storage[i]:
            if isinstance(item, (bytes, bytearray)):
                total += len(item)
            else:
                enc = getattr(item, "encode", None)
                if callable(enc):
                    total += len(enc())
        return {"persisted": total} if self.storage[i] else {}

    # ------------------------------------------------------------------ event handlers
    def _input(self, t: int, data: tuple[int, Any, Hashable | None]) -> None:
        node, msg, tx = data
        if tx is not None and tx not in self.record.submitted:
            self.record.submitted[tx] = t
        if not self._alive[node]:
            self._drop_input += 1
            return
        self._serve_or_queue(node, node, msg, 0, t * 1000)

    def _serve_or_queue(self, node: int, src: int, msg: Any, size: int, tns: int) -> None:
        """An input arrives at ``node`` at ``tns``: serve it now or queue it.

        The node is a FIFO single server, so the input's service starts at
        ``max(arrival, busy)`` whatever arrives later. When that start lies before the barrier
        (the next fault or callback, or the end of the run), nothing can come between, so
        ``step`` runs at once with that start time. Only inputs whose service would start at or
        after the barrier wait in the inbox for a wake-up event.
        """
        b = self._busy[node] if self._host is None else self._avail(node)
        start = b if b > tns else tns
        if not self._inbox[node] and -(-start // 1000) < self._barrier:
            self._handle(node, src, msg, size, start)
        else:
            self._enqueue(node, (src, msg, size, tns))

    def _avail(self, node: int) -> int:
        """Hosts: when ``node`` and one of its host's cores are both free (ns)."""
        assert self._host is not None
        b = self._busy[node]
        c = min(self._core_free[self._host[node]])
        return b if b > c else c

    def _deliver_hosts(self, t: int, data: tuple[int, Any, str, int, list[int]]) -> None:
        """:meth:`_deliver` when nodes share hosts (no inlined service: cores are picked)."""
        src, msg, kind, size, dsts = data
        tns = t * 1000
        got: list[bytes] = []
        blocked = self._blocked[src]
        for dst in dsts:
            if not self._alive[dst]:
                self._drop_dead += 1
                continue
            if blocked and dst in blocked:
                self._drop_cut += 1
                continue
            got.append(self._dst_bytes[dst])
            self._serve_or_queue(dst, src, msg, size, tns)
        if got:
            self._delivered += len(got)
            if self._hash is not None:
                self._hash.update(
                    b"%d %d %s %d:%s\n" % (t, src, self._kind_bytes[kind], size, b"".join(got))
                )

    def _take_core(self, node: int, start_ns: int) -> tuple[list[int], int, int]:
        """Hosts: the host's core lists, the earliest free core and the service start."""
        assert self._host is not None
        cores = self._core_free[self._host[node]]
        k = 0
        best = cores[0]
        for j in range(1, len(cores)):
            if cores[j] < best:
                best, k = cores[j], j
        return cores, k, start_ns if start_ns >= best else best

    def _enqueue(self, node: int, item: tuple[int, Any, int, int]) -> None:
        self._inbox[node].append(item)
        if not self._wake_pending[node]:
            self._wake_pending[node] = True
            avail = self._busy[node] if self._host is None else self._avail(node)
            free = -(-avail // 1000)
            arrived = item[3] // 1000
            self._push(free if free > arrived else arrived, P_WAKE, (node, self._epoch[node]))

    def _deliver(self, t: int, data: tuple[int, Any, str, int, list[int]]) -> None:
        src, msg, kind, size, dsts = data
        if len(dsts) == 1:
            self._deliver1(t, src, msg, kind, size, dsts[0])
            return
        alive = self._alive
        busy = self._busy
        inbox = self._inbox
        tns = t * 1000
        # Inputs starting before this instant (in ns) are served at once (_serve_or_queue).
        limit = (self._barrier - 1) * 1000
        h = self._hash
        got: list[bytes] = []
        dst_bytes = self._dst_bytes
        blocked = self._blocked[src]
        # _handle inlined (the hot path: one broadcast reaches many nodes): what does not depend
        # on the destination is looked up once per delivery.
        nodes = self._nodes
        take = self._take
        msg_cpu = self._msg_cpu_ns
        units = self._units
        op_counts = self._op_counts
        emit = self._emit
        deadline = self._deadline
        recv = self._recv_ns.get(size)
        if recv is None:
            recv = int(self._msg_base_ns + self._dec_byte_ns * size)
            if len(self._recv_ns) < 4096:
                self._recv_ns[size] = recv
        for dst in dsts:
            if not alive[dst]:
                self._drop_dead += 1
                continue
            if blocked and dst in blocked:
                self._drop_cut += 1
                continue
            got.append(dst_bytes[dst])
            b = busy[dst]
            if inbox[dst]:
                self._enqueue(dst, (src, msg, size, tns))
                continue
            if b <= tns:
                start = tns
            elif b <= limit:
                start = b
            else:
                self._enqueue(dst, (src, msg, size, tns))
                continue
            # -- _handle(dst, src, msg, size, start), inlined --
            ready = nodes[dst].step(src, msg)
            cost = recv
            msg_cpu[dst] += recv
            tk = take[dst]
            if tk is not None:
                ops = tk()
                if ops:
                    counts = op_counts[dst]
                    for op, count in ops.items():
                        unit = units.get(op)
                        if unit is None:
                            unit = units[op] = self.profile.unit_ns(op)
                        cost += int(unit * count)
                        counts[op] = counts.get(op, 0) + count
            end = start + cost
            if ready.messages or ready.committed or ready.completed or ready.notes or ready.persist:
                end = emit(dst, ready, end)
            busy[dst] = end
            dl = deadline[dst]
            if dl is not None:
                self._arm(dst, dl)  # a message may move the node's deadline
        if got:
            self._delivered += len(got)
            if h is not None:
                h.update(
                    b"%d %d %s %d:%s\n" % (t, src, self._kind_bytes[kind], size, b"".join(got))
                )

    def _deliver1(self, t: int, src: int, msg: Any, kind: str, size: int, dst: int) -> None:
        """:meth:`_deliver` of a copy with one destination: the same checks, queueing, service
        and trace line, without the set-up a broadcast amortizes over its destinations."""
        if not self._alive[dst]:
            self._drop_dead += 1
            return
        blocked = self._blocked[src]
        if blocked and dst in blocked:
            self._drop_cut += 1
            return
        tns = t * 1000
        b = self._busy[dst]
        if self._inbox[dst] or (b > tns and b > (self._barrier - 1) * 1000):
            self._enqueue(dst, (src, msg, size, tns))
        else:
            # -- as the inlined service of _deliver --
            ready = self._nodes[dst].step(src, msg)
            cost = self._recv_ns.get(size)
            if cost is None:
                cost = int(self._msg_base_ns + self._dec_byte_ns * size)
                if len(self._recv_ns) < 4096:
                    self._recv_ns[size] = cost
            self._msg_cpu_ns[dst] += cost
            tk = self._take[dst]
            if tk is not None:
                ops = tk()
                if ops:
                    units = self._units
                    counts = self._op_counts[dst]
                    for op, count in ops.items():
                        unit = units.get(op)
                        if unit is None:
                            unit = units[op] = self.profile.unit_ns(op)
                        cost += int(unit * count)
                        counts[op] = counts.get(op, 0) + count
            end = (b if b > tns else tns) + cost
            if ready.messages or ready.committed or ready.completed or ready.notes or ready.persist:
                end = self._emit(dst, ready, end)
            self._busy[dst] = end
            dl = self._deadline[dst]
            if dl is not None:
                self._arm(dst, dl)  # a message may move the node's deadline (a closed loop's
                # only inputs after its first ticks are messages: without this it never woke)
        self._delivered += 1
        h = self._hash
        if h is not None:
            h.update(
                b"%d %d %s %d:%s\n" % (t, src, self._kind_bytes[kind], size, self._dst_bytes[dst])
            )

    def _wake(self, t: int, data: tuple[int, int]) -> None:
        node, epoch = data
        if epoch != self._epoch[node]:
            return
        self._wake_pending[node] = False
        q = self._inbox[node]
        busy = self._busy
        tns = t * 1000
        hosted = self._host is not None
        while q:
            b = self._avail(node) if hosted else busy[node]
            if b > tns:
                nxt = -(-b // 1000)
                if nxt < self._barrier and not self._stopped:
                    tns = nxt * 1000
                else:
                    self._wake_pending[node] = True
                    self._push(nxt, P_WAKE, (node, epoch))
                    return
            src, msg, size, arrived = q.popleft()
            if msg is _TICK:
                self._serve_tick(node, b if b > arrived else arrived)
            else:
                self._handle(node, src, msg, size, b if b > arrived else arrived)

    def _tick_all(self, t: int) -> None:
        """The periodic tick: an input of every live node arriving at ``t`` (in id order)."""
        tns = t * 1000
        alive = self._alive
        busy = self._busy
        inbox = self._inbox
        limit = (self._barrier - 1) * 1000
        hosted = self._host is not None
        for i in range(self.n):
            if not alive[i]:
                continue
            b = self._avail(i) if hosted else busy[i]
            if inbox[i]:
                self._enqueue(i, (i, _TICK, 0, tns))
            elif b <= tns:
                self._serve_tick(i, tns)
            elif b <= limit:
                self._serve_tick(i, b)
            else:
                self._enqueue(i, (i, _TICK, 0, tns))
        if self.tick_us:
            self._push(t + self.tick_us, P_TICK, None)

    def _timer(self, t: int, data: tuple[int, int, int]) -> None:
        """A node's deadline tick (see "Deadline ticks"); superseded or stale timers are no-ops."""
        node, deadline, epoch = data
        if epoch != self._epoch[node] or self._armed[node] != deadline or not self._alive[node]:
            return
        self._armed[node] = None
        tns = t * 1000
        b = self._busy[node] if self._host is None else self._avail(node)
        if self._inbox[node]:
            self._enqueue(node, (node, _TICK, 0, tns))
        elif b <= tns:
            self._serve_tick(node, tns)
        elif b <= (self._barrier - 1) * 1000:
            self._serve_tick(node, b)
        else:
            self._enqueue(node, (node, _TICK, 0, tns))

    def _round_end(self, t: int, data: _RoundEnd) -> None:
        """The end of a process's round (see "Processes and rounds"): tick, then send."""
        node = data.node
        pr = self._proc[node]
        members = self._members[pr] if self._members is not None else [node]
        tns = t * 1000
        b = self._busy[node]
        if b > tns and self._round_defers[pr] < 4:
            self._round_defers[pr] += 1  # inputs that arrived meanwhile belong to this round
            self._push(-(-b // 1000), P_TICK, data)
            return
        self._round_pending[pr] = False
        if data.epoch != self._epoch[node] or not self._alive[node]:
            self._outbox[pr].clear()
            return
        self._in_round_end = True
        try:
            for m in members:
                if self._alive[m]:
                    bm = self._busy[m]
                    self._serve_tick(m, bm if bm > tns else tns)
        finally:
            self._in_round_end = False
        out, self._outbox[pr] = self._outbox[pr], []
        done = self._busy[node]
        for src, msg, kind, size, dsts, ready_at in out:
            depart = done if done >= ready_at else ready_at
            self._route(src, -(-depart // 1000), msg, kind, size, dsts)

    def _arm(self, node: int, deadline_of: Callable[[], int | None]) -> None:
        """Schedule ``node``'s next deadline tick if its deadline changed."""
        dl = deadline_of()
        if dl is None or dl == self._armed[node]:
            return
        self._armed[node] = dl
        # Never twice at one instant: a deadline that does not move on cannot spin the clock.
        at = max(dl, self.now, self._ticked[node] + 1)
        self._push(at, P_TICK, (node, dl, self._epoch[node]))

    def _serve_tick(self, node: int, start_ns: int) -> None:
        """Serve a tick on ``node``'s CPU at ``start_ns``; the node reads that time."""
        cores = None
        if self._host is not None:
            cores, k, start_ns = self._take_core(node, start_ns)
        now = -(-start_ns // 1000)
        self._ticked[node] = now
        ready = self.nodes[node].tick(now)
        end = start_ns
        tk = self._take[node]
        if tk is not None:
            ops = tk()
            if ops:
                end += self._charge(node, ops)
        cpu_end = end
        if ready.messages or ready.committed or ready.completed or ready.notes or ready.persist:
            end = self._emit(node, ready, end)
            cpu_end = self._cpu_end
        if self._members is None:
            self._busy[node] = end
        else:
            self._set_busy(node, end)
        if cores is not None:
            cores[k] = cpu_end
        dl = self._deadline[node]
        if dl is not None:
            self._arm(node, dl)

    def _disk_commit(self, h: int, at_ns: int) -> tuple[int, int]:
        """A commit asked at ``at_ns`` on host ``h``'s disk: ``(start, end)`` in ns.

        Commits do not queue in the model: ``persist_ns`` is measured with the host's typical
        number of concurrent committers (``calibrate``), so it already carries the disk's
        contention — a journalling file system merges concurrent fsyncs in ways a FIFO
        overstates (see "Hosts").
        """
        end = at_ns + self._persist_ns
        if end > self._disk_free[h]:
            self._disk_free[h] = end
        return at_ns, end

    def _set_busy(self, node: int, end: int) -> None:
        if self._members is None:
            self._busy[node] = end
        else:
            busy = self._busy
            for m in self._members[self._proc[node]]:
                busy[m] = end

    def _request_round(self, node: int, at_ns: int) -> None:
        """Rounds: make sure the round of ``node``'s process ends (at ``at_ns`` or later)."""
        pr = self._proc[node]
        if not self._round_pending[pr]:
            self._round_pending[pr] = True
            self._round_defers[pr] = 0
            self._push(-(-at_ns // 1000), P_TICK, _RoundEnd(node, self._epoch[node]))

    def _handle(self, node: int, src: int, msg: Any, size: int, start_ns: int) -> None:
        """Serve one input on ``node``'s CPU starting at ``start_ns`` (the hot path)."""
        cores = None
        if self._host is not None:
            cores, k, start_ns = self._take_core(node, start_ns)
        # Not a cached bound method: a node may swap its ``step`` (roles as swapped handlers).
        ready = self._nodes[node].step(src, msg)
        cost = self._recv_ns.get(size)
        if cost is None:
            cost = int(self._msg_base_ns + self._dec_byte_ns * size)
            if len(self._recv_ns) < 4096:
                self._recv_ns[size] = cost
        self._msg_cpu_ns[node] += cost
        tk = self._take[node]
        if tk is not None:
            ops = tk()
            if ops:
                units = self._units
                counts = self._op_counts[node]
                for op, count in ops.items():
                    unit = units.get(op)
                    if unit is None:
                        unit = units[op] = self.profile.unit_ns(op)
                    cost += int(unit * count)
                    counts[op] = counts.get(op, 0) + count
        end = start_ns + cost
        cpu_end = end
        if ready.messages or ready.committed or ready.completed or ready.notes or ready.persist:
            end = self._emit(node, ready, end)
            cpu_end = self._cpu_end
        if self._members is None:
            self._busy[node] = end
        else:
            self._set_busy(node, end)
        if cores is not None:
            cores[k] = cpu_end
        dl = self._deadline[node]
        if dl is not None:
            self._arm(node, dl)
        if self.round_ticks:
            self._request_round(node, end)  # the round ends behind what arrives meanwhile

    def _charge(self, node: int, ops: Any) -> int:
        """CPU ns for the operation counts ``ops`` (a mapping op -> count); counts are tallied."""
        units = self._units
        counts = self._op_counts[node]
        total = 0
        for op, count in ops.items():
            unit = units.get(op)
            if unit is None:
                unit = units[op] = self.profile.unit_ns(op)
            total += int(unit * count)
            counts[op] = counts.get(op, 0) + count
        return total

    def _emit(self, node: int, ready: Ready, end_ns: int) -> int:
        """Carry out ``ready`` for ``node`` whose CPU work so far ends at ``end_ns``.

        Returns when the node is free again: the end of its CPU work (also left in
        ``_cpu_end``) or, with hosts and a commit cost, the end of its commit if later.
        """
        disk_end = 0
        if ready.persist:
            self.storage[node].extend(ready.persist)
            if self._persist_ns and self._host is not None:
                pending = self._commit[node]
                if pending[0] >= end_ns:
                    # group commit: the node's previous commit has not started; this output's
                    # records join it and leave with it
                    disk_end = pending[1]
                else:
                    end_ns += self._persist_cpu_ns  # the commit's own CPU (SQLite, fsync)
                    ds, disk_end = self._disk_commit(self._host[node], end_ns)
                    self._commit[node] = (ds, disk_end)
                    counts = self._op_counts[node]
                    counts["persist"] = counts.get("persist", 0) + 1
        if ready.notes:
            for note in ready.notes:
                if note.kind == "cost" and hasattr(note.detail, "items"):
                    end_ns += self._charge(node, note.detail)
                else:
                    self.record.notes.append((-(-end_ns // 1000), node, note.kind, note.detail))
        if ready.messages:
            sent_msgs = self.record.sent_msgs
            sent_bytes = self.record.sent_bytes
            kinds = self._kinds
            n = self.n
            enc_base, enc_byte, per_dst = self._enc_base_ns, self._enc_byte_ns, self._dst_ns
            route, route1 = self._route, self._route1
            for send in ready.messages:
                msg = send.msg
                enc = getattr(msg, "encode", None)
                size = len(enc()) if enc is not None else 0
                k = msg.kind
                kind = kinds.get(k)
                if kind is None:
                    kind = kinds[k] = _kind_name(k)
                    self._kind_bytes[kind] = kind.encode()
                    sent_msgs.setdefault(kind, 0)
                    sent_bytes.setdefault(kind, 0)
                dsts = send.dsts
                nd = len(dsts)
                if nd == 1:
                    if not 0 <= dsts[0] < n:
                        raise SimulationError(f"node {node} sent {kind} to {dsts}: no such node")
                elif nd and (min(dsts) < 0 or max(dsts) >= n):
                    raise SimulationError(f"node {node} sent {kind} to {dsts}: no such node")
                cost = int(enc_base + enc_byte * size + per_dst * nd)
                self._send_cpu_ns[node] += cost
                end_ns += cost
                sent_msgs[kind] += nd
                sent_bytes[kind] += nd * size
                # persist before send: nothing leaves before the commit is on disk
                depart = end_ns if end_ns >= disk_end else disk_end
                if self.round_ticks:
                    self._outbox[self._proc[node]].append((node, msg, kind, size, dsts, depart))
                    if not self._in_round_end:
                        self._request_round(node, depart)
                elif nd == 1:
                    route1(node, -(-depart // 1000), msg, kind, size, dsts)
                else:
                    route(node, -(-depart // 1000), msg, kind, size, dsts)
        self._cpu_end = end_ns
        if disk_end > end_ns:
            end_ns = disk_end
        t_done = -(-end_ns // 1000)
        if ready.committed:
            key = self.commit_key
            log = self._commits[node]
            for c in ready.committed:
                log.append((c.sequence, key(c.payload), t_done))
        if ready.completed:
            key = self.completion_key
            done = self.record.completed
            awaiting = self._awaiting
            chained = self._chained
            for item in ready.completed:
                k = key(item)
                if k not in done:
                    done[k] = t_done
                    if chained and k in chained:
                        for delay, dst, nxt, tx in chained.pop(k):
                            self._push(t_done + delay, P_INPUT, (dst, nxt, tx))
                    if k in awaiting:
                        awaiting.discard(k)
                        if not awaiting and self._stop_when_complete:
                            self._stopped = True
        return end_ns

    def _route1(
        self, src: int, depart: int, msg: Any, kind: str, size: int, dsts: Sequence[int]
    ) -> None:
        """:meth:`_route` for a Send with one destination (replies, votes, acknowledgements):
        the same arithmetic, the same random draws and one heap event, without the grouping."""
        dst = dsts[0]
        if self._lossy:
            p = self._loss[src][dst]
            if p and self.rng.random() < p:
                self._drop_loss += 1
                return
        free = self._link_free[src]
        start = free[dst]
        if start < depart:
            start = depart
        done = start + -(-(size * 8_000_000) // self._bw[src][dst])
        free[dst] = done
        arrive = done + self._lat[src][dst]
        jitter = self.jitter_us
        if jitter:
            arrive += self.rng.randint(0, jitter)
            last = self._link_last[src]
            if arrive < last[dst]:
                arrive = last[dst]
            last[dst] = arrive
        self._seq += 1
        heappush(self._heap, (arrive, P_DELIVER, self._seq, (src, msg, kind, size, [dst])))

    def _route(
        self, src: int, depart: int, msg: Any, kind: str, size: int, dsts: Sequence[int]
    ) -> None:
        """Schedule the arrival of one Send's copies, grouping equal arrival times."""
        lat = self._lat[src]
        bw = self._bw[src]
        free = self._link_free[src]
        last = self._link_last[src]
        loss = self._loss[src] if self._lossy else None
        jitter = self.jitter_us
        rnd = self.rng.random
        randint = self.rng.randint
        bits = size * 8_000_000
        last_bw = 0
        tx = 0
        groups: dict[int, list[int]] = {}
        for dst in dsts:
            if loss is not None:
                p = loss[dst]
                if p and rnd() < p:
                    self._drop_loss += 1
                    continue
            b = bw[dst]
            if b != last_bw:
                last_bw = b
                tx = -(-bits // b)
            start = free[dst]
            if start < depart:
                start = depart
            done = start + tx
            free[dst] = done
            arrive = done + lat[dst]
            if jitter:
                arrive += randint(0, jitter)
                # Links are FIFO (like the TCP connections of the real runtime): jitter
                # delays a copy but never lets it overtake the previous one.
                if arrive < last[dst]:
                    arrive = last[dst]
                last[dst] = arrive
            g = groups.get(arrive)
            if g is None:
                groups[arrive] = [dst]
            else:
                g.append(dst)
        for arrive, group in groups.items():
            self._seq += 1
            heappush(self._heap, (arrive, P_DELIVER, self._seq, (src, msg, kind, size, group)))
