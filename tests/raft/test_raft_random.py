"""Randomized fault schedules: safety always, liveness once faults heal, with at most f crashed.

Each seed draws n (3, 5 or 7), crash-and-recover cycles (the current leader, or any node; at
most f = (n - 1) // 2 down at once, the rest keep a majority), network faults (random drops, a
cut link, extra delay, a partition) for a fault phase during which the clients keep submitting,
with small snapshot intervals so that compaction and InstallSnapshot happen; then it heals the
network and restarts the crashed. Verdicts over every node (crashed-and-recovered ones
included):

* safety — no two nodes apply different entries at one index, no node applies two, at most one
  leader per term, equal state digests at equal indices (``safety_violations``), checked after
  the fault phase, after the clients finish and at the end;
* liveness — every request completes at its client;
* convergence — after a heartbeat or two every node has applied the same index with the same
  state digest, and every submitted request was executed exactly once (counted on a node that
  never installed a snapshot, which applies every entry itself).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from raft_harness import Network, executed_ops, safety_violations


def run_schedule(seed: int) -> Network:
    """Run one seed's fault phase and recovery; assert safety, liveness and convergence."""
    rng = random.Random(seed)
    n = rng.choice((3, 3, 5, 7))
    f = (n - 1) // 2
    net = Network(
        n=n,
        clients=2,
        seed=seed,
        tick_us=5_000,
        latency_us=(200, 3_000),
        election_timeout_us=40_000,
        heartbeat_interval_us=10_000,
        client_timeout_us=60_000,
        max_entries_per_append=rng.choice((1, 4, 64)),
        snapshot_interval=rng.choice((0, 3, 8, 1024)),
        disk_roundtrip=rng.random() < 0.3,
    )
    net.drop_rate = rng.choice((0.0, 0.0, 0.02, 0.05, 0.1))
    if rng.random() < 0.5:
        a, b = rng.sample(range(n), 2)
        net.cut_link(a, b)
    if rng.random() < 0.3:
        net.extra_delay[rng.randrange(n)] = rng.randint(1_000, 30_000)
    if rng.random() < 0.3:
        minority = rng.sample(range(n), rng.randint(1, f))
        net.partition(minority, [i for i in range(n) if i not in minority] + net.client_ids)
    ops: Counter[tuple[int, bytes]] = Counter()
    phase = rng.randint(100_000, 600_000)
    submits = sorted(
        (rng.randint(0, phase), c, k) for c in net.client_ids for k in range(rng.randint(3, 10))
    )
    crashes = [
        (rng.randint(0, phase), rng.choice(("leader", "any")), rng.randrange(n),
         rng.randint(5_000, 150_000))
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4)))
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
                victim = max(range(n), key=lambda i: (net.replicas([i])[0].role == "leader", i))
            if victim not in net.crashed and len(net.crashed) < f:
                net.crash(victim)
                restarts[victim] = net.now + downtime
        for r, at in sorted(restarts.items()):
            if net.now >= at:
                net.restart(r)
                del restarts[r]
    for _, c, k in submits:
        submit(c, k)
    problems = safety_violations(net, range(n))
    assert not problems, f"seed {seed}: {problems}"
    net.heal()
    for r in sorted(net.crashed):
        net.restart(r)
    done = net.run_until_idle(limit_us=30_000_000, step_us=20_000)
    problems = safety_violations(net, range(n))
    assert not problems, f"seed {seed}: {problems}"
    rs = net.replicas()
    assert done, (
        f"seed {seed}: {len(net.completed)}/{net.submitted} completed; terms "
        f"{[r.term for r in rs]} roles {[str(r.role) for r in rs]} applied "
        f"{[r.last_applied for r in rs]}"
    )
    net.run(200_000)  # heartbeats carry the last commit index to every follower
    problems = safety_violations(net, range(n))
    assert not problems, f"seed {seed}: {problems}"
    assert len({(r.last_applied, r.state_digest) for r in rs}) == 1, (
        f"seed {seed}: applied {[r.last_applied for r in rs]}"
    )
    assert len(net.completed) == net.submitted
    installed = {i for i, note in net.notes if note.kind == "snapshot-installed"}
    whole = [r for r in rs if r.node_id not in installed]
    assert whole, f"seed {seed}: every node installed a snapshot"
    for r in whole:  # it applied every entry itself: every request exactly once
        assert Counter(executed_ops(r, net)) == ops, f"seed {seed}: node {r.node_id}"
    assert all(r.machine.applied == sum(ops.values()) for r in rs)
    return net


@pytest.mark.parametrize("chunk", range(4))
def test_random_schedules(chunk: int) -> None:
    """100 seeds in four chunks of 25."""
    for seed in range(chunk * 25, chunk * 25 + 25):
        run_schedule(seed)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(20))
def test_random_schedules_soak(chunk: int) -> None:
    """2 000 more seeds, for ``make soak``."""
    for seed in range(10_000 + chunk * 100, 10_000 + chunk * 100 + 100):
        run_schedule(seed)
