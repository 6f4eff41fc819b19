"""The RBAC policy is data: published bytes, checked on load, and behaviour follows the document."""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medbench import codec
from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.rbac import Policy, PolicyError, default_policy_document
from medbench.access.request import Operation
from medbench.access.validator import Validator

from .conftest import T0, Cast

DAY = 86_400_000_000


def test_policy_round_trips_as_published_bytes() -> None:
    doc = default_policy_document([{"key": b"k" * 32, "region": "cn"}])
    p = Policy.from_document(doc)
    q = Policy.from_bytes(p.to_bytes())
    assert q.document == p.document and q.to_bytes() == codec.encode(doc)


def test_inheritance_is_resolved_from_the_document() -> None:
    p = Policy.from_document(default_policy_document())
    assert p.is_a("doctor", "medical_staff") and p.is_a("doctor", "staff")
    assert p.is_a("health_admin_national", "health_admin_city")
    assert not p.is_a("health_admin_city", "health_admin_national")
    assert p.is_a("police", "judicial") and not p.is_a("police", "patient")
    assert p.needs_countersign("nurse", "add") and not p.needs_countersign("nurse", "read")
    assert p.blacklistable("admin_staff") and not p.blacklistable("patient")
    assert p.self_ops("patient") == {"read", "add", "modify", "delete", "hide"}
    assert p.self_ops("doctor") == frozenset()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["roles"]["staff"].update(inherits=["doctor"]),  # cycle
        lambda d: d["roles"]["doctor"].update(inherits=["surgeon"]),  # unknown parent
        lambda d: d["grant_rules"].append(
            {"grantor": "god", "grantee": "doctor", "ops": ["read"], "categories": ["*"]}
        ),
        lambda d: d["grant_rules"].append(
            {"grantor": "patient", "grantee": "doctor", "ops": ["fly"], "categories": ["*"]}
        ),
        lambda d: d["regions"].append("cn/xx/yy"),  # no parent region
        lambda d: d["delegation"].update(health_admin_city=["doctor"]),  # no region depth
        lambda d: d["blacklist"].update(refuse_after=0),
        lambda d: d.update(version=2),
        lambda d: d.pop("self_ops"),
    ],
)
def test_malformed_policies_are_rejected(mutate) -> None:
    doc = default_policy_document()
    mutate(doc)
    with pytest.raises(PolicyError):
        Policy.from_document(doc)


@given(st.binary(max_size=200))
def test_policy_bytes_from_outside_raise_only_policy_error(data: bytes) -> None:
    with contextlib.suppress(PolicyError):
        Policy.from_bytes(data)


