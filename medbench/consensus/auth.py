"""Message authentication for the BFT protocols, per run: signatures, MAC vectors or a model.

Theory of operation
-------------------
Every PBFT message carries an authenticator over its canonical body (see
:mod:`medbench.consensus.pbft.messages`). Three schemes implement the same :class:`Keyring`:

``signatures``
    Ed25519 (PyNaCl) on every message, as Medical Chain does (docs/medical-chain.md §1.1: "every
    message is digitally signed") and as the TOCS 2002 paper's base protocol assumes. Any third
    party can check a relayed message (view-change certificates, checkpoint proofs).
``macs``
    Castro & Liskov's fast mode (TOCS §3, §4.1): an *authenticator*, one HMAC-SHA256 (truncated
    to 16 bytes) per replica under pairwise session keys, so each replica checks its own entry.
    Replies to a client carry one MAC. Certificates nested in a VIEW-CHANGE or NEW-VIEW are
    checked with the receiver's own entry; the VIEW-CHANGE-ACK protocol of TOCS §4.5, which
    replaces transferable certificates in MAC mode, is **not implemented**. What that leaves a
    faulty replica (pinned down by ``tests/pbft/test_pbft_mac_viewchange.py``):

    * it *cannot* forge: an entry valid at an honest receiver needs the claimed author's
      pairwise key with that receiver, so a VIEW-CHANGE, prepare certificate or NEW-VIEW in an
      honest replica's name is refused by every honest replica. The safety argument of the
      view change (each checker verifies every message it relies on) holds per checker;
    * it *can* split verdicts on its own messages: an authenticator whose entries verify at
      some honest replicas and not at others
      (:class:`medbench.consensus.pbft.byzantine.PartialAuthenticator`)
      makes the others refuse every certificate holding that message, so honest VIEW-CHANGEs
      carrying it, and every NEW-VIEW built on them, are refused there. A faulty primary that
      does this and then stops voting leaves the honest replicas unable to install a new view
      while it stays silent: with f faults, liveness is lost (safety is not). With signatures
      the same attack (withholding the pre-prepare from one backup) leaves the group live.
``modeled``
    A cheap keyed tag (BLAKE2b keyed with the sender's secret, 16 bytes) that still detects
    forgery and tampering inside the protocol logic; every node of the model knows every secret
    (it is a model of authentication, not authentication). A simulator charges the CPU time of
    the real scheme from the counters below.

Each keyring counts ``signs`` and ``verifies`` (one per message) and ``primitives`` (one per
signature, MAC or tag computed), so a driver can charge the cryptographic CPU cost it models.
Keys derive deterministically from a seed (:func:`make_keyrings`), so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from enum import StrEnum
from typing import TypeAlias

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

Auth: TypeAlias = bytes | tuple[bytes, ...]
"""An authenticator: one signature or tag, or a MAC vector (one entry per replica)."""

MAC_SIZE = 16
TAG_SIZE = 16


class Scheme(StrEnum):
    """The authentication schemes a run can select."""

    SIGNATURES = "signatures"
    MACS = "macs"
    MODELED = "modeled"


class Keyring:
    """One node's authentication keys and counters; subclasses implement one :class:`Scheme`."""

    scheme: Scheme

    def __init__(self, node_id: int, n_replicas: int) -> None:
        self.node_id = node_id
        self.n_replicas = n_replicas
        self.signs = 0
        self.verifies = 0
        self.primitives = 0

    def sign(self, body: bytes, to: int | None = None) -> Auth:
        """Authenticate ``body`` for every replica (``to is None``) or for node ``to`` alone."""
        raise NotImplementedError

    def verify(self, sender: int, body: bytes, auth: Auth) -> bool:
        """True when ``auth`` proves that ``sender`` sent ``body`` (to this node)."""
        raise NotImplementedError

    def public_key(self) -> bytes:
        """The bytes that identify this node's key (Ed25519: the 32-byte raw public key)."""
        raise NotImplementedError

    def counters(self) -> dict[str, int]:
        """The operation counters a simulator charges CPU time for."""
        return {"signs": self.signs, "verifies": self.verifies, "primitives": self.primitives}


def _secret(seed: bytes, label: bytes, *ids: int) -> bytes:
    h = hashlib.sha256(seed + b"|" + label)
    for i in ids:
        h.update(i.to_bytes(8, "big", signed=True))
    return h.digest()


class SignatureKeyring(Keyring):
    """Ed25519 on every message (PyNaCl)."""

    scheme = Scheme.SIGNATURES

    def __init__(
        self, node_id: int, n_replicas: int, key: SigningKey, directory: dict[int, VerifyKey]
    ) -> None:
        super().__init__(node_id, n_replicas)
        self._key = key
        self._directory = directory

    def sign(self, body: bytes, to: int | None = None) -> Auth:
        """One Ed25519 signature, valid for everyone."""
        self.signs += 1
        self.primitives += 1
        return self._key.sign(body).signature

    def verify(self, sender: int, body: bytes, auth: Auth) -> bool:
        """Check the Ed25519 signature against ``sender``'s public key."""
        self.verifies += 1
        self.primitives += 1
        key = self._directory.get(sender)
        if key is None or type(auth) is not bytes or len(auth) != 64:
            return False
        try:
            key.verify(body, auth)
        except BadSignatureError:
            return False
        return True

    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return bytes(self._key.verify_key)


