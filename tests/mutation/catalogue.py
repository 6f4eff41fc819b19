"""The mutation gate's catalogue: small, plausible protocol bugs, each a find/replace edit.

Every entry names a file of the ``medbench`` package, an exact snippet that must occur **once**
in it, and its replacement. ``runner.py`` applies one entry to a scratch copy of the package (never
the real tree) and runs the adversary's schedules against it; an entry whose snippet no longer
occurs exactly once fails the gate loudly, so the catalogue cannot rot silently when the code
moves. A mutant counts as killed only by a safety, liveness or agreement verdict
(``tests/pbft/verdicts.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    """One plausible bug: ``find`` -> ``replace`` in ``path`` (relative to the package)."""

    id: str
    category: str
    path: str
    find: str
    replace: str
    what: str
    protocol: str = "pbft"  # whose schedules judge it (tests/mutation/child.py)

    def apply(self, text: str) -> str:
        """``text`` with the edit made; ``ValueError`` unless ``find`` occurs exactly once."""
        count = text.count(self.find)
        if count != 1:
            raise ValueError(f"mutant {self.id}: its snippet occurs {count} times in {self.path}")
        return text.replace(self.find, self.replace)


PB = "consensus/pbft/"
HS = "consensus/hotstuff/"

CATALOGUE: tuple[Mutant, ...] = (
    # --- quorum thresholds ---------------------------------------------------------------------
    Mutant(
        "prepare-quorum", "quorum", PB + "core.py",
        "        self.votes = QuorumTracker(n)\n",
        "        self.votes = QuorumTracker(n, {PREPARE_PHASE: strong_quorum(n) - 1})\n",
        "prepared with 2f votes (the pre-prepare and 2f-1 PREPAREs)",
    ),
    Mutant(
        "commit-quorum", "quorum", PB + "core.py",
        "        self.votes = QuorumTracker(n)\n",
        "        self.votes = QuorumTracker(n, {COMMIT_PHASE: strong_quorum(n) - 1})\n",
        "committed-local on 2f COMMITs",
    ),
    Mutant(
        "half-quorums", "quorum", PB + "core.py",
        "        self.votes = QuorumTracker(n)\n",
        "        self.votes = QuorumTracker(n, {PREPARE_PHASE: n // 2, COMMIT_PHASE: n // 2})\n",
        "prepared and committed on n/2 votes (half, rounded down)",
    ),
    Mutant(
        "new-view-quorum", "quorum", PB + "viewchange.py",
        "        if len(voters) < self.quorum:\n",
        "        if len(voters) < self.f + 1:\n",
        "a NEW-VIEW accepted with f+1 VIEW-CHANGEs",
    ),
    Mutant(
        "join-on-one", "quorum", PB + "viewchange.py",
        "        if len(higher) >= self.f + 1:\n",
        "        if len(higher) >= 1:\n",
        "join a higher view on one replica's VIEW-CHANGE (not f+1)",
    ),
    # --- the view change -----------------------------------------------------------------------
    Mutant(
        "lowest-view-certificate", "new-view", PB + "viewchange.py",
        "            if old is None or pp.view > old.view:\n",
        "            if old is None or pp.view < old.view:\n",
        "a NEW-VIEW re-issues the lowest-view certificate of a sequence, not the highest",
    ),
    Mutant(
        "lowest-checkpoint", "new-view", PB + "viewchange.py",
        "    best_vc = max(vcs, key=lambda vc: vc.stable_sequence)\n",
        "    best_vc = min(vcs, key=lambda vc: vc.stable_sequence)\n",
        "a NEW-VIEW starts from the lowest stable checkpoint of its view changes",
    ),
    Mutant(
        "new-view-unchecked", "new-view", PB + "viewchange.py",
        "        if not matches_plan(plan, nv.pre_prepares, v, self.n, self.hash_work):\n",
        "        if not matches_plan(plan, nv.pre_prepares, v, self.n, None) and False:\n",
        "backups do not recompute the NEW-VIEW's pre-prepares from its view changes",
    ),
    Mutant(
        "view-change-without-certificates", "new-view", PB + "viewchange.py",
        "slot.proof for slot in self.log if slot.proof is not None and slot.sequence > stable",
        "slot.proof for slot in self.log if slot.proof is not None and slot.sequence > stable + 1",
        "a VIEW-CHANGE leaves out the certificate of the first sequence above the checkpoint",
    ),
    Mutant(
        "no-view-change-timer", "liveness", PB + "viewchange.py",
        "            self.vc_deadline = self.now + self._timeout()\n",
        "            self.vc_deadline = None\n",
        "the timer of a view being entered never starts (a silent new primary stalls it)",
    ),
    # --- watermark, view and digest checks -----------------------------------------------------
    Mutant(
        "second-pre-prepare", "checks", PB + "core.py",
        """            else:
                self._reject(pp, "conflicting pre-prepare")
            return
        if slot.committed and slot.digest != pp.batch_digest:
            self._reject(pp, "contradicts a committed batch")
            return
        if self._voted_otherwise(slot, v, pp.batch_digest):
            self._reject(pp, "contradicts own prepare")
            return
