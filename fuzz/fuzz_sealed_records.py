"""Sealed grants, queries, views and audits of ``medbench.records.sealed``: what validators and
grantees open.

The first byte picks a reader and whether the rest of the input is the transaction's content
(as a peer sends it) or the *plaintext* inside one of its boxes, sealed here with the real key
(the consortium access key, or the grantee's) so the readers behind AES-GCM are fuzzed too; the
other fields come from real transactions of a synthetic workload, so a plaintext close to a real
one reaches the pseudonym-certificate checks. Allowed: the opened grant / condition / view /
patient, or :class:`~medbench.records.errors.RecordDecodeError`.
"""

from __future__ import annotations

from typing import Any

from fuzz import samples
from fuzz.common import ByteReader, Harness, OneInput, deterministic_bytes, expect
from medbench import codec
from medbench.crypto.envelope import RECORD_INFO, envelope_aad
from medbench.crypto.sealing import seal
from medbench.hashing import sha256
from medbench.ledger.transaction import Kind, Transaction
from medbench.records.errors import RecordDecodeError
from medbench.records.sealed import (
    _VIEW_INFO,
    is_sealed_grant,
    open_audit,
    open_sealed_grant,
    open_sealed_query,
    read_sealed_view,
)


class _World:
    """Keys and real sealed transactions from the workload (built once per process)."""

    def __init__(self) -> None:
        wl = samples.workload()
        self.access = wl.access_key
        self.anchors = wl.pseudonym_anchors
        grants = [t for t in samples.workload_transactions(Kind.GRANT) if is_sealed_grant(t)]
        self.grant = grants[0]
        opened = open_sealed_grant(self.access, self.grant, self.anchors)
        people = [*wl.staff, *wl.workers]
        self.grantee = next(e.identity for e in people if e.key == opened.grantee)
        queries = samples.workload_transactions(Kind.QUERY)
        self.query = next(t for t in queries if set(codec.decode(t.content)) == {"envelope"})
        self.audit = next(t for t in queries if "sealed" in codec.decode(t.content))
        self.grant_c = codec.decode(self.grant.content)
        self.audit_c = codec.decode(self.audit.content)

    def plaintexts(self) -> dict[int, bytes]:
        """The real plaintext of each box, keyed by the mode that seals a fuzzed one."""
        q = codec.decode(self.query.content)
        rid = self.audit_c["request"]
        return {
            5: self.access.open(self.grant_c["envelope"], envelope_aad("grant", self.grant.author)),
            6: self.access.open(q["envelope"], envelope_aad("query", self.query.author)),
            7: self.grantee.open(
                self.grant_c["view"], _VIEW_INFO + sha256(self.grant_c["envelope"])
            ),
            8: self.access.open(self.audit_c["sealed"], codec.encode([RECORD_INFO, "audit", rid])),
        }


def setup() -> OneInput:
    w = _World()
    randbytes = deterministic_bytes("fuzz-sealed-records")
    access_pub = w.access.public

    def tx(kind: Kind, content: Any, author: bytes, ts: int) -> Transaction:
        body = content if type(content) is bytes else codec.encode(content)
        return Transaction(kind, body, ts, (author,))

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        mode = r.u8() % 9
        rest = r.rest()
        g, q, a = w.grant, w.query, w.audit
        if mode == 0:
            got = open_sealed_grant(
                w.access, tx(Kind.GRANT, rest, g.author, g.timestamp_us), w.anchors
            )
            expect(got.pseudonym == g.author, "grant opened under another pseudonym")
        elif mode == 1:
            open_sealed_query(w.access, tx(Kind.QUERY, rest, q.author, q.timestamp_us))
        elif mode == 2:
            read_sealed_view(w.grantee, tx(Kind.GRANT, rest, g.author, g.timestamp_us))
        elif mode == 3:
            open_audit(w.access, tx(Kind.QUERY, rest, a.author, a.timestamp_us))
        elif mode == 4:
            is_sealed_grant(tx(Kind.GRANT, rest, g.author, g.timestamp_us))
        elif mode == 5:  # the grant's envelope plaintext
            box = seal(access_pub, rest, envelope_aad("grant", g.author), randbytes=randbytes)
            content = {"envelope": box, "view": w.grant_c["view"]}
            open_sealed_grant(
                w.access, tx(Kind.GRANT, content, g.author, g.timestamp_us), w.anchors
            )
        elif mode == 6:  # the query's envelope plaintext
            box = seal(access_pub, rest, envelope_aad("query", q.author), randbytes=randbytes)
            open_sealed_query(w.access, tx(Kind.QUERY, {"envelope": box}, q.author, q.timestamp_us))
        elif mode == 7:  # the view's plaintext, sealed to the grantee
            env = w.grant_c["envelope"]
            view = w.grantee.public.seal(rest, _VIEW_INFO + sha256(env), randbytes=randbytes)
            content = {"envelope": env, "view": view}
            cap = read_sealed_view(w.grantee, tx(Kind.GRANT, content, g.author, g.timestamp_us))
            expect(cap.grantee == w.grantee.key, "view opened for another grantee")
        else:  # the audit record's sealed patient
            rid = w.audit_c["request"]
            aad = codec.encode([RECORD_INFO, "audit", rid])
            content = {**w.audit_c, "sealed": seal(access_pub, rest, aad, randbytes=randbytes)}
            open_audit(w.access, tx(Kind.QUERY, content, a.author, a.timestamp_us))

    return one_input


def seeds() -> list[bytes]:
    w = _World()
    out = [
        b"\x00" + w.grant.content,
        b"\x01" + w.query.content,
        b"\x02" + w.grant.content,
        b"\x03" + w.audit.content,
        b"\x04" + w.grant.content,
    ]
    out += [bytes([mode]) + plain for mode, plain in w.plaintexts().items()]
    return out


HARNESS = Harness(
    name="sealed_records",
    summary="records.sealed (sealed grants, queries, views, audits; boxes and plaintexts)",
    allowed=(RecordDecodeError,),
    setup=setup,
    seeds=seeds,
    max_len=16384,
)
