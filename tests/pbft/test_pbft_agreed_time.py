"""Agreed time (Castro & Liskov, TOCS 2002 §4.6): the PRE-PREPARE carries the primary's clock,
backups refuse a time too far from their own clock or before the previous batch's, and every
request executes at its batch's agreed time, identically on every honest replica."""

from __future__ import annotations

from typing import Any

import pytest
from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import Config, Replica
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.messages import PrePrepare, Request, compute_batch_digest

SKEW = 50_000


def _recording(net: Network) -> tuple[dict[int, list[tuple[bytes, int]]], list[tuple[int, int]]]:
    """Replace every replica's service by one that records (request, agreed time) per replica,
    and (agreed time, the network's clock when it ran) for all."""
    calls: dict[int, list[tuple[bytes, int]]] = {}
    when: list[tuple[int, int]] = []

    def recorder(log: list[tuple[bytes, int]]) -> Any:
        def service(request: Request, agreed_time_us: int) -> bytes:
            log.append((request.digest(), agreed_time_us))
            when.append((agreed_time_us, net.now))
            return request.digest()

        return service

    for r in net.replicas():
        calls[r.node_id] = []
        r.service = recorder(calls[r.node_id])
    return calls, when


def test_the_primary_stamps_its_clock_and_execution_uses_it() -> None:
    net = Network(n=4, clients=1, seed=3, max_clock_skew_us=SKEW)
    calls, _ = _recording(net)
    net.run(250_000)
    for k in range(3):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(2_000_000)
    batches = list(net.committed[0].values())
    assert [b.sequence for b in batches] == [1, 2, 3]
    times = [b.timestamp for b in batches]
    assert 250_000 <= times[0] <= times[1] <= times[2] <= net.now  # the primary's clock
    # every replica ran every request at its batch's time: the same (request, time) sequence
    expected = [(b.requests[0].digest(), b.timestamp) for b in batches]
    assert all(calls[i] == expected for i in range(4))


@pytest.mark.parametrize(
    ("shift", "honest", "idle", "reason"),
    [
        (10_000_000, 0, 0, "batch time ahead of this replica's clock"),
        (-3 * SKEW, 0, 400_000, "batch time behind this replica's clock"),  # a frozen clock
        (-SKEW // 2, 1, 0, "batch time before the previous batch"),  # time running back
    ],
)
def test_a_byzantine_clock_is_refused_and_the_primary_replaced(
    shift: int, honest: int, idle: int, reason: str
) -> None:
    net = Network(n=4, clients=1, seed=5, max_clock_skew_us=SKEW, view_change_timeout_us=100_000)
    net.nodes[0] = faults.SkewedClockPrimary(net.nodes[0], shift, honest=honest)
    calls, when = _recording(net)
    net.run(idle)
    for k in range(3):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(10_000_000)
    backups = net.replicas([1, 2, 3])
    assert all(r.rejections[reason] >= 1 for r in backups)
    assert all(r.view >= 1 for r in backups)  # the primary was replaced
    assert safety_violations(net, [1, 2, 3]) == []
    assert len(net.completed) == 3
    # no skewed time was agreed: every request ran at a time within the skew of the clock when
    # it ran, and the times never run back
    assert when and all(now - SKEW <= agreed <= now for agreed, now in when)
    for i in (1, 2, 3):
        times = [t for _, t in calls[i]]
        assert times == sorted(times)
    assert calls[1] == calls[2] == calls[3] and len(calls[1]) == 3


def test_agreed_time_is_monotone_even_when_a_batch_carries_an_older_stamp() -> None:
    """A committed batch whose stamp is before its predecessor's (a backup could not know the
    predecessor) executes at the predecessor's time: the agreed time never runs back."""
    cfg = Config(n=4)
    r = Replica(1, cfg, _keyring())
    seen: list[int] = []
    r.service = lambda req, t: seen.append(t) or b""
    for s, ts in ((1, 500), (2, 300), (3, 0), (4, 900)):
        req = Request(4, s, b"op")
        r._execute(s, ts, (req,), compute_batch_digest(ts, (req,)), replies=False)
    assert seen == [500, 500, 500, 900] and r.batch_time == 900


def test_state_transfer_and_recovery_reach_the_same_agreed_times() -> None:
    net = Network(n=4, clients=1, seed=9, checkpoint_interval=2, log_window=8)
    calls, _ = _recording(net)
    net.isolated.add(3)
    for k in range(6):
        net.submit(4, b"op%d" % k)
        net.run(20_000)
    assert net.run_until_idle(3_000_000)
    net.isolated.clear()
    for k in range(6, 8):
        net.submit(4, b"op%d" % k)
    assert net.run_until_idle(3_000_000)
    net.run(500_000)
    assert net.replicas([3])[0].last_executed == net.replicas([0])[0].last_executed
    assert calls[3] == calls[0] != []  # state transfer executed at the same agreed times
    net.crash(1)
    net.restart(1)
    restored = net.replicas([1])[0]
    assert restored.batch_time == net.replicas([0])[0].batch_time


def test_a_backup_refuses_a_pre_prepare_outside_the_skew_and_says_why() -> None:
    net = Network(n=4, clients=1, seed=2, max_clock_skew_us=SKEW)
    net.run(1_000_000)
    backup = net.replicas([1])[0]
    keys = net.keyrings[0]
    req = Request(4, 1, b"op")
    req = req.with_auth(net.keyrings[4].sign(req.body()))
    for ts, why in (
        (net.now + 2 * SKEW, "batch time ahead of this replica's clock"),
        (net.now - 2 * SKEW, "batch time behind this replica's clock"),
    ):
        pp = PrePrepare(0, 1, compute_batch_digest(ts, (req,)), ts, (req,), 0)
        net.deliver_now(0, 1, pp.with_auth(keys.sign(pp.body())))
        assert backup.rejections[why] == 1
        assert backup.log.get(1) is None or backup.log.get(1).pre_prepare is None
    ts = net.now + SKEW  # at the bound: accepted
    pp = PrePrepare(0, 1, compute_batch_digest(ts, (req,)), ts, (req,), 0)
    net.deliver_now(0, 1, pp.with_auth(keys.sign(pp.body())))
    assert backup.log.get(1).pre_prepare is not None


def test_negative_skew_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="skew"):
        Config(n=4, max_clock_skew_us=-1)


def _keyring() -> Any:
    from medbench.consensus.pbft import make_keyrings

    return make_keyrings("modeled", 4, range(5))[1]
