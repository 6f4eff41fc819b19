"""Client API: patient, grantee (doctor, family), query (courts, police), admin and authority.

Theory of operation
-------------------
docs/medical-chain.md §1.5: clients create transactions; the patient client grants, revokes and
edits permissions, edits its own data and reads its own history including deleted and updated
versions; the doctor client adds records and reads / modifies / deletes only inside a patient's
grant; the query client (courts, police) only reads, after authorization. §1.6 adds administrative
staff (authorize their staff to read non-private data) and the health authorities (delegate within
their region, authorize courts/police, emergency access through the KMC).

Every client here is a plain object that *builds and signs* an
:class:`~medbench.access.request.AccessRequest` (nonces from an injected ``random.Random``;
times are the consensus timestamps the caller passes in) and hands it to a :class:`LocalChain`.
:class:`LocalChain` is the in-memory stand-in for "PBFT + ledger": it runs the
:class:`~medbench.access.validator.Validator`, applies accepted requests to the
:class:`~medbench.access.state.ChainState` and commits the blacklist / audit / KMC-release
drafts the decision produced, exactly as a replica will after commit. Reads return what the state
holds for the request once it has been accepted.

With a :class:`Privacy` (given to the client, or taken from its :class:`LocalChain`) every request
is sealed to the consortium access key (:mod:`medbench.crypto.envelope`), and a service receiver
(patient, family: :data:`~medbench.pki.pseudonym.PSEUDONYMOUS_ROLES`) signs each request with a
fresh one-day pseudonym the consortium's pseudonym CA certifies (:mod:`medbench.pki.pseudonym`).
Staff, courts and authorities sign with their own keys, in clear: they are accountable by name.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medbench.access.decision import Allowed, Decision
from medbench.access.request import ALL, AccessRequest, Operation, build_request
from medbench.access.state import ChainState, RecordStatus, RecordVersion
from medbench.access.validator import Validator
from medbench.crypto.sealing import EncryptionKey, open_sealed, seal
from medbench.pki.kmc import KeyBundle, KeyManagementCenter
from medbench.pki.pseudonym import PSEUDONYMOUS_ROLES, PseudonymIssuer
from medbench.pki.subject import SubjectInfo


@dataclass(frozen=True, slots=True)
class Identity:
    """A subject's keys, certificate chain (leaf first) and certified identity."""

    keys: KeyBundle
    chain: tuple[bytes, ...]
    info: SubjectInfo

    @property
    def public_key(self) -> bytes:
        """The subject's raw Ed25519 key (its identity everywhere)."""
        return self.keys.signing_public


@dataclass(frozen=True, slots=True)
class Privacy:
    """What a client needs to keep patients unlinkable: the consortium access key (public) and,
    for service receivers, the pseudonym CA."""

    access_public: bytes
    pseudonyms: PseudonymIssuer | None = None


@dataclass
class LocalChain:
    """Validator + in-memory chain state, committing each accepted request at once."""

    state: ChainState
    validator: Validator = field(default_factory=Validator)
    log: list[tuple[AccessRequest, Decision]] = field(default_factory=list)
    privacy: Privacy | None = None  # what its clients seal and sign with, if anything

    def submit(self, request: AccessRequest) -> Decision:
        """Judge ``request``; on acceptance apply it; commit every draft the decision made."""
        decision = self.validator.check(request, self.state)
        if isinstance(decision, Allowed):
            self.state.apply(request, decision)
            if decision.audit is not None:
                self.state.record(decision.audit)
        else:
            for draft in decision.drafts:
                self.state.record(draft)
        self.log.append((request, decision))
        return decision


class _Client:
    """Common signing machinery."""

    def __init__(
        self,
        identity: Identity,
        chain: LocalChain,
        rng: random.Random,
        countersigner: Identity | None = None,
        *,
        privacy: Privacy | None = None,
    ) -> None:
        """A client of ``identity`` on ``chain``; nonces, pseudonyms and boxes come from ``rng``.

        ``privacy`` (default: the chain's) makes every request sealed, and pseudonymous for a
        service receiver (module docstring).
        """
        self.identity = identity
        self.chain = chain
        self.rng = rng
        self.countersigner = countersigner
        self.privacy = privacy if privacy is not None else getattr(chain, "privacy", None)

    @property
    def public_key(self) -> bytes:
        """This client's identity key."""
        return self.identity.public_key

    def request(
        self,
        operation: Operation,
        *,
        patient: bytes,
        category: str = ALL,
        body: Mapping[str, object] | None = None,
        at_us: int,
        countersign: bool = False,
    ) -> AccessRequest:
        """Build and sign a request (with the institution's countersignature if asked)."""
        signers = [(self.identity.keys.signing, self.identity.chain)]
        if countersign:
            if self.countersigner is None:
                raise ValueError("this client has no institution to countersign")
            signers.append((self.countersigner.keys.signing, self.countersigner.chain))
        nonce = self.rng.randbytes(16)
        privacy = self.privacy
        sealing: dict[str, Any] = {}  # none: the paper's clear request
        if privacy is not None:
            principal_chain: tuple[bytes, ...] = ()
            if privacy.pseudonyms is not None and self.identity.info.role in PSEUDONYMOUS_ROLES:
                pseudonym = privacy.pseudonyms.mint(
                    self.identity.keys.signing, self.identity.chain, at_us, self.rng
                )
                signers[0] = (pseudonym.signing, pseudonym.chain)
                principal_chain = self.identity.chain
            sealing = {
                "access_public": privacy.access_public,
                "randbytes": self.rng.randbytes,
                "requester": self.public_key,
                "principal_chain": principal_chain,
            }
        return build_request(
            operation,
            patient=patient,
            category=category,
            timestamp_us=at_us,
            nonce=nonce,
            body=dict(body or {}),
            signers=signers,
            **sealing,
        )

    def submit(self, request: AccessRequest) -> Decision:
        """Send a request to the chain."""
        return self.chain.submit(request)

    def _read(
        self, patient: bytes, category: str, at_us: int
    ) -> tuple[Decision, list[RecordVersion]]:
        req = self.request(
            Operation.READ,
            patient=patient,
            category=category,
            body={"history": False},
            at_us=at_us,
        )
        decision = self.submit(req)
        if not decision:
            return decision, []
        include_hidden = patient == self.public_key
        records = self.chain.state.records.current(patient, category, include_hidden=include_hidden)
        return decision, records


