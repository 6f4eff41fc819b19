"""PBFT (Castro & Liskov, OSDI 1999 / TOCS 2002) as Medical Chain uses it (PAPER.md §1.1, §1.5).

Sans-IO: :class:`Replica` and :class:`Client` implement :class:`medbench.node.Node`; drivers feed
them messages and time. See :mod:`.replica` for the protocol, :mod:`.messages` for the wire
format, :mod:`.auth` for the authentication schemes and :mod:`.blocks` for block production.
"""

from medbench.consensus.pbft.auth import Keyring, Scheme, make_keyrings
from medbench.consensus.pbft.blocks import (
    BlockFormat,
    BlockMode,
    Chain,
    DefaultBlockFormat,
    blocker_for,
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
from medbench.consensus.pbft.replica import Config, Replica, accept_all, acknowledge
from medbench.consensus.pbft.wire import decode_message

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
    "make_keyrings",
]
