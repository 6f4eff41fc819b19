"""The Key Management Center: key generation, escrow, recovery and emergency release.

Theory of operation
-------------------
docs/medical-chain.md §1.6 (seed §2.3.2): once the CA has checked an applicant's credentials, the
KMC generates the key pair, stores it with an *identifying field* (ID number / institution code) in
a secure database and sends it to the applicant, who keeps the private key under password-based
encryption (PBE). A lost key is re-issued on proof of identity; a compromised key is replaced by a
new pair; in an emergency (patient unconscious, a dispute) a health authority obtains the key from
the KMC, and that access is itself recorded as a query transaction.

medbench's KMC:

* generates a :class:`KeyBundle` — an Ed25519 signing key and an X25519 encryption key — from the
  injected ``random.Random`` (reproducible runs);
* escrows every version under ``sha256(identifying field)``: the two 32-byte private keys are
  encrypted with AES-256-GCM under a per-entry key derived by HKDF-SHA256 from the KMC's 32-byte
  master secret (salt = the entry's random salt, info binds id hash and version; the id hash and
  version are also the AEAD associated data, so an escrow entry cannot be swapped to another
  identity);
* re-issues (:meth:`KeyManagementCenter.recover`) only on an :class:`IdentityAttestation` — a
  registration authority (CA) signature over ``(id hash, purpose, time)`` — from a key the KMC
  trusts, and only for the identity attested;
* rotates (:meth:`KeyManagementCenter.rotate`) to a new version on the same proof;
* releases a key in an emergency (:meth:`KeyManagementCenter.emergency_release`) together with the
  ``query`` transaction draft that records who obtained it, when and on which justification —
  only to a registered health authority whose EMERGENCY request the chain accepted (the KMC
  reads the committed state through :class:`EmergencyView`), once per request. The record is
  signed with the KMC's own key (:attr:`KeyManagementCenter.operator_seed`) and every replica
  re-checks it against its state before it goes on chain;
* issues the **consortium access key** (:meth:`KeyManagementCenter.access_key`), the X25519 key
  pair the validators open access envelopes with (:mod:`medbench.crypto.envelope`): derived
  from the master secret like the record key, so the KMC can re-issue it to a new validator or
  after a loss at any time — the escrow of a key that belongs to the consortium, not a subject.

The applicant side of PBE is :meth:`KeyBundle.export` / :meth:`KeyBundle.load`: both private keys
as PKCS#8 under ``BestAvailableEncryption(password)``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from asn1crypto import keys as asn1_keys
from cryptography.exceptions import (
    InternalError,
    InvalidSignature,
    InvalidTag,
    UnsupportedAlgorithm,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medbench import codec
from medbench.crypto.sealing import EncryptionKey
from medbench.pki.drafts import TxDraft
from medbench.pki.subject import SubjectInfo, hash_identifier

_ATTEST_DOMAIN = b"medbench-kmc-attestation-v1"
PURPOSES = frozenset({"recover", "rotate"})


class KmcError(Exception):
    """The KMC refused: unknown identity, bad proof, or a damaged escrow entry."""


MAX_KDF_ITERATIONS = 1_000_000
"""Most password-hashing iterations a key file may ask for (about half a second of PBKDF2 on one
core; :meth:`KeyBundle.export` writes 2,048): a hostile file cannot make a load run for minutes."""


def _load_private(der: bytes, password: bytes) -> object:
    """One PKCS#8 key of a key file, once its key-derivation cost is known to be bounded."""
    try:
        algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
        count = algorithm.kdf_iterations
    except (ValueError, TypeError, KeyError):
        count = 0  # not a PBKDF2 / PBES1 file asn1crypto reads: cryptography judges it
    if count > MAX_KDF_ITERATIONS:
        raise KmcError(f"key file asks for {count} KDF iterations (at most {MAX_KDF_ITERATIONS})")
    return serialization.load_der_private_key(der, password)


