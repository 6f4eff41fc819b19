"""The medical-records layer of Medical Chain (docs/medical-chain.md §1.3, §1.7).

* :mod:`.entity` — registration of patients, staff, institutions, nodes; private fields sealed;
* :mod:`.fhir` — FHIR R4B validation at the client boundary, canonical JSON bytes;
* :mod:`.attachments` — images and scans by SHA-256 in a blob store;
* :mod:`.visit` — visit records (FHIR resources + attachments) as transaction content;
* :mod:`.writer` — who signs a record (staff + institution, or one signer);
* :mod:`.association` — stealth entity–record associations only the patient can find
  (and the paper's clear-owner form as a baseline);
* :mod:`.capability` — view capabilities a patient seals to a grantee in a grant;
* :mod:`.sealed` — grants under pseudonyms, queries and audits with the patient sealed to the
  consortium access key (the validators' key);
* :mod:`.crud` — add, update (new version + link), delete (tombstone), query, legacy import;
* :mod:`.index` — the current view and history as a pure function of the chain;
* :mod:`.book` — a patient's or grantee's record book.
"""

from __future__ import annotations

from medbench.records.association import (
    FoundAssociation,
    StealthAssociation,
    associate,
    open_with_secret,
    paper_association,
    paper_owner,
    scan,
    scan_one,
    scan_paper,
    stealth_association,
)
from medbench.records.attachments import (
    Attachment,
    BlobStore,
    MemoryBlobStore,
    attach,
    fetch,
)
from medbench.records.book import RecordBook
from medbench.records.capability import ViewCapability, grant_view, read_view, resolve
from medbench.records.crud import (
    QueryCondition,
    UpdateLink,
    add,
    delete,
    legacy_import,
    query,
    tombstone_target,
    update,
)
from medbench.records.entity import (
    PrivateProfile,
    PublicProfile,
    Registration,
    Role,
    affiliation_change_refused,
    affiliations,
    read_registration,
    register,
)
from medbench.records.errors import (
    AttachmentError,
    InvalidFhirError,
    RecordDecodeError,
    RecordError,
    RecordUsageError,
)
from medbench.records.fhir import (
    PSEUDONYMOUS_SUBJECT,
    SUPPORTED_TYPES,
    FhirResource,
    canonical_json,
    validate_resource,
)
from medbench.records.index import (
    Reason,
    RecordIndex,
    Rejection,
    Status,
    Version,
    same_writers,
)
from medbench.records.sealed import (
    SealedGrant,
    audit_record,
    is_sealed_grant,
    open_audit,
    open_sealed_grant,
    open_sealed_query,
    read_sealed_view,
    sealed_grant_view,
    sealed_query,
)
from medbench.records.visit import VisitRecord, attachments_of, build_visit
from medbench.records.writer import Writer

__all__ = [
    "PSEUDONYMOUS_SUBJECT",
    "SUPPORTED_TYPES",
    "Attachment",
    "AttachmentError",
    "BlobStore",
    "FhirResource",
    "FoundAssociation",
    "InvalidFhirError",
    "MemoryBlobStore",
    "PrivateProfile",
    "PublicProfile",
    "QueryCondition",
    "Reason",
    "RecordBook",
    "RecordDecodeError",
    "RecordError",
    "RecordIndex",
    "RecordUsageError",
    "Registration",
    "Rejection",
    "Role",
    "SealedGrant",
    "Status",
    "StealthAssociation",
    "UpdateLink",
    "Version",
    "ViewCapability",
    "VisitRecord",
    "Writer",
    "add",
    "affiliation_change_refused",
    "affiliations",
    "associate",
    "attach",
    "attachments_of",
    "audit_record",
    "build_visit",
    "canonical_json",
    "delete",
    "fetch",
    "grant_view",
    "is_sealed_grant",
    "legacy_import",
    "open_audit",
    "open_sealed_grant",
    "open_sealed_query",
    "open_with_secret",
    "paper_association",
    "paper_owner",
    "query",
    "read_registration",
    "read_sealed_view",
    "read_view",
    "register",
    "resolve",
    "same_writers",
    "scan",
    "scan_one",
    "scan_paper",
    "sealed_grant_view",
    "sealed_query",
    "stealth_association",
    "tombstone_target",
    "update",
    "validate_resource",
]
