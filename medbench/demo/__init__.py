"""Replayable demonstrations of the paper's scenarios (``medbench demo ...``)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add ``medbench demo <scenario>`` to the CLI (call from ``cli.build_parser``)."""
    from medbench.demo import referral

    p = subparsers.add_parser("demo", help="replay a scenario of the paper step by step")
    sub = p.add_subparsers(dest="scenario", required=True)
    referral.register(sub)
