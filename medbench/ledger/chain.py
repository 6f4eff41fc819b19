"""Chain validation with tamper localisation, and repair from peers (docs/medical-chain.md §1.2,
§1.4, §1.7).

Theory of operation
-------------------
A node holds the chain (genesis + blocks of transaction IDs) and a transaction store keyed by ID.
:func:`verify_chain` checks both and reports every defect as a typed :class:`Finding` that names
the block height, the position in the block and the transaction ID — never just "invalid":

Header checks (need no bodies; also what an outside auditor runs, :mod:`medbench.ledger.audit`):

* ``HEIGHT_MISMATCH`` — block ``i`` of the list does not say height ``i+1`` (reordered, dropped or
  inserted blocks);
* ``LINK_BROKEN`` — ``previous_id`` is not the ID of the block before it (or of the genesis);
* ``WRONG_BLOCKER`` — the header names a validator other than
  :func:`~medbench.rotation.expected_blocker` (``B = L mod (N-1)`` after the primary);
* ``BLOCK_SIGNATURE_INVALID`` — the blocker's signature over the block ID does not verify (a
  present but wrong signature; or an empty one that no signed block above vouches for, see below);
* ``MERKLE_ROOT_MISMATCH`` — the header's root is not the Merkle root of the listed IDs (the root
  or the ID list was altered);
* ``TIMESTAMP_REGRESSION`` — a block is older than its predecessor;
* ``DUPLICATE_TRANSACTION`` — one ID is listed twice;
* ``UNSIGNED_TIP`` (advisory: :attr:`ChainReport.ok` stays true) — a block with no signature yet
  and no signed block above it, i.e. at the tip of the chain, awaiting its blocker's signature.

**Unsigned blocks** (docs/medical-chain.md §1.5, integrated mode). A node stores a block it built
from a PBFT-committed batch at once and fills the blocker's signature in when it arrives, so a
stored block may carry an empty signature. The block ID is the hash of the header and every
header holds its predecessor's ID, so a block whose signature verifies under the expected
blocker's key authenticates, by the unbroken ``previous_id`` links below it, every block under
it: an empty signature there is no finding. An empty signature with no such block above it is
``UNSIGNED_TIP`` when only unsigned blocks (with intact links) sit above it, and
``BLOCK_SIGNATURE_INVALID`` when a broken link cuts it off from the signed part (nothing vouches
for it). An unsigned tip is *not authenticated yet*: its bytes could be anything, so an auditor
trusts the chain up to its highest signed block only (a node never stores a block it did not
build from committed batches, so its own unsigned tip is its committed chain). A present
signature that does not verify is always ``BLOCK_SIGNATURE_INVALID``: a signature is never
overwritten, only filled in where empty (:meth:`medbench.store.LedgerStore.set_signature`).

Body checks (with a store): for each block the stored bodies are fetched by listed ID and their IDs
recomputed. When the recomputed list differs from the listed one, ``medbench.merkle.diff`` walks
down only the differing subtrees to the exact positions, O(k log n) for k tampered transactions:

* ``TRANSACTION_MISSING`` — listed in a block, absent from the store (deleted on this node);
* ``BODY_ALTERED`` — the stored body recomputes to another ID than the key it is stored under, or
  the stored bytes no longer decode;
* ``SIGNATURE_INVALID`` / ``SIGNER_MISSING`` — the body is intact but a signature is missing or
  bad, or a required countersigner is not listed (:class:`~medbench.ledger.transaction.
  SignerPolicy`); the finding carries the per-key problems;
* ``TRANSACTION_UNLISTED`` — stored, but listed in no block (and not declared pending).

:func:`repair` restores what one node lost or had altered from peers' copies (§1.2: "a deleted
transaction on one node can be fetched from other nodes"): a peer's copy is accepted only if its
recomputed ID equals the listed ID and its signatures verify, so a lying peer cannot inject data.
Signatures are not part of the ID, so a transaction whose signature bytes were damaged is
repairable too.

The store is any ``Mapping[bytes, Transaction | bytes]`` (bytes values are wire encodings and
are decoded here; so is the ``body`` of a row object such as ``medbench.store.StoredTransaction``),
so a dict, a peer proxy, the SQLite node store or its archive-backed view on a node that applied
the retention policy (``medbench.store.archive``) all plug in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from medbench import codec, merkle
from medbench.crypto.keys import Scheme
from medbench.ledger.block import Block, Genesis
from medbench.ledger.errors import Problem, SignatureProblem
from medbench.ledger.transaction import SignerPolicy, Transaction, verify_transaction
from medbench.rotation import expected_blocker

TxStore = Mapping[bytes, Transaction | bytes]
"""What the verifier reads: transaction bodies (or their wire bytes) keyed by transaction ID."""
Primary = bytes | Callable[[int], bytes] | None
"""The primary's key, or a function height → primary key; ``None`` means ``validators[0]``."""


