"""Integrated mode with the designated signer of some heights crashed (docs/medical-chain.md §1.5).

Every committed batch is a block signed by one validator fixed by its height. A node stores its
blocks at once, signed or not, and fills a signature in when it arrives: one crashed validator
(f = 1) no longer stops block storage on every node.
"""

from __future__ import annotations

from pathlib import Path

from medchain_helpers import care_session, crash, deploy, restart, stored_chains

from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft.messages import Block as BlockMessage
from medbench.ledger import Block, BlockHeader, FindingKind, expected_blocker
from medbench.medchain import BlockSignature
from medbench.medchain.node import WANT_LIMIT

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}
LIVE = [0, 2, 3]
SIGNER = 1  # VA_1 signs heights 1, 4, 7, ... under primary VA_0 (the worked example of §1.5)


def _signer_down(tmp_path: Path):  # type: ignore[no-untyped-def]
    dep, net = deploy(tmp_path, block_mode="integrated", **FAST)
    validators = dep.genesis.validators
    assert expected_blocker(1, validators, validators[0]) == validators[SIGNER]
    crash(dep, net, SIGNER)
    for k, c in enumerate(dep.user_ids[:3]):
        for op in care_session(dep, k, 3, GENESIS_US + 100 * k):
            net.submit(c, op)
    assert net.run_until_idle(20_000_000)
    net.run(1_000_000)  # SignatureWanted rounds for the unsigned blocks go unanswered
    return dep, net


def _unsigned_heights(node) -> list[int]:  # type: ignore[no-untyped-def]
    return [b.height for b in node.ledger.blocks() if not b.signature]


def test_live_nodes_store_every_block_and_the_signatures_follow_the_signer(
    tmp_path: Path,
) -> None:
    dep, net = _signer_down(tmp_path)
    signer_key = dep.genesis.validators[SIGNER]
    chains = stored_chains(dep, LIVE)
    unsigned_before = {i: set(_unsigned_heights(dep.nodes[i])) for i in LIVE}
    assert len(chains[0]) >= 5 and all(ch == chains[0] for ch in chains)
    for i in LIVE:
        node = dep.nodes[i]
        assert node.stored_height == node.replica.chain.length - 1  # nothing waits
        assert not node.access.accepted  # every accepted body reached the store with its block
        blocks = node.ledger.blocks()
        unsigned = _unsigned_heights(node)
        # exactly the crashed validator's turns lack a signature, and they are remembered
        assert unsigned == [b.height for b in blocks if b.header.blocker == signer_key]
        assert len(unsigned) >= 2 and sorted(node.unsigned.values()) == unsigned
        report = node.verify(dep.signer_policy())
        assert report.ok, report.defects
        # an unsigned block under a signed one is vouched for; only an unsigned tip is reported
        top_signed = max(b.height for b in blocks if b.signature)
        tips = [f.height for f in report.findings]
        assert tips == [h for h in unsigned if h > top_signed]
        assert {f.kind for f in report.findings} <= {FindingKind.UNSIGNED_TIP}
    wanted = net.stats.messages["signature-wanted"]
    assert wanted >= 1
    restart(dep, net, SIGNER)
    net.run(3_000_000)
    everyone = [0, 1, 2, 3]
    chains = stored_chains(dep, everyone)
    assert all(ch == chains[0] for ch in chains)
    for i in everyone:
        node = dep.nodes[i]
        assert _unsigned_heights(node) == [] and node.unsigned == {}
        report = node.verify(dep.signer_policy())
        assert report.findings == (), report.findings
    signed = {(src, n.detail) for src, n in net.notes if n.kind == "block-signed"}
    for i in LIVE:  # each live node filled in the signer's turns it had stored unsigned
        assert unsigned_before[i] <= {h for src, h in signed if src == i}


