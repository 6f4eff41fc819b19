"""``medbench.ledger.Block.from_wire``: a block from a peer, an auditor or a node's store.

Allowed: a block, or :class:`~medbench.ledger.errors.LedgerDecodeError`. Checked on a block:
``to_wire`` gives back exactly the input; the Merkle-root and signature checks and an inclusion
proof of its first ID (verified against the header) answer without raising.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.ledger.block import Block, BlockHeader, verify_inclusion
from medbench.ledger.errors import LedgerDecodeError

_SCHEMES = ("ed25519", "ecdsa-p256", "rsa-pss-3072", "no-such-scheme")


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        block = Block.from_wire(data)
        expect(block.to_wire() == data, "block does not re-encode to its input")
        expect(BlockHeader.from_fields(block.header.to_fields()) == block.header, "header trip")
        root_ok = block.root_ok()
        block.signature_ok(_SCHEMES[len(data) % len(_SCHEMES)])
        if block.tx_ids:
            proof = block.inclusion_proof(0)
            ok = verify_inclusion(block.header, block.tx_ids[0], 0, len(block.tx_ids), proof)
            expect(ok == root_ok, "inclusion proof disagrees with the Merkle root check")
        repr(block)

    return one_input


def seeds() -> list[bytes]:
    return [b.to_wire() for b in samples.ledger_blocks()]


HARNESS = Harness(
    name="ledger_block",
    summary="ledger.Block.from_wire (blocks of transaction IDs)",
    allowed=(LedgerDecodeError,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
