"""Typed errors of :mod:`medbench.records`.

Caller misuse (building a record from arguments our own code got wrong) raises
:class:`RecordUsageError`; content that fails a check — invalid FHIR at the client boundary, a
transaction body from the chain that is not a well-formed record, an attachment whose bytes do not
match their hash — raises the matching subclass of :class:`RecordError`. Nothing here is raised
for a transaction that is merely *not ours* (an association sealed to someone else): scanning
skips those.
"""

from __future__ import annotations

from collections.abc import Sequence


class RecordError(Exception):
    """Base of every error this package raises."""


class RecordUsageError(RecordError, ValueError):
    """Local misuse: bad arguments from our own code, not bytes from a peer."""


class InvalidFhirError(RecordError):
    """A resource is not valid FHIR R4B of a supported type; no transaction was built.

    :attr:`resource_type` is the claimed type (``None`` if absent) and :attr:`errors` lists one
    short human-readable reason per failed check (field path and message).
    """

    def __init__(self, resource_type: str | None, errors: Sequence[str]) -> None:
        """Carry the claimed resource type and the validation messages."""
        self.resource_type = resource_type
        self.errors = tuple(errors)
        detail = "; ".join(self.errors) or "invalid"
        super().__init__(f"invalid FHIR {resource_type or 'resource'}: {detail}")


class RecordDecodeError(RecordError):
    """A transaction's content is not a well-formed record of the kind it claims to be."""


class AttachmentError(RecordError):
    """An attachment's bytes are missing from the blob store or do not match hash and size."""
