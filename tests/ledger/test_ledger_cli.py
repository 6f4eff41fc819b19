"""``medbench verify``: attacks are found, repair restores from a peer, audit of files."""

from __future__ import annotations

from pathlib import Path

import pytest

from medbench.cli import main


def run(*argv: str) -> int:
    """``medbench verify ...`` through the CLI's entry point (usage errors exit 2)."""
    return main(["verify", "--visits", "15", "--patients", "5", *argv])


def test_clean_chain(capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 0
    assert "-> OK" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("attack", "finding"),
    [
        ("alter", "body-altered"),
        ("delete", "transaction-missing"),
        ("forge", "signature-invalid"),
        ("link", "link-broken"),
        ("blocker", "wrong-blocker"),
    ],
)
def test_attacks_are_found(attack: str, finding: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--attack", attack, "--seed", "2") == 1
    assert finding in capsys.readouterr().out


@pytest.mark.parametrize("attack", ["alter", "delete", "forge"])
def test_repair_from_peer(attack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--attack", attack, "--repair") == 0
    assert "restored 1" in capsys.readouterr().out


def test_publish_then_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.pub", tmp_path / "bad.pub"
    run("--publish", str(good))
    assert run("--audit", str(good)) == 0
    run("--attack", "blocker", "--publish", str(bad))
    assert run("--audit", str(bad)) == 1
    (tmp_path / "junk").write_bytes(b"\x93junk")
    capsys.readouterr()
    assert run("--audit", str(tmp_path / "junk")) == 2
    assert "not a valid publication" in capsys.readouterr().err  # one line, on stderr
