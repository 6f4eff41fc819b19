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
* **Timers run only while there is work** (a request waiting, or an uncommitted block holding
  requests): an idle group sends nothing. The replica arms, re-arms and disarms the timer; this
  module only keeps its deadline.
* **Exponential back-off**: each timeout without a commit in between doubles the next one
  (``base << backoff``, capped at ``max_timeout_us``); a commit resets it (§4.4: "the pacemaker
  can double the timeout ... until progress").
* **Linear view change** (§4.4, Algorithm 5 ``onNextSyncView``): on a timeout in view ``v`` a
  replica enters ``v + 1`` and sends ``NEW-VIEW(v + 1, qc_high)`` to the leader of ``v + 1``
  only (O(n) messages per view change). That leader waits for ``n - f`` of them (a strong
  quorum, :func:`medbench.quorum.strong_quorum`), takes the highest QC among them and proposes;
  it carries the ``n - f`` NEW-VIEWs as the *timeout certificate* of its proposal (see
  :mod:`.messages`), so no replica jumps to a view that a quorum did not reach. (With threshold
  signatures that certificate is one aggregate; here it is the individual messages, O(n)
  signatures in that one proposal.)

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

The leader keeps, per sender, only the highest NEW-VIEW it received (bounded memory whatever a
faulty replica sends).
"""

from __future__ import annotations

from medbench.consensus.hotstuff.messages import NewView
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
        self.new_views: dict[int, NewView] = {}  # sender -> its highest NEW-VIEW to this leader
        self.certificates: dict[int, tuple[NewView, ...]] = {}  # view -> timeout certificate

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

    def add_new_view(self, nv: NewView) -> tuple[NewView, ...] | None:
        """Count ``nv`` (its sender's newest); the timeout certificate for ``nv.view`` once a
        quorum of distinct senders sent NEW-VIEW for exactly that view, else ``None``."""
        old = self.new_views.get(nv.replica)
        if old is not None and old.view >= nv.view:
            return None
        self.new_views[nv.replica] = nv
        v = nv.view
        if v in self.certificates:
            return None
        same = [m for m in self.new_views.values() if m.view == v]
        if len(same) < self.quorum:
            return None
        tc = tuple(sorted(same, key=lambda m: m.replica)[: self.quorum])
        self.certificates[v] = tc
        return tc

    def forget_below(self, view: int) -> None:
        """Drop timeout certificates of views below ``view``."""
        for v in [v for v in self.certificates if v < view]:
            del self.certificates[v]