""",
        """                return
""",
        "a backup refuses only duplicate pre-prepares, not conflicting ones",
    ),
    Mutant(
        "pre-prepare-any-view", "checks", PB + "core.py",
        "        if v != self.view or not self.active:\n            self._wrong_view(src, pp)",
        "        if v < self.view:\n            self._wrong_view(src, pp)",
        "pre-prepares of a view not installed (yet) are accepted",
    ),
    Mutant(
        "batch-digest-unchecked", "digests", PB + "core.py",
        "        if compute_batch_digest(pp.timestamp, pp.batch) != pp.batch_digest:\n",
        "        if False:\n",
        "a backup does not recompute a pre-prepare's batch digest",
    ),
    Mutant(
        "replay-digests-unchecked", "digests", PB + "recovery.py",
        "        if compute_batch_digest(rec.timestamp, rec.items) != rec.batch_digest:\n",
        "        if False:\n",
        "recovery replays a stored batch without recomputing its digest (defect 2)",
    ),
    Mutant(
        "future-batches", "time", PB + "core.py",
        "        if t > self.now + skew:\n",
        "        if t > self.now + 1_000 * skew:\n",
        "a pre-prepare dated far ahead of the backup's clock is accepted",
    ),
    Mutant(
        "block-time-unbounded", "time", PB + "core.py",
        "        if abs(block.timestamp - self.now) > self.config.max_clock_skew_us:\n",
        "        if block.timestamp - self.now < -1_000 * self.config.max_clock_skew_us:\n",
        "a BLOCK dated ahead of the clock is admitted (defect 3)",
    ),
    Mutant(
        "block-foreign-transactions", "blocks", PB + "blocker.py",
        "            if tx not in self.unblocked:\n",
        "            if False:\n",
        "a block may list transactions never executed or already in a block",
    ),
    # --- checkpoints and state transfer --------------------------------------------------------
    Mutant(
        "collect-too-far", "checkpoints", PB + "statetransfer.py",
        "        self.log.collect(s)\n",
        "        self.log.collect(s + 1)\n",
        "a stable checkpoint also discards the slot just above it",
    ),
    Mutant(
        "proof-duplicates", "state-transfer", PB + "checkpoint.py",
        "        if not 0 <= c.replica < n or c.replica in seen:\n",
        "        if not 0 <= c.replica < n:\n",
        "a checkpoint proof may count one replica's CHECKPOINT several times",
    ),
    Mutant(
        "proof-unauthenticated", "state-transfer", PB + "checkpoint.py",
        "        if not verify(c.replica, c.body(), c.auth):\n",
        "        if False:\n",
        "a checkpoint proof's CHECKPOINTs are not authenticated",
    ),
    Mutant(
        "state-unverified", "state-transfer", PB + "statetransfer.py",
        "        if d != digest:\n",
        "        if False:\n",
        "a STATE answer is applied without chaining its batches to the proven digest",
    ),
    Mutant(
        "state-lone-proof", "state-transfer", PB + "statetransfer.py",
        "msg.proof, msg.checkpoint_sequence, self.n, self.quorum, self.keyring.verify",
        "msg.proof, msg.checkpoint_sequence, self.n, 1, self.keyring.verify",
        "one CHECKPOINT proves a state transfer",
    ),
    Mutant(
        "checkpoints-not-restored", "checkpoints", PB + "recovery.py",
        "                self.own_checkpoints[s] = cp\n                self.add_checkpoint(cp)\n",
        "                pass\n",
        "a restarted replica forgets its own CHECKPOINTs (lost ones keep the log window full)",
    ),
    # --- persistence and recovery (persist before send) ---------------------------------------
    Mutant(
        "primary-forgets-pre-prepare", "persist", PB + "core.py",
        "        self._ready.persist.append(pp)\n        self._send(self.others, pp)\n",
        "        self._send(self.others, pp)\n",
        "the primary sends its PRE-PREPARE without persisting it",
    ),
    Mutant(
        "execution-not-persisted", "persist", PB + "core.py",
        "        self._ready.persist.append(batch)\n",
        "",
        "an executed batch is not persisted (a restart executes it again)",
    ),
    Mutant(
        "votes-not-restored", "persist", PB + "recovery.py",
        "        for m in own:\n",
        "        for m in own[:0]:\n",
        "a restarted replica forgets the votes of its current view",
    ),
    # --- exactly-once, clients and refusals ---------------------------------------------------
    Mutant(
        "executes-duplicates", "exactly-once", PB + "core.py",
        "                if item.timestamp <= self.last_timestamp.get(c, 0):\n",
        "                if item.timestamp < self.last_timestamp.get(c, 0):\n",
        "a request ordered twice under one timestamp executes twice",
    ),
    Mutant(
        "client-one-reply", "client", PB + "client.py",
        "            if count >= (self.refusal_quorum if answer[1] else self.f + 1)\n",
        "            if count >= (self.refusal_quorum if answer[1] else 1)\n",
        "a client accepts the first reply (not f+1 matching)",
    ),
    Mutant(
        "client-weak-refusals", "client", PB + "client.py",
        "        self.refusal_quorum = n + self.f - strong_quorum(n) + 1\n",
        "        self.refusal_quorum = 1\n",
        "a client accepts one refusal (not a refusal quorum)",
    ),
    Mutant(
        "client-any-view", "client", PB + "client.py",
        "        self.view = max(self.view, self._vouched_view())\n",
        "        self.view = max(self.view, max(r.view for r in self.replies.values()))\n",
        "a client learns the view of any single reply (defect 8)",
    ),
    Mutant(
        "refusal-memory-newest", "refusals", PB + "refusals.py",
        "        return held is not None and timestamp in held\n",
        "        return held is not None and timestamp == max(held)\n",
        "a replica remembers only a client's newest refusal (defect 5)",
    ),
    Mutant(
        "votes-forgotten", "refusals", PB + "core.py",
        "        slot.accept(pp)\n        self._note_votes(pp)\n",
        "        slot.accept(pp)\n",
        "a replica forgets which requests it voted for, and may refuse them later",
    ),
    Mutant(
        "refuses-accepted", "refusals", PB + "core.py",
        "            if not self._may_refuse(item):\n",
        "            if False:\n",
        "a replica refuses a request it voted for at a sequence still open",
    ),
    Mutant(
        "refusal-split-waits", "refusals", PB + "client.py",
        "            decided = self._mixed_refusals(votes, timed_out)\n",
        "            decided = []\n",
        "a client waits for matching refusals forever (the split livelock)",
    ),
    # --- chained HotStuff (judged by tests/hotstuff: random schedules and Twins) --------------
    Mutant(
        "hs-two-chain-commit", "hs-commit", HS + "blocktree.py",
        "        if b1 is None or b1.height == 0:\n            return None\n",
        "        if b1 is None:\n            return None\n"
        "        if b2.parent == b1.hash and b2.view == b1.view + 1:\n            return b1\n",
        "a block commits on a two-chain (its child and grandchild certified), not a three-chain",
        "hotstuff",
    ),
    Mutant(
        "hs-vote-without-lock", "hs-voting", HS + "safety.py",
        "        if justify.view > locked.view:\n            return None\n",
        "        if justify.view >= 0:\n            return None\n",
        "a replica votes without the locked-QC rule (safeNode always true)",
        "hotstuff",
    ),
    Mutant(
        "hs-vote-twice", "hs-voting", HS + "safety.py",
        "        if block.view <= self.last_voted_view:\n",
        "        if block.view < self.last_voted_view:\n",
        "a replica may vote for a second block in the view it last voted in",
        "hotstuff",
    ),
    Mutant(
        "hs-small-quorum", "hs-quorum", HS + "replica.py",
        "        self.quorum = strong_quorum(n)",
        "        self.quorum = strong_quorum(n) - 1",
        "QCs (and timeout certificates) formed and accepted with n - f - 1 votes",
        "hotstuff",
    ),
    Mutant(
        "hs-qc-duplicate-voters", "hs-quorum", HS + "certificates.py",
        "        if r in seen:\n            return \"duplicate voter\"\n",
        "",
        "a QC may count one replica's vote several times",
        "hotstuff",
    ),
    Mutant(
        "hs-vote-not-persisted", "hs-persist", HS + "safety.py",
        "        return VoteDecision(vote, (vote,), None, False)\n",
        "        return VoteDecision(vote, (), None, False)\n",
        "the last voted view is not persisted (a restarted replica may vote twice in a view)",
        "hotstuff",
    ),
    Mutant(
        "hs-qc-high-frozen", "hs-qc-high", HS + "replica.py",
        "        self._raise_qc_high(qc, src)\n        b2 = self.tree.get(qc.block_hash)\n",
        "        b2 = self.tree.get(qc.block_hash)\n",
        "qc_high is not raised by the QCs of proposals (a leader proposes on a stale QC)",
        "hotstuff",
    ),
    Mutant(
        "hs-no-view-timer", "hs-liveness", HS + "pacemaker.py",
        "        return self.deadline is not None and now >= self.deadline\n",
        "        return False\n",
        "the pacemaker's view timer never fires (a silent leader stalls the chain)",
        "hotstuff",
    ),
)  # fmt: skip
