"""Shared builders for the records tests: a seeded population and valid FHIR resources."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medbench.crypto.identity import Identity
from medbench.ledger import Transaction
from medbench.records import (
    PSEUDONYMOUS_SUBJECT,
    PrivateProfile,
    PublicProfile,
    Role,
    Writer,
    register,
)

T0 = 1_546_300_800_000_000  # 2019-01-01T00:00:00Z


def randbytes(seed: int) -> Callable[[int], bytes]:
    """Injected randomness for sealing and ephemeral keys."""
    return random.Random(seed).randbytes


def identity(seed: int) -> Identity:
    """A deterministic identity."""
    return Identity.generate(seed=random.Random(seed).randbytes(32))


def encounter(i: int = 0) -> dict[str, Any]:
    """A valid Encounter (time and place of a visit)."""
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "period": {"start": f"2019-03-{1 + i % 28:02d}T09:00:00+08:00"},
        "serviceProvider": {"display": "Hospital A"},
    }


def condition(i: int = 0) -> dict[str, Any]:
    """A valid Condition (diagnosis)."""
    return {
        "resourceType": "Condition",
        "subject": PSEUDONYMOUS_SUBJECT,
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": "38341003"}],
            "text": f"hypertension #{i}",
        },
        "recordedDate": "2019-03-01",
    }


def observation(i: int = 0) -> dict[str, Any]:
    """A valid Observation (a finding with a decimal value)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}], "text": "SBP"},
        "valueQuantity": {"value": 120.5 + i, "unit": "mmHg"},
        "effectiveDateTime": "2019-03-01T09:30:00+08:00",
    }


def medication_request(i: int = 0) -> dict[str, Any]:
    """A valid MedicationRequest (treatment plan)."""
    return {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": PSEUDONYMOUS_SUBJECT,
        "medicationCodeableConcept": {"text": f"amlodipine {5 + i} mg"},
    }


def diagnostic_report(i: int = 0) -> dict[str, Any]:
    """A valid DiagnosticReport (imaging report)."""
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "chest CT"},
        "conclusion": f"no acute findings ({i})",
    }


VALID_BUILDERS = (encounter, condition, observation, medication_request, diagnostic_report)


@dataclass
class Population:
    """Institutions, their staff, independent workers and patients with registrations."""

    institutions: list[Identity]
    staff: list[tuple[Identity, Identity]]  # (staff member, institution)
    patients: list[Identity]
    registrations: list[Transaction]

    def writer(self, i: int) -> Writer:
        """The i-th staff member countersigned by their institution."""
        member, inst = self.staff[i % len(self.staff)]
        return Writer(member.signing, inst.signing)


def population(
    seed: int, *, institutions: int = 2, staff_per: int = 2, patients: int = 4
) -> Population:
    """A registered population drawn from ``seed``."""
    rng = random.Random(seed)
    rb = rng.randbytes

    def ident() -> Identity:
        return Identity.generate(seed=rb(32))

    insts = [ident() for _ in range(institutions)]
    staff = [(ident(), inst) for inst in insts for _ in range(staff_per)]
    pats = [ident() for _ in range(patients)]
    regs = []
    t = T0
    for k, inst in enumerate(insts):
        t += 1
        regs.append(
            register(
                inst,
                PublicProfile(Role.INSTITUTION),
                PrivateProfile(f"Hospital {k}"),
                t,
                randbytes=rb,
            )
        )
    for k, (member, inst) in enumerate(staff):
        t += 1
        profile = PublicProfile(
            Role.STAFF, sex="female", institution=inst.key, department="cardiology", level="chief"
        )
        regs.append(
            register(member, profile, PrivateProfile(f"Dr. {k}"), t, institution=inst, randbytes=rb)
        )
    for k, p in enumerate(pats):
        t += 1
        profile = PublicProfile(Role.PATIENT, sex=rng.choice(["female", "male"]), age_band="30-39")
        private = PrivateProfile(f"Patient {k}", id_number=f"1101{k:014d}", contact=f"+86-{k}")
        regs.append(register(p, profile, private, t, randbytes=rb))
    return Population(insts, staff, pats, regs)