class FindingKind(StrEnum):
    """What kind of defect a :class:`Finding` reports (see the module docstring)."""

    HEIGHT_MISMATCH = "height-mismatch"
    LINK_BROKEN = "link-broken"
    WRONG_BLOCKER = "wrong-blocker"
    BLOCK_SIGNATURE_INVALID = "block-signature-invalid"
    MERKLE_ROOT_MISMATCH = "merkle-root-mismatch"
    TIMESTAMP_REGRESSION = "timestamp-regression"
    DUPLICATE_TRANSACTION = "duplicate-transaction"
    TRANSACTION_MISSING = "transaction-missing"
    BODY_ALTERED = "body-altered"
    SIGNATURE_INVALID = "signature-invalid"
    SIGNER_MISSING = "signer-missing"
    TRANSACTION_UNLISTED = "transaction-unlisted"
    ID_LIST_DIFFERS = "id-list-differs"
    UNSIGNED_TIP = "unsigned-tip"


ADVISORY: frozenset[FindingKind] = frozenset({FindingKind.UNSIGNED_TIP})
"""Findings that are reported but are not defects: :attr:`ChainReport.ok` ignores them."""

REPAIRABLE: frozenset[FindingKind] = frozenset(
    {FindingKind.TRANSACTION_MISSING, FindingKind.BODY_ALTERED, FindingKind.SIGNATURE_INVALID}
)
"""Findings a peer's intact copy of the transaction can fix."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One defect: where (block ``height``, ``tx_index`` in it, ``tx_id``) and what."""

    kind: FindingKind
    height: int | None = None
    tx_index: int | None = None
    tx_id: bytes | None = None
    detail: str = ""
    problems: tuple[SignatureProblem, ...] = ()

    def __str__(self) -> str:
        where = [] if self.height is None else [f"block {self.height}"]
        if self.tx_index is not None:
            where.append(f"tx #{self.tx_index}")
        if self.tx_id is not None:
            where.append(self.tx_id[:4].hex())
        return f"{self.kind} at {' '.join(where) or 'store'}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Everything :func:`verify_chain` found, with counts of the work done."""

    findings: tuple[Finding, ...]
    blocks_checked: int
    transactions_checked: int
    signatures_checked: int

    @property
    def ok(self) -> bool:
        """True if nothing but advisory findings (:data:`ADVISORY`, e.g. an unsigned tip) was
        found."""
        return all(f.kind in ADVISORY for f in self.findings)

    @property
    def defects(self) -> tuple[Finding, ...]:
        """The findings that are not advisory (what makes :attr:`ok` false)."""
        return tuple(f for f in self.findings if f.kind not in ADVISORY)

    def of_kind(self, kind: FindingKind) -> list[Finding]:
        """The findings of one kind, in chain order."""
        return [f for f in self.findings if f.kind is kind]

    def kinds(self) -> set[FindingKind]:
        """The set of finding kinds present."""
        return {f.kind for f in self.findings}

    def bad_heights(self) -> list[int]:
        """Heights of blocks with at least one finding, ascending."""
        return sorted({f.height for f in self.findings if f.height is not None})

    def tampered(self) -> list[tuple[int, int, bytes]]:
        """``(height, index, tx_id)`` of every transaction with a body-level finding."""
        return [
            (f.height, f.tx_index, f.tx_id)
            for f in self.findings
            if f.kind in REPAIRABLE | {FindingKind.SIGNER_MISSING}
            and f.height is not None
            and f.tx_index is not None
            and f.tx_id is not None
        ]

    def repairable_ids(self) -> list[bytes]:
        """IDs a peer's copy could restore (missing, altered, or with damaged signatures)."""
        return [f.tx_id for f in self.findings if f.kind in REPAIRABLE and f.tx_id is not None]


def _primary_at(primary: Primary, genesis: Genesis) -> Callable[[int], bytes]:
    if primary is None:
        first = genesis.validators[0]
        return lambda _h: first
    if isinstance(primary, bytes):
        fixed = primary
        return lambda _h: fixed
    return primary


