"""Role-based access control as data: the policy document and the evaluator that reads it.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.3): Medical Chain uses RBAC — users map to roles, roles carry
permissions, roles have inheritance and constraints — and the permission rules are "smart
contracts" the health administration publishes on chain so they are transparent and hard to
tamper with. medbench therefore keeps *no* role logic in code: the rules are a plain document
(a dict of str / bytes / int / lists, encodable with :mod:`medbench.codec`) that is published as a
transaction, loaded with :meth:`Policy.from_bytes` and interpreted by the functions below.

The document's sections (:func:`default_policy_document` is the reading of the paper):

``roles``
    role -> ``{"inherits": [...]}`` (+ ``"region_depth"`` for authorities). A role has every
    permission of the roles it inherits (``doctor`` ⊑ ``medical_staff`` ⊑ ``staff``;
    ``health_admin_national`` ⊑ ``health_admin_provincial`` ⊑ ``health_admin_city`` ⊑
    ``health_authority``). Cycles are rejected when the document is loaded.
``regions``
    the region tree as paths (``cn`` > ``cn/zj`` > ``cn/zj/hz``).
``self_ops``
    role -> operations a subject of that role may do on *their own* data (patient: read, add,
    modify, delete, hide — §2.3.3).
``grantors``
    role -> grantor kind (``patient``, ``authority``, ``institution``): who may issue grants.
``grant_rules``
    list of ``{"grantor", "grantee", "ops", "categories", "same_institution"?,
    "reaches_private"?}``: which grantor
    kind may give which grantee role which operations on which categories. A grant only ever
    confers what a rule allows (patient -> medical staff: read/add/modify/delete, §2.2.2 — the
    seed puts *adding* under the grant window too, so a doctor needs a grant even to add;
    patient -> family: all five, §2.3.3; patient -> another person: read/add/modify/delete,
    §2.2.2 "doctors or others"; authority -> courts/police: read only, §1.5, §2.3.3;
    authority -> family for an incapacitated patient, §2.3.3; administrative staff -> medical staff
    of the same institution: read non-private categories, §2.3.3).
``categories``
    which record categories are private (the entity's identity fields) and which are not; a rule
    with ``"reaches_private": false`` never covers a private category, whatever it names, and
    ``"same_institution": true`` requires grantor and grantee to share an institution — both read
    by the evaluator, so publishing a changed document changes the decisions.
``delegation``
    authority role -> roles it may confer, always inside its own region (national -> provincial
    -> city; a city authority confers nothing).
``root_authorities``
    the national authorities' keys, fixed at genesis; every other authority must trace a chain of
    unrevoked on-chain delegations back to one of them.
``emergency``, ``countersign``, ``blacklist``
    who may use emergency access through the KMC; which roles' record-changing operations need an
    institution countersignature (§1.2); which roles are blacklisted after a refused attempt and
    after how many blacklist entries their requests are refused outright (§1.5).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medbench import codec
from medbench.access.grants import GRANT_OPS, GRANTOR_KINDS, GrantBook, GrantStatus
from medbench.access.request import ALL
from medbench.pki.drafts import TxDraft
from medbench.pki.subject import valid_region

MAX_ROLES = 256
MAX_DELEGATION_DEPTH = 8

ALL_DATA_OPS = ["read", "add", "modify", "delete", "hide"]
CARE_OPS = ["read", "add", "modify", "delete"]


class PolicyError(ValueError):
    """A policy document is malformed (unknown role, cycle, bad field...)."""


def default_policy_document(
    root_authorities: Sequence[Mapping[str, Any]] = (), pseudonym_issuers: Sequence[bytes] = ()
) -> dict[str, Any]:
    """The paper's rules (docs/medical-chain.md §1.5-§1.6) as a publishable document.

    ``root_authorities`` is a list of ``{"key": 32 bytes, "region": "cn"}`` for the national
    health authorities; ``pseudonym_issuers`` the raw keys of the CAs whose pseudonym
    certificates validators accept (:mod:`medbench.pki.pseudonym`; none: no pseudonyms).
    """
    return {
        "version": 1,
        "regions": ["cn", "cn/zj", "cn/zj/hz", "cn/zj/nb", "cn/gd", "cn/gd/gz", "cn/gd/sz"],
        "roles": {
            "health_authority": {"inherits": []},
            "health_admin_city": {"inherits": ["health_authority"], "region_depth": 3},
            "health_admin_provincial": {"inherits": ["health_admin_city"], "region_depth": 2},
            "health_admin_national": {"inherits": ["health_admin_provincial"], "region_depth": 1},
            "staff": {"inherits": []},
            "medical_staff": {"inherits": ["staff"]},
            "doctor": {"inherits": ["medical_staff"]},
            "nurse": {"inherits": ["medical_staff"]},
            "admin_staff": {"inherits": ["staff"]},
            "institution": {"inherits": []},
            "patient": {"inherits": []},
            "family": {"inherits": []},
            "judicial": {"inherits": []},
            "court": {"inherits": ["judicial"]},
            "police": {"inherits": ["judicial"]},
        },
        "self_ops": {"patient": ALL_DATA_OPS},
        "grantors": {
            "patient": "patient",
            "health_authority": "authority",
            "admin_staff": "institution",
        },
        "grant_rules": [
            {
                "grantor": "patient",
                "grantee": "medical_staff",
                "ops": CARE_OPS,
                "categories": [ALL],
            },
            {"grantor": "patient", "grantee": "family", "ops": ALL_DATA_OPS, "categories": [ALL]},
            {"grantor": "patient", "grantee": "patient", "ops": CARE_OPS, "categories": [ALL]},
            {"grantor": "authority", "grantee": "judicial", "ops": ["read"], "categories": [ALL]},
            {"grantor": "authority", "grantee": "family", "ops": ALL_DATA_OPS, "categories": [ALL]},
            {
                "grantor": "institution",
                "grantee": "medical_staff",
                "ops": ["read"],
                "categories": ["visit", "diagnosis", "lab", "imaging", "prescription"],
                "same_institution": True,
                "reaches_private": False,
            },
        ],
        "categories": {
            "private": ["identity"],
            "non_private": ["visit", "diagnosis", "lab", "imaging", "prescription"],
        },
        "delegation": {
            "health_admin_national": ["health_admin_provincial"],
            "health_admin_provincial": ["health_admin_city"],
            "health_admin_city": [],
        },
        "root_authorities": [
            {"key": r["key"], "role": "health_admin_national", "region": r["region"]}
            for r in root_authorities
        ],
        "pseudonym_issuers": list(pseudonym_issuers),
        "emergency": {"roles": ["health_authority"]},
        "countersign": {
            "roles": ["medical_staff"],
            "ops": ["add", "modify", "delete", "hide"],
            "institution_role": "institution",
        },
        "blacklist": {"roles": ["staff"], "refuse_after": 3},
    }


@dataclass(frozen=True, slots=True)
class GrantRule:
    """One ``grant_rules`` entry: what a grantor kind may give a grantee role.

    ``same_institution``: the grantor and the grantee must belong to the same institution (read
    when a grant is issued). ``reaches_private``: ``False`` keeps the rule off the categories the
    document lists as private (``categories.private``; a ``"*"`` request includes them).
    """

    grantor: str
    grantee: str
    ops: frozenset[str]
    categories: frozenset[str]
    same_institution: bool
    reaches_private: bool = True

    def allows_category(self, category: str) -> bool:
        """Whether this rule names ``category`` (a ``"*"`` request needs a ``"*"`` rule)."""
        return ALL in self.categories or (category != ALL and category in self.categories)


class AccessVerdict(enum.Enum):
    """The policy's answer for a data operation."""

    ALLOWED_SELF = "allowed-self"
    ALLOWED_GRANT = "allowed-grant"
    ROLE_NOT_PERMITTED = "role-not-permitted"
    NO_GRANT = "no-grant"
    GRANT_EXPIRED = "grant-expired"
    GRANT_REVOKED = "grant-revoked"
    GRANT_NOT_YET_VALID = "grant-not-yet-valid"

    @property
    def allowed(self) -> bool:
        """Whether the verdict lets the request through."""
        return self in (AccessVerdict.ALLOWED_SELF, AccessVerdict.ALLOWED_GRANT)


