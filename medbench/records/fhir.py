"""FHIR R4B validation at the client boundary and the canonical bytes of a resource.

Theory of operation
-------------------
A visit record (docs/medical-chain.md §1.3 item 2: time, place, findings) carries its clinical
content as FHIR R4B resources of five types: Encounter (the visit: when, where, who), Condition
(diagnosis), Observation (findings, vital signs), MedicationRequest (treatment plan) and
DiagnosticReport (imaging or laboratory report). The client validates each resource with
``fhir.resources`` (``fhir.resources.R4B``: cardinalities, data types, choice types, unknown fields)
and, because that library does not enforce required value-set bindings, also checks the codes of the
required bindings of these five types (``status``, ``intent``) against the R4B value sets. Anything
invalid raises :class:`InvalidFhirError` *before* a transaction exists, so invalid content never
reaches the chain.

The bytes that go into the transaction — and hence into its ID and signatures — are the validated
model dumped without empty fields and serialised as JSON with sorted keys, no whitespace, UTF-8
and no NaN/Infinity. Validation normalises (e.g. ``120.50`` becomes ``120.5``), and canonicalising
canonical bytes returns them unchanged, so two clients that validate the same resource produce the
same transaction ID.

A record must not name its patient: the link between a record and its patient lives only in the
sealed association (:mod:`medbench.records.association`). Resources whose FHIR cardinality demands
a ``subject`` (Condition, MedicationRequest) should use a pseudonymous reference such as
:data:`PSEUDONYMOUS_SUBJECT`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medbench.records.errors import InvalidFhirError

SUPPORTED_TYPES: frozenset[str] = frozenset(
    {"Encounter", "Condition", "Observation", "MedicationRequest", "DiagnosticReport"}
)
"""The resource types a visit record may carry."""

MAX_RESOURCE_BYTES = 256 * 1024
"""Largest canonical resource accepted (the whole transaction is capped at 1 MiB)."""

PSEUDONYMOUS_SUBJECT: dict[str, Any] = {"display": "patient (linked by sealed association)"}
"""A ``subject`` reference that does not identify the patient."""

# Required bindings of R4B that fhir.resources does not check (codes from hl7.org/fhir/R4B).
_REQUIRED_CODES: dict[str, dict[str, frozenset[str]]] = {
    "Encounter": {
        "status": frozenset(
            [
                "planned",
                "arrived",
                "triaged",
                "in-progress",
                "onleave",
                "finished",
                "cancelled",
                "entered-in-error",
                "unknown",
            ]
        )
    },
    "Observation": {
        "status": frozenset(
            [
                "registered",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "cancelled",
                "entered-in-error",
                "unknown",
            ]
        )
    },
    "MedicationRequest": {
        "status": frozenset(
            [
                "active",
                "on-hold",
                "cancelled",
                "completed",
                "entered-in-error",
                "stopped",
                "draft",
                "unknown",
            ]
        ),
        "intent": frozenset(
            [
                "proposal",
                "plan",
                "order",
                "original-order",
                "reflex-order",
                "filler-order",
                "instance-order",
                "option",
            ]
        ),
    },
    "DiagnosticReport": {
        "status": frozenset(
            [
                "registered",
                "partial",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "appended",
                "cancelled",
                "entered-in-error",
                "unknown",
            ]
        )
    },
    "Condition": {},
}


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8, NaN/Infinity refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True, slots=True)
class FhirResource:
    """A validated FHIR R4B resource: its type and its canonical JSON bytes."""

    resource_type: str
    canonical: bytes

    def as_dict(self) -> dict[str, Any]:
        """The resource as plain JSON data."""
        value: dict[str, Any] = json.loads(self.canonical)
        return value

    def __repr__(self) -> str:
        return f"FhirResource({self.resource_type}, {len(self.canonical)} B)"


def _parse(resource: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(resource, (bytes, str)):
        if len(resource) > MAX_RESOURCE_BYTES:
            raise InvalidFhirError(None, [f"larger than {MAX_RESOURCE_BYTES} bytes"])
        try:
            data = json.loads(resource)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise InvalidFhirError(None, [f"not JSON: {exc}"]) from None
    elif isinstance(resource, Mapping):
        data = dict(resource)
    else:
        raise InvalidFhirError(None, [f"a resource is a JSON object, not {type(resource)!r}"])
    if not isinstance(data, dict):
        raise InvalidFhirError(None, ["a resource is a JSON object"])
    null_at = _first_null_member(data)
    if null_at is not None:
        # FHIR JSON forbids null member values; accepting one would let the library drop it and
        # hand back a canonical form that no longer validates (e.g. a required "subject": null).
        raise InvalidFhirError(None, [f"{null_at}: null is not a FHIR JSON value"])
    return data


def _first_null_member(data: dict[str, Any]) -> str | None:
    """The path of the first object member whose value is null, or None (iterative: no depth
    limit of its own beyond the input size)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                here = f"{path}.{key}" if path else str(key)
                if item is None:
                    return here
                stack.append((here, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return None


@functools.cache
def _model_class(resource_type: str) -> Any:
    """The ``fhir.resources.R4B`` model of a type (imported on first use: ~0.3 s)."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validate_resource(resource: Mapping[str, Any] | str | bytes) -> FhirResource:
    """Validate one resource (dict or JSON text) and return its canonical form.

    Raises :class:`InvalidFhirError` for anything that is not valid FHIR R4B of one of
    :data:`SUPPORTED_TYPES`; never any other exception for bad input.
    """
    data = _parse(resource)
    rtype = data.get("resourceType")
    if not isinstance(rtype, str) or rtype not in SUPPORTED_TYPES:
        raise InvalidFhirError(
            rtype if isinstance(rtype, str) else None,
            [f"resourceType must be one of {sorted(SUPPORTED_TYPES)}"],
        )
    from pydantic import ValidationError

    model = _model_class(rtype)
    try:
        parsed = model.model_validate(data)
        dumped = parsed.model_dump(mode="json", exclude_none=True, by_alias=True)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise InvalidFhirError(rtype, errors) from None
    except (ValueError, TypeError, RecursionError) as exc:  # defensive: library internals
        raise InvalidFhirError(rtype, [str(exc)]) from None
    problems = [
        f"{name}: {dumped.get(name)!r} is not in the required value set"
        for name, codes in _REQUIRED_CODES[rtype].items()
        if name in dumped and dumped[name] not in codes
    ]
    if problems:
        raise InvalidFhirError(rtype, problems)
    try:
        canonical = canonical_json(dumped)
    except ValueError as exc:  # NaN or Infinity slipped into a decimal
        raise InvalidFhirError(rtype, [str(exc)]) from None
    if len(canonical) > MAX_RESOURCE_BYTES:
        raise InvalidFhirError(rtype, [f"larger than {MAX_RESOURCE_BYTES} bytes"])
    return FhirResource(rtype, canonical)
