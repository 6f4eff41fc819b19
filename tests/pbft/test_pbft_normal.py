"""The normal case: ordering, exactly-once, batching, watermarks, checkpoints, message counts."""

from __future__ import annotations

import pytest
from pbft_harness import Network, expected_bytes, expected_messages, measure, safety_violations

from medbench.consensus.pbft import Replica, Request
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.log import ExecutedBatch
from medbench.consensus.pbft.messages import Commit, Prepare, PrePrepare, Reply, Submit, Timeout
from medbench.node import Send


@pytest.mark.parametrize("scheme", ["modeled", "macs", "signatures"])
def test_requests_commit_everywhere_in_the_same_order(scheme: str) -> None:
    net4 = Network(n=4, clients=2, seed=7, scheme=scheme)
    for k in range(6):
        net4.submit(4, b"a%d" % k)
        net4.submit(5, b"b%d" % k)
    assert net4.run_until_idle(5_000_000)
    assert len(net4.completed) == 12
    assert safety_violations(net4, range(4)) == []
    logs = [net4.committed[i] for i in range(4)]
    assert all(len(log) == len(logs[0]) for log in logs)
    ops = [req.operation for b in logs[0].values() for req in b.requests]
    counters = net4.replicas()[1].counters()
    assert counters["verifies"] >= counters["handled"] - counters["rejected"] - 1
    assert counters["signs"] > 0
    assert sorted(ops) == sorted([b"a%d" % k for k in range(6)] + [b"b%d" % k for k in range(6)])
    # each client's operations execute in its submission order
    assert [o for o in ops if o.startswith(b"a")] == [b"a%d" % k for k in range(6)]


class _LyingReplier(faults.Byzantine):
    """A faulty replica that answers every client with a wrong result (signed by itself)."""

    def outgoing(self, send: Send) -> list[Send]:
        m = send.msg
        if not isinstance(m, Reply):
            return [send]
        lie = Reply(m.view, m.timestamp, m.client, m.replica, b"lie")
        return [Send(send.dsts, lie.with_auth(self.inner.keyring.sign(lie.body(), m.client)))]


def test_completion_needs_f_plus_one_matching_replies() -> None:
    """n = 4, f = 1: f matching replies (plus a lie) do not complete a request; f+1 do."""
    net = Network(n=4, clients=1, seed=1, client_timeout_us=100_000)
    net.nodes[3] = _LyingReplier(net.nodes[3])
    net.cut_link(1, 4)
    net.cut_link(2, 4)  # the client hears replica 0 (truth) and replica 3 (a lie) only
    net.submit(4, b"op")
    net.run(1_000_000)
    assert all(r.last_executed == 1 for r in net.replicas())  # executed, answered...
    replied = {(src, m.result) for src, m in net.nodes[4].replies.items()}
    assert replied == {(0, net.nodes[4].outstanding.digest()), (3, b"lie")}
    assert net.completed == []  # ...but one true reply is only f
    net.cut -= {(1, 4), (4, 1)}  # one more honest replica gets through: its reply cache answers
    assert net.run_until_idle(2_000_000)
    (done,) = net.completed
    assert done.result == net.replicas([0])[0].last_reply[4].result != b"lie"


def test_exactly_once_and_reply_cache(net4: Network) -> None:
    net4.submit(4, b"once")
    assert net4.run_until_idle(2_000_000)
    first = next(iter(net4.committed[0].values())).requests[0]
    primary: Replica = net4.nodes[0]
    executed_before = primary.last_executed
    ready = primary.step(4, first)  # the client retransmits the executed request
    assert [s.msg.kind for s in ready.messages] == ["reply"]
    assert ready.messages[0].dsts == (4,)
    assert ready.messages[0].msg == primary.last_reply[4]
    net4.run(500_000)
    assert primary.last_executed == executed_before
    # an older timestamp is refused with a counted reason
    old = Request(4, 0, b"x")
    primary.step(4, old)
    assert primary.rejections["old request"] == 1


