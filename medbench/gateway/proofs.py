"""Chain proofs an auditor downloads from a gateway and checks offline (``verify --proof``).

Theory of operation
-------------------
Two JSON documents, both verifiable with nothing but the file and the consortium's validator
keys (which the file lists; an auditor compares them with the genesis they trust, e.g. with
``--validators``):

``medbench-inclusion-proof``
    a transaction ID, the block header it is in (height, previous ID, blocker, Merkle root,
    time), the block ID and the blocker's Ed25519 signature over it, and the RFC 9162 audit path
    of the ID (index, count). Valid when the header hashes to the block ID, the signature
    verifies under the blocker key, the blocker is a listed validator, and the path leads from
    the ID to the header's Merkle root (:func:`medbench.merkle.verify_inclusion`);
``medbench-consistency-proof``
    two heights ``first <= second`` of the chain seen as an append-only log of block IDs (as
    Certificate Transparency sees certificates): the Merkle roots of the block IDs up to each
    height and the RFC 9162 consistency proof between them, plus the headers from ``first`` to
    ``second`` (at most :data:`MAX_SPAN` + 1), whose previous-ID links must join the two heights.
    Valid when the consistency proof verifies (:func:`medbench.merkle.verify_consistency`), the
    linked headers hash to the listed IDs and every header's signature verifies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from medbench import merkle
from medbench.crypto.keys import Scheme, verify
from medbench.ledger.block import Block, BlockHeader

INCLUSION = "medbench-inclusion-proof"
CONSISTENCY = "medbench-consistency-proof"
MAX_SPAN = 256
MAX_PROOF_BYTES = 4 << 20


class ProofError(ValueError):
    """A proof file that does not parse."""


def _header_doc(h: BlockHeader) -> dict[str, Any]:
    return {
        "height": h.height,
        "previous_id": h.previous_id.hex(),
        "blocker": h.blocker.hex(),
        "merkle_root": h.merkle_root.hex(),
        "timestamp_us": h.timestamp_us,
    }


def block_doc(b: Block) -> dict[str, Any]:
    """A block as JSON (header, ID, signature, transaction IDs)."""
    return {
        "height": b.height,
        "block_id": b.id.hex(),
        "header": _header_doc(b.header),
        "signature": b.signature.hex(),
        "tx_ids": [t.hex() for t in b.tx_ids],
    }


def inclusion_doc(block: Block, tx_id: bytes, validators: Sequence[bytes]) -> dict[str, Any]:
    """The inclusion proof of ``tx_id`` in ``block``."""
    index = block.tx_ids.index(tx_id)
    return {
        "format": INCLUSION,
        "version": 1,
        "tx_id": tx_id.hex(),
        "height": block.height,
        "index": index,
        "count": len(block.tx_ids),
        "path": [p.hex() for p in block.inclusion_proof(index)],
        "header": _header_doc(block.header),
        "block_id": block.id.hex(),
        "signature": block.signature.hex(),
        "validators": [v.hex() for v in validators],
    }


def consistency_doc(
    blocks: Sequence[Block], first: int, second: int, validators: Sequence[bytes]
) -> dict[str, Any]:
    """The consistency proof between heights ``first`` and ``second`` (1-based, inclusive)."""
    ids = [b.id for b in blocks[:second]]
    return {
        "format": CONSISTENCY,
        "version": 1,
        "first": first,
        "second": second,
        "first_root": merkle.root(ids[:first]).hex(),
        "second_root": merkle.root(ids).hex(),
        "proof": [p.hex() for p in merkle.consistency_proof(ids, first)],
        "headers": [
            {**_header_doc(b.header), "block_id": b.id.hex(), "signature": b.signature.hex()}
            for b in blocks[first - 1 : second]
        ],
        "validators": [v.hex() for v in validators],
    }


def _hex(doc: Any, key: str, size: int | None = 32) -> bytes:
    v = doc.get(key) if isinstance(doc, dict) else None
    try:
        out = bytes.fromhex(v) if isinstance(v, str) else None
    except ValueError:
        out = None
    if out is None or (size is not None and len(out) != size):
        raise ProofError(f"{key}: expected {size or 'some'} hex bytes")
    return out


def _int(doc: Any, key: str) -> int:
    v = doc.get(key) if isinstance(doc, dict) else None
    if type(v) is not int or v < 0:
        raise ProofError(f"{key}: expected a non-negative integer")
    return v


def _header(doc: Any) -> BlockHeader:
    try:
        return BlockHeader(
            _int(doc, "height"),
            _hex(doc, "previous_id"),
            _hex(doc, "blocker"),
            _hex(doc, "merkle_root"),
            _int(doc, "timestamp_us"),
        )
    except ValueError as exc:
        raise ProofError(f"header: {exc}") from None


def _signed(h: BlockHeader, sig: bytes, validators: set[bytes]) -> list[str]:
    problems = []
    if h.blocker not in validators:
        problems.append(f"block {h.height}: blocker is not a listed validator")
    if not sig:  # stored before its signature arrived (docs/medical-chain.md §1.5)
        problems.append(f"block {h.height}: not signed yet (awaiting its blocker; ask again)")
    elif not verify(Scheme.ED25519, h.blocker, h.id, sig):
        problems.append(f"block {h.height}: blocker signature does not verify")
    return problems


def verify_proof(doc: Any, validators: Sequence[bytes] | None = None) -> tuple[str, list[str]]:
    """Check a proof document; returns (what it claims, problems). No problems: valid.

    ``validators`` (the trusted genesis's keys) overrides the keys the file lists.
    """
    if not isinstance(doc, dict):
        raise ProofError("a proof is a JSON object")
    fmt = doc.get("format")
    keys = doc.get("validators")
    if validators is None:
        if not isinstance(keys, list) or not keys:
            raise ProofError("validators: expected a list")
        validators = [_hex({"k": k}, "k") for k in keys]
    vset = set(validators)
    problems: list[str] = []
    if fmt == INCLUSION:
        tx_id = _hex(doc, "tx_id")
        header = _header(doc.get("header"))
        if header.id != _hex(doc, "block_id"):
            problems.append("the header does not hash to the block ID")
        problems += _signed(header, _hex(doc, "signature", None), vset)
        path = doc.get("path")
        if not isinstance(path, list) or len(path) > 64:
            raise ProofError("path: expected a list of hashes")
        hashes = [_hex({"p": p}, "p") for p in path]
        if header.height != _int(doc, "height"):
            problems.append("height differs from the header's")
        if not merkle.verify_inclusion(
            tx_id, _int(doc, "index"), _int(doc, "count"), hashes, header.merkle_root
        ):
            problems.append("the audit path does not lead to the header's Merkle root")
        return (
            f"transaction {tx_id.hex()} is entry {doc['index']} of block {header.height}",
            problems,
        )
    if fmt == CONSISTENCY:
        first, second = _int(doc, "first"), _int(doc, "second")
        proof = doc.get("proof")
        if not isinstance(proof, list) or len(proof) > 128:
            raise ProofError("proof: expected a list of hashes")
        hashes = [_hex({"p": p}, "p") for p in proof]
        if not merkle.verify_consistency(
            first, second, _hex(doc, "first_root"), _hex(doc, "second_root"), hashes
        ):
            problems.append("the consistency proof does not verify")
        headers = doc.get("headers")
        if not isinstance(headers, list) or len(headers) > MAX_SPAN + 1:
            raise ProofError("headers: expected a list")
        prev: BlockHeader | None = None
        for hd in headers:
            h = _header(hd)
            if h.id != _hex(hd, "block_id"):
                problems.append(f"block {h.height}: header does not hash to its ID")
            problems += _signed(h, _hex(hd, "signature", None), vset)
            if prev is not None and (h.previous_id != prev.id or h.height != prev.height + 1):
                problems.append(f"block {h.height} does not link to block {prev.height}")
            prev = h
        if headers and (
            _int(headers[0], "height") != first or _int(headers[-1], "height") != second
        ):
            problems.append("the headers do not span the two heights")
        claim = f"the chain at height {first} is a prefix of the chain at height {second}"
        return claim, problems
    raise ProofError(f"unknown proof format {fmt!r}")


def load_proof(data: bytes) -> Any:
    """Parse a proof file (bounded)."""
    if len(data) > MAX_PROOF_BYTES:
        raise ProofError("proof file too large")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProofError(f"not JSON: {exc}") from None
