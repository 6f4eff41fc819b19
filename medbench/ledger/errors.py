"""Typed errors of :mod:`medbench.ledger`, and the outcome of a signature check they carry."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from medbench.codec import DecodeError


class Problem(StrEnum):
    """Why a signature check failed."""

    MISSING = "missing"
    """The key is listed but its signature slot is empty."""
    WRONG_LENGTH = "wrong-length"
    """The signature has the wrong length for the scheme."""
    INVALID = "invalid"
    """The signature does not verify over the transaction ID."""
    UNKNOWN_SCHEME = "unknown-scheme"
    """The consortium's scheme name is not implemented here."""
    SIGNER_NOT_LISTED = "signer-not-listed"
    """A signer the :class:`SignerPolicy` requires (e.g. the institution) is not listed at all."""


@dataclass(frozen=True, slots=True)
class SignatureProblem:
    """One failed signature requirement: ``index`` into ``public_keys`` (-1 if not listed)."""

    index: int
    public_key: bytes
    problem: Problem

    def __str__(self) -> str:
        return f"key #{self.index} ({self.public_key[:4].hex()}): {self.problem}"


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of :func:`verify_transaction`: ``ok`` when no problem was found."""

    tx_id: bytes
    problems: tuple[SignatureProblem, ...] = ()

    @property
    def ok(self) -> bool:
        """True if every required signature is present and valid."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`SignatureError` if there is any problem."""
        if self.problems:
            raise SignatureError(self)

    def __str__(self) -> str:
        if self.ok:
            return f"transaction {self.tx_id[:4].hex()}: signatures valid"
        detail = "; ".join(str(p) for p in self.problems)
        return f"transaction {self.tx_id[:4].hex()}: {detail}"


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
        """Carry the failed :class:`Verification`."""
        self.verification = verification
        super().__init__(str(verification))