def _grant_body(
    grantee: bytes, ops: Iterable[str], categories: Iterable[str], nb: int, na: int
) -> dict[str, object]:
    return {
        "grantee": grantee,
        "ops": sorted(ops),
        "categories": sorted(categories),
        "not_before_us": nb,
        "not_after_us": na,
    }


class PatientClient(_Client):
    """The patient's phone: grants, own data, own history (docs/medical-chain.md §1.5)."""

    def grant(
        self,
        grantee: bytes,
        ops: Iterable[str],
        *,
        categories: Iterable[str] = (ALL,),
        not_before_us: int,
        not_after_us: int,
        at_us: int,
    ) -> Decision:
        """Grant ``grantee`` the scope ``ops`` x ``categories`` for a time window."""
        body = _grant_body(grantee, ops, categories, not_before_us, not_after_us)
        req = self.request(Operation.GRANT, patient=self.public_key, body=body, at_us=at_us)
        return self.submit(req)

    def revoke(self, grant_id: bytes, *, at_us: int) -> Decision:
        """Revoke one of this patient's grants."""
        body = {"grant": grant_id}
        return self.submit(
            self.request(Operation.REVOKE, patient=self.public_key, body=body, at_us=at_us)
        )

    def seal_private(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Seal a private field (ID number, name, contact) to this patient's own key (§1.3)."""
        return seal(
            self.identity.keys.encryption_public, plaintext, aad, randbytes=self.rng.randbytes
        )

    def open_private(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Open a field sealed to this patient."""
        return open_sealed(EncryptionKey(self.identity.keys.encryption), blob, aad)

    def add_own(self, category: str, content: bytes, *, at_us: int) -> Decision:
        """Add a record to one's own data."""
        req = self.request(
            Operation.ADD,
            patient=self.public_key,
            category=category,
            body={"content": content},
            at_us=at_us,
        )
        return self.submit(req)

    def edit_own(self, record_id: bytes, content: bytes, reason: str, *, at_us: int) -> Decision:
        """Replace one of one's records by a new version (the old one stays in history)."""
        rec = self.chain.state.records.get(record_id)
        category = rec.category if rec is not None else ALL
        body = {"record": record_id, "content": content, "reason": reason}
        req = self.request(
            Operation.MODIFY, patient=self.public_key, category=category, body=body, at_us=at_us
        )
        return self.submit(req)

    def delete_own(self, record_id: bytes, *, at_us: int) -> Decision:
        """Delete one of one's records (it stays in history, marked deleted)."""
        rec = self.chain.state.records.get(record_id)
        category = rec.category if rec is not None else ALL
        req = self.request(
            Operation.DELETE,
            patient=self.public_key,
            category=category,
            body={"record": record_id},
            at_us=at_us,
        )
        return self.submit(req)

    def hide(self, record_id: bytes, *, hidden: bool = True, at_us: int) -> Decision:
        """Hide one of one's records from grantees (or show it again)."""
        rec = self.chain.state.records.get(record_id)
        category = rec.category if rec is not None else ALL
        req = self.request(
            Operation.HIDE,
            patient=self.public_key,
            category=category,
            body={"record": record_id, "hidden": hidden},
            at_us=at_us,
        )
        return self.submit(req)

    def read_own(self, category: str = ALL, *, at_us: int) -> tuple[Decision, list[RecordVersion]]:
        """Current versions of one's own records (hidden ones included)."""
        return self._read(self.public_key, category, at_us)

    def read_history(
        self, *, at_us: int
    ) -> tuple[Decision, list[tuple[RecordVersion, RecordStatus]]]:
        """Every version of one's records, including updated, deleted and hidden ones."""
        req = self.request(
            Operation.READ, patient=self.public_key, body={"history": True}, at_us=at_us
        )
        decision = self.submit(req)
        if not decision:
            return decision, []
        return decision, self.chain.state.records.history(self.public_key)


class GranteeClient(_Client):
    """Someone acting on a patient's data under a grant: family, another person, a doctor."""

    countersign_changes = False

    def read(
        self, patient: bytes, category: str = ALL, *, at_us: int
    ) -> tuple[Decision, list[RecordVersion]]:
        """Read a patient's current, visible records in ``category``."""
        return self._read(patient, category, at_us)

    def add_record(self, patient: bytes, category: str, content: bytes, *, at_us: int) -> Decision:
        """Add a record for ``patient`` (a doctor's is countersigned by the institution)."""
        req = self.request(
            Operation.ADD,
            patient=patient,
            category=category,
            body={"content": content},
            at_us=at_us,
            countersign=self._countersign(),
        )
        return self.submit(req)

    def modify(
        self, patient: bytes, record_id: bytes, content: bytes, reason: str, *, at_us: int
    ) -> Decision:
        """Replace a record by a new version."""
        rec = self.chain.state.records.get(record_id)
        category = rec.category if rec is not None else ALL
        body = {"record": record_id, "content": content, "reason": reason}
        req = self.request(
            Operation.MODIFY,
            patient=patient,
            category=category,
            body=body,
            at_us=at_us,
            countersign=self._countersign(),
        )
        return self.submit(req)

    def delete(self, patient: bytes, record_id: bytes, *, at_us: int) -> Decision:
        """Delete a record (it stays traceable)."""
        rec = self.chain.state.records.get(record_id)
        category = rec.category if rec is not None else ALL
        req = self.request(
            Operation.DELETE,
            patient=patient,
            category=category,
            body={"record": record_id},
            at_us=at_us,
            countersign=self._countersign(),
        )
        return self.submit(req)

    def _countersign(self) -> bool:
        return self.countersign_changes and self.countersigner is not None


class DoctorClient(GranteeClient):
    """Medical staff: record changes carry the institution's countersignature (§1.2)."""

    countersign_changes = True


class QueryClient(_Client):
    """Courts and police: read-only, after a health authority's authorization (§1.5)."""

    def read(
        self, patient: bytes, category: str = ALL, *, at_us: int
    ) -> tuple[Decision, list[RecordVersion]]:
        """Read a patient's current, visible records."""
        return self._read(patient, category, at_us)


class AdminClient(_Client):
    """Administrative staff: authorize their institution's staff to read non-private data."""

    def authorize_staff(
        self,
        staff: bytes,
        patient: bytes,
        categories: Sequence[str],
        *,
        not_before_us: int,
        not_after_us: int,
        at_us: int,
    ) -> Decision:
        """Grant ``staff`` read access to ``patient``'s ``categories`` (non-private only)."""
        body = _grant_body(staff, ["read"], categories, not_before_us, not_after_us)
        return self.submit(self.request(Operation.GRANT, patient=patient, body=body, at_us=at_us))

    def revoke(self, patient: bytes, grant_id: bytes, *, at_us: int) -> Decision:
        """Revoke an authorization this admin issued."""
        body = {"grant": grant_id}
        return self.submit(self.request(Operation.REVOKE, patient=patient, body=body, at_us=at_us))


class AuthorityClient(_Client):
    """A health authority: delegation, authorizations for courts/police/family, emergencies."""

    def delegate(
        self, delegate: bytes, role: str, region: str, *, not_after_us: int, at_us: int
    ) -> Decision:
        """Confer an authority role over a sub-region on ``delegate``."""
        body = {"delegate": delegate, "role": role, "region": region, "not_after_us": not_after_us}
        return self.submit(self.request(Operation.DELEGATE, patient=b"", body=body, at_us=at_us))

    def authorize(
        self,
        grantee: bytes,
        patient: bytes,
        ops: Iterable[str],
        *,
        categories: Iterable[str] = (ALL,),
        not_before_us: int,
        not_after_us: int,
        at_us: int,
    ) -> Decision:
        """Authorize a court, police or family member on a patient in this region."""
        body = _grant_body(grantee, ops, categories, not_before_us, not_after_us)
        return self.submit(self.request(Operation.GRANT, patient=patient, body=body, at_us=at_us))

    def revoke(self, patient: bytes, target_id: bytes, *, at_us: int) -> Decision:
        """Revoke an authorization or delegation this authority issued."""
        body = {"grant": target_id}
        return self.submit(self.request(Operation.REVOKE, patient=patient, body=body, at_us=at_us))

    def emergency(
        self, patient: bytes, reason: str, kmc: KeyManagementCenter, *, at_us: int
    ) -> tuple[Decision, KeyBundle | None]:
        """Emergency access (§1.6): on acceptance the KMC releases the patient's keys.

        Both the request's audit record and the KMC's release record are committed.
        """
        req = self.request(
            Operation.EMERGENCY, patient=patient, body={"reason": reason}, at_us=at_us
        )
        decision = self.submit(req)
        if not decision:
            return decision, None
        info = self.chain.state.identities[patient]
        bundle, record = kmc.emergency_release(
            info.id_hash, self.public_key, req.request_id, at_us, self.chain.state
        )
        self.chain.state.record(record)
        return decision, bundle
