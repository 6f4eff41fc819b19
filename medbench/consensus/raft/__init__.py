"""Raft (Ongaro & Ousterhout, USENIX ATC 2014, extended version), sans-IO and crash-fault-tolerant.

:class:`Replica` and :class:`Client` implement :class:`medbench.node.Node`. Modules:
:mod:`.replica` (roles, elections, replication, commit, snapshots, clients), :mod:`.election`
(seeded timeouts, the vote tally), :mod:`.log` (the log and its matching rules),
:mod:`.statemachine` (exactly-once execution, digest, snapshots), :mod:`.recovery`,
:mod:`.client`, :mod:`.messages` and :mod:`.wire` (the wire format), :mod:`.persist` (stored
records). Raft tolerates crashes, not lies: nothing is authenticated.
"""

from medbench.consensus.raft.client import Client, Completion
from medbench.consensus.raft.messages import (
    EMPTY_SNAPSHOT,
    LOCAL_KINDS,
    NO_NODE,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    Kind,
    MessageError,
    Reply,
    Request,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    Submit,
    Timeout,
)
from medbench.consensus.raft.persist import HardState, Truncate, decode_record, encode_record
from medbench.consensus.raft.replica import AppliedEntry, Config, Replica, Role
from medbench.consensus.raft.statemachine import StateMachine, acknowledge
from medbench.consensus.raft.wire import decode_message

__all__ = [
    "EMPTY_SNAPSHOT",
    "LOCAL_KINDS",
    "NO_NODE",
    "AppendEntries",
    "AppendEntriesResponse",
    "AppliedEntry",
    "Client",
    "Completion",
    "Config",
    "Entry",
    "HardState",
    "InstallSnapshot",
    "InstallSnapshotResponse",
    "Kind",
    "MessageError",
    "Replica",
    "Reply",
    "Request",
    "RequestVote",
    "RequestVoteResponse",
    "Role",
    "Snapshot",
    "StateMachine",
    "Submit",
    "Timeout",
    "Truncate",
    "acknowledge",
    "decode_message",
    "decode_record",
    "encode_record",
]
