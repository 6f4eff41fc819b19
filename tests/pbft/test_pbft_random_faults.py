"""Randomized fault schedules: safety always, liveness once faults heal, with at most f faulty.

The generator and its verdicts live in ``schedules.py`` (the fault mix, measured in
``test_pbft_adversary.py``): f faulty replicas in most seeds, colluding equivocators and
SplitBrain coalitions of at most f, new primaries choosing their certificates, lying blockers,
replies and state transfers, request revivers, flooders, replicas whose stable storage fails,
lying clients, a stateful application with refusals, link drops, cuts, delay, duplication and
reordering, and crash-recover cycles of honest replicas. Every failure is a typed verdict
(``verdicts.py``).

With f+1 faulty replicas the :class:`medbench.consensus.pbft.byzantine.SplitBrain` coalition makes
the checker report a violation, so the checker is not vacuous; and with a recovery that loses the
NEW-VIEW (BUG-2 of issue 6) put back, the recovery-focused schedules report the double vote.
"""

from __future__ import annotations

import pytest
from pbft_harness import Network, safety_violations
from schedules import check_draw, check_seed, stratified
from verdicts import VerdictFailure

from medbench.consensus.pbft import Replica
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.log import COMMIT_PHASE, PREPARE_PHASE
from medbench.consensus.pbft.messages import NewView
from medbench.consensus.pbft.recovery import Recovery
from medbench.quorum import QuorumTracker


@pytest.mark.parametrize("chunk", range(10))
def test_random_schedules(chunk: int) -> None:
    """300 seeds in ten chunks of 30."""
    for seed in range(chunk * 30, chunk * 30 + 30):
        check_seed(seed)


@pytest.mark.parametrize("chunk", range(6))
def test_stratified_schedules(chunk: int) -> None:
    """264 stratified draws: each of the 44 behaviours six times (the mutation gate's quick plan
    walks the same draws)."""
    for i in range(chunk * 44, chunk * 44 + 44):
        check_draw(stratified(i))


@pytest.mark.parametrize("chunk", range(4))
def test_random_schedules_recovering_during_view_changes(chunk: int) -> None:
    """100 seeds focused on crashes around a view change to a Byzantine primary."""
    for seed in range(chunk * 25, chunk * 25 + 25):
        check_seed(seed, recovery=True)


@pytest.mark.parametrize(("scheme", "seeds"), [("macs", 20), ("signatures", 8)])
def test_random_schedules_with_real_authentication(scheme: str, seeds: int) -> None:
    """Authenticator vectors and Ed25519 signatures through the same fault schedules."""
    for seed in range(seeds):
        check_seed(seed, scheme)
        check_seed(seed, scheme, recovery=True)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(100))
def test_random_schedules_soak(chunk: int) -> None:
    """10 000 more seeds, and 2 000 more focused on recovery, for ``make soak``."""
    for seed in range(10_000 + chunk * 100, 10_000 + chunk * 100 + 100):
        check_seed(seed)
    for seed in range(100_000 + chunk * 20, 100_000 + chunk * 20 + 20):
        check_seed(seed, recovery=True)


def test_schedules_catch_a_replica_that_forgets_its_new_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not vacuous for recovery: with BUG-2 of issue 6 put back (the NEW-VIEW not replayed on
    restart, no check against the replica's own PREPARE), the schedules report a double vote."""
    restore = Recovery.restore
    monkeypatch.setattr(
        Recovery,
        "restore",
        lambda r, records, now: restore(r, [x for x in records if not isinstance(x, NewView)], now),
    )
    monkeypatch.setattr(Replica, "_voted_otherwise", lambda self, slot, view, digest: False)
    caught = []
    for seed in range(20):
        try:
            check_seed(seed, recovery=True)
        except VerdictFailure as exc:
            caught.append(str(exc))
    assert any("different prepares" in c for c in caught), caught


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


@pytest.mark.parametrize("n", [5, 6, 8, 9])
@pytest.mark.parametrize("seed", range(3))
def test_one_equivocating_primary_cannot_split_sizes_between_3f_plus_1(n: int, seed: int) -> None:
    """At n = 5, 6, 8, 9 a 2f+1 quorum is too small: two of them can meet only in the faulty
    primary. The strong quorum ceil((n+f+1)/2) keeps these sizes safe against the same split
    that f+1 colluders use above; with 2f+1 quorums the very same run commits two batches."""

    def run(quorum_2f_plus_1: bool) -> list[str]:
        net = Network(n=n, clients=2, seed=seed, checkpoint_interval=4, log_window=8)
        f = (n - 1) // 3
        coalition = list(range(f))  # f faulty replicas, the primary of view 0 among them
        outbox: dict = {}
        for r in coalition:
            net.nodes[r] = faults.SplitBrain(net.nodes[r], coalition, net.keyrings, outbox)
        if quorum_2f_plus_1:  # the textbook threshold, outside n = 3f + 1
            q = 2 * f + 1
            for r in range(n):
                inner = getattr(net.nodes[r], "inner", net.nodes[r])
                inner.quorum = q
                inner.votes = QuorumTracker(n, {PREPARE_PHASE: q, COMMIT_PHASE: q})
        for k in range(3):
            for c in net.client_ids:
                net.submit(c, b"op%d" % k)
        net.run(1_000_000)
        return safety_violations(net, list(range(f, n)))

    assert run(quorum_2f_plus_1=False) == []
    assert any("committed different batches" in p for p in run(quorum_2f_plus_1=True))