_STATUS_VERDICT = {
    GrantStatus.ACTIVE: AccessVerdict.ALLOWED_GRANT,
    GrantStatus.REVOKED: AccessVerdict.GRANT_REVOKED,
    GrantStatus.EXPIRED: AccessVerdict.GRANT_EXPIRED,
    GrantStatus.NOT_YET_VALID: AccessVerdict.GRANT_NOT_YET_VALID,
    GrantStatus.NONE: AccessVerdict.NO_GRANT,
}
_VERDICT_ORDER = (
    AccessVerdict.GRANT_REVOKED,
    AccessVerdict.GRANT_EXPIRED,
    AccessVerdict.GRANT_NOT_YET_VALID,
    AccessVerdict.NO_GRANT,
)


_RULE_FLAGS = {"same_institution": False, "reaches_private": True}
"""Optional boolean fields of a grant rule and their defaults."""


def _str_list(value: Any, what: str) -> list[str]:
    if type(value) is not list or not all(type(v) is str for v in value):
        raise PolicyError(f"{what} must be a list of strings")
    return list(value)


def _table(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    if type(value) is not dict:
        raise PolicyError(f"policy section {key!r} must be a dict")
    return value


@dataclass(frozen=True)
class Policy:
    """A loaded, checked policy document; every query method is a table lookup."""

    document: dict[str, Any]
    ancestors: dict[str, frozenset[str]] = field(repr=False)
    rules: tuple[GrantRule, ...] = field(repr=False)
    regions: frozenset[str] = field(repr=False)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Policy:
        """Check a document and precompute role closures; raises :class:`PolicyError`."""
        try:
            return cls._load(doc)
        except PolicyError:
            raise
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            # a shape the explicit checks above missed is still just a malformed document
            raise PolicyError(f"malformed policy: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _load(cls, doc: Mapping[str, Any]) -> Policy:
        if type(doc) is not dict or doc.get("version") != 1:
            raise PolicyError("policy document must be a dict with version 1")
        roles = _table(doc, "roles")
        if not roles or len(roles) > MAX_ROLES:
            raise PolicyError("policy must define between 1 and 256 roles")
        parents: dict[str, list[str]] = {}
        for role, spec in roles.items():
            if type(spec) is not dict:
                raise PolicyError(f"role {role!r} spec must be a dict")
            parents[role] = _str_list(spec.get("inherits", []), f"{role}.inherits")
            for p in parents[role]:
                if p not in roles:
                    raise PolicyError(f"role {role!r} inherits unknown role {p!r}")
            depth = spec.get("region_depth")
            if depth is not None and (type(depth) is not int or not 1 <= depth <= 16):
                raise PolicyError(f"role {role!r} has a bad region_depth")
        ancestors = _closures(parents)
        regions = frozenset(_str_list(doc.get("regions", []), "regions"))
        for reg in regions:
            if not valid_region(reg):
                raise PolicyError(f"malformed region {reg!r}")
            parent = reg.rsplit("/", 1)[0] if "/" in reg else None
            if parent is not None and parent not in regions:
                raise PolicyError(f"region {reg!r} has no parent in the tree")

        def known(role: str, where: str) -> str:
            if role not in roles:
                raise PolicyError(f"{where} names unknown role {role!r}")
            return role

        for role, ops in _table(doc, "self_ops").items():
            known(role, "self_ops")
            if not set(_str_list(ops, "self_ops")) <= GRANT_OPS:
                raise PolicyError("self_ops names an unknown operation")
        for role, kind in _table(doc, "grantors").items():
            known(role, "grantors")
            if type(kind) is not str or kind not in GRANTOR_KINDS:
                raise PolicyError(f"unknown grantor kind {kind!r}")
        raw_rules = doc.get("grant_rules")
        if type(raw_rules) is not list:
            raise PolicyError("grant_rules must be a list")
        rules = []
        for r in raw_rules:
            if (
                type(r) is not dict
                or type(r.get("grantor")) is not str
                or (r["grantor"] not in GRANTOR_KINDS)
            ):
                raise PolicyError("a grant rule needs a known grantor kind")
            ops = frozenset(_str_list(r.get("ops"), "grant_rules.ops"))
            if not ops or not ops <= GRANT_OPS:
                raise PolicyError("grant rule ops must be data operations")
            flags = {k: r.get(k, default) for k, default in _RULE_FLAGS.items()}
            if any(type(v) is not bool for v in flags.values()):
                raise PolicyError(f"grant rule flags {sorted(_RULE_FLAGS)} must be booleans")
            rules.append(
                GrantRule(
                    r["grantor"],
                    known(str(r.get("grantee")), "grant_rules"),
                    ops,
                    frozenset(_str_list(r.get("categories"), "grant_rules.categories")),
                    **flags,
                )
            )
        for role, targets in _table(doc, "delegation").items():
            known(role, "delegation")
            for t in _str_list(targets, "delegation"):
                known(t, "delegation")
                if roles[t].get("region_depth") is None:
                    raise PolicyError(f"delegable role {t!r} needs a region_depth")
        roots = doc.get("root_authorities")
        if type(roots) is not list:
            raise PolicyError("root_authorities must be a list")
        for root in roots:
            if (
                type(root) is not dict
                or type(root.get("key")) is not bytes
                or type(root.get("region")) is not str
            ):
                raise PolicyError("a root authority is {key, role, region}")
            known(str(root.get("role")), "root_authorities")
        issuers = doc.get("pseudonym_issuers", [])
        if type(issuers) is not list or not all(type(k) is bytes and len(k) == 32 for k in issuers):
            raise PolicyError("pseudonym_issuers must be a list of 32-byte keys")
        for section in ("emergency", "countersign", "blacklist"):
            for role in _str_list(_table(doc, section).get("roles"), f"{section}.roles"):
                known(role, section)
        _str_list(_table(doc, "countersign").get("ops", []), "countersign.ops")
        inst_role = _table(doc, "countersign").get("institution_role", "institution")
        if type(inst_role) is not str:
            raise PolicyError("countersign.institution_role must be a role name")
        for key, cats in _table(doc, "categories").items():
            _str_list(cats, f"categories.{key}")
        refuse_after = _table(doc, "blacklist").get("refuse_after")
        if type(refuse_after) is not int or refuse_after < 1:
            raise PolicyError("blacklist.refuse_after must be a positive int")
        return cls(dict(doc), ancestors, tuple(rules), regions)

    @classmethod
    def from_bytes(cls, data: bytes) -> Policy:
        """Load a policy published on chain (canonical codec bytes)."""
        try:
            doc = codec.decode(data, codec.Limits(max_bytes=1 << 20, max_depth=8))
        except codec.DecodeError as exc:
            raise PolicyError(f"policy does not decode: {exc}") from None
        return cls.from_document(doc)

    def to_bytes(self) -> bytes:
        """The canonical bytes to publish."""
        return codec.encode(self.document)

    # -- role lattice -------------------------------------------------------------------------
    def knows(self, role: str) -> bool:
        """Whether ``role`` is defined."""
        return role in self.ancestors

    def is_a(self, role: str, other: str) -> bool:
        """Whether ``role`` is ``other`` or inherits from it."""
        return other in self.ancestors.get(role, frozenset())

    def _any_is_a(self, role: str, roles: Iterable[str]) -> bool:
        return any(self.is_a(role, r) for r in roles)

    # -- data operations ----------------------------------------------------------------------
    def self_ops(self, role: str) -> frozenset[str]:
        """Operations ``role`` may do on its own data (inherited ones included)."""
        table = self.document["self_ops"]
        out: set[str] = set()
        for r in self.ancestors.get(role, ()):
            out.update(table.get(r, ()))
        return frozenset(out)

    def reaches(self, rule: GrantRule, category: str) -> bool:
        """Whether ``rule`` covers ``category``: named by it, and not private if it stops there."""
        return rule.allows_category(category) and (
            rule.reaches_private or not self.is_private(category)
        )

    def rules_for(self, role: str, op: str, category: str) -> list[GrantRule]:
        """Grant rules under which ``role`` could do ``op`` on ``category``."""
        return [
            r
            for r in self.rules
            if op in r.ops and self.is_a(role, r.grantee) and self.reaches(r, category)
        ]

    def grantor_kind(self, role: str) -> str | None:
        """The kind of grant a subject of ``role`` may issue, if any."""
        table = self.document["grantors"]
        for r in sorted(self.ancestors.get(role, ())):
            if r in table:
                return str(table[r])
        return None

    def issuable_rules(
        self, kind: str, grantee_role: str, ops: Iterable[str], categories: Iterable[str]
    ) -> list[GrantRule]:
        """The rules that let grantor ``kind`` give this scope to ``grantee_role``.

        The caller still checks each rule's constraints on the parties (``same_institution``).
        """
        ops, cats = frozenset(ops), frozenset(categories)
        return [
            r
            for r in self.rules
            if r.grantor == kind
            and self.is_a(grantee_role, r.grantee)
            and ops <= r.ops
            and all(self.reaches(r, c) for c in cats)
        ]

    def issuable_rule(
        self, kind: str, grantee_role: str, ops: Iterable[str], categories: Iterable[str]
    ) -> GrantRule | None:
        """The first of :meth:`issuable_rules`, if any."""
        rules = self.issuable_rules(kind, grantee_role, ops, categories)
        return rules[0] if rules else None

    def is_private(self, category: str) -> bool:
        """Whether ``category`` holds private identity fields (``"*"`` includes them)."""
        return category == ALL or category in self.document["categories"].get("private", [])

    # -- authorities --------------------------------------------------------------------------
    def region_known(self, region: str) -> bool:
        """Whether ``region`` is a node of the policy's region tree."""
        return region in self.regions

    def region_depth_of(self, role: str) -> int | None:
        """The tree depth an authority role governs (1 national, 2 provincial, 3 city)."""
        spec = self.document["roles"].get(role, {})
        depth = spec.get("region_depth")
        return depth if type(depth) is int else None

    def may_delegate(self, role: str, target_role: str) -> bool:
        """Whether an authority of ``role`` may confer ``target_role`` (exact role table)."""
        return target_role in self.document["delegation"].get(role, [])

    def is_root_authority(self, key: bytes, role: str, region: str) -> bool:
        """Whether ``key`` is a genesis national authority for ``role`` and ``region``."""
        return any(
            r["key"] == key and r["role"] == role and r["region"] == region
            for r in self.document["root_authorities"]
        )

    def is_pseudonym_issuer(self, key: bytes) -> bool:
        """Whether the CA with raw key ``key`` may certify pseudonyms (``pseudonym_issuers``)."""
        return key in self.document.get("pseudonym_issuers", ())

    def can_emergency(self, role: str) -> bool:
        """Whether ``role`` may use emergency access through the KMC."""
        return self._any_is_a(role, self.document["emergency"]["roles"])

    def is_authority(self, role: str) -> bool:
        """Whether ``role`` is a health-administration role (it governs a region depth)."""
        return self.region_depth_of(role) is not None

    # -- signatures and sanctions -------------------------------------------------------------
    def needs_countersign(self, role: str, op: str) -> bool:
        """Whether ``role`` doing ``op`` needs its institution's countersignature (§1.2)."""
        spec = self.document["countersign"]
        return op in spec.get("ops", []) and self._any_is_a(role, spec["roles"])

    @property
    def institution_role(self) -> str:
        """The role an institution's countersigning certificate must have."""
        return str(self.document["countersign"].get("institution_role", "institution"))

    def blacklistable(self, role: str) -> bool:
        """Whether a refused attempt by ``role`` produces a blacklist record (§1.5)."""
        return self._any_is_a(role, self.document["blacklist"]["roles"])

    @property
    def refuse_after(self) -> int:
        """Blacklist entries after which a subject's requests are refused outright."""
        return int(self.document["blacklist"]["refuse_after"])


def policy_draft(policy: Policy, at_us: int) -> TxDraft:
    """The transaction that publishes ``policy`` (signed by a root authority, §1.6)."""
    return TxDraft("add", {"type": "policy", "document": policy.to_bytes()}, at_us)


def _closures(parents: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
    """Every role's closure (itself and all it inherits from); raises :class:`PolicyError` on a
    cycle. One depth-first pass that computes each role's closure once, from its parents'; so a
    document whose inheritance has many paths (k diamonds in a row: 2^k paths) loads as fast as
    any other, where following every path took exponential time."""
    done: dict[str, frozenset[str]] = {}
    for root in parents:
        if root in done:
            continue
        on_path = {root}
        stack = [(root, iter(parents[root]))]
        while stack:
            role, todo = stack[-1]
            p = next(todo, None)
            if p is None:
                stack.pop()
                on_path.discard(role)
                done[role] = frozenset({role}.union(*(done[q] for q in parents[role])))
            elif p in on_path:
                raise PolicyError(f"role inheritance cycle through {p!r}")
            elif p not in done:
                on_path.add(p)
                stack.append((p, iter(parents[p])))
    return done


def decide_data_access(
    policy: Policy,
    grants: GrantBook,
    *,
    requester: bytes,
    role: str,
    patient: bytes,
    op: str,
    category: str,
    at_us: int,
) -> AccessVerdict:
    """The policy's verdict on a data operation (read/add/modify/delete/hide) at ``at_us``.

    Self-access first (a patient on their own data), then every grant rule that could cover the
    request, each evaluated over the chain's grants from that rule's grantor kind. A refusal
    reports the most telling reason across the rules.
    """
    if requester == patient and op in policy.self_ops(role):
        return AccessVerdict.ALLOWED_SELF
    rules = policy.rules_for(role, op, category)
    if not rules:
        return AccessVerdict.ROLE_NOT_PERMITTED
    seen = set()
    for rule in rules:
        status = grants.status(
            patient=patient,
            grantee=requester,
            op=op,
            category=category,
            at_us=at_us,
            grantor_kinds=frozenset({rule.grantor}),
        )
        verdict = _STATUS_VERDICT[status]
        if verdict.allowed:
            return verdict
        seen.add(verdict)
    for verdict in _VERDICT_ORDER:
        if verdict in seen:
            return verdict
    raise AssertionError(f"no verdict among {seen}")


# -- delegation of authority ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DelegationRecord:
    """An authority conferring an authority role over a region on a key (on chain)."""

    delegation_id: bytes
    delegator: bytes
    delegator_role: str
    delegator_region: str
    delegate: bytes
    role: str
    region: str
    not_after_us: int
    recorded_us: int


@dataclass
class DelegationBook:
    """On-chain delegations and their revocations, in chain order."""

    records: dict[bytes, DelegationRecord] = field(default_factory=dict)
    by_delegate: dict[bytes, list[DelegationRecord]] = field(default_factory=dict)
    revoked: dict[bytes, int] = field(default_factory=dict)

    def add(self, record: DelegationRecord) -> None:
        """Record a delegation (first record of an ID wins)."""
        if record.delegation_id in self.records:
            return
        self.records[record.delegation_id] = record
        self.by_delegate.setdefault(record.delegate, []).append(record)

    def rekey(self, old: bytes, new: bytes) -> None:
        """Key succession: delegations by or to ``old`` are by or to ``new`` from now on."""
        records = self.records
        self.records, self.by_delegate = {}, {}
        for rec in records.values():
            self.add(
                dataclasses.replace(
                    rec,
                    delegator=new if rec.delegator == old else rec.delegator,
                    delegate=new if rec.delegate == old else rec.delegate,
                )
            )

    def revoke(self, delegation_id: bytes, revoker: bytes, at_us: int) -> bool:
        """Revoke a delegation if ``revoker`` made it; returns whether it did."""
        rec = self.records.get(delegation_id)
        if rec is None or rec.delegator != revoker or delegation_id in self.revoked:
            return False
        self.revoked[delegation_id] = at_us
        return True


def authority_active(
    policy: Policy,
    delegations: DelegationBook,
    *,
    key: bytes,
    role: str,
    region: str,
    at_us: int,
    _depth: int = 0,
) -> bool:
    """Whether ``key`` holds authority ``role`` over ``region`` at ``at_us``.

    True for a genesis root authority; otherwise there must be an unexpired, unrevoked
    delegation recorded by ``at_us`` whose delegator was itself active at ``at_us``.
    """
    if policy.is_root_authority(key, role, region):
        return True
    if _depth >= MAX_DELEGATION_DEPTH:
        return False
    for rec in delegations.by_delegate.get(key, ()):
        if rec.role != role or rec.region != region or rec.recorded_us > at_us:
            continue
        if at_us >= rec.not_after_us:
            continue
        revoked = delegations.revoked.get(rec.delegation_id)
        if revoked is not None and revoked <= at_us:
            continue
        if authority_active(
            policy,
            delegations,
            key=rec.delegator,
            role=rec.delegator_role,
            region=rec.delegator_region,
            at_us=at_us,
            _depth=_depth + 1,
        ):
            return True
    return False
