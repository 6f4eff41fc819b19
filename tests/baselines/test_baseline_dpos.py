"""Improved DPoS (MDSM): membership, rotation, auditor finality, vote weights."""

from __future__ import annotations

from dataclasses import replace

import pytest

from baselines.harness import Harness
from medbench import codec
from medbench.consensus.baselines import REGISTRY
from medbench.consensus.baselines.common import MembershipError
from medbench.consensus.baselines.dpos import Audit, DposBlock, DposNode, DposParams, elect
from medbench.consensus.baselines.signing import make_signers
from medbench.experiments.baselines import make_nodes
from medbench.hashing import sha256
from medbench.merkle import root

SMALL = {"delegates": 4, "auditors": 3}


def test_refuses_to_start_below_its_membership() -> None:
    with pytest.raises(MembershipError, match="121"):
        make_nodes("dpos", 120, {"modeled_signatures": True}, seed=0)
    nodes = make_nodes("dpos", 121, {"modeled_signatures": True}, seed=0)
    assert len(nodes) == 121
    assert len(nodes[0].schedule) == 101 and len(nodes[0].auditor_ids) == 20
    assert nodes[0].threshold == 14
    with pytest.raises(MembershipError):
        make_nodes("dpos", 6, SMALL, seed=0)
    signers = make_signers(6, 0, b"x", True)
    with pytest.raises(MembershipError):  # the node itself refuses too
        DposNode(0, 6, DposParams(**SMALL), signers[0], tuple(s.public_key for s in signers))


def producers(node: DposNode) -> list[tuple[int, int]]:
    return [
        (node.tree.entries[b].block.slot, node.tree.entries[b].block.producer)
        for b in node.tree.main[1:]
    ]


def test_delegates_produce_in_rotation_and_auditors_finalise() -> None:
    nodes = make_nodes("dpos", 7, SMALL, seed=1)
    h = Harness(nodes, 20_000)
    for i in range(30):
        h.submit(i % 7, sha256(b"t%d" % i), 120, 500_000 + i * 1_000_000)
    rec = h.run(61_000_000)
    node = nodes[6]  # an auditor
    assert node.schedule == (0, 1, 2, 3)
    prod = producers(node)
    assert [s for s, _ in prod] == list(range(1, 21))
    assert all(p == node.schedule[s % 4] for s, p in prod)
    s = nodes[0].stats()
    assert s["final_height"] == 20 and s["committed_txs"] == 30
    assert s["rewards_paid"] == 0 == s["fees_paid"]
    # Every block validated by every other member: 6 validations per block, 20 blocks.
    assert sum(n.counters.validations for n in nodes) == 20 * 6
    assert sum(n.counters.sign_ops for n in nodes) == 20 + 20 * 3  # blocks + audits
    assert rec.notes["rejected"] == 0


def test_a_block_without_enough_audits_is_not_final() -> None:
    nodes = make_nodes("dpos", 7, SMALL, seed=2)  # A = 3, threshold 3
    h = Harness(nodes, 20_000)
    h.crash(6)  # one auditor down: only 2 audits per block
    h.run(31_000_000)
    s = nodes[0].stats()
    assert s["height"] == 10 and s["final_height"] == 0 and s["committed_blocks"] == 0
    assert all(len(v) == 2 for v in nodes[0].audits.values())
    # With a threshold of 2 the same fault is tolerated.
    nodes = make_nodes("dpos", 7, {**SMALL, "audit_threshold": 2}, seed=2)
    h = Harness(nodes, 20_000)
    h.crash(6)
    h.run(31_000_000)
    assert nodes[0].stats()["final_height"] == 10


def test_crashed_delegate_slots_are_skipped() -> None:
    nodes = make_nodes("dpos", 7, SMALL, seed=3)
    h = Harness(nodes, 20_000)
    h.crash(2)
    h.run(37_000_000)
    prod = producers(nodes[0])
    assert all(p != 2 for _, p in prod) and len(prod) == 9
    assert nodes[0].stats()["final_height"] == 9


