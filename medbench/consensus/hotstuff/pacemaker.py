"""The HotStuff pacemaker: views, leader rotation, back-off timers, NEW-VIEW collection.

Theory of operation
-------------------
PODC 2019 §4.4 and Algorithms 4-5 leave view synchronisation to a *pacemaker*; this one is the
paper's basic design with the choices below (each exercised by ``tests/hotstuff``):

* **Leader rotation**: the leader of view ``v`` is ``v mod n`` (:func:`medbench.rotation.
  primary_of`), so every view has a new leader, as in chained HotStuff (§5).
* **Views advance on evidence.** A replica enters view ``v + 1`` once it voted in view ``v``
  (its vote goes to the leader of ``v + 1``, the paper's "send to the next leader"), once it
  sees a QC of view ``v``, or once it holds a *timeout certificate* for ``v + 1``. It never goes
  back.
* **Timers run while there is work** (a request waiting, or an uncommitted block holding
  requests), **and every voter times out once**: after voting for a proposal a replica keeps
  its timer running until it fires once, even with no work of its own. Its NEW-VIEW then
  carries its vote (below) — a replica that committed everything (say, from a sync answer that
  showed it a QC the others never saw) must still lend its vote to the others' view changes,
  or where the quorum is every honest replica (``n = 5``, one faulty) no QC could form again.
  An idle group therefore sends one round of NEW-VIEWs after its last proposal, then nothing.
  The replica arms, re-arms and disarms the timer; this module only keeps its deadline.
* **Exponential back-off**: each timeout without a commit in between doubles the next one
  (``base << backoff``, capped at ``max_timeout_us``); a commit resets it (§4.4: "the pacemaker
  can double the timeout ... until progress").
* **Linear view change** (§4.4, Algorithm 5 ``onNextSyncView``): on a timeout in view ``v`` a
  replica enters ``v + 1`` and sends ``NEW-VIEW(v + 1, qc_high)`` to the leader of ``v + 1``
  only (O(n) messages per view change). That leader proposes once it holds a QC of view
  ``v`` (the happy path) or a *timeout certificate* for ``v + 1``: proofs from ``n - f``
  distinct replicas (a strong quorum, :func:`medbench.quorum.strong_quorum`) that they left
  view ``v``. A proof is a ``NEW-VIEW(v + 1)`` or — a medbench addition — a signed vote of view
  ``v`` for *any* block (a replica that voted in ``v`` has left it as surely as one that timed
  out). Votes count because of equivocation: a faulty leader of ``v`` that splits its block
  between two halves leaves the next leader with votes for two blocks, no QC, and no NEW-VIEW
  (the voters moved on to ``v + 1`` and wait there); without them the honest next leader would
  lose its view too, and at ``n = 4`` a rotation would keep only two consecutive honest views —
  too few for a three-chain: nothing would ever commit (the random fault schedules of
  ``tests/hotstuff`` found this). The leader takes the highest QC it knows, which is at least
  the highest of the NEW-VIEWs, and carries the certificate in its proposal (see
  :mod:`.messages`), so no replica jumps to a view that a quorum did not reach. (With threshold
  signatures that certificate would be one aggregate; here it is the individual messages, O(n)
  signatures in that one proposal.) While votes for a view above its highest QC are still
  coming in, the leader waits up to ``certificate_grace_us`` before using a certificate: the
  QC those votes may complete keeps the chain's views consecutive where the certificate would
  leave a gap (at ``n = 5`` with one replica faulty the quorum is every honest replica, and a
  replica that timed out and then voted late, or faulty replicas' quick NEW-VIEWs, made the
  certificate win that race on every view).
* **A leader whose certificate holds a *busy* NEW-VIEW proposes even with nothing to order**:
  a replica timed out waiting for it with work to do (requests it has not committed, which this
  replica may already have), so the leader sends at least an empty block to grow the chain.
  NEW-VIEW carries its sender's ``busy`` bit for this; votes and idle NEW-VIEWs force nothing
  (every view of the normal case ends with a quorum of votes, every idle period with a round of
  idle NEW-VIEWs).

* **Votes survive a crashed leader** (a medbench addition to Algorithm 5): a NEW-VIEW also
  carries its sender's last vote when no QC the sender knows covers it, and the leader counts it
  like a vote sent to it. Chained HotStuff forms the QC of a block at the *next* leader, and
  commits a block only when the QC of the third block after it is known; with the paper's
  NEW-VIEW (``qc_high`` only) a crashed next leader loses that QC for good, so committing needs
  four consecutive correct leaders — which a round-robin rotation never has at ``n = 4`` with
  one replica down (every fourth leader is the crashed one). With the carried votes the leader
  after the crashed one forms that QC, and three consecutive correct leaders suffice, which
  every rotation of ``n = 3f + 1`` replicas with ``f`` down contains. ``tests/hotstuff`` shows
  both. (The votes carry their own signatures: forming a QC from them is as safe as from
  votes received directly.)

The leader keeps at most one proof per sender and view, only for views it leads within
``vote_window`` of its own (bounded memory whatever a faulty replica sends).
"""

