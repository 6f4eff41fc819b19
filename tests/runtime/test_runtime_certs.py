"""Certificates of the consortium CA, key files and TLS 1.3 with strict X.509 checking."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from medbench.crypto.errors import WrongPasswordError
from medbench.crypto.keys import SigningKey
from medbench.pki.ca import CertificateAuthority
from medbench.runtime import certs
from medbench.runtime.transport import TlsLayer

PW = b"correct horse"


class Party:
    """A certificate and key on disk, trusting ``trust``."""

    def __init__(self, d: Path, name: str, cert: x509.Certificate, key: SigningKey) -> None:
        self.cert_path = d / f"{name}.pem"
        self.key_path = d / f"{name}.key"
        self.cert_path.write_text(certs.cert_pem(cert))
        self.key_path.write_text(certs.key_pem(key, PW))
        self.cert = cert


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, object]:
    ca = certs.new_ca("test-consortium")
    parties = {}
    for name, node in (("a", 0), ("b", 1), ("revoked", 2)):
        key = certs.new_key()
        parties[name] = Party(tmp_path, name, certs.issue_node_cert(ca, node, 4, key.public), key)
    ca.revoke(parties["revoked"].cert, certs._now_us() - 10 * certs.US)
    foreign = certs.new_ca("foreign")
    key = certs.new_key()
    parties["foreign"] = Party(
        tmp_path, "foreign", certs.issue_node_cert(foreign, 3, 4, key.public), key
    )
    trust = tmp_path / "trust.pem"
    trust.write_text(certs.cert_pem(ca.cert) + certs.crl_pem(ca))
    return {"ca": ca, "trust": trust, "dir": tmp_path, **parties}


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> tuple[TlsLayer, TlsLayer]:
    """Run a TLS handshake in memory; raises what the server or client raises."""
    s, c = TlsLayer(server, True), TlsLayer(client, False)
    data = c.start()
    for _ in range(8):
        _, back, _ = s.receive(data)
        if back:
            _, data, _ = c.receive(back)
        if s.done and c.done and not data:
            break
    # TLS 1.3: the server verifies the client's certificate on the client's last flight
    return s, c


def contexts(pki: dict[str, object], server: str, client: str) -> tuple[ssl.SSLContext, ...]:
    trust = pki["trust"]
    sp, cp = pki[server], pki[client]
    assert isinstance(sp, Party) and isinstance(cp, Party) and isinstance(trust, Path)
    return (
        certs.server_context(sp.cert_path, sp.key_path, PW, trust),
        certs.client_context(cp.cert_path, cp.key_path, PW, trust),
    )


def test_mutual_tls13_with_ed25519(pki: dict[str, object]) -> None:
    s, c = handshake(*contexts(pki, "a", "b"))
    assert s.done and c.done
    assert s.obj.version() == "TLSv1.3"
    server_sees = certs.identity_of(s.peer_der() or b"", 4)
    client_sees = certs.identity_of(c.peer_der() or b"", 4)
    assert (server_sees.role, server_sees.node_id, server_sees.ids) == ("node", 1, {1, 5})
    assert (client_sees.node_id, client_sees.ids) == (0, {0, 4})
    # application data both ways
    plain, _, _ = c.receive(s.send(b"hello from 0"))
    assert plain == b"hello from 0"


def test_contexts_verify_strictly_with_crls(pki: dict[str, object]) -> None:
    for ctx in contexts(pki, "a", "b"):
        assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
        assert ctx.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
        assert ctx.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(("client", "reason"), [("foreign", "foreign-ca"), ("revoked", "revoked")])
def test_server_refuses_foreign_and_revoked(
    pki: dict[str, object], client: str, reason: str
) -> None:
    with pytest.raises(ssl.SSLError) as exc:
        handshake(*contexts(pki, "a", client))
    assert certs.verify_reason(exc.value) == reason


@pytest.mark.parametrize(("server", "reason"), [("foreign", "foreign-ca"), ("revoked", "revoked")])
def test_client_refuses_foreign_and_revoked(
    pki: dict[str, object], server: str, reason: str
) -> None:
    with pytest.raises(ssl.SSLError) as exc:
        handshake(*contexts(pki, server, "a"))
    assert certs.verify_reason(exc.value) == reason


def _leaf_without_aki(ca: CertificateAuthority, key: SigningKey) -> x509.Certificate:
    """A leaf that is fine except for a missing Authority Key Identifier."""
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    pub = key.to_cryptography().public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sloppy")]))
        .issuer_name(ca.cert.subject)
        .public_key(pub)
        .serial_number(12345)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier("urn:medbench:node:1")]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .sign(ca.key, None)
    )


def test_strict_checking_is_on(pki: dict[str, object]) -> None:
    """A certificate lacking an AKI passes the default checks but not strict ones."""
    ca = pki["ca"]
    d = pki["dir"]
    assert isinstance(ca, CertificateAuthority) and isinstance(d, Path)
    key = certs.new_key()
    pki["sloppy"] = Party(d, "sloppy", _leaf_without_aki(ca, key), key)
    server, client = contexts(pki, "a", "sloppy")
    with pytest.raises(ssl.SSLError) as exc:
        handshake(server, client)
    assert certs.verify_reason(exc.value) not in ("foreign-ca", "revoked")
    lax, client = contexts(pki, "a", "sloppy")
    lax.verify_flags &= ~ssl.VERIFY_X509_STRICT
    s, _ = handshake(lax, client)
    assert s.done


def test_identity_rules(pki: dict[str, object]) -> None:
    ca = pki["ca"]
    assert isinstance(ca, CertificateAuthority)
    key = certs.new_key()
    der = certs.issue_node_cert(ca, 7, 4, key.public).public_bytes(Encoding.DER)
    with pytest.raises(certs.PeerCertError) as exc:
        certs.identity_of(der, 4)
    assert exc.value.reason == "wrong-id"
    client = certs.issue_client_cert(ca, "load", range(8, 12), key.public)
    ident = certs.identity_of(client.public_bytes(Encoding.DER), 4)
    assert (ident.role, ident.node_id, ident.ids) == ("client", None, {8, 9, 10, 11})
    sneaky = certs.issue_client_cert(ca, "load", range(2, 6), key.public)  # names replica 2, 3
    with pytest.raises(certs.PeerCertError) as exc:
        certs.identity_of(sneaky.public_bytes(Encoding.DER), 4)
    assert exc.value.reason == "wrong-id"
    with pytest.raises(certs.PeerCertError):
        certs.identity_of(b"\x30\x03garbage", 4)


def test_key_files(tmp_path: Path) -> None:
    key = certs.new_key()
    path = tmp_path / "k.key"
    certs.write_private(path, certs.key_pem(key, PW))
    assert path.stat().st_mode & 0o777 == 0o600
    assert certs.read_key(path, PW, key.public).public == key.public
    with pytest.raises(WrongPasswordError):
        certs.read_key(path, b"wrong", key.public)
    assert path.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
