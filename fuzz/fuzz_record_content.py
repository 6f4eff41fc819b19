"""Record contents read from the chain (``medbench.records``): visit records, update links,
query conditions, stealth associations, sealed private profiles, registrations, view grants,
tombstones and attachment lists.

The first byte picks the reader; the rest is a transaction's content. Allowed: the parsed record,
or :class:`~medbench.records.errors.RecordDecodeError` (readers documented as never raising —
``attachments_of``, ``open_with_secret`` — may not raise at all). Checked on a record: encoding
it and parsing that again gives an equal record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fuzz import samples
from fuzz.common import (
    ByteReader,
    Harness,
    InvariantError,
    OneInput,
    Skip,
    deterministic_bytes,
    expect,
)
from medbench import codec
from medbench.crypto.identity import Identity
from medbench.ledger.transaction import Kind, Transaction
from medbench.records.association import StealthAssociation, open_with_secret
from medbench.records.attachments import Attachment
from medbench.records.capability import grant_view, parse_view_entries, read_view
from medbench.records.crud import QueryCondition, UpdateLink, tombstone_target
from medbench.records.entity import PrivateProfile, read_registration
from medbench.records.errors import RecordDecodeError
from medbench.records.visit import VisitRecord, attachments_of

TS = 1_700_000_000_000_000
GRANTEE = Identity.generate(seed=bytes([7]) * 32)
PATIENT = Identity.generate(seed=bytes([8]) * 32)
AUTHOR = bytes([9]) * 32


def _roundtrip(cls: Any, content: bytes) -> None:
    obj = cls.decode(content)
    expect(cls.decode(obj.encode()) == obj, f"{cls.__name__}: encode/decode is not stable")


def _registration(content: bytes) -> None:
    # list the keys the content names, as its honest author would, so the reader goes deep
    keys: list[bytes] = [AUTHOR]
    try:
        c = codec.decode(content)
        ident = c["identity"][1]
        keys = [ident] + [c[k] for k in ("institution", "releases") if c.get(k)]
        tx = Transaction(Kind.REGISTER, content, TS, tuple(keys))
    except (codec.DecodeError, TypeError, KeyError, IndexError, ValueError):
        tx = Transaction(Kind.REGISTER, content, TS, (AUTHOR,))
    reg = read_registration(tx)
    expect(reg.key == tx.author, "registration of another key")


def _never_raises(fn: Callable[[], object], name: str) -> None:
    try:
        fn()
    except RecordDecodeError as exc:
        raise InvariantError(f"{name} raised {exc!r} but never raises") from exc


def _fields(content: bytes) -> Any:
    try:
        return codec.decode(content)
    except codec.DecodeError:
        raise Skip from None


READERS: list[Callable[[bytes], object]] = [
    lambda c: _roundtrip(VisitRecord, c),
    lambda c: _roundtrip(UpdateLink, c),
    lambda c: _roundtrip(QueryCondition, c),
    lambda c: _roundtrip(StealthAssociation, c),
    lambda c: PrivateProfile.decode(c),
    _registration,
    lambda c: read_view(GRANTEE, Transaction(Kind.GRANT, c, TS, (PATIENT.key,))),
    lambda c: _never_raises(lambda: attachments_of(c), "attachments_of"),
    lambda c: tombstone_target(Transaction(Kind.DELETE, c, TS, (AUTHOR,))),
    lambda c: _never_raises(
        lambda: open_with_secret(Transaction(Kind.ASSOCIATE, c, TS, (AUTHOR,)), bytes(32)),
        "open_with_secret",
    ),
    lambda c: Attachment.from_fields(_fields(c)),
    lambda c: parse_view_entries(_fields(c)),
]


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        reader = READERS[r.u8() % len(READERS)]
        reader(r.rest())

    return one_input


def seeds() -> list[bytes]:
    by_kind = {k: samples.workload_transactions(k) for k in Kind}
    pick = {
        0: by_kind[Kind.ADD][:3],
        1: by_kind[Kind.UPDATE][:2],
        2: [QueryCondition(owner=AUTHOR, until_us=5).encode()],
        3: by_kind[Kind.ASSOCIATE][:2],
        4: [PrivateProfile("Zhang San", "330102", "+86 1").encode()],
        5: by_kind[Kind.REGISTER][:4],
        8: by_kind[Kind.DELETE][:1],
        9: by_kind[Kind.ASSOCIATE][:1],
    }
    out = []
    for i, items in pick.items():
        for item in items:
            out.append(bytes([i]) + (item if type(item) is bytes else item.content))
    visit = VisitRecord.decode(by_kind[Kind.ADD][0].content)
    out.append(b"\x07" + by_kind[Kind.ADD][0].content)
    for a in visit.attachments[:1]:
        out.append(b"\x0a" + codec.encode(a.to_fields()))
    out.append(b"\x0b" + codec.encode([[bytes(32), bytes(32)]]))
    view = grant_view(PATIENT, GRANTEE.public, [], 0, 9, TS, randbytes=deterministic_bytes("v"))
    out.append(b"\x06" + view.content)
    return out


HARNESS = Harness(
    name="record_content",
    summary="medbench.records readers (visits, links, queries, associations, registrations...)",
    allowed=(RecordDecodeError,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
