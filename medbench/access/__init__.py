"""Medical Chain access control (docs/medical-chain.md §1.5-§1.6): requests, RBAC, grants,
validator, clients.

Modules: :mod:`~medbench.access.request` (the signed request and its ledger adapter),
:mod:`~medbench.access.rbac` (the policy document and its evaluator, delegation of authority),
:mod:`~medbench.access.grants` (grants/revocations and their pure evaluation),
:mod:`~medbench.access.state` (in-memory chain state and record history),
:mod:`~medbench.access.validator` (the rules a replica runs before accepting a request),
:mod:`~medbench.access.clients` (patient / doctor / query / admin / authority clients) and
:mod:`~medbench.access.name_key` (the central-server baseline's name-keyed AES, to be attacked).
"""

from medbench.access.decision import Allowed, Decision, Reason, Refused
from medbench.access.grants import GrantBook, GrantRecord, GrantStatus, RevokeRecord, evaluate
from medbench.access.rbac import (
    AccessVerdict,
    Policy,
    PolicyError,
    decide_data_access,
    default_policy_document,
    policy_draft,
)
from medbench.access.request import (
    ALL,
    AccessRequest,
    Operation,
    RequestError,
    build_request,
    from_transaction_fields,
    transaction_id,
)
from medbench.access.state import ChainState, RecordStatus, RecordStore, RecordVersion
from medbench.access.validator import Rule, Validator

__all__ = [
    "ALL",
    "AccessRequest",
    "AccessVerdict",
    "Allowed",
    "ChainState",
    "Decision",
    "GrantBook",
    "GrantRecord",
    "GrantStatus",
    "Operation",
    "Policy",
    "PolicyError",
    "Reason",
    "RecordStatus",
    "RecordStore",
    "RecordVersion",
    "Refused",
    "RequestError",
    "RevokeRecord",
    "Rule",
    "Validator",
    "build_request",
    "decide_data_access",
    "default_policy_document",
    "evaluate",
    "from_transaction_fields",
    "policy_draft",
    "transaction_id",
]
