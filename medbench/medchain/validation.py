"""The access rules as PBFT's validator and service hooks (docs/medical-chain.md §1.5, §1.3).

Theory of operation
-------------------
A PBFT request's operation bytes are one ledger :class:`~medbench.ledger.Transaction`'s wire
bytes. :class:`AccessValidator` plays two roles on each replica:

* **validator** (``validator(request) -> reason | None``, before consensus): decode the bytes
  (hostile bytes give a reason, never an exception), then judge the transaction against this
  node's :class:`~medbench.access.ChainState` with :class:`medbench.access.Validator` — CA chain,
  signatures, countersignature, blacklist, RBAC and grants, all as of the transaction's own
  timestamp (bounded, see *Time* below). A refusal is returned as ``"<reason>: <detail>"``; the
  replica counts it. If the access layer drafted a blacklist record (a staff member refused for
  an authorization reason) or an audit record (a query), the draft joins :attr:`outbox`, which
  the node's own client signs and submits as a transaction in turn;
* **service** (``service(request, at_us) -> result``, at execution, in the total order): judge
  again, now against the state after every earlier committed transaction (two requests of one
  batch may conflict) and at the batch's agreed time ``at_us``, then apply it to the state. The
  result is deterministic bytes ``["accepted", tx_id]`` or ``["refused", reason]``; the request
  digest -> transaction ID map of the :class:`~medbench.medchain.block_format.LedgerBlockFormat` is
  filled here (refused: no ID, so the ledger block leaves it out).

Time
----
The rules evaluate grants and certificates as of the transaction's timestamp, which its client
chose; three bounds keep that choice honest (docs/medical-chain.md §1.6, TOCS §4.6 for the
non-determinism):

* at admission each replica compares the stamp with its own clock (:meth:`local_time`, the
  node's PBFT clock from the genesis time, never behind the newest block): more than
  :data:`MAX_LEAD_US` ahead (future-dating into a grant not yet valid) or :data:`MAX_AGE_US`
  behind (backdating into an expired window) is refused. Backups run this check on every request
  of a PRE-PREPARE, so a Byzantine primary cannot order such a stamp: it needs 2f+1 prepares;
* at execution, deterministically: the stamp is bounded on both sides against the batch's
  *agreed time* (the PBFT primary's clock reading in the PRE-PREPARE, checked against their own
  clocks by the backups and never running back, TOCS §4.6): more than :data:`MAX_LEAD_US` ahead
  or :data:`MAX_AGE_US` behind it is refused by every honest replica alike, even if admission
  let it through (a replica with a wrong clock, a validator bypassed). Unlike the newest block's
  time (also checked), the agreed time advances while the chain is idle;
* at execution, deterministically: a stamp older than the latest revocation on chain that affects
  the request (:func:`revocation_floor`: a CRL entry for a signer's certificate, a revoked grant
  of the pair, a revoked delegation) is refused, so a revoked grantee or key cannot backdate past
  its revocation, however recent.

Besides access requests the chain carries *records* (:mod:`medbench.medchain.chain_records`):
the blacklist and audit records drafted above, CRLs, certificate registrations, policy
publications and the KMC's emergency releases. Every node that saw a refusal or executed a query
submits its copy of the record; execution keeps the first per (type, request) and refuses the
others as duplicates. No record is believed for its signer alone (one Byzantine node must not
blacklist an honest doctor): each is re-proven by every replica against its own state.

Certificate chains are not part of a ledger transaction; the validator looks each signer's chain
up in :attr:`chains` (the registered identities, docs/medical-chain.md §1.6: certificates are
registered on chain — a committed ``certificate`` record adds to it), so an unregistered key fails
the certificate rule. The one exception is a patient's pseudonym (:mod:`medbench.pki.pseudonym`),
whose chain and her own travel inside the request's sealed envelope.

Sealed requests
---------------
With the consortium access key (``access_key``, issued by the KMC to every validator) the node
opens each request's envelope (:mod:`medbench.crypto.envelope`) before judging it; every honest
replica opens the same bytes to the same fields, so all reach the same verdict, and an envelope
that does not open is the refusal ``sealed-envelope``. While ``require_sealed`` holds (the
default) a request in clear is refused as ``unsealed-request``: a doctor's clear request would
name the patient to every reader of the chain, whatever she chose. What the validators see is
everything (they must, to evaluate permissions); what the chain shows everybody else is
``{op, signer, nonce, envelope}`` — a doctor's or institution's key, a patient's one-day
pseudonym — and, in the audit and blacklist records, the request ID, operation, outcome, signer
and (blacklist) the sanctioned staff member, with the patient sealed.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from medbench import codec
from medbench.access.decision import Allowed, Decision, Refused
from medbench.access.grants import RevokeRecord
from medbench.access.request import AccessRequest, RequestError, from_transaction_fields
from medbench.access.state import ChainState
from medbench.access.validator import Validator
from medbench.consensus.pbft.messages import Request
from medbench.crypto.envelope import EnvelopeError
from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import Kind, Transaction
from medbench.medchain.block_format import LedgerBlockFormat
from medbench.medchain.chain_records import MAX_EVIDENCE_BYTES, ChainRecords
from medbench.pki.certpath import revoked_since
from medbench.pki.drafts import RequestDraft, TxDraft

MAX_AGE_US = 600_000_000
"""How far a transaction's timestamp may lag the replica's clock, the batch's agreed time or the
last block's (the paper's 10-minute blocks)."""

MAX_LEAD_US = 600_000_000
"""How far a transaction's timestamp may run ahead of a replica's clock at admission, and of the
batch's agreed time at execution."""


