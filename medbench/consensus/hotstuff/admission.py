"""Which proposals a HotStuff replica admits: the checks, cheapest first, as pure functions.

Theory of operation
-------------------
Before a replica stores a proposed block and asks :mod:`.safety` for a vote (Algorithm 3
``onReceiveProposal``), the proposal must be well formed for the protocol. Each function here
answers the reason it is not, or ``None``, and touches no replica state; the replica calls them
in this order, so that the cheap checks run before any signature:

* :func:`shape` — no signature needed: sent by the leader of its view (``v mod n``), for a view
  above the committed one, at most ``max_batch_size`` requests, parent = the block its justify QC
  certifies (``b.parent == b.justify.node``), justify QC of an earlier view, and a timeout
  certificate unless the QC is of the previous view;
* :func:`certificates` — the justify QC and the timeout certificate verify (:mod:`.certificates`)
  and the QC is at least the highest one the certificate's NEW-VIEWs report;
* :func:`extends` — once the parent is known: one height and at least one view above it, time
  not before the parent's nor more than ``max_clock_skew_us`` from the replica's clock (the agreed
  time of PBFT, TOCS §4.6), no request twice, every request authentic.
"""

from __future__ import annotations

from collections.abc import Callable

from medbench.consensus.auth import Keyring
from medbench.consensus.hotstuff.certificates import (
    VerdictMemo,
    check_qc,
    check_tc,
    highest_qc,
)
from medbench.consensus.hotstuff.messages import Block, Proposal, Request


def shape(p: Proposal, src: int, n: int, committed_view: int, max_batch: int) -> str | None:
    """Why ``p`` (from ``src``) is malformed for the protocol, before any signature check."""
    b = p.block
    v = b.view
    if src != p.replica or p.replica != v % n or b.proposer != p.replica:
        return "proposal not from the leader of its view"
    if v <= committed_view:
        return "proposal for a committed view"
    if len(b.batch) > max_batch:
        return "oversized batch"
    justify = b.justify
    if b.parent != justify.block_hash:
        return "parent is not the justified block"
    if justify.view >= v:
        return "justify QC not below the proposal's view"
    if justify.view + 1 != v and not p.timeout_cert:
        return "view not justified: no timeout certificate"
    return None


def certificates(
    p: Proposal, keyring: Keyring, n: int, quorum: int, memo: VerdictMemo | None
) -> str | None:
    """Why the justify QC or the timeout certificate of ``p`` is not valid."""
    b = p.block
    justify = b.justify
    reason = check_qc(justify, keyring, n, quorum, memo)
    if reason is not None:
        return f"invalid justify QC: {reason}"
    tc = p.timeout_cert
    if tc:
        if justify.view + 1 == b.view:
            return "timeout certificate on the happy path"
        reason = check_tc(tc, b.view, keyring, n, quorum, memo)
        if reason is not None:
            return reason
        if justify.view < highest_qc(tc):
            return "justify QC lower than one in its timeout certificate"
    return None


def extends(
    b: Block,
    parent: Block,
    now: int,
    max_skew_us: int,
    check_request: Callable[[Request], str | None],
) -> str | None:
    """Why ``b`` cannot follow its (known) ``parent`` at a replica whose clock reads ``now``."""
    if b.height != parent.height + 1:
        return "height is not the parent's plus one"
    if b.view <= parent.view:
        return "view not above the parent's"
    t = b.timestamp
    if t < parent.timestamp:
        return "block time before its parent's"
    if t > now + max_skew_us or t < now - max_skew_us:
        return "block time too far from this replica's clock"
    if b.batch:
        seen: set[tuple[int, int]] = set()
        for req in b.batch:
            key = (req.client, req.timestamp)
            if key in seen:
                return "request twice in one batch"
            seen.add(key)
            reason = check_request(req)
            if reason is not None:
                return reason
    return None
