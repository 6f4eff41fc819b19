"""Entity–record associations that only the patient (or her grantee) can find and read.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 3 links patient P to a record ID with an ``associate`` transaction
whose link is sealed to P, and keeps P's public key in clear "so the entity can find its records".
That clear key is a leak: whoever sees the chain learns how many visits P had, when, and written by
which doctor of which hospital — and, through timing and signers, which record transactions are
P's. medbench keeps the paper's form as :func:`paper_association` (a baseline, and what the
benchmark workload emits by default) and goes further with a *stealth* association, in the manner
of stealth addresses:

1. the writer (doctor + institution) draws a fresh ephemeral X25519 key ``e`` (injected
   randomness) and computes ``z = X25519(e, P_enc)`` with P's bound encryption key;
2. ``s = HKDF-SHA-256(ikm=z, salt=E || P_enc, info="medbench/association/v1")`` — the
   association's *link secret*;
3. ``tag = HMAC-SHA-256(s, "assoc")`` and ``link = AES-256-GCM(HKDF-Expand(s, "link"), 0^12,
   record ID, aad=E || tag)``;
4. the content is ``{ephemeral: E, tag, link}``: three strings that are uniformly random to anyone
   without ``e`` or P's private key, of the same length for every patient.

P *scans*: for each association she computes ``z = X25519(p, E)`` and keeps those whose tag
matches (:func:`scan`); no field names her, and *through its association* a record cannot be tied
to her by anyone who holds neither her private key nor a link secret (the unlinkability test in
``tests/records/test_records_unlinkability.py`` measures every association strategy at chance).
Since ``s`` is fresh per association, P can hand out exactly the links she chooses:
:mod:`medbench.records.capability` seals a list of ``(association ID, s)`` pairs to a grantee,
who checks each one against the chain with :func:`open_with_secret` — a grantee learns those
records and nothing else.

What stays visible, by design of the other layers: an association's writers and time (so an
observer can pair it with the record written in the same message, and learns that *someone* was
treated — not whom). In the paper's form a ``grant`` is signed by the patient and names the
grantee in clear and a ``query`` names its owner, so a grant or query next to a record by the same
doctor names her: on the workload generator's stealth output (20 patients, 300 visits) the
strongest observer of ``tests/records/test_records_unlinkability.py`` names the patient of
52.7-55.7% of the records (seeds 0-4; chance is 5%). The sealed access form closes that channel
(:mod:`medbench.records.sealed` here, :mod:`medbench.crypto.envelope` and
:mod:`medbench.pki.pseudonym` on the running chain): grants are signed by one-day pseudonyms and
every patient field is sealed to the validators' access key, and the same observer falls to its
prior, 4.0-5.0% on the same visits, at chance.

The nonce is constant because every ``s`` (hence every key) is used for exactly one encryption.
Writers check P's key binding before sealing; a low-order ``E`` from a hostile writer is skipped
while scanning. Parsing content from the chain raises only :class:`RecordDecodeError`.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from medbench import codec
from medbench.crypto.errors import SealError
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.sealing import RandBytes
from medbench.ledger.transaction import ID_SIZE, Kind, Transaction
from medbench.records.errors import RecordDecodeError, RecordUsageError
from medbench.records.writer import Writer

_INFO = b"medbench/association/v1"
_TAG_LABEL = b"assoc"
_LINK_LABEL = b"link"
_NONCE = bytes(12)
KEY_SIZE = 32
TAG_SIZE = 32
LINK_SIZE = ID_SIZE + 16
PAPER_AAD = b"associate"
"""Associated data of the paper-form sealed link (docs/medical-chain.md §1.3 item 3)."""


@dataclass(frozen=True, slots=True)
class StealthAssociation:
    """The public content of a stealth ``associate`` transaction."""

    ephemeral: bytes
    tag: bytes
    link: bytes

    def encode(self) -> bytes:
        """The canonical content bytes."""
        return codec.encode({"ephemeral": self.ephemeral, "tag": self.tag, "link": self.link})

    @classmethod
    def decode(cls, content: bytes) -> StealthAssociation:
        """Parse content from the chain; raises only :class:`RecordDecodeError`."""
        try:
            f = codec.decode(content)
        except codec.DecodeError as exc:
            raise RecordDecodeError(f"malformed association: {exc}") from None
        if not isinstance(f, dict) or set(f) != {"ephemeral", "tag", "link"}:
            raise RecordDecodeError("a stealth association is ephemeral, tag, link")
        e, t, link = f["ephemeral"], f["tag"], f["link"]
        if not (
            type(e) is bytes
            and len(e) == KEY_SIZE
            and type(t) is bytes
            and len(t) == TAG_SIZE
            and type(link) is bytes
            and len(link) == LINK_SIZE
        ):
            raise RecordDecodeError("stealth association fields have the wrong sizes")
        return cls(e, t, link)


@dataclass(frozen=True, slots=True)
class FoundAssociation:
    """An association its reader could open: which record, and the secret that proves it."""

    association_id: bytes
    record_id: bytes
    link_secret: bytes
    timestamp_us: int
    writers: tuple[bytes, ...]

    def __repr__(self) -> str:  # never print the secret
        return (
            f"FoundAssociation({self.association_id[:4].hex()} -> {self.record_id[:4].hex()}, "
            f"t={self.timestamp_us})"
        )


def _link_secret(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    secret: bytes = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_INFO
    ).derive(shared)
    return secret


def _tag(secret: bytes) -> bytes:
    return hmac.digest(secret, _TAG_LABEL, "sha256")


def _link_key(secret: bytes) -> bytes:
    key: bytes = HKDFExpand(algorithm=hashes.SHA256(), length=32, info=_LINK_LABEL).derive(secret)
    return key


def stealth_association(
    patient: IdentityPublic, record_id: bytes, *, randbytes: RandBytes = os.urandom
) -> StealthAssociation:
    """The stealth content linking ``record_id`` to ``patient`` (checks her key binding)."""
    if type(record_id) is not bytes or len(record_id) != ID_SIZE:
        raise RecordUsageError("a record ID is 32 bytes")
    patient.check()
    eph = x25519.X25519PrivateKey.from_private_bytes(randbytes(32))
    e_pub = eph.public_key().public_bytes_raw()
    shared = eph.exchange(x25519.X25519PublicKey.from_public_bytes(patient.encryption))
    secret = _link_secret(shared, e_pub, patient.encryption)
    tag = _tag(secret)
    link = AESGCM(_link_key(secret)).encrypt(_NONCE, record_id, e_pub + tag)
    return StealthAssociation(e_pub, tag, link)


def associate(
    patient: IdentityPublic,
    record_id: bytes,
    timestamp_us: int,
    writer: Writer,
    *,
    randbytes: RandBytes = os.urandom,
) -> Transaction:
    """The signed stealth ``associate`` transaction (signed like a record: author+institution)."""
    content = stealth_association(patient, record_id, randbytes=randbytes).encode()
    return writer.sign(Kind.ASSOCIATE, content, timestamp_us)


def open_with_secret(tx: Transaction, link_secret: bytes) -> FoundAssociation | None:
    """The association ``tx`` opened with its link secret, or ``None`` if the secret is not its.

    What a grantee does with each entry of a view capability; never raises for chain input.
    """
    if tx.kind is not Kind.ASSOCIATE or len(link_secret) != KEY_SIZE:
        return None
    try:
        sa = StealthAssociation.decode(tx.content)
    except RecordDecodeError:
        return None
    return _open(tx, sa, link_secret)


def _open(tx: Transaction, sa: StealthAssociation, secret: bytes) -> FoundAssociation | None:
    if not hmac.compare_digest(_tag(secret), sa.tag):
        return None
    try:
        record_id = AESGCM(_link_key(secret)).decrypt(_NONCE, sa.link, sa.ephemeral + sa.tag)
    except InvalidTag:  # right tag, forged link: a hostile writer; not an association at all
        return None
    return FoundAssociation(tx.id, record_id, secret, tx.timestamp_us, tx.public_keys)


def _scan_key(identity: Identity) -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.from_private_bytes(identity.encryption.private_raw())


def scan_one(identity: Identity, tx: Transaction) -> FoundAssociation | None:
    """``tx`` opened as one of ``identity``'s stealth associations, or ``None``."""
    return _scan_one(_scan_key(identity), identity.encryption.public, tx)