def test_vote_weights_change_the_elected_delegates() -> None:
    n = 9  # candidates 0..5, auditors 6..8
    base = DposParams(delegates=3, auditors=3)
    assert elect(n, base) == (0, 1, 2)  # equal weights: lowest IDs win ties
    weighted = replace(base, weights=(1, 1, 1, 1, 5, 9, 1, 1, 1))
    assert elect(n, weighted) == (0, 4, 5)
    # Approval ballots: 0 and 1 back candidate 3 with heavy weights.
    ballots = ((3,), (3,), (2,), (3,), (4,), (5,), (), (), ())
    heavy = replace(base, weights=(10, 10, 1, 1, 1, 1, 1, 1, 1), ballots=ballots)
    assert elect(n, heavy) == (2, 3, 4)  # 3 tops the tally (21); ties at 1 go to lower IDs
    nodes = make_nodes(
        "dpos", n, {"delegates": 3, "auditors": 3, "weights": [1, 1, 1, 1, 5, 9, 1, 1, 1]}, seed=4
    )
    Harness(nodes, 10_000).run(20_000_000)
    assert {p for _, p in producers(nodes[0])} == {0, 4, 5}
    assert REGISTRY["dpos"].vote_weights


def forged_setup() -> tuple[list, DposNode]:
    signers = make_signers(7, 5, b"medbench-dpos", False)
    keys = tuple(s.public_key for s in signers)
    return signers, DposNode(0, 7, DposParams(**SMALL), signers[0], keys)


def test_wrong_slot_owner_forged_signature_and_fake_audits_are_rejected() -> None:
    signers, node = forged_setup()
    b = DposBlock(node.genesis_id, 1, 1, 2, root([]), (), b"")  # slot 1 belongs to delegate 1
    r = node.step(2, replace(b, signature=signers[2].sign(codec.encode(b.header()))))
    assert r.notes[0].detail[0] == "not_slot_owner"
    b = DposBlock(node.genesis_id, 1, 1, 1, root([]), (), b"")
    r = node.step(2, replace(b, signature=signers[2].sign(codec.encode(b.header()))))
    assert r.notes[0].detail[0] == "bad_signature"
    ahead = DposBlock(node.genesis_id, 1, 5, 1, root([]), (), b"")  # slot 5: too far ahead
    r = node.step(1, replace(ahead, signature=signers[1].sign(codec.encode(ahead.header()))))
    assert r.notes[0].detail[0] == "future_slot"
    good = replace(b, signature=signers[1].sign(codec.encode(b.header())))
    assert not node.step(1, good).notes
    block_id = node.tree.main[1]
    a = Audit(block_id, 1, 3, b"")  # node 3 is a delegate, not an auditor
    r = node.step(3, replace(a, signature=signers[3].sign(a.signed())))
    assert r.notes[0].detail[0] == "not_an_auditor"
    a = Audit(block_id, 1, 5, b"")
    r = node.step(4, replace(a, signature=signers[4].sign(a.signed())))
    assert r.notes[0].detail[0] == "bad_audit_signature"
    for aud in (4, 5, 6):
        a = Audit(block_id, 1, aud, b"")
        assert node.stats()["final_height"] == 0
        r = node.step(aud, replace(a, signature=signers[aud].sign(a.signed())))
        assert not r.notes
    assert node.stats()["final_height"] == 1 and r.committed[0].sequence == 1
    r = node.step(6, replace(a, signature=signers[6].sign(a.signed())))
    assert r.notes[0].detail[0] == "duplicate_audit"


def test_paper_configuration_runs_with_121_members() -> None:
    nodes = make_nodes("dpos", 121, {"modeled_signatures": True, "slot_us": 1_000_000}, seed=6)
    h = Harness(nodes, 10_000)
    h.submit(0, sha256(b"x"), 100, 100_000)
    h.run(3_500_000)
    s = nodes[120].stats()
    assert s["final_height"] == 3 and s["committed_txs"] == 1
    # MDSM's cost: each block validated by the other 120 members (100 delegates + 20 auditors).
    assert sum(n.counters.validations for n in nodes) == 3 * 120