from __future__ import annotations

from medbench.consensus.hotstuff.messages import NewView, Vote
from medbench.rotation import primary_of


class Pacemaker:
    """One replica's view, view timer and the NEW-VIEWs it collected as a leader."""

    def __init__(
        self, node_id: int, n: int, quorum: int, base_timeout_us: int, max_timeout_us: int
    ) -> None:
        self.node_id = node_id
        self.n = n
        self.quorum = quorum
        self.base_timeout_us = base_timeout_us
        self.max_timeout_us = max_timeout_us
        self.view = 1
        self.backoff = 0
        self.deadline: int | None = None
        # view -> sender -> its proof of leaving view - 1 (views this replica leads)
        self.exits: dict[int, dict[int, NewView | Vote]] = {}
        self.certificates: dict[int, tuple[NewView | Vote, ...]] = {}  # view -> timeout cert
        self.ready_at: dict[int, int] = {}  # view -> when its vote-holding certificate may be used

    def leader(self, view: int) -> int:
        """The leader of ``view``: ``view mod n``."""
        return primary_of(view, self.n)

    def timeout_us(self) -> int:
        """The current view timeout: ``base << backoff``, capped."""
        return min(self.base_timeout_us << min(self.backoff, 40), self.max_timeout_us)

    def enter(self, view: int) -> bool:
        """Move to ``view`` if it is higher; True if the view changed."""
        if view > self.view:
            self.view = view
            return True
        return False

    def restart(self, now: int) -> None:
        """(Re)start the timer of the current view."""
        self.deadline = now + self.timeout_us()

    def arm(self, now: int) -> None:
        """Start the timer if it is not running."""
        if self.deadline is None:
            self.deadline = now + self.timeout_us()

    def disarm(self) -> None:
        """Stop the timer (no work)."""
        self.deadline = None

    def expired(self, now: int) -> bool:
        """True when the running timer's deadline has passed."""
        return self.deadline is not None and now >= self.deadline

    def time_out(self, now: int) -> int:
        """The view timed out: back off, enter the next view, restart the timer; return it."""
        self.backoff += 1
        self.view += 1
        self.restart(now)
        return self.view

    def progress(self) -> None:
        """A commit: the next timeout is the base one again."""
        self.backoff = 0

    def add_exit(
        self, view: int, proof: NewView | Vote, now: int = 0, grace_us: int = 0
    ) -> tuple[NewView | Vote, ...] | None:
        """Count ``proof`` — a NEW-VIEW for ``view`` or a vote of ``view - 1`` — as its sender's
        proof that it left ``view - 1``; the timeout certificate of ``view`` once a quorum of
        distinct senders gave one, else ``None``. The leader waits up to ``grace_us``
        (:attr:`ready_at`) before using it while a higher QC may still complete."""
        if view in self.certificates:
            return None
        proofs = self.exits.get(view)
        if proofs is None:
            proofs = self.exits[view] = {}
        if proof.replica in proofs:
            return None
        proofs[proof.replica] = proof
        if len(proofs) < self.quorum:
            return None
        tc = tuple(proofs[r] for r in sorted(proofs))[: self.quorum]
        self.certificates[view] = tc
        del self.exits[view]
        if grace_us:
            self.ready_at[view] = now + grace_us
        return tc

    def forget_below(self, view: int) -> None:
        """Drop the proofs and certificates of views below ``view``."""
        for table in (self.certificates, self.exits, self.ready_at):
            for v in [v for v in table if v < view]:
                del table[v]
