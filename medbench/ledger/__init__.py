"""The Medical Chain ledger: transactions, blocks of IDs, chain validation, audit, workload.

* :mod:`.transaction` — kinds, IDs, multi-signatures, signer rules, wire form;
* :mod:`.block` — genesis, headers, blocks of IDs with Merkle root and blocker signature;
* :mod:`.rotation` — which validator blocks next (``B = L mod (N-1)``);
* :mod:`.chain` — validation with typed, localised findings, and repair from peers;
* :mod:`.audit` — verification from published headers and IDs only;
* :mod:`.workload` — seeded synthetic institutions, staff, patients and visits;
* :mod:`.rsa_pool` — the shipped RSA-3072 keys that make seeded RSA-PSS workloads reproducible.
"""

from __future__ import annotations

from medbench.ledger.audit import audit_publication, compare, publish, read_publication
from medbench.ledger.block import Block, BlockHeader, Genesis
from medbench.ledger.chain import (
    ChainReport,
    Finding,
    FindingKind,
    RepairResult,
    check_headers,
    repair,
    verify_chain,
)
from medbench.ledger.errors import LedgerDecodeError, LedgerError, SignatureError
from medbench.ledger.transaction import (
    RECORD_KINDS,
    Kind,
    Problem,
    SignatureProblem,
    SignerPolicy,
    Transaction,
    Verification,
    record_signers,
    transaction_id,
    verify_transaction,
)
from medbench.rotation import expected_blocker

__all__ = [
    "RECORD_KINDS",
    "Block",
    "BlockHeader",
    "ChainReport",
    "Finding",
    "FindingKind",
    "Genesis",
    "Kind",
    "LedgerDecodeError",
    "LedgerError",
    "Problem",
    "RepairResult",
    "SignatureError",
    "SignatureProblem",
    "SignerPolicy",
    "Transaction",
    "Verification",
    "audit_publication",
    "check_headers",
    "compare",
    "expected_blocker",
    "publish",
    "read_publication",
    "record_signers",
    "repair",
    "transaction_id",
    "verify_chain",
    "verify_transaction",
]
