"""Signers for the baselines that sign (Clique seals, MDSM blocks and audits).

Theory of operation
-------------------
:class:`Ed25519Signer` makes real Ed25519 signatures with PyNaCl (geth's Clique uses secp256k1;
the cost of one signature operation is what the comparison counts, and every node of medbench
identifies keys by their raw 32-byte public key). :class:`ModeledSigner` is a cheap stand-in
(``sha256(secret || message)`` checked against a registry shared by the nodes of one run) with
the same call counts, for simulating MDSM's 121 members when crypto time is modeled rather than
measured. Keys derive from the run's seed, so a run is reproducible.
"""

from __future__ import annotations

from medbench.crypto import Scheme, SigningKey, verify
from medbench.hashing import sha256


class Ed25519Signer:
    """Real Ed25519 signatures (:mod:`medbench.crypto`, PyNaCl underneath); keys derived from a
    seed so runs are reproducible."""

    real = True

    def __init__(self, seed32: bytes) -> None:
        self._key = SigningKey.generate(Scheme.ED25519, seed32)
        self.public_key: bytes = self._key.public

    def sign(self, message: bytes) -> bytes:
        """64-byte detached signature over ``message``."""
        return self._key.sign(message)

    @staticmethod
    def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` is ``public_key``'s signature over ``message``."""
        return verify(Scheme.ED25519, public_key, message, signature)


class ModeledSigner:
    """A cheap stand-in: ``sig = sha256(secret || msg)`` checked against a shared key registry.

    Same call counts as Ed25519 and unforgeable by nodes that do not hold the registry's secrets;
    for simulating large memberships (MDSM's 121) where crypto time is modeled, not measured.
    """

    real = False

    def __init__(self, seed32: bytes, registry: dict[bytes, bytes]) -> None:
        self._secret = sha256(b"modeled-secret" + seed32)
        self.public_key: bytes = sha256(b"modeled-public" + self._secret)
        self._registry = registry
        registry[self.public_key] = self._secret

    def sign(self, message: bytes) -> bytes:
        """32-byte keyed digest standing in for a signature."""
        digest: bytes = sha256(self._secret + message)
        return digest

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff ``signature`` was made by the registered secret of ``public_key``."""
        secret = self._registry.get(public_key)
        return secret is not None and sha256(secret + message) == signature


Signer = Ed25519Signer | ModeledSigner


def make_signers(
    n: int, seed: int, label: bytes, modeled: bool
) -> list[Ed25519Signer] | list[ModeledSigner]:
    """``n`` deterministic signers for one run (key seed = sha256(label, seed, index))."""
    seeds = [
        sha256(label + seed.to_bytes(8, "big", signed=True) + i.to_bytes(4, "big"))
        for i in range(n)
    ]
    if modeled:
        registry: dict[bytes, bytes] = {}
        return [ModeledSigner(s, registry) for s in seeds]
    return [Ed25519Signer(s) for s in seeds]