def request_transaction(request: AccessRequest) -> Transaction:
    """The ledger transaction a client sends for a signed access request (same ID)."""
    tx = Transaction(
        Kind(request.kind_code),
        request.content_bytes,
        request.timestamp_us,
        tuple(request.public_keys),
        tuple(s.signature for s in request.signatures),
    )
    assert tx.id == request.request_id, "access and ledger disagree on the transaction ID"
    return tx


def draft_transaction(draft: TxDraft | RequestDraft, key: SigningKey) -> Transaction:
    """The ledger transaction for ``draft``, signed by ``key`` (a node's validator key for its
    records; a subject's own key for a request draft or a succession)."""
    return Transaction.create(
        Kind[draft.kind.upper()], codec.encode(draft.content), draft.timestamp_us, [key]
    )


def revocation_floor(state: ChainState, request: AccessRequest) -> int | None:
    """The latest revocation on chain a new ``request`` must not predate, if any.

    Three kinds affect a request: a CRL entry for a certificate of any signer's chain, or of the
    real principal's chain behind a pseudonym (its revocation date: once published, a revoked key
    adds nothing new, under its own name or a pseudonym), a revoked grant of this
    (patient, requester) pair and a revoked delegation to the requester (when the revocation was
    recorded). A deterministic function of the state, so every replica agrees.
    """
    times = []
    chains = [sig.cert_chain for sig in request.signatures]
    if request.principal_chain:
        chains.append(request.principal_chain)
    for chain in chains:
        when = revoked_since(chain, state.anchors, state.revocations)
        if when is not None:
            times.append(when)
    if request.patient:
        for ev in state.grants.by_pair.get((request.patient, request.requester), ()):
            if isinstance(ev, RevokeRecord):
                times.append(ev.recorded_us)
    for rec in state.delegations.by_delegate.get(request.requester, ()):
        when = state.delegations.revoked.get(rec.delegation_id)
        if when is not None:
            times.append(when)
    return max(times, default=None)


MEMO_SIZE = 4096
"""Requests a replica remembers decoded and opened between admission and execution."""


def _decode_transaction(operation: bytes) -> Transaction | LedgerDecodeError:
    try:
        return Transaction.from_wire(operation)
    except LedgerDecodeError as exc:
        return exc


