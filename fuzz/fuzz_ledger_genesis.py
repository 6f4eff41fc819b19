"""``medbench.ledger.Genesis.from_wire``: the genesis block that names the consortium.

Allowed: a genesis, or :class:`~medbench.ledger.errors.LedgerDecodeError`. Checked on a genesis:
``to_wire`` gives back exactly the input and its ID is the hash of those bytes.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.crypto.keys import Scheme
from medbench.hashing import sha256
from medbench.ledger.block import Genesis
from medbench.ledger.errors import LedgerDecodeError


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        g = Genesis.from_wire(data)
        expect(g.to_wire() == data, "genesis does not re-encode to its input")
        expect(g.id == sha256(data), "genesis ID is not the hash of its bytes")
        expect(g.height == 0, "genesis height")

    return one_input


def seeds() -> list[bytes]:
    g = samples.genesis()
    p256 = samples.signing_keys("ecdsa-p256", 2)
    other = Genesis("x", Scheme.ECDSA_P256, tuple(k.public for k in p256), b"", 0)
    return [g.to_wire(), other.to_wire()]


HARNESS = Harness(
    name="ledger_genesis",
    summary="ledger.Genesis.from_wire (the consortium's genesis)",
    allowed=(LedgerDecodeError,),
    setup=setup,
    seeds=seeds,
)
