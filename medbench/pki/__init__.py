"""Medical Chain's PKI (docs/medical-chain.md §1.6): CAs, certificates, chain validation, CRLs, the
KMC.

Modules: :mod:`~medbench.pki.subject` (what a certificate says), :mod:`~medbench.pki.ca`
(root / national / provincial / city CAs, CRL signing), :mod:`~medbench.pki.certpath` (validation as
of a consensus time, revocation registry), :mod:`~medbench.pki.kmc` (key generation, escrow,
recovery, emergency release), :mod:`~medbench.pki.rekey` (revoke + re-key + re-seal) and
:mod:`~medbench.pki.drafts` (records to be submitted as transactions).
"""

from medbench.pki.ca import (
    CA_ROLE,
    CertificateAuthority,
    IssuanceError,
    crl_draft,
    der,
    new_signing_key,
    raw_public,
)
from medbench.pki.certpath import (
    CertificateError,
    CertReason,
    RevocationRegistry,
    VerifiedIdentity,
    revoked_since,
    verify_chain,
)
from medbench.pki.drafts import RequestDraft, TxDraft, certificate_draft
from medbench.pki.kmc import IdentityAttestation, KeyBundle, KeyManagementCenter, KmcError
from medbench.pki.rekey import (
    Rotation,
    reseal,
    reseal_update_drafts,
    rotate_subject,
    succession_draft,
)
from medbench.pki.subject import SubjectInfo, hash_identifier, region_within

__all__ = [
    "CA_ROLE",
    "CertReason",
    "CertificateAuthority",
    "CertificateError",
    "IdentityAttestation",
    "IssuanceError",
    "KeyBundle",
    "KeyManagementCenter",
    "KmcError",
    "RequestDraft",
    "RevocationRegistry",
    "Rotation",
    "SubjectInfo",
    "TxDraft",
    "VerifiedIdentity",
    "certificate_draft",
    "crl_draft",
    "der",
    "hash_identifier",
    "new_signing_key",
    "raw_public",
    "region_within",
    "reseal",
    "reseal_update_drafts",
    "revoked_since",
    "rotate_subject",
    "succession_draft",
    "verify_chain",
]
