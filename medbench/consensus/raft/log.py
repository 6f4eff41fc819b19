"""The Raft log: entries after the last snapshot, indexed from 1 (Figure 2, §5.3, §7).

Theory of operation
-------------------
``entries[k]`` holds index ``snapshot_index + 1 + k``; everything up to ``snapshot_index`` has been
compacted into a snapshot (§7), whose last entry's term is ``snapshot_term`` — so
:meth:`RaftLog.term_at` still answers for ``snapshot_index`` (the AppendEntries consistency check
may name it) and answers ``None`` for what is gone or not yet there.

The log's own rules, used by the node: :meth:`RaftLog.matches` is the *Log Matching* check of
AppendEntries (§5.3: an entry at ``prev_log_index`` whose term is ``prev_log_term``);
:meth:`RaftLog.up_to_date` is the RequestVote election restriction (§5.4.1: a candidate's log is
at least as up-to-date if its last term is higher, or equal with an index at least as high);
:meth:`RaftLog.conflict_hint` is the optimisation at the end of §5.3 (skip a whole conflicting
term per round trip).
"""

from __future__ import annotations

from medbench.consensus.raft.messages import Entry


class RaftLog:
    """One node's log (see the module docstring)."""

    def __init__(self) -> None:
        self.snapshot_index = 0
        self.snapshot_term = 0
        self.entries: list[Entry] = []

    @property
    def last_index(self) -> int:
        """Index of the last entry (or of the snapshot, if the log is empty)."""
        return self.snapshot_index + len(self.entries)

    @property
    def last_term(self) -> int:
        """Term of the last entry (or of the snapshot)."""
        return self.entries[-1].term if self.entries else self.snapshot_term

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index``; ``None`` if compacted away or beyond the end."""
        base = self.snapshot_index
        if index == base:
            return self.snapshot_term
        if index < base or index > base + len(self.entries):
            return None
        return self.entries[index - base - 1].term

    def entry(self, index: int) -> Entry | None:
        """The entry at ``index`` if the log holds it."""
        k = index - self.snapshot_index - 1
        return self.entries[k] if 0 <= k < len(self.entries) else None

    def slice(self, start: int, limit: int) -> tuple[Entry, ...]:
        """Up to ``limit`` entries from index ``start`` on (``start`` > snapshot index)."""
        k = start - self.snapshot_index - 1
        return tuple(self.entries[k : k + limit])

    def append(self, entry: Entry) -> None:
        """Append the next entry."""
        assert entry.index == self.last_index + 1, "appends are contiguous"
        self.entries.append(entry)

    def truncate_from(self, index: int) -> None:
        """Delete the entry at ``index`` and all that follow it (§5.3)."""
        k = index - self.snapshot_index - 1
        if k >= 0:
            del self.entries[k:]

    def compact(self, index: int, term: int) -> None:
        """Replace the prefix up to ``index`` (whose term is ``term``) by a snapshot (§7)."""
        k = index - self.snapshot_index
        if k <= 0:
            return
        del self.entries[:k]
        self.snapshot_index = index
        self.snapshot_term = term

    def reset(self, index: int, term: int) -> None:
        """Discard the whole log: a snapshot up to ``index`` replaces it (§7)."""
        self.entries = []
        self.snapshot_index = index
        self.snapshot_term = term

    def matches(self, prev_index: int, prev_term: int) -> bool:
        """The AppendEntries consistency check (§5.3)."""
        return self.term_at(prev_index) == prev_term

    def up_to_date(self, last_index: int, last_term: int) -> bool:
        """True when a log ending at ``(last_index, last_term)`` is at least as up-to-date as
        this one (§5.4.1)."""
        mine = self.last_term
        return last_term > mine or (last_term == mine and last_index >= self.last_index)

    def conflict_hint(self, prev_index: int) -> int:
        """Where the leader should try next after a failed check at ``prev_index``: past the
        end of a short log, else the first index of the conflicting term (§5.3)."""
        if prev_index > self.last_index:
            return self.last_index + 1
        term = self.term_at(prev_index)
        i = prev_index
        while i - 1 > self.snapshot_index and self.term_at(i - 1) == term:
            i -= 1
        return max(i, self.snapshot_index + 1)
