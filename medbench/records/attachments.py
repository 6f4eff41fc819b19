"""Attachments (images, scans, video) referenced on chain by SHA-256; bytes in a blob store.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 2: ultrasound, CT and other large files stay off chain at the
producing node (backed up at the health authority); only their hash goes into the record, so any
change to the file is detectable. An :class:`Attachment` is ``(sha256, media_type, size, label)``.
The bytes go to any object with the :class:`BlobStore` protocol — ``put(data) -> sha256`` and
``get(sha256) -> data`` — which the node store implements; :class:`MemoryBlobStore` is the
in-memory one for tests and simulations. :func:`fetch` re-hashes what the store returns and
raises :class:`AttachmentError` on a missing, truncated or altered file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from medbench.hashing import sha256
from medbench.records.errors import AttachmentError, RecordDecodeError, RecordUsageError

DIGEST_SIZE = 32
MAX_ATTACHMENT_BYTES = 1 << 34
"""Largest attachment size a record may declare (16 GiB: a long video study)."""
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
_MAX_LABEL = 200


class BlobStore(Protocol):
    """Content-addressed storage for attachment bytes (the node store's blob store fits)."""

    def put(self, data: bytes) -> bytes:
        """Store ``data``; return its SHA-256."""
        ...

    def get(self, digest: bytes) -> bytes:
        """The bytes stored under ``digest``; raise ``KeyError`` if absent."""
        ...


class MemoryBlobStore:
    """A :class:`BlobStore` in a dict (tests, simulations)."""

    __slots__ = ("_blobs",)

    def __init__(self) -> None:
        """An empty store."""
        self._blobs: dict[bytes, bytes] = {}

    def put(self, data: bytes) -> bytes:
        """Store ``data``; return its SHA-256 (idempotent)."""
        digest: bytes = sha256(data)
        self._blobs[digest] = bytes(data)
        return digest

    def get(self, digest: bytes) -> bytes:
        """The bytes under ``digest``; ``KeyError`` if absent."""
        return self._blobs[digest]

    def __len__(self) -> int:
        return len(self._blobs)

    def __contains__(self, digest: object) -> bool:
        return digest in self._blobs


@dataclass(frozen=True, slots=True)
class Attachment:
    """An off-chain file named by its SHA-256, with media type (e.g. ``image/dicom``) and size."""

    sha256: bytes
    media_type: str
    size: int
    label: str = ""

    def __post_init__(self) -> None:
        problem = _problem(self.sha256, self.media_type, self.size, self.label)
        if problem is not None:
            raise RecordUsageError(f"invalid attachment: {problem}")

    def to_fields(self) -> dict[str, Any]:
        """The canonical map stored in a record's content."""
        return {
            "sha256": self.sha256,
            "media_type": self.media_type,
            "size": self.size,
            "label": self.label,
        }

    @classmethod
    def from_fields(cls, fields: Any) -> Attachment:
        """Parse :meth:`to_fields` output from the chain; raises :class:`RecordDecodeError`."""
        if not isinstance(fields, dict) or set(fields) != {"sha256", "media_type", "size", "label"}:
            raise RecordDecodeError("an attachment is a map of sha256, media_type, size, label")
        problem = _problem(fields["sha256"], fields["media_type"], fields["size"], fields["label"])
        if problem is not None:
            raise RecordDecodeError(f"malformed attachment: {problem}")
        return cls(fields["sha256"], fields["media_type"], fields["size"], fields["label"])


def _problem(digest: Any, media_type: Any, size: Any, label: Any) -> str | None:
    if type(digest) is not bytes or len(digest) != DIGEST_SIZE:
        return "sha256 must be 32 bytes"
    if type(media_type) is not str or not _MEDIA_TYPE.match(media_type):
        return "media_type must be a lower-case type/subtype"
    if type(size) is not int or not 0 <= size <= MAX_ATTACHMENT_BYTES:
        return f"size must be an int in 0..{MAX_ATTACHMENT_BYTES}"
    if type(label) is not str or len(label) > _MAX_LABEL:
        return f"label must be a str of at most {_MAX_LABEL} characters"
    return None


def attach(store: BlobStore, data: bytes, media_type: str, label: str = "") -> Attachment:
    """Put ``data`` in ``store`` and return its on-chain reference."""
    digest = store.put(data)
    expected = sha256(data)
    if digest != expected:  # a store that hashes differently would break every later fetch
        raise AttachmentError("blob store returned a digest that is not SHA-256 of the data")
    return Attachment(digest, media_type, len(data), label)


def fetch(store: BlobStore, attachment: Attachment) -> bytes:
    """The attachment's bytes, checked against its hash and size.

    Raises :class:`AttachmentError` if the store lacks it or returns altered bytes.
    """
    try:
        data = store.get(attachment.sha256)
    except KeyError:
        raise AttachmentError(f"attachment {attachment.sha256[:4].hex()} not in store") from None
    if len(data) != attachment.size or sha256(data) != attachment.sha256:
        raise AttachmentError(f"attachment {attachment.sha256[:4].hex()} was altered")
    return data
