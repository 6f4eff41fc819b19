"""Regressions for what the adversary's schedules found (issue 13), beyond the twelve known defects.

1. **A request split at admission livelocked.** Refusals are decided at admission, so honest
   replicas may disagree (one judged a request before the grant it needs executed, another
   after). With f+1 honest refusers the request can never commit; with fewer than a refusal
   quorum its client never completes; the replicas that admitted it kept it pending and changed
   views for it forever (seed 34 of the schedules; Medical Chain seed 15: a care session's
   record stuck behind its grant). Now a request that f+1 whole views in a row did not propose,
   while their primaries proposed other batches, is given up (``unordered``), and the client
   takes a refusal quorum of mixed reasons.
2. **A replica refused a request it had voted for** (seed 207, stratified seed 20194; the
   residue of defect 6): after a restart (its admission cache empty) or a new view it judged a
   retransmission afresh, found it expired, and refused it — while a pre-prepare it had
   accepted carried it, and a later NEW-VIEW re-issued that certificate, so the client saw a
   refusal for a request that executed. Now a replica never refuses a request it voted for at a
   sequence it has not executed yet (its PREPARE may be part of a certificate).
3. **Lost CHECKPOINTs wedged the group** (seeds 584, 876, 1124): see below.
4. **A reviving primary kept a vote open for ever** (soak seed 14627): see below.
"""

from __future__ import annotations

from pbft_harness import Network, safety_violations
from schedules import check_draw, check_seed, stratified

from medbench.consensus.pbft import Client, make_keyrings
from medbench.consensus.pbft.adversary import RequestReviver
from medbench.consensus.pbft.messages import Reply, Submit

KEYS = make_keyrings("modeled", 4, range(6))


def _split_network(refusers: tuple[int, ...] = (0, 1)) -> Network:
    """Replicas ``refusers`` refuse ``split``; the others admit it (as if they judged it later)."""
    net = Network(n=4, clients=2, seed=5, client_timeout_us=100_000, view_change_timeout_us=50_000)

    def make(refuses: bool):  # type: ignore[no-untyped-def]
        def rule(req):  # type: ignore[no-untyped-def]
            return "no-grant: not yet" if refuses and req.operation == b"split" else None

        return rule

    for r in net.replicas():
        r.validator = make(r.node_id in refusers)
    return net


def test_a_request_split_at_admission_completes_refused_and_the_client_moves_on() -> None:
    net = _split_network()
    net.submit(4, b"split")
    net.submit(4, b"next")
    for k in range(300):  # another client keeps traffic going (liveness is under traffic)
        if net.nodes[4].idle:
            break
        if net.nodes[5].idle:
            net.submit(5, b"other %d" % k)
        net.run(100_000)
    assert net.nodes[4].idle  # was: the client waited forever
    first, second = sorted((c for c in net.completed if c.client == 4), key=lambda c: c.timestamp)
    assert first.refusal in ("no-grant", "unordered") and first.result == b""
    assert second.refusal == "" and second.result
    executed = [q.operation for r in net.replicas() for b in r.history.values() for q in b.requests]
    assert b"split" not in executed and executed.count(b"next") == 4
    assert safety_violations(net, range(4)) == []


def test_mixed_refusal_reasons_complete_only_once_no_reason_can_reach_a_quorum() -> None:
    c = Client(4, 4, KEYS[4], retransmit_timeout_us=1_000)
    (send,) = c.step(4, Submit(b"op")).messages
    ts = send.msg.timestamp

    def refusal(replica: int, code: str) -> Reply:
        r = Reply(0, ts, 4, replica, b"", refusal=code)
        return r.with_auth(KEYS[replica].sign(r.body(), 4))

    assert not c.step(0, refusal(0, "no-grant")).completed
    assert not c.step(1, refusal(1, "unordered")).completed
    # three refusals, but "no-grant" could still reach three with replica 3's answer: wait
    assert not c.step(2, refusal(2, "no-grant")).completed
    (done,) = c.step(3, refusal(3, "unordered")).completed  # now no reason can: refused
    assert done.refusal == "no-grant" and done.result == b""


def test_a_silent_replica_does_not_hold_mixed_refusals_back_past_the_timer() -> None:
    c = Client(4, 4, KEYS[4], retransmit_timeout_us=1_000)
    (send,) = c.step(4, Submit(b"op")).messages
    ts = send.msg.timestamp
    for replica, code in ((0, "no-grant"), (1, "unordered"), (2, "no-grant")):
        r = Reply(0, ts, 4, replica, b"", refusal=code)
        assert not c.step(replica, r.with_auth(KEYS[replica].sign(r.body(), 4))).completed
    (done,) = c.tick(5_000).completed  # replica 3 never answers
    assert done.refusal == "no-grant"


