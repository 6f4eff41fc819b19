"""View capabilities: a patient lets a grantee find exactly the associations she chooses.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 5: a patient grants a doctor read access to her past records for a
time window. With stealth associations (:mod:`medbench.records.association`) a doctor cannot even
find those records without help, so the ``grant`` transaction carries a *view capability*: the list
of ``(association ID, link secret)`` pairs the patient chose, sealed to the grantee's bound
encryption key. The content is ``{grantee, from_us, until_us, view}`` — the first three are what
the access layer checks (who, and until when); ``view`` is the sealed capability, whose
associated data binds it to ``(patient, grantee, from_us, until_us)`` so it cannot be lifted into
another grant.

The grantee opens the capability (:func:`read_view`) and verifies each entry against the chain
(:func:`resolve`): the association must exist and its tag must match the secret — so the grantee
trusts the hospital-signed association, not the patient's word, for which record is whose. A
secret opens one association only: the grantee learns nothing about the patient's other records,
and anyone else learns nothing at all. The plaintext is padded to a power of two (at least
:data:`MIN_VIEW_BYTES`) so the box length only coarsely bounds the number of records shared.

The window is enforced by validators refusing to serve records after ``until_us`` (access layer);
the capability itself cannot be taken back, as with any disclosed secret, which is why a patient
shares only the links she means to.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from medbench import codec
from medbench.crypto.errors import SealError
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.sealing import RandBytes
from medbench.ledger.transaction import ID_SIZE, Kind, Transaction
from medbench.records.association import KEY_SIZE, FoundAssociation, open_with_secret
from medbench.records.errors import RecordDecodeError, RecordUsageError

MIN_VIEW_BYTES = 512
MAX_VIEW_ENTRIES = 4096
_VIEW_INFO = b"medbench/view/v1"


@dataclass(frozen=True, slots=True)
class ViewCapability:
    """A patient's disclosure of some of her association secrets to one grantee."""

    patient: bytes
    grantee: bytes
    from_us: int
    until_us: int
    entries: tuple[tuple[bytes, bytes], ...]

    def in_window(self, now_us: int) -> bool:
        """Whether the grant is valid at ``now_us``."""
        return self.from_us <= now_us < self.until_us


def parse_view_entries(entries: object) -> tuple[tuple[bytes, bytes], ...]:
    """The ``[association ID, link secret]`` pairs of an opened view (clear or sealed grant);
    raises :class:`RecordDecodeError` on any other shape."""
    if not isinstance(entries, list) or len(entries) > MAX_VIEW_ENTRIES:
        raise RecordDecodeError("malformed view entries")
    out = []
    for e in entries:
        if not (
            isinstance(e, list)
            and len(e) == 2
            and type(e[0]) is bytes
            and len(e[0]) == ID_SIZE
            and type(e[1]) is bytes
            and len(e[1]) == KEY_SIZE
        ):
            raise RecordDecodeError("a view entry is [association ID, link secret]")
        out.append((e[0], e[1]))
    return tuple(out)


def _aad(patient: bytes, grantee: bytes, from_us: int, until_us: int) -> bytes:
    return _VIEW_INFO + codec.encode([patient, grantee, from_us, until_us])


def _pad_to_power_of_two(entries: list[list[bytes]]) -> bytes:
    bare = len(codec.encode({"entries": entries, "pad": b""}))
    target = max(MIN_VIEW_BYTES, 1 << (bare - 1).bit_length())
    # the pad's own length prefix grows with it; step down until the total fits exactly
    for pad in range(target - bare, -1, -1):
        encoded = codec.encode({"entries": entries, "pad": b"\x00" * pad})
        if len(encoded) <= target:
            return encoded
    raise AssertionError("padding search always ends at pad = 0")


def grant_view(
    patient: Identity,
    grantee: IdentityPublic,
    associations: Iterable[FoundAssociation],
    from_us: int,
    until_us: int,
    timestamp_us: int,
    *,
    randbytes: RandBytes = os.urandom,
) -> Transaction:
    """A ``grant`` transaction, signed by ``patient``, carrying a view capability for
    ``associations`` sealed to ``grantee`` (whose key binding is checked)."""
    if not 0 <= from_us < until_us:
        raise RecordUsageError("a grant window needs 0 <= from_us < until_us")
    entries = [[a.association_id, a.link_secret] for a in associations]
    if len(entries) > MAX_VIEW_ENTRIES:
        raise RecordUsageError(f"a view capability holds at most {MAX_VIEW_ENTRIES} entries")
    plain = _pad_to_power_of_two(entries)
    aad = _aad(patient.key, grantee.signing, from_us, until_us)
    view = grantee.seal(plain, aad, randbytes=randbytes)
    content = codec.encode(
        {"grantee": grantee.signing, "from_us": from_us, "until_us": until_us, "view": view}
    )
    return Transaction.create(Kind.GRANT, content, timestamp_us, [patient.signing])


def read_view(grantee: Identity, grant: Transaction) -> ViewCapability:
    """Open the view capability of ``grant`` addressed to ``grantee``.

    Raises :class:`RecordDecodeError` if it is not a well-formed view grant for this grantee or the
    box does not open (someone else's grant, or tampering).
    """
    if grant.kind is not Kind.GRANT:
        raise RecordDecodeError("not a grant transaction")
    try:
        c = codec.decode(grant.content)
    except codec.DecodeError as exc:
        raise RecordDecodeError(f"malformed grant: {exc}") from None
    if not isinstance(c, dict) or set(c) != {"grantee", "from_us", "until_us", "view"}:
        raise RecordDecodeError("a view grant is grantee, from_us, until_us, view")
    g, lo, hi, view = c["grantee"], c["from_us"], c["until_us"], c["view"]
    if type(lo) is not int or type(hi) is not int or type(view) is not bytes:
        raise RecordDecodeError("malformed grant window or view")
    if g != grantee.key:
        raise RecordDecodeError("this grant is addressed to another grantee")
    try:
        plain = grantee.open(view, _aad(grant.author, g, lo, hi))
        body = codec.decode(plain)
    except (SealError, codec.DecodeError) as exc:
        raise RecordDecodeError(f"view capability does not open: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"entries", "pad"}:
        raise RecordDecodeError("a view capability is entries and pad")
    out = parse_view_entries(body["entries"])
    return ViewCapability(grant.author, g, lo, hi, out)


def resolve(
    capability: ViewCapability, transactions: Mapping[bytes, Transaction]
) -> list[FoundAssociation]:
    """The associations of ``capability`` that exist in ``transactions`` (ID → body) and open
    with their secret; entries that are absent or do not verify are left out."""
    found = []
    for assoc_id, secret in capability.entries:
        tx = transactions.get(assoc_id)
        if tx is None:
            continue
        opened = open_with_secret(tx, secret)
        if opened is not None:
            found.append(opened)
    return found
