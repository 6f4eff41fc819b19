"""Chained HotStuff (Yin, Malkhi, Reiter, Gueta, Abraham, PODC 2019), sans-IO.

:class:`Replica` and :class:`Client` implement :class:`medbench.node.Node`. Modules:
:mod:`.replica` (proposals, votes, commit, execution), :mod:`.safety` (the voting rules and the
lock), :mod:`.pacemaker` (views, timeouts, NEW-VIEW), :mod:`.blocktree` (the block tree and the
three-chain commit rule), :mod:`.certificates` (QC and timeout-certificate checks),
:mod:`.sync` (fetching missing blocks), :mod:`.mempool`, :mod:`.execution`, :mod:`.recovery`,
:mod:`.client`, :mod:`.messages` and
:mod:`.wire` (the wire format), :mod:`.persist` (stored records).
"""

from medbench.consensus.auth import Keyring, Scheme, make_keyrings
from medbench.consensus.hotstuff.certificates import VerdictMemo
from medbench.consensus.hotstuff.client import Client, Completion
from medbench.consensus.hotstuff.config import Config
from medbench.consensus.hotstuff.execution import ExecutedBlock, acknowledge
from medbench.consensus.hotstuff.messages import (
    GENESIS,
    GENESIS_QC,
    LOCAL_KINDS,
    QC,
    Block,
    Kind,
    MessageError,
    NewView,
    Proposal,
    Reply,
    Request,
    Submit,
    SyncRequest,
    SyncResponse,
    Timeout,
    Vote,
)
from medbench.consensus.hotstuff.persist import CommitRecord, decode_record, encode_record
from medbench.consensus.hotstuff.replica import Replica
from medbench.consensus.hotstuff.safety import LockRecord, SafetyRules
from medbench.consensus.hotstuff.wire import decode_message

__all__ = [
    "GENESIS",
    "GENESIS_QC",
    "LOCAL_KINDS",
    "QC",
    "Block",
    "Client",
    "CommitRecord",
    "Completion",
    "Config",
    "ExecutedBlock",
    "Keyring",
    "Kind",
    "LockRecord",
    "MessageError",
    "NewView",
    "Proposal",
    "Replica",
    "Reply",
    "Request",
    "SafetyRules",
    "Scheme",
    "Submit",
    "SyncRequest",
    "SyncResponse",
    "Timeout",
    "VerdictMemo",
    "Vote",
    "acknowledge",
    "decode_message",
    "decode_record",
    "encode_record",
    "make_keyrings",
]
