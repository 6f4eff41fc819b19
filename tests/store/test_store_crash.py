"""SIGKILL a writer mid-stream; everything it reported committed must survive, consistently."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crash_writer import block_id, block_txs, header, prev_id

from medbench.store import NodeStore

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
MAX_BLOCKS = 400
WRITER_LIMIT_S = 8.0


def _run_and_kill(db: Path, seed: int) -> list[int]:
    """Start the writer, SIGKILL it at a seeded point; return every height it reported."""
    rng = random.Random(seed)
    kill_after = rng.randint(2, 30)  # reported heights before the kill is armed
    extra_delay = rng.uniform(0.0, 0.02)  # then land anywhere inside the next commits
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(WRITER.parent)])}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(db), str(seed), str(MAX_BLOCKS), str(WRITER_LIMIT_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    reported: list[int] = []
    try:
        for line in proc.stdout:  # the writer is bounded in blocks and time: this ends
            reported.append(int(line))
            if len(reported) >= kill_after:
                break
        time.sleep(extra_delay)
        proc.send_signal(signal.SIGKILL)
        reported.extend(int(line) for line in proc.stdout)  # printed before it died
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.stderr is not None
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"writer ended on its own: {err}"
    assert reported == list(range(len(reported))), "heights are reported in order"
    assert len(reported) >= kill_after
    return reported


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_sigkill_mid_stream_loses_nothing_reported(tmp_path: Path, seed: int) -> None:
    db = tmp_path / "node.db"
    reported = _run_and_kill(db, seed)
    with NodeStore(db) as store:
        assert store.integrity_check() == ["ok"]
        assert store.check_consistency() == []
        tip = store.tip()
        assert tip is not None
        # all that was reported is there; at most one more block committed before the print
        assert reported[-1] <= tip[0] <= reported[-1] + 1
        for h in range(tip[0] + 1):
            block = store.get_block(h)
            assert block is not None
            txs = block_txs(seed, h)
            assert block.block_id == block_id(seed, h) and block.prev_id == prev_id(seed, h)
            assert block.header == header(seed, h)
            assert block.tx_ids == tuple(t.tx_id for t in txs)
            assert store.get_transactions(block.tx_ids) == {t.tx_id: t for t in txs}
        # transactions of the next block may be committed without their block; nothing else
        allowed = {t.tx_id for h in range(tip[0] + 2) for t in block_txs(seed, h)}
        assert set(store.transactions) <= allowed
        first_orphans = len(store.transactions) - 40 * (tip[0] + 1)
        assert first_orphans in (0, 40)
    # the node restarts and carries on from where the file says it is
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(WRITER.parent)])}
    done = subprocess.run(
        [sys.executable, str(WRITER), str(db), str(seed), str(tip[0] + 4), "10"],
        capture_output=True,
        env=env,
        timeout=30,
        check=True,
    )
    assert done.stdout.split() == [b"%d" % h for h in range(tip[0] + 1, tip[0] + 4)]
    with NodeStore(db) as store:
        assert store.check_consistency() == [] and store.tip() == (
            tip[0] + 3,
            block_id(seed, tip[0] + 3),
        )


# --- kills that land inside an open write transaction --------------------------------------------

KILL_HEIGHT = 6
INSIDE_WRITES = [
    # (statement the kill precedes, its ordinal within block KILL_HEIGHT's writes, atomic mode,
    #  whether KILL_HEIGHT's transactions were committed before the kill)
    pytest.param("INSERT OR IGNORE INTO transactions", 21, False, False, id="mid-body-batch"),
    pytest.param("SELECT height, id FROM blocks", 1, False, True, id="after-begin-of-block"),
    pytest.param("INSERT INTO block_tx", 17, False, True, id="mid-membership"),
    pytest.param("COMMIT", 2, False, True, id="before-block-commit"),
    pytest.param("INSERT INTO block_tx", 17, True, False, id="atomic-mid-membership"),
    pytest.param("COMMIT", 1, True, False, id="atomic-before-commit"),
]


def _writer_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(WRITER.parent)])}


@pytest.mark.parametrize(("statement", "nth", "atomic", "bodies_committed"), INSIDE_WRITES)
def test_sigkill_inside_an_open_write_rolls_back_cleanly(
    tmp_path: Path, statement: str, nth: int, atomic: bool, bodies_committed: bool
) -> None:
    db = tmp_path / "node.db"
    kill = f"{KILL_HEIGHT}:{statement}:{nth}"
    mode = "atomic" if atomic else "split"
    died = subprocess.run(
        [sys.executable, str(WRITER), str(db), "9", str(MAX_BLOCKS), "20", kill, mode],
        capture_output=True,
        env=_writer_env(),
        timeout=60,
        check=False,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr
    # the kill landed inside BEGIN IMMEDIATE ... COMMIT, at the statement asked for
    assert died.stderr.decode().strip() == (
        f"killed inside an open write at height {KILL_HEIGHT}: {statement} #{nth}"
    )
    reported = [int(h) for h in died.stdout.split()]
    assert reported == list(range(KILL_HEIGHT))  # everything before the kill was reported
    with NodeStore(db) as store:
        assert store.integrity_check() == ["ok"]
        assert store.check_consistency() == []
        assert store.tip() == (KILL_HEIGHT - 1, block_id(9, KILL_HEIGHT - 1))
        for h in reported:  # every reported block is whole
            block = store.get_block(h)
            assert block is not None and block.tx_ids == tuple(t.tx_id for t in block_txs(9, h))
        assert store.get_block(KILL_HEIGHT) is None
        assert store.block_of(block_txs(9, KILL_HEIGHT)[0].tx_id) is None  # no membership rows
        held = store.get_transactions(t.tx_id for t in block_txs(9, KILL_HEIGHT))
        # the open transaction left nothing; an earlier commit of the bodies is all or nothing
        assert len(held) == (len(block_txs(9, KILL_HEIGHT)) if bodies_committed else 0)
        assert len(store.transactions) == 40 * KILL_HEIGHT + len(held)
    # restart without the hook: the writer carries on from the tip the file reports
    done = subprocess.run(
        [sys.executable, str(WRITER), str(db), "9", str(KILL_HEIGHT + 2), "20", "", mode],
        capture_output=True,
        env=_writer_env(),
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == [b"%d" % KILL_HEIGHT, b"%d" % (KILL_HEIGHT + 1)]
    with NodeStore(db) as store:
        assert store.check_consistency() == []
        assert store.tip() == (KILL_HEIGHT + 1, block_id(9, KILL_HEIGHT + 1))
