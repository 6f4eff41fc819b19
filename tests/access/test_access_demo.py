"""The access demo plays the whole story with the outcomes the paper predicts."""

from __future__ import annotations

import argparse

from medbench.cli.demo import register
from medbench.demo.access import run


def test_demo_outcomes() -> None:
    lines = run(0, dictionary_size=300)
    text = "\n".join(lines)
    assert "2. D reads P's records without a grant: refused (no-grant)" in text
    assert "D reads after the window: refused (grant-expired)" in text
    assert "court reads without authorization: refused (no-grant)" in text
    assert "court reads after the city authority authorizes: allowed" in text
    assert "keys match P: True" in text
    assert "new request refused (cert-revoked)" in text
    assert "re-verified as of its time: allowed" in text
    assert "key found=True" in text and "opened=False" in text
    assert (
        run(0, dictionary_size=300)[:-3] == lines[:-3]
    )  # deterministic apart from the measured times


def test_register_adds_the_subcommand(capsys) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["access-demo", "--seed", "2", "--names", "50"])
    assert args.func(args) == 0
    assert "consortium:" in capsys.readouterr().out
