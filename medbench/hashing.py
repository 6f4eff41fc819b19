"""SHA-256 for the whole kit: ``sha256`` and the batch ``sha256_many``.

Served by the native core when it is built (a SHA-NI multi-buffer loop) and by
:mod:`medbench.reference.hashing` otherwise; both give the same bytes.
"""

from __future__ import annotations

from medbench.backend import load

_impl = load("hashing")

DIGEST_SIZE: int = 32
sha256 = _impl.sha256
sha256_many = _impl.sha256_many
implementation = _impl.implementation

__all__ = ["DIGEST_SIZE", "implementation", "sha256", "sha256_many"]
