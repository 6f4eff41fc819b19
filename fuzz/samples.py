"""Valid objects to seed the corpora with: PBFT messages, ledger transactions and blocks.

Everything is deterministic (fixed seeds), so a corpus is the same on every run.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from medbench import codec
from medbench.consensus.auth import make_keyrings
from medbench.consensus.pbft.messages import (
    Block,
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    State,
    StateBatch,
    ViewChange,
    compute_batch_digest,
)
from medbench.crypto.keys import Scheme, SigningKey
from medbench.ledger.block import Block as LedgerBlock
from medbench.ledger.block import Genesis
from medbench.ledger.transaction import Kind, Transaction


def pbft_messages(scheme: str = "modeled") -> list[Any]:
    """One authenticated message of every wire kind (n = 4, clients 4 and 5), nested ones too."""
    keyrings = make_keyrings(scheme, 4, range(6), seed=b"fuzz-samples")

    def seal(msg: Any, signer: int, to: int | None = None) -> Any:
        return msg.with_auth(keyrings[signer].sign(msg.body(), to))

    req = seal(Request(4, 1, b"operation"), 4)
    req2 = seal(Request(5, 7, codec.encode({"op": "read"})), 5)
    block = seal(Block(0, 1, bytes(32), 1, (req.digest(),), 10), 1)
    iblock = seal(Block(0, 2, bytes(range(32)), -1, (), 11), 2)
    batch = (req, block)
    d = compute_batch_digest(7, batch)
    pp = seal(PrePrepare(0, 1, d, 7, batch, 0), 0)
    null_pp = seal(PrePrepare(1, 2, compute_batch_digest(0, ()), 0, (), 1), 1)
    prepares = tuple(seal(Prepare(0, 1, d, r), r) for r in (1, 2))
    commit = seal(Commit(0, 1, d, 3), 3)
    reply = seal(Reply(0, 1, 4, 2, b"result"), 2, 4)
    refusal = seal(Reply(0, 2, 4, 1, b"", refusal="no-grant"), 1, 4)
    cps = tuple(seal(Checkpoint(4, bytes(range(32)), r), r) for r in (0, 1, 2))
    vc = seal(ViewChange(1, 4, cps, (PreparedProof(pp, prepares),), 3), 3)
    empty_vc = seal(ViewChange(1, 0, (), (), 2), 2)
    nv = seal(NewView(1, (vc, empty_vc), (seal(PrePrepare(1, 5, d, 7, batch, 1), 1),), 1), 1)
    fetch = seal(Fetch(1, 3), 3)
    state = seal(State(1, 4, (StateBatch(1, 7, batch), StateBatch(2, 9, (req2,))), cps, 0), 0)
    return [
        req,
        req2,
        block,
        iblock,
        pp,
        null_pp,
        *prepares,
        commit,
        reply,
        refusal,
        cps[0],
        vc,
        empty_vc,
        nv,
        fetch,
        state,
    ]


def signing_keys(scheme: str = "ed25519", count: int = 3) -> list[SigningKey]:
    """``count`` deterministic keys of ``scheme`` (Ed25519 or ECDSA P-256: seedable)."""
    return [SigningKey.generate(Scheme(scheme), seed=bytes([i + 1]) * 32) for i in range(count)]


def transactions() -> list[Transaction]:
    """Signed transactions of every kind, one and two signers, both seedable schemes."""
    ed = signing_keys("ed25519")
    p256 = signing_keys("ecdsa-p256", 2)
    out = []
    for i, kind in enumerate(Kind):
        signers = [ed[i % 3]] if i % 2 else [ed[i % 3], ed[(i + 1) % 3]]
        out.append(Transaction.create(kind, b"content %d" % i, 1_700_000_000_000_000 + i, signers))
    out.append(Transaction.create(Kind.ADD, codec.encode({"fhir": []}), 5, p256))
    out.append(Transaction(Kind.QUERY, b"", 0, (ed[0].public,)))  # unsigned
    return out


def genesis() -> Genesis:
    """The genesis of a four-validator Ed25519 consortium."""
    keys = signing_keys("ed25519", 4)
    return Genesis("fuzz-chain", Scheme.ED25519, tuple(k.public for k in keys), bytes(32), 1000)


def ledger_blocks() -> list[LedgerBlock]:
    """A short signed chain of blocks on :func:`genesis` (empty, one and several IDs)."""
    keys = signing_keys("ed25519", 4)
    txs = transactions()
    prev = genesis().id
    out = []
    for h, ids in enumerate(([], [txs[0].id], [t.id for t in txs[:5]]), 1):
        block = LedgerBlock.make(h, prev, keys[h % 4], ids, 2000 + h)
        out.append(block)
        prev = block.id
    return out


@functools.cache
def workload() -> Any:
    """A small synthetic workload with every record form: registrations, FHIR visits with
    attachments, stealth associations, sealed grants and queries, audits, updates, deletes."""
    from medbench.workload.generator import WorkloadConfig, generate

    config = WorkloadConfig(
        patients=3,
        visits=25,
        content_median_bytes=300,
        grant_probability=0.6,
        query_probability=0.5,
        delete_probability=0.2,
        update_probability=0.3,
        stealth_associations=True,
        sealed_access=True,
        audit_queries=True,
    )
    return generate(config, seed=1)


def workload_transactions(kind: Kind) -> list[Transaction]:
    """The workload's transactions of ``kind``."""
    return [t for t in workload().transactions if t.kind is kind]


def scratch_dir() -> Path:
    """A fresh temporary directory (in memory where the system has one), removed at exit (a
    process libFuzzer ends skips that: the driver gives it ``MEDBENCH_FUZZ_SCRATCH`` and removes
    that directory afterwards)."""
    base = os.environ.get("MEDBENCH_FUZZ_SCRATCH") or (
        "/dev/shm" if os.path.isdir("/dev/shm") else None
    )
    path = Path(tempfile.mkdtemp(prefix="medbench-fuzz-", dir=base))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.cache
def deployment(block_mode: str = "blocker", auth: str = "modeled") -> Any:
    """A four-hospital Medical Chain deployment (seed 1) with its stores in a scratch dir."""
    from medbench.medchain import make_consortium

    return make_consortium(
        4,
        1,
        scratch_dir(),
        auth=auth,
        block_mode=block_mode,
        synchronous="NORMAL",
        block_size=8,
        block_interval_us=50_000,
        checkpoint_interval=4,
        log_window=16,
    )


def access_requests(dep: Any, k: int = 0, t0: int | None = None) -> list[Any]:
    """Signed access requests of a care session on ``dep``: patient ``k`` grants doctor ``k``
    care access (sealed, under a pseudonym), the doctor adds a countersigned record, the patient
    reads her records (sealed)."""
    from medbench.access.request import Operation
    from medbench.access.scenario import GENESIS_US

    t0 = GENESIS_US + 1000 * k if t0 is None else t0
    p, d = dep.patient_client(k), dep.doctor_client(k)
    grant = {
        "grantee": d.public_key,
        "ops": ["add", "read"],
        "categories": ["*"],
        "not_before_us": t0,
        "not_after_us": t0 + 3600 * 1_000_000,
    }
    return [
        p.request(Operation.GRANT, patient=p.public_key, body=grant, at_us=t0 + 1),
        d.request(Operation.ADD, patient=p.public_key, category="diagnosis",
                  body={"content": b"visit %d" % k}, at_us=t0 + 2, countersign=True),
        p.request(Operation.READ, patient=p.public_key, body={"history": False}, at_us=t0 + 3),
    ]  # fmt: skip
