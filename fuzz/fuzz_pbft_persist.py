"""``medbench.consensus.pbft.persist.decode_record``: a replica's consensus log read from disk.

Allowed: a record, or :class:`~medbench.consensus.pbft.messages.MessageError` (the disk may be
corrupted). Checked on a record: ``encode_record`` gives back exactly the input, and its
sequence numbers, views and digests are in the ranges the wire messages allow.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.consensus.pbft.log import ExecutedBatch, StableRecord, ViewRecord
from medbench.consensus.pbft.messages import (
    DIGEST_SIZE,
    MAX_U63,
    Checkpoint,
    MessageError,
    Prepare,
    PreparedProof,
    PrePrepare,
)
from medbench.consensus.pbft.persist import decode_record, encode_record


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        rec = decode_record(data)
        expect(encode_record(rec) == data, "decoded record does not re-encode to its input")
        # a valid object: the ranges the message constructors and ExecutedBatch records enforce
        if isinstance(rec, StableRecord):
            expect(0 <= rec.sequence <= MAX_U63, f"stable sequence {rec.sequence} out of range")
            expect(len(rec.state_digest) == DIGEST_SIZE, "stable digest is not 32 bytes")
        if isinstance(rec, ExecutedBatch):
            expect(rec.sequence <= MAX_U63 and rec.timestamp <= MAX_U63, "batch out of range")
        if isinstance(rec, ViewRecord):
            expect(rec.view <= MAX_U63, f"view {rec.view} out of range")

    return one_input


def seeds() -> list[bytes]:
    msgs = samples.pbft_messages()
    pp = next(m for m in msgs if isinstance(m, PrePrepare) and m.batch)
    prepares = tuple(m for m in msgs if isinstance(m, Prepare))
    cps = tuple(m for m in msgs if isinstance(m, Checkpoint))
    records = [
        *msgs,
        PreparedProof(pp, prepares),
        ExecutedBatch(pp.sequence, pp.timestamp, pp.batch_digest, pp.batch, (), (), bytes(32)),
        StableRecord(4, bytes(range(32)), cps),
        StableRecord(0, bytes(32), ()),
        ViewRecord(0, True),
        ViewRecord(3, False),
    ]
    return [encode_record(r) for r in records]


HARNESS = Harness(
    name="pbft_persist",
    summary="consensus.pbft.persist.decode_record (a replica's log on disk)",
    allowed=(MessageError,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
