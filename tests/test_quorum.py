"""Quorum tracker on both backends, checked against a deliberately dumb model."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("n", "f", "strong", "weak"),
    [
        (1, 0, 1, 1),
        (2, 0, 2, 1),
        (4, 1, 3, 2),
        (5, 1, 4, 2),
        (6, 1, 4, 2),
        (7, 2, 5, 3),
        (8, 2, 6, 3),
        (10, 3, 7, 4),
        (100, 33, 67, 34),
    ],
)
def test_thresholds(quorum_impl: ModuleType, n: int, f: int, strong: int, weak: int) -> None:
    assert quorum_impl.max_faulty(n) == f
    assert quorum_impl.strong_quorum(n) == strong
    assert quorum_impl.weak_quorum(n) == weak
    t = quorum_impl.QuorumTracker(n)
    assert (t.f, t.strong, t.weak) == (f, strong, weak)


def test_strong_quorums_intersect_in_an_honest_replica_and_stay_reachable(
    quorum_impl: ModuleType,
) -> None:
    for n in range(1, 400):
        f, q = quorum_impl.max_faulty(n), quorum_impl.strong_quorum(n)
        assert 2 * q - n >= f + 1, n  # any two quorums share f+1 replicas: one is honest
        assert q <= n - f, n  # the honest replicas alone can form one
        assert (q == 2 * f + 1) == (n == 3 * f + 1), n  # the usual 2f+1 exactly at 3f+1
        assert quorum_impl.QuorumTracker(n).strong == q


def test_reached_exactly_once_then_already(quorum_impl: ModuleType) -> None:
    S = quorum_impl.Status
    t = quorum_impl.QuorumTracker(4)
    d = b"d" * 32
    assert t.add(1, 0, 5, d, 0) == S.PENDING
    assert t.add(1, 0, 5, d, 0) == S.DUPLICATE
    assert t.add(1, 0, 5, d, 1) == S.PENDING
    assert t.add(1, 0, 5, d, 2) == S.REACHED
    assert t.add(1, 0, 5, d, 3) == S.ALREADY
    assert t.count(1, 0, 5, d) == 4
    assert t.voters(1, 0, 5, d) == frozenset({0, 1, 2, 3})
    assert t.reached(1, 0, 5, d)
    assert not t.reached(2, 0, 5, d)


def test_equivocation_gives_evidence_and_is_not_counted(quorum_impl: ModuleType) -> None:
    S = quorum_impl.Status
    t = quorum_impl.QuorumTracker(4)
    a, b = b"a" * 32, b"b" * 32
    assert t.add(2, 1, 9, a, 3) == S.PENDING
    assert t.add(2, 1, 9, b, 3) == S.CONFLICT
    assert t.count(2, 1, 9, b) == 0
    (ev,) = t.take_evidence()
    assert (ev.phase, ev.view, ev.sequence, ev.voter) == (2, 1, 9, 3)
    assert (ev.first_digest, ev.second_digest) == (a, b)
    assert t.take_evidence() == []
    # A different view or phase is a different vote, not equivocation.
    assert t.add(2, 2, 9, b, 3) == S.PENDING
    assert t.add(1, 1, 9, b, 3) == S.PENDING


def test_weak_threshold_per_phase(quorum_impl: ModuleType) -> None:
    S = quorum_impl.Status
    t = quorum_impl.QuorumTracker(7, thresholds={9: 3})
    assert t.threshold(9) == 3 and t.threshold(1) == 5
    assert [t.add(9, 0, 1, b"r", v) for v in range(4)] == [
        S.PENDING,
        S.PENDING,
        S.REACHED,
        S.ALREADY,
    ]
    with pytest.raises(ValueError):
        quorum_impl.QuorumTracker(4, thresholds={1: 5})


def test_forget_below_low_watermark(quorum_impl: ModuleType) -> None:
    t = quorum_impl.QuorumTracker(4)
    for seq in range(10):
        t.add(1, 0, seq, b"x", 0)
    assert len(t) == 10
    t.forget_below(6)
    assert len(t) == 4
    assert t.count(1, 0, 3, b"x") == 0
    assert t.count(1, 0, 7, b"x") == 1
    with pytest.raises(ValueError, match="low watermark"):
        t.add(1, 0, 5, b"x", 1)


def test_voter_out_of_range(quorum_impl: ModuleType) -> None:
    t = quorum_impl.QuorumTracker(4)
    with pytest.raises(ValueError):
        t.add(1, 0, 0, b"x", 4)
    with pytest.raises(ValueError):
        t.add(1, 0, 0, b"x", -1)


votes = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 3),
        st.sampled_from([b"a", b"b", b"c"]),
        st.integers(0, 6),
    ),
    max_size=300,
)


@given(votes)
def test_matches_dumb_model(quorum_impl: ModuleType, stream: list[tuple]) -> None:  # type: ignore[type-arg]
    S = quorum_impl.Status
    t = quorum_impl.QuorumTracker(7)
    seen: list[tuple] = []  # type: ignore[type-arg]
    for phase, view, seq, digest, voter in stream:
        firsts = [v for v in seen if v[:3] == (phase, view, seq) and v[4] == voter]
        if firsts and firsts[0][3] != digest:
            want = S.CONFLICT
        elif (phase, view, seq, digest, voter) in seen:
            want = S.DUPLICATE
        else:
            seen.append((phase, view, seq, digest, voter))
            c = sum(1 for v in seen if v[:4] == (phase, view, seq, digest))
            want = S.PENDING if c < 5 else S.REACHED if c == 5 else S.ALREADY
        assert t.add(phase, view, seq, digest, voter) == want