@dataclass(frozen=True, slots=True)
class KeyBundle:
    """A subject's private keys: Ed25519 for signing, X25519 for sealed fields."""

    signing: Ed25519PrivateKey
    encryption: X25519PrivateKey

    @property
    def signing_public(self) -> bytes:
        """Raw 32-byte Ed25519 public key: the subject's identity."""
        return self.signing.public_key().public_bytes_raw()

    @property
    def encryption_public(self) -> bytes:
        """Raw 32-byte X25519 public key, carried in the certificate's identity extension."""
        return self.encryption.public_key().public_bytes_raw()

    def raw(self) -> bytes:
        """The 64 secret bytes (signing || encryption) — for escrow only."""
        return self.signing.private_bytes_raw() + self.encryption.private_bytes_raw()

    @classmethod
    def from_raw(cls, raw: bytes) -> KeyBundle:
        """Inverse of :meth:`raw`."""
        if len(raw) != 64:
            raise KmcError("a key bundle is 64 secret bytes")
        return cls(
            Ed25519PrivateKey.from_private_bytes(raw[:32]),
            X25519PrivateKey.from_private_bytes(raw[32:]),
        )

    @classmethod
    def generate(cls, rng: random.Random) -> KeyBundle:
        """A fresh bundle from ``rng``."""
        return cls.from_raw(rng.randbytes(64))

    def export(self, password: bytes) -> bytes:
        """PBE-protected form the applicant stores (two PKCS#8 DER blobs, canonical codec)."""
        enc = serialization.BestAvailableEncryption(password)
        der = serialization.Encoding.DER
        pkcs8 = serialization.PrivateFormat.PKCS8
        return codec.encode(
            [
                self.signing.private_bytes(der, pkcs8, enc),
                self.encryption.private_bytes(der, pkcs8, enc),
            ]
        )

    @classmethod
    def load(cls, blob: bytes, password: bytes) -> KeyBundle:
        """Open :meth:`export`'s output; raises :class:`KmcError` on a wrong password."""
        try:
            sig_der, enc_der = codec.decode(blob)
            sig = _load_private(sig_der, password)
            enc = _load_private(enc_der, password)
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            InternalError,
            codec.DecodeError,
        ) as exc:
            # InternalError: OpenSSL refuses some garbled keys below the parser (key setup)
            raise KmcError(f"cannot open key file: {exc}") from None
        if not isinstance(sig, Ed25519PrivateKey) or not isinstance(enc, X25519PrivateKey):
            raise KmcError("key file holds the wrong key types")
        return cls(sig, enc)


@dataclass(frozen=True, slots=True)
class IdentityAttestation:
    """A registration authority's signed statement that it checked ``id_hash``'s credentials."""

    id_hash: bytes
    purpose: str
    at_us: int
    attester: bytes
    signature: bytes

    @staticmethod
    def payload(id_hash: bytes, purpose: str, at_us: int) -> bytes:
        """The bytes an attester signs."""
        return codec.encode([_ATTEST_DOMAIN, id_hash, purpose, at_us])

    @classmethod
    def sign(
        cls, key: Ed25519PrivateKey, identifier: str, purpose: str, at_us: int
    ) -> IdentityAttestation:
        """Attest (as a CA / registration officer) that the holder of ``identifier`` was checked."""
        id_hash = hash_identifier(identifier)
        sig = key.sign(cls.payload(id_hash, purpose, at_us))
        return cls(id_hash, purpose, at_us, key.public_key().public_bytes_raw(), sig)


@dataclass(frozen=True, slots=True)
class EscrowEntry:
    """One escrowed key version: encrypted under the KMC master secret."""

    id_hash: bytes
    version: int
    salt: bytes
    ciphertext: bytes


