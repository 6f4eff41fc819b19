"""The Raft node: a sans-IO state machine (Ongaro & Ousterhout, USENIX ATC 2014, extended version).

Theory of operation
-------------------
``Replica`` implements :class:`medbench.node.Node`: ``step(src, msg)`` for every message,
``tick(now_us)`` for time, one :class:`medbench.node.Ready` back. **The driver writes
``Ready.persist`` before delivering ``Ready.messages``**: Figure 2's "updated on stable storage
before responding to RPCs" (current term, vote, new entries, snapshots: :mod:`.persist`).
:meth:`Replica.recover` rebuilds a crashed node from those records.

Nodes are ``0..n-1``; clients are any other id. Each node is a follower, a candidate or the
leader, and each role has its own handler table (keyed by message type); rule by rule:

* Every RPC carries a term (§5.1). A higher term makes the receiver a follower of that term
  (persisted); a lower one is answered with the current term (AppendEntries, InstallSnapshot,
  RequestVote) or dropped (responses). Except (§6, "disruptive servers"): a RequestVote is
  ignored altogether by a node that leads or heard from its leader less than a minimum election
  timeout ago, so a node that lagged or was cut off cannot depose a working leader.
* Election (§5.2): a follower or candidate that hears no leader within its election timeout —
  ``election_timeout_us`` plus a jitter drawn from the seed (:mod:`.election`) — starts an
  election: new term, vote for itself (persisted), RequestVote to all. A node grants one vote
  per term, to a candidate whose log is at least as up-to-date as its own (§5.4.1); a majority
  of votes makes a leader.
* Replication (§5.3): the leader appends a no-op entry of its term on election (§8), then each
  client request as an entry, and sends AppendEntries to each follower from its ``next_index``
  (``max_entries_per_append`` at most; followers that match are sent new entries at once,
  ``next_index`` advancing optimistically, and followers whose check failed are *probed* one
  message at a time, backing off with the follower's conflict hint). A follower accepts only
  if its log has ``prev_log_index`` with ``prev_log_term`` (Log Matching), deletes a conflicting
  suffix, appends, persists, then answers.
* Commit (§5.3, §5.4.2): the leader commits the highest index stored on a majority *whose entry
  is of its current term* (older entries commit with it, never by counting replicas); followers
  learn the commit index from the next AppendEntries. Committed entries are applied in order
  (:mod:`.statemachine`); the leader replies to the client.
* Heartbeats (§5.2): the leader sends an AppendEntries (empty, or carrying what a follower still
  lacks) to a follower it sent nothing to for ``heartbeat_interval_us``.
* Snapshots (§7): once ``snapshot_interval`` entries were applied past the last snapshot the
  node snapshots its state and drops that log prefix; a follower whose ``next_index`` is
  compacted away gets InstallSnapshot (one message, no chunks).
* Clients (§8): a follower forwards a client's request to the leader it knows (or answers with
  a not-leader reply and its hint); the leader answers a request already executed from the
  state machine's table (exactly-once by client timestamp) and does not append one twice.

**Raft tolerates crashes, not lies.** Nothing is authenticated; malformed input is refused and
counted (``rejections``, ``Note("reject", (kind, reason))``) and never raises, but a well-formed
message is believed: a node that lies about its term or log can make two nodes commit different
entries at one index (``tests/raft`` shows it). Simplifications against the paper: no cluster
membership changes (§6), no pre-vote or leader lease, one-message snapshots, a commit index
persisted with the term and vote (as etcd does) so a restart re-applies at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from medbench.consensus.raft import recovery
from medbench.consensus.raft.election import Tally, election_timeout, majority
from medbench.consensus.raft.log import RaftLog
from medbench.consensus.raft.messages import (
    EMPTY_SNAPSHOT,
    LOCAL_KINDS,
    NO_NODE,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    Reply,
    Request,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    Timeout,
    own_append_response,
)
from medbench.consensus.raft.persist import HardState, Truncate
from medbench.consensus.raft.statemachine import Service, StateMachine, acknowledge
from medbench.node import Committed, Note, Ready, Send


class Role(StrEnum):
    """The three states of a Raft server (Figure 4)."""

    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class Config:
    """Protocol parameters of one run (times in integer microseconds).

    ``seed`` feeds the election-timeout jitter (:func:`.election.election_timeout`);
    ``snapshot_interval`` 0 disables snapshots.
    """

    n: int
    election_timeout_us: int = 300_000
    heartbeat_interval_us: int = 50_000
    max_entries_per_append: int = 64
    snapshot_interval: int = 1_024
    seed: bytes = b"raft"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("need at least one node")
        if self.election_timeout_us < 1 or self.heartbeat_interval_us < 1:
            raise ValueError("timeouts must be positive")
        if self.max_entries_per_append < 1 or self.snapshot_interval < 0:
            raise ValueError("bad batch or snapshot size")

    @property
    def f(self) -> int:
        """Crashed nodes tolerated: ``(n - 1) // 2``."""
        return (self.n - 1) // 2


