"""``medbench verify``: tamper with a synthetic chain, find the damage, repair it; audit files.

Theory of operation
-------------------
The command replays the storage attacks of docs/medical-chain.md §1.7 item 6 on a seeded workload
(:mod:`medbench.workload.generator`): a record altered on one node, a record deleted on one node, a
forged signature, a broken block link, a block by the wrong blocker. It prints every
:class:`~medbench.ledger.chain.Finding` (which block, which transaction, what), then, with
``--repair``, restores the node's transactions from an honest peer's copy and verifies again.
``--publish FILE`` writes the chain as an outside auditor would receive it (headers and IDs only)
and ``--audit FILE`` checks such a file. Exit status 0 means the final check found nothing.

:func:`register` adds the subcommand to the ``medbench`` parser (the CLI module wires it in).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medbench.cli.errors import UsageError, input_file, int_at_least, output_file, seed
from medbench.ledger import audit as audit_mod
from medbench.ledger.block import Block
from medbench.ledger.chain import ChainReport, repair, verify_chain
from medbench.ledger.errors import LedgerDecodeError
from medbench.workload.generator import WorkloadConfig, build_chain, generate

ATTACKS = ("none", "alter", "delete", "forge", "link", "blocker")


def _print_report(title: str, report: ChainReport) -> None:
    advisory = len(report.findings) - len(report.defects)  # e.g. an unsigned tip: not a defect
    print(
        f"{title}: {report.blocks_checked} blocks, {report.transactions_checked} transactions, "
        f"{report.signatures_checked} signatures -> "
        + ("OK" if report.ok else f"{len(report.defects)} finding(s)")
        + (f" ({advisory} advisory)" if advisory else "")
    )
    for f in report.findings:
        print(f"  {f}")


def _verify_proof(args: argparse.Namespace) -> int:
    """``verify --proof FILE``: a gateway's inclusion or consistency proof, offline."""
    from medbench.gateway.proofs import ProofError, load_proof, verify_proof

    data = input_file(args.proof, "proof file").read_bytes()
    keys = None
    if args.validators:
        try:
            keys = [bytes.fromhex(k) for k in args.validators.split(",")]
        except ValueError:
            raise UsageError("--validators: comma-separated hex keys") from None
    try:
        claim, problems = verify_proof(load_proof(data), keys)
    except ProofError as exc:
        raise UsageError(f"{args.proof}: not a valid proof: {exc}") from None
    print(f"{'VALID' if not problems else 'INVALID'}: {claim}")
    for p in problems:
        print(f"  {p}")
    return 0 if not problems else 1


def cmd_verify(args: argparse.Namespace) -> int:
    """Run the tamper/verify/repair demonstration or audit a published chain file."""
    if args.proof:
        return _verify_proof(args)
    if args.audit:
        data = input_file(args.audit, "publication file").read_bytes()
        try:
            report = audit_mod.audit_publication(data)
        except LedgerDecodeError as exc:
            raise UsageError(f"{args.audit}: not a valid publication: {exc}") from None
        _print_report(f"audit of {args.audit}", report)
        return 0 if report.ok else 1
    if args.publish:
        output_file(args.publish)
    cfg = WorkloadConfig(patients=args.patients, visits=args.visits)
    wl = generate(cfg, seed=args.seed)
    genesis, blocks = build_chain(wl, block_size=args.block_size)
    local, peer = wl.store(), wl.store()
    rng = np.random.default_rng(args.seed)
    h = int(rng.integers(len(blocks)))
    i = int(rng.integers(len(blocks[h].tx_ids)))
    tid = blocks[h].tx_ids[i]
    by_key = {v.public: v for v in wl.validators}
    if args.attack == "alter":
        local[tid] = replace(local[tid], content=local[tid].content + b" (edited)")
    elif args.attack == "delete":
        del local[tid]
    elif args.attack == "forge":
        tx = local[tid]
        mallory = wl.patients[0].identity.signing
        local[tid] = replace(tx, signatures=(mallory.sign(tid), *tx.signatures[1:]))
    elif args.attack in ("link", "blocker"):
        b = blocks[h]
        signer = by_key[b.header.blocker]
        changes: dict[str, Any] = {"previous_id": bytes(32)}
        if args.attack == "blocker":
            signer = next(v for v in wl.validators if v.public != b.header.blocker)
            changes = {"blocker": signer.public}
        header = replace(b.header, **changes)
        blocks[h] = Block(header, signer.sign(header.id), b.tx_ids)
    print(
        f"workload seed {args.seed}: {len(wl.transactions)} transactions in {len(blocks)} blocks; "
        f"attack: {args.attack}"
        + ("" if args.attack in ("none", "link", "blocker") else f" on block {h + 1} tx #{i}")
    )
    report = verify_chain(genesis, blocks, local, policy=wl.policy)
    _print_report("verify", report)
    if args.publish:
        Path(args.publish).write_bytes(audit_mod.publish(genesis, blocks))
        print(f"published headers and IDs to {args.publish}")
    if args.repair and not report.ok:
        result = repair(genesis, blocks, local, [peer], report=report, policy=wl.policy)
        print(f"repair: restored {len(result.restored)}, unrecoverable {len(result.unrecoverable)}")
        assert result.report is not None
        report = result.report
        _print_report("verify after repair", report)
    return 0 if report.ok else 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``verify`` to a ``medbench`` sub-parser collection; returns the new parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "verify", help="tamper with a synthetic chain, localise and repair; or audit a file"
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--patients", type=int_at_least(1, 100_000), default=20)
    p.add_argument("--visits", type=int_at_least(0, 1_000_000), default=60)
    p.add_argument("--block-size", type=int_at_least(1), default=16)
    p.add_argument("--attack", choices=ATTACKS, default="none")
    p.add_argument("--repair", action="store_true", help="restore from an honest peer's copy")
    p.add_argument("--publish", metavar="FILE", help="write headers and IDs for auditors")
    p.add_argument("--audit", metavar="FILE", help="audit a published chain file instead")
    p.add_argument(
        "--proof",
        metavar="FILE",
        help="verify a proof downloaded from a gateway (inclusion or consistency)",
    )
    p.add_argument(
        "--validators",
        metavar="HEX,...",
        help="with --proof: the trusted validator keys (default: those the file lists)",
    )
    p.set_defaults(func=cmd_verify)
    return p
