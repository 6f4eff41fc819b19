"""Validator rules: what a replica checks before it accepts a request into PBFT.

Theory of operation
-------------------
docs/medical-chain.md §1.5: the validator verifies the transaction signatures, then checks the rules
("a patient cannot read another patient's records without a grant") before consensus; §1.6 puts the
CA/CRL check *before* the signature check; §1.2 requires a medical record to carry the
institution's countersignature; §1.5 refuses unauthorized or expired attempts by a doctor AND
blacklists the doctor; §1.3 records every query (audit trail); §1.6 lets a health authority
obtain a key from the KMC in an emergency, recorded as a query.

:class:`Validator` runs a list of pluggable :class:`Rule` objects in order, cheapest first, and
stops at the first refusal:

0. :class:`EnvelopeRule` — a sealed request (:mod:`medbench.crypto.envelope`) opens with the
   validator's consortium access key and holds exactly the fields it is judged on;
1. :class:`ReplayRule` — request ID or (requester, nonce) already on chain;
2. :class:`CertificateRule` — every signer's chain verifies as of the request's consensus time,
   including the CRLs on chain; the first signer is the requester, or a pseudonym of the
   requester (:mod:`medbench.pki.pseudonym`: its certificate's sealed link, opened with the
   access key, names the requester, whose own chain — carried in the envelope — verifies too);
   from then on every rule sees the requester, never the pseudonym;
3. :class:`SignatureRule` — every signature verifies over the request ID;
4. :class:`CountersignatureRule` — staff record changes carry their institution's signature;
5. :class:`BlacklistRule` — a subject with ``refuse_after`` blacklist entries is refused;
6. :class:`PermissionRule` — the RBAC policy, grants and delegations (a table of per-operation
   handlers, not an if-ladder), and who may see permissions and the audit trail: a ``read``
   whose category is a visibility scope (:data:`~medbench.access.request.VISIBILITY_SCOPES`,
   docs/medical-chain.md §1.6 "Who sees the permissions") is judged by
   :meth:`PermissionRule._visibility`, never by grants — a patient sees her own Consents and
   audit trail, anyone the Consents of a patient that name them, an active authority everything
   (the blacklist included); anyone else is refused ``not-permitted``. Such a refusal is audited
   like every query but blacklists nobody: it reveals no record, and a gateway asks on its
   users' behalf whenever they list Consents. Claiming an authority's view (``*:all``) without
   being one is ``not-authority``, an attempt beyond one's rights that blacklists staff (§1.5).

``check(request, state)`` is pure: it reads the state and never changes it (the replica applies
accepted requests and the produced drafts after commit, see :mod:`medbench.access.state`). The
replica's duty: check a request when it arrives (to refuse early) and check it *again* at
execution, against the state after every earlier committed request, right before
:meth:`~medbench.access.state.ChainState.apply` — two requests of one batch may conflict (the same
record modified twice, a grant revoked by the request before). Its
answer is :class:`Allowed` or :class:`Refused` with a :class:`Reason`. Alongside, it builds the
records the caller must submit as transactions: an ``audit`` draft for every query (READ or
EMERGENCY, allowed or refused) and for every refused attempt to act beyond one's rights (an
authorization reason, identity and signature verified), and a ``blacklist`` draft when a
subject whose role the policy blacklists (staff) was refused for an authorization reason
*after* its identity and signature verified (a forged request is never blamed on the key it
names).

Privacy of the records: for a sealed request the drafts name the patient (and, for the audit, the
requester and category) only inside a box sealed to the access key
(:func:`medbench.crypto.envelope.seal_record`, the same bytes on every replica); the clear part is
the request ID, the operation, the outcome, the signer's key (what the request itself shows) and,
for a blacklist entry, the sanctioned staff member, who is accountable by name.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from medbench.access.decision import Allowed, Decision, Reason, Refused
from medbench.access.grants import GRANT_OPS
from medbench.access.rbac import AccessVerdict, authority_active, decide_data_access
from medbench.access.request import (
    ALL,
    AUDIT_OWN,
    CONSENT_GRANTEE,
    CONSENT_OWN,
    ENVELOPE_FIELDS,
    VISIBILITY_SCOPES,
    AccessRequest,
    Operation,
    RequestError,
    from_transaction_fields,
    is_visibility,
    sealed_aad,
)
from medbench.access.state import ChainState
from medbench.crypto.envelope import EnvelopeError, open_envelope, seal_record
from medbench.crypto.sealing import EncryptionKey
from medbench.pki.ca import to_us
from medbench.pki.certpath import CertificateError, CertReason, VerifiedIdentity, verify_chain
from medbench.pki.drafts import TxDraft
from medbench.pki.pseudonym import (
    MAX_LIFETIME_US,
    PSEUDONYM_ROLE,
    PSEUDONYMOUS_ROLES,
    PseudonymError,
    read_link,
)
from medbench.pki.subject import region_depth, region_within

AUTHORIZATION_REASONS = frozenset(
    {
        Reason.ROLE_NOT_PERMITTED,
        Reason.NO_GRANT,
        Reason.GRANT_EXPIRED,
        Reason.GRANT_REVOKED,
        Reason.GRANT_NOT_YET_VALID,
        Reason.GRANT_NOT_PERMITTED,
        Reason.NOT_GRANTOR,
        Reason.NOT_AUTHORITY,
        Reason.OUT_OF_SCOPE,
        Reason.DELEGATION_NOT_PERMITTED,
        Reason.RECORD_HIDDEN,
    }
)
"""Refusals that mean "you may not do this" — the ones that blacklist staff (§1.5)."""

QUERY_OPS = frozenset({Operation.READ, Operation.EMERGENCY})

_VERDICT_REASON = {
    AccessVerdict.ROLE_NOT_PERMITTED: Reason.ROLE_NOT_PERMITTED,
    AccessVerdict.NO_GRANT: Reason.NO_GRANT,
    AccessVerdict.GRANT_EXPIRED: Reason.GRANT_EXPIRED,
    AccessVerdict.GRANT_REVOKED: Reason.GRANT_REVOKED,
    AccessVerdict.GRANT_NOT_YET_VALID: Reason.GRANT_NOT_YET_VALID,
}

_CERT_REASON = {
    CertReason.EXPIRED: Reason.CERT_EXPIRED,
    CertReason.NOT_YET_VALID: Reason.CERT_EXPIRED,
    CertReason.REVOKED: Reason.CERT_REVOKED,
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a rule returns to stop the pipeline."""

    reason: Reason
    detail: str = ""


