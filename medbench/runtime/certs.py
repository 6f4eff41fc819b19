"""Identity on the wire: the consortium CA's TLS certificates, key files and TLS 1.3 contexts.

Theory of operation
-------------------
Every node and every load-generator process holds an Ed25519 *transport* key and a certificate
issued by the consortium CA (a :class:`medbench.pki.ca.CertificateAuthority` root). The ids a
connection may speak for are written in the certificate, as SAN URIs:

* ``urn:medbench:node:<i>`` — replica ``i`` (a node certificate also names the node's own
  hospital client, ``urn:medbench:client:<n+i>``, which runs in the node process);
* ``urn:medbench:client:<c>`` — PBFT client ``c`` (a load generator carries one URI per client
  id it hosts).

A peer's ids therefore come from its certificate, never from what it says: the HELLO frame
(:mod:`.framing`) may only *claim* ids the certificate names. A node certificate must also carry
exactly the public key the consortium file lists for that member (a pin, so that a CA
mis-issuance for a member's id is refused too).

Certificates carry what strict X.509 checking (``ssl.VERIFY_X509_STRICT``, OpenSSL's
``X509_V_FLAG_X509_STRICT``, a default from Python 3.13) asks for: BasicConstraints (critical),
KeyUsage (critical), Subject and Authority Key Identifiers on every certificate, a non-empty
subject (so the SAN may be non-critical) and ExtendedKeyUsage (``serverAuth`` + ``clientAuth``
for nodes, which accept and dial; ``clientAuth`` for load generators). Both contexts set
``VERIFY_X509_STRICT`` explicitly and check revocation of the leaf against the CA's CRL
(``VERIFY_CRL_CHECK_LEAF``; the CRL is always present, possibly empty, as OpenSSL refuses a
chain whose CRL is missing under that flag).

Key types: Ed25519 end to end (the medbench CA signs only with Ed25519). OpenSSL >= 1.1.1 accepts
Ed25519 certificates and CertificateVerify signatures in TLS 1.3 (RFC 8446 §4.2.3); the contexts
pin the protocol to TLS 1.3, where that holds on both ends, so nothing forces ECDSA.

Key files are PKCS#8 ``EncryptedPrivateKeyInfo`` (PBES2, scrypt, AES-256-CBC:
:mod:`medbench.crypto.pbe`) in PEM armour, which OpenSSL (hence :mod:`ssl`) opens itself with
the password; the password lives in a separate file readable by the node's user only.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.pbe import decrypt_signing_key, encrypt_signing_key
from medbench.pki.ca import CertificateAuthority
from medbench.pki.subject import SubjectInfo, hash_identifier

NODE_URI = "urn:medbench:node:"
CLIENT_URI = "urn:medbench:client:"
US = 1_000_000
DAY_US = 86_400 * US
MAX_IDS = 4096
"""Most client ids one certificate may name."""

TLS_VERIFY_FLAGS = ssl.VERIFY_X509_STRICT | ssl.VERIFY_CRL_CHECK_LEAF
"""Verification flags of every runtime TLS context (see the module docstring)."""


class PeerCertError(Exception):
    """A peer certificate that verified against the CA still does not name a usable identity."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """What a verified certificate lets a connection speak for."""

    role: str  # "node" or "client"
    node_id: int | None  # the replica id of a node certificate
    ids: frozenset[int]  # every id (replica and client ids) the connection may use
    public_key: bytes  # raw Ed25519 key of the certificate
    serial: int


def _now_us() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp()) * US


def new_ca(name: str, *, rng: random.Random | None = None, years: int = 10) -> CertificateAuthority:
    """A fresh consortium root CA (Ed25519), valid from a day ago for ``years`` years."""
    now = _now_us()
    return CertificateAuthority.create_root(
        rng or random.Random(os.urandom(32)),
        "cn",
        not_before_us=now - DAY_US,
        not_after_us=now + years * 365 * DAY_US,
        path_length=0,
        name=name,
    )


def _issue(
    ca: CertificateAuthority,
    label: str,
    role: str,
    public_key: bytes,
    uris: list[str],
    usages: list[x509.ObjectIdentifier],
    days: int,
) -> x509.Certificate:
    enc = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    info = SubjectInfo(role, label, "cn", hash_identifier(f"{role}:{label}"), enc)
    now = _now_us()
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(u) for u in uris])
    return ca.issue(
        info,
        public_key,
        not_before_us=now - DAY_US,
        not_after_us=now + days * DAY_US,
        extensions=(san, x509.ExtendedKeyUsage(usages)),
    )


def issue_node_cert(
    ca: CertificateAuthority, node_id: int, n: int, public_key: bytes, *, days: int = 825
) -> x509.Certificate:
    """A node's transport certificate: replica ``node_id`` and its hospital client ``n+node_id``."""
    uris = [f"{NODE_URI}{node_id}", f"{CLIENT_URI}{n + node_id}"]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return _issue(ca, f"node-{node_id}", "validator", public_key, uris, usages, days)


def issue_client_cert(
    ca: CertificateAuthority, label: str, ids: range, public_key: bytes, *, days: int = 825
) -> x509.Certificate:
    """A load generator's certificate: one ``urn:medbench:client:<c>`` URI per id of ``ids``."""
    if not 0 < len(ids) <= MAX_IDS:
        raise ValueError(f"a client certificate names 1..{MAX_IDS} ids")
    uris = [f"{CLIENT_URI}{c}" for c in ids]
    return _issue(ca, label, "client", public_key, uris, [ExtendedKeyUsageOID.CLIENT_AUTH], days)


