# cython: language_level=3
"""Vote quorums for PBFT certificates (Castro & Liskov, TOCS 2002 §4.2), native twin.

Theory of operation
-------------------
Same contract as :mod:`medbench.reference.quorum` (whose :class:`Status`, :class:`Evidence` and
threshold functions are reused, so results compare equal across backends). The layout differs:
votes are grouped by *round* ``(phase, view, sequence)``. A round holds a C choice table — slot
``v`` names the first digest voter ``v`` voted in this round, or is empty — and a C counter per
digest. Since a voter whose choice differs is rejected as ``CONFLICT`` and one whose choice
matches was counted when it was made, the choice table alone answers ``DUPLICATE`` /
``CONFLICT``, and a counter increment answers ``PENDING`` / ``REACHED`` / ``ALREADY``: no
per-key voter sets, and nothing for the cycle collector to traverse.

PBFT votes arrive in bursts for one round, so the tracker remembers the last round (by C
integers): the common vote costs no dictionary lookup at all.
Keys that are not plain ``int`` (or exceed 64 bits) take the dictionary path, with Python
equality, exactly as the reference does.
"""

cimport cython
import operator
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.long cimport PyLong_CheckExact
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.string cimport memcmp

from medbench.reference.quorum import Evidence, Status, max_faulty, strong_quorum, weak_quorum

__all__ = [
    "Evidence",
    "QuorumTracker",
    "Status",
    "implementation",
    "max_faulty",
    "strong_quorum",
    "weak_quorum",
]

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object obj, int *overflow) except? -1

cdef object _PENDING = Status.PENDING
cdef object _REACHED = Status.REACHED
cdef object _ALREADY = Status.ALREADY
cdef object _DUPLICATE = Status.DUPLICATE
cdef object _CONFLICT = Status.CONFLICT


cdef inline bint _as_i64(object value, long long *out):
    """Store a plain int that fits 64 bits in ``out``; False for anything else."""
    cdef int overflow = 0
    if not PyLong_CheckExact(value):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return overflow == 0


cdef inline bint _same_digest(object a, object b) except -1:
    if a is b:
        return True
    if PyBytes_CheckExact(a) and PyBytes_CheckExact(b):
        return (PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b)
                and memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), PyBytes_GET_SIZE(a)) == 0)
    return a == b


@cython.final
@cython.no_gc
@cython.auto_pickle(False)
cdef class _Round:
    """Votes of one (phase, view, sequence): each voter's first digest, and a count per digest.

    ``choice[v]`` is 0 when voter ``v`` has not voted, else 1 + the index of its digest in the
    round's digest table (``digest0`` then ``more``); ``counts[k]`` counts digest ``k``'s voters.
    Each voter adds at most one digest, so the table never exceeds ``n`` entries. Not tracked by
    the cycle collector: it refers only to digests, which are bytes.
    """

    cdef Py_ssize_t need
    cdef Py_ssize_t n
    cdef int *choice
    cdef Py_ssize_t *counts
    cdef Py_ssize_t ndigests
    cdef object digest0
    cdef list more

    def __cinit__(self, Py_ssize_t n, Py_ssize_t need):
        self.n = n
        self.need = need
        self.choice = <int *>PyMem_Calloc(n, sizeof(int))
        self.counts = <Py_ssize_t *>PyMem_Calloc(n, sizeof(Py_ssize_t))
        if self.choice == NULL or self.counts == NULL:
            raise MemoryError()
        self.ndigests = 0
        self.digest0 = None
        self.more = None

    def __dealloc__(self):
        PyMem_Free(self.choice)
        PyMem_Free(self.counts)

    cdef inline object digest(self, Py_ssize_t k):
        return self.digest0 if k == 0 else self.more[k - 1]

    cdef Py_ssize_t find(self, object digest) except -2:
        """Index of ``digest`` in the table, or -1."""
        cdef Py_ssize_t k
        if self.ndigests == 0:
            return -1
        if _same_digest(digest, self.digest0):
            return 0
        for k in range(1, self.ndigests):
            if _same_digest(digest, self.more[k - 1]):
                return k
        return -1

    cdef Py_ssize_t add_digest(self, object digest) except -1:
        if self.ndigests == 0:
            self.digest0 = digest
        else:
            if self.more is None:
                self.more = []
            self.more.append(digest)
        self.ndigests += 1
        return self.ndigests - 1

    cdef Py_ssize_t count(self, object digest) except -1:
        cdef Py_ssize_t k = self.find(digest)
        return 0 if k < 0 else self.counts[k]


