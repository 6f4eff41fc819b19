"""Attachments by SHA-256 with media type and size; bytes in a blob store."""

from __future__ import annotations

import pytest

from medbench.hashing import sha256
from medbench.records import Attachment, AttachmentError, MemoryBlobStore, attach, fetch
from medbench.records.errors import RecordDecodeError, RecordUsageError


def test_attach_and_fetch() -> None:
    store = MemoryBlobStore()
    data = bytes(range(256)) * 40
    ref = attach(store, data, "image/jpeg", "ultrasound")
    assert ref == Attachment(sha256(data), "image/jpeg", len(data), "ultrasound")
    assert fetch(store, ref) == data
    assert Attachment.from_fields(ref.to_fields()) == ref


class _TamperingStore(MemoryBlobStore):
    def get(self, digest: bytes) -> bytes:
        data = super().get(digest)
        return data[:-1] + bytes([data[-1] ^ 1])


class _WrongHashStore(MemoryBlobStore):
    def put(self, data: bytes) -> bytes:
        super().put(data)
        return bytes(32)


def test_altered_missing_or_misaddressed_blobs_are_detected() -> None:
    tampering = _TamperingStore()
    ref = attach(tampering, b"CT slice" * 100, "application/dicom")
    with pytest.raises(AttachmentError, match="altered"):
        fetch(tampering, ref)
    with pytest.raises(AttachmentError, match="not in store"):
        fetch(MemoryBlobStore(), ref)
    with pytest.raises(AttachmentError):
        attach(_WrongHashStore(), b"x", "image/png")


@pytest.mark.parametrize(
    "fields",
    [
        {"sha256": b"short", "media_type": "image/png", "size": 1, "label": ""},
        {"sha256": bytes(32), "media_type": "PNG", "size": 1, "label": ""},
        {"sha256": bytes(32), "media_type": "image/png", "size": -5, "label": ""},
        {"sha256": bytes(32), "media_type": "image/png", "size": 1, "label": 7},
        {"sha256": bytes(32), "media_type": "image/png", "size": 1},
    ],
)
def test_malformed_attachment_fields(fields: dict[str, object]) -> None:
    with pytest.raises(RecordDecodeError):
        Attachment.from_fields(fields)
    if set(fields) == {"sha256", "media_type", "size", "label"}:
        with pytest.raises(RecordUsageError):
            Attachment(**fields)  # type: ignore[arg-type]
