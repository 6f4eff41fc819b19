"""Who talks to a gateway: users' TLS certificates, the gateways' own, their PBFT client ids.

Theory of operation
-------------------
:func:`enrol` runs once per consortium directory, after ``cluster init`` and before the nodes
start (the nodes pin every client identity listed in the consortium file). With the consortium
CA (``DIR/ca``) it writes under ``DIR/gateway/``:

* ``users/<name>.pem|.key`` — a TLS client certificate for every simulated user of the access
  world (:class:`medbench.runtime.world.World`): ``authority`` (the national health authority),
  ``hospital-<i>``, ``doctor-<i>``, ``patient-<i>``. The certificate names the user as the SAN URI
  ``urn:medbench:user:<name>`` (``clientAuth`` only). Its key is an unencrypted PKCS#8 file
  (mode 0600): FHIR clients (``requests``, ``aiohttp``, ``curl``) take a key file, not a
  password. It is a *transport* key: it proves who connects; it signs no chain transaction;
* ``gateway-<i>.pem|.key`` — gateway ``i``'s HTTPS server certificate (``serverAuth``; SAN
  ``localhost``, ``127.0.0.1``). Its key is ECDSA P-256 (signed by the Ed25519 CA) because
  Chromium's TLS stack does not do Ed25519, and the dashboard is opened in a browser;
* ``client-<i>.pem|.key`` — gateway ``i``'s PBFT client identity (``[[clients]]`` group
  ``gateway-<i>`` appended to ``consortium.toml``; :data:`CLIENTS_PER_GATEWAY` client ids, so as
  many chain requests may be outstanding at once), exactly like a load generator's;
* ``ca.pem`` — the trust bundle HTTPS clients verify the gateways with.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from medbench.access.clients import Identity
from medbench.pki.ca import CA_ROLE, CertificateAuthority
from medbench.pki.subject import SubjectInfo, hash_identifier
from medbench.runtime import certs
from medbench.runtime.config import load_consortium
from medbench.runtime.world import World

USER_URI = "urn:medbench:user:"
CLIENTS_PER_GATEWAY = 96
"""PBFT client ids per gateway: the most chain requests one gateway has outstanding at once."""


@dataclass(frozen=True)
class GatewayFiles:
    """Where enrolment put gateway ``i``'s material."""

    root: Path
    i: int

    @property
    def dir(self) -> Path:
        """``DIR/gateway``."""
        return self.root / "gateway"

    @property
    def server_cert(self) -> Path:
        """The HTTPS certificate."""
        return self.dir / f"gateway-{self.i}.pem"

    @property
    def server_key(self) -> Path:
        """The HTTPS key (unencrypted PKCS#8, 0600)."""
        return self.dir / f"gateway-{self.i}.key"

    @property
    def client_cert(self) -> Path:
        """The PBFT client certificate."""
        return self.dir / f"client-{self.i}.pem"

    @property
    def client_key(self) -> Path:
        """The PBFT client key (encrypted like a load generator's)."""
        return self.dir / f"client-{self.i}.key"

    @property
    def password(self) -> Path:
        """The PBFT client key's password file."""
        return self.dir / "key.pass"

    @property
    def ca(self) -> Path:
        """The consortium CA certificate (what HTTPS clients trust)."""
        return self.dir / "ca.pem"

    def user(self, name: str) -> tuple[Path, Path]:
        """A user's certificate and key files."""
        return self.dir / "users" / f"{name}.pem", self.dir / "users" / f"{name}.key"


def users_of(world: World) -> dict[str, Identity]:
    """Every simulated user by the name its certificate carries."""
    out: dict[str, Identity] = {"authority": world.world.national_authority}
    for i, (h, d, p) in enumerate(zip(world.hospitals, world.doctors, world.patients, strict=True)):
        out[f"hospital-{i}"], out[f"doctor-{i}"], out[f"patient-{i}"] = h, d, p
    return out


