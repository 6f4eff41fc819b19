"""A cast of identities on one consortium, shared by the access and PKI tests."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from medbench.access.clients import (
    AdminClient,
    AuthorityClient,
    DoctorClient,
    GranteeClient,
    Identity,
    PatientClient,
    QueryClient,
)
from medbench.access.scenario import DAY_US, GENESIS_US, YEAR_US, Consortium

T0 = GENESIS_US + DAY_US
"""Everyone is enrolled at T0; tests act after it."""


@dataclass
class Cast:
    """The consortium and the people of docs/medical-chain.md §1.7 (plus the other roles)."""

    world: Consortium
    rng: random.Random
    P: Identity  # patient
    Q: Identity  # another patient
    F: Identity  # P's family member
    HA: Identity  # hospital A
    HB: Identity  # hospital B
    D: Identity  # doctor at H_B
    N: Identity  # nurse at H_B
    A: Identity  # administrative staff at H_B
    D2: Identity  # doctor at H_A
    C: Identity  # court
    PO: Identity  # police
    ZJ: Identity  # provincial health authority (Zhejiang), delegated by the national one
    HZ: Identity  # city health authority (Hangzhou), delegated by ZJ
    GD: Identity  # provincial authority of Guangdong, delegated by the national one

    def patient(self, who: Identity | None = None) -> PatientClient:
        """A patient client for ``who`` (default P)."""
        return PatientClient(who or self.P, self.world.chain, self.rng)

    def doctor(self, who: Identity | None = None, inst: Identity | None = None) -> DoctorClient:
        """A doctor client countersigned by its hospital (default D at H_B)."""
        return DoctorClient(
            who or self.D, self.world.chain, self.rng, countersigner=inst or self.HB
        )

    def grantee(self, who: Identity) -> GranteeClient:
        """A grantee client (family, another patient) that signs alone."""
        return GranteeClient(who, self.world.chain, self.rng)

    def query(self, who: Identity) -> QueryClient:
        """A court / police query client."""
        return QueryClient(who, self.world.chain, self.rng)

    def admin(self) -> AdminClient:
        """H_B's administrative staff."""
        return AdminClient(self.A, self.world.chain, self.rng)

    def authority(self, who: Identity) -> AuthorityClient:
        """A health-authority client."""
        return AuthorityClient(who, self.world.chain, self.rng)


def make_cast(seed: int = 0) -> Cast:
    """Build the consortium, enrol everybody at T0 and delegate ZJ, GD and HZ."""
    w = Consortium.create(seed)
    rng = random.Random(seed + 1)
    e = w.enroll
    hz = "cn/zj/hz"
    cast = Cast(
        world=w,
        rng=rng,
        P=e("330101199001011234", "patient", hz, at_us=T0),
        Q=e("330101198502025678", "patient", hz, at_us=T0),
        F=e("330101196003033333", "family", hz, at_us=T0),
        HA=e("H_A", "institution", hz, institution="H_A", at_us=T0),
        HB=e("H_B", "institution", hz, institution="H_B", at_us=T0),
        D=e("doctor-D", "doctor", hz, institution="H_B", at_us=T0),
        N=e("nurse-N", "nurse", hz, institution="H_B", at_us=T0),
        A=e("admin-A", "admin_staff", hz, institution="H_B", at_us=T0),
        D2=e("doctor-D2", "doctor", hz, institution="H_A", at_us=T0),
        C=e("court-C", "court", hz, at_us=T0),
        PO=e("police-PO", "police", hz, at_us=T0),
        ZJ=e("zj-hc", "health_admin_provincial", "cn/zj", at_us=T0),
        HZ=e("hz-hc", "health_admin_city", hz, at_us=T0),
        GD=e("gd-hc", "health_admin_provincial", "cn/gd", at_us=T0),
    )
    nha = cast.authority(w.national_authority)
    assert nha.delegate(
        cast.ZJ.public_key,
        "health_admin_provincial",
        "cn/zj",
        not_after_us=T0 + 5 * YEAR_US,
        at_us=T0 + 1,
    )
    assert nha.delegate(
        cast.GD.public_key,
        "health_admin_provincial",
        "cn/gd",
        not_after_us=T0 + 5 * YEAR_US,
        at_us=T0 + 2,
    )
    assert cast.authority(cast.ZJ).delegate(
        cast.HZ.public_key, "health_admin_city", hz, not_after_us=T0 + 5 * YEAR_US, at_us=T0 + 3
    )
    return cast


@pytest.fixture
def cast() -> Cast:
    """A fresh cast per test."""
    return make_cast()