class MacKeyring(Keyring):
    """Authenticators: one HMAC-SHA256 per receiver under pairwise keys (TOCS §3)."""

    scheme = Scheme.MACS

    def __init__(self, node_id: int, n_replicas: int, seed: bytes) -> None:
        super().__init__(node_id, n_replicas)
        self._seed = seed
        self._keys: dict[int, bytes] = {}

    def _key(self, other: int) -> bytes:
        k = self._keys.get(other)
        if k is None:
            a, b = sorted((self.node_id, other))
            k = _secret(self._seed, b"mac", a, b)
            self._keys[other] = k
        return k

    def sign(self, body: bytes, to: int | None = None) -> Auth:
        """An authenticator for all replicas, or a single MAC for ``to``."""
        self.signs += 1
        if to is not None:
            self.primitives += 1
            return (hmac.digest(self._key(to), body, "sha256")[:MAC_SIZE],)
        self.primitives += self.n_replicas
        return tuple(
            hmac.digest(self._key(j), body, "sha256")[:MAC_SIZE] for j in range(self.n_replicas)
        )

    def verify(self, sender: int, body: bytes, auth: Auth) -> bool:
        """Check this node's own entry of the authenticator."""
        self.verifies += 1
        self.primitives += 1
        if type(auth) is not tuple or sender < 0:
            return False
        if self.node_id < self.n_replicas and len(auth) == self.n_replicas:
            entry = auth[self.node_id]
        elif len(auth) == 1:
            entry = auth[0]
        else:
            return False
        expected = hmac.digest(self._key(sender), body, "sha256")[:MAC_SIZE]
        return hmac.compare_digest(entry, expected)

    def public_key(self) -> bytes:
        """MAC keys are pairwise secrets; a node is identified by a digest of its id and seed."""
        return _secret(self._seed, b"id", self.node_id)


class SignedRequestMacKeyring(MacKeyring):
    """MAC authenticators among replicas (TOCS §3), **signed client requests**.

    With MACs on client requests one faulty client defeats the group (the "big MAC" attack,
    Clement et al., *Making Byzantine Fault Tolerant Systems Tolerate Byzantine Faults*, NSDI
    2009): an authenticator whose entry is valid at the primary and not at some backups gets
    the request proposed and the whole pre-prepare refused, view after view. Aardvark's answer,
    taken here: a client signs its requests, so every replica reaches the same verdict on them,
    while replica-to-replica messages and replies to clients keep their cheap MACs. This is
    what ``macs`` means by default (:func:`make_keyrings`); plain MACs everywhere stay available
    (``client_signatures=False``) to show the attack. ``signer`` is the node's signing keyring
    (signatures, or their model) and counts the signatures.
    """

    def __init__(self, node_id: int, n_replicas: int, seed: bytes, signer: Keyring) -> None:
        super().__init__(node_id, n_replicas, seed)
        self.signer = signer

    def sign(self, body: bytes, to: int | None = None) -> Auth:
        """A client's request: a signature; anything else: a MAC or an authenticator."""
        if to is None and self.node_id >= self.n_replicas:
            return self.signer.sign(body)
        return super().sign(body, to)

    def verify(self, sender: int, body: bytes, auth: Auth) -> bool:
        """A client's message: its signature; a replica's: this node's MAC entry."""
        if type(sender) is int and sender >= self.n_replicas:
            return self.signer.verify(sender, body, auth)
        return super().verify(sender, body, auth)


class ModeledKeyring(Keyring):
    """A keyed BLAKE2b tag per message: detects forgery and tampering, costs almost nothing."""

    scheme = Scheme.MODELED

    def __init__(self, node_id: int, n_replicas: int, seed: bytes) -> None:
        super().__init__(node_id, n_replicas)
        self._seed = seed
        self._secrets: dict[int, bytes] = {}
        self._own = self._secret_of(node_id)

    def _secret_of(self, node: int) -> bytes:
        s = self._secrets.get(node)
        if s is None:
            s = _secret(self._seed, b"tag", node)
            self._secrets[node] = s
        return s

    def sign(self, body: bytes, to: int | None = None) -> Auth:
        """The sender's keyed tag of ``body``."""
        self.signs += 1
        self.primitives += 1
        return hashlib.blake2b(body, key=self._own, digest_size=TAG_SIZE).digest()

    def verify(self, sender: int, body: bytes, auth: Auth) -> bool:
        """Recompute ``sender``'s tag and compare."""
        self.verifies += 1
        self.primitives += 1
        if type(auth) is not bytes or sender < 0:
            return False
        expected = hashlib.blake2b(body, key=self._secret_of(sender), digest_size=TAG_SIZE)
        return auth == expected.digest()

    def public_key(self) -> bytes:
        """A digest standing for the node's public key in the model."""
        return _secret(self._seed, b"id", self.node_id)


def make_keyrings(
    scheme: Scheme | str,
    n_replicas: int,
    node_ids: Iterable[int],
    seed: bytes = b"medbench",
    client_signatures: bool = True,
) -> dict[int, Keyring]:
    """One keyring per node id (replicas are ``0..n_replicas-1``), derived from ``seed``.

    With ``macs``, clients sign their requests (:class:`SignedRequestMacKeyring`) unless
    ``client_signatures`` is false: plain MAC authenticators on requests let one faulty client
    stall the group.
    """
    scheme = Scheme(scheme)
    ids = sorted(set(node_ids) | set(range(n_replicas)))
    if scheme is Scheme.SIGNATURES:
        keys = {i: SigningKey(_secret(seed, b"ed25519", i)) for i in ids}
        directory = {i: k.verify_key for i, k in keys.items()}
        return {i: SignatureKeyring(i, n_replicas, keys[i], directory) for i in ids}
    if scheme is Scheme.MACS:
        if not client_signatures:
            return {i: MacKeyring(i, n_replicas, seed) for i in ids}
        signers = make_keyrings(Scheme.SIGNATURES, n_replicas, ids, seed)
        return {i: SignedRequestMacKeyring(i, n_replicas, seed, signers[i]) for i in ids}
    return {i: ModeledKeyring(i, n_replicas, seed) for i in ids}
