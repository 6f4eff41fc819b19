"""View change rules: checking VIEW-CHANGE messages and computing a NEW-VIEW (TOCS 2002 §4.4).

Theory of operation
-------------------
A backup whose request timer expires stops accepting messages of view ``v`` and sends
``<VIEW-CHANGE, v+1, h, C, P, i>``: ``h`` its stable checkpoint with proof ``C`` (2f+1 CHECKPOINTs)
and ``P`` one prepared certificate per sequence above ``h`` (a PRE-PREPARE and 2f matching
PREPAREs of distinct backups, the highest view's). :func:`check_view_change` verifies all of it,
authenticators included, so a faulty replica cannot invent a certificate.

The primary of ``v+1`` collects 2f+1 valid view changes (its own included) and derives the
pre-prepares of the new view with :func:`plan_new_view`:

* ``min_s`` = the highest stable checkpoint among them, ``max_s`` = the highest prepared sequence;
* for every ``s`` in ``(min_s, max_s]``: if some certificate for ``s`` exists, re-issue its batch
  (the one from the highest view); otherwise issue the *null request* (empty batch).

Any batch committed at ``s`` was prepared by 2f+1 replicas, f+1 of them honest; any 2f+1 view
changes include one of those, so the batch is re-issued and no committed request is lost or
reordered. Backups recompute the plan from the NEW-VIEW's view changes and accept it only if the
primary's pre-prepares match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medbench.consensus.pbft.checkpoint import verify_proof
from medbench.consensus.pbft.messages import (
    NULL_DIGEST,
    Item,
    PrePrepare,
    Verify,
    ViewChange,
    compute_batch_digest,
)


def check_view_change(vc: ViewChange, n: int, window: int, verify: Verify) -> str | None:
    """``None`` when ``vc``'s checkpoint proof and prepared certificates hold, else why not.

    The outer authenticator of ``vc`` is checked by the caller.
    """
    f = (n - 1) // 3
    h = vc.stable_sequence
    if h == 0:
        if vc.checkpoint_proof:
            return "proof for the genesis checkpoint"
    elif verify_proof(vc.checkpoint_proof, h, n, 2 * f + 1, verify) is None:
        return "bad checkpoint proof"
    seen: set[int] = set()
    for proof in vc.prepared:
        pp = proof.pre_prepare
        s = pp.sequence
        if s in seen:
            return "two certificates for one sequence"
        seen.add(s)
        if not h < s <= h + window:
            return "certificate outside the watermarks"
        if pp.view >= vc.view:
            return "certificate from a view not before the new one"
        primary = pp.view % n
        if pp.replica != primary:
            return "certificate pre-prepare not from its primary"
        if compute_batch_digest(pp.timestamp, pp.batch) != pp.batch_digest:
            return "certificate batch digest mismatch"
        voters: set[int] = set()
        for p in proof.prepares:
            if (p.view, p.sequence, p.batch_digest) != (pp.view, s, pp.batch_digest):
                return "certificate prepare does not match"
            if p.replica == primary or not 0 <= p.replica < n or p.replica in voters:
                return "certificate prepare from a wrong replica"
            voters.add(p.replica)
        if len(voters) < 2 * f:
            return "certificate without 2f prepares"
        if not verify(pp.replica, pp.body(), pp.auth):
            return "certificate pre-prepare not authentic"
        for p in proof.prepares:
            if not verify(p.replica, p.body(), p.auth):
                return "certificate prepare not authentic"
    return None


@dataclass(frozen=True, slots=True)
class Plan:
    """What a NEW-VIEW must re-issue: ``batches[s] = (timestamp, batch, digest)``."""

    min_s: int
    max_s: int
    batches: dict[int, tuple[int, tuple[Item, ...], bytes]]
    checkpoint: ViewChange


def plan_new_view(view_changes: Iterable[ViewChange]) -> Plan:
    """Compute ``min_s``, ``max_s`` and the batch for every sequence between (TOCS §4.4)."""
    vcs = list(view_changes)
    assert vcs, "plan_new_view needs view changes"
    best_vc = max(vcs, key=lambda vc: vc.stable_sequence)
    min_s = best_vc.stable_sequence
    chosen: dict[int, PrePrepare] = {}
    for vc in vcs:
        for proof in vc.prepared:
            pp = proof.pre_prepare
            if pp.sequence <= min_s:
                continue
            old = chosen.get(pp.sequence)
            if old is None or pp.view > old.view:
                chosen[pp.sequence] = pp
    max_s = max(chosen, default=min_s)
    batches: dict[int, tuple[int, tuple[Item, ...], bytes]] = {}
    for s in range(min_s + 1, max_s + 1):
        cert = chosen.get(s)
        if cert is None:
            batches[s] = (0, (), NULL_DIGEST)
        else:
            batches[s] = (cert.timestamp, cert.batch, cert.batch_digest)
    return Plan(min_s, max_s, batches, best_vc)


def matches_plan(plan: Plan, pre_prepares: tuple[PrePrepare, ...], view: int, n: int) -> bool:
    """True when ``pre_prepares`` are exactly the plan's, issued by the primary of ``view``."""
    if len(pre_prepares) != len(plan.batches):
        return False
    for pp, s in zip(pre_prepares, range(plan.min_s + 1, plan.max_s + 1), strict=True):
        ts, _batch, digest = plan.batches[s]
        if pp.sequence != s or pp.view != view or pp.replica != view % n:
            return False
        if pp.batch_digest != digest or pp.timestamp != ts:
            return False
        if compute_batch_digest(pp.timestamp, pp.batch) != digest:
            return False
    return True
