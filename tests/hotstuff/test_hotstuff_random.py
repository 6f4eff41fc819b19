"""Randomized fault schedules: safety always, liveness once faults heal, with at most f faulty.

Each seed draws n (4, 5 or 7), up to f Byzantine replicas and their behaviour
(:mod:`hotstuff_byzantine`, or a black hole), crash-and-recover cycles of *honest* replicas (the
current leader, or any; a crash loses memory but not the persisted records), network faults
(random drops, a cut link, extra delay, a partition) for a fault phase during which the clients
keep submitting; then it heals the network and restarts the crashed. Verdicts, over every honest
replica (crashed-and-recovered ones included):

* safety — no honest replica votes for two blocks in one view; no two commit different blocks
  at one height, no gaps, equal state digests at equal heights (``safety_violations``), checked
  after the fault phase, after the clients finish and at the end;
* liveness — every request completes at its client;
* convergence — after a little more traffic every honest replica has the same ledger height and
  state digest, and executed every submitted request exactly once.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hotstuff_byzantine import BEHAVIOURS, FORKING, Byzantine
from hotstuff_harness import Network, executed_ops, safety_violations


def run_schedule(
    seed: int, scheme: str = "modeled", recovery: bool = False, forking: bool = False
) -> Network:
    """Run one seed's fault phase and recovery; assert safety, liveness and convergence.

    ``recovery`` focuses the draw on restarts: replica 1 is a ``late-equivocating`` leader and
    honest replicas crash and restart more often (the other draws stay random). ``forking``
    makes f replicas stale-QC leaders (``hotstuff_byzantine.FORKING``, one depth each).
    """
    rng = random.Random(seed)
    n = rng.choice((4, 4, 5, 7))
    f = (n - 1) // 3
    net = Network(
        n=n,
        clients=2,
        seed=seed,
        scheme=scheme,
        tick_us=5_000,
        latency_us=(200, 3_000),
        max_batch_size=rng.choice((1, 2, 4)),
        max_batch_delay_us=rng.choice((0, 2_000)),
        view_timeout_us=40_000,
        max_view_timeout_us=1_000_000,
        sync_timeout_us=30_000,
        client_timeout_us=80_000,
        max_sync_blocks=rng.choice((2, 8, 64)),
        disk_roundtrip=rng.random() < 0.3,
    )
    byzantine = [1] if recovery else rng.sample(range(n), f if forking else rng.randint(0, f))
    holes = set()
    for r in byzantine:
        kind = "late-equivocating" if recovery else rng.choice((*BEHAVIOURS, "black-hole"))
        if forking:
            kind = rng.choice(FORKING)
        if kind == "black-hole":
            holes.add(r)
        else:
            net.nodes[r] = Byzantine(net.nodes[r], kind)
    net.black_holes |= holes
    honest = [r for r in range(n) if r not in byzantine]
    net.drop_rate = rng.choice((0.0, 0.0, 0.02, 0.05, 0.1))
    if rng.random() < 0.5:
        a, b = rng.sample(range(n), 2)
        net.cut_link(a, b)
    if rng.random() < 0.3:
        net.extra_delay[rng.randrange(n)] = rng.randint(1_000, 30_000)
    if rng.random() < 0.3:
        minority = rng.sample(range(n), rng.randint(1, n // 2))
        net.partition(minority, [i for i in range(n) if i not in minority] + net.client_ids)
    ops: Counter[tuple[int, bytes]] = Counter()
    phase = rng.randint(100_000, 600_000)
    submits = sorted(
        (rng.randint(0, phase), c, k) for c in net.client_ids for k in range(rng.randint(3, 8))
    )
    crashes = [
        (rng.randint(0, phase), rng.choice(("leader", "any")), rng.choice(honest),
         rng.randint(5_000, 150_000))
        for _ in range(rng.choice((3, 4, 5, 6) if recovery else (0, 1, 1, 2, 3, 4)))
    ]  # fmt: skip
    restarts: dict[int, int] = {}

    def submit(c: int, k: int) -> None:
        op = b"s%d-%d-%d" % (seed, c, k)
        ops[(c, op)] += 1
        net.submit(c, op)

    while net.now < phase:
        net.run(min(net.tick_us, phase - net.now))
        while submits and submits[0][0] <= net.now:
            _, c, k = submits.pop(0)
            submit(c, k)
        for crash in list(crashes):
            at, how, victim, downtime = crash
            if net.now < at:
                continue
            crashes.remove(crash)
            if how == "leader":
                victim = net.replicas([victim])[0].view % n
            if victim in honest and victim not in net.crashed:
                net.crash(victim)
                restarts[victim] = net.now + downtime
        for r, at in sorted(restarts.items()):
            if net.now >= at:
                net.restart(r)
                del restarts[r]
    for _, c, k in submits:
        submit(c, k)
    problems = safety_violations(net, honest)
    assert not problems, f"seed {seed}: {problems}"
    net.heal()
    net.black_holes |= holes  # a Byzantine black hole stays one
    for r in byzantine:  # forking leaders stop forking (their forks left one replica ahead,
        if forking:  # and the tips of an idle chain need not meet while it goes on)
            net.nodes[r].kind = "honest"
    for r in sorted(net.crashed):
        net.restart(r)
    done = net.run_until_idle(limit_us=30_000_000, step_us=20_000)
    problems = safety_violations(net, honest)
    assert not problems, f"seed {seed}: {problems}"
    rs = net.replicas(honest)
    assert done, (
        f"seed {seed}: {len(net.completed)}/{net.submitted} completed; views "
        f"{[r.view for r in rs]} heights {[r.tree.height for r in rs]}"
    )
    for turn in range(12):  # a little more traffic: every honest replica reaches the same tip
        net.run(200_000)
        if len({(r.tree.height, r.state_digest) for r in rs}) == 1:
            break
        net.submit(net.client_ids[turn % 2], b"s%d-more%d" % (seed, turn))
        ops[(net.client_ids[turn % 2], b"s%d-more%d" % (seed, turn))] += 1
        net.run_until_idle(limit_us=10_000_000, step_us=20_000)
    problems = safety_violations(net, honest)
    assert not problems, f"seed {seed}: {problems}"
    assert len({(r.tree.height, r.state_digest) for r in rs}) == 1, (
        f"seed {seed}: heights {[r.tree.height for r in rs]}"
    )
    assert len(net.completed) == net.submitted
    for r in rs:
        assert Counter(executed_ops(r)) == ops, f"seed {seed}: replica {r.node_id} executed"
    return net


@pytest.mark.parametrize("chunk", range(4))
def test_random_schedules(chunk: int) -> None:
    """100 seeds in four chunks of 25."""
    for seed in range(chunk * 25, chunk * 25 + 25):
        run_schedule(seed)


@pytest.mark.parametrize("chunk", range(2))
def test_random_schedules_recovering_next_to_a_late_equivocator(chunk: int) -> None:
    """50 seeds focused on restarts while a faulty leader offers conflicting blocks."""
    for seed in range(500 + chunk * 25, 500 + chunk * 25 + 25):
        run_schedule(seed, recovery=True)


@pytest.mark.parametrize("chunk", range(2))
def test_random_schedules_with_forking_leaders(chunk: int) -> None:
    """50 seeds where f replicas lead with stale QCs (forks below their blocks)."""
    for seed in range(2_000 + chunk * 25, 2_000 + chunk * 25 + 25):
        run_schedule(seed, forking=True)


@pytest.mark.parametrize(("scheme", "seeds"), [("macs", 10), ("signatures", 5)])
def test_random_schedules_with_real_authentication(scheme: str, seeds: int) -> None:
    """MAC authenticator vectors (no shared verdicts) and Ed25519 through the same schedules."""
    for seed in range(1_000, 1_000 + seeds):
        run_schedule(seed, scheme)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(20))
def test_random_schedules_soak(chunk: int) -> None:
    """2 000 more seeds, and 400 more focused on recovery, for ``make soak``."""
    for seed in range(10_000 + chunk * 100, 10_000 + chunk * 100 + 100):
        run_schedule(seed)
    for seed in range(100_000 + chunk * 20, 100_000 + chunk * 20 + 20):
        run_schedule(seed, recovery=True)


def test_schedules_catch_a_replica_that_forgets_its_votes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous for recovery: with the vote records dropped on restart (the safety rules'
    state lost), some schedule makes a recovered replica vote twice in one view."""
    from medbench.consensus.hotstuff import Vote

    restart = Network.restart

    def forgetful(self: Network, i: int, records: list | None = None) -> None:
        recs = self.persisted[i] if records is None else records
        restart(self, i, [r for r in recs if not isinstance(r, Vote)])

    monkeypatch.setattr(Network, "restart", forgetful)
    caught = []
    for seed in range(500, 530):
        try:
            run_schedule(seed, recovery=True)
        except AssertionError as exc:
            caught.append(str(exc))
    assert any("voted for 2 different blocks" in c for c in caught), caught
