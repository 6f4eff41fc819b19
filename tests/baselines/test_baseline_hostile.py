"""Hostile input: malformed, forged and replayed messages never crash a baseline node.

Every bad input must come back as a ``rejected`` note with a string reason, counted in the node's
rejection counters.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baselines.harness import Harness
from medbench import codec
from medbench.consensus.baselines.central import Refuse, Register, RelayBlock, Rewrite, Sync
from medbench.consensus.baselines.common import Submit, TxGossip, WireMessage
from medbench.consensus.baselines.dpos import Audit, DposBlock
from medbench.consensus.baselines.poa import PoaBlock
from medbench.consensus.baselines.pow import PowBlock
from medbench.experiments.baselines import make_nodes
from medbench.node import Ready

CONFIGS: dict[str, tuple[int, dict[str, Any]]] = {
    "pow": (3, {"hashrate": 1000.0, "difficulty": 2000, "confirmations": 1}),
    "poi": (3, {"hashrate": 1000.0, "difficulty": 2000, "confirmations": 1}),
    "poa": (3, {"period_us": 1_000_000, "authorities": 2}),  # node 2 is a full node
    "dpos": (5, {"delegates": 3, "auditors": 2}),
    "central": (3, {}),
}
CLASSES: list[type[WireMessage]] = [
    Submit,
    TxGossip,
    PowBlock,
    PoaBlock,
    DposBlock,
    Audit,
    RelayBlock,
    Sync,
    Register,
    Refuse,
    Rewrite,
]
KINDS = [c.KIND for c in CLASSES]


def warmed(name: str) -> list[Any]:
    """A small network that has run a few blocks, so hostile input meets a non-empty state."""
    n, params = CONFIGS[name]
    nodes = make_nodes(name, n, params, seed=1)
    h = Harness(nodes, 5_000)
    for i in range(5):
        h.submit(1 + i % (n - 1), bytes([i]) * 32, 50, 100_000 * (i + 1))
    h.run(6_000_000)
    return nodes


NETWORKS = {name: warmed(name) for name in CONFIGS}

garbage_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=70),
    st.text(max_size=8),
    st.floats(allow_nan=True),
)
garbage = st.recursive(
    garbage_leaf, lambda c: st.lists(c, max_size=4) | st.tuples(c, c), max_leaves=12
)
wire_leaf = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.binary(max_size=40),
    st.text(max_size=8),
)
wire_value = st.recursive(wire_leaf, lambda c: st.lists(c, max_size=4), max_leaves=12)
sources = st.one_of(st.integers(min_value=-3, max_value=8), st.none(), st.text(max_size=3))


def check(node: Any, src: Any, msg: Any) -> Ready:
    before = sum(node.counters.rejections.values())
    ready = node.step(src, msg)
    assert isinstance(ready, Ready)
    rejected = [n for n in ready.notes if n.kind == "rejected"]
    assert sum(node.counters.rejections.values()) - before == len(rejected)
    assert all(isinstance(n.detail[0], str) for n in rejected)
    return ready


def garbage_object(cls: type[WireMessage], values: list[Any]) -> Any:
    """An instance of ``cls`` whose fields were never checked (a peer can hand us anything)."""
    obj = object.__new__(cls)
    for f, value in zip(dataclasses.fields(cls), values, strict=False):  # type: ignore[arg-type]
        object.__setattr__(obj, f.name, value)
    return obj


@pytest.mark.parametrize("name", sorted(CONFIGS))
@given(data=st.binary(max_size=300), src=sources)
def test_random_bytes_are_rejected(name: str, data: bytes, src: Any) -> None:
    for node in NETWORKS[name]:
        ready = check(node, src, data)
        assert ready.notes and ready.notes[0].kind == "rejected"


@pytest.mark.parametrize("name", sorted(CONFIGS))
@given(kind=st.sampled_from(KINDS), fields=st.lists(wire_value, max_size=11), src=sources)
def test_canonical_garbage_never_crashes(name: str, kind: str, fields: list[Any], src: Any) -> None:
    data = codec.encode([kind, *fields])
    for node in NETWORKS[name]:
        check(node, src, data)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@given(cls=st.sampled_from(CLASSES), values=st.lists(garbage, max_size=11), src=sources)
def test_unchecked_objects_never_crash(
    name: str, cls: type[WireMessage], values: list[Any], src: Any
) -> None:
    obj = garbage_object(cls, values)
    for node in NETWORKS[name]:
        check(node, src, obj)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@given(obj=garbage, src=sources, now=st.one_of(garbage_leaf, st.integers()))
def test_foreign_objects_and_bad_ticks_never_crash(name: str, obj: Any, src: Any, now: Any) -> None:
    for node in NETWORKS[name]:
        ready = check(node, src, obj)
        assert ready.notes[0].detail[0] in {"unknown_message", "malformed"}
        before = node.now
        assert isinstance(node.tick(now) if not isinstance(now, int) or now < 0 else Ready(), Ready)
        assert node.now == before


@pytest.mark.parametrize("name", ["pow", "poi", "poa", "dpos"])
def test_replayed_blocks_and_local_kinds_from_peers_are_rejected(name: str) -> None:
    nodes = NETWORKS[name]
    node = nodes[0]
    block = node.tree.entries[node.tree.main[1]].block
    ready = check(nodes[1], 0, block)  # node 1 already has it
    assert ready.notes[0].detail[0] == "duplicate_block"
    ready = check(nodes[1], 0, Submit(bytes(32), 1, 0))
    assert ready.notes[0].detail[0] == "local_from_remote"
    ready = check(nodes[1], 1, block)  # a peer message claiming to come from ourselves
    assert ready.notes[0].detail[0] == "remote_from_self"
    ready = check(nodes[1], 0, block.encode())  # the wire form decodes to the same block
    assert ready.notes[0].detail[0] == "duplicate_block"


def test_wire_round_trip_of_every_message() -> None:
    from medbench.consensus.baselines.common import decode_message

    samples: list[WireMessage] = [
        Submit(bytes(32), 5, 7),
        TxGossip(bytes(32), 5, 7),
        Register(1),
        Refuse(3),
        Rewrite(1, bytes(32)),
    ]
    for name in ("pow", "poa", "dpos"):
        node = NETWORKS[name][0]
        samples.append(node.tree.entries[node.tree.main[1]].block)
    centre = NETWORKS["central"][0]
    samples += [centre.chain[1], Sync(tuple(centre.chain))]
    for msg in samples:
        back = decode_message(msg.encode(), CLASSES)
        assert type(back) is type(msg) and back.encode() == msg.encode()
    assert len(TxGossip(bytes(32), 1000, 0).encode()) > 1000  # the body travels


# Well-typed messages with hostile values: they pass the schema and reach the protocol rules.
def _known_ids() -> list[bytes]:
    ids: list[bytes] = []
    for name in ("pow", "poi", "poa", "dpos"):
        ids += NETWORKS[name][0].tree.main[:3]
    ids += [b.hash for b in NETWORKS["central"][0].chain[:3]]
    return ids


b32s = st.one_of(st.binary(min_size=32, max_size=32), st.sampled_from(_known_ids()))
u64s = st.one_of(st.integers(0, 12), st.integers(0, 2**64 - 1))
small = st.integers(0, 7)
sigs = st.binary(max_size=64)
txs = st.lists(st.tuples(b32s, st.integers(0, 5000), u64s), max_size=3).map(tuple)
blocks = st.one_of(
    st.builds(
        PowBlock,
        b32s,
        u64s,
        small,
        u64s,
        st.sampled_from([2000, 1, 2**64 - 1]),
        b32s,
        b32s,
        st.binary(min_size=8, max_size=8),
        txs,
        st.binary(max_size=60),
    ),
    st.builds(PoaBlock, b32s, u64s, u64s, st.sampled_from([1, 2, 3]), small, b32s, txs, sigs),
    st.builds(DposBlock, b32s, u64s, u64s, small, b32s, txs, sigs),
    st.builds(Audit, b32s, u64s, small, sigs),
    st.builds(RelayBlock, u64s, u64s, b32s, small, txs, b32s),
    st.builds(Register, small),
    st.builds(Refuse, u64s),
    st.builds(Rewrite, u64s, b32s),
    st.builds(TxGossip, b32s, st.integers(0, 5000), u64s),
)
syncs = st.lists(st.builds(RelayBlock, u64s, u64s, b32s, small, txs, b32s), max_size=3).map(
    lambda bs: Sync(tuple(bs))
)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@given(msg=st.one_of(blocks, syncs), src=small, wire=st.booleans())
def test_well_typed_hostile_messages_never_crash(
    name: str, msg: WireMessage, src: int, wire: bool
) -> None:
    for node in NETWORKS[name]:
        check(node, src, msg.encode() if wire else msg)