@dataclass
class Context:
    """What the rules learn about a request as they run (verified identities, grant kind)."""

    request: AccessRequest
    state: ChainState
    access_key: EncryptionKey | None = None
    identity: VerifiedIdentity | None = None
    pseudonym: VerifiedIdentity | None = None
    signers: list[VerifiedIdentity] = field(default_factory=list)
    signature_ok: bool = False
    grantor_kind: str | None = None
    verdict: AccessVerdict | None = None


class Rule(Protocol):
    """One pluggable check; returns ``None`` to pass the request on."""

    name: str

    def check(self, ctx: Context) -> Refusal | None:
        """Inspect ``ctx`` (and record findings in it); refuse or pass."""
        ...


MEMO_SIZE = 4096
"""Pure checks (an envelope opened, a signature verified) a rule remembers: a replica judges each
request twice, at admission and at execution, and the second time costs no cryptography."""


class EnvelopeRule:
    """A sealed request opens with the access key and holds exactly the fields it carries."""

    name = "envelope"

    def __init__(self) -> None:
        # opening is a pure function of (key, box, associated data): remembered per box
        self._open = functools.lru_cache(maxsize=MEMO_SIZE)(self._open_uncached)

    @staticmethod
    def _open_uncached(
        key: EncryptionKey | None, box: bytes, aad: bytes
    ) -> dict[str, Any] | EnvelopeError:
        try:
            return open_envelope(key, box, aad)
        except EnvelopeError as exc:
            return exc

    def check(self, ctx: Context) -> Refusal | None:
        """Open the envelope (all replicas get the same dict) and compare it with the request."""
        req = ctx.request
        if not req.sealed:
            return None
        aad = sealed_aad(req.kind, req.operation, req.signer, req.nonce)
        fields = self._open(ctx.access_key, req.envelope, aad)
        if isinstance(fields, EnvelopeError):
            return Refusal(Reason.SEALED_ENVELOPE, str(fields))
        first_chain = req.signatures[0].cert_chain if req.signatures else ()
        expect = {
            "requester": req.requester,
            "patient": req.patient,
            "category": req.category,
            "body": req.body,
            "signer_chain": list(first_chain) if req.requester != req.signer else [],
            "principal_chain": list(req.principal_chain),
        }
        if set(fields) != ENVELOPE_FIELDS or fields != expect:
            return Refusal(Reason.SEALED_ENVELOPE, "the envelope holds other fields")
        return None


