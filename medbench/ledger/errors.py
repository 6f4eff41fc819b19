"""Typed errors of :mod:`medbench.ledger`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medbench.codec import DecodeError

if TYPE_CHECKING:
    from medbench.ledger.transaction import Verification


class LedgerError(Exception):
    """Base of the errors this package raises."""


class LedgerDecodeError(DecodeError, LedgerError):
    """Bytes from outside are not a well-formed transaction, block or genesis.

    A subclass of :class:`medbench.codec.DecodeError`, so code that catches the codec's error for
    any incoming message also catches this one.
    """


class SignatureError(LedgerError):
    """A transaction's signatures do not verify; :attr:`verification` says which and why."""

    def __init__(self, verification: Verification) -> None:
        """Carry the failed :class:`~medbench.ledger.transaction.Verification`."""
        self.verification = verification
        super().__init__(str(verification))