def test_a_restarted_primary_does_not_refuse_what_it_pre_prepared() -> None:
    """Replica 0 pre-prepares a request that expires before it commits; restarted (its cache of
    admitted requests gone), it must not refuse the client's retransmission."""
    net = Network(n=4, clients=1, seed=3, client_timeout_us=30_000, view_change_timeout_us=10**7)
    deadline = 20_000

    def rule(req):  # type: ignore[no-untyped-def]
        return None if net.now <= deadline else "expired: too late"

    for r in net.replicas():
        r.validator = rule
    net.isolated.add(3)
    net.cut_link(0, 2)
    net.submit(4, b"exp")
    net.run(15_000)
    r0 = net.replicas([0])[0]
    assert any(s.pre_prepare and s.pre_prepare.batch for s in r0.log)  # pre-prepared, stuck
    net.crash(0)
    net.restart(0)
    net.replicas([0])[0].validator = rule
    net.run(60_000)  # past the deadline; the client retransmits to everyone
    refusals = [m for m in net.recent if isinstance(m, Reply) and m.replica == 0 and m.refusal]
    assert refusals == []
    assert r0 is not net.replicas([0])[0]


def test_schedule_seed_207_no_longer_shows_a_refusal_for_an_executed_request() -> None:
    check_seed(207)


def test_schedule_seed_34_no_longer_livelocks() -> None:
    check_seed(34)


def test_stratified_seed_20194_an_equivocating_new_primary_cannot_revive_a_refusal() -> None:
    check_draw(stratified(194))


def test_stratified_seed_20542_a_split_with_f_silent_replicas_completes() -> None:
    check_draw(stratified(542))


# --- 3. lost CHECKPOINTs wedged the group (seeds 584, 876, 1124) ------------------------------
#
# A replica sent each CHECKPOINT once and forgot it at a restart; a peer that lost it (a drop, its
# own restart) never got it again. With two replicas restarted after their checkpoints, no
# checkpoint became stable, the log window stayed full, and no primary could propose again: the
# group was live in name only. Now a replica restores its own checkpoints at a restart and sends
# those above its stable one again then and at every new view.


def test_a_restarted_replica_counts_and_resends_its_own_checkpoints() -> None:
    from medbench.consensus.pbft import Replica
    from medbench.consensus.pbft.log import StableRecord
    from medbench.consensus.pbft.messages import Checkpoint

    net = Network(n=4, clients=1, seed=9, checkpoint_interval=2, log_window=4)
    net.submit(4, b"a")
    net.submit(4, b"b")
    assert net.run_until_idle(2_000_000)
    records = [r for r in net.persisted[1] if not isinstance(r, StableRecord)]  # never stable
    r1, ready = Replica.recover(1, net.config, net.keyrings[1], records, now=net.now)
    resent = [s.msg for s in ready.messages if isinstance(s.msg, Checkpoint)]
    assert [(c.sequence, c.replica) for c in resent] == [(2, 1)]
    assert r1.checkpoints.stable == 0 and 2 in r1.checkpoints._votes


def test_schedule_seeds_584_876_1124_are_live_again() -> None:
    for seed in (584, 876, 1124):
        check_seed(seed)


# --- 4. a reviving primary kept a vote open for ever (soak seed 14627) ---------------------------
#
# Replicas 0 and 2 refused a request, honest replica 1 admitted it. Views ordered others without
# it, so replica 1 was giving it up (more than f views), but a replica gives up only once its
# votes for the request are closed (it may not refuse what its PREPARE may have certified). The
# faulty replica 3, a request reviver, proposed the request again in every view it led, at fresh
# sequences above the executed ones, and replica 1 voted for it each time: its vote never closed,
# the request stayed pending, and replica 1's timer and the reviver's changed views for ever
# (views 202, 103 batches executed in 20 s). Now a backup casts no new vote for a request it is
# giving up (a NEW-VIEW's re-issued certificates it still accepts).


def test_a_reviving_primary_cannot_keep_a_request_pending_for_ever() -> None:
    net = _split_network(refusers=(0, 2))  # replica 1 and the reviver admit "split"
    net.nodes[3] = RequestReviver(net.nodes[3], every=1)
    net.submit(4, b"split")
    net.submit(4, b"next")
    for k in range(100):  # another client keeps traffic going (liveness is under traffic)
        if net.nodes[4].idle:
            break
        if net.nodes[5].idle:
            net.submit(5, b"other %d" % k)
        net.run(100_000)
    assert net.nodes[4].idle  # was: replica 1 kept it pending, views changed for ever
    r1 = net.replicas([1])[0]
    assert r1.rejections["request being given up"] > 0  # the reviver did re-propose it
    first = min((c for c in net.completed if c.client == 4), key=lambda c: c.timestamp)
    assert first.refusal in ("no-grant", "unordered")
    assert safety_violations(net, range(3)) == []


def test_schedule_seed_14627_is_live_again() -> None:
    check_seed(14627)