class AccessValidator:
    """Validator + service hooks of one replica (see the module docstring)."""

    def __init__(
        self,
        state: ChainState,
        chains: Mapping[bytes, tuple[bytes, ...]],
        node_keys: tuple[bytes, ...],
        block_format: LedgerBlockFormat,
        scheme: Scheme | str = Scheme.ED25519,
        max_age_us: int = MAX_AGE_US,
        max_lead_us: int = MAX_LEAD_US,
        kmc_keys: tuple[bytes, ...] = (),
        *,
        access_key: EncryptionKey | None = None,
        require_sealed: bool = True,
    ) -> None:
        """The hooks of one replica; ``access_key`` opens sealed requests and, with
        ``require_sealed``, requests in clear are refused (see *Sealed requests*)."""
        self.state = state
        self.chains = dict(chains)
        self.node_keys = frozenset(node_keys)
        self.format = block_format
        self.scheme = Scheme(scheme)
        self.max_age_us = max_age_us
        self.max_lead_us = max_lead_us
        self.clock_us = block_format.genesis.timestamp_us  # the node sets it on every tick
        self.access_key = access_key
        self.require_sealed = require_sealed and access_key is not None
        self.rules = Validator(access_key=access_key)
        self.records = ChainRecords(
            self.node_keys, frozenset(kmc_keys), self.scheme, access_key=access_key
        )
        self.refusals: Counter[str] = Counter()
        self.outbox: list[TxDraft] = []
        self.quiet = False  # while replaying the log after a crash: drafts were submitted before
        self.accepted: dict[bytes, Transaction] = {}  # tx ID -> accepted body, until stored
        self._drafted: set[bytes] = set()  # request IDs whose drafts this node already queued
        # Decoding a transaction and opening its request are pure functions of the bytes (and of
        # the signers' registered chains): a replica judges each request twice, at admission and
        # at execution, so the second judging reuses them (only the state-dependent rules run
        # again). Bounded; the rules' own memos (signatures, envelopes) do the same.
        self._decode = functools.lru_cache(maxsize=MEMO_SIZE)(_decode_transaction)
        self._request = functools.lru_cache(maxsize=MEMO_SIZE)(self._request_uncached)

    # --- judging --------------------------------------------------------------------------------
    def local_time(self) -> int:
        """This replica's idea of the chain's time: its clock, never behind the newest block."""
        return max(self.format.head_timestamp, self.clock_us)

    def judge(
        self, operation: bytes, *, clock_us: int | None = None, at_us: int | None = None
    ) -> Verdict:
        """Decode ``operation`` and judge it against the current state (never raises).

        ``clock_us`` (admission) is this replica's clock, ``at_us`` (execution) the batch's
        agreed time: a stamp outside ``[time - max_age, time + max_lead]`` of either is refused.
        The deterministic bounds always apply: the head block's time and the revocations on
        chain.
        """
        tx = self._decode(operation)
        if isinstance(tx, LedgerDecodeError):
            return Verdict(None, f"malformed: {tx}")
        t = tx.timestamp_us
        if clock_us is not None and t > clock_us + self.max_lead_us:
            # a stamp ahead of the replicas' clocks would reach into a grant not yet valid
            return Verdict(tx, "future-timestamp: ahead of this replica's clock")
        if clock_us is not None and t < clock_us - self.max_age_us:
            return Verdict(tx, "stale-timestamp: behind this replica's clock")
        if at_us is not None and t > at_us + self.max_lead_us:
            return Verdict(tx, "future-timestamp: ahead of the batch's agreed time")
        if at_us is not None and t < at_us - self.max_age_us:
            return Verdict(tx, "stale-timestamp: behind the batch's agreed time")
        if t < self.format.head_timestamp - self.max_age_us:
            # the rules read the transaction's own time: it may not lag the chain (backdating
            # into an expired grant window)
            return Verdict(tx, "stale-timestamp: older than the last block allows")
        record = self.records.check(tx, self.state, self.chains)
        if record is not None:
            return Verdict(tx, record)
        request = self._request(operation, tuple(self.chains.get(k, ()) for k in tx.public_keys))
        if isinstance(request, str):
            return Verdict(tx, request)
        if self.require_sealed and not request.sealed:
            return Verdict(tx, "unsealed-request: this consortium takes sealed requests only")
        floor = revocation_floor(self.state, request)
        if floor is not None and t < floor:
            # rules judge "as of" the stamp: a new request dated before a revocation on chain
            # would see the grant or certificate still valid
            return Verdict(tx, "stale-timestamp: predates a revocation that affects it", request)
        return Verdict(tx, self.rules.check(request, self.state), request)

    def _request_uncached(
        self, operation: bytes, chains: tuple[tuple[bytes, ...], ...]
    ) -> AccessRequest | str:
        """The access request ``operation`` carries (its envelope opened), or why it is none."""
        tx = self._decode(operation)
        assert isinstance(tx, Transaction), "decoded before"
        try:
            return from_transaction_fields(
                tx.kind, tx.content, tx.timestamp_us, tx.public_keys, tx.signatures, list(chains),
                access_key=self.access_key,
            )  # fmt: skip
        except EnvelopeError as exc:
            return f"sealed-envelope: {exc}"
        except RequestError as exc:
            return f"malformed: {exc}"

    def _queue(self, drafts: list[TxDraft], tx: Transaction, *, evidence: bool) -> None:
        """Queue this node's records about ``tx`` (once); a refusal's carry ``tx`` as evidence."""
        if self.quiet or tx.id in self._drafted or not drafts:
            return
        self._drafted.add(tx.id)
        for d in drafts:
            if evidence:
                wire = tx.to_wire()
                if len(wire) > MAX_EVIDENCE_BYTES:
                    self.refusals["evidence-too-large"] += 1  # the record could not be proven
                    continue
                d = TxDraft(d.kind, {**d.content, "evidence": wire}, d.timestamp_us)
            self.outbox.append(d)

    # --- the PBFT hooks -------------------------------------------------------------------------
    def __call__(self, request: Request) -> str | None:
        """The validator hook: ``None`` to accept, else the refusal reason."""
        v = self.judge(request.operation, clock_us=self.local_time())
        if v.reason is None or v.reason.startswith("duplicate-record"):
            return None  # a duplicate record is ordered and answered "refused", so its client ends
        self.refusals[v.reason.split(":", 1)[0]] += 1
        if isinstance(v.decision, Refused) and v.tx is not None:
            self._queue(v.decision.drafts, v.tx, evidence=True)
        return v.reason

    def service(self, request: Request, at_us: int | None = None) -> bytes:
        """The service hook: re-check in the total order at the agreed time ``at_us`` (absolute
        µs; ``None``: only the chain's own bounds), apply, and answer the client."""
        v = self.judge(request.operation, at_us=at_us)
        digest = request.digest()
        if v.reason is not None or v.tx is None:
            self.format.ledger_ids[digest] = b""  # not part of the ledger block
            if isinstance(v.decision, Refused) and v.tx is not None:
                # e.g. its grant was revoked just before
                self._queue(v.decision.drafts, v.tx, evidence=True)
            return codec.encode(["refused", (v.reason or "").split(":", 1)[0]])
        tx, decision = v.tx, v.decision
        if isinstance(decision, TxDraft):
            self.records.apply(decision, tx.author, self.state, self.chains)
        else:
            assert isinstance(decision, Allowed) and v.request is not None
            self.state.apply(v.request, decision)
            if decision.audit is not None:
                self.records.expect_audit(tx.id, decision.audit.content)
                self._queue([decision.audit], tx, evidence=False)
        self.format.ledger_ids[digest] = tx.id
        self.accepted[tx.id] = tx
        return codec.encode(["accepted", tx.id])


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :meth:`AccessValidator.judge` found: the transaction, and a decision or a reason."""

    tx: Transaction | None
    decision: Decision | TxDraft | str
    request: AccessRequest | None = None

    @property
    def reason(self) -> str | None:
        """``None`` if accepted, else ``"<reason>: <detail>"``."""
        d = self.decision
        if isinstance(d, str):
            return d
        if isinstance(d, Refused):
            return f"{d.reason.value}: {d.detail}"
        return None
