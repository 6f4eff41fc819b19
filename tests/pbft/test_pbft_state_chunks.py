"""State transfer in bounded pieces: a replica far behind is sent its history checkpoint by
checkpoint, each STATE under ``max_state_bytes`` (the wire's frame limit stays respected)."""

from __future__ import annotations

from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Replica
from medbench.consensus.pbft.messages import Fetch, State

BUDGET = 3_000


def test_far_behind_replica_catches_up_in_pieces() -> None:
    net = Network(
        n=4, clients=2, seed=31, checkpoint_interval=4, log_window=8, max_batch_size=1,
        max_state_bytes=BUDGET,
    )  # fmt: skip
    net.isolated.add(3)
    for k in range(40):
        net.submit(4, b"a%03d" % k + b"x" * 100)
        net.submit(5, b"b%03d" % k + b"x" * 100)
    assert net.run_until_idle(30_000_000)
    sizes: list[int] = []
    original = net._apply

    def spy(src: int, ready):  # type: ignore[no-untyped-def]
        for send in ready.messages:
            if isinstance(send.msg, State):
                sizes.append(len(send.msg.encode()))
        original(src, ready)

    net._apply = spy  # type: ignore[method-assign]
    net.heal()
    for k in range(40, 44):
        net.submit(4, b"a%03d" % k)
        net.submit(5, b"b%03d" % k)
    assert net.run_until_idle(30_000_000)
    net.run(2_000_000)
    r3: Replica = net.nodes[3]
    assert r3.last_executed == net.nodes[0].last_executed > 60
    assert r3.state_digest == net.nodes[0].state_digest
    assert len(sizes) >= 5  # many pieces, not one answer
    assert max(sizes) < 2 * BUDGET  # one piece may exceed the budget by its last batch only
    assert safety_violations(net, range(4)) == []


def test_restarted_replica_asks_for_the_next_piece() -> None:
    net = Network(
        n=4, clients=1, seed=32, checkpoint_interval=2, log_window=4, max_batch_size=1,
        max_state_bytes=1_000,
    )  # fmt: skip
    net.crash(2)
    for k in range(30):
        net.submit(4, b"op%02d" % k + b"y" * 80)
    assert net.run_until_idle(30_000_000)
    net.restart(2)  # its FETCH has no target: each STATE piece is followed by a new FETCH
    net.run(3_000_000)  # no new requests: no new checkpoints to learn a target from
    r2: Replica = net.nodes[2]
    assert r2.last_executed == net.nodes[0].last_executed
    assert safety_violations(net, range(4)) == []


def test_fetch_answer_ends_at_a_certified_checkpoint() -> None:
    net = Network(n=4, clients=1, seed=33, checkpoint_interval=2, log_window=4, max_batch_size=1,
                  max_state_bytes=500)  # fmt: skip
    for k in range(12):
        net.submit(4, b"z%02d" % k + b"q" * 80)
    assert net.run_until_idle(30_000_000)
    r0: Replica = net.nodes[0]
    f = Fetch(1, 3)
    object.__setattr__(f, "auth", net.keyrings[3].sign(f.body()))
    ready = r0.step(3, f)
    (state,) = [s.msg for s in ready.messages if isinstance(s.msg, State)]
    assert state.checkpoint_sequence < r0.checkpoints.stable
    assert state.checkpoint_sequence in r0.checkpoints.proofs
    assert {c.sequence for c in state.proof} == {state.checkpoint_sequence}
    assert len(state.batches) == state.checkpoint_sequence
