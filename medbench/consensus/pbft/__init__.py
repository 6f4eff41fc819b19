"""PBFT (Castro & Liskov, OSDI 1999 / TOCS 2002) as Medical Chain uses it (docs/medical-chain.md
§1.1, §1.5).

Sans-IO: :class:`Replica` and :class:`Client` implement :class:`medbench.node.Node`; drivers feed
them messages and time. Modules: :mod:`.replica` (normal case, batching, execution),
:mod:`.viewchange`, :mod:`.statetransfer`, :mod:`.checkpoint`, :mod:`.log`, :mod:`.recovery`,
:mod:`.client`, :mod:`.messages` and :mod:`.wire` (the wire format), :mod:`.persist` (stored
records), :mod:`.blocker` (the rotating blocker's chain of blocks), :mod:`.byzantine` (faulty
replicas and the crash wrapper, for the adversary) and :mod:`medbench.consensus.auth`
(signatures, MAC authenticators, modeled tags).
"""

from medbench.consensus.auth import Keyring, Scheme, make_keyrings
from medbench.consensus.pbft.blocker import (
    BlockFormat,
    BlockMode,
    Chain,
    DefaultBlockFormat,
)
from medbench.consensus.pbft.client import Client, Completion
from medbench.consensus.pbft.log import ExecutedBatch, StableRecord, ViewRecord
from medbench.consensus.pbft.messages import (
    LOCAL_KINDS,
    Kind,
    MessageError,
    Request,
    Submit,
)
from medbench.consensus.pbft.persist import decode_record, encode_record
from medbench.consensus.pbft.replica import Config, Replica, accept_all, acknowledge
from medbench.consensus.pbft.wire import decode_message
from medbench.rotation import blocker_for

__all__ = [
    "LOCAL_KINDS",
    "BlockFormat",
    "BlockMode",
    "Chain",
    "Client",
    "Completion",
    "Config",
    "DefaultBlockFormat",
    "ExecutedBatch",
    "Keyring",
    "Kind",
    "MessageError",
    "Replica",
    "Request",
    "Scheme",
    "StableRecord",
    "Submit",
    "ViewRecord",
    "accept_all",
    "acknowledge",
    "blocker_for",
    "decode_message",
    "decode_record",
    "encode_record",
    "make_keyrings",
]