def check_headers(
    genesis: Genesis, blocks: Sequence[Block], primary: Primary = None
) -> list[Finding]:
    """The header-level findings of ``blocks`` on top of ``genesis`` (no bodies needed)."""
    findings: list[Finding] = []
    primary_at = _primary_at(primary, genesis)
    validators = genesis.validators
    prev_id, prev_ts = genesis.id, genesis.timestamp_us
    seen: dict[bytes, int] = {}
    marks: list[tuple[bool, bool, bool]] = []  # (signed, vouches for those below, linked down)
    for pos, block in enumerate(blocks):
        height = pos + 1
        h = block.header
        blocker_ok = True
        if h.height != height:
            findings.append(
                Finding(FindingKind.HEIGHT_MISMATCH, height, detail=f"header says {h.height}")
            )
        if h.previous_id != prev_id:
            findings.append(
                Finding(
                    FindingKind.LINK_BROKEN,
                    height,
                    detail=f"previous {h.previous_id[:4].hex()} != {prev_id[:4].hex()}",
                )
            )
        if len(validators) >= 2:
            p = primary_at(height)
            want = expected_blocker(height, validators, p) if p in validators else None
            blocker_ok = h.blocker == want
            if not blocker_ok:
                findings.append(
                    Finding(
                        FindingKind.WRONG_BLOCKER,
                        height,
                        detail=f"signed by {h.blocker[:4].hex()}, expected "
                        f"{want[:4].hex() if want else 'none (primary unknown)'}",
                    )
                )
        sig_ok = bool(block.signature) and block.signature_ok(genesis.scheme)
        if block.signature and not sig_ok:
            findings.append(
                Finding(FindingKind.BLOCK_SIGNATURE_INVALID, height, detail="blocker signature")
            )
        marks.append((bool(block.signature), sig_ok and blocker_ok, h.previous_id == prev_id))
        if not block.root_ok():
            findings.append(
                Finding(
                    FindingKind.MERKLE_ROOT_MISMATCH,
                    height,
                    detail="header root is not the root of the listed IDs",
                )
            )
        if h.timestamp_us < prev_ts:
            findings.append(
                Finding(
                    FindingKind.TIMESTAMP_REGRESSION,
                    height,
                    detail=f"{h.timestamp_us} < {prev_ts}",
                )
            )
        for i, tid in enumerate(block.tx_ids):
            if tid in seen:
                findings.append(
                    Finding(
                        FindingKind.DUPLICATE_TRANSACTION,
                        height,
                        i,
                        tid,
                        detail=f"first listed in block {seen[tid]}",
                    )
                )
            else:
                seen[tid] = height
        prev_id, prev_ts = block.id, h.timestamp_us
    findings.extend(_unsigned_findings(marks))
    return sorted(findings, key=lambda f: f.height or 0)  # stable: chain order, kinds as found


def _unsigned_findings(marks: Sequence[tuple[bool, bool, bool]]) -> list[Finding]:
    """Findings for blocks with an empty signature (see "Unsigned blocks" above), from the marks
    :func:`check_headers` took per block: signed, vouching (signature verified under the expected
    blocker) and linked to the block below (no signature checked or ID hashed twice).

    Walks down from the tip: ``vouched`` is ``"tip"`` until the first vouching block (then
    ``"signed"``), and ``"cut"`` below a broken ``previous_id`` link (the block above does not
    commit to the one below) until the next vouching block.
    """
    findings: list[Finding] = []
    vouched = "tip"
    for pos in range(len(marks) - 1, -1, -1):
        signed, vouches, linked = marks[pos]
        height = pos + 1
        if not signed:
            if vouched == "tip":
                findings.append(
                    Finding(FindingKind.UNSIGNED_TIP, height, detail="awaiting its signature")
                )
            elif vouched == "cut":
                findings.append(
                    Finding(
                        FindingKind.BLOCK_SIGNATURE_INVALID,
                        height,
                        detail="unsigned, and no signed block above it links down to it",
                    )
                )
        elif vouches:
            vouched = "signed"
        if not linked:
            vouched = "cut"
    return findings


def load_transaction(store: TxStore, tx_id: bytes) -> tuple[Transaction | None, str]:
    """``(body, "")`` from ``store``; ``(None, reason)`` when absent or undecodable.

    A stored value is a :class:`Transaction`, its wire bytes, or a row with a ``body`` attribute
    holding them.

    Never raises for a bad stored value: corruption is a finding, not a crash.
    """
    try:
        value = store[tx_id]
    except KeyError:
        return None, "missing"
    if isinstance(value, Transaction):
        return value, ""
    body = getattr(value, "body", None)  # a store row (StoredTransaction): its wire bytes
    if isinstance(body, bytes):
        value = body
    if isinstance(value, bytes):
        try:
            return Transaction.from_wire(value), ""
        except codec.DecodeError as exc:
            return None, f"undecodable: {exc}"
    return None, f"unexpected stored type {type(value).__name__}"


