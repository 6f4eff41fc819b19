"""The chain state the access rules read: identities, CRLs, grants, delegations, records, sanctions.

Theory of operation
-------------------
The validator must decide from *chain state* alone (docs/medical-chain.md §1.5: "checks the rules,
e.g. a patient cannot read another patient's records without a grant"). Until ``medbench.ledger``
and ``medbench.store`` land, :class:`ChainState` is that state, in memory, with the interface the
replica will drive:

* read side (used by :mod:`medbench.access.validator`): the policy, the trust anchors, the
  revocation registry, registered identities, grants, delegations, records, seen request IDs and
  nonces, blacklist counts;
* write side, called only for *committed* transactions, in commit order:
  :meth:`ChainState.register` (a ``register`` transaction carrying a certificate chain),
  :meth:`ChainState.publish_crl` (a ``revoke``/``crl`` draft), :meth:`ChainState.apply` (an
  accepted :class:`~medbench.access.request.AccessRequest` with its
  :class:`~medbench.access.decision.Allowed` decision) and :meth:`ChainState.record` (a blacklist
  or audit draft).

:class:`RecordStore` keeps the CRUD semantics of docs/medical-chain.md §1.3 without rewriting
history: an update adds a new version linked to the old one (``supersedes``), a delete marks the
record, a hide flag hides it from everyone but its patient; :meth:`RecordStore.history` returns
every version with its status, :meth:`RecordStore.current` the newest visible ones. (On chain the
patient-record link is sealed to the patient's key — §1.3 item 3; this store is a node's decrypted
working index.)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from cryptography import x509

from medbench.access.decision import Allowed
from medbench.access.grants import GrantBook, GrantRecord, RevokeRecord
from medbench.access.rbac import DelegationBook, DelegationRecord, Policy, PolicyError
from medbench.access.request import ALL, AccessRequest, Operation
from medbench.pki.certpath import RevocationRegistry, VerifiedIdentity, verify_chain
from medbench.pki.drafts import TxDraft
from medbench.pki.subject import SubjectInfo


class RecordStatus(enum.Enum):
    """What became of a record version."""

    CURRENT = "current"
    UPDATED = "updated"
    DELETED = "deleted"
    HIDDEN = "hidden"


@dataclass(frozen=True, slots=True)
class RecordVersion:
    """One version of a medical record; its ID is the ID of the transaction that added it."""

    record_id: bytes
    patient: bytes
    category: str
    content: bytes
    author: bytes
    recorded_us: int
    supersedes: bytes = b""
    reason: str = ""


@dataclass
class RecordStore:
    """Record versions with update links, deletion marks and hide flags (docs/medical-chain.md
    §1.3)."""

    versions: dict[bytes, RecordVersion] = field(default_factory=dict)
    by_patient: dict[bytes, list[bytes]] = field(default_factory=dict)
    superseded_by: dict[bytes, bytes] = field(default_factory=dict)
    deleted: dict[bytes, int] = field(default_factory=dict)
    hidden: set[bytes] = field(default_factory=set)

    def get(self, record_id: bytes) -> RecordVersion | None:
        """The version with this ID, if any."""
        return self.versions.get(record_id)

    def is_live(self, record_id: bytes) -> bool:
        """Whether the record exists, is the newest version and is not deleted."""
        return (
            record_id in self.versions
            and record_id not in self.superseded_by
            and record_id not in self.deleted
        )

    def add(self, version: RecordVersion) -> None:
        """Store a new record (or a new version, if ``version.supersedes`` is set)."""
        if version.record_id in self.versions:
            raise ValueError("record ID already used")
        self.versions[version.record_id] = version
        self.by_patient.setdefault(version.patient, []).append(version.record_id)
        if version.supersedes:
            self.superseded_by[version.supersedes] = version.record_id
            if version.supersedes in self.hidden:
                self.hidden.add(version.record_id)

    def delete(self, record_id: bytes, at_us: int) -> None:
        """Mark a record deleted; it stays in :meth:`history`."""
        self.deleted.setdefault(record_id, at_us)

    def hide(self, record_id: bytes, hidden: bool) -> None:
        """Hide a record from everyone but its patient (or show it again)."""
        if hidden:
            self.hidden.add(record_id)
        else:
            self.hidden.discard(record_id)

    def rekey(self, old: bytes, new: bytes) -> None:
        """Key succession: ``old``'s records are ``new``'s (authors keep who wrote them)."""
        moved = self.by_patient.pop(old, [])
        for rid in moved:
            self.versions[rid] = replace(self.versions[rid], patient=new)
        self.by_patient.setdefault(new, []).extend(moved)

    def status(self, record_id: bytes) -> RecordStatus:
        """The status of one version."""
        if record_id in self.deleted:
            return RecordStatus.DELETED
        if record_id in self.superseded_by:
            return RecordStatus.UPDATED
        if record_id in self.hidden:
            return RecordStatus.HIDDEN
        return RecordStatus.CURRENT

    def history(self, patient: bytes) -> list[tuple[RecordVersion, RecordStatus]]:
        """Every version of the patient's records, in chain order, with its status."""
        return [(self.versions[r], self.status(r)) for r in self.by_patient.get(patient, ())]

    def current(
        self, patient: bytes, category: str = ALL, *, include_hidden: bool = False
    ) -> list[RecordVersion]:
        """The newest, undeleted (and unless asked, unhidden) versions in ``category``."""
        out = []
        for rid in self.by_patient.get(patient, ()):
            st = self.status(rid)
            if st is RecordStatus.CURRENT or (include_hidden and st is RecordStatus.HIDDEN):
                v = self.versions[rid]
                if category == ALL or v.category == category:
                    out.append(v)
        return out