class ReplayRule:
    """A request ID, or a requester's nonce, may be accepted once."""

    name = "replay"

    def check(self, ctx: Context) -> Refusal | None:
        """Refuse a request whose ID or (requester, nonce) is already on chain."""
        req = ctx.request
        if req.request_id in ctx.state.seen:
            return Refusal(Reason.REPLAYED, "request ID already on chain")
        if (req.requester, req.nonce) in ctx.state.nonces:
            return Refusal(Reason.REPLAYED, "nonce already used by this requester")
        return None


class CertificateRule:
    """Every signer's certificate chain verifies (CA, path, region, time, CRL) before signatures."""

    name = "certificate"

    def check(self, ctx: Context) -> Refusal | None:
        """Verify all chains as of the consensus time; the first signer must be the requester."""
        req = ctx.request
        if not req.signatures:
            return Refusal(Reason.MISSING_SIGNATURE, "unsigned request")
        if req.signatures[0].public_key != req.signer_key:
            return Refusal(Reason.IDENTITY_MISMATCH, "first signer is not the requester")
        if len({s.public_key for s in req.signatures}) != len(req.signatures):
            return Refusal(Reason.MALFORMED, "a key signs twice")
        for k, sig in enumerate(req.signatures):
            try:
                ident = verify_chain(
                    sig.cert_chain, ctx.state.anchors, req.timestamp_us, ctx.state.revocations
                )
            except CertificateError as exc:
                return Refusal(_CERT_REASON.get(exc.reason, Reason.CERT_INVALID), str(exc))
            if ident.public_key != sig.public_key:
                return Refusal(Reason.IDENTITY_MISMATCH, "certificate is for another key")
            if ident.info.role == PSEUDONYM_ROLE and k == 0:
                ctx.signers.append(ident)
                continue  # resolved below, to the requester it stands for
            if not ctx.state.policy.knows(ident.info.role):
                return Refusal(Reason.UNKNOWN_ROLE, ident.info.role)
            ctx.signers.append(ident)
        first = ctx.signers[0]
        if first.info.role == PSEUDONYM_ROLE:
            return self._resolve(ctx, first)
        if first.public_key != req.requester:
            return Refusal(Reason.IDENTITY_MISMATCH, "a signer other than the requester")
        ctx.identity = first
        return None

    @staticmethod
    def _resolve(ctx: Context, pseudonym: VerifiedIdentity) -> Refusal | None:
        """The requester behind a pseudonym: its sealed link, then the requester's own chain."""
        req, state = ctx.request, ctx.state
        if not req.sealed or ctx.access_key is None:
            return Refusal(Reason.PSEUDONYM_INVALID, "a pseudonym signs sealed requests only")
        if not state.policy.is_pseudonym_issuer(pseudonym.issuer_key):
            # any consortium CA can sign a certificate with the pseudonym role; only the
            # consortium's pseudonym issuer vouches that it stands for the sealed holder
            # (defect 1 of issue 13: a city CA minted pseudonyms for any patient)
            return Refusal(Reason.PSEUDONYM_INVALID, "pseudonym not issued by the pseudonym CA")
        cert = pseudonym.cert
        lifetime = to_us(cert.not_valid_after_utc) - to_us(cert.not_valid_before_utc)
        if lifetime > MAX_LIFETIME_US:
            return Refusal(Reason.PSEUDONYM_INVALID, "a pseudonym lives at most one day")
        try:
            link = read_link(cert, ctx.access_key)
        except PseudonymError as exc:
            return Refusal(Reason.PSEUDONYM_INVALID, str(exc))
        if link.principal != req.requester:
            return Refusal(Reason.PSEUDONYM_INVALID, "the pseudonym stands for someone else")
        try:
            principal = verify_chain(
                req.principal_chain, state.anchors, req.timestamp_us, state.revocations
            )
        except CertificateError as exc:
            return Refusal(_CERT_REASON.get(exc.reason, Reason.CERT_INVALID), str(exc))
        if principal.public_key != req.requester or principal.info.id_hash != link.id_hash:
            return Refusal(Reason.IDENTITY_MISMATCH, "principal chain is not the pseudonym's")
        if principal.info.role not in PSEUDONYMOUS_ROLES:
            return Refusal(Reason.PSEUDONYM_INVALID, f"a {principal.info.role} signs in clear")
        if not state.policy.knows(principal.info.role):
            return Refusal(Reason.UNKNOWN_ROLE, principal.info.role)
        if req.requester not in state.identities:
            return Refusal(Reason.UNKNOWN_SUBJECT, "the pseudonym's holder is not registered")
        ctx.pseudonym, ctx.identity = pseudonym, principal
        return None


