"""The chain's records besides access requests: who writes each, how it is proven, how applied.

Theory of operation
-------------------
docs/medical-chain.md §1.3 and §1.6 put more on chain than patients' and doctors' requests: a CRL
publication, a certificate registration, the health administration's policy document (the RBAC rules
as data), the blacklist entry after a refused staff attempt, the audit record of every query and
the KMC's emergency key release. Each travels as one ledger transaction whose content is a
:class:`~medbench.pki.drafts.TxDraft`'s canonical dict, ``content["type"]`` naming the record.

:data:`RECORD_SPECS` is the table: for each type the ledger kind it must travel as, the shape of
its fields, who may sign it and what proves it. No record is believed because of its signer
alone; each is re-checked by every replica against its own state, deterministically:

``blacklist`` / ``audit`` (a validator node)
    a refusal record carries the refused transaction as *evidence*; the rules must refuse it
    again, as of its own time, producing exactly this record (one Byzantine node cannot sign a
    victim's request, so it cannot blacklist them). For a sealed request the evidence stays
    sealed (it is the request's own wire bytes) and the record's patient fields are sealed to the
    access key deterministically (:func:`medbench.crypto.envelope.seal_record`), so the record a
    replica re-derives is byte for byte the one the drafting node wrote. An audit of an accepted
    query must equal the audit the replica derived itself when it executed the query
    (:meth:`ChainRecords.expect_audit`).
``crl`` (a validator node, relaying a CA)
    the CRL's signature verifies against its issuer's CA chain up to the trust anchors
    (:meth:`medbench.pki.certpath.RevocationRegistry.publish`, tried on a copy first) and it adds
    at least one revocation.
``certificate`` (a validator node, or the certified key itself)
    the chain verifies as of the transaction's time and the key is not registered yet; applying
    it also makes the chain the one the validator uses for that key's requests.
``key-succession`` (the new key itself)
    after a rotation (:mod:`medbench.pki.rekey`): the new chain verifies, names the same
    identity as the old key's registered certificate (identifying hash, role, institution,
    region) and the old key has no successor yet; applying it moves the old key's records,
    grants, delegations and blacklist entries to the new key.
``policy`` (a root health authority of the policy in force)
    the document loads (:meth:`medbench.access.rbac.Policy.from_bytes`); it replaces the rules
    for every later transaction.
``kmc-emergency-release`` (the KMC's record key)
    its justification is an EMERGENCY request this chain accepted, made by the named authority,
    about the subject whose identifying hash the record names; one release per request.

A record that fails gets a typed reason; a repeat of one already applied is a
``duplicate-record`` (ordered and answered "refused", so its client ends).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from medbench import codec
from medbench.access.decision import Refused
from medbench.access.rbac import Policy, PolicyError
from medbench.access.request import RequestError, from_transaction_fields
from medbench.access.state import ChainState
from medbench.access.validator import Validator
from medbench.crypto.keys import Scheme
from medbench.crypto.sealing import EncryptionKey
from medbench.hashing import sha256
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import MAX_CONTENT_BYTES, Kind, Transaction, verify_transaction
from medbench.pki.certpath import CertificateError, RevocationRegistry, verify_chain
from medbench.pki.drafts import TxDraft

MAX_EVIDENCE_BYTES = MAX_CONTENT_BYTES - 4096
"""Largest refused transaction a record can carry as evidence (the record must fit too)."""

RECORD_LIMITS = codec.Limits(max_bytes=MAX_CONTENT_BYTES, max_depth=3, max_container_len=64)

Chains = dict[bytes, tuple[bytes, ...]]


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record type: its ledger kind, field types, writers, proof and state change."""

    kind: Kind
    fields: Mapping[str, type]
    writers: str  # "node", "node-or-subject", "subject", "root-authority" or "kmc"
    key: Callable[[dict[str, Any]], bytes]  # what makes two records the same one
    prove: Callable[[ChainRecords, dict[str, Any], Transaction, ChainState, Chains], str | None]
    apply: Callable[[TxDraft, bytes, ChainState, Chains], None]


def _by_request(c: dict[str, Any]) -> bytes:
    return bytes(c["request"])


def _digest_of(field: str) -> Callable[[dict[str, Any]], bytes]:
    def key(c: dict[str, Any]) -> bytes:
        return bytes(sha256(codec.encode(c[field])))

    return key


# --- proofs ---------------------------------------------------------------------------------------


