"""Permission matrix: every role x operation x grant state against an explicit expected table.

The table below is written from the paper, not from the code:

* a patient may read / add / modify / delete / hide their own data, grants or not
  (seed §2.3.3; docs/medical-chain.md §1.6 "service receivers");
* medical staff (doctor, nurse) read, add, modify and delete only inside the patient's grant
  window (seed §2.2.2: "these add, modify, delete and read operations need the patient's
  authorization and must happen within a period"); hiding is the patient's own act;
* family members do everything the patient can, under the patient's grant (seed §2.3.3);
* another person may be granted read/add/modify/delete (seed §2.2.2 "doctors or others");
* administrative staff are "not directly involved in care" and only authorize staff (§2.3.3), so
  no patient grant can be given to them;
* courts and police only read, and only after a health authority's authorization (§1.5, §2.3.3):
  their grant comes from the city health authority, read-only; any write is "role not permitted";
* health authorities (city, provincial, national) reach patient data only through recorded
  emergency access (§1.6), never through ordinary requests or a grant.

The grant states are *committed transactions* on a four-node Medical Chain (PBFT + access
validator): for each (role, state) a separate subject, registered at genesis; for "active",
"expired" and "revoked" its grantor (the patient, or the city authority for courts and police)
sends the widest grant the paper lets it give that role (:data:`WIDEST`) through PBFT — a grant
the rules refuse (administrative staff, authorities) leaves the subject without one — and for
"revoked" the grantor revokes it through PBFT. The expired window closes on the chain's own
clock. Each cell is then judged by every replica's validator against its committed state, and
all four must agree. Refusals of staff must produce a blacklist record (§1.5); every read must
produce an audit record (§1.3).

Every request is sealed to the consortium access key, and those of patients and family are
signed under a fresh pseudonym (:mod:`medbench.crypto.envelope`, :mod:`medbench.pki.pseudonym`):
the replicas open them and decide exactly the table above, while the wire form of each cell names
neither the patient nor (behind a pseudonym) the requester, and its blacklist and audit records
keep the patient sealed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from medbench import codec
from medbench.access.clients import Identity
from medbench.access.decision import Allowed, Refused
from medbench.access.request import Operation
from medbench.access.scenario import GENESIS_US, YEAR_US, Consortium
from medbench.crypto.envelope import open_record
from medbench.medchain import Deployment, request_transaction
from medbench.pki.pseudonym import PSEUDONYMOUS_ROLES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "medchain"))

from medchain_helpers import deploy

S = 1_000_000
HOUR = 3600 * S
REGION = "cn/zj/hz"  # patient-0's city, where every subject lives
FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}

# role                  grant     read      add       modify    delete    hide
TABLE = """
patient_self            none      ok        ok        ok        ok        ok
patient_self            active    ok        ok        ok        ok        ok
patient_self            expired   ok        ok        ok        ok        ok
patient_self            revoked   ok        ok        ok        ok        ok
patient_other           none      no-grant  no-grant  no-grant  no-grant  role
patient_other           active    ok        ok        ok        ok        role
patient_other           expired   expired   expired   expired   expired   role
patient_other           revoked   revoked   revoked   revoked   revoked   role
family                  none      no-grant  no-grant  no-grant  no-grant  no-grant
family                  active    ok        ok        ok        ok        ok
family                  expired   expired   expired   expired   expired   expired
family                  revoked   revoked   revoked   revoked   revoked   revoked
doctor                  none      no-grant  no-grant  no-grant  no-grant  role
doctor                  active    ok        ok        ok        ok        role
doctor                  expired   expired   expired   expired   expired   role
doctor                  revoked   revoked   revoked   revoked   revoked   role
nurse                   none      no-grant  no-grant  no-grant  no-grant  role
nurse                   active    ok        ok        ok        ok        role
nurse                   expired   expired   expired   expired   expired   role
nurse                   revoked   revoked   revoked   revoked   revoked   role
admin_staff             none      role      role      role      role      role
admin_staff             active    role      role      role      role      role
admin_staff             expired   role      role      role      role      role
admin_staff             revoked   role      role      role      role      role
court                   none      no-grant  role      role      role      role
court                   active    ok        role      role      role      role
court                   expired   expired   role      role      role      role
court                   revoked   revoked   role      role      role      role
police                  none      no-grant  role      role      role      role
police                  active    ok        role      role      role      role
police                  expired   expired   role      role      role      role
police                  revoked   revoked   role      role      role      role
city_authority          none      role      role      role      role      role
city_authority          active    role      role      role      role      role
city_authority          expired   role      role      role      role      role
city_authority          revoked   role      role      role      role      role
provincial_authority    none      role      role      role      role      role
provincial_authority    active    role      role      role      role      role
provincial_authority    expired   role      role      role      role      role
provincial_authority    revoked   role      role      role      role      role
national_authority      none      role      role      role      role      role
national_authority      active    role      role      role      role      role
national_authority      expired   role      role      role      role      role
national_authority      revoked   role      role      role      role      role
"""

CODE_TO_REASON = {
    "no-grant": "no-grant",
    "expired": "grant-expired",
    "revoked": "grant-revoked",
    "role": "role-not-permitted",
}
OPS = [Operation.READ, Operation.ADD, Operation.MODIFY, Operation.DELETE, Operation.HIDE]
STATES = ["none", "active", "expired", "revoked"]
STAFF = {"doctor", "nurse", "admin_staff"}
ALL_OPS = ["add", "delete", "hide", "modify", "read"]
CARE = ["add", "delete", "modify", "read"]

# role -> (certificate role, grantor, widest grant the paper lets that grantor give, issued?)
WIDEST: dict[str, tuple[str, str, list[str], bool]] = {
    "patient_self": ("patient", "patient", CARE, True),  # a patient may grant itself; moot
    "patient_other": ("patient", "patient", CARE, True),
    "family": ("family", "patient", ALL_OPS, True),
    "doctor": ("doctor", "patient", CARE, True),
    "nurse": ("nurse", "patient", CARE, True),
    "admin_staff": ("admin_staff", "patient", ["read"], False),
    "court": ("court", "authority", ["read"], True),
    "police": ("police", "authority", ["read"], True),
    "city_authority": ("health_admin_city", "patient", ["read"], False),
    "provincial_authority": ("health_admin_provincial", "patient", ["read"], False),
    "national_authority": ("health_admin_national", "patient", ["read"], False),
}


def _parse() -> dict[tuple[str, str, Operation], str]:
    out = {}
    for line in TABLE.strip().splitlines():
        role, state, *cells = line.split()
        assert len(cells) == len(OPS), line
        for op, cell in zip(OPS, cells, strict=True):
            out[(role, state, op)] = cell
    return out


EXPECTED = _parse()
ROLES = sorted({r for r, _, _ in EXPECTED})


def test_table_covers_every_cell() -> None:
    assert set(ROLES) == set(WIDEST)
    assert len(EXPECTED) == len(ROLES) * len(STATES) * len(OPS) == 11 * 4 * 5


_REGION_OF = {"health_admin_provincial": "cn/zj", "health_admin_national": "cn"}


def _enroll(subjects: dict[tuple[str, str], Identity], world: Consortium) -> list[Identity]:
    """One subject per (role, state), plus the authorities that authorize courts and police."""
    out = []
    for role, (cert_role, *_rest) in sorted(WIDEST.items()):
        if role == "patient_self":
            continue  # patient-0 itself
        inst = "hospital-0" if cert_role in ("doctor", "nurse", "admin_staff") else ""
        for state in STATES:
            ident = world.issue(
                f"{role}-{state}",
                cert_role,
                _REGION_OF.get(cert_role, REGION),
                institution=inst,
                at_us=GENESIS_US,
            )
            subjects[(role, state)] = ident
            out.append(ident)
    for name, role, region in (
        ("zj-main", "health_admin_provincial", "cn/zj"),
        ("hz-main", "health_admin_city", REGION),
    ):
        ident = world.issue(name, role, region, at_us=GENESIS_US)
        subjects[(name, "")] = ident
        out.append(ident)
    return out


class Chain:
    """The committed world of the matrix: deployment, network, subjects, a record of P's."""

    def __init__(self, dep: Deployment, net: Any, subjects: dict[tuple[str, str], Identity]):
        self.dep, self.net, self.subjects = dep, net, subjects
        self.patient = dep.patients[0]
        self.record = b""
        self.at = 0

    def commit(
        self,
        client: int,
        ident: Identity,
        op: Operation,
        patient: bytes,
        body: dict,
        at_us: int,
        category: str = "*",
    ) -> list[Any]:
        """Send one request through PBFT and return its reply (``[]`` if never ordered)."""
        req = self.dep.client(ident).request(
            op, patient=patient, body=body, at_us=at_us, category=category
        )
        tx = request_transaction(req)
        before = len(self.net.completed)
        self.net.submit(client, tx.to_wire())
        self.net.run(300_000)
        got = [c.result for c in self.net.completed[before:] if c.client == client]
        return codec.decode(got[0]) if got else []

    def refused_by_all(
        self, ident: Identity, op: Operation, patient: bytes, body: dict, at_us: int
    ) -> set[str | None]:
        """The reasons the four replicas refuse a request with (it is not sent: a refused
        request would hold its PBFT client forever)."""
        req = self.dep.client(ident).request(op, patient=patient, body=body, at_us=at_us)
        wire = request_transaction(req).to_wire()
        return {self.dep.nodes[i].access.judge(wire).reason for i in range(4)}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    subjects: dict[tuple[str, str], Identity] = {}
    dep, net = deploy(
        tmp_path_factory.mktemp("matrix"), users=1, enroll=lambda w: _enroll(subjects, w), **FAST
    )
    c = Chain(dep, net, subjects)
    u = dep.user_ids[0]
    p = c.patient
    subjects[("patient_self", "")] = p
    for state in STATES:
        subjects[("patient_self", state)] = p
    # P's own record (the target of modify / delete / hide)
    t = GENESIS_US + 10
    ok = c.commit(u, p, Operation.ADD, p.public_key, {"content": b"first visit"}, t, "visit")
    assert ok[0] == "accepted", ok
    c.record = ok[1]
    nha = dep.world.national_authority
    zj, hz = subjects[("zj-main", "")], subjects[("hz-main", "")]
    for who, to, role, region in (
        (nha, zj, "health_admin_provincial", "cn/zj"),
        (zj, hz, "health_admin_city", REGION),
    ):
        body = {
            "delegate": to.public_key,
            "role": role,
            "region": region,
            "not_after_us": GENESIS_US + YEAR_US,
        }
        t += 1
        assert c.commit(u, who, Operation.DELEGATE, b"", body, t)[0] == "accepted"
    grants: dict[tuple[str, str], bytes] = {}
    for role, (_cert, grantor, ops, issued) in sorted(WIDEST.items()):
        for state in ("active", "expired", "revoked"):
            t += 1
            end = GENESIS_US + 2 * S if state == "expired" else GENESIS_US + HOUR
            body = {
                "grantee": subjects[(role, state)].public_key,
                "ops": ops,
                "categories": ["*"],
                "not_before_us": GENESIS_US,
                "not_after_us": end,
            }
            by = p if grantor == "patient" else hz
            if not issued:  # the rules let nobody give this role a grant
                reasons = c.refused_by_all(by, Operation.GRANT, p.public_key, body, t)
                assert {r.split(":")[0] for r in reasons if r} == {"grant-not-permitted"}
                assert None not in reasons
                continue
            got = c.commit(u, by, Operation.GRANT, p.public_key, body, t)
            assert got[:1] == ["accepted"], (role, state, got)
            grants[(role, state)] = got[1]
    for (role, state), gid in sorted(grants.items()):
        if state == "revoked":
            t += 1
            by = p if WIDEST[role][1] == "patient" else hz
            assert c.commit(u, by, Operation.REVOKE, p.public_key, {"grant": gid}, t)[0] == (
                "accepted"
            )
    net.run(3 * S)  # the chain's clock passes the expired windows (they end at genesis + 2 s)
    c.at = GENESIS_US + net.now
    return c


