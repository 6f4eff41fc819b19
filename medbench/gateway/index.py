"""What the gateway reads: the hospital node's store after commit, opened and indexed as FHIR.

Theory of operation
-------------------
Reads never come from the gateway's memory of what it submitted: :class:`StoreIndex` follows the
node's SQLite store (read-only connection; WAL readers never block the node) block by block and
indexes every committed transaction the node stored:

* access requests (sealed; opened with the consortium access key the hospital's validator holds,
  docs/medical-chain.md §1.6) — ``add`` of gateway content (``{"fhir": [canonical JSON],
  "images": [attachment]}``, the visit-record shape of :mod:`medbench.records.visit`) creates a
  resource whose logical id is the first 16 bytes of the create transaction's ID; ``modify`` adds
  a version (the chain only accepts a modify of the *live* version, which is what makes
  ``If-Match`` a chain decision); ``delete`` ends it; ``grant`` / ``revoke`` are Consents;
* chain records (§1.3, §1.5): every ``audit`` record becomes an AuditEvent (patient, requester and
  category opened from the record's sealed box), every ``blacklist`` entry an AuditEvent of type
  ``blacklist``.

Each indexed version keeps its transaction ID and block height (what ``meta`` and the chain
endpoints show). :meth:`StoreIndex.refresh` is incremental and cheap when nothing changed;
it also re-reads (bounded) the blocks the node stored before their signature arrived, so the
chain endpoints and proofs pick the signature up (docs/medical-chain.md §1.5).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from medbench import codec
from medbench.access.request import Operation, RequestError, from_transaction_fields
from medbench.crypto.envelope import EnvelopeError, open_record
from medbench.crypto.sealing import EncryptionKey
from medbench.ledger.block import Block, BlockHeader
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import Transaction
from medbench.records.attachments import Attachment
from medbench.records.errors import RecordDecodeError
from medbench.store.reads import Snapshot
from medbench.store.rows import StoredBlock

ID_BYTES = 16
RECHECK = 256
"""Most unsigned indexed blocks one :meth:`StoreIndex.refresh` re-reads for a late signature."""
"""A logical id is the hex of the first 16 bytes of the creating transaction's ID."""


def logical_id(tx_id: bytes) -> str:
    """The FHIR id of the resource a transaction created."""
    return tx_id[:ID_BYTES].hex()


def encode_content(resource: dict[str, Any], images: list[Attachment] = ()) -> bytes:  # type: ignore[assignment]
    """Record content for a resource (canonical JSON, sorted keys, no id/meta)."""
    body = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return codec.encode({"fhir": [text.encode()], "images": [a.to_fields() for a in images]})


def decode_content(content: Any) -> tuple[dict[str, Any], list[Attachment]] | None:
    """The resource and attachments of gateway content, or ``None``."""
    try:
        doc = codec.decode(content) if type(content) is bytes else None
    except codec.DecodeError:
        return None
    if not isinstance(doc, dict) or set(doc) != {"fhir", "images"}:
        return None
    raw = doc["fhir"]
    if not isinstance(raw, list) or len(raw) != 1 or type(raw[0]) is not bytes:
        return None
    try:
        res = json.loads(raw[0])
        images = [Attachment.from_fields(a) for a in doc["images"]]
    except (ValueError, RecordDecodeError, TypeError):
        return None
    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
        return None
    return res, images


@dataclass
class Version:
    """One committed version of a resource."""

    number: int
    tx_id: bytes
    height: int
    at_us: int
    resource: dict[str, Any] | None  # None: deleted
    author: bytes
    method: str  # POST, PUT, DELETE


@dataclass
class Entry:
    """A resource on chain and its versions."""

    rtype: str
    id: str
    patient: bytes
    category: str
    versions: list[Version] = field(default_factory=list)

    @property
    def current(self) -> Version:
        """The newest version."""
        return self.versions[-1]

    @property
    def live_tx(self) -> bytes:
        """The transaction ID of the newest version (what a chain modify or delete names)."""
        return self.versions[-1].tx_id


@dataclass
class BlobInfo:
    """An image's metadata from the record that put its hash on chain."""

    digest: bytes
    content_type: str
    size: int
    patient: bytes
    producer: bytes
    at_us: int
    tx_id: bytes