def test_duplicate_in_a_batch_executes_once() -> None:
    net = Network(n=4, clients=1, seed=2)
    net.submit(4, b"dup")
    net.run(2_000)  # the request reached the primary
    primary: Replica = net.nodes[0]
    req = net.nodes[4].outstanding
    assert req is not None
    # a Byzantine relay sends the same request again while it is being ordered
    primary.step(4, req)
    assert net.run_until_idle(2_000_000)
    executed = [r for b in net.committed[1].values() for r in b.requests]
    assert executed == [req]


def test_batching_by_size() -> None:
    net = Network(n=4, clients=4, seed=3, max_batch_size=4, max_batch_delay_us=10_000_000)
    for c in net.client_ids[:3]:
        net.submit(c, b"x")
    net.run(100_000)
    assert net.stats.messages["pre-prepare"] == 0  # 3 < 4 and the delay has not passed
    net.submit(net.client_ids[3], b"y")
    net.run(100_000)
    assert net.stats.messages["pre-prepare"] == 3  # one batch of 4, to 3 backups
    batch = net.committed[1][1]
    assert len(batch.items) == 4


def test_batching_by_time() -> None:
    net = Network(n=4, clients=2, seed=3, max_batch_size=10, max_batch_delay_us=20_000)
    net.submit(4, b"x")
    net.run(10_000)
    assert net.stats.messages["pre-prepare"] == 0
    net.run(20_000)
    assert net.stats.messages["pre-prepare"] == 3


def test_checkpoints_become_stable_and_collect_the_log() -> None:
    net = Network(n=4, clients=2, seed=4, checkpoint_interval=4, log_window=8, max_batch_size=1)
    for k in range(10):
        net.submit(4, b"a%d" % k)
        net.submit(5, b"b%d" % k)
    assert net.run_until_idle(10_000_000)
    for r in net.replicas():
        assert r.last_executed == 20
        assert r.checkpoints.stable == 20
        assert len(r.log) == 0
        assert len(r.votes) == 0
        proof = r.checkpoints.stable_proof
        assert len({c.replica for c in proof}) >= 3
        assert {c.state_digest for c in proof} == {r.state_digest}
    assert net.stats.messages["checkpoint"] == 5 * 4 * 3


def test_messages_outside_the_watermarks_are_refused(net4: Network) -> None:
    backup: Replica = net4.nodes[1]
    h, window = backup.checkpoints.stable, backup.config.log_window
    keys = net4.keyrings[0]
    pp = PrePrepare(0, h + window + 1, bytes(32), 0, (), 0)
    object.__setattr__(pp, "auth", keys.sign(pp.body()))
    ready = backup.step(0, pp)
    assert ready.messages == []
    assert backup.rejections["outside watermarks"] == 1
    p = Prepare(0, h + window + 5, bytes(32), 2)
    object.__setattr__(p, "auth", net4.keyrings[2].sign(p.body()))
    backup.step(2, p)
    assert backup.rejections["outside watermarks"] == 2


def test_primary_waits_at_the_high_watermark() -> None:
    net = Network(n=4, clients=6, seed=5, checkpoint_interval=2, log_window=2, max_batch_size=1)
    net.black_holes |= {2, 3}  # no checkpoint can become stable: the window stays closed
    for c in net.client_ids:
        net.submit(c, b"x")
    net.run(200_000)
    primary: Replica = net.nodes[0]
    assert primary.next_sequence == 2  # h + L
    assert len(primary.queue) == 4
    net.heal()
    assert net.run_until_idle(10_000_000)


def test_validator_hook_rejects_at_primary_and_backups() -> None:
    net = Network(n=4, clients=2, seed=6)
    for r in net.replicas():
        r.validator = lambda req: "forbidden" if req.operation == b"bad" else None
    net.submit(4, b"bad")
    net.submit(5, b"good")
    net.run(1_000_000)
    # the refused request completes too: f+1 matching typed refusals, after the client's
    # retransmission reached the backups (it first went to the primary alone)
    assert [(c.client, c.result, c.refusal) for c in net.completed] == [
        (5, net.completed[0].request_id, ""),
        (4, b"", "forbidden"),
    ]
    assert net.replicas()[0].rejections["invalid request: forbidden"] >= 1
    assert all(r.last_executed == 1 for r in net.replicas())  # only the good one was ordered


