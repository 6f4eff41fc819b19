"""Grants as on-chain contracts, and their evaluation as a pure function of chain state.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 5 and §1.5: a patient grants a grantee (a doctor, a family member,
another person) the right to read / add / modify / delete their records — all records or some
categories — for a time window, and can revoke it; once the window has passed the grantee is
refused. The seed's §2.3.3 adds grants issued by others in the patient's stead: a health authority
authorizes courts and police (and family of an incapacitated patient); an institution's
administrative staff authorize its medical staff to read a patient's non-private data.

A grant is a :class:`GrantRecord` and a revocation a :class:`RevokeRecord`, both recorded on
chain with the consensus time of the transaction that carried them (``recorded_us``). The chain
state relevant to a decision is therefore just the ordered list of these records, and
:func:`evaluate` is a pure, deterministic function of that list and the request — its time is the
request's consensus timestamp, never a wall clock:

* only records with ``recorded_us <= at_us`` exist as of the request (state as of its time);
* the first record of a grant ID in chain order is the grant; later records reusing the ID are
  ignored (even if their timestamps are earlier);
* a grant *covers* a request if patient, grantee, grantor kind, operation and category match
  (category ``"*"`` in a grant covers every category; a request for ``"*"`` is covered only by a
  ``"*"`` grant);
* a revocation counts only if it names a grant recorded before it in the list and is signed by
  that grant's grantor; it takes effect at its own ``recorded_us``;
* a covering grant is ACTIVE iff ``not_before_us <= at_us < not_after_us`` and it is not revoked;
* the answer is ACTIVE if any covering grant is; otherwise the most telling failure among the
  covering grants, in the order REVOKED > EXPIRED > NOT_YET_VALID, else NONE.

:class:`GrantBook` indexes the ordered records by ``(patient, grantee)`` so the validator does not
scan the whole chain; its answers equal :func:`evaluate` over the full list.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from medbench.access.request import ALL

GRANT_OPS = frozenset({"read", "add", "modify", "delete", "hide"})
GRANTOR_KINDS = frozenset({"patient", "authority", "institution"})


class GrantStatus(enum.Enum):
    """The outcome of evaluating the grants that cover a request."""

    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NONE = "none"


_FAILURE_ORDER = (GrantStatus.REVOKED, GrantStatus.EXPIRED, GrantStatus.NOT_YET_VALID)


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """A grant as recorded on chain (the content of a ``grant`` transaction)."""

    grant_id: bytes
    patient: bytes
    grantor: bytes
    grantor_kind: str
    grantee: bytes
    ops: frozenset[str]
    categories: frozenset[str]
    not_before_us: int
    not_after_us: int
    recorded_us: int

    def __post_init__(self) -> None:
        if self.grantor_kind not in GRANTOR_KINDS:
            raise ValueError(f"unknown grantor kind {self.grantor_kind!r}")
        if not self.ops or not self.ops <= GRANT_OPS:
            raise ValueError(f"grant ops must be a non-empty subset of {sorted(GRANT_OPS)}")
        if not self.categories:
            raise ValueError("a grant names at least one category (or '*')")
        if self.not_after_us <= self.not_before_us:
            raise ValueError("a grant's window is empty")

    def covers(self, op: str, category: str) -> bool:
        """Whether this grant's scope includes ``op`` on ``category``."""
        if op not in self.ops:
            return False
        return ALL in self.categories or (category != ALL and category in self.categories)


@dataclass(frozen=True, slots=True)
class RevokeRecord:
    """A revocation as recorded on chain (the content of a ``revoke`` transaction)."""

    grant_id: bytes
    revoker: bytes
    recorded_us: int


GrantEvent = GrantRecord | RevokeRecord