class SignatureRule:
    """Every creator's Ed25519 signature verifies over the request ID."""

    name = "signature"

    def __init__(self) -> None:
        # a signature's validity is a pure function of (key, signature, message): remembered
        self._valid = functools.lru_cache(maxsize=MEMO_SIZE)(self._valid_uncached)

    @staticmethod
    def _valid_uncached(public_key: bytes, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def check(self, ctx: Context) -> Refusal | None:
        """Verify each signature."""
        rid = ctx.request.request_id
        for sig in ctx.request.signatures:
            if not self._valid(sig.public_key, sig.signature, rid):
                return Refusal(Reason.BAD_SIGNATURE, f"signature of {sig.public_key[:4].hex()}")
        ctx.signature_ok = True
        return None


class CountersignatureRule:
    """A staff member of an institution changes records only with the institution's signature."""

    name = "countersignature"

    def check(self, ctx: Context) -> Refusal | None:
        """Require a co-signer of the institution role and the same institution (§1.2)."""
        assert ctx.identity is not None, "runs after CertificateRule"
        policy, info = ctx.state.policy, ctx.identity.info
        if not info.institution or not policy.needs_countersign(
            info.role, ctx.request.operation.value
        ):
            return None  # an independent licensed worker signs alone (§1.2)
        for other in ctx.signers[1:]:
            if (
                policy.is_a(other.info.role, policy.institution_role)
                and other.info.institution == info.institution
            ):
                return None
        return Refusal(Reason.MISSING_COUNTERSIGNATURE, f"needs {info.institution!r}")


class BlacklistRule:
    """A subject blacklisted ``refuse_after`` times is refused outright."""

    name = "blacklist"

    def check(self, ctx: Context) -> Refusal | None:
        """Refuse a subject with too many blacklist entries."""
        count = ctx.state.blacklist.get(ctx.request.requester, 0)
        if count >= ctx.state.policy.refuse_after:
            return Refusal(Reason.BLACKLISTED, f"{count} blacklist entries")
        return None


_BODY: dict[Operation, dict[str, type]] = {
    Operation.READ: {"history": bool},
    Operation.ADD: {"content": bytes},
    Operation.MODIFY: {"record": bytes, "content": bytes, "reason": str},
    Operation.DELETE: {"record": bytes},
    Operation.HIDE: {"record": bytes, "hidden": bool},
    Operation.GRANT: {
        "grantee": bytes,
        "ops": list,
        "categories": list,
        "not_before_us": int,
        "not_after_us": int,
    },
    Operation.REVOKE: {"grant": bytes},
    Operation.DELEGATE: {"delegate": bytes, "role": str, "region": str, "not_after_us": int},
    Operation.EMERGENCY: {"reason": str},
}


def _body_ok(op: Operation, body: dict[str, Any]) -> bool:
    schema = _BODY[op]
    return set(body) == set(schema) and all(type(body[k]) is t for k, t in schema.items())


class PermissionRule:
    """RBAC policy + grants + delegations, one handler per operation."""

    name = "permission"

    def __init__(self) -> None:
        self.handlers: dict[Operation, Callable[[Context], Refusal | None]] = {
            Operation.READ: self._read,
            Operation.ADD: self._data,
            Operation.MODIFY: self._data,
            Operation.DELETE: self._data,
            Operation.HIDE: self._data,
            Operation.GRANT: self._grant,
            Operation.REVOKE: self._revoke,
            Operation.DELEGATE: self._delegate,
            Operation.EMERGENCY: self._emergency,
        }

    def check(self, ctx: Context) -> Refusal | None:
        """Validate the body shape, then dispatch on the operation."""
        req = ctx.request
        if not _body_ok(req.operation, req.body):
            return Refusal(Reason.INVALID_BODY, f"body does not fit {req.operation.value}")
        if is_visibility(req.category) and req.operation is not Operation.READ:
            # the reserved namespace names what a query may see, never a record (§1.6)
            return Refusal(Reason.INVALID_BODY, f"{req.category!r} is not a record category")
        if req.operation is Operation.GRANT and any(
            type(c) is str and is_visibility(c) for c in req.body["categories"]
        ):
            return Refusal(Reason.INVALID_BODY, "a grant cannot confer a visibility scope")
        return self.handlers[req.operation](ctx)

    def _read(self, ctx: Context) -> Refusal | None:
        if is_visibility(ctx.request.category):
            return self._visibility(ctx)
        return self._data(ctx)

    def _visibility(self, ctx: Context) -> Refusal | None:
        """Who sees Consents and the audit trail (docs/medical-chain.md §1.6, "Who sees the
        permissions"): decided here, on chain, so no gateway has a say of its own."""
        req, state = ctx.request, ctx.state
        assert ctx.identity is not None
        scope = req.category
        if scope not in VISIBILITY_SCOPES:
            return Refusal(Reason.INVALID_BODY, f"unknown visibility scope {scope!r}")
        if req.body["history"]:
            return Refusal(Reason.INVALID_BODY, "a visibility query has no past versions")
        if req.patient:
            refusal = self._patient(ctx)
            if refusal:
                return refusal
        if scope.endswith(":all"):
            return _require_authority(ctx)
        if scope in (CONSENT_OWN, AUDIT_OWN):
            if req.patient and req.patient != req.requester:
                return Refusal(Reason.NOT_PERMITTED, "another patient's consents and audit trail")
            if scope == CONSENT_OWN and not state.policy.is_a(ctx.identity.info.role, "patient"):
                return Refusal(Reason.NOT_PERMITTED, "only a patient has consents of her own")
            return None
        assert scope == CONSENT_GRANTEE
        if not req.patient:
            return Refusal(Reason.INVALID_BODY, "consent:grantee names the patient")
        # a Consent stays visible to its actor after it expires or is revoked: any record counts
        if not state.grants.by_pair.get((req.patient, req.requester)):
            return Refusal(Reason.NOT_PERMITTED, "no consent of this patient names the requester")
        return None

    @staticmethod
    def _patient(ctx: Context) -> Refusal | None:
        info = ctx.state.identities.get(ctx.request.patient)
        if info is None or not ctx.state.policy.is_a(info.role, "patient"):
            return Refusal(Reason.UNKNOWN_SUBJECT, "target is not a registered patient")
        if ctx.request.patient in ctx.state.successors:
            # after a key rotation the patient's data lives under the new key (not a misdeed)
            return Refusal(Reason.UNKNOWN_SUBJECT, "the patient's key has a successor")
        return None

    def _data(self, ctx: Context) -> Refusal | None:
        req, state = ctx.request, ctx.state
        assert ctx.identity is not None
        refusal = self._patient(ctx)
        if refusal:
            return refusal
        category = req.category
        if req.operation in (Operation.MODIFY, Operation.DELETE, Operation.HIDE):
            rec = state.records.get(req.body["record"])
            if (
                rec is None
                or rec.patient != req.patient
                or not state.records.is_live(rec.record_id)
            ):
                return Refusal(Reason.UNKNOWN_RECORD, "no such live record of this patient")
            if category != rec.category:
                return Refusal(Reason.INVALID_BODY, "category differs from the record's")
            if rec.record_id in state.records.hidden and req.requester != req.patient:
                # hidden from everyone but its patient (§1.5): no grant reaches it
                return Refusal(Reason.RECORD_HIDDEN, "only the patient acts on a hidden record")
        elif req.operation is Operation.ADD and category == ALL:
            return Refusal(Reason.INVALID_BODY, "a new record needs a concrete category")
        verdict = decide_data_access(
            state.policy,
            state.grants,
            requester=req.requester,
            role=ctx.identity.info.role,
            patient=req.patient,
            op=req.operation.value,
            category=category,
            at_us=req.timestamp_us,
        )
        ctx.verdict = verdict
        if not verdict.allowed:
            return Refusal(_VERDICT_REASON[verdict], f"{req.operation.value} on {category}")
        if (
            req.operation is Operation.READ
            and req.body["history"]
            and verdict is not AccessVerdict.ALLOWED_SELF
        ):
            return Refusal(Reason.ROLE_NOT_PERMITTED, "only the patient reads past versions")
        return None

    def _grant(self, ctx: Context) -> Refusal | None:
        req, state, policy = ctx.request, ctx.state, ctx.state.policy
        assert ctx.identity is not None
        info, body = ctx.identity.info, req.body
        ops, cats = body["ops"], body["categories"]
        if (
            not ops
            or not all(type(o) is str and o in GRANT_OPS for o in ops)
            or not cats
            or not all(type(c) is str and 0 < len(c) <= 64 for c in cats)
            or body["not_after_us"] <= body["not_before_us"]
            or len(ops) != len(set(ops))
            or len(cats) != len(set(cats))
        ):
            return Refusal(Reason.INVALID_BODY, "grant scope or window is malformed")
        refusal = self._patient(ctx)
        if refusal:
            return refusal
        grantee = state.identities.get(body["grantee"])
        if grantee is None:
            return Refusal(Reason.UNKNOWN_SUBJECT, "grantee is not registered")
        kind = policy.grantor_kind(info.role)
        if kind is None:
            return Refusal(Reason.ROLE_NOT_PERMITTED, f"{info.role} cannot grant")
        scope = _GRANTOR_SCOPE[kind](ctx, grantee.institution)
        if scope:
            return scope
        rules = policy.issuable_rules(kind, grantee.role, ops, cats)
        if not rules:
            return Refusal(
                Reason.GRANT_NOT_PERMITTED, f"{kind} cannot give {grantee.role} {ops} on {cats}"
            )
        own = info.institution
        if all(r.same_institution and (not own or grantee.institution != own) for r in rules):
            # the document's constraint, not code: every rule that fits asks for one institution
            return Refusal(
                Reason.OUT_OF_SCOPE, f"{kind} grants stay inside {own or 'an'} institution"
            )
        ctx.grantor_kind = kind
        return None

    def _revoke(self, ctx: Context) -> Refusal | None:
        req, state = ctx.request, ctx.state
        target = req.body["grant"]
        grant = state.grants.by_id.get(target)
        if grant is not None:
            if grant.grantor != req.requester:
                return Refusal(Reason.NOT_GRANTOR, "only the grantor revokes a grant")
            if grant.patient != req.patient:
                return Refusal(Reason.INVALID_BODY, "grant is for another patient")
            return None
        deleg = state.delegations.records.get(target)
        if deleg is not None:
            if deleg.delegator != req.requester:
                return Refusal(Reason.NOT_GRANTOR, "only the delegator revokes a delegation")
            return None
        return Refusal(Reason.UNKNOWN_RECORD, "no such grant or delegation")

    def _delegate(self, ctx: Context) -> Refusal | None:
        req, policy = ctx.request, ctx.state.policy
        assert ctx.identity is not None
        info, body = ctx.identity.info, req.body
        refusal = _require_authority(ctx)
        if refusal:
            return refusal
        if not policy.may_delegate(info.role, body["role"]):
            return Refusal(
                Reason.DELEGATION_NOT_PERMITTED, f"{info.role} cannot confer {body['role']}"
            )
        region = body["region"]
        if (
            not policy.region_known(region)
            or not region_within(region, info.region)
            or region == info.region
            or region_depth(region) != policy.region_depth_of(body["role"])
        ):
            return Refusal(Reason.OUT_OF_SCOPE, f"{region!r} is not below {info.region!r}")
        if body["not_after_us"] <= req.timestamp_us:
            return Refusal(Reason.INVALID_BODY, "delegation already expired")
        delegate = ctx.state.identities.get(body["delegate"])
        if delegate is None or delegate.role != body["role"] or delegate.region != region:
            return Refusal(Reason.UNKNOWN_SUBJECT, "delegate's certificate does not match")
        return None

    def _emergency(self, ctx: Context) -> Refusal | None:
        assert ctx.identity is not None
        info = ctx.identity.info
        if not ctx.state.policy.can_emergency(info.role):
            return Refusal(Reason.ROLE_NOT_PERMITTED, f"{info.role} has no emergency access")
        refusal = _require_authority(ctx) or self._patient(ctx)
        if refusal:
            return refusal
        patient = ctx.state.identities[ctx.request.patient]
        if not region_within(patient.region, info.region):
            return Refusal(Reason.OUT_OF_SCOPE, "patient outside the authority's region")
        return None


def _require_authority(ctx: Context) -> Refusal | None:
    """Refuse unless the requester holds an active (root or delegated) authority role."""
    assert ctx.identity is not None
    info = ctx.identity.info
    policy = ctx.state.policy
    if not policy.is_authority(info.role) or not authority_active(
        policy,
        ctx.state.delegations,
        key=ctx.request.requester,
        role=info.role,
        region=info.region,
        at_us=ctx.request.timestamp_us,
    ):
        return Refusal(Reason.NOT_AUTHORITY, f"{info.role} holds no active authority")
    return None


def _scope_patient(ctx: Context, grantee_institution: str) -> Refusal | None:
    if ctx.request.requester != ctx.request.patient:
        return Refusal(Reason.NOT_GRANTOR, "a patient grants access to their own data only")
    return None


def _scope_authority(ctx: Context, grantee_institution: str) -> Refusal | None:
    refusal = _require_authority(ctx)
    if refusal:
        return refusal
    assert ctx.identity is not None
    patient = ctx.state.identities[ctx.request.patient]
    if not region_within(patient.region, ctx.identity.info.region):
        return Refusal(Reason.OUT_OF_SCOPE, "patient outside the authority's region")
    return None


def _scope_institution(ctx: Context, grantee_institution: str) -> Refusal | None:
    # which institution may be authorized is the grant rule's ``same_institution`` (data)
    return None


_GRANTOR_SCOPE: dict[str, Callable[[Context, str], Refusal | None]] = {
    "patient": _scope_patient,
    "authority": _scope_authority,
    "institution": _scope_institution,
}


def default_rules() -> list[Rule]:
    """The rule pipeline in the order of the module docstring."""
    return [
        EnvelopeRule(),
        ReplayRule(),
        CertificateRule(),
        SignatureRule(),
        CountersignatureRule(),
        BlacklistRule(),
        PermissionRule(),
    ]


class Validator:
    """Runs the rules and builds the blacklist and audit records; counts refusals by reason."""

    def __init__(
        self, rules: Sequence[Rule] | None = None, *, access_key: EncryptionKey | None = None
    ) -> None:
        """``access_key`` is the consortium access key (opens sealed requests and seals the
        patient fields of the records drafted for them)."""
        self.rules: list[Rule] = list(default_rules() if rules is None else rules)
        self.access_key = access_key
        self.refusals: Counter[Reason] = Counter()
        self.accepted = 0

    def check(self, request: AccessRequest, state: ChainState) -> Decision:
        """Judge ``request`` against ``state`` (pure with respect to ``state``)."""
        ctx = Context(request, state, self.access_key)
        for rule in self.rules:
            refusal = rule.check(ctx)
            if refusal is not None:
                self.refusals[refusal.reason] += 1
                return self._refused(ctx, refusal)
        self.accepted += 1
        assert ctx.identity is not None, "the certificate rule must be in the pipeline"
        info = ctx.identity.info
        return Allowed(
            request.request_id,
            info.role,
            info.region,
            info.institution,
            grantor_kind=ctx.grantor_kind,
            verdict=ctx.verdict,
            audit=(
                _audit(request, "allowed", self.access_key)
                if request.operation in QUERY_OPS
                else None
            ),
        )

    def check_transaction(
        self,
        state: ChainState,
        kind: str,
        content: Any,
        timestamp_us: int,
        public_keys: Sequence[bytes],
        signatures: Sequence[bytes],
        cert_chains: Sequence[tuple[bytes, ...]],
    ) -> Decision:
        """Map a ledger transaction's fields onto a request and judge it; never raises."""
        try:
            request = from_transaction_fields(
                kind, content, timestamp_us, public_keys, signatures, cert_chains,
                access_key=self.access_key,
            )  # fmt: skip
        except EnvelopeError as exc:
            self.refusals[Reason.SEALED_ENVELOPE] += 1
            return Refused(Reason.SEALED_ENVELOPE, str(exc))
        except RequestError as exc:
            self.refusals[Reason.MALFORMED] += 1
            return Refused(Reason.MALFORMED, str(exc))
        return self.check(request, state)

    def _refused(self, ctx: Context, refusal: Refusal) -> Refused:
        req = ctx.request
        blacklist = None
        if (
            refusal.reason in AUTHORIZATION_REASONS
            and ctx.signature_ok
            and ctx.identity is not None
            and ctx.state.policy.blacklistable(ctx.identity.info.role)
        ):
            content = {
                "type": "blacklist",
                "subject": req.requester,  # staff: accountable by name
                "request": req.request_id,
                "operation": req.operation.value,
                "reason": refusal.reason.value,
            }
            content.update(_private(req, "blacklist", {"patient": req.patient}, self.access_key))
            blacklist = TxDraft("add", content, req.timestamp_us)
        # every query is audited (§1.3), and so is every refused attempt by an identified
        # requester to act beyond its rights, whatever the operation; a request whose envelope
        # does not open names nobody we could trust, like a malformed one
        attempted = refusal.reason in AUTHORIZATION_REASONS and ctx.signature_ok
        audited = (
            req.operation in QUERY_OPS and refusal.reason is not Reason.SEALED_ENVELOPE
        ) or attempted
        audit = _audit(req, refusal.reason.value, self.access_key) if audited else None
        return Refused(refusal.reason, refusal.detail, req.request_id, blacklist, audit)


def _private(
    req: AccessRequest, record_type: str, fields: dict[str, Any], key: EncryptionKey | None
) -> dict[str, Any]:
    """A record's patient-identifying fields: in clear for a clear request, else sealed to the
    access key (left out if this validator has none: nothing to seal them to)."""
    if not req.sealed:
        return fields
    if key is None:
        return {}
    return {"sealed": seal_record(key, record_type, req.request_id, fields)}


def _audit(req: AccessRequest, outcome: str, key: EncryptionKey | None) -> TxDraft:
    content: dict[str, Any] = {
        "type": "audit",
        "request": req.request_id,
        "operation": req.operation.value,
        "outcome": outcome,
    }
    private = {"requester": req.requester, "patient": req.patient, "category": req.category}
    if req.sealed:
        content["signer"] = req.signer_key  # shown by the request itself
    content.update(_private(req, "audit", private, key))
    return TxDraft("query", content, req.timestamp_us)