_SECTIONS = [
    "version",
    "roles",
    "regions",
    "self_ops",
    "grantors",
    "grant_rules",
    "delegation",
    "root_authorities",
    "emergency",
    "countersign",
    "blacklist",
    "categories",
]
_values = st.recursive(
    st.none()
    | st.integers(-2, 3)
    | st.text(max_size=6)
    | st.binary(max_size=4)
    | st.sampled_from(["doctor", "patient", "*", "read", "cn", "cn/zj"]),
    lambda i: (
        st.lists(i, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "inherits",
                    "region_depth",
                    "roles",
                    "ops",
                    "grantor",
                    "grantee",
                    "categories",
                    "key",
                    "role",
                    "region",
                    "refuse_after",
                    "doctor",
                ]
            ),
            i,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@given(st.sampled_from(_SECTIONS), _values, st.sampled_from(["replace", "nest"]))
def test_hostile_policy_documents_raise_only_policy_error(
    section: str, value: object, how: str
) -> None:
    doc = default_policy_document()
    if how == "replace" or not isinstance(doc[section], dict):
        doc[section] = value
    else:
        doc[section]["doctor"] = value
    with contextlib.suppress(PolicyError):
        p = Policy.from_document(doc)
        # a document that loads must answer every question without crashing
        for role in ("doctor", "patient", "police", "health_admin_city"):
            p.self_ops(role), p.grantor_kind(role), p.rules_for(role, "read", "visit")
            p.can_emergency(role), p.needs_countersign(role, "add"), p.blacklistable(role)


def _with_policy(cast: Cast, doc: dict) -> None:  # type: ignore[type-arg]
    state = cast.world.state
    doc["root_authorities"] = state.policy.document["root_authorities"]
    cast.world.chain.state = dataclasses.replace(state, policy=Policy.from_document(doc))


def test_changing_the_published_rules_changes_decisions(cast: Cast) -> None:
    t = T0 + DAY
    pc = cast.patient()
    rec = pc.add_own("visit", b"x", at_us=t)
    assert pc.grant(
        cast.F.public_key, ["read", "hide"], not_before_us=t, not_after_us=t + DAY, at_us=t + 1
    )
    fam = cast.grantee(cast.F)
    hide = fam.request(
        Operation.HIDE,
        patient=cast.P.public_key,
        category="visit",
        body={"record": rec.request_id, "hidden": True},
        at_us=t + 2,
    )
    assert isinstance(
        Validator(access_key=cast.world.access_key).check(hide, cast.world.state), Allowed
    )
    # the authority publishes a policy where family may no longer hide
    doc = copy.deepcopy(cast.world.state.policy.document)
    for rule in doc["grant_rules"]:
        if rule["grantee"] == "family":
            rule["ops"] = [o for o in rule["ops"] if o != "hide"]
    _with_policy(cast, doc)
    d = Validator(access_key=cast.world.access_key).check(hide, cast.world.state)
    assert isinstance(d, Refused) and d.reason is Reason.ROLE_NOT_PERMITTED
    # ... and one where administrative staff may read under a patient grant
    doc["grant_rules"].append(
        {"grantor": "patient", "grantee": "admin_staff", "ops": ["read"], "categories": ["*"]}
    )
    _with_policy(cast, doc)
    assert pc.grant(cast.A.public_key, ["read"], not_before_us=t, not_after_us=t + DAY, at_us=t + 3)
    d, recs = cast.grantee(cast.A).read(cast.P.public_key, at_us=t + 4)
    assert isinstance(d, Allowed) and len(recs) == 1


def test_blacklist_threshold_comes_from_the_document(cast: Cast) -> None:
    doc = copy.deepcopy(cast.world.state.policy.document)
    doc["blacklist"]["refuse_after"] = 1
    _with_policy(cast, doc)
    doc_client = cast.doctor()
    first, _ = doc_client.read(cast.P.public_key, at_us=T0 + DAY)
    second, _ = doc_client.read(cast.P.public_key, at_us=T0 + DAY + 1)
    assert isinstance(first, Refused) and first.reason is Reason.NO_GRANT
    assert isinstance(second, Refused) and second.reason is Reason.BLACKLISTED


def test_policy_is_published_as_a_transaction_by_a_root_authority_only(cast: Cast) -> None:
    from medbench.access.rbac import policy_draft

    state = cast.world.state
    doc = copy.deepcopy(state.policy.document)
    doc["blacklist"]["refuse_after"] = 7
    draft = policy_draft(Policy.from_document(doc), T0 + DAY)
    assert draft.kind == "add" and draft.type == "policy"
    with pytest.raises(PermissionError):
        state.adopt_policy(draft, cast.ZJ.public_key)  # a provincial authority may not
    assert state.policy.refuse_after == 3
    state.adopt_policy(draft, cast.world.national_authority.public_key)
    assert state.policy.refuse_after == 7
    bad = dataclasses.replace(draft, content={"type": "policy", "document": b"\x81\xa1x\x01"})
    with pytest.raises(PolicyError):
        state.adopt_policy(bad, cast.world.national_authority.public_key)


def test_certificates_register_through_their_draft(cast: Cast) -> None:
    from medbench.pki.drafts import certificate_draft

    newcomer = cast.world.issue("newcomer", "patient", "cn/zj/nb", at_us=T0)
    assert newcomer.public_key not in cast.world.state.identities
    ident = cast.world.state.register_draft(certificate_draft(newcomer.chain, T0 + 1))
    assert ident.public_key == newcomer.public_key
    assert cast.world.state.identities[newcomer.public_key].region == "cn/zj/nb"
    cast.world.revoke("newcomer", at_us=T0 + 2_000_000)
    from medbench.pki.certpath import CertificateError

    with pytest.raises(CertificateError):
        cast.world.state.register_draft(certificate_draft(newcomer.chain, T0 + 3_000_000))


def test_same_institution_and_private_are_read_from_the_document(cast: Cast) -> None:
    """The institution constraint and the private categories are data, not code."""
    t = T0 + DAY
    admin = cast.admin()  # at H_B; D2 works at H_A

    def authorize(categories: list[str], at: int) -> Allowed | Refused:
        return admin.authorize_staff(
            cast.D2.public_key, cast.P.public_key, categories,
            not_before_us=t, not_after_us=t + DAY, at_us=at,
        )  # fmt: skip

    d = authorize(["lab"], t)
    assert isinstance(d, Refused) and d.reason is Reason.OUT_OF_SCOPE
    doc = copy.deepcopy(cast.world.state.policy.document)
    (rule,) = [r for r in doc["grant_rules"] if r["grantor"] == "institution"]
    rule["same_institution"] = False
    _with_policy(cast, doc)
    assert isinstance(authorize(["lab"], t + 1), Allowed)
    # "identity" is private: the rule cannot reach it even once it names it ...
    rule["categories"].append("identity")
    _with_policy(cast, doc)
    d = authorize(["identity"], t + 2)
    assert isinstance(d, Refused) and d.reason is Reason.GRANT_NOT_PERMITTED
    # ... until the document stops calling it private
    doc["categories"]["private"] = []
    _with_policy(cast, doc)
    assert isinstance(authorize(["identity"], t + 3), Allowed)


@pytest.mark.parametrize("flag", ["same_institution", "reaches_private"])
def test_grant_rule_flags_must_be_booleans(flag: str) -> None:
    doc = default_policy_document()
    doc["grant_rules"][0][flag] = 1
    with pytest.raises(PolicyError, match="booleans"):
        Policy.from_document(doc)
