"""Crash-test writer: streams blocks and their transactions into a node store.

Run as ``python crash_writer.py DB_PATH SEED MAX_BLOCKS TIME_LIMIT_S``. For each height it commits
the block's transactions, then the block, and only then prints the height (flushed): a printed
height is one the node has reported committed. The content is a pure function of (seed, height),
so the test can rebuild what must be there. Bounded in blocks and in wall time.
"""

from __future__ import annotations

import random
import sys
import time

from medbench.hashing import sha256
from medbench.store import NodeStore, StoredTransaction

TXS_PER_BLOCK = 40
PRODUCER = sha256(b"crash-test institution")
BLOCKER = sha256(b"crash-test blocker")


def block_txs(seed: int, height: int) -> list[StoredTransaction]:
    """The transactions of block ``height`` (deterministic)."""
    rng = random.Random(seed * 1_000_003 + height)
    out = []
    for j in range(TXS_PER_BLOCK):
        body = b"%d/%d/%d:" % (seed, height, j) + rng.randbytes(rng.randint(200, 3000))
        out.append(StoredTransaction(sha256(body), 1 + j % 6, height * 1000 + j, PRODUCER, body))
    return out


def block_id(seed: int, height: int) -> bytes:
    """The ID of block ``height`` (deterministic)."""
    digest: bytes = sha256(b"crash block %d %d" % (seed, height))
    return digest


def header(seed: int, height: int) -> bytes:
    """The header bytes of block ``height`` (deterministic)."""
    return b"header %d %d " % (seed, height) + block_id(seed, height)


def prev_id(seed: int, height: int) -> bytes:
    """The previous-block ID named by block ``height``."""
    return bytes(32) if height == 0 else block_id(seed, height - 1)


def main(argv: list[str]) -> int:
    path, seed, max_blocks, limit = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    deadline = time.monotonic() + limit
    with NodeStore(path) as store:
        tip = store.tip()
        start = 0 if tip is None else tip[0] + 1
        for h in range(start, max_blocks):
            if time.monotonic() > deadline:
                return 3
            txs = block_txs(seed, h)
            store.put_transactions(txs, skip_identical=True)
            store.append_block(
                h,
                block_id(seed, h),
                prev_id(seed, h),
                header(seed, h),
                BLOCKER,
                h,
                [t.tx_id for t in txs],
            )
            sys.stdout.write(f"{h}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
