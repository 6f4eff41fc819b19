"""``medbench.ledger.Transaction.from_wire``: a transaction body from a peer or a node's store.

Allowed: a transaction, or :class:`~medbench.ledger.errors.LedgerDecodeError`. Checked on a
transaction: ``to_wire`` gives back exactly the input, and signature verification (under every
scheme name, known or not) answers without raising.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import SignerPolicy, Transaction, verify_transaction

_SCHEMES = ("ed25519", "ecdsa-p256", "rsa-pss-3072", "no-such-scheme")


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        tx = Transaction.from_wire(data)
        expect(tx.to_wire() == data, "transaction does not re-encode to its input")
        expect(Transaction.from_fields(tx.to_fields()) == tx, "fields round trip differs")
        scheme = _SCHEMES[len(data) % len(_SCHEMES)]
        policy = SignerPolicy({tx.author: tx.public_keys[-1]})
        verify_transaction(tx, scheme, policy)
        repr(tx)

    return one_input


def seeds() -> list[bytes]:
    return [t.to_wire() for t in samples.transactions()]


HARNESS = Harness(
    name="ledger_tx",
    summary="ledger.Transaction.from_wire (transaction bodies)",
    allowed=(LedgerDecodeError,),
    setup=setup,
    seeds=seeds,
)
