"""``medbench.consensus.pbft.wire.decode_message``: PBFT messages from a peer.

Allowed: a message, or :class:`~medbench.consensus.pbft.messages.MessageError`. Checked on a
message: it re-encodes to exactly the input (the module's one-encoding promise), decodes again to
an equal message, and its digest and ``repr`` (what traces print) work.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.consensus.pbft.messages import MessageError
from medbench.consensus.pbft.wire import decode_message


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        msg = decode_message(data)
        expect(msg.encode() == data, "decoded message does not re-encode to its input")
        expect(decode_message(msg.encode()) == msg, "re-decoding gives another message")
        expect(len(msg.digest()) == 32, "digest is not 32 bytes")
        repr(msg)

    return one_input


def seeds() -> list[bytes]:
    return [m.encode() for s in ("modeled", "macs") for m in samples.pbft_messages(s)]


HARNESS = Harness(
    name="pbft_wire",
    summary="consensus.pbft.wire.decode_message (PBFT wire messages)",
    allowed=(MessageError,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
