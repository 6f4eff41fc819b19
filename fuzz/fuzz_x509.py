"""X.509 certificates and CRLs as the kit validates them (``medbench.pki.certpath``:
``verify_chain``, ``revoked_since``, ``RevocationRegistry.publish``; ``medbench.pki.pseudonym
.read_link`` on a verified pseudonym certificate).

The first byte picks the reader. Raw DER from a peer: a leaf certificate under the real CA chain,
a whole chain (length-prefixed parts), a CRL. Or — to get past the signature checks, which no
mutation forges — the rest of the input is a ``TBSCertificate`` / ``TBSCertList`` that the
harness wraps and signs with the real issuing CA's Ed25519 key, so everything after the
signature (extensions, identity, regions, path lengths, validity, revocation dates, the
pseudonym link) is fuzzed too. Allowed: a verified identity / a published CRL, or
:class:`~medbench.pki.certpath.CertificateError` (and
:class:`~medbench.pki.pseudonym.PseudonymError` for a pseudonym's link). ``revoked_since`` may not
raise.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from fuzz.common import ByteReader, Harness, OneInput, expect
from medbench.access.scenario import GENESIS_US, Consortium
from medbench.pki.certpath import (
    CertificateError,
    RevocationRegistry,
    revoked_since,
    verify_chain,
)
from medbench.pki.pseudonym import PseudonymError, read_link

_ED25519_ALG = bytes.fromhex("300506032b6570")


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def signed(tbs: bytes, key: object) -> bytes:
    """``tbs`` wrapped as a certificate / CRL signed by the Ed25519 key ``key``."""
    sig = key.sign(tbs)  # type: ignore[attr-defined]
    bits = b"\x03" + _der_len(len(sig) + 1) + b"\x00" + sig
    body = tbs + _ED25519_ALG + bits
    return b"\x30" + _der_len(len(body)) + body


class _World:
    def __init__(self) -> None:
        w = Consortium.create(5)
        self.world = w
        self.at = GENESIS_US + 1_000_000
        self.anchors = (w.root.cert,)
        self.ca = w.cas["cn/zj/hz"]
        self.ca_chain = w.ca_chain("cn/zj/hz")
        self.doctor = w.issue(
            "fuzz-doctor", "doctor", "cn/zj/hz", institution="h", at_us=GENESIS_US
        )
        patient = w.enroll("fuzz-patient", "patient", "cn/zj/hz", at_us=GENESIS_US)
        self.pseudonym = w.pseudonyms.mint(
            patient.keys.signing, patient.chain, GENESIS_US, w.rng
        ).chain
        w.cas["cn/zj/hz"].revoke(x509.load_der_x509_certificate(self.doctor.chain[0]), self.at)
        self.crl = self.ca.crl(self.at, self.at + 86_400_000_000)


def setup() -> OneInput:
    w = _World()
    access = w.world.access_key
    pseudo_ca = w.world.pseudonyms

    def check_chain(chain: tuple[bytes, ...]) -> None:
        registry = RevocationRegistry()
        revoked_since(chain, w.anchors, registry)
        ident = verify_chain(chain, w.anchors, w.at, registry)
        expect(len(ident.public_key) == 32, "verified identity without an Ed25519 key")

    def publish(crl: bytes) -> None:
        registry = RevocationRegistry()
        registry.publish(crl, w.ca_chain, w.anchors)
        revoked_since(w.doctor.chain, w.anchors, registry)
        leaf = x509.load_der_x509_certificate(w.doctor.chain[0])
        registry.is_revoked(leaf, w.at)

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        mode = r.u8() % 6
        if mode == 0:
            check_chain((r.rest(), *w.ca_chain))
        elif mode == 1:
            parts = [r.chunk(2048) for _ in range(r.below(4))]
            check_chain((*parts, r.rest()))
        elif mode == 2:
            check_chain((signed(r.rest(), w.ca.key), *w.ca_chain))
        elif mode == 3:
            publish(r.rest())
        elif mode == 4:
            publish(signed(r.rest(), w.ca.key))
        else:
            chain = (signed(r.rest(), pseudo_ca.ca.key), *pseudo_ca.ca_chain)
            ident = verify_chain(chain, w.anchors, GENESIS_US + 10, RevocationRegistry())
            read_link(ident.cert, access)

    return one_input


def seeds() -> list[bytes]:
    w = _World()
    leaf = x509.load_der_x509_certificate(w.doctor.chain[0])
    pseudo = x509.load_der_x509_certificate(w.pseudonym[0])
    chain = w.doctor.chain
    chunked = b"".join(len(c).to_bytes(2, "big") + c for c in chain[:-1]) + chain[-1]
    crl = w.crl.public_bytes(Encoding.DER)
    return [
        b"\x00" + chain[0],
        b"\x01" + bytes([len(chain) - 1]) + chunked,
        b"\x02" + leaf.tbs_certificate_bytes,
        b"\x03" + crl,
        b"\x04" + w.crl.tbs_certlist_bytes,
        b"\x05" + pseudo.tbs_certificate_bytes,
    ]


HARNESS = Harness(
    name="x509",
    summary="pki.certpath (X.509 chains and CRLs), pki.pseudonym.read_link",
    allowed=(CertificateError, PseudonymError),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
