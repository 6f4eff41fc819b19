"""Checking quorum certificates and timeout certificates (HotStuff, PODC 2019 §4.1, §5).

Theory of operation
-------------------
A :class:`~.messages.QC` for ``(view, block)`` is valid when it carries at least
``strong_quorum(n)`` votes (:func:`medbench.quorum.strong_quorum`, ``ceil((n + f + 1) / 2)``:
``2f + 1 = n - f`` at ``n = 3f + 1``; for the sizes in between it grows so that two quorums still
share an honest replica, which is what the locking rule needs) from *distinct* replicas, each
vote authentic. A *timeout certificate* for view ``v`` proves that a strong quorum of distinct
replicas left view ``v - 1``: each entry is that replica's signed ``NEW-VIEW(v)`` (it timed out)
or its signed vote of view ``v - 1`` (it voted, for any block; see :mod:`.pacemaker`). The
genesis QC is the only certificate of view 0 and carries no votes.

Checks go cheapest first (count, distinct and in-range voters) and signatures last.

:class:`VerdictMemo` is an optional, explicit speed-up for simulations: when every replica of a
process shares one memo and the authentication scheme is *transferable* (``signatures`` or
``modeled``: whether a vote verifies does not depend on who checks it), a nested vote or NEW-VIEW
object that one replica verified is not verified again by the others. Each replica's keyring is
still charged as if it had verified it (its ``verifies`` and ``primitives`` counters go up), so a
simulator that charges CPU time from the counters charges exactly the same. MAC authenticators
are not transferable (each replica checks its own entry), so a memo must not be used with them:
:class:`VerdictMemo` refuses to be built for a ``macs`` keyring.
"""

from __future__ import annotations

from typing import Any

from medbench.consensus.auth import Keyring, Scheme
from medbench.consensus.hotstuff.messages import GENESIS_QC, QC, NewView, Vote


class VerdictMemo:
    """Shared by the replicas of one simulated run: remembers which nested messages verified.

    A verdict is stored on the message object itself (its ``_verdict`` slot holds the memo), so
    a lookup is one attribute read and the memo holds no references.
    """

    def __init__(self, scheme: Scheme | str) -> None:
        scheme = Scheme(scheme)
        if scheme is Scheme.MACS:
            raise ValueError("MAC authenticators are not transferable: no shared verdicts")
        self.scheme = scheme
        self.hits = 0

    def __repr__(self) -> str:
        return f"VerdictMemo({self.scheme.value}, hits={self.hits})"


def _charge(keyring: Keyring) -> None:
    """Count one verification the memo saved (the simulator charges it all the same)."""
    keyring.verifies += 1
    keyring.primitives += 1


def verify_nested(keyring: Keyring, memo: VerdictMemo | None, sender: int, msg: Any) -> bool:
    """Check ``msg``'s authenticator as sent by ``sender`` (a vote in a QC, a NEW-VIEW in a
    timeout certificate), consulting and feeding ``memo``."""
    if memo is not None and msg._verdict is memo:
        memo.hits += 1
        _charge(keyring)
        return True
    if not keyring.verify(sender, msg.body(), msg.auth):
        return False
    if memo is not None:
        object.__setattr__(msg, "_verdict", memo)
    return True


def check_qc(qc: QC, keyring: Keyring, n: int, quorum: int, memo: VerdictMemo | None) -> str | None:
    """Why ``qc`` is not a valid certificate, or ``None`` (see the module docstring)."""
    if qc.view == 0:
        return None if qc == GENESIS_QC else "a view-0 QC that is not the genesis QC"
    if memo is not None and qc._verdict is memo:
        memo.hits += 1
        keyring.verifies += len(qc.votes)
        keyring.primitives += len(qc.votes)
        return None
    votes = qc.votes
    if len(votes) < quorum:
        return "too few votes"
    seen: set[int] = set()
    for v in votes:
        r = v.replica
        if r >= n:
            return "vote from a non-replica"
        if r in seen:
            return "duplicate voter"
        seen.add(r)
    for v in votes:
        if not verify_nested(keyring, memo, v.replica, v):
            return "invalid vote signature"
    if memo is not None:
        object.__setattr__(qc, "_verdict", memo)
    return None


def check_tc(
    tc: tuple[NewView | Vote, ...],
    view: int,
    keyring: Keyring,
    n: int,
    quorum: int,
    memo: VerdictMemo | None,
) -> str | None:
    """Why ``tc`` is not a timeout certificate for ``view``, or ``None``."""
    if len(tc) < quorum:
        return "timeout certificate too small"
    seen: set[int] = set()
    for m in tc:
        if m.view != (view if type(m) is NewView else view - 1):
            return "timeout certificate for another view"
        r = m.replica
        if r >= n:
            return "timeout certificate names a non-replica"
        if r in seen:
            return "duplicate sender in timeout certificate"
        seen.add(r)
    for m in tc:
        if not verify_nested(keyring, memo, m.replica, m):
            return "invalid signature in timeout certificate"
    return None


def highest_qc(tc: tuple[NewView | Vote, ...]) -> int:
    """The highest QC view among the NEW-VIEWs of a timeout certificate."""
    return max((m.qc.view for m in tc if type(m) is NewView), default=0)
