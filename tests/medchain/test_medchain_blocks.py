"""Ledger blocks as PBFT's block format, the blocker rotation, and Byzantine blockers."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from medchain_helpers import care_session, deploy, stored_chains

from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft import blocker_for
from medbench.consensus.pbft.byzantine import Byzantine
from medbench.consensus.pbft.messages import Block as BlockMessage
from medbench.consensus.pbft.messages import PrePrepare, compute_batch_digest
from medbench.crypto.keys import Scheme, SigningKey
from medbench.hashing import sha256
from medbench.ledger import Block, Genesis, expected_blocker
from medbench.medchain import (
    BlockSignature,
    LedgerBlockFormat,
    MedicalChainNode,
    SignatureWanted,
    decode_side_message,
    primary_for,
)
from medbench.node import Send

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}


def _keys(n: int) -> list[SigningKey]:
    return [SigningKey.generate(Scheme.ED25519, seed=sha256(b"k%d" % i)) for i in range(n)]


@pytest.mark.parametrize("n", range(2, 11))
def test_pbft_and_ledger_rotation_agree(n: int) -> None:
    validators = [bytes([i]) * 32 for i in range(n)]
    for length in range(0, 60):
        for view in range(0, 3 * n):
            primary = validators[view % n]
            ledger = expected_blocker(length, validators, primary)
            assert validators[blocker_for(length, view, n)] == ledger
            assert ledger != primary  # VA_(p+B), B = 0 -> N-1: never the primary


def test_worked_example() -> None:
    validators = ["VA_0", "VA_1", "VA_2", "VA_3"]
    assert blocker_for(1, 0, 4) == 1 and expected_blocker(1, validators, "VA_0") == "VA_1"


def _format(keys: list[SigningKey], me: int) -> LedgerBlockFormat:
    genesis = Genesis("t", Scheme.ED25519, tuple(k.public for k in keys), b"root", 1000)
    fmt = LedgerBlockFormat(genesis, keys[me])
    fmt.ledger_ids.update({sha256(b"r%d" % i): sha256(b"t%d" % i) for i in range(4)})
    fmt.ledger_ids[sha256(b"refused")] = b""
    return fmt


def test_blocker_builds_and_peers_verify_real_ledger_blocks() -> None:
    keys = _keys(4)
    blocker, peer = _format(keys, 1), _format(keys, 2)
    reqs = (sha256(b"r0"), sha256(b"refused"), sha256(b"r1"))
    assert blocker.build(0, bytes(32), -1, (), 0) is blocker.genesis
    block = blocker.build(1, blocker.genesis.id, 1, reqs, 50)
    assert isinstance(block, Block) and block.signature_ok(Scheme.ED25519)
    assert block.tx_ids == (sha256(b"t0"), sha256(b"t1"))  # the refused request is left out
    assert block.header.blocker == keys[1].public and block.header.timestamp_us == 1050
    assert blocker.validate(block) is None and blocker.block_id(block) == block.id
    assert primary_for(blocker.genesis, block.header) == keys[0].public
    # the peer cannot sign for VA_1: it builds the unsigned block, then completes it
    unsigned = peer.build(1, peer.genesis.id, 1, reqs, 50)
    assert unsigned.id == block.id and unsigned.signature == b""
    peer.add_signature(block.id, keys[3].sign(block.id))  # a signature by the wrong validator
    assert peer.complete(unsigned).signature == b""
    peer.add_signature(block.id, block.signature)
    assert peer.complete(unsigned) == block


def test_validate_rejects_forged_blocks() -> None:
    keys = _keys(4)
    fmt = _format(keys, 0)
    good = Block.make(1, fmt.genesis.id, keys[1], [sha256(b"t0")], 5)
    assert fmt.validate(good) is None
    wrong_root = Block(good.header, good.signature, (sha256(b"t1"),))
    assert fmt.validate(wrong_root) == "merkle root does not match the transaction IDs"
    forged = Block(good.header, keys[2].sign(good.id), good.tx_ids)
    assert fmt.validate(forged) == "blocker signature does not verify"
    outsider = Block.make(1, fmt.genesis.id, _keys(5)[4], [sha256(b"t0")], 5)
    assert fmt.validate(outsider) == "blocker is not a validator"
    assert fmt.validate(object()) == "not a ledger block"
    assert fmt.header_for(1, fmt.genesis.id, 1, (sha256(b"unknown"),), 5) is None
    assert fmt.header_for(1, fmt.genesis.id, 9, (), 5) is None


def _honest_blocks_despite(  # type: ignore[no-untyped-def]
    dep, net, bad: int, *why: str
) -> None:
    why = why or ("block signature missing or invalid",)
    for k, c in enumerate(dep.user_ids[:2]):
        for op in care_session(dep, k, 2, GENESIS_US + 100 * k):
            net.submit(c, op)
    net.run(5_000_000)
    # the honest users are served (the faulty node's own client may be stuck on its bad key)
    assert all(net.nodes[c].idle for c in dep.user_ids)
    honest = [i for i in range(4) if i != bad]
    chains = stored_chains(dep, honest)
    assert len(chains[0]) >= 2 and all(ch == chains[0] for ch in chains)
    bad_key = dep.genesis.validators[bad]
    for i in honest:
        blocks = dep.nodes[i].ledger.blocks()
        assert bad_key not in {b.header.blocker for b in blocks}
        assert dep.nodes[i].verify().ok
        assert dep.nodes[i].replica.view >= 1  # the stalled block changed the view (and blocker)
    refused = [
        dep.nodes[i].rejections[w] + dep.nodes[i].replica.rejections[w] for i in honest for w in why
    ]
    assert sum(refused) >= 1, [dict(dep.nodes[i].replica.rejections) for i in honest]


def test_blocker_signing_with_a_wrong_key_is_rejected(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    bad = 1  # VA_1 blocks first (L = 1, primary VA_0)
    dep.nodes[bad].close()
    setup = dataclasses.replace(dep.setups[bad], key=_keys(9)[8])
    dep.setups[bad] = setup
    dep.nodes[bad] = MedicalChainNode(setup)
    dep.nodes[4 + bad].node = dep.nodes[bad]
    _honest_blocks_despite(dep, net, bad)


class PhantomBlocker(Byzantine):
    """Lists a transaction ID nobody accepted in every block it proposes."""

    def outgoing(self, send: Send) -> list[Send]:
        m = send.msg
        if not isinstance(m, BlockMessage):
            return [send]
        bad = BlockMessage(m.view, m.height, m.prev_id, m.blocker, (*m.tx_ids, sha256(b"x")),
                           m.timestamp)  # fmt: skip
        object.__setattr__(bad, "auth", self.inner.keyring.sign(bad.body()))
        return [Send(send.dsts, bad)]


def test_blocker_listing_an_unaccepted_id_is_rejected(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, wrap={1: PhantomBlocker}, **FAST)
    _honest_blocks_despite(dep, net, 1)


class DatingBlocker(Byzantine):
    """Dates every block it proposes an hour ahead of its clock (and re-signs it)."""

    def when(self, m: BlockMessage) -> int:
        return m.timestamp + 3_600_000_000

    def outgoing(self, send: Send) -> list[Send]:
        m = send.msg
        if not isinstance(m, BlockMessage):
            return [send]
        bad = BlockMessage(m.view, m.height, m.prev_id, m.blocker, m.tx_ids, self.when(m))
        object.__setattr__(bad, "auth", self.inner.keyring.sign(bad.body()))
        return [Send(send.dsts, bad)]


class BackDatingBlocker(DatingBlocker):
    """Dates its blocks just before their predecessor (the first one, which has no earlier
    predecessor than genesis, an hour ahead instead)."""

    def when(self, m: BlockMessage) -> int:
        head = self.inner.chain.head_time
        return head - 1 if head > 0 else m.timestamp + 3_600_000_000


def test_a_blocker_dating_its_block_in_the_future_is_refused(tmp_path: Path) -> None:
    """Defect 3 of issue 13: nothing bounded a block's time, so a faulty blocker's future block
    froze the chain (its time became the head's, and every later request looked stale). Backups
    now refuse a block outside their clock skew, before preparing it: the view (and blocker)
    changes and the chain goes on with honest times."""
    dep, net = deploy(tmp_path, wrap={1: DatingBlocker}, **FAST)
    _honest_blocks_despite(dep, net, 1, "block time outside this replica's clock skew")
    for i in (0, 2, 3):
        blocks = dep.nodes[i].ledger.blocks()
        assert all(b.header.timestamp_us <= GENESIS_US + 600_000_000 for b in blocks)


def test_a_blocker_back_dating_its_block_is_refused(tmp_path: Path) -> None:
    """The mirror case: a block dated before its predecessor was committed, then every honest
    node's own ``verify()`` reported a timestamp regression."""
    dep, net = deploy(tmp_path, wrap={1: BackDatingBlocker}, **FAST)
    _honest_blocks_despite(
        dep,
        net,
        1,
        "block time before its predecessor",
        "block time outside this replica's clock skew",
    )
    for i in (0, 2, 3):
        times = [b.header.timestamp_us for b in dep.nodes[i].ledger.blocks()]
        assert times == sorted(times)


@pytest.mark.parametrize("timestamp", [(1 << 63) - 1, (1 << 63) - 1000, (1 << 62)])
def test_a_block_dated_near_2_63_never_raises(tmp_path: Path, timestamp: int) -> None:
    """Defect 4 of issue 13: in blocker mode a Medical Chain node built the ledger header of every
    incoming BLOCK (or PRE-PREPARE holding one) before authenticating it, and a timestamp near
    2^63 raised ``ValueError`` out of ``step()``. Forged or authentic, it is now refused."""
    dep, _ = deploy(tmp_path, **FAST)
    node = dep.nodes[0]  # the primary of view 0: BLOCKs come to it
    keys = dep.keyrings
    for signer in (None, 1):  # forged, then signed by the expected blocker VA_1
        block = BlockMessage(0, 1, node.replica.chain.head_id, 1, (sha256(b"t"),), timestamp)
        if signer is not None:
            object.__setattr__(block, "auth", keys[signer].sign(block.body()))
        ready = node.step(1, block)
        assert not ready.messages
        pp = PrePrepare(0, 1, compute_batch_digest(5, (block,)), 5, (block,), 0)
        object.__setattr__(pp, "auth", keys[0].sign(pp.body()))
        dep.nodes[2].step(0, pp)
    assert node.replica.rejections["block time outside this replica's clock skew"] >= 1
    assert not node.held and not dep.nodes[2].held


def test_side_messages_round_trip() -> None:
    sig = BlockSignature(sha256(b"b"), b"s" * 64)
    assert decode_side_message(sig.encode()) == sig
    want = SignatureWanted(sha256(b"b"))
    assert decode_side_message(want.encode()) == want


@given(st.binary(max_size=200))
def test_hostile_side_message_bytes_raise_only_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_side_message(data)


@pytest.fixture(scope="module")
def lone_node(tmp_path_factory: pytest.TempPathFactory) -> MedicalChainNode:
    dep, _ = deploy(tmp_path_factory.mktemp("hostile-node"), **FAST)
    return dep.nodes[2]  # type: ignore[no-any-return]


# every integer field over its whole wire range, edges included (the message layer admits
# 0..2^63-1, and -1..2^63-1 for a blocker)
_U63 = st.integers(0, (1 << 63) - 1) | st.sampled_from([0, 1, 5, (1 << 63) - 1000, (1 << 63) - 1])
_BLOCKER = st.integers(-1, (1 << 63) - 1) | st.sampled_from([-1, 0, 1, 2, 3, 4])
_BLOCKS = st.builds(
    BlockMessage,
    _U63,
    _U63,
    st.binary(min_size=32, max_size=32),
    _BLOCKER,
    st.lists(st.binary(min_size=32, max_size=32), max_size=3).map(tuple),
    _U63,
)

_JUNK = st.one_of(
    st.builds(
        BlockSignature, st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=100)
    ),
    st.builds(SignatureWanted, st.binary(min_size=32, max_size=32)),
    _BLOCKS,
    st.builds(
        lambda view, seq, ts, blocks: PrePrepare(
            view, seq, compute_batch_digest(ts, tuple(blocks)), ts, tuple(blocks), view % 4
        ),
        _U63,
        _U63,
        _U63,
        st.lists(_BLOCKS, min_size=1, max_size=2),
    ),
    st.binary(max_size=20),
    st.none(),
)


@given(st.integers(0, 12), _JUNK)
def test_hostile_peer_input_never_crashes_a_node(
    lone_node: MedicalChainNode, src: int, msg: object
) -> None:
    ready = lone_node.step(src, msg)
    for send in ready.messages:  # at most an answer to a signature request, to a replica
        assert isinstance(send.msg, BlockSignature) and send.dsts == (src,) and src < 4
    lone_node.tick(lone_node.now + 1000)
    assert len(lone_node.held) <= 64