def test_backups_refuse_an_invalid_request_from_a_faulty_primary() -> None:
    """The faulty primary skips the rules and proposes a forbidden request: every backup runs
    the validator on the pre-prepare's batch and refuses it; the view changes and the valid
    request behind it still commits, the forbidden one nowhere."""
    net = Network(n=4, clients=2, seed=6, view_change_timeout_us=100_000)
    for r in net.replicas([1, 2, 3]):
        r.validator = lambda req: "forbidden" if req.operation == b"bad" else None
    net.submit(4, b"bad")  # the primary (replica 0) keeps the permissive validator
    net.run(20_000)
    net.submit(5, b"good")
    net.run(2_000_000)  # the bad request completes as refused by the backups, never ordered
    for r in net.replicas([1, 2, 3]):
        assert r.rejections["invalid request: forbidden"] >= 1
        ops = [q.operation for b in net.committed[r.node_id].values() for q in b.requests]
        assert ops == [b"good"]
        assert r.view >= 1
    assert sorted((c.client, c.refusal) for c in net.completed) == [(4, "forbidden"), (5, "")]
    assert safety_violations(net, [1, 2, 3]) == []
    votes = {(i, kind) for (i, kind, v, s), _ in net.votes_sent.items() if (v, s) == (0, 1)}
    assert not {(i, "prepare") for i in (1, 2, 3)} & votes  # no backup prepared it


def test_local_kinds_from_the_network_are_rejected(net4: Network) -> None:
    r: Replica = net4.nodes[1]
    r.step(2, Timeout("request"))
    assert r.rejections["local kind from the network"] == 1
    assert r.view == 0
    client = net4.nodes[4]
    client.step(0, Submit(b"x"))
    assert client.rejections["local kind from the network"] == 1
    r.step(2, object())
    assert r.rejections["unknown message type"] == 1


def test_persist_precedes_the_votes_it_justifies(net4: Network) -> None:
    """Every PREPARE/COMMIT a replica sends is in the same Ready's persist list."""
    seen: list[tuple[list, list]] = []
    original = net4._apply

    def spy(src, ready):  # type: ignore[no-untyped-def]
        seen.append((list(ready.persist), [s.msg for s in ready.messages]))
        original(src, ready)

    net4._apply = spy  # type: ignore[method-assign]
    net4.submit(4, b"x")
    assert net4.run_until_idle(2_000_000)
    votes = 0
    for persist, sent in seen:
        for m in sent:
            if isinstance(m, (Prepare, Commit, PrePrepare)):
                votes += 1
                assert m in persist
        commits = [m for m in sent if isinstance(m, Commit)]
        if commits:
            assert any(type(p).__name__ == "PreparedProof" for p in persist)
    assert votes > 0


def test_executed_batches_carry_the_chained_state_digest(net4: Network) -> None:
    for k in range(3):
        net4.submit(4, b"%d" % k)
    assert net4.run_until_idle(2_000_000)
    digests = {tuple(b.state_digest for b in net4.committed[i].values()) for i in range(4)}
    assert len(digests) == 1
    assert all(isinstance(b, ExecutedBatch) for b in net4.committed[0].values())


# --- exact message counts --------------------------------------------------------------------


@pytest.mark.parametrize(("n", "batch"), [(4, 1), (4, 10), (7, 1), (7, 5), (16, 1), (16, 4)])
def test_exact_message_counts_match_the_formula(n: int, batch: int) -> None:
    batches = 8
    net = measure(n, batch, batches)
    assert dict(net.stats.messages) == expected_messages(n, batch, batches, 4)
    assert len(net.completed) == batch * batches
    # bytes: the counts times each kind's size; fields of varying width (timestamps, client
    # ids) make the prototypes off by a byte or two per message
    theory = expected_bytes(n, batch, batches, 4)
    for kind, expected in theory.items():
        assert abs(net.stats.bytes[kind] - expected) <= 0.03 * expected, kind
    assert abs(net.stats.total_bytes - sum(theory.values())) <= 0.01 * sum(theory.values())


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 100])
def test_exact_message_counts_at_n64(batch: int) -> None:
    net = measure(64, batch, 8)
    assert dict(net.stats.messages) == expected_messages(64, batch, 8, 4)


