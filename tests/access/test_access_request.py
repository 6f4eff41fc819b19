"""AccessRequest: the transaction ID rule, the ledger adapter and malformed fields."""

from __future__ import annotations

import dataclasses

import pytest

from medbench import codec
from medbench.access.request import (
    AccessRequest,
    Operation,
    RequestError,
    build_request,
    from_transaction_fields,
    transaction_id,
)
from medbench.hashing import sha256
from medbench.pki.drafts import TxDraft
from medbench.pki.kmc import KeyBundle

from .conftest import T0, Cast


def _req(cast: Cast) -> AccessRequest:
    return cast.doctor().request(
        Operation.ADD,
        patient=cast.P.public_key,
        category="visit",
        body={"content": b"dx"},
        at_us=T0,
        countersign=True,
    )


def test_id_is_sha256_of_kind_content_time_and_keys(cast: Cast) -> None:
    req = _req(cast)
    keys = [cast.D.public_key, cast.HB.public_key]
    # the ledger's rule: [kind code, canonical content bytes, time, keys] (medbench.ledger)
    expect = sha256(codec.encode([1, codec.encode(req.content), T0, keys]))
    assert req.request_id == expect == transaction_id("add", req.content, T0, keys)
    assert transaction_id(1, req.content_bytes, T0, keys) == expect
    assert req.kind_code == 1 and req.content_bytes == codec.encode(req.content)
    assert req.public_keys == keys
    assert "add" in repr(req) and len(repr(req)) < 120


def test_adapter_round_trips_a_ledger_transaction(cast: Cast) -> None:
    req = _req(cast)
    back = from_transaction_fields(
        req.kind,
        req.content,
        req.timestamp_us,
        req.public_keys,
        [s.signature for s in req.signatures],
        [s.cert_chain for s in req.signatures],
        access_key=cast.world.access_key,
    )
    assert back == req and back.request_id == req.request_id
    # as the ledger carries it: integer kind code, content as canonical bytes
    wire = from_transaction_fields(
        req.kind_code,
        req.content_bytes,
        req.timestamp_us,
        req.public_keys,
        [s.signature for s in req.signatures],
        [s.cert_chain for s in req.signatures],
        access_key=cast.world.access_key,
    )
    assert wire == req
    with pytest.raises(RequestError, match="does not decode"):
        from_transaction_fields(1, b"\xc1", T0, req.public_keys, [b"x" * 64] * 2, [(), ()])
    with pytest.raises(RequestError, match="unknown transaction kind"):
        from_transaction_fields(
            99, req.content_bytes, T0, req.public_keys, [b"x" * 64] * 2, [(), ()]
        )


def test_adapter_rejects_mismatches(cast: Cast) -> None:
    req = _req(cast)
    sigs = [s.signature for s in req.signatures]
    chains = [s.cert_chain for s in req.signatures]
    with pytest.raises(RequestError, match="cannot travel"):
        from_transaction_fields("query", req.content, T0, req.public_keys, sigs, chains)
    with pytest.raises(RequestError, match="first creator"):
        from_transaction_fields("add", req.content, T0, req.public_keys[::-1], sigs, chains)
    with pytest.raises(RequestError, match="one signature"):
        from_transaction_fields("add", req.content, T0, req.public_keys, sigs[:1], chains)
    with pytest.raises(RequestError, match="not an access request"):
        from_transaction_fields("add", {"op": "add"}, T0, req.public_keys, sigs, chains)


@pytest.mark.parametrize(
    "change",
    [
        {"requester": b"short"},
        {"patient": b"x" * 31},
        {"category": ""},
        {"category": "x" * 65},
        {"timestamp_us": -1},
        {"nonce": b"n" * 15},
        {"body": {"x": 1.5}},
        {"body": {1: 2}},
        {"body": []},
    ],
)
def test_malformed_requests_raise_request_error(cast: Cast, change: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(RequestError):
        dataclasses.replace(_req(cast), **change)


def test_build_request_needs_a_signer_and_the_draft_needs_a_known_kind() -> None:
    with pytest.raises(RequestError):
        build_request(
            Operation.READ,
            patient=b"",
            category="*",
            timestamp_us=0,
            nonce=b"n" * 16,
            body={},
            signers=[],
        )
    with pytest.raises(ValueError):
        TxDraft("mint", {"type": "x"}, 0)
    with pytest.raises(ValueError):
        TxDraft("add", {"no-type": 1}, 0)
    with pytest.raises(TypeError):
        TxDraft("add", {"type": "x", "f": 1.0}, 0)
    key = KeyBundle.generate(__import__("random").Random(0)).signing
    r = build_request(
        Operation.READ,
        patient=b"",
        category="*",
        timestamp_us=0,
        nonce=b"n" * 16,
        body={"history": False},
        signers=[(key, ())],
    )
    assert r.signatures[0].cert_chain == ()
