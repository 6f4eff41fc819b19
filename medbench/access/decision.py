"""A validator's decision on one request: :class:`Allowed` or :class:`Refused` with a typed
:class:`Reason` (docs/medical-chain.md §1.5: refused attempts are answered and, for staff,
blacklisted).

Their own module so that the chain state (:mod:`medbench.access.state`), which applies allowed
requests, and the validator (:mod:`medbench.access.validator`), which decides, both depend on it
and not on each other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from medbench.access.rbac import AccessVerdict
from medbench.pki.drafts import TxDraft


class Reason(enum.Enum):
    """Why a request was refused (counted by the replica, visible to the client)."""

    MALFORMED = "malformed"
    SEALED_ENVELOPE = "sealed-envelope"
    PSEUDONYM_INVALID = "pseudonym-invalid"
    REPLAYED = "replayed"
    MISSING_SIGNATURE = "missing-signature"
    IDENTITY_MISMATCH = "identity-mismatch"
    CERT_INVALID = "cert-invalid"
    CERT_EXPIRED = "cert-expired"
    CERT_REVOKED = "cert-revoked"
    BAD_SIGNATURE = "bad-signature"
    MISSING_COUNTERSIGNATURE = "missing-countersignature"
    BLACKLISTED = "blacklisted"
    UNKNOWN_ROLE = "unknown-role"
    UNKNOWN_SUBJECT = "unknown-subject"
    UNKNOWN_RECORD = "unknown-record"
    RECORD_HIDDEN = "record-hidden"
    INVALID_BODY = "invalid-body"
    ROLE_NOT_PERMITTED = "role-not-permitted"
    NO_GRANT = "no-grant"
    GRANT_EXPIRED = "grant-expired"
    GRANT_REVOKED = "grant-revoked"
    GRANT_NOT_YET_VALID = "grant-not-yet-valid"
    GRANT_NOT_PERMITTED = "grant-not-permitted"
    NOT_GRANTOR = "not-grantor"
    NOT_AUTHORITY = "not-authority"
    OUT_OF_SCOPE = "out-of-scope"
    DELEGATION_NOT_PERMITTED = "delegation-not-permitted"
    NOT_PERMITTED = "not-permitted"


@dataclass(frozen=True, slots=True)
class Allowed:
    """The request may enter consensus; ``audit`` must be submitted alongside if set."""

    request_id: bytes
    role: str
    region: str
    institution: str
    grantor_kind: str | None = None
    verdict: AccessVerdict | None = None
    audit: TxDraft | None = None

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Allowed({self.request_id[:4].hex()} {self.role} {self.verdict})"


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is refused for ``reason``; submit ``blacklist`` / ``audit`` if set."""

    reason: Reason
    detail: str = ""
    request_id: bytes = b""
    blacklist: TxDraft | None = None
    audit: TxDraft | None = None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"Refused({self.reason.value} {self.request_id[:4].hex()} {self.detail!r})"

    @property
    def drafts(self) -> list[TxDraft]:
        """The records to submit because of this refusal."""
        return [d for d in (self.blacklist, self.audit) if d is not None]


Decision = Allowed | Refused
