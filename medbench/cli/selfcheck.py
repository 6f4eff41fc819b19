"""``medbench selfcheck``: the version, the backend of each group and a few primitive timings."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import medbench
from medbench import backend
from medbench.cli.errors import int_at_least


def _timeit(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def quorum_workload(digests: Sequence[bytes], n: int = 4) -> Any:
    """The vote stream ``selfcheck`` times: the counting path of a PBFT prepare round.

    Every one of ``n`` replicas votes once for each sequence number, one digest per sequence, so
    each vote is counted (no conflict, no duplicate) and each sequence reaches its quorum once.
    Returns the tracker so a caller can check that.
    """
    from medbench import quorum

    tracker = quorum.QuorumTracker(n)
    add = tracker.add
    for sequence, digest in enumerate(digests, 1):
        for voter in range(n):
            add(1, 0, sequence, digest, voter)
    return tracker


def cmd_selfcheck(args: argparse.Namespace) -> int:
    """Print the version, the backend of each group and a few primitive timings."""
    from medbench import hashing, merkle
    from medbench.reference import hashing as ref_hashing
    from medbench.reference import merkle as ref_merkle

    print(f"medbench {medbench.__version__} on Python {sys.version.split()[0]}")
    info = backend.describe()
    for group, entry in info["groups"].items():
        extra = entry.get("implementation") or ""
        print(f"  {group:8s} {entry['backend']:9s} {extra}")
        if entry.get("native_error"):  # why this group fell back to the reference
            print(f"  {'':8s} native error: {entry['native_error']}")
    print(f"  native core loaded: {info['native_loaded']}")

    n = 1 << args.log2_leaves
    messages = [os.urandom(65) for _ in range(1 << 14)]
    leaves = [i.to_bytes(32, "big") for i in range(n)]
    t_many = _timeit(lambda: hashing.sha256_many(messages))
    t_ref_many = _timeit(lambda: ref_hashing.sha256_many(messages))
    t_root = _timeit(lambda: merkle.root(leaves), repeat=3)
    t_ref_root = _timeit(lambda: ref_merkle.root(leaves), repeat=3)
    digests = [i.to_bytes(32, "big") for i in range(20_000)]
    t_quorum = _timeit(lambda: quorum_workload(digests), repeat=3)
    print("timings (best of several runs):")
    print(
        f"  sha256_many 65-byte msgs : {t_many / len(messages) * 1e9:8.1f} ns/hash "
        f"(hashlib loop {t_ref_many / len(messages) * 1e9:.1f} ns/hash)"
    )
    print(
        f"  merkle root 2^{args.log2_leaves} leaves  : {t_root * 1e3:8.2f} ms "
        f"(reference {t_ref_root * 1e3:.2f} ms, {t_ref_root / t_root:.1f}x)"
    )
    print(
        f"  quorum votes             : {t_quorum / (4 * len(digests)) * 1e9:8.1f} ns/vote "
        f"(n=4, {len(digests)} sequences, each reaching 2f+1 once)"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``medbench selfcheck``."""
    p = subparsers.add_parser("selfcheck", help="version, backends and primitive timings")
    p.add_argument(
        "--log2-leaves",
        type=int_at_least(0, 24),
        default=16,
        help="Merkle tree size (2^k leaves, k in 0..24)",
    )
    p.set_defaults(func=cmd_selfcheck)
