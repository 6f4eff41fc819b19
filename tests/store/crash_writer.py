"""Crash-test writer: streams blocks and their transactions into a node store.

Run as ``python crash_writer.py DB_PATH SEED MAX_BLOCKS TIME_LIMIT_S [KILL] [atomic]``. For each
height it commits the block's transactions, then the block (or both in one commit with
``atomic``), and only then prints the height (flushed): a printed height is one the node has
reported committed. The content is a pure function of (seed, height), so the test can rebuild
what must be there. Bounded in blocks and in wall time.

``KILL`` = ``HEIGHT:STATEMENT PREFIX:N`` makes the writer SIGKILL itself from SQLite's statement
trace hook when, while writing block ``HEIGHT``, the ``N``-th statement starting with the prefix
is about to run *inside an open write transaction* (after ``BEGIN IMMEDIATE``, before
``COMMIT``): e.g. ``7:INSERT INTO block_tx:17`` dies with 16 membership rows of block 7 written
and uncommitted. It reports where it died on stderr first, so the test can check that the kill
landed inside the transaction rather than between two.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
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


class KillHook:
    """SQLite trace callback that SIGKILLs the process at one statement of one height."""

    def __init__(self, conn: sqlite3.Connection, spec: str) -> None:
        height, prefix, count = spec.split(":")
        self.conn = conn
        self.height, self.prefix, self.count = int(height), prefix, int(count)
        self.current = -1
        self.seen = 0

    def __call__(self, statement: str) -> None:
        if self.current != self.height or not statement.lstrip().startswith(self.prefix):
            return
        self.seen += 1
        if self.seen < self.count:
            return
        where = "inside an open write" if self.conn.in_transaction else "between writes"
        sys.stderr.write(f"killed {where} at height {self.height}: {self.prefix} #{self.seen}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    path, seed, max_blocks, limit = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    kill = argv[4] if len(argv) > 4 and argv[4] else None
    atomic = len(argv) > 5 and argv[5] == "atomic"
    deadline = time.monotonic() + limit
    with NodeStore(path) as store:
        hook = None
        if kill is not None:
            hook = KillHook(store._conn, kill)  # test-only reach into the writer connection
            store._conn.set_trace_callback(hook)
        tip = store.tip()
        start = 0 if tip is None else tip[0] + 1
        for h in range(start, max_blocks):
            if time.monotonic() > deadline:
                return 3
            if hook is not None:
                hook.current = h
            txs = block_txs(seed, h)
            if not atomic:
                store.put_transactions(txs, skip_identical=True)
            store.append_block(
                h,
                block_id(seed, h),
                prev_id(seed, h),
                header(seed, h),
                BLOCKER,
                h,
                [t.tx_id for t in txs],
                transactions=txs if atomic else (),
            )
            sys.stdout.write(f"{h}\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
