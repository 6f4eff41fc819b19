"""A reader's record book: the records linked to a patient (or her grantee), resolved.

Theory of operation
-------------------
The patient's client (docs/medical-chain.md §1.7 step 2) finds her visit records through her
association transactions and shows the current version of each; on request it shows the full
history, superseded and deleted versions included. :class:`RecordBook` joins the two pure functions
of the chain that do this: the associations the reader can open — by scanning with her private key
(:func:`~medbench.records.association.scan`) or, for a grantee, through a view capability
(:mod:`medbench.records.capability`) — and the :class:`~medbench.records.index.RecordIndex`.
An association may name any version of a record; the book follows it to its lineage, so an update
needs no new association, and two associations of one record count once. An association counts
only if one of its signers also signed the version it names: anyone may *write* an association to
P (her encryption key is public), but a stranger cannot thereby slip someone else's record into
her book.
"""

from __future__ import annotations

from collections.abc import Sequence

from medbench.crypto.identity import Identity
from medbench.ledger.transaction import Transaction
from medbench.records.association import FoundAssociation, scan
from medbench.records.capability import read_view, resolve
from medbench.records.crud import QueryCondition
from medbench.records.index import RecordIndex, Version
from medbench.records.sealed import is_sealed_grant, read_sealed_view


class RecordBook:
    """The records a reader can link to a patient, and their current view and history."""

    __slots__ = ("associations", "index")

    def __init__(self, index: RecordIndex, associations: Sequence[FoundAssociation]) -> None:
        """Join ``associations`` the reader opened with the ``index`` of the same chain."""
        self.index = index
        self.associations = tuple(associations)

    @classmethod
    def for_patient(cls, patient: Identity, transactions: Sequence[Transaction]) -> RecordBook:
        """The patient's own book: scan every association with her private key."""
        return cls(RecordIndex.from_transactions(transactions), list(scan(patient, transactions)))

    @classmethod
    def for_grantee(
        cls, grantee: Identity, grant: Transaction, transactions: Sequence[Transaction]
    ) -> RecordBook:
        """A grantee's book from one view grant, clear or sealed (raises
        :class:`~medbench.records.errors.RecordDecodeError` if the grant is not for them)."""
        sealed = is_sealed_grant(grant)
        capability = read_sealed_view(grantee, grant) if sealed else read_view(grantee, grant)
        by_id = {tx.id: tx for tx in transactions}
        return cls(RecordIndex.from_transactions(transactions), resolve(capability, by_id))

    def lineages(self) -> list[bytes]:
        """Lineage IDs of the linked records (live or deleted), in association order."""
        out: list[bytes] = []
        for a in self.associations:
            version = self.index.version(a.record_id)
            if version is None or set(a.writers).isdisjoint(version.tx.public_keys):
                continue
            if version.lineage not in out:
                out.append(version.lineage)
        return out

    def current(self) -> list[Version]:
        """The current version of every linked record that is not deleted."""
        heads = (self.index.head(root) for root in self.lineages())
        return [v for v in heads if v is not None]

    def history(self) -> list[list[Version]]:
        """Every linked record's full lineage, deleted and superseded versions included."""
        return [self.index.history(root) for root in self.lineages()]

    def answer(self, condition: QueryCondition) -> list[Version]:
        """A query over the linked records only (``record_ids``, if named, narrow it further)."""
        roots = self.lineages()
        if condition.record_ids:
            named = {self.index.lineage_of(r) for r in condition.record_ids}
            roots = [r for r in roots if r in named]
        return self.index.answer_lineages(roots, condition)