def _scan_one(
    key: x25519.X25519PrivateKey, public: bytes, tx: Transaction
) -> FoundAssociation | None:
    if tx.kind is not Kind.ASSOCIATE:
        return None
    try:
        sa = StealthAssociation.decode(tx.content)
    except RecordDecodeError:
        return None
    try:
        shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(sa.ephemeral))
    except ValueError:  # low-order point: all-zero shared secret, cannot be ours
        return None
    return _open(tx, sa, _link_secret(shared, sa.ephemeral, public))


def scan(identity: Identity, transactions: Iterable[Transaction]) -> Iterator[FoundAssociation]:
    """Every stealth association addressed to ``identity``, in chain order."""
    key, public = _scan_key(identity), identity.encryption.public
    for tx in transactions:
        found = _scan_one(key, public, tx)
        if found is not None:
            yield found


# ---------------------------------------------------------------------------------------------
# The paper's form (baseline): owner key in clear, link sealed to the owner.


def paper_association(
    patient: IdentityPublic, record_id: bytes, author: bytes, *, randbytes: RandBytes = os.urandom
) -> bytes:
    """Content ``{owner: P's key, link: seal(P, {record, doctor})}`` as in docs/medical-chain.md
    §1.3 item 3."""
    if type(record_id) is not bytes or len(record_id) != ID_SIZE:
        raise RecordUsageError("a record ID is 32 bytes")
    link = codec.encode({"record": record_id, "doctor": author})
    return codec.encode(
        {"owner": patient.signing, "link": patient.seal(link, PAPER_AAD, randbytes=randbytes)}
    )


def paper_owner(tx: Transaction) -> bytes | None:
    """The owner key a paper-form association shows in clear (what any observer reads)."""
    if tx.kind is not Kind.ASSOCIATE:
        return None
    try:
        f = codec.decode(tx.content)
    except codec.DecodeError:
        return None
    if isinstance(f, dict) and set(f) == {"owner", "link"} and type(f["owner"]) is bytes:
        return f["owner"]
    return None


def scan_paper(identity: Identity, transactions: Iterable[Transaction]) -> Iterator[bytes]:
    """Record IDs of the paper-form associations owned by ``identity``, in chain order."""
    for tx in transactions:
        if paper_owner(tx) != identity.key:
            continue
        try:
            link = codec.decode(identity.open(codec.decode(tx.content)["link"], PAPER_AAD))
        except (codec.DecodeError, SealError, TypeError):
            continue
        if isinstance(link, dict) and type(link.get("record")) is bytes:
            yield link["record"]
