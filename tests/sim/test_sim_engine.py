"""The simulator: event order, network timing, CPU queueing, loss, partitions, crash/recover."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sim_testnodes import Blob, Do, Recorder, attach, recorders

from medbench.metrics import RunRecord
from medbench.node import Committed, Note, Ready, Send
from medbench.sim import CostProfile, SimulationError, Simulator, topology
from medbench.sim.faults import Action, FaultEvent

MBIT8 = 8_000_000  # 8 Mbit/s = one byte per microsecond


def make(n: int = 3, lat: int = 1000, bw: int = MBIT8, **kw: Any) -> Simulator:
    """Recorders on a complete graph; no ticks unless asked; zero CPU cost unless asked."""
    kw.setdefault("tick_us", 0)
    sim = Simulator(recorders(n), topology.complete(n, lat, bw), **kw)
    attach(sim)
    return sim


def times(node: Recorder, kind: type = Blob) -> list[int]:
    return [t for t, _src, msg in node.log if isinstance(msg, kind)]


# ---------------------------------------------------------------------------- ordering
def test_same_instant_events_run_in_priority_then_schedule_order() -> None:
    sim = make(2, tick_us=0)
    order: list[str] = []
    sim.schedule_input(500, 0, Do())
    sim.call_at(500, lambda s: order.append(f"callback@{s.now}"))
    sim.schedule_input(500, 1, Do())
    sim.schedule_input(500, 0, Blob(1, tag=2))
    sim.run(1000)
    # The callback (priority 0) ran before the inputs of the same instant.
    assert order == ["callback@500"]
    n0 = sim.nodes[0]
    assert [type(m).__name__ for _t, _s, m in n0.log] == ["Do", "Blob"]
    assert sim.nodes[1].log[0][0] == 500


def test_delivery_before_tick_at_the_same_instant() -> None:
    sim = make(2, lat=1000, bw=10**12, tick_us=1000)
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(0)),)))
    events: list[str] = []
    node1 = sim.nodes[1]
    original_tick = node1.tick

    def tick(now: int) -> Ready:
        events.append(f"tick@{now}:{len(times(node1))}")
        return original_tick(now)

    node1.tick = tick
    sim.run(1000)
    assert times(node1) == [1000]
    # At t=1000 the message (priority 2) was delivered before the tick (priority 4).
    assert events == ["tick@0:0", "tick@1000:1"]


def test_ticks_are_periodic_and_in_node_order() -> None:
    sim = make(3, tick_us=250)
    sim.run(1000)
    for node in sim.nodes:
        assert node.ticks == [0, 250, 500, 750, 1000]


# ---------------------------------------------------------------------------- network timing
def test_latency_plus_transmission_time_exact() -> None:
    sim = make(2, lat=1000, bw=MBIT8)
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(500)),)))
    sim.run(10_000)
    assert times(sim.nodes[1]) == [1500]


def test_link_is_a_fifo_of_its_bandwidth() -> None:
    sim = make(2, lat=1000, bw=MBIT8)
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(500)), Send((1,), Blob(300)))))
    sim.schedule_input(2000, 0, Do(sends=(Send((1,), Blob(100)),)))
    sim.run(10_000)
    # second copy waits for the first to leave the link: 500 + 300 us on the wire
    assert times(sim.nodes[1]) == [1500, 1800, 3100]


def test_transmission_rounds_up_to_the_microsecond() -> None:
    sim = make(2, lat=10, bw=3 * MBIT8)  # 3 bytes per us
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(10)),)))
    sim.run(1000)
    assert times(sim.nodes[1]) == [10 + 4]  # ceil(10 / 3)


def test_multi_hop_graph_uses_shortest_path_and_bottleneck() -> None:
    g = nx.Graph()
    g.add_edge(0, 1, latency_us=1000, bandwidth_bps=MBIT8)
    g.add_edge(1, 2, latency_us=2000, bandwidth_bps=2 * MBIT8)
    g.add_edge(0, 2, latency_us=9000, bandwidth_bps=100 * MBIT8)
    topo = topology.from_graph(g)
    sim = Simulator(recorders(3), topo, tick_us=0)
    attach(sim)
    sim.schedule_input(0, 0, Do(sends=(Send((1, 2), Blob(400)),)))
    sim.run(100_000)
    assert times(sim.nodes[1]) == [1400]
    assert times(sim.nodes[2]) == [3400]  # via node 1: 3000 us, bottleneck 1 byte/us


def test_broadcast_on_equal_links_is_one_event() -> None:
    sim = make(5, lat=700, bw=10**12)
    sim.schedule_input(0, 0, Do(sends=(Send((1, 2, 3, 4), Blob(10)),)))
    rec = sim.run(10_000)
    assert rec.events == 2  # the input and one delivery event for four copies
    assert rec.delivered == 4
    assert all(times(sim.nodes[i]) == [701] for i in range(1, 5))  # 1 us on the wire


def test_message_size_is_computed_once_per_send() -> None:
    calls = []

    class Counted:
        kind = "counted"

        def encode(self) -> bytes:
            calls.append(1)
            return b"abc"

    sim = make(4)
    sim.schedule_input(0, 0, Do(sends=(Send((1, 2, 3), Counted()),)))
    rec = sim.run(10_000)
    assert len(calls) == 1
    assert rec.sent_msgs["counted"] == 3
    assert rec.sent_bytes["counted"] == 9


def test_jitter_never_reorders_a_link() -> None:
    sim = make(2, lat=1000, bw=10**12, jitter_us=5000, rng=random.Random(9))
    for k in range(200):
        sim.schedule_input(k * 10, 0, Do(sends=(Send((1,), Blob(0, tag=k)),)))
    sim.run(10_000_000)
    tags = [m.tag for _t, _s, m in sim.nodes[1].log]
    assert tags == list(range(200))
    arrivals = times(sim.nodes[1])
    assert arrivals == sorted(arrivals) and len(set(arrivals)) > 5


def test_jitter_is_bounded_and_seeded() -> None:
    def arrivals(seed: int) -> list[int]:
        sim = make(2, lat=1000, bw=10**12, jitter_us=300, rng=random.Random(seed))
        for k in range(50):
            sim.schedule_input(k * 10_000, 0, Do(sends=(Send((1,), Blob(1)),)))
        sim.run(1_000_000)
        return [t - k * 10_000 for k, t in enumerate(times(sim.nodes[1]))]

    a = arrivals(1)
    assert len(a) == 50 and all(1000 <= x <= 1300 for x in a)
    assert len(set(a)) > 10
    assert a == arrivals(1)
    assert a != arrivals(2)


# ---------------------------------------------------------------------------- CPU model
def test_cpu_queue_serialises_inputs_at_a_busy_node() -> None:
    profile = replace(CostProfile.zero(), message_base_ns=10_000)  # 10 us per input
    sim = make(4, lat=1000, bw=10**12, profile=profile)
    sim.nodes[1].echo = True
    for src in (0, 2, 3):
        sim.schedule_input(0, src, Do(sends=(Send((1,), Blob(0)),)))
    sim.run(100_000)
    # Each sender spends 10 us on its Do, so three blobs reach node 1 at 1010 us together.
    assert times(sim.nodes[1]) == [1010, 1010, 1010]
    # Node 1 serves them one after another: replies leave at 1020, 1030, 1040.
    replies = sorted(times(sim.nodes[s])[0] for s in (0, 2, 3))
    assert replies == [2020, 2030, 2040]
    rec = sim.snapshot()
    assert rec.cpu_ns[1]["message"] == 30_000


def test_cpu_costs_of_counted_operations_and_sends() -> None:
    profile = replace(
        CostProfile.zero(),
        sign_ns=4_000,
        verify_ns=2_500,
        encode_per_byte_ns=10,
        send_per_dst_ns=1_000,
    )
    sim = make(3, lat=100, bw=10**12, profile=profile)
    do = Do(sends=(Send((1, 2), Blob(100)),), costs=(("sign", 1), ("verify", 2)))
    sim.schedule_input(0, 0, do)
    rec = sim.run(10_000)
    # 4 + 2*2.5 = 9 us of crypto, then 100 bytes * 10 ns + 2 * 1 us = 3 us to send: departs at
    # 12; 1 us on the wire, 100 us of latency.
    assert times(sim.nodes[1]) == [113]
    assert rec.cpu_ns[0]["sign"] == 4_000
    assert rec.cpu_ns[0]["verify"] == 5_000
    assert rec.cpu_ns[0]["send"] == 3_000
    assert rec.op_counts[0] == {"sign": 1, "verify": 2}


def test_cost_note_is_charged_like_take_costs() -> None:
    profile = replace(CostProfile.zero(), verify_ns=7_000)
    sim = make(2, lat=100, bw=10**12, profile=profile)
    note = Note("cost", {"verify": 3})
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(0)),), notes=(note,)))
    rec = sim.run(10_000)
    assert times(sim.nodes[1]) == [121]
    assert rec.op_counts[0] == {"verify": 3}
    assert all(kind != "cost" for _t, _n, kind, _d in rec.notes)


def test_tick_is_an_input_served_in_fifo_order() -> None:
    profile = replace(CostProfile.zero(), verify_ns=3_000_000)  # 3 ms per counted verify
    sim = make(2, lat=10, bw=10**12, profile=profile, tick_us=1000)
    sim.nodes[1].tick_sends = (Send((0,), Blob(0, tag=7)),)
    slow = Do(costs=(("verify", 1),))
    sim.schedule_input(0, 1, slow)
    sim.schedule_input(0, 1, slow)
    sim.run(2_500)
    # Inputs come before the tick at t=0 and keep node 1 busy until 6000 us; the ticks at 0,
    # 1000, ..., 6000 are served after them, reading the clock when their service starts.
    assert times(sim.nodes[0]) == []
    sim.run(8_000)
    assert times(sim.nodes[0]) == [6010] * 7 + [7010]
    assert sim.nodes[1].ticks == [6000] * 7 + [7000, 8000]


# ---------------------------------------------------------------------------- faults
def test_loss_drops_with_link_probability_and_is_seeded() -> None:
    def delivered(seed: int) -> int:
        topo = topology.complete(2, 100, 10**12, loss=0.3)
        sim = Simulator(recorders(2), topo, tick_us=0, rng=random.Random(seed))
        for k in range(1000):
            sim.schedule_input(k, 0, Do(sends=(Send((1,), Blob(1)),)))
        rec = sim.run(100_000)
        assert rec.dropped["loss"] + rec.delivered == 1000
        return rec.delivered

    d = delivered(5)
    assert 620 < d < 780
    assert d == delivered(5)


def test_cut_heal_isolate_partition() -> None:
    sim = make(4, lat=100, bw=10**12)
    everyone = Do(sends=(Send((1, 2, 3), Blob(0)),))
    sim.call_at(0, lambda s: s.cut(0, 1))
    sim.schedule_input(10, 0, everyone)
    sim.call_at(1000, lambda s: s.heal(0, 1))
    sim.schedule_input(1010, 0, everyone)
    sim.schedule_faults([FaultEvent(2000, Action.ISOLATE, (0,))])
    sim.schedule_input(2010, 0, everyone)
    sim.schedule_faults([FaultEvent(3000, Action.REJOIN, (0,))])
    sim.schedule_faults([FaultEvent(4000, Action.PARTITION, (), ((0, 1), (2, 3)))])
    sim.schedule_input(4010, 0, everyone)
    sim.schedule_faults([FaultEvent(5000, Action.HEAL_ALL)])
    sim.schedule_input(5010, 0, everyone)
    rec = sim.run(100_000)
    assert times(sim.nodes[1]) == [1110, 4110, 5110]
    assert times(sim.nodes[2]) == [110, 1110, 5110]
    assert times(sim.nodes[3]) == [110, 1110, 5110]
    assert rec.dropped["cut"] == 1 + 3 + 2


def test_a_cut_drops_copies_that_arrive_while_it_holds() -> None:
    sim = make(2, lat=1000, bw=10**12)
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(0)),)))  # in flight when cut at 500
    sim.call_at(500, lambda s: s.cut(0, 1))
    sim.schedule_input(2000, 0, Do(sends=(Send((1,), Blob(0)),)))  # healed before it arrives
    sim.call_at(2500, lambda s: s.heal(0, 1))
    rec = sim.run(10_000)
    assert times(sim.nodes[1]) == [3000]
    assert rec.dropped["cut"] == 1


def test_crash_stops_delivery_and_ticks_then_recover_restores_from_persisted() -> None:
    def recover(node_id: int, persisted: list[object]) -> Recorder:
        fresh = Recorder(node_id, restored=persisted)
        fresh.sim = sim
        return fresh

    sim = make(2, lat=100, bw=10**12, tick_us=1000, recover=recover)
    sim.schedule_input(0, 1, Do(persist=(b"state-1", b"state-2")))
    sim.schedule_faults([FaultEvent(1500, Action.CRASH, (1,))])
    sim.schedule_input(2000, 0, Do(sends=(Send((1,), Blob(0)),)))
    sim.schedule_faults([FaultEvent(3500, Action.RECOVER, (1,))])
    sim.schedule_input(4000, 0, Do(sends=(Send((1,), Blob(0)),)))
    old = sim.nodes[1]
    rec = sim.run(5_000)
    new = sim.nodes[1]
    assert new is not old
    assert old.ticks == [0, 1000]
    assert new.ticks == [4000, 5000]
    assert new.restored == [b"state-1", b"state-2"]
    assert times(new) == [4100]
    assert rec.dropped["crashed"] == 1
    kinds = [(t, n, k) for t, n, k, _d in rec.notes]
    assert (1500, 1, "crash") in kinds and (3500, 1, "recover") in kinds
    assert rec.storage[1] == {"persisted": 14}


def test_crash_discards_the_inbox() -> None:
    profile = replace(CostProfile.zero(), message_base_ns=5_000_000)
    sim = make(2, lat=100, bw=10**12, profile=profile, tick_us=1000)
    for _ in range(3):
        sim.schedule_input(0, 1, Do(sends=(Send((0,), Blob(1)),)))
    sim.schedule_faults([FaultEvent(2000, Action.CRASH, (1,))])
    sim.run(50_000)
    # Only the first input (served 0..5 ms) got out: the others would start after the crash.
    assert len(times(sim.nodes[0])) == 1


def test_recover_without_factory_is_refused() -> None:
    sim = make(2)
    with pytest.raises(SimulationError):
        sim.schedule_faults([FaultEvent(10, Action.RECOVER, (1,))])
    with pytest.raises(SimulationError):
        sim.schedule_input(0, 7, Do())


def test_sending_to_a_node_that_does_not_exist_is_a_driver_error() -> None:
    sim = make(2)
    sim.schedule_input(0, 0, Do(sends=(Send((1, -1), Blob(0)),)))
    with pytest.raises(SimulationError, match="no such node"):
        sim.run(100)


def test_a_node_may_swap_its_step_handler() -> None:
    sim = make(2)
    seen: list[str] = []

    def second(src: int, msg: object) -> Ready:
        seen.append("second")
        return Ready()

    def first(src: int, msg: object) -> Ready:
        seen.append("first")
        sim.nodes[1].step = second
        return Ready()

    sim.nodes[1].step = first
    sim.schedule_input(0, 0, Do(sends=(Send((1,), Blob(0)), Send((1,), Blob(0)))))
    sim.run(10_000)
    assert seen == ["first", "second"]


def test_callback_at_the_current_instant_never_moves_the_clock_back() -> None:
    sim = make(2, tick_us=0)
    clock: list[int] = []

    def later(s: Simulator) -> None:
        s.call_at(s.now, lambda s2: clock.append(s2.now))
        s.schedule_input(s.now, 1, Do())

    sim.call_at(700, later)
    sim.run(1000)
    assert clock == [700]
    assert times(sim.nodes[1], Do) == [700]
    with pytest.raises(SimulationError, match="clock reads"):
        sim.schedule_input(10, 0, Do())


def test_node_ids_must_match_positions() -> None:
    with pytest.raises(SimulationError):
        Simulator([Recorder(1), Recorder(0)], tick_us=0)
    with pytest.raises(SimulationError):
        Simulator(recorders(3), topology.complete(2), tick_us=0)


# ---------------------------------------------------------------------------- records
def test_commits_completions_and_stop_when_complete() -> None:
    sim = make(2, lat=100, bw=10**12, tick_us=1000)
    sim.submit(0, 0, Do(sends=(Send((1,), Do(completed=("tx-a",))),)), "tx-a")
    sim.submit(50, 1, Do(commits=(Committed(0, "tx-b"),), completed=("tx-b",)), "tx-b")
    rec = sim.run(1_000_000, stop_when_complete=True)
    assert rec.submitted == {"tx-a": 0, "tx-b": 50}
    assert rec.completed == {"tx-b": 50, "tx-a": 100}
    assert rec.commits == {1: [(0, "tx-b", 50)]}
    assert rec.end_us == 100


def test_storage_reported_by_nodes_by_category() -> None:
    class Stored(Recorder):
        def storage_bytes(self) -> dict[str, int]:
            return {"blocks": 10 * self.node_id, "log": 3}

    sim = Simulator([Stored(i) for i in range(3)], tick_us=0)
    rec = sim.run(10)
    assert rec.storage == {
        0: {"blocks": 0, "log": 3},
        1: {"blocks": 10, "log": 3},
        2: {"blocks": 20, "log": 3},
    }


def test_trace_digest_is_deterministic_and_sensitive() -> None:
    def digest(seed: int, lat: int = 100) -> str:
        topo = topology.complete(4, lat, 10**9, loss=0.2)
        sim = Simulator(recorders(4, echo=True), topo, tick_us=0, rng=random.Random(seed))
        for k in range(40):
            sim.schedule_input(k * 37, k % 4, Do(sends=(Send((0, 1, 2, 3), Blob(k)),)))
        return sim.run(100_000).trace_digest

    assert digest(1) == digest(1)
    assert digest(1) != digest(2)
    assert digest(1) != digest(1, lat=101)


# ---------------------------------------------------------------------------- properties
scenario = st.fixed_dictionaries(
    {
        "n": st.integers(2, 5),
        "loss": st.sampled_from([0.0, 0.1, 0.5]),
        "jitter": st.sampled_from([0, 50, 900]),
        "base_ns": st.sampled_from([0, 700, 40_000]),
        "tick": st.sampled_from([0, 300, 1000]),
        "sends": st.lists(
            st.tuples(
                st.integers(0, 5000),
                st.integers(0, 4),
                st.lists(st.integers(0, 4), min_size=1, max_size=5),
                st.integers(0, 3000),
            ),
            max_size=30,
        ),
        "faults": st.lists(
            st.tuples(
                st.integers(0, 6000),
                st.sampled_from(["crash", "recover", "cut", "heal", "isolate", "heal_all"]),
                st.integers(0, 4),
                st.integers(0, 4),
            ),
            max_size=6,
        ),
    }
)


def run_scenario(sc: dict[str, Any], seed: int) -> tuple[Simulator, RunRecord]:
    n = int(sc["n"])
    topo = topology.complete(n, 500, 50 * MBIT8, loss=float(sc["loss"]))
    profile = replace(CostProfile.zero(), message_base_ns=sc["base_ns"])

    def recover(node_id: int, persisted: list[object]) -> Recorder:
        fresh = Recorder(node_id, restored=persisted, echo=True)
        fresh.sim = sim
        return fresh

    sim = Simulator(
        recorders(n, echo=True),
        topo,
        rng=random.Random(seed),
        tick_us=int(sc["tick"]),
        profile=profile,
        jitter_us=int(sc["jitter"]),
        recover=recover,
    )
    attach(sim)
    for at, src, dsts, size in sc["sends"]:
        sim.schedule_input(at, src % n, Do(sends=(Send(tuple(d % n for d in dsts), Blob(size)),)))
    events = []
    for at, action, a, b in sc["faults"]:
        a, b = a % n, b % n
        if action in ("cut", "heal"):
            if a == b:
                continue
            events.append(FaultEvent(at, Action(action), (a, b)))
        elif action == "heal_all":
            events.append(FaultEvent(at, Action.HEAL_ALL))
        else:
            events.append(FaultEvent(at, Action(action), (a,)))
    sim.schedule_faults(events)
    return sim, sim.run(200_000 if not sc["tick"] else 20_000)


@given(scenario, st.integers(0, 3))
def test_random_scenarios_conserve_messages_keep_time_and_repeat(
    sc: dict[str, Any], seed: int
) -> None:
    sim, rec = run_scenario(sc, seed)
    _again, rec2 = run_scenario(sc, seed)
    assert rec2.trace_digest == rec.trace_digest
    assert rec2.delivered == rec.delivered
    # each copy sent was delivered, dropped for a reason, or is still on its way
    dropped = rec.dropped
    sent = sum(rec.sent_msgs.values())
    gone = dropped["cut"] + dropped["loss"] + dropped["crashed"]
    assert sent == rec.delivered + gone + sim.in_flight()
    for node in sim.nodes:
        seen = [t for t, _s, _m in node.log]
        assert seen == sorted(seen)
        assert node.ticks == sorted(node.ticks)


def test_drain_runs_until_lagging_nodes_caught_up() -> None:
    """Node 0 commits at once; node 1 gets the same commit 30 ms later; node 2 never commits."""
    nodes = recorders(3)
    sim = Simulator(nodes, topology.complete(3, latency_us=30_000), tick_us=0)
    attach(sim)
    late = Do(commits=(Committed(1, "b1"),))
    sim.schedule_input(0, 0, Do(commits=(Committed(1, "b1"),), sends=(Send((1,), late),)))
    sim.run(1000)
    assert [sim.committed_count(i) for i in range(3)] == [1, 0, 0]
    added = sim.drain(range(3), chunk_us=10_000, quiet_us=100_000)
    assert [sim.committed_count(i) for i in range(3)] == [1, 1, 0]
    # Node 2 never commits: the drain ends once nothing was committed for quiet_us.
    assert 130_000 <= added <= 150_000
    # Caught up: stops at the first chunk boundary after the last lagging commit.
    nodes = recorders(2)
    sim2 = Simulator(nodes, topology.complete(2, latency_us=30_000), tick_us=0)
    attach(sim2)
    sim2.schedule_input(0, 0, Do(commits=(Committed(1, "x"),), sends=(Send((1,), late),)))
    sim2.run(10)
    assert 29_000 <= sim2.drain([0, 1], chunk_us=10_000) <= 40_000
    # Bounded by max_us whatever the nodes do.
    assert sim.drain(range(3), chunk_us=1000, quiet_us=10**9, max_us=5000) == 5000


# ---------------------------------------------------------------------------- deadline ticks
class _Alarmed(Recorder):
    """A deadline-driven node whose deadline only a message sets (500 us after it)."""

    alarm: int | None = None

    def step(self, src: int, msg: Any) -> Ready:
        """Record; a blob sets the alarm."""
        if isinstance(msg, Blob):
            self.alarm = self.sim.now + 500
        return super().step(src, msg)

    def tick(self, now: int) -> Ready:
        """Record the tick; the alarm has rung once it is due."""
        if self.alarm is not None and now >= self.alarm:
            self.alarm = None
        return super().tick(now)

    def next_deadline(self) -> int | None:
        """The alarm, if set."""
        return self.alarm


@pytest.mark.parametrize("dsts", [(1,), (1, 2)])
def test_a_message_that_sets_a_deadline_wakes_the_node_without_ticks(dsts: tuple[int, ...]) -> None:
    # one destination and a broadcast take different inlined delivery paths; both must re-read
    # the deadline (a closed-loop baseline whose only later inputs were messages never woke)
    nodes = [_Alarmed(i) for i in range(3)]
    sim = Simulator(nodes, topology.complete(3, 1000, 10**12), tick_us=0)
    attach(sim)
    sim.schedule_input(100, 0, Do(sends=(Send(dsts, Blob(0)),)))
    sim.run(5000)
    for i in dsts:
        assert times(nodes[i]) == [1100]
        assert nodes[i].ticks[1:] == [1600]  # the first tick at 0, then the alarm's
    assert nodes[0].ticks == [0]
