"""``medbench.medchain.block_format.decode_side_message``: a block signature, or a request for
one, from a peer node.

Allowed: a :class:`BlockSignature` / :class:`SignatureWanted`, or ``ValueError`` (the function's
documented error). Checked on a message: it re-encodes to exactly the input.
"""

from __future__ import annotations

from fuzz.common import Harness, OneInput, expect
from medbench.medchain.block_format import BlockSignature, SignatureWanted, decode_side_message


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        msg = decode_side_message(data)
        expect(msg.encode() == data, "side message does not re-encode to its input")
        expect(decode_side_message(msg.encode()) == msg, "re-decoding gives another message")

    return one_input


def seeds() -> list[bytes]:
    return [
        BlockSignature(bytes(range(32)), b"\x01" * 64).encode(),
        BlockSignature(bytes(32), b"s").encode(),
        SignatureWanted(bytes(range(32))).encode(),
    ]


HARNESS = Harness(
    name="medchain_side",
    summary="medchain.block_format.decode_side_message (block signatures)",
    allowed=(ValueError,),
    setup=setup,
    seeds=seeds,
    max_len=2048,
)