@dataclass
class AuditRow:
    """One audit or blacklist record."""

    id: str
    kind: str  # audit | blacklist
    tx_id: bytes
    height: int
    at_us: int
    request: bytes
    operation: str
    outcome: str
    requester: bytes
    patient: bytes
    category: str


class StoreIndex:
    """The FHIR view of one node's store (see the module docstring)."""

    def __init__(
        self, store_path: Path, access_key: EncryptionKey, chains: dict[bytes, tuple[bytes, ...]]
    ) -> None:
        self.path = store_path
        self.access_key = access_key
        self.chains = chains
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.height = 0
        self.entries: dict[tuple[str, str], Entry] = {}
        self.by_tx: dict[bytes, tuple[str, str]] = {}
        self.by_type: dict[str, list[str]] = {}
        self.patient_of_key: dict[bytes, list[str]] = {}  # patient key -> Patient ids
        self.grants: dict[bytes, str] = {}  # grant tx id -> Consent id
        self.audits: list[AuditRow] = []
        self.blobs: dict[bytes, BlobInfo] = {}
        self.tx_height: dict[bytes, int] = {}
        self.blocks: list[Block] = []  # height h at index h - 1
        # heights of indexed blocks stored before their signature (docs/medical-chain.md §1.5),
        # re-read by refresh() until signed; oldest first, rotated so each gets its turn
        self.unsigned: dict[int, None] = {}
        self.skipped = 0

    # --- the store -------------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot | None:
        if self._conn is None:
            if not self.path.exists():
                return None
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=5.0, check_same_thread=False
            )
        return Snapshot(self._conn)

    def close(self) -> None:
        """Close the read connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def refresh(self) -> int:
        """Index every block stored since the last call; returns the height."""
        with self._lock:
            snap = self._snapshot()
            if snap is None:
                return self.height
            try:
                if self.unsigned:
                    self._recheck_signatures(snap)
                tip = snap.tip()
                if tip is None or tip[0] <= self.height:
                    return self.height
                rows = list(snap.iter_blocks(start=self.height + 1, stop=tip[0] + 1))
                for row in rows:
                    txs = snap.get_transactions(list(row.tx_ids))
                    self._index_block(row, [txs[t].body for t in row.tx_ids if t in txs])
            except sqlite3.Error:
                return self.height
            return self.height

    def _recheck_signatures(self, snap: Snapshot) -> None:
        """Pick up signatures filled in since indexing, for at most :data:`RECHECK` blocks."""
        heights = list(islice(self.unsigned, RECHECK))
        headers = snap.block_headers(heights)
        for h in heights:
            del self.unsigned[h]
            sig = codec.decode(headers[h])[1] if h in headers else b""
            if sig:
                old = self.blocks[h - 1]
                self.blocks[h - 1] = Block(old.header, sig, old.tx_ids)
            else:
                self.unsigned[h] = None  # to the back: the others get their turn first

    def _index_block(self, row: StoredBlock, bodies: list[bytes]) -> None:
        fields = codec.decode(row.header)
        header = BlockHeader.from_fields(fields[0])
        self.blocks.append(Block(header, fields[1], row.tx_ids))
        h = row.height
        if not fields[1]:
            self.unsigned[h] = None
        for t in row.tx_ids:
            self.tx_height[t] = h
        for body in bodies:
            try:
                tx = Transaction.from_wire(body)
            except LedgerDecodeError:
                self.skipped += 1
                continue
            try:
                self._index_tx(tx, h)
            except (RequestError, EnvelopeError, ValueError, TypeError, KeyError):
                self.skipped += 1
        self.height = h

    def _index_tx(self, tx: Transaction, height: int) -> None:
        content = codec.decode(tx.content)
        if isinstance(content, dict) and "type" in content:
            self._index_record(tx, content, height)
            return
        chains = [self.chains.get(k, ()) for k in tx.public_keys]
        req = from_transaction_fields(
            tx.kind,
            tx.content,
            tx.timestamp_us,
            tx.public_keys,
            tx.signatures,
            chains,
            access_key=self.access_key,
        )
        op, body = req.operation, req.body
        if op is Operation.ADD:
            doc = decode_content(body.get("content"))
            if doc is None:
                return
            res, images = doc
            rtype = res["resourceType"]
            rid = logical_id(tx.id)
            entry = Entry(rtype, rid, req.patient, req.category)
            self._version(entry, tx, height, res, req.requester, "POST")
            self.entries[(rtype, rid)] = entry
            self.by_type.setdefault(rtype, []).append(rid)
            if rtype == "Patient":
                self.patient_of_key.setdefault(req.patient, []).append(rid)
            for a in images:
                self.blobs[a.sha256] = BlobInfo(
                    a.sha256,
                    a.media_type,
                    a.size,
                    req.patient,
                    tx.public_keys[-1],
                    tx.timestamp_us,
                    tx.id,
                )
        elif op in (Operation.MODIFY, Operation.DELETE):
            key = self.by_tx.get(body.get("record", b""))
            found = self.entries.get(key) if key else None
            if found is None:
                return
            entry = found
            if op is Operation.MODIFY:
                doc = decode_content(body.get("content"))
                if doc is None:
                    return
                self._version(entry, tx, height, doc[0], req.requester, "PUT")
            else:
                self._version(entry, tx, height, None, req.requester, "DELETE")
        elif op is Operation.GRANT:
            rid = logical_id(tx.id)
            entry = Entry("Consent", rid, req.patient, "*")
            grant = {
                "grantee": body["grantee"],
                "ops": list(body["ops"]),
                "categories": list(body["categories"]),
                "not_before_us": body["not_before_us"],
                "not_after_us": body["not_after_us"],
                "status": "active",
            }
            self._version(entry, tx, height, {"_grant": grant}, req.requester, "POST")
            self.entries[("Consent", rid)] = entry
            self.by_type.setdefault("Consent", []).append(rid)
            self.grants[tx.id] = rid
        elif op is Operation.REVOKE:
            rid2 = self.grants.get(body.get("grant", b""))
            found = self.entries.get(("Consent", rid2)) if rid2 else None
            current = found.current.resource if found is not None else None
            if found is None or current is None:
                return
            entry = found
            grant = dict(current["_grant"], status="inactive")
            self._version(entry, tx, height, {"_grant": grant}, req.requester, "DELETE")

    def _version(
        self,
        entry: Entry,
        tx: Transaction,
        height: int,
        res: dict[str, Any] | None,
        author: bytes,
        method: str,
    ) -> None:
        entry.versions.append(
            Version(len(entry.versions) + 1, tx.id, height, tx.timestamp_us, res, author, method)
        )
        self.by_tx[tx.id] = (entry.rtype, entry.id)

    def _index_record(self, tx: Transaction, content: dict[str, Any], height: int) -> None:
        kind = content.get("type")
        if kind not in ("audit", "blacklist"):
            return
        request = content.get("request", b"")
        private: dict[str, Any] = {}
        if "sealed" in content:
            try:
                private = open_record(self.access_key, kind, request, content["sealed"])
            except EnvelopeError:
                private = {}
        else:
            private = content
        requester = content.get("subject") if kind == "blacklist" else private.get("requester")
        self.audits.append(
            AuditRow(
                id=logical_id(tx.id),
                kind=kind,
                tx_id=tx.id,
                height=height,
                at_us=tx.timestamp_us,
                request=bytes(request),
                operation=str(content.get("operation", "")),
                outcome=str(content.get("outcome", content.get("reason", ""))),
                requester=bytes(requester or content.get("signer", b"")),
                patient=bytes(private.get("patient", b"")),
                category=str(private.get("category", "")),
            )
        )

    # --- queries ---------------------------------------------------------------------------------
    def get(self, rtype: str, rid: str) -> Entry | None:
        """The entry of ``rtype/rid``."""
        return self.entries.get((rtype, rid))

    def of_patient(self, rtype: str, patient: bytes) -> list[Entry]:
        """Live resources of one type of one patient, oldest first."""
        out = []
        for rid in self.by_type.get(rtype, []):
            e = self.entries[(rtype, rid)]
            if e.patient == patient and e.current.resource is not None:
                out.append(e)
        return out

    def iter_type(self, rtype: str) -> Iterator[Entry]:
        """Every entry of a type, oldest first."""
        for rid in self.by_type.get(rtype, []):
            yield self.entries[(rtype, rid)]

    def block(self, height: int) -> Block | None:
        """The block at ``height`` (>= 1) if indexed."""
        if 1 <= height <= len(self.blocks):
            return self.blocks[height - 1]
        return None
