"""Permission matrix: every role x operation x grant state against an explicit expected table.

The table below is written from the paper, not from the code:

* a patient may read / add / modify / delete / hide their own data, grants or not
  (seed §2.3.3; PAPER.md §1.6 "service receivers");
* medical staff (doctor, nurse) read, add, modify and delete only inside the patient's grant
  window (seed §2.2.2: "these add, modify, delete and read operations need the patient's
  authorization and must happen within a period"); hiding is the patient's own act;
* family members do everything the patient can, under the patient's grant (seed §2.3.3);
* another person may be granted read/add/modify/delete (seed §2.2.2 "doctors or others");
* administrative staff are "not directly involved in care" and only authorize staff (§2.3.3), so
  a patient grant gives them nothing;
* courts and police only read, and only after a health authority's authorization (§1.5, §2.3.3):
  a patient grant does not count, so their read is "no grant" and any write "role not permitted";
* a health authority reaches patient data only through recorded emergency access (§1.6), never
  through ordinary requests.

The grant given in every "active/expired/revoked" column is the widest possible: the patient
grants the subject all five operations on all categories. Refusals of staff must produce a
blacklist record (§1.5); every read must produce an audit record (§1.3).
"""

from __future__ import annotations

import dataclasses

import pytest

from medbench.access.clients import Identity
from medbench.access.grants import GrantBook, GrantRecord, RevokeRecord
from medbench.access.request import Operation
from medbench.access.state import ChainState
from medbench.access.validator import Allowed, Refused, Validator

from .conftest import T0, Cast, make_cast

DAY = 86_400_000_000
T1 = T0 + DAY  # grant window starts
WINDOW = 10 * DAY

# role            grant     read      add       modify    delete    hide
TABLE = """
patient_self      none      ok        ok        ok        ok        ok
patient_self      active    ok        ok        ok        ok        ok
patient_self      expired   ok        ok        ok        ok        ok
patient_self      revoked   ok        ok        ok        ok        ok
patient_other     none      no-grant  no-grant  no-grant  no-grant  role
patient_other     active    ok        ok        ok        ok        role
patient_other     expired   expired   expired   expired   expired   role
patient_other     revoked   revoked   revoked   revoked   revoked   role
family            none      no-grant  no-grant  no-grant  no-grant  no-grant
family            active    ok        ok        ok        ok        ok
family            expired   expired   expired   expired   expired   expired
family            revoked   revoked   revoked   revoked   revoked   revoked
doctor            none      no-grant  no-grant  no-grant  no-grant  role
doctor            active    ok        ok        ok        ok        role
doctor            expired   expired   expired   expired   expired   role
doctor            revoked   revoked   revoked   revoked   revoked   role
nurse             none      no-grant  no-grant  no-grant  no-grant  role
nurse             active    ok        ok        ok        ok        role
nurse             expired   expired   expired   expired   expired   role
nurse             revoked   revoked   revoked   revoked   revoked   role
admin_staff       none      role      role      role      role      role
admin_staff       active    role      role      role      role      role
admin_staff       expired   role      role      role      role      role
admin_staff       revoked   role      role      role      role      role
court             none      no-grant  role      role      role      role
court             active    no-grant  role      role      role      role
court             expired   no-grant  role      role      role      role
court             revoked   no-grant  role      role      role      role
police            none      no-grant  role      role      role      role
police            active    no-grant  role      role      role      role
police            expired   no-grant  role      role      role      role
police            revoked   no-grant  role      role      role      role
city_authority    none      role      role      role      role      role
city_authority    active    role      role      role      role      role
city_authority    expired   role      role      role      role      role
city_authority    revoked   role      role      role      role      role
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
    assert len(EXPECTED) == len(ROLES) * len(STATES) * len(OPS) == 9 * 4 * 5


@pytest.fixture(scope="module")
def world() -> tuple[Cast, bytes]:
    cast = make_cast(7)
    d = cast.patient().add_own("visit", b"first visit", at_us=T0 + 10)
    assert isinstance(d, Allowed)
    return cast, d.request_id


def _subject(cast: Cast, role: str) -> Identity:
    return {
        "patient_self": cast.P,
        "patient_other": cast.Q,
        "family": cast.F,
        "doctor": cast.D,
        "nurse": cast.N,
        "admin_staff": cast.A,
        "court": cast.C,
        "police": cast.PO,
        "city_authority": cast.HZ,
    }[role]


def _state(cast: Cast, grantee: bytes, grant_state: str) -> tuple[ChainState, int]:
    book = GrantBook()
    gid = b"\x01" * 32
    p = cast.P.public_key
    if grant_state != "none":
        book.add_grant(
            GrantRecord(
                gid,
                p,
                p,
                "patient",
                grantee,
                frozenset({"read", "add", "modify", "delete", "hide"}),
                frozenset({"*"}),
                T1,
                T1 + WINDOW,
                T1,
            )
        )
    if grant_state == "revoked":
        book.add_revoke(RevokeRecord(gid, p, T1 + 2 * DAY))
    at = T1 + WINDOW + DAY if grant_state == "expired" else T1 + 3 * DAY
    return dataclasses.replace(cast.world.state, grants=book), at


@pytest.mark.parametrize("grant_state", STATES)
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.value)
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(
    world: tuple[Cast, bytes], role: str, op: Operation, grant_state: str
) -> None:
    cast, record_id = world
    subject = _subject(cast, role)
    state, at = _state(cast, subject.public_key, grant_state)
    client = cast.doctor(subject) if role in ("doctor", "nurse") else cast.grantee(subject)
    body: dict[str, object] = {
        Operation.READ: {"history": False},
        Operation.ADD: {"content": b"new finding"},
        Operation.MODIFY: {"record": record_id, "content": b"corrected", "reason": "typo"},
        Operation.DELETE: {"record": record_id},
        Operation.HIDE: {"record": record_id, "hidden": True},
    }[op]
    req = client.request(
        op,
        patient=cast.P.public_key,
        category="visit",
        body=body,
        at_us=at,
        countersign=role in ("doctor", "nurse") and op is not Operation.READ,
    )
    before = dict(cast.world.state.blacklist)
    decision = Validator().check(req, state)
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
    # §1.3: every query is recorded, whatever the outcome
    audit = decision.audit
    assert (audit is not None) == (op is Operation.READ)
    if audit is not None:
        assert audit.kind == "query" and audit.content["request"] == req.request_id
        outcome = "allowed" if isinstance(decision, Allowed) else decision.reason.value
        assert audit.content["outcome"] == outcome
    assert cast.world.state.blacklist == before  # check() is pure
