"""The ``medbench store`` subcommands (wired through a local parser, as cli.py will)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from medbench.cli.errors import UsageError
from medbench.cli.store import register
from medbench.store import NodeStore, StoredTransaction


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medbench")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_report_and_check(
    store: NodeStore,
    chain: Callable[[int, int], list[StoredTransaction]],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    txs = chain(3, 4)
    path = str(store.path)
    assert _run(["store", "report", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["transactions"] == 12 and out["overhead"] > 1
    (tmp_path / "b").mkdir()  # a report reads a blob store; it never creates one
    assert _run(["store", "report", path, "--blobs", str(tmp_path / "b")]) == 0
    assert "overhead" in capsys.readouterr().out
    assert _run(["store", "check", path]) == 0
    assert "tip 2" in capsys.readouterr().out
    store.delete_transaction(txs[0].tx_id)
    assert _run(["store", "check", path]) == 1
    assert "missing" in capsys.readouterr().out
    with pytest.raises(UsageError, match="no node store"):  # the entry point exits 2 on it
        _run(["store", "check", str(tmp_path / "absent.db")])
