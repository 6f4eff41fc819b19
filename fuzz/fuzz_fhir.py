"""``medbench.records.fhir.validate_resource``: a FHIR R4B resource as JSON bytes (what a visit
record on the chain carries, and what a client hands the records layer).

Allowed: the validated resource, or :class:`~medbench.records.errors.InvalidFhirError` (its
docstring: "never any other exception for bad input"). Checked on a resource: its canonical
form validates again to itself (a visit record is refused unless every resource is in canonical
form, so a canonical form that is not a fixed point would make valid records unreadable).
"""

from __future__ import annotations

import json

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.ledger.transaction import Kind
from medbench.records.errors import InvalidFhirError
from medbench.records.fhir import validate_resource
from medbench.records.visit import VisitRecord


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        res = validate_resource(data)
        again = validate_resource(res.canonical)
        expect(again.canonical == res.canonical, "the canonical form is not a fixed point")
        expect(validate_resource(res.as_dict()) == res, "the dict form validates differently")

    return one_input


def seeds() -> list[bytes]:
    out = []
    for tx in samples.workload_transactions(Kind.ADD)[:4]:
        out += [r.canonical for r in VisitRecord.decode(tx.content).resources]
    out.append(json.dumps({"resourceType": "Patient", "id": "p1", "gender": "female"}).encode())
    return list(dict.fromkeys(out))


HARNESS = Harness(
    name="fhir",
    summary="records.fhir.validate_resource (FHIR R4B JSON)",
    allowed=(InvalidFhirError,),
    setup=setup,
    seeds=seeds,
    max_len=4096,
)