def test_a_forged_or_misplaced_signature_is_never_stored(tmp_path: Path) -> None:
    dep, net = _signer_down(tmp_path)
    node = dep.nodes[0]
    h = _unsigned_heights(node)[0]
    before = node.ledger.blocks()
    block = before[h - 1]
    honest_peer = dep.setups[2].key  # a validator, but not this height's blocker
    other = before[_unsigned_heights(node)[1] - 1] if len(_unsigned_heights(node)) > 1 else None
    for sig in (honest_peer.sign(block.id), bytes(64), b"\x01" * 63):
        net.deliver_now(2, 0, BlockSignature(block.id, sig))
    if other is not None:  # the blocker's genuine signature, of another block
        sig = dep.setups[SIGNER].key.sign(other.id)
        net.deliver_now(3, 0, BlockSignature(block.id, sig))
    assert node.ledger.blocks() == before and block.id in node.unsigned
    # the genuine one is filled in; a second, different one never overwrites it
    good = dep.setups[SIGNER].key.sign(block.id)
    net.deliver_now(3, 0, BlockSignature(block.id, good))
    assert node.ledger.block(h) == Block(block.header, good, block.tx_ids)
    assert block.id not in node.unsigned
    assert not node.ledger.set_signature(h, honest_peer.sign(block.id), dep.genesis.scheme)
    assert node.ledger.block(h).signature == good  # type: ignore[union-attr]


def test_signature_requests_are_bounded(tmp_path: Path) -> None:
    dep, _net = _signer_down(tmp_path)
    node = dep.nodes[2]
    limit = dep.config.view_change_timeout_us
    ready = node.tick(node.now + limit)
    wants = [s.msg.block_id for s in ready.messages if s.msg.kind == "signature-wanted"]
    assert wants == list(node.unsigned)[:WANT_LIMIT]
    # nothing more until the next timeout
    again = node.tick(node.now + 1)
    assert not [s for s in again.messages if s.msg.kind == "signature-wanted"]


def test_a_hostile_unsigned_block_from_a_peer_is_never_stored(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, block_mode="integrated", **FAST)
    validators = dep.genesis.validators
    for op in care_session(dep, 0, 2, GENESIS_US):
        net.submit(dep.user_ids[0], op)
    assert net.run_until_idle(10_000_000)
    net.run(500_000)
    node = dep.nodes[0]
    tip = node.ledger.blocks()[-1]
    h = tip.height + 1
    blocker = expected_blocker(h, validators, validators[0])
    forged = BlockHeader(h, tip.id, blocker, bytes(32), tip.header.timestamp_us + 1)
    evil = validators.index(blocker)  # the very validator who signs height h turns hostile
    hostile = [
        Block(forged, b"", ()),  # a ledger block, unsigned
        Block(forged, dep.setups[evil].key.sign(forged.id), ()),  # and signed by its blocker
        BlockMessage(0, h, tip.id, -1, (), 1),  # PBFT BLOCK messages are not used here
        BlockMessage(0, h, tip.id, evil, (bytes(range(32)),), 5),
        BlockSignature(forged.id, dep.setups[evil].key.sign(forged.id)),
    ]
    for i in [0, 1, 2, 3]:
        for msg in hostile:
            if i != evil:
                net.deliver_now(evil, i, msg)
    # the honest chain goes on; the forged block is in no store and stored chains agree
    for op in care_session(dep, 1, 2, GENESIS_US + 100):
        net.submit(dep.user_ids[1], op)
    assert net.run_until_idle(10_000_000)
    net.run(1_000_000)
    chains = stored_chains(dep, [0, 1, 2, 3])
    assert len(chains[0]) > h and all(ch == chains[0] for ch in chains)
    assert forged.id not in chains[0]
    for i in [0, 1, 2, 3]:
        assert dep.nodes[i].store.block_height_of(forged.id) is None
        assert dep.nodes[i].verify(dep.signer_policy()).findings == ()


def test_a_gateway_proof_of_an_unsigned_block_says_so() -> None:
    from medbench.crypto.keys import Scheme, SigningKey
    from medbench.gateway.proofs import inclusion_doc, verify_proof

    key = SigningKey.generate(Scheme.ED25519, seed=bytes(32))
    ids = (bytes(range(32)), bytes(32))
    signed = Block.make(1, bytes(32), key, ids, 5)
    assert verify_proof(inclusion_doc(signed, ids[1], [key.public]))[1] == []
    unsigned = Block(signed.header, b"", ids)
    _, problems = verify_proof(inclusion_doc(unsigned, ids[1], [key.public]))
    assert problems == ["block 1: not signed yet (awaiting its blocker; ask again)"]
