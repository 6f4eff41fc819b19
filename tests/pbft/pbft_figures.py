"""Measure messages and bytes per committed request (fault-free) and print a Markdown table.

Run: ``PYTHONPATH=.:tests/pbft python tests/pbft/pbft_figures.py`` (about a minute at n = 64).
Every count is measured by the in-process network and compared with the formula of
``pbft_harness.expected_messages``; bytes are the canonical encodings (modeled authentication),
beside the theoretical bytes of ``pbft_harness.expected_bytes`` (the formula's counts times the
encoded size of each kind of message).
"""

from __future__ import annotations

import sys

from pbft_harness import expected_bytes, expected_messages, measure


def main() -> int:
    k, batches = 4, 8
    print(
        "| n | batch | msgs/request (measured) | formula | bytes/request (measured) | theory "
        "| counts agree |"
    )
    print("|---|---|---|---|---|---|---|")
    ok = True
    for n in (4, 7, 16, 64):
        for batch in (1, 100):
            net = measure(n, batch, batches, k)
            requests = batch * batches
            measured = net.stats.total_messages / requests
            formula = sum(expected_messages(n, batch, batches, k).values()) / requests
            agree = dict(net.stats.messages) == expected_messages(n, batch, batches, k)
            ok &= agree
            per_bytes = net.stats.total_bytes / requests
            theory = sum(expected_bytes(n, batch, batches, k).values()) / requests
            print(
                f"| {n} | {batch} | {measured:.2f} | {formula:.2f} | {per_bytes:.0f} "
                f"| {theory:.0f} | {agree} |"
            )
            sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
