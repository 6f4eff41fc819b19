"""``medbench.access.rbac.Policy.from_bytes``: the RBAC policy document published on chain.

Allowed: a policy, or :class:`~medbench.access.rbac.PolicyError`. A loaded policy is what every
validator then consults on every request, so it is exercised: every query method, for every
role and region the document names and a few it does not, and the access decision with an empty
grant book, may not raise; the policy must survive ``to_bytes`` and loading again.
"""

from __future__ import annotations

from fuzz.common import Harness, OneInput, expect
from medbench import codec
from medbench.access.grants import GrantBook
from medbench.access.rbac import Policy, PolicyError, decide_data_access, default_policy_document

_OPS = ("read", "add", "modify", "delete", "hide", "grant")
_CATEGORIES = ("*", "identity", "lab", "x")
PATIENT = bytes([1]) * 32


def _exercise(policy: Policy) -> None:
    doc = policy.document
    roles = [*[str(r) for r in doc["roles"]][:16], "", "no-such-role"]
    regions = [*sorted(policy.regions)[:4], "cn", "xx/yy"]
    book = GrantBook()
    for role in roles:
        policy.knows(role)
        policy.self_ops(role)
        policy.grantor_kind(role)
        policy.region_depth_of(role)
        policy.can_emergency(role)
        policy.is_authority(role)
        policy.blacklistable(role)
        for region in regions:
            policy.is_root_authority(bytes(32), role, region)
            policy.region_known(region)
        for other in roles[:4]:
            policy.is_a(role, other)
            policy.may_delegate(role, other)
            policy.issuable_rules("patient", other, ("read",), ("lab",))
        for op in _OPS:
            policy.needs_countersign(role, op)
            for cat in _CATEGORIES:
                policy.rules_for(role, op, cat)
                decide_data_access(
                    policy, book, requester=bytes(32), role=role, patient=PATIENT, op=op,
                    category=cat, at_us=5,
                )  # fmt: skip
    policy.institution_role  # noqa: B018 - a property that must not raise
    policy.refuse_after  # noqa: B018


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        policy = Policy.from_bytes(data)
        _exercise(policy)
        again = Policy.from_bytes(policy.to_bytes())
        expect(again.document == policy.document, "to_bytes then from_bytes changes the policy")

    return one_input


def seeds() -> list[bytes]:
    doc = default_policy_document([{"key": bytes(32), "region": "cn"}])
    small = {
        "version": 1,
        "regions": ["cn"],
        "roles": {"a": {"inherits": []}, "b": {"inherits": ["a"], "region_depth": 1}},
        "self_ops": {"a": ["read"]},
        "grantors": {"a": "patient"},
        "grant_rules": [
            {"grantor": "patient", "grantee": "b", "ops": ["read"], "categories": ["*"]}
        ],
        "categories": {"private": ["identity"]},
        "delegation": {"b": []},
        "root_authorities": [{"key": b"k", "role": "b", "region": "cn"}],
        "emergency": {"roles": []},
        "countersign": {"roles": ["a"], "ops": ["add"]},
        "blacklist": {"roles": [], "refuse_after": 2},
    }
    return [codec.encode(doc), codec.encode(small)]


HARNESS = Harness(
    name="policy",
    summary="access.rbac.Policy.from_bytes (RBAC policy documents)",
    allowed=(PolicyError,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