def _uri_id(uri: str, prefix: str) -> int | None:
    if not uri.startswith(prefix):
        return None
    digits = uri[len(prefix) :]
    if not digits.isdigit() or len(digits) > 9 or (len(digits) > 1 and digits[0] == "0"):
        raise PeerCertError("bad-san", f"malformed id in {uri[:80]!r}")
    return int(digits)


def identity_of(cert_der: bytes, n: int) -> PeerIdentity:
    """The identity a (CA-verified) peer certificate names; raises :class:`PeerCertError`.

    A node certificate names one replica id below ``n`` (and may name client ids); a client
    certificate names client ids only (never a replica id, so a client cannot speak for one).
    """
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        public = cert.public_key()
        serial = cert.serial_number
    except x509.ExtensionNotFound:
        raise PeerCertError("no-san", "certificate has no subjectAltName") from None
    except (ValueError, TypeError) as exc:
        raise PeerCertError("bad-certificate", str(exc)[:120]) from None
    if not isinstance(public, Ed25519PublicKey):
        raise PeerCertError("bad-key", "not an Ed25519 key")
    if len(uris) > MAX_IDS + 1:
        raise PeerCertError("bad-san", "too many ids")
    nodes: set[int] = set()
    clients: set[int] = set()
    for uri in uris:
        node = _uri_id(uri, NODE_URI)
        if node is not None:
            nodes.add(node)
            continue
        client = _uri_id(uri, CLIENT_URI)
        if client is not None:
            clients.add(client)
    if len(nodes) > 1:
        raise PeerCertError("bad-san", "a certificate names at most one replica")
    if any(c < n for c in clients):
        raise PeerCertError("wrong-id", "a client id collides with a replica id")
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if nodes:
        (node_id,) = nodes
        if node_id >= n:
            raise PeerCertError("wrong-id", f"replica {node_id} is not a member (n = {n})")
        return PeerIdentity("node", node_id, frozenset(nodes | clients), raw, serial)
    if not clients:
        raise PeerCertError("no-id", "the certificate names no medbench id")
    return PeerIdentity("client", None, frozenset(clients), raw, serial)


# --- files ----------------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> str:
    """PEM text of a certificate."""
    return cert.public_bytes(Encoding.PEM).decode()


def crl_pem(ca: CertificateAuthority, *, days: int = 3650) -> str:
    """PEM text of a freshly signed CRL of everything ``ca`` revoked (possibly empty)."""
    now = _now_us()
    return ca.crl(now - 60 * US, now + days * DAY_US).public_bytes(Encoding.PEM).decode()


def key_pem(key: SigningKey, password: bytes) -> str:
    """An encrypted PKCS#8 key file (scrypt + AES-256-CBC), PEM-armoured for OpenSSL."""
    der = encrypt_signing_key(key, password)
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + "\n".join(lines)
        + ("\n-----END ENCRYPTED PRIVATE KEY-----\n")
    )


def read_key(path: Path, password: bytes, expected_public: bytes | None = None) -> SigningKey:
    """Open a key file written by :func:`key_pem`."""
    text = path.read_text()
    body = "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    return decrypt_signing_key(base64.b64decode(body), password, expected_public=expected_public)


def new_key() -> SigningKey:
    """A fresh Ed25519 key from the OS generator."""
    return SigningKey.generate(Scheme.ED25519, seed=os.urandom(32))


def write_private(path: Path, text: str | bytes) -> None:
    """Write a secret file readable by its owner only."""
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# --- TLS contexts -----------------------------------------------------------------------------


def _context(purpose: int, cert: Path, key: Path, password: bytes, trust: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(cert), str(key), password=password)
    ctx.load_verify_locations(cafile=str(trust))  # the CA certificate and its CRL
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= TLS_VERIFY_FLAGS
    if purpose == ssl.PROTOCOL_TLS_CLIENT:
        ctx.check_hostname = False  # identities are SAN URIs, checked by identity_of
    return ctx


def server_context(cert: Path, key: Path, password: bytes, trust: Path) -> ssl.SSLContext:
    """The accepting side: TLS 1.3 only, client certificate required, strict, CRL-checked."""
    return _context(ssl.PROTOCOL_TLS_SERVER, cert, key, password, trust)


def client_context(cert: Path, key: Path, password: bytes, trust: Path) -> ssl.SSLContext:
    """The dialling side: TLS 1.3 only, presents its certificate, strict, CRL-checked."""
    return _context(ssl.PROTOCOL_TLS_CLIENT, cert, key, password, trust)


VERIFY_REASONS: dict[int, str] = {
    2: "unknown-issuer",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    3: "no-crl",  # X509_V_ERR_UNABLE_TO_GET_CRL
    9: "not-yet-valid",
    10: "expired",
    12: "crl-expired",
    18: "self-signed",
    19: "foreign-ca",  # self-signed certificate in chain
    20: "foreign-ca",  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "foreign-ca",
    23: "revoked",  # X509_V_ERR_CERT_REVOKED
    26: "wrong-purpose",  # X509_V_ERR_INVALID_PURPOSE
    79: "not-strict",  # X509_V_ERR_*: strict-mode checks (3.x numbering varies)
}


def verify_reason(exc: BaseException) -> str:
    """A short, bounded reason for a failed TLS handshake (counted by the transport)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = int(getattr(exc, "verify_code", 0) or 0)
        return VERIFY_REASONS.get(code, f"verify-{code}")
    if isinstance(exc, ssl.SSLError):
        text = (getattr(exc, "reason", None) or str(exc)).lower()
        if "revoked" in text:
            return "revoked"
        if "unknown ca" in text or "unknown_ca" in text:
            return "foreign-ca"
        if "certificate" in text:
            return "bad-certificate"
        return "tls-error"
    if isinstance(exc, TimeoutError):
        return "handshake-timeout"
    return "handshake-failed"