def _prove_refusal_or_audit(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    if c["type"] == "blacklist" and len(c["subject"]) != 32:
        return "malformed: a blacklist record names a 32-byte subject key"
    rid = c["request"]
    if c["type"] == "audit" and "evidence" not in c:
        due = book.audits_due.get(rid)
        return None if due == c else "unproven-record: no accepted query on chain has this audit"
    evidence = c.get("evidence")
    if type(evidence) is not bytes:
        return "unproven-record: a refusal record carries the refused transaction"
    try:
        cited = Transaction.from_wire(evidence)
    except LedgerDecodeError as exc:
        return f"unproven-record: evidence does not decode: {exc}"
    if cited.id != rid:
        return "unproven-record: evidence is another transaction"
    cited_chains = [chains.get(k, ()) for k in cited.public_keys]
    try:
        request = from_transaction_fields(
            cited.kind, cited.content, cited.timestamp_us, cited.public_keys, cited.signatures,
            cited_chains, access_key=book.access_key,
        )  # fmt: skip
    except RequestError as exc:
        return f"unproven-record: evidence is not an access request: {exc}"
    decision = book.evidence_rules.check(request, state)
    if not isinstance(decision, Refused):
        return "unproven-record: the rules accept the cited request"
    derived = decision.blacklist if c["type"] == "blacklist" else decision.audit
    if derived is None or {**derived.content, "evidence": evidence} != c:
        return f"unproven-record: the rules refuse it otherwise ({decision.reason.value})"
    return None


def _prove_crl(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    if not all(type(b) is bytes for b in c["issuer_chain"]):
        return "malformed: an issuer chain is a list of DER certificates"
    trial = RevocationRegistry(dict(state.revocations.entries), dict(state.revocations.crl_numbers))
    try:
        added = trial.publish(c["crl"], tuple(c["issuer_chain"]), state.anchors)
    except CertificateError as exc:
        return f"bad-crl: {exc}"
    return None if added else "duplicate-record: the CRL adds no revocation"


def _prove_certificate(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    chain = c["chain"]
    if not all(type(b) is bytes for b in chain):
        return "malformed: a certificate chain is a list of DER certificates"
    try:
        ident = verify_chain(tuple(chain), state.anchors, tx.timestamp_us, state.revocations)
    except CertificateError as exc:
        return f"cert-invalid: {exc}"
    if tx.author not in book.node_keys and tx.author != ident.public_key:
        return "record-not-by-a-writer: a node or the certified key registers a certificate"
    if ident.public_key in state.identities:
        return "duplicate-record: key already registered"
    return None


def _prove_succession(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    chain = c["chain"]
    if not all(type(b) is bytes for b in chain):
        return "malformed: a certificate chain is a list of DER certificates"
    before = state.identities.get(c["old"])
    if before is None:
        return "unknown-subject: the old key is not registered"
    if c["old"] in state.successors:
        return "duplicate-record: the old key already has a successor"
    try:
        ident = verify_chain(tuple(chain), state.anchors, tx.timestamp_us, state.revocations)
    except CertificateError as exc:
        return f"cert-invalid: {exc}"
    if tx.author != ident.public_key:
        return "record-not-by-a-writer: the new key signs its succession (proof of possession)"
    if ident.public_key in state.identities:
        return "duplicate-record: the new key is already registered"
    info = ident.info
    if (info.id_hash, info.role, info.institution, info.region) != (
        before.id_hash, before.role, before.institution, before.region,
    ):  # fmt: skip
        return "identity-mismatch: the new certificate names another identity"
    return None


def _prove_policy(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    try:
        Policy.from_bytes(c["document"])
    except PolicyError as exc:
        return f"bad-policy: {exc}"
    return None


def _prove_release(
    book: ChainRecords, c: dict[str, Any], tx: Transaction, state: ChainState, chains: Chains
) -> str | None:
    made = state.emergencies.get(c["justification"])
    if made is None:
        return "unproven-record: justification is not an accepted emergency request"
    requester, patient = made
    info = state.identities.get(patient)
    if requester != c["authority"] or info is None or info.id_hash != c["subject"]:
        return "unproven-record: the release does not match its emergency request"
    return None


# --- state changes --------------------------------------------------------------------------------


def _apply_record(draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
    state.record(draft)


def _apply_crl(draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
    state.publish_crl(draft)


def _apply_certificate(draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
    ident = state.register_draft(draft)
    chains[ident.public_key] = tuple(draft.content["chain"])  # its requests use this chain


def _apply_succession(draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
    ident = state.succeed(draft.content["old"], tuple(draft.content["chain"]), draft.timestamp_us)
    chains[ident.public_key] = tuple(draft.content["chain"])


def _apply_policy(draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
    state.adopt_policy(draft, author)


RECORD_SPECS: dict[str, RecordSpec] = {
    "blacklist": RecordSpec(
        Kind.ADD, {"request": bytes, "subject": bytes}, "node", _by_request,
        _prove_refusal_or_audit, _apply_record,
    ),
    "audit": RecordSpec(
        Kind.QUERY, {"request": bytes}, "node", _by_request, _prove_refusal_or_audit,
        _apply_record,
    ),
    "crl": RecordSpec(
        Kind.REVOKE, {"crl": bytes, "issuer_chain": list}, "node", _digest_of("crl"),
        _prove_crl, _apply_crl,
    ),
    "certificate": RecordSpec(
        Kind.REGISTER, {"chain": list}, "node-or-subject", _digest_of("chain"),
        _prove_certificate, _apply_certificate,
    ),
    "key-succession": RecordSpec(
        Kind.REGISTER, {"old": bytes, "chain": list}, "subject", _digest_of("old"),
        _prove_succession, _apply_succession,
    ),
    "policy": RecordSpec(
        Kind.ADD, {"document": bytes}, "root-authority", _digest_of("document"), _prove_policy,
        _apply_policy,
    ),
    "kmc-emergency-release": RecordSpec(
        Kind.QUERY,
        {"subject": bytes, "authority": bytes, "justification": bytes, "version": int},
        "kmc", lambda c: bytes(c["justification"]), _prove_release, _apply_record,
    ),
}  # fmt: skip
"""The record types the chain accepts (see the module docstring)."""

RECORD_TYPES = {name: spec.kind for name, spec in RECORD_SPECS.items()}
"""Record type -> the ledger kind it travels as."""


class ChainRecords:
    """Checks and applies records for one replica; remembers which are on chain."""

    def __init__(
        self,
        node_keys: frozenset[bytes],
        kmc_keys: frozenset[bytes],
        scheme: Scheme,
        *,
        access_key: EncryptionKey | None = None,
    ) -> None:
        """The record book of one replica; ``access_key`` opens sealed evidence and seals the
        patient fields of the records it re-derives, byte for byte like the drafting node."""
        self.node_keys = node_keys
        self.kmc_keys = kmc_keys
        self.scheme = scheme
        self.access_key = access_key
        # re-judges cited refusals (kept out of the counts)
        self.evidence_rules = Validator(access_key=access_key)
        self.recorded: set[tuple[str, bytes]] = set()
        self.audits_due: dict[bytes, dict[str, Any]] = {}  # accepted query ID -> its audit

    def expect_audit(self, request_id: bytes, content: dict[str, Any]) -> None:
        """An accepted query's audit, as this replica derived it at execution."""
        self.audits_due[request_id] = content

    def _writer_ok(self, writers: str, author: bytes, state: ChainState) -> bool:
        if writers in ("node", "node-or-subject", "subject"):
            # a subject is decided by the proof, once the chain names the subject's key
            return writers != "node" or author in self.node_keys
        if writers == "kmc":
            return author in self.kmc_keys
        roots = state.policy.document["root_authorities"]
        return any(r["key"] == author for r in roots)

    def check(self, tx: Transaction, state: ChainState, chains: Chains) -> TxDraft | str | None:
        """The record ``tx`` carries, a reason it is a bad one, or ``None`` if it is none."""
        try:
            content = codec.decode(tx.content, RECORD_LIMITS)
        except codec.DecodeError:
            return None
        if type(content) is not dict or content.get("type") not in RECORD_SPECS:
            return None
        spec = RECORD_SPECS[content["type"]]
        if spec.kind is not tx.kind or any(
            type(content.get(f)) is not t for f, t in spec.fields.items()
        ):
            return f"malformed: not a {content['type']} record of kind {spec.kind.name.lower()}"
        if len(tx.public_keys) != 1 or not self._writer_ok(spec.writers, tx.author, state):
            return f"record-not-by-a-writer: {spec.writers} writes {content['type']} records"
        if not verify_transaction(tx, self.scheme).ok:
            return "bad-signature: record"
        if (content["type"], spec.key(content)) in self.recorded:
            return "duplicate-record: already on chain"
        reason = spec.prove(self, content, tx, state, chains)
        if reason is not None:
            return reason
        return TxDraft(tx.kind.name.lower(), content, tx.timestamp_us)

    def apply(self, draft: TxDraft, author: bytes, state: ChainState, chains: Chains) -> None:
        """Commit a checked record (in the total order)."""
        spec = RECORD_SPECS[draft.type]
        spec.apply(draft, author, state, chains)
        self.recorded.add((draft.type, spec.key(draft.content)))
        if draft.type == "audit":
            self.audits_due.pop(draft.content["request"], None)
