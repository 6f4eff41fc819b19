"""``medbench.access.request.from_transaction_fields``: a ledger transaction read as an access
request by every validator (clear or sealed to the consortium access key).

The first byte picks a real request of a care session (a sealed grant under a pseudonym, a
countersigned add, a sealed read) whose keys, signatures and time are kept; the second picks
whether the rest of the input is the transaction's content, or the *plaintext* of its envelope
(sealed here to the access key with the request's own associated data, so the reader behind
AES-GCM is fuzzed too). Allowed: a request, or :class:`~medbench.access.request.RequestError`
(:class:`~medbench.access.request.SealedRequestError` included). Checked on a request: its ID is
the ledger ID of the transaction it came from, and its content re-encodes.
"""

from __future__ import annotations

import functools

from fuzz import samples
from fuzz.common import ByteReader, Harness, OneInput, deterministic_bytes, expect
from medbench import codec
from medbench.access.request import (
    Operation,
    RequestError,
    from_transaction_fields,
    sealed_aad,
)
from medbench.crypto.sealing import seal
from medbench.ledger.transaction import transaction_id
from medbench.medchain import request_transaction


@functools.cache
def _requests() -> tuple[list, object]:
    dep = samples.deployment()
    dep.rng.seed(13)  # the same requests whatever drew from the deployment's stream before
    reqs = samples.access_requests(dep, 0) + samples.access_requests(dep, 1)
    return [request_transaction(r) for r in reqs], dep.world.kmc.access_key()


def setup() -> OneInput:
    txs, access = _requests()
    randbytes = deterministic_bytes("fuzz-access-request")
    chains = [tuple(() for _ in tx.public_keys) for tx in txs]

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        i = r.below(len(txs))
        plaintext = r.flag()
        tx, rest = txs[i], r.rest()
        content: bytes = rest
        if plaintext:
            c = codec.decode(tx.content)
            if "envelope" not in c:
                return
            aad = sealed_aad(tx.kind.name.lower(), Operation(c["op"]), c["signer"], c["nonce"])
            c["envelope"] = seal(access.public, rest, aad, randbytes=randbytes)
            content = codec.encode(c)
        req = from_transaction_fields(
            int(tx.kind), content, tx.timestamp_us, tx.public_keys, tx.signatures, chains[i],
            access_key=access,
        )  # fmt: skip
        ledger_id = transaction_id(tx.kind, content, tx.timestamp_us, tx.public_keys)
        expect(req.request_id == ledger_id, "request ID differs from the transaction's ID")
        expect(req.content_bytes == content, "request content does not re-encode")
        repr(req)

    return one_input


def seeds() -> list[bytes]:
    txs, access = _requests()
    out = []
    for i, tx in enumerate(txs):
        out.append(bytes([i, 0]) + tx.content)
        c = codec.decode(tx.content)
        if "envelope" in c:
            aad = sealed_aad(tx.kind.name.lower(), Operation(c["op"]), c["signer"], c["nonce"])
            out.append(bytes([i, 1]) + access.open(c["envelope"], aad))
    return out


HARNESS = Harness(
    name="access_request",
    summary="access.request.from_transaction_fields (clear and sealed access requests)",
    allowed=(RequestError,),
    setup=setup,
    seeds=seeds,
    max_len=16384,
)