@pytest.mark.parametrize("grant_state", STATES)
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.value)
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(chain: Chain, role: str, op: Operation, grant_state: str) -> None:
    dep = chain.dep
    subject = chain.subjects[(role, grant_state)]
    countersign = role in ("doctor", "nurse") and op is not Operation.READ
    client = dep.client(subject, countersigner=dep.hospitals[0] if countersign else None)
    body: dict[str, object] = {
        Operation.READ: {"history": False},
        Operation.ADD: {"content": b"new finding"},
        Operation.MODIFY: {"record": chain.record, "content": b"corrected", "reason": "typo"},
        Operation.DELETE: {"record": chain.record},
        Operation.HIDE: {"record": chain.record, "hidden": True},
    }[op]
    req = client.request(
        op,
        patient=chain.patient.public_key,
        category="visit",
        body=body,
        at_us=chain.at,
        countersign=countersign,
    )
    wire = request_transaction(req).to_wire()
    # what everyone but the validators sees: no patient key, and no requester behind a pseudonym
    assert req.sealed and chain.patient.public_key not in wire
    assert (subject.public_key in wire) == (subject.info.role not in PSEUDONYMOUS_ROLES)
    verdicts = [dep.nodes[i].access.judge(wire) for i in range(4)]  # pure: no state change
    decision = verdicts[0].decision
    assert all(v.decision == decision for v in verdicts)  # every replica decides alike
    expected = EXPECTED[(role, grant_state, op)]
    if expected == "ok":
        assert isinstance(decision, Allowed), decision
    else:
        assert isinstance(decision, Refused), decision
        assert decision.reason.value == CODE_TO_REASON[expected]
        # §1.5: an unauthorized or expired attempt by staff is blacklisted; others are not
        assert (decision.blacklist is not None) == (role in STAFF)
        if decision.blacklist is not None:
            assert decision.blacklist.content["subject"] == subject.public_key
            assert decision.blacklist.content["reason"] == decision.reason.value
            assert chain.patient.public_key not in codec.encode(decision.blacklist.content)
    # §1.3: every query is recorded, whatever the outcome, and so is every refused attempt
    audit = decision.audit
    assert (audit is not None) == (op is Operation.READ or expected != "ok"), audit
    if audit is not None:
        assert audit.kind == "query" and audit.content["request"] == req.request_id
        outcome = "allowed" if isinstance(decision, Allowed) else decision.reason.value
        assert audit.content["outcome"] == outcome
        assert chain.patient.public_key not in codec.encode(audit.content)
        private = open_record(dep.world.access_key, "audit", req.request_id,
                              audit.content["sealed"])  # fmt: skip
        assert private["patient"] == chain.patient.public_key
        assert private["requester"] == subject.public_key