@dataclass(frozen=True, slots=True)
class AppliedEntry:
    """One committed entry as applied: the payload of ``Ready.committed`` (``sequence`` is its
    index). ``executed`` is False for a no-op and for a request already executed."""

    index: int
    term: int
    request: Request | None
    executed: bool
    result: bytes
    state_digest: bytes


class Replica:
    """One Raft server (see the module docstring)."""

    def __init__(self, node_id: int, config: Config, service: Service = acknowledge) -> None:
        if not 0 <= node_id < config.n:
            raise ValueError(f"node id {node_id} outside 0..{config.n - 1}")
        self.node_id = node_id
        self.config = config
        self.n = config.n
        self.majority = majority(config.n)
        self.others: tuple[int, ...] = tuple(i for i in range(config.n) if i != node_id)
        self.now = 0
        # persistent state (Figure 2)
        self.term = 0
        self.voted_for = NO_NODE
        self.log = RaftLog()
        self.snapshot: Snapshot = EMPTY_SNAPSHOT
        # volatile state
        self.role = Role.FOLLOWER
        self.leader = NO_NODE
        self.leader_contact = 0
        self.commit_index = 0
        self.last_applied = 0
        self.machine = StateMachine(service)
        self.tally: Tally | None = None
        self.hash_work: Counter[str] = Counter()
        self._jitter_term = -1  # the term whose election timeout is in _jitter
        self._jitter = 0
        self.election_deadline = self._election_timeout()
        # leader state
        self.next_index: dict[int, int] = {}
        self.match_index: dict[int, int] = {}
        self.probing: set[int] = set()
        self.last_sent: dict[int, int] = {}
        self.pending: dict[tuple[int, int], int] = {}  # (client, timestamp) -> log index
        self.rejections: Counter[str] = Counter()
        self.handled = 0
        self.elections = 0
        self._ready = Ready()
        on_vote = self.handle_request_vote
        self._by_role: dict[Role, dict[type, Callable[[Any], None]]] = {
            Role.FOLLOWER: {
                AppendEntries: self.handle_append_entries,
                InstallSnapshot: self.handle_install_snapshot,
                RequestVote: on_vote,
            },
            Role.CANDIDATE: {
                AppendEntries: self._candidate_meets_leader,
                InstallSnapshot: self._candidate_meets_leader,
                RequestVote: on_vote,
                RequestVoteResponse: self.handle_vote_response,
            },
            Role.LEADER: {
                AppendEntries: self._second_leader,
                InstallSnapshot: self._second_leader,
                RequestVote: on_vote,
                AppendEntriesResponse: self.handle_append_response,
                InstallSnapshotResponse: self.handle_snapshot_response,
            },
        }
        self._peer_types = (
            RequestVote,
            RequestVoteResponse,
            AppendEntries,
            AppendEntriesResponse,
            InstallSnapshot,
            InstallSnapshotResponse,
        )
        self._local: dict[type, Callable[[Any], None]] = {Timeout: self.handle_timeout}

    # --- the node interface ----------------------------------------------------------------------

    def step(self, src: int, msg: Any) -> Ready:
        """Handle ``msg`` from node ``src``; never raises on bad input from a peer."""
        ready = self._ready = Ready()
        self.handled += 1
        t = type(msg)
        if t in self._peer_types:
            self._peer_message(src, msg)
        elif t is Request:
            self.handle_request(src, msg)
        elif src != self.node_id and getattr(msg, "KIND", None) in LOCAL_KINDS:
            self._reject(msg, "local kind from the network")
        elif t in self._local:
            self._local[t](msg)
        else:
            self._reject(msg, "unknown message type")
        return ready

    def tick(self, now: int) -> Ready:
        """The clock reads ``now`` µs: election timeouts, heartbeats."""
        ready = self._ready = Ready()
        if now > self.now:
            self.now = now
        if self.role is Role.LEADER:
            self.handle_timeout(Timeout("heartbeat"))
        elif self.now >= self.election_deadline:
            self.handle_timeout(Timeout("election"))
        return ready

    # --- helpers ---------------------------------------------------------------------------------

    def _reject(self, msg: Any, reason: str) -> None:
        self.rejections[reason] += 1
        kind = getattr(msg, "KIND", type(msg).__name__)
        self._ready.notes.append(Note("reject", (str(kind), reason)))

    def _send(self, dsts: tuple[int, ...], msg: Any) -> None:
        if dsts:
            self._ready.messages.append(Send(dsts, msg))

    def _election_timeout(self) -> int:
        """The deadline of a timer reset now: the term's timeout (:mod:`.election`) from now.

        The timeout is a function of (node, term) alone, so it is drawn (one SHA-256, counted
        in ``hash_work``) once per term and reused by every reset of that term (a follower
        resets its timer on every AppendEntries).
        """
        if self._jitter_term != self.term:
            cfg = self.config
            self.hash_work["digest"] += 1
            self._jitter = election_timeout(
                cfg.seed, self.node_id, self.term, cfg.election_timeout_us
            )
            self._jitter_term = self.term
        return self.now + self._jitter

    def _heard_from_leader(self, leader: int) -> None:
        self.leader = leader
        self.leader_contact = self.now
        self.election_deadline = self._election_timeout()

    def _persist_hard_state(self) -> None:
        self._ready.persist.append(HardState(self.term, self.voted_for, self.commit_index))

    def _become_follower(self, term: int, leader: int) -> None:
        """Step down (§5.1): a new term resets the vote; persisted before anything is sent.

        The election timer keeps running (Figure 2: only an AppendEntries from the current
        leader or a granted vote resets it); a former leader starts one.
        """
        if term > self.term:
            self.term = term
            self.voted_for = NO_NODE
            self._persist_hard_state()
        if self.role is Role.LEADER:
            self.pending.clear()
            self.election_deadline = self._election_timeout()
        self.role = Role.FOLLOWER
        self.leader = leader
        self.tally = None

    # --- dispatch of peer messages ---------------------------------------------------------------

    def _peer_message(self, src: int, msg: Any) -> None:
        sender = msg.sender
        if src != sender:
            self._reject(msg, "forged sender")
            return
        if not 0 <= sender < self.n or sender == self.node_id:
            self._reject(msg, "sender is not a peer")
            return
        if msg.term > self.term:
            if type(msg) is RequestVote and self._leader_alive():
                return  # §6: a disruptive candidate is ignored while a leader is heard from
            leader = sender if type(msg) in (AppendEntries, InstallSnapshot) else NO_NODE
            self._become_follower(msg.term, leader)
        elif msg.term < self.term:
            self._stale(msg)
            return
        handler = self._by_role[self.role].get(type(msg))
        if handler is not None:
            handler(msg)  # else: a response the node no longer waits for (a past role)

    def _leader_alive(self) -> bool:
        """This node leads, or heard from its leader less than a minimum election timeout ago
        (§6: such a node neither updates its term nor votes for a RequestVote)."""
        if self.role is Role.LEADER:
            return True
        return (
            self.leader != NO_NODE
            and self.now - self.leader_contact < self.config.election_timeout_us
        )

    def _stale(self, msg: Any) -> None:
        """A message of an older term: tell a stale leader or candidate the current term."""
        t = type(msg)
        me = self.node_id
        if t is AppendEntries:
            self._send((msg.leader,), AppendEntriesResponse(self.term, me, False, 0, 0))
        elif t is InstallSnapshot:
            self._send((msg.leader,), InstallSnapshotResponse(self.term, me, 0))
        elif t is RequestVote:
            self._send((msg.candidate,), RequestVoteResponse(self.term, me, False))

    # --- elections (§5.2, §5.4.1) ----------------------------------------------------------------

    def handle_timeout(self, t: Timeout) -> None:
        """A local timer: the election timeout (followers, candidates) or heartbeats (leader)."""
        if t.timer == "election":
            if self.role is not Role.LEADER:
                self._start_election()
        elif t.timer == "heartbeat":
            if self.role is Role.LEADER:
                self._heartbeat()
        else:
            self._reject(t, "unknown timer")

    def _start_election(self) -> None:
        self.term += 1
        self.role = Role.CANDIDATE
        self.voted_for = self.node_id
        self.leader = NO_NODE
        self.elections += 1
        self._persist_hard_state()  # the vote for itself is on disk before RequestVote leaves
        self.election_deadline = self._election_timeout()
        self.tally = Tally(self.n, self.term, self.node_id)
        self._ready.notes.append(Note("election", self.term))
        if self.tally.won:
            self._become_leader()
            return
        log = self.log
        self._send(self.others, RequestVote(self.term, self.node_id, log.last_index, log.last_term))

    def handle_request_vote(self, msg: RequestVote) -> None:
        """Grant one vote per term, to a candidate whose log is at least as up-to-date."""
        c = msg.candidate
        granted = (
            self.role is not Role.LEADER
            and self.voted_for in (NO_NODE, c)
            and self.log.up_to_date(msg.last_log_index, msg.last_log_term)
        )
        if granted:
            if self.voted_for != c:
                self.voted_for = c
                self._persist_hard_state()  # the vote is on disk before it is sent
            self.election_deadline = self._election_timeout()
        self._send((c,), RequestVoteResponse(self.term, self.node_id, granted))

    def handle_vote_response(self, msg: RequestVoteResponse) -> None:
        """A candidate counts the answers; a majority makes it leader."""
        tally = self.tally
        if tally is not None and tally.add(msg.voter, msg.granted):
            self._become_leader()

    def _candidate_meets_leader(self, msg: Any) -> None:
        """Another server won this term (§5.2): become its follower and take the message."""
        self._become_follower(self.term, msg.leader)
        self._by_role[Role.FOLLOWER][type(msg)](msg)

    def _second_leader(self, msg: Any) -> None:
        """Two leaders in one term cannot happen with honest servers (Election Safety)."""
        self._ready.notes.append(Note("second-leader", (self.term, msg.leader)))
        self._reject(msg, "another leader in this term")

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.leader = self.node_id
        self.tally = None
        nxt = self.log.last_index + 1
        self.next_index = dict.fromkeys(self.others, nxt)
        self.match_index = dict.fromkeys(self.others, 0)
        self.probing = set()
        self.last_sent = dict.fromkeys(self.others, self.now)
        self.pending = {}
        self._ready.notes.append(Note("leader", self.term))
        self._append(None)  # the no-op of §8: commits the entries of earlier terms

    # --- replication (§5.3) ----------------------------------------------------------------------

    def _append(self, request: Request | None) -> Entry:
        """The leader appends one entry (persisted) and sends it to every matching follower."""
        entry = Entry(self.term, self.log.last_index + 1, request)
        self.log.append(entry)
        self._ready.persist.append(entry)
        idx = entry.index
        ready_now = tuple(
            f for f in self.others if f not in self.probing and self.next_index[f] == idx
        )
        if ready_now:
            self._send_entries(ready_now, idx)
        self._advance_commit()  # a single node commits alone
        return entry

    def _send_entries(self, dsts: tuple[int, ...], start: int) -> None:
        """One AppendEntries from ``start`` to every follower in ``dsts`` (same ``next_index``)."""
        log = self.log
        if start <= log.snapshot_index:
            self._send(dsts, InstallSnapshot(self.term, self.node_id, self.snapshot))
            for f in dsts:
                self.last_sent[f] = self.now
            return
        entries = log.slice(start, self.config.max_entries_per_append)
        prev = start - 1
        prev_term = log.term_at(prev)
        assert prev_term is not None
        self._send(
            dsts,
            AppendEntries(self.term, self.node_id, prev, prev_term, entries, self.commit_index),
        )
        nxt = start + len(entries)
        for f in dsts:
            self.last_sent[f] = self.now
            if entries and f not in self.probing:
                self.next_index[f] = nxt  # optimistic: pipeline the next entries

    def _heartbeat(self) -> None:
        """AppendEntries to every follower the leader sent nothing to for an interval."""
        due = self.now - self.config.heartbeat_interval_us
        groups: dict[int, list[int]] = {}
        for f in self.others:
            if self.last_sent[f] <= due:
                groups.setdefault(self.next_index[f], []).append(f)
        for start, fs in sorted(groups.items()):
            self._send_entries(tuple(fs), start)

    def handle_append_entries(self, msg: AppendEntries) -> None:
        """A follower checks Log Matching, removes conflicts, appends, persists, answers."""
        me = self.node_id
        self._heard_from_leader(msg.leader)
        log = self.log
        prev = msg.prev_log_index
        if prev < log.snapshot_index:
            # the prefix up to the snapshot is committed, hence identical: skip what it covers
            entries = msg.entries[log.snapshot_index - prev :]
            prev, prev_term = log.snapshot_index, log.snapshot_term
        else:
            entries = msg.entries
            prev_term = msg.prev_log_term
        if not log.matches(prev, prev_term):
            hint = log.conflict_hint(prev)
            self._send((msg.leader,), AppendEntriesResponse(self.term, me, False, prev, hint))
            return
        for e in entries:
            have = log.term_at(e.index)
            if have == e.term:
                continue  # already there (a duplicate or reordered message)
            if have is not None:
                if e.index <= self.commit_index:
                    # only a lying leader can ask this (Leader Completeness): believed, noted
                    self._ready.notes.append(Note("committed-entry-overwritten", e.index))
                log.truncate_from(e.index)
                self._ready.persist.append(Truncate(e.index))
            log.append(e)
            self._ready.persist.append(e)
        last_new = prev + len(entries)
        commit = min(msg.leader_commit, last_new)
        if commit > self.commit_index:
            self._commit_to(commit)
        self._send((msg.leader,), own_append_response(self.term, me, True, last_new, 0))

    def handle_append_response(self, msg: AppendEntriesResponse) -> None:
        """The leader tracks each follower's progress and commits what a majority stores."""
        f = msg.follower
        if msg.success:
            if msg.index > self.match_index[f]:
                self.match_index[f] = msg.index
                if msg.index > self.commit_index:
                    self._advance_commit()
            if self.next_index[f] <= msg.index:
                self.next_index[f] = msg.index + 1
            self.probing.discard(f)
            if self.next_index[f] <= self.log.last_index:
                self._send_entries((f,), self.next_index[f])  # what was never sent, in turn
            return
        match = self.match_index[f]
        if msg.index < match or (f in self.probing and msg.index != self.next_index[f] - 1):
            return  # a stale rejection (an older message, or one already backed off from)
        self.next_index[f] = max(match + 1, min(msg.hint, msg.index))
        self.probing.add(f)
        self._send_entries((f,), self.next_index[f])

    def _advance_commit(self) -> None:
        """Commit the highest index on a majority whose entry is of the current term (§5.4.2)."""
        log = self.log
        ranked = sorted(self.match_index.values(), reverse=True)
        # the leader holds every entry; the majority-th highest index among the others
        k = self.majority - 2
        n_commit = log.last_index if k < 0 else min(log.last_index, ranked[k])
        if n_commit > self.commit_index and log.term_at(n_commit) == self.term:
            self._commit_to(n_commit)

    def _commit_to(self, index: int) -> None:
        self.commit_index = index
        self._persist_hard_state()
        self._apply()

    # --- snapshots (§7) --------------------------------------------------------------------------

    def handle_install_snapshot(self, msg: InstallSnapshot) -> None:
        """A follower replaces its state (and the log it covers) by the leader's snapshot."""
        self._heard_from_leader(msg.leader)
        snap = msg.snapshot
        log = self.log
        if snap.last_index > self.commit_index:
            if log.term_at(snap.last_index) == snap.last_term:
                log.compact(snap.last_index, snap.last_term)  # keep the suffix it has
            else:
                log.reset(snap.last_index, snap.last_term)
            self.machine.restore(snap)
            self.snapshot = snap
            self.commit_index = self.last_applied = snap.last_index
            self._ready.persist.append(snap)
            self._persist_hard_state()
            self._ready.notes.append(Note("snapshot-installed", snap.last_index))
        reply = InstallSnapshotResponse(self.term, self.node_id, self.commit_index)
        self._send((msg.leader,), reply)

    def handle_snapshot_response(self, msg: InstallSnapshotResponse) -> None:
        """The follower holds everything up to ``last_index``: replicate from there."""
        f = msg.follower
        if msg.last_index > self.match_index[f]:
            self.match_index[f] = msg.last_index
            self._advance_commit()
        self.next_index[f] = max(self.next_index[f], msg.last_index + 1)
        self.probing.discard(f)
        if self.next_index[f] <= self.log.last_index:
            self._send_entries((f,), self.next_index[f])

    def _maybe_snapshot(self) -> None:
        interval = self.config.snapshot_interval
        log = self.log
        if interval and self.last_applied - log.snapshot_index >= interval:
            term = log.term_at(self.last_applied)
            assert term is not None
            snap = self.machine.snapshot(self.last_applied, term)
            log.compact(self.last_applied, term)
            self.snapshot = snap
            self._ready.persist.append(snap)
            self._ready.notes.append(Note("snapshot", self.last_applied))

    # --- applying committed entries --------------------------------------------------------------

    def _apply(self, replies: bool = True) -> None:
        log = self.log
        machine = self.machine
        leader = self.role is Role.LEADER and replies
        committed = self._ready.committed
        pending = self.pending
        me = self.node_id
        applied_n = requests = 0
        while self.last_applied < self.commit_index:
            entry = log.entry(self.last_applied + 1)
            assert entry is not None, "committed entries are in the log"
            executed, result = machine.apply(entry)
            self.last_applied = entry.index
            applied_n += 1
            req = entry.request
            if req is not None:
                requests += 1
                pending.pop((req.client, req.timestamp), None)
                if leader and (executed or result):
                    self._send(
                        (req.client,), Reply(req.client, req.timestamp, me, True, result, me)
                    )
            applied = AppliedEntry(
                entry.index, entry.term, req, executed, result, machine.state_digest
            )
            committed.append(Committed(entry.index, applied))
        if applied_n:
            work = self.hash_work
            work["digest"] += applied_n  # one chained state digest per applied entry
            if requests:
                work["tx_id"] += requests  # one transaction ID per applied request
        self._maybe_snapshot()

    # --- clients (§8) ----------------------------------------------------------------------------

    def handle_request(self, src: int, req: Request) -> None:
        """The leader appends a new request; others forward it to the leader or redirect."""
        c = req.client
        if c < self.n:
            self._reject(req, "request from a node id")
            return
        if self.role is not Role.LEADER:
            if src == c and self.leader not in (NO_NODE, self.node_id):
                self._send((self.leader,), req)  # forward (only what came from the client)
            else:  # no leader known, or forwarded to a leader that stepped down: redirect
                self._send((c,), Reply(c, req.timestamp, self.node_id, False, b"", self.leader))
            return
        last = self.machine.last.get(c)
        if last is not None and req.timestamp <= last[0]:
            if req.timestamp == last[0]:  # a retransmission: the stored result answers
                self._send((c,), Reply(c, req.timestamp, self.node_id, True, last[1], self.node_id))
            else:
                self._reject(req, "old request")
            return
        key = (c, req.timestamp)
        if key in self.pending:
            return  # already in the log, not yet committed
        self.pending[key] = self._append(req).index

    # --- recovery --------------------------------------------------------------------------------

    @classmethod
    def recover(
        cls,
        node_id: int,
        config: Config,
        records: Iterable[Any],
        service: Service = acknowledge,
        now: int = 0,
    ) -> tuple[Replica, Ready]:
        """Rebuild a crashed node from its persisted records (:mod:`.recovery`): term, vote and
        log come back, the committed entries are applied again (silently); it restarts as a
        follower."""
        r = cls(node_id, config, service)
        state = recovery.replay(records)
        r.now = now
        r.term, r.voted_for = state.term, state.voted_for
        r.log = state.log
        if state.snapshot is not None:
            r.snapshot = state.snapshot
            r.machine.restore(state.snapshot)
            r.last_applied = r.commit_index = state.snapshot.last_index
        r._ready = Ready()
        r.commit_index = max(r.commit_index, min(state.commit, r.log.last_index))
        r._apply(replies=False)
        r.election_deadline = r._election_timeout()
        return r, Ready()

    # --- introspection ---------------------------------------------------------------------------

    @property
    def state_digest(self) -> bytes:
        """The chained digest of every applied entry."""
        return self.machine.state_digest

    def counters(self) -> dict[str, int]:
        """Handled messages, rejections, elections started and hash work.

        ``hash_digest`` counts this node's SHA-256 evaluations of the state digest (one per
        applied entry) and of election-timeout jitter (one per term in which it resets a
        timer); ``hash_tx_id`` one request ID per applied request (medbench.hashwork). Raft
        signs nothing.
        """
        work = self.hash_work
        out = {
            "handled": self.handled,
            "rejected": sum(self.rejections.values()),
            "elections": self.elections,
        }
        for category in ("tx_id", "digest", "merkle", "block_id"):
            out[f"hash_{category}"] = work[category]
        return out
