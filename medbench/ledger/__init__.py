"""The Medical Chain ledger: transactions, blocks of IDs, chain validation, audit.

* :mod:`.transaction` — kinds, IDs, multi-signatures, signer rules, wire form;
* :mod:`.block` — genesis, headers, blocks of IDs with Merkle root and blocker signature;
* :mod:`.chain` — validation with typed, localised findings (the blocker rotation of
  :mod:`medbench.rotation`), and repair from peers;
* :mod:`.audit` — verification from published headers and IDs only;
* :mod:`.errors` — typed errors and the outcome of a signature check;
* :mod:`.rsa_pool` — the shipped RSA-3072 keys that make seeded RSA-PSS workloads reproducible.

The synthetic workload that fills a ledger lives above the domain layers, in
:mod:`medbench.workload`.
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
from medbench.ledger.errors import (
    LedgerDecodeError,
    LedgerError,
    Problem,
    SignatureError,
    SignatureProblem,
    Verification,
)
from medbench.ledger.transaction import (
    RECORD_KINDS,
    Kind,
    SignerPolicy,
    Transaction,
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
