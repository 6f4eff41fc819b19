"""Transaction drafts: records this package produces for the caller to sign and submit.

Theory of operation
-------------------
Several things the identity layer produces must themselves end up on chain as transactions
(docs/medical-chain.md §1.3, §1.6): a published CRL, a blacklist entry after a refused staff
attempt, the audit record of every query, the record of an emergency key release by the KMC.
medbench.ledger owns the real transaction type (kinds
add/delete/update/query/grant/revoke/associate/register; ID =
sha256 of the canonical (kind, content, timestamp_us, public keys); one signature per key), so this
module only builds the *unsigned* part: ``kind``, ``content`` (a canonical-codec dict) and
``timestamp_us``. The caller (a replica, a CA, the KMC operator) adds its public key and signature
with the ledger's builder. ``content["type"]`` says which record it is, because several records
share one ledger kind (a CRL and a grant revocation are both ``revoke``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medbench import codec

LEDGER_KINDS = frozenset(
    {"add", "delete", "update", "query", "grant", "revoke", "associate", "register"}
)


@dataclass(frozen=True, slots=True)
class TxDraft:
    """An unsigned transaction: ledger ``kind``, canonical ``content`` and consensus time."""

    kind: str
    content: dict[str, Any]
    timestamp_us: int

    def __post_init__(self) -> None:
        if self.kind not in LEDGER_KINDS:
            raise ValueError(f"unknown ledger kind {self.kind!r}")
        if "type" not in self.content:
            raise ValueError("draft content needs a 'type' field")
        if type(self.timestamp_us) is not int or self.timestamp_us < 0:
            raise ValueError("timestamp_us must be a non-negative int")
        codec.encode(self.content)  # must be canonical-encodable; raises EncodeError otherwise

    @property
    def type(self) -> str:
        """The record type inside the ledger kind (``"crl"``, ``"blacklist"``, ``"audit"``...)."""
        return str(self.content["type"])

    def __repr__(self) -> str:
        return f"TxDraft({self.kind}/{self.type} t={self.timestamp_us})"

    def encode(self) -> bytes:
        """Canonical bytes of ``[kind, content, timestamp_us]``."""
        return codec.encode([self.kind, self.content, self.timestamp_us])


@dataclass(frozen=True, slots=True)
class RequestDraft:
    """An unsigned *access request* transaction: ``content`` is a request's canonical dict.

    Built where a request must be produced without the access layer's client (the key rotation
    re-seals records on the subject's behalf); the subject signs it like any transaction. It
    has no ``type``: :func:`medbench.access.request.from_transaction_fields` reads it.
    """

    kind: str
    content: dict[str, Any]
    timestamp_us: int

    def __post_init__(self) -> None:
        if self.kind not in LEDGER_KINDS:
            raise ValueError(f"unknown ledger kind {self.kind!r}")
        if type(self.timestamp_us) is not int or self.timestamp_us < 0:
            raise ValueError("timestamp_us must be a non-negative int")
        codec.encode(self.content)

    def __repr__(self) -> str:
        return f"RequestDraft({self.kind}/{self.content.get('op')} t={self.timestamp_us})"


def certificate_draft(chain: tuple[bytes, ...], at_us: int) -> TxDraft:
    """The ``register`` transaction that publishes a subject's certificate chain (leaf first)."""
    return TxDraft("register", {"type": "certificate", "chain": list(chain)}, at_us)