def verify_chain(
    genesis: Genesis,
    blocks: Sequence[Block],
    store: TxStore | None = None,
    *,
    primary: Primary = None,
    policy: SignerPolicy | None = None,
    check_signatures: bool = True,
    check_unlisted: bool = True,
    pending: Collection[bytes] = (),
) -> ChainReport:
    """Verify ``blocks`` on ``genesis`` and, when ``store`` is given, every listed body.

    ``pending`` are IDs accepted but not yet packed into a block (not reported as unlisted).
    Without a store this is the auditor's check of published headers and IDs.
    """
    findings = check_headers(genesis, blocks, primary)
    n_tx = n_sig = 0
    if store is not None:
        listed: set[bytes] = set()
        for pos, block in enumerate(blocks):
            height = pos + 1
            ids = block.tx_ids
            listed.update(ids)
            bodies: list[Transaction | None] = []
            recomputed: list[bytes] = []
            reasons: list[str] = []
            for tid in ids:
                tx, reason = load_transaction(store, tid)
                bodies.append(tx)
                reasons.append(reason)
                recomputed.append(tx.id if tx is not None else b"")
            n_tx += len(ids)
            bad = set(merkle.diff(ids, recomputed)) if recomputed != list(ids) else set()
            for i in sorted(bad):
                tx = bodies[i]
                if tx is None and reasons[i] == "missing":
                    findings.append(
                        Finding(
                            FindingKind.TRANSACTION_MISSING,
                            height,
                            i,
                            ids[i],
                            detail="listed in the block, absent from the store",
                        )
                    )
                else:
                    detail = reasons[i] or f"stored body recomputes to {recomputed[i][:4].hex()}"
                    findings.append(Finding(FindingKind.BODY_ALTERED, height, i, ids[i], detail))
            if not check_signatures:
                continue
            for i, tx in enumerate(bodies):
                if tx is None or i in bad:
                    continue
                n_sig += len(tx.public_keys)
                v = verify_transaction(tx, genesis.scheme, policy)
                if v.ok:
                    continue
                only_policy = all(p.problem is Problem.SIGNER_NOT_LISTED for p in v.problems)
                kind = FindingKind.SIGNER_MISSING if only_policy else FindingKind.SIGNATURE_INVALID
                findings.append(Finding(kind, height, i, tx.id, str(v), v.problems))
        if check_unlisted:
            waiting = set(pending)
            for tid in store:
                if tid not in listed and tid not in waiting:
                    findings.append(
                        Finding(
                            FindingKind.TRANSACTION_UNLISTED,
                            tx_id=tid,
                            detail="stored but listed in no block",
                        )
                    )
    return ChainReport(tuple(findings), len(blocks), n_tx, n_sig)


# ---------------------------------------------------------------------------------------------
# Repair from peers


@dataclass(frozen=True, slots=True)
class RepairResult:
    """What :func:`repair` did: restored IDs, IDs no peer could supply, and peer copies refused."""

    restored: tuple[bytes, ...]
    unrecoverable: tuple[bytes, ...]
    refused: tuple[tuple[int, bytes, str], ...]
    report: ChainReport | None = None

    @property
    def complete(self) -> bool:
        """True if every damaged transaction was restored."""
        return not self.unrecoverable


def fetch_verified(
    tx_id: bytes,
    peers: Sequence[TxStore],
    scheme: str | Scheme,
    policy: SignerPolicy | None = None,
) -> tuple[Transaction | None, list[tuple[int, bytes, str]]]:
    """The first peer copy of ``tx_id`` whose ID recomputes to ``tx_id`` and whose signatures
    verify, plus the refused copies ``(peer index, tx_id, reason)``."""
    refused: list[tuple[int, bytes, str]] = []
    for j, peer in enumerate(peers):
        tx, reason = load_transaction(peer, tx_id)
        if tx is None:
            if reason != "missing":
                refused.append((j, tx_id, reason))
            continue
        if tx.id != tx_id:
            refused.append((j, tx_id, f"peer copy recomputes to {tx.id[:4].hex()}"))
            continue
        v = verify_transaction(tx, scheme, policy)
        if not v.ok:
            refused.append((j, tx_id, str(v)))
            continue
        return tx, refused
    return None, refused


def repair(
    genesis: Genesis,
    blocks: Sequence[Block],
    local: MutableMapping[bytes, Transaction],
    peers: Sequence[TxStore],
    *,
    report: ChainReport | None = None,
    primary: Primary = None,
    policy: SignerPolicy | None = None,
    pending: Collection[bytes] = (),
) -> RepairResult:
    """Restore every missing or altered listed transaction of ``local`` from ``peers`` and
    re-verify the chain; the result carries the new report."""
    if report is None:
        report = verify_chain(
            genesis, blocks, local, primary=primary, policy=policy, pending=pending
        )
    restored: list[bytes] = []
    lost: list[bytes] = []
    refused: list[tuple[int, bytes, str]] = []
    for tid in dict.fromkeys(report.repairable_ids()):
        tx, why = fetch_verified(tid, peers, genesis.scheme, policy)
        refused.extend(why)
        if tx is None:
            lost.append(tid)
        else:
            local[tid] = tx
            restored.append(tid)
    after = verify_chain(genesis, blocks, local, primary=primary, policy=policy, pending=pending)
    return RepairResult(tuple(restored), tuple(lost), tuple(refused), after)
