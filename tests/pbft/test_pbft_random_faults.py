"""Randomized fault schedules: safety always, liveness once faults heal, with at most f faulty.

Each seed draws n, the faulty replicas (at most f) and their behaviour (Byzantine wrappers from
:mod:`medbench.faults`, crash and recover, black hole), network faults (random drops, a cut link,
extra delay) for a fault phase, then heals the network and restarts crashed replicas. Verdicts:

* safety — no two honest replicas commit different batches at one sequence number, no gaps, and
  their block chains agree (``safety_violations``);
* liveness — every submitted request completes (f+1 matching replies) after healing.

With f+1 faulty replicas the :class:`medbench.faults.SplitBrain` coalition makes the checker report
a violation, so the checker is not vacuous.
"""

from __future__ import annotations

import random

import pytest
from pbft_harness import Network, safety_violations

from medbench import faults
from medbench.consensus.pbft import BlockMode

BEHAVIOURS = (
    "silent",
    "dropping",
    "altering",
    "equivocating",
    "bad-view",
    "bad-sequence",
    "bad-digest",
    "replayer",
    "crash",
    "black-hole",
)


def run_schedule(seed: int, scheme: str = "modeled") -> tuple[Network, list[int]]:
    """Run one randomized schedule; return the network and the honest replica ids."""
    rng = random.Random(seed)
    n = rng.choice((4, 4, 4, 7))
    f = (n - 1) // 3
    clients = 2
    mode = rng.choice((BlockMode.INTEGRATED, BlockMode.BLOCKER))
    net = Network(
        n=n,
        clients=clients,
        seed=seed,
        scheme=scheme,
        tick_us=5_000,
        latency_us=(200, 3_000),
        checkpoint_interval=4,
        log_window=8,
        max_batch_size=rng.choice((1, 2, 4)),
        max_batch_delay_us=rng.choice((0, 2_000)),
        view_change_timeout_us=60_000,
        fetch_timeout_us=40_000,
        client_timeout_us=80_000,
        block_mode=mode,
        block_size=3,
        block_interval_us=50_000,
    )
    faulty = rng.sample(range(n), rng.randint(0, f))
    crashed = []
    holes = set()
    for r in faulty:
        kind = rng.choice(BEHAVIOURS)
        inner = net.nodes[r]
        if kind == "silent":
            net.nodes[r] = faults.SilentPrimary(inner)
        elif kind == "dropping":
            net.nodes[r] = faults.DroppingPrimary(inner, [n])
        elif kind == "altering":
            net.nodes[r] = faults.AlteringPrimary(inner)
        elif kind == "equivocating":
            net.nodes[r] = faults.EquivocatingPrimary(inner)
        elif kind.startswith("bad-"):
            net.nodes[r] = faults.BadVoter(inner, kind[4:])
        elif kind == "replayer":
            net.nodes[r] = faults.Replayer(inner)
        elif kind == "crash":
            crashed.append(r)
        else:
            holes.add(r)
    net.black_holes |= holes
    honest = [r for r in range(n) if r not in faulty]
    # network faults during the fault phase (they may hit honest replicas too: asynchrony)
    net.drop_rate = rng.choice((0.0, 0.0, 0.02, 0.05))
    if rng.random() < 0.5:
        a, b = rng.sample(range(n), 2)
        net.cut_link(a, b)
    if rng.random() < 0.3:
        net.extra_delay[rng.randrange(n)] = rng.randint(1_000, 30_000)
    requests = rng.randint(3, 6)
    for k in range(requests):
        for c in net.client_ids:
            net.submit(c, b"seed%d-op%d" % (seed, k))
    crash_at = rng.randint(0, 150_000)
    net.run(crash_at)
    for r in crashed:
        net.crash(r)
    net.run(rng.randint(50_000, 300_000))
    net.heal()
    net.black_holes |= holes  # a Byzantine black hole stays one
    for r in crashed:
        net.restart(r)
    return net, honest


def check_seed(seed: int, scheme: str = "modeled") -> None:
    net, honest = run_schedule(seed, scheme)
    done = net.run_until_idle(limit_us=20_000_000, step_us=20_000)
    problems = safety_violations(net, honest)
    assert not problems, f"seed {seed}: {problems}"
    assert done, (
        f"seed {seed}: {len(net.completed)}/{net.submitted} completed; views "
        f"{[r.view for r in net.replicas()]} executed {[r.last_executed for r in net.replicas()]}"
    )
    assert len(net.completed) == net.submitted
    if net.config.block_mode is BlockMode.BLOCKER:
        # liveness of blocks: every accepted transaction ends up in exactly one block, even when
        # the blocker is faulty (the stall makes the replicas change view, hence blocker)
        net.run(3_000_000)
        problems = safety_violations(net, honest)
        assert not problems, f"seed {seed}: {problems}"
        top = max(r.last_executed for r in net.replicas(honest))
        for r in net.replicas(honest):
            if r.last_executed == top:
                assert not r.chain.unblocked, f"seed {seed}: replica {r.node_id} left txs unblocked"
    # every completed request was executed exactly once by every up-to-date honest replica
    for r in net.replicas(honest):
        executed = [req.digest() for b in net.committed[r.node_id].values() for req in b.requests]
        assert len(executed) == len(set(executed)), f"seed {seed}: replica executed twice"


@pytest.mark.parametrize("chunk", range(10))
def test_random_schedules(chunk: int) -> None:
    """300 seeds in ten chunks of 30."""
    for seed in range(chunk * 30, chunk * 30 + 30):
        check_seed(seed)


@pytest.mark.parametrize(("scheme", "seeds"), [("macs", 20), ("signatures", 8)])
def test_random_schedules_with_real_authentication(scheme: str, seeds: int) -> None:
    """Authenticator vectors and Ed25519 signatures through the same fault schedules."""
    for seed in range(seeds):
        check_seed(seed, scheme)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(100))
def test_random_schedules_soak(chunk: int) -> None:
    """10 000 more seeds for ``make soak``."""
    for seed in range(10_000 + chunk * 100, 10_000 + chunk * 100 + 100):
        check_seed(seed)


@pytest.mark.parametrize("seed", range(5))
def test_f_plus_one_split_brain_breaks_safety(seed: int) -> None:
    """With f+1 colluding replicas the checker must report conflicting commits."""
    net = Network(n=4, clients=2, seed=seed, checkpoint_interval=4, log_window=8)
    outbox: dict = {}
    for r in (0, 1):
        net.nodes[r] = faults.SplitBrain(net.nodes[r], [0, 1], net.keyrings, outbox)
    for k in range(3):
        for c in net.client_ids:
            net.submit(c, b"op%d" % k)
    net.run(1_000_000)
    problems = safety_violations(net, [2, 3])
    assert any("committed different batches" in p for p in problems)
    assert any("chains" in p for p in problems)