class _Rules:
    """A validator whose rules the test changes: ``forbidden`` operations are refused."""

    def __init__(self) -> None:
        self.forbidden: set[bytes] = set()
        self.calls = 0

    def __call__(self, req: Request) -> str | None:
        self.calls += 1
        return "forbidden" if req.operation in self.forbidden else None


def test_a_refusal_is_answered_and_kept_until_a_new_timestamp(net4: Network) -> None:
    """A refused request gets an authenticated, typed refusal; its retransmission gets the same
    refusal without being judged again (the rules allowing it meanwhile change nothing: it is
    not re-proposed), while the client's next request, a new timestamp, is judged afresh.
    Acceptances, not refusals, are what the validation cache keeps."""
    r: Replica = net4.nodes[1]
    rules = _Rules()
    rules.forbidden.add(b"x")
    r.validator = rules
    keys = net4.keyrings[4]
    req = Request(4, 1, b"x")
    req = req.with_auth(keys.sign(req.body()))
    ready = r.step(4, req)
    assert r.rejections["invalid request: forbidden"] == 1 and not r.pending
    (send,) = ready.messages
    refusal = send.msg
    assert send.dsts == (4,) and isinstance(refusal, Reply)
    assert (refusal.refusal, refusal.result, refusal.timestamp) == ("forbidden", b"", 1)
    assert keys.verify(1, refusal.body(), refusal.auth)
    rules.forbidden.clear()
    again = r.step(4, req)
    assert [s.msg for s in again.messages] == [refusal] and rules.calls == 1
    assert not r.pending
    relayed = r.step(2, req)  # another replica relays it: not judged, not answered
    assert not relayed.messages and r.rejections["request refused earlier"] == 1
    nxt = Request(4, 2, b"x")
    nxt = nxt.with_auth(keys.sign(nxt.body()))
    r.step(4, nxt)
    assert (4, 2) in r.pending and rules.calls == 2
    r.step(4, nxt)  # accepted: cached until it executes
    assert rules.calls == 2


def test_a_new_view_judges_waiting_requests_again() -> None:
    """A request admitted in view 0 and forbidden since is judged again in the new view: the
    new primary does not propose it, no replica keeps its timer, the views stay put."""
    net = Network(n=4, clients=2, seed=8, view_change_timeout_us=100_000, client_timeout_us=50_000)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    rules = {i: _Rules() for i in range(4)}
    for i, r in enumerate(net.replicas()):
        r.validator = rules[i]
    net.submit(4, b"x")
    for _ in range(400):
        net.run(2_000)
        if all((4, 1) in r.pending for r in net.replicas([1, 2, 3])):
            break
    assert all((4, 1) in r.pending for r in net.replicas([1, 2, 3]))  # admitted everywhere
    for rule in rules.values():
        rule.forbidden.add(b"x")  # e.g. the grant it relied on was revoked meanwhile
    for _ in range(400):
        net.run(5_000)
        if all(r.view == 1 and r.active for r in net.replicas([1, 2, 3])):
            break
    backups = net.replicas([1, 2, 3])
    assert all(r.view == 1 and r.active and (4, 1) not in r.pending for r in backups)
    assert all(r.rejections["invalid request: forbidden"] >= 1 for r in backups)
    net.submit(5, b"y")
    net.run(2_000_000)
    # the refused request is answered by the replicas that re-judged it, not re-proposed
    assert sorted((c.client, c.refusal) for c in net.completed) == [(4, "forbidden"), (5, "")]
    assert {r.view for r in backups} == {1}  # no view change for the refused request
    for r in backups:
        ops = [q.operation for b in net.committed[r.node_id].values() for q in b.requests]
        assert ops == [b"y"]