@dataclass
class ChainState:
    """In-memory chain state for the access rules (see the module docstring)."""

    policy: Policy
    anchors: tuple[x509.Certificate, ...]
    revocations: RevocationRegistry = field(default_factory=RevocationRegistry)
    identities: dict[bytes, SubjectInfo] = field(default_factory=dict)
    grants: GrantBook = field(default_factory=GrantBook)
    delegations: DelegationBook = field(default_factory=DelegationBook)
    records: RecordStore = field(default_factory=RecordStore)
    seen: set[bytes] = field(default_factory=set)
    nonces: set[tuple[bytes, bytes]] = field(default_factory=set)
    blacklist: dict[bytes, int] = field(default_factory=dict)
    blacklist_records: list[TxDraft] = field(default_factory=list)
    audit: list[TxDraft] = field(default_factory=list)
    emergency_releases: list[TxDraft] = field(default_factory=list)
    emergencies: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    successors: dict[bytes, bytes] = field(default_factory=dict)  # old key -> new key

    def is_authority(self, key: bytes) -> bool:
        """Whether ``key`` is registered with a health-authority role of the policy."""
        info = self.identities.get(key)
        return info is not None and self.policy.is_authority(info.role)

    # -- writes from committed transactions -----------------------------------------------------
    def register(self, chain: Sequence[bytes], at_us: int) -> VerifiedIdentity:
        """Commit a ``register`` transaction: verify the chain and remember the identity."""
        ident = verify_chain(chain, self.anchors, at_us, self.revocations)
        self.identities[ident.public_key] = ident.info
        return ident

    def register_draft(self, draft: TxDraft) -> VerifiedIdentity:
        """Commit a ``register``/``certificate`` draft (see ``certificate_draft``)."""
        if draft.kind != "register" or draft.type != "certificate":
            raise ValueError("not a certificate registration")
        chain = draft.content["chain"]
        if type(chain) is not list:
            raise ValueError("certificate chain must be a list")
        return self.register(tuple(chain), draft.timestamp_us)

    def succeed(self, old: bytes, chain: Sequence[bytes], at_us: int) -> VerifiedIdentity:
        """Commit a key succession: ``chain`` certifies ``old``'s identity under a new key.

        docs/medical-chain.md §1.6: after a compromise the subject gets a new key pair and
        certificate. The new certificate must name the same identity (identifying-field hash, role,
        institution, region) as ``old``'s; from then on records, grants, delegations and blacklist
        entries of ``old`` belong to the new key (:attr:`successors` keeps the link). Raises
        :class:`ValueError` (or :class:`~medbench.pki.certpath.CertificateError`) otherwise.
        """
        before = self.identities.get(old)
        if before is None or old in self.successors:
            raise ValueError("the old key is not a registered, unsucceeded identity")
        ident = verify_chain(chain, self.anchors, at_us, self.revocations)
        new, info = ident.public_key, ident.info
        if new in self.identities:
            raise ValueError("the new key is already registered")
        if (info.id_hash, info.role, info.institution, info.region) != (
            before.id_hash, before.role, before.institution, before.region,
        ):  # fmt: skip
            raise ValueError("the new certificate names another identity")
        self.identities[new] = info
        self.successors[old] = new
        self.records.rekey(old, new)
        self.grants.rekey(old, new)
        self.delegations.rekey(old, new)
        if old in self.blacklist:
            # a sanction follows the person, not the key: rotating does not launder it
            self.blacklist[new] = self.blacklist.get(new, 0) + self.blacklist[old]
        return ident

    def adopt_policy(self, draft: TxDraft, publisher: bytes) -> Policy:
        """Commit a policy publication signed by ``publisher``, a current root authority.

        The health administration publishes the rules (docs/medical-chain.md §1.6); the new document
        replaces the old one for every later request. Raises :class:`PermissionError` for any other
        publisher and :class:`~medbench.access.rbac.PolicyError` for a malformed document.
        """
        if draft.kind != "add" or draft.type != "policy":
            raise ValueError("not a policy publication")
        roots = self.policy.document["root_authorities"]
        if not any(r["key"] == publisher for r in roots):
            raise PermissionError("only a root health authority publishes the policy")
        document = draft.content["document"]
        if type(document) is not bytes:
            raise PolicyError("policy document must be canonical bytes")
        self.policy = Policy.from_bytes(document)
        return self.policy

    def publish_crl(self, draft: TxDraft) -> int:
        """Commit a CRL publication (see :func:`medbench.pki.ca.crl_draft`)."""
        if draft.kind != "revoke" or draft.type != "crl":
            raise ValueError("not a CRL publication")
        chain = tuple(draft.content["issuer_chain"])
        return self.revocations.publish(draft.content["crl"], chain, self.anchors)

    def record(self, draft: TxDraft) -> None:
        """Commit a blacklist, audit or KMC-release draft produced by the access layer."""
        if draft.type == "blacklist":
            subject = draft.content["subject"]
            self.blacklist[subject] = self.blacklist.get(subject, 0) + 1
            self.blacklist_records.append(draft)
        elif draft.type == "audit":
            self.audit.append(draft)
        elif draft.type == "kmc-emergency-release":
            self.emergency_releases.append(draft)
        else:
            raise ValueError(f"unknown record type {draft.type!r}")

    def apply(self, request: AccessRequest, decision: Allowed) -> None:
        """Commit an accepted request: its effects on grants, delegations and records."""
        rid, t, body = request.request_id, request.timestamp_us, request.body
        self.seen.add(rid)
        self.nonces.add((request.requester, request.nonce))
        op = request.operation
        if op is Operation.ADD:
            self.records.add(
                RecordVersion(
                    rid, request.patient, request.category, body["content"], request.requester, t
                )
            )
        elif op is Operation.MODIFY:
            old = self.records.versions[body["record"]]
            self.records.add(
                RecordVersion(
                    rid,
                    old.patient,
                    old.category,
                    body["content"],
                    request.requester,
                    t,
                    supersedes=old.record_id,
                    reason=body["reason"],
                )
            )
        elif op is Operation.DELETE:
            self.records.delete(body["record"], t)
        elif op is Operation.HIDE:
            self.records.hide(body["record"], body["hidden"])
        elif op is Operation.GRANT:
            assert decision.grantor_kind is not None, "an allowed grant has a grantor kind"
            self.grants.add_grant(
                GrantRecord(
                    grant_id=rid,
                    patient=request.patient,
                    grantor=request.requester,
                    grantor_kind=decision.grantor_kind,
                    grantee=body["grantee"],
                    ops=frozenset(body["ops"]),
                    categories=frozenset(body["categories"]),
                    not_before_us=body["not_before_us"],
                    not_after_us=body["not_after_us"],
                    recorded_us=t,
                )
            )
        elif op is Operation.REVOKE:
            target = body["grant"]
            if target in self.grants.by_id:
                self.grants.add_revoke(RevokeRecord(target, request.requester, t))
            else:
                self.delegations.revoke(target, request.requester, t)
        elif op is Operation.DELEGATE:
            self.delegations.add(
                DelegationRecord(
                    delegation_id=rid,
                    delegator=request.requester,
                    delegator_role=decision.role,
                    delegator_region=decision.region,
                    delegate=body["delegate"],
                    role=body["role"],
                    region=body["region"],
                    not_after_us=body["not_after_us"],
                    recorded_us=t,
                )
            )
        elif op is Operation.EMERGENCY:
            # the KMC releases keys only against an accepted emergency request (its justification)
            self.emergencies[rid] = (request.requester, request.patient)
        # READ changes nothing but the seen set; audit drafts are recorded through
        # :meth:`record` like any other transaction.