def load_ca(root: Path) -> CertificateAuthority:
    """The consortium CA of a generated directory (key opened with ``ca/ca.pass``)."""
    password = (root / "ca" / "ca.pass").read_bytes().strip()
    cert = x509.load_pem_x509_certificate((root / "ca" / "ca.pem").read_bytes())
    key = certs.read_key(root / "ca" / "ca.key", password).to_cryptography()
    assert isinstance(key, Ed25519PrivateKey)
    name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    label = str(name[0].value) if name else "consortium-ca"
    info = SubjectInfo(CA_ROLE, label[:64], "cn", hash_identifier(f"ca:{label}:cn"))
    return CertificateAuthority(key, cert, info, random.Random(os.urandom(32)))


def _leaf(
    ca: CertificateAuthority,
    common_name: str,
    public: ec.EllipticCurvePublicKey | object,
    san: list[x509.GeneralName],
    usage: list[x509.ObjectIdentifier],
    days: int = 825,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    pub = public
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(pub)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)  # type: ignore[arg-type]
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca.key, None)


def _write_key(path: Path, key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    certs.write_private(path, pem)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def user_names(n: int) -> list[str]:
    """The users of an ``n``-member world, in enrolment order."""
    return (
        ["authority"]
        + [f"hospital-{i}" for i in range(n)]
        + [f"doctor-{i}" for i in range(n)]
        + [f"patient-{i}" for i in range(n)]
    )


def enrol(root: str | Path, *, per_gateway: int = CLIENTS_PER_GATEWAY) -> list[GatewayFiles]:
    """Enrol users and gateways of the consortium in ``root`` (see the module docstring).

    Idempotent: a directory already enrolled is left as it is.
    """
    root = Path(root)
    cons_path = root / "consortium.toml"
    cons = load_consortium(cons_path)
    files = [GatewayFiles(root, i) for i in range(cons.n)]
    gdir = files[0].dir
    if (gdir / "enrolled").exists():
        return files
    (gdir / "users").mkdir(parents=True, exist_ok=True)
    ca = load_ca(root)
    (gdir / "ca.pem").write_bytes(_pem(ca.cert))
    for name in user_names(cons.n):
        key = Ed25519PrivateKey.generate()
        cert = _leaf(
            ca,
            name,
            key.public_key(),
            [x509.UniformResourceIdentifier(USER_URI + name)],
            [ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        pem, keyf = files[0].user(name)
        pem.write_bytes(_pem(cert))
        _write_key(keyf, key)
    password = os.urandom(18).hex().encode()
    certs.write_private(files[0].password, password)
    doc = tomllib.loads(cons_path.read_text())
    groups = doc.setdefault("clients", [])
    first = max([2 * cons.n] + [g["first_id"] + g["count"] for g in groups])
    for f in files:
        skey = ec.generate_private_key(ec.SECP256R1())
        scert = _leaf(
            ca,
            f"gateway-{f.i}",
            skey.public_key(),
            [
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.UniformResourceIdentifier(f"urn:medbench:gateway:{f.i}"),
            ],
            [ExtendedKeyUsageOID.SERVER_AUTH],
        )
        f.server_cert.write_bytes(_pem(scert))
        _write_key(f.server_key, skey)
        ckey = certs.new_key()
        ids = range(first, first + per_gateway)
        ccert = certs.issue_client_cert(ca, f"gateway-{f.i}", ids, ckey.public)
        f.client_cert.write_text(certs.cert_pem(ccert))
        certs.write_private(f.client_key, certs.key_pem(ckey, password))
        groups.append(
            {
                "name": f"gateway-{f.i}",
                "first_id": first,
                "count": per_gateway,
                "public_key": ckey.public.hex(),
            }
        )
        first += per_gateway
    cons_path.write_text(tomli_w.dumps(doc, multiline_strings=True))
    load_consortium(cons_path)  # what we wrote must load
    (gdir / "enrolled").write_text("ok\n")
    return files


def user_of_certificate(der: bytes) -> str | None:
    """The user name a (TLS-verified) client certificate carries, or ``None``."""
    try:
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(USER_URI):
            name = uri[len(USER_URI) :]
            if 0 < len(name) <= 64 and name.replace("-", "").isalnum():
                return name
    return None