def evaluate(
    events: Iterable[GrantEvent],
    *,
    patient: bytes,
    grantee: bytes,
    op: str,
    category: str,
    at_us: int,
    grantor_kinds: frozenset[str] = GRANTOR_KINDS,
) -> GrantStatus:
    """Status of ``grantee``'s access to ``patient``'s ``category`` for ``op`` at ``at_us``.

    ``events`` is the chain's grant/revoke records in chain order (see the module docstring).
    """
    grants: dict[bytes, GrantRecord] = {}
    revoked_at: dict[bytes, int] = {}
    for ev in events:
        if isinstance(ev, GrantRecord):
            grants.setdefault(ev.grant_id, ev)  # chain order decides, whatever the times say
            continue
        g = grants.get(ev.grant_id)
        if (
            g is not None
            and ev.revoker == g.grantor
            and ev.recorded_us <= at_us
            and ev.grant_id not in revoked_at
        ):
            revoked_at[ev.grant_id] = ev.recorded_us
    seen: set[GrantStatus] = set()
    for gid, g in grants.items():
        if g.recorded_us > at_us:
            continue  # not on chain yet as of the request
        if g.patient != patient or g.grantee != grantee or g.grantor_kind not in grantor_kinds:
            continue
        if not g.covers(op, category):
            continue
        if gid in revoked_at:
            seen.add(GrantStatus.REVOKED)
        elif at_us < g.not_before_us:
            seen.add(GrantStatus.NOT_YET_VALID)
        elif at_us >= g.not_after_us:
            seen.add(GrantStatus.EXPIRED)
        else:
            return GrantStatus.ACTIVE
    for status in _FAILURE_ORDER:
        if status in seen:
            return status
    return GrantStatus.NONE


@dataclass
class GrantBook:
    """The chain's grant/revoke records, in order, indexed by ``(patient, grantee)``."""

    events: list[GrantEvent] = field(default_factory=list)
    by_id: dict[bytes, GrantRecord] = field(default_factory=dict)
    by_pair: dict[tuple[bytes, bytes], list[GrantEvent]] = field(default_factory=dict)

    def add_grant(self, grant: GrantRecord) -> None:
        """Append a grant record (chain order)."""
        self.events.append(grant)
        if grant.grant_id in self.by_id:  # a duplicate ID never counts (first record wins)
            return
        self.by_id[grant.grant_id] = grant
        self.by_pair.setdefault((grant.patient, grant.grantee), []).append(grant)

    def add_revoke(self, revoke: RevokeRecord) -> None:
        """Append a revocation record (chain order)."""
        self.events.append(revoke)
        g = self.by_id.get(revoke.grant_id)
        if g is not None:
            self.by_pair.setdefault((g.patient, g.grantee), []).append(revoke)

    def status(
        self,
        *,
        patient: bytes,
        grantee: bytes,
        op: str,
        category: str,
        at_us: int,
        grantor_kinds: frozenset[str] = GRANTOR_KINDS,
    ) -> GrantStatus:
        """:func:`evaluate` over the records of this ``(patient, grantee)`` pair."""
        events: Sequence[GrantEvent] = self.by_pair.get((patient, grantee), ())
        return evaluate(
            events,
            patient=patient,
            grantee=grantee,
            op=op,
            category=category,
            at_us=at_us,
            grantor_kinds=grantor_kinds,
        )

    def rekey(self, old: bytes, new: bytes) -> None:
        """Key succession: every record naming ``old`` (as patient, grantor, grantee or revoker)
        names ``new`` from now on; chain order and record times are kept."""

        def swap(key: bytes) -> bytes:
            return new if key == old else key

        events = self.events
        self.events, self.by_id, self.by_pair = [], {}, {}
        for ev in events:
            if isinstance(ev, GrantRecord):
                self.add_grant(
                    replace(ev, patient=swap(ev.patient), grantor=swap(ev.grantor),
                            grantee=swap(ev.grantee))
                )  # fmt: skip
            else:
                self.add_revoke(replace(ev, revoker=swap(ev.revoker)))
