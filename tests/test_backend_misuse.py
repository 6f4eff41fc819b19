"""Both backends answer misuse alike: the same result or the same exception type, for every public
function and method given inputs outside its contract.

Defect 12 of issue 13: reference ``merkle.root(iter([]))`` raised ``IndexError`` where the native
core returned H(""); reference ``QuorumTracker.add`` counted a float voter where the native core
raised ``AttributeError``. The differential below covers the whole class: every argument position
of every public entry point of the hashing, Merkle and quorum groups, each given a catalogue of
wrong types and out-of-range values, plus iterators and generators where a sequence is expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from medbench.reference import hashing as ref_hashing
from medbench.reference import merkle as ref_merkle
from medbench.reference import quorum as ref_quorum

native_hashing = pytest.importorskip("medbench._native.hashing", reason="native core not built")
native_merkle = pytest.importorskip("medbench._native.merkle", reason="native core not built")
native_quorum = pytest.importorskip("medbench._native.quorum", reason="native core not built")

D = b"\x01" * 32
L2 = [b"a", b"b"]

# Values outside most contracts. Iterators are built fresh per call (``lambda``), so both
# backends see the same, unconsumed input.
WRONG: list[tuple[str, Callable[[], Any]]] = [
    ("None", lambda: None),
    ("str", lambda: "s"),
    ("float", lambda: 1.5),
    ("nan", lambda: math.nan),
    ("negative", lambda: -1),
    ("huge", lambda: 2**70),
    ("empty-bytes", lambda: b""),
    ("bytearray", lambda: bytearray(b"ab")),
    ("memoryview", lambda: memoryview(b"ab")),
    ("list-of-bytes", lambda: [b"a"]),
    ("tuple-of-bytes", lambda: (b"a",)),
    ("empty-iterator", lambda: iter([])),
    ("iterator", lambda: iter([b"a", b"b", b"c"])),
    ("generator", lambda: (x for x in [b"a", b"b"])),
    ("list-with-None", lambda: [b"a", None]),
    ("list-of-int", lambda: [1]),
    ("list-of-str", lambda: ["s"]),
    ("dict", lambda: {b"a": 1}),
    ("bool", lambda: True),
    ("object", lambda: object()),
]


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", value)`` or ``("raises", exception type name)``; iterators become lists."""
    try:
        value = call()
    except Exception as exc:  # the point: compare whatever either backend raises
        return ("raises", type(exc).__name__)
    if isinstance(value, (frozenset, set)):
        return ("ok", sorted(value))
    if hasattr(value, "__next__"):
        return ("ok", list(value))
    if isinstance(value, (ref_quorum.QuorumTracker, native_quorum.QuorumTracker)):
        return ("ok", "tracker")
    return ("ok", value)


# (name, reference function, native function, arguments with one ``...`` to fill)
ENTRY_POINTS: list[tuple[str, Callable[..., Any], Callable[..., Any], list[Any]]] = []


def _entry(name: str, ref: Callable[..., Any], nat: Callable[..., Any], *args: Any) -> None:
    for pos in range(len(args)):
        filled = list(args)
        filled[pos] = ...
        ENTRY_POINTS.append((f"{name}[{pos}]", ref, nat, filled))


_entry("sha256", ref_hashing.sha256, native_hashing.sha256, b"x")
_entry("sha256_many", ref_hashing.sha256_many, native_hashing.sha256_many, [b"x"])
_entry("leaf_hash", ref_merkle.leaf_hash, native_merkle.leaf_hash, b"x")
_entry("node_hash", ref_merkle.node_hash, native_merkle.node_hash, D, D)
_entry("root", ref_merkle.root, native_merkle.root, L2)
_entry("levels", ref_merkle.levels, native_merkle.levels, L2)
_entry("inclusion_proof", ref_merkle.inclusion_proof, native_merkle.inclusion_proof, L2, 0)
_entry("consistency_proof", ref_merkle.consistency_proof, native_merkle.consistency_proof, L2, 1)
_entry("diff", ref_merkle.diff, native_merkle.diff, L2, [b"a", b"c"])
_entry(
    "verify_inclusion", ref_merkle.verify_inclusion, native_merkle.verify_inclusion, D, 0, 1, [], D
)
_entry(
    "verify_consistency",
    ref_merkle.verify_consistency,
    native_merkle.verify_consistency,
    1,
    2,
    [D],
    D,
    D,
)
_entry("max_faulty", ref_quorum.max_faulty, native_quorum.max_faulty, 4)
_entry("strong_quorum", ref_quorum.strong_quorum, native_quorum.strong_quorum, 4)
_entry("weak_quorum", ref_quorum.weak_quorum, native_quorum.weak_quorum, 4)
_entry("QuorumTracker", ref_quorum.QuorumTracker, native_quorum.QuorumTracker, 4)


def _method(name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def on(cls: type) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            tracker = cls(4)
            tracker.add(1, 0, 1, D, 0)  # one vote already in, so lookups find a round
            return getattr(tracker, name)(*args)

        return call

    return on(ref_quorum.QuorumTracker), on(native_quorum.QuorumTracker)


for _name, _args in [
    ("add", (1, 0, 1, D, 1)),
    ("count", (1, 0, 1, D)),
    ("voters", (1, 0, 1, D)),
    ("reached", (1, 0, 1, D)),
    ("threshold", (1,)),
    ("forget_below", (1,)),
]:
    _entry(f"QuorumTracker.{_name}", *_method(_name), *_args)


@pytest.mark.parametrize(("label", "make"), WRONG, ids=[w[0] for w in WRONG])
@pytest.mark.parametrize(
    ("name", "ref", "nat", "args"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS]
)
def test_backends_agree_on_misuse(
    name: str,
    ref: Callable[..., Any],
    nat: Callable[..., Any],
    args: list[Any],
    label: str,
    make: Callable[[], Any],
) -> None:
    def call(fn: Callable[..., Any]) -> Callable[[], Any]:
        return lambda: fn(*[make() if a is ... else a for a in args])

    want = outcome(call(ref))
    got = outcome(call(nat))
    assert got == want, f"{name} with {label}: reference {want}, native {got}"


def test_tracker_thresholds_must_be_whole_vote_counts() -> None:
    for cls in (ref_quorum.QuorumTracker, native_quorum.QuorumTracker):
        with pytest.raises(TypeError):
            cls(4, {1: 1.5})
        with pytest.raises(ValueError):
            cls(4, {1: 5})


def test_the_named_cases_of_the_issue() -> None:
    assert ref_merkle.root(iter([])) == native_merkle.root(iter([])) == ref_hashing.sha256(b"")
    for cls in (ref_quorum.QuorumTracker, native_quorum.QuorumTracker):
        with pytest.raises(TypeError):
            cls(4).add(1, 0, 1, D, 1.5)