@dataclass
class KeyManagementCenter:
    """Generates, escrows, re-issues and (in emergencies) releases subjects' keys."""

    rng: random.Random
    trusted_attesters: set[bytes] = field(default_factory=set)
    master_secret: bytes = b""
    escrow: dict[bytes, list[EscrowEntry]] = field(default_factory=dict)
    used_attestations: set[bytes] = field(default_factory=set)
    released: set[bytes] = field(default_factory=set)  # justifications already served

    def __post_init__(self) -> None:
        if not self.master_secret:
            self.master_secret = self.rng.randbytes(32)
        if len(self.master_secret) != 32:
            raise ValueError("the KMC master secret is 32 bytes")

    def _aead(self, id_hash: bytes, version: int, salt: bytes) -> tuple[AESGCM, bytes]:
        info = codec.encode([b"medbench-kmc-escrow-v1", id_hash, version])
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(
            self.master_secret
        )
        return AESGCM(key), info

    def _store(self, id_hash: bytes, bundle: KeyBundle) -> None:
        versions = self.escrow.setdefault(id_hash, [])
        version = len(versions) + 1
        salt = self.rng.randbytes(16)
        aead, info = self._aead(id_hash, version, salt)
        blob = aead.encrypt(bytes(12), bundle.raw(), info)
        versions.append(EscrowEntry(id_hash, version, salt, blob))

    def _open(self, entry: EscrowEntry) -> KeyBundle:
        aead, info = self._aead(entry.id_hash, entry.version, entry.salt)
        try:
            return KeyBundle.from_raw(aead.decrypt(bytes(12), entry.ciphertext, info))
        except InvalidTag:
            raise KmcError("escrow entry does not open (tampered or wrong master secret)") from None

    def generate(self, identifier: str) -> KeyBundle:
        """Generate and escrow the first key bundle of a new subject (after the CA's checks)."""
        id_hash = hash_identifier(identifier)
        if id_hash in self.escrow:
            raise KmcError("identity already has keys: use recover or rotate")
        bundle = KeyBundle.generate(self.rng)
        self._store(id_hash, bundle)
        return bundle

    def _check(self, proof: IdentityAttestation, identifier: str, purpose: str) -> bytes:
        id_hash = hash_identifier(identifier)
        if proof.attester not in self.trusted_attesters:
            raise KmcError("attestation from an untrusted key")
        if proof.id_hash != id_hash or proof.purpose != purpose:
            raise KmcError("attestation is for another identity or purpose")
        try:
            Ed25519PublicKey.from_public_bytes(proof.attester).verify(
                proof.signature, IdentityAttestation.payload(proof.id_hash, purpose, proof.at_us)
            )
        except (InvalidSignature, ValueError):
            raise KmcError("attestation signature does not verify") from None
        if proof.signature in self.used_attestations:
            raise KmcError("attestation already used")
        if id_hash not in self.escrow:
            raise KmcError("no escrowed keys for this identity")
        self.used_attestations.add(proof.signature)
        return id_hash

    def recover(self, identifier: str, proof: IdentityAttestation) -> KeyBundle:
        """Re-issue the current key bundle of a subject who lost it (docs/medical-chain.md §1.6)."""
        id_hash = self._check(proof, identifier, "recover")
        return self._open(self.escrow[id_hash][-1])

    def rotate(self, identifier: str, proof: IdentityAttestation) -> tuple[KeyBundle, KeyBundle]:
        """Generate a new version for a compromised key; returns ``(old, new)`` bundles."""
        id_hash = self._check(proof, identifier, "rotate")
        old = self._open(self.escrow[id_hash][-1])
        new = KeyBundle.generate(self.rng)
        self._store(id_hash, new)
        return old, new

    def versions(self, id_hash: bytes) -> int:
        """How many key versions are escrowed for ``id_hash``."""
        return len(self.escrow.get(id_hash, ()))

    @property
    def operator_seed(self) -> bytes:
        """32-byte seed of the KMC's Ed25519 record key (derived from the master secret).

        The KMC signs its emergency-release records with this key; replicas accept such a
        record only from a KMC key the consortium configured (:attr:`operator_public`).
        """
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"medbench-kmc-operator-v1"
        ).derive(self.master_secret)

    @property
    def operator_public(self) -> bytes:
        """Raw public key of :attr:`operator_seed`."""
        key = Ed25519PrivateKey.from_private_bytes(self.operator_seed)
        return key.public_key().public_bytes_raw()

    def access_key(self, version: int = 1) -> EncryptionKey:
        """The consortium access key of ``version`` (X25519), which every validator holds.

        Clients seal the patient-identifying parts of their requests to its public half
        (:mod:`medbench.crypto.envelope`) and the CA seals each pseudonym's link to its holder
        to it (:mod:`medbench.pki.pseudonym`). A new version is a new key (rotation).
        """
        if type(version) is not int or version < 1:
            raise ValueError("access key versions start at 1")
        seed = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=codec.encode([b"medbench-kmc-access-v1", version]),
        ).derive(self.master_secret)
        return EncryptionKey.from_raw(seed)

    def emergency_release(
        self,
        id_hash: bytes,
        authority: bytes,
        justification: bytes,
        at_us: int,
        chain: EmergencyView,
    ) -> tuple[KeyBundle, TxDraft]:
        """Release a subject's current keys to an authority, with the query record to submit.

        ``justification`` must be the ID of an EMERGENCY request the chain accepted (``chain``
        is the KMC operator's view of the committed state), made by ``authority`` — a
        registered health authority — about the subject whose identifying field hashes to
        ``id_hash``; one release per request. The returned draft must go on chain (signed with
        :attr:`operator_seed`). Raises :class:`KmcError` otherwise.
        """
        made = chain.emergencies.get(justification)
        if made is None:
            raise KmcError("justification is not an accepted emergency request")
        requester, patient = made
        if requester != authority:
            raise KmcError("the emergency request was made by another key")
        if not chain.is_authority(authority):
            raise KmcError("caller is not a health authority")
        info = chain.identities.get(patient)
        if info is None or info.id_hash != id_hash:
            raise KmcError("the emergency request names another subject")
        if justification in self.released:
            raise KmcError("keys already released for this request")
        if id_hash not in self.escrow:
            raise KmcError("no escrowed keys for this identity")
        bundle = self._open(self.escrow[id_hash][-1])
        self.released.add(justification)
        record = TxDraft(
            "query",
            {
                "type": "kmc-emergency-release",
                "subject": id_hash,
                "authority": authority,
                "justification": justification,
                "version": len(self.escrow[id_hash]),
            },
            at_us,
        )
        return bundle, record


class EmergencyView(Protocol):
    """What the KMC reads of the committed chain state (:class:`medbench.access.ChainState`)."""

    @property
    def emergencies(self) -> Mapping[bytes, tuple[bytes, bytes]]:
        """Accepted EMERGENCY request ID -> (requester key, patient key)."""
        ...

    @property
    def identities(self) -> Mapping[bytes, SubjectInfo]:
        """Registered key -> certified identity."""
        ...

    def is_authority(self, key: bytes) -> bool:
        """Whether ``key`` is registered with a health-authority role."""
        ...
