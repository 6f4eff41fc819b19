"""Who writes a record: an author and, for staff of an institution, the institution.

docs/medical-chain.md §1.2: a medical-record transaction by staff carries the staff member's key and
the institution's key, each with a signature; an independent licensed worker, a patient, or an
institution importing its legacy records signs alone. :class:`Writer` holds the signing keys and
lists them in the order :func:`~medbench.ledger.record_signers` expects (author first), so that
every record built here passes the ledger's :class:`~medbench.ledger.SignerPolicy`.
"""

from __future__ import annotations

from dataclasses import dataclass

from medbench.crypto.keys import SigningKey
from medbench.ledger.transaction import Kind, Transaction, record_signers
from medbench.records.errors import RecordUsageError


@dataclass(frozen=True, slots=True)
class Writer:
    """An author's signing key and, for affiliated staff, the institution's countersigning key."""

    author: SigningKey
    institution: SigningKey | None = None

    def __post_init__(self) -> None:
        if self.institution is not None and self.institution.public == self.author.public:
            raise RecordUsageError("an institution does not countersign itself")

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The public keys a record by this writer lists (author first)."""
        inst = None if self.institution is None else self.institution.public
        return record_signers(self.author.public, inst)

    def sign(self, kind: Kind, content: bytes, timestamp_us: int) -> Transaction:
        """A transaction of ``kind`` listing and signed by every key of this writer."""
        signers = [self.author] if self.institution is None else [self.author, self.institution]
        return Transaction.create(kind, content, timestamp_us, signers)
