"""The Medical Chain node: PBFT replica + access validator + rotating blocker + SQLite store.

docs/medical-chain.md §1.5: on each hospital node a client (creates transactions), a validator (a
PBFT replica checking signatures and the access rules) and a blocker (packs accepted transaction IDs
into signed blocks). Modules: :mod:`.block_format` (ledger blocks as PBFT's block format),
:mod:`.validation` (the access rules as PBFT's validator and service), :mod:`.chain_records`
(CRLs, certificates, policy, blacklist, audit and KMC records: proofs and effects),
:mod:`.node` (the node and its store duties) and :mod:`.consortium` (a deterministic deployment).
"""

from medbench.medchain.block_format import (
    BlockSignature,
    LedgerBlockFormat,
    SignatureWanted,
    decode_side_message,
    primary_for,
)
from medbench.medchain.chain_records import RECORD_SPECS, RECORD_TYPES, ChainRecords
from medbench.medchain.consortium import Deployment, HospitalClient, make_consortium
from medbench.medchain.node import MedicalChainNode, NodeSetup
from medbench.medchain.validation import (
    AccessValidator,
    draft_transaction,
    request_transaction,
)

__all__ = [
    "RECORD_SPECS",
    "RECORD_TYPES",
    "AccessValidator",
    "BlockSignature",
    "ChainRecords",
    "Deployment",
    "HospitalClient",
    "LedgerBlockFormat",
    "MedicalChainNode",
    "NodeSetup",
    "SignatureWanted",
    "decode_side_message",
    "draft_transaction",
    "make_consortium",
    "primary_for",
    "request_transaction",
]