@cython.auto_pickle(False)
cdef class QuorumTracker:
    """Counts distinct voters per ``(phase, view, sequence, digest)``; see the module docstring.

    ``thresholds`` maps a phase to the number of votes it needs; phases not listed need a
    strong quorum (``2f + 1``).
    """

    cdef readonly Py_ssize_t n
    cdef readonly Py_ssize_t f
    cdef readonly Py_ssize_t strong
    cdef readonly Py_ssize_t weak
    cdef dict _thresholds
    cdef dict _rounds        # (phase, view, sequence) -> _Round
    cdef dict _per_sequence  # sequence -> how many rounds it has
    cdef list _evidence
    cdef object _low_watermark
    cdef long long _lw
    cdef bint _lw_is_i64
    # The last round used, when its phase, view and sequence were plain 64-bit ints.
    cdef _Round _last
    cdef long long _last_phase
    cdef long long _last_view
    cdef long long _last_sequence

    def __init__(self, n, thresholds=None):
        self.f = max_faulty(n)  # TypeError / ValueError for a bad n, as the reference
        n = operator.index(n)
        self.n = n
        self.strong = strong_quorum(n)
        self.weak = self.f + 1
        self._thresholds = {p: operator.index(t) for p, t in dict(thresholds or {}).items()}
        for phase, t in self._thresholds.items():
            if not 1 <= t <= n:
                raise ValueError(f"threshold {t} for phase {phase} outside 1..{n}")
        self._rounds = {}
        self._per_sequence = {}
        self._evidence = []
        self._last = None
        self.low_watermark = 0

    @property
    def low_watermark(self):
        """Votes for sequences below this were forgotten; new ones are refused."""
        return self._low_watermark

    @low_watermark.setter
    def low_watermark(self, value):
        self._low_watermark = value
        self._lw_is_i64 = _as_i64(value, &self._lw)

    def threshold(self, phase):
        """Votes needed for ``phase``."""
        return self._thresholds.get(phase, self.strong)

    cdef _Round _find(self, object phase, object view, object sequence, bint create):
        cdef long long p = 0, w = 0, s = 0
        cdef bint plain = _as_i64(phase, &p) and _as_i64(view, &w) and _as_i64(sequence, &s)
        cdef _Round rnd
        if (plain and self._last is not None and p == self._last_phase and w == self._last_view
                and s == self._last_sequence):
            return self._last
        key = (phase, view, sequence)
        rnd = self._rounds.get(key)
        if rnd is None:
            if not create:
                return None
            rnd = _Round(self.n, self._thresholds.get(phase, self.strong))
            self._rounds[key] = rnd
            self._per_sequence[sequence] = self._per_sequence.get(sequence, 0) + 1
        if plain:
            self._last = rnd
            self._last_phase = p
            self._last_view = w
            self._last_sequence = s
        return rnd

    def add(self, phase, view, sequence, digest, voter):
        """Count ``voter``'s vote for ``digest``; see :class:`Status` for the answers.

        ``digest`` must be ``bytes`` and ``voter`` a whole number (``TypeError``), in
        ``0..n-1`` (``ValueError``).
        """
        cdef long long v = 0, s = 0
        if not PyBytes_CheckExact(digest):
            raise TypeError(f"a digest is bytes, not {type(digest).__name__}")
        if _as_i64(voter, &v):
            if v < 0 or v >= self.n:
                raise ValueError(f"voter {voter} outside 0..{self.n - 1}")
        else:
            voter = operator.index(voter)  # TypeError for a float, as the reference
            if not 0 <= voter < self.n:
                raise ValueError(f"voter {voter} outside 0..{self.n - 1}")
            v = voter
        if self._lw_is_i64 and _as_i64(sequence, &s):
            if s < self._lw:
                raise ValueError(
                    f"sequence {sequence} below low watermark {self._low_watermark}"
                )
        elif sequence < self._low_watermark:
            raise ValueError(f"sequence {sequence} below low watermark {self._low_watermark}")
        cdef _Round rnd = self._find(phase, view, sequence, True)
        cdef Py_ssize_t k, c = rnd.choice[v]
        if c == 0:
            k = rnd.find(digest)
            if k < 0:
                k = rnd.add_digest(digest)
            rnd.choice[v] = <int>(k + 1)
            rnd.counts[k] += 1
            if rnd.counts[k] < rnd.need:
                return _PENDING
            return _REACHED if rnd.counts[k] == rnd.need else _ALREADY
        chosen = rnd.digest(c - 1)
        if _same_digest(chosen, digest):
            return _DUPLICATE
        self._evidence.append(Evidence(phase, view, sequence, voter, chosen, digest))
        return _CONFLICT

    def count(self, phase, view, sequence, digest):
        """Distinct voters counted for this key."""
        if not PyBytes_CheckExact(digest):
            raise TypeError(f"a digest is bytes, not {type(digest).__name__}")
        cdef _Round rnd = self._find(phase, view, sequence, False)
        return 0 if rnd is None else rnd.count(digest)

    def voters(self, phase, view, sequence, digest):
        """The distinct voters counted for this key."""
        if not PyBytes_CheckExact(digest):
            raise TypeError(f"a digest is bytes, not {type(digest).__name__}")
        cdef _Round rnd = self._find(phase, view, sequence, False)
        if rnd is None:
            return frozenset()
        cdef Py_ssize_t k = rnd.find(digest), v
        return frozenset([v for v in range(rnd.n) if k >= 0 and rnd.choice[v] == k + 1])

    def reached(self, phase, view, sequence, digest):
        """True once this key has met its phase's threshold."""
        return self.count(phase, view, sequence, digest) >= self.threshold(phase)

    def take_evidence(self):
        """Return and clear the equivocation evidence gathered so far."""
        out = self._evidence
        self._evidence = []
        return out

    def forget_below(self, low_watermark):
        """Drop every vote for a sequence below ``low_watermark`` (after a stable checkpoint)."""
        if low_watermark <= self._low_watermark:
            return
        self.low_watermark = low_watermark
        for key in [key for key in self._rounds if key[2] < low_watermark]:
            del self._rounds[key]
        for seq in [seq for seq in self._per_sequence if seq < low_watermark]:
            del self._per_sequence[seq]
        self._last = None

    def __len__(self):
        """How many sequences currently hold votes."""
        return len(self._per_sequence)

    def __reduce__(self):
        """Pickle/copy support (joblib workers, snapshots): the counted votes are replayed."""
        cdef _Round rnd
        cdef Py_ssize_t v
        votes = []
        for key, rnd in self._rounds.items():
            phase, view, sequence = key
            for v in range(rnd.n):
                if rnd.choice[v]:
                    votes.append((phase, view, sequence, rnd.digest(rnd.choice[v] - 1), v))
        state = (self.n, self._thresholds, self._low_watermark, votes, list(self._evidence))
        return (_rebuild, state)


def _rebuild(n, thresholds, low_watermark, votes, evidence):
    """Recreate a pickled :class:`QuorumTracker` (see ``QuorumTracker.__reduce__``)."""
    cdef QuorumTracker tracker = QuorumTracker(n, thresholds)
    for phase, view, sequence, digest, voter in votes:
        tracker.add(phase, view, sequence, digest, voter)
    tracker.low_watermark = low_watermark
    tracker._evidence = list(evidence)
    return tracker


def implementation():
    """Which code serves this module."""
    return "native (cdef class, per-round choice table)"
