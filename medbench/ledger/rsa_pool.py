"""A fixed pool of RSA-3072 keys that makes seeded RSA-PSS workloads reproducible.

Theory of operation
-------------------
A consortium may choose RSA-PSS (docs/medical-chain.md §1.6 leaves the algorithm open;
:mod:`medbench.crypto.keys` offers it), but RSA key generation draws its primes from OpenSSL's
random generator and cannot be seeded (:meth:`SigningKey.generate` raises
:class:`SeedNotSupportedError`). Deriving the primes from a seed ourselves (a seeded prime search
with Miller-Rabin in Python) was measured at about 3.7 s per 3072-bit key on the project machine
against 0.24 s for OpenSSL — a 20-entity workload would take over a minute — so the workload
generator takes RSA keys from this pool instead:

* :data:`POOL_SIZE` keys generated once by OpenSSL (``python -m medbench.ledger.rsa_pool
  --regenerate``) and shipped as package data (``data/rsa3072_pool.bin``: the canonical array of
  their unencrypted PKCS#8 DER);
* :func:`assign` hands out ``n`` distinct keys in an order drawn from the caller's seeded
  ``numpy.random.Generator``, so ``(config, seed)`` gives the same key material on every machine;
* RSA-PSS signatures stay randomised (a fresh 32-byte salt each), so signature bytes differ
  between runs — and so do the IDs of ``register`` transactions, whose content embeds the
  identity's encryption-key binding *signature*; every other transaction ID, which covers only
  deterministic content and public keys, is the same.

These keys are public. They exist for synthetic workloads and tests only; never sign anything
real with them. A workload needing more than :data:`POOL_SIZE` RSA identities raises
:class:`RsaPoolExhaustedError`.
"""

from __future__ import annotations

import argparse
import functools
from importlib import resources
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import serialization

from medbench import codec
from medbench.crypto.keys import Scheme, SigningKey, verify
from medbench.ledger.errors import LedgerError

POOL_SIZE = 64
"""Keys in the shipped pool (the largest RSA population a workload can have)."""
_FILE = "rsa3072_pool.bin"
_LIMITS = codec.Limits(max_bytes=1 << 20, max_depth=2, max_container_len=POOL_SIZE)


class RsaPoolExhaustedError(LedgerError, ValueError):
    """An RSA workload asked for more distinct keys than the pool holds."""


@functools.cache
def _ders() -> tuple[bytes, ...]:
    blob = resources.files("medbench.ledger").joinpath("data", _FILE).read_bytes()
    ders = codec.decode(blob, _LIMITS)
    assert isinstance(ders, list) and len(ders) == POOL_SIZE, f"{_FILE} must hold {POOL_SIZE} keys"
    return tuple(ders)


@functools.cache
def key(i: int) -> SigningKey:
    """Pool key ``i`` (parsed once per process).

    OpenSSL's RSA consistency check costs about 0.14 s a key, so it is skipped for this shipped
    data; a sign-and-verify round trip checks each key instead, once, when it is first used.
    """
    private = serialization.load_der_private_key(
        _ders()[i], password=None, unsafe_skip_rsa_key_validation=True
    )
    k = SigningKey.from_cryptography(private)
    probe = b"medbench/rsa-pool/self-check"
    assert k.scheme is Scheme.RSA_PSS_3072 and verify(k.scheme, k.public, probe, k.sign(probe)), (
        f"{_FILE} key {i} is not a working RSA-3072 key"
    )
    return k


def assign(rng: np.random.Generator, n: int) -> list[SigningKey]:
    """``n`` distinct pool keys in an order drawn from ``rng`` (one ``permutation`` call).

    Raises :class:`RsaPoolExhaustedError` if ``n`` exceeds :data:`POOL_SIZE`.
    """
    if n > POOL_SIZE:
        raise RsaPoolExhaustedError(
            f"an RSA workload needs {n} signing keys; the seeded pool holds {POOL_SIZE}"
        )
    return [key(int(i)) for i in rng.permutation(POOL_SIZE)[:n]]


def regenerate(path: Path, size: int = POOL_SIZE) -> None:
    """Write a fresh pool of ``size`` OpenSSL-generated keys to ``path`` (maintainers only)."""
    keys = [SigningKey.generate(Scheme.RSA_PSS_3072) for _ in range(size)]
    path.write_bytes(codec.encode([k.to_pkcs8() for k in keys]))


def main(argv: list[str] | None = None) -> int:
    """``--regenerate`` rewrites the shipped pool file (changes every RSA workload)."""
    parser = argparse.ArgumentParser(prog="python -m medbench.ledger.rsa_pool")
    parser.add_argument("--regenerate", action="store_true", help="rewrite the shipped pool")
    args = parser.parse_args(argv)
    target = Path(__file__).with_name("data") / _FILE
    if args.regenerate:
        regenerate(target)
    print(f"{target}: {len(_ders())} RSA-3072 keys")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
