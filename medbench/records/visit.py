"""Visit records: FHIR R4B resources plus hashed attachments, as canonical transaction content.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 2: a visit record holds time, place and findings; images stay off
chain and only their hash is recorded. A :class:`VisitRecord` is one or more validated FHIR
resources (:mod:`medbench.records.fhir`: an Encounter for time and place, Conditions, Observations,
MedicationRequests, DiagnosticReports) and zero or more :class:`~.attachments.Attachment`
references. Its content bytes are ``codec.encode({"fhir": [canonical JSON, ...], "images":
[attachment, ...]})`` — the JSON of each resource is itself canonical, so the transaction ID is a
function of the clinical content alone. The patient is *not* in the record: the link lives in a
sealed association (§1.3 item 3).

:func:`build_visit` is the client boundary: it validates every resource and raises
:class:`InvalidFhirError` before any transaction is built. :meth:`VisitRecord.decode` reads
content from the chain, re-validates it and raises only :class:`RecordDecodeError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.records.attachments import Attachment
from medbench.records.errors import InvalidFhirError, RecordDecodeError, RecordUsageError
from medbench.records.fhir import FhirResource, validate_resource

MAX_RESOURCES = 64
MAX_ATTACHMENTS = 64


@dataclass(frozen=True, slots=True)
class VisitRecord:
    """Validated FHIR resources and attachment references of one visit."""

    resources: tuple[FhirResource, ...]
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.resources) <= MAX_RESOURCES:
            raise RecordUsageError(f"a visit record holds 1..{MAX_RESOURCES} resources")
        if len(self.attachments) > MAX_ATTACHMENTS:
            raise RecordUsageError(f"a visit record holds at most {MAX_ATTACHMENTS} attachments")

    def encode(self) -> bytes:
        """The canonical content bytes of the ``add`` transaction."""
        return codec.encode(
            {
                "fhir": [r.canonical for r in self.resources],
                "images": [a.to_fields() for a in self.attachments],
            }
        )

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        """The resources of one type, as JSON data."""
        return [r.as_dict() for r in self.resources if r.resource_type == resource_type]

    @classmethod
    def decode(cls, content: bytes) -> VisitRecord:
        """Parse and re-validate content from the chain; raises only :class:`RecordDecodeError`."""
        try:
            fields = codec.decode(content)
        except codec.DecodeError as exc:
            raise RecordDecodeError(f"malformed visit record: {exc}") from None
        if not isinstance(fields, dict) or set(fields) != {"fhir", "images"}:
            raise RecordDecodeError("a visit record is a map of fhir and images")
        raw, images = fields["fhir"], fields["images"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_RESOURCES:
            raise RecordDecodeError(f"a visit record holds 1..{MAX_RESOURCES} resources")
        if not isinstance(images, list) or len(images) > MAX_ATTACHMENTS:
            raise RecordDecodeError(f"a visit record holds at most {MAX_ATTACHMENTS} attachments")
        resources = []
        for item in raw:
            if type(item) is not bytes:
                raise RecordDecodeError("each resource is canonical JSON bytes")
            try:
                res = validate_resource(item)
            except InvalidFhirError as exc:
                raise RecordDecodeError(str(exc)) from None
            if res.canonical != item:
                raise RecordDecodeError("a resource is not in canonical form")
            resources.append(res)
        return cls(tuple(resources), tuple(Attachment.from_fields(a) for a in images))


def attachments_of(content: bytes) -> tuple[Attachment, ...]:
    """The attachment references in record content, without validating its FHIR (cheap).

    For storage bookkeeping (which blobs a stored record names, :mod:`medbench.store`): content
    that is not a visit record, or whose attachment list is malformed, names none. Never raises.
    """
    try:
        fields = codec.decode(content)
    except (codec.DecodeError, TypeError):
        return ()
    if not isinstance(fields, dict) or set(fields) != {"fhir", "images"}:
        return ()
    images = fields["images"]
    if not isinstance(images, list) or len(images) > MAX_ATTACHMENTS:
        return ()
    try:
        return tuple(Attachment.from_fields(a) for a in images)
    except RecordDecodeError:
        return ()


def build_visit(
    resources: Iterable[Mapping[str, Any] | str | bytes | FhirResource],
    attachments: Iterable[Attachment] = (),
) -> VisitRecord:
    """Validate ``resources`` (dicts, JSON text or already validated) into a visit record.

    Raises :class:`InvalidFhirError` naming the first invalid resource.
    """
    validated = tuple(r if isinstance(r, FhirResource) else validate_resource(r) for r in resources)
    if not validated:
        raise InvalidFhirError(None, ["a visit record needs at least one resource"])
    return VisitRecord(validated, tuple(attachments))
