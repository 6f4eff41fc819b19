"""KMC escrow and recovery, PBE key files, sealing, and key rotation with re-sealing."""

from __future__ import annotations

import dataclasses
import random

import pytest
from cryptography import x509

from medbench.access.decision import Allowed, Reason, Refused
from medbench.access.request import Operation
from medbench.access.validator import CertificateRule, EnvelopeRule, Validator
from medbench.crypto.errors import SealError
from medbench.crypto.sealing import EncryptionKey, open_sealed, seal
from medbench.pki.ca import der
from medbench.pki.kmc import IdentityAttestation, KeyBundle, KeyManagementCenter, KmcError
from medbench.pki.rekey import rotate_subject
from medbench.pki.subject import SubjectInfo, hash_identifier

from .conftest import T0, Cast

DAY = 86_400_000_000


def _kmc() -> tuple[KeyManagementCenter, object]:
    rng = random.Random(4)
    officer = KeyBundle.generate(rng).signing
    kmc = KeyManagementCenter(rng, trusted_attesters={officer.public_key().public_bytes_raw()})
    return kmc, officer


def test_lost_key_is_reissued_on_proof_of_identity() -> None:
    kmc, officer = _kmc()
    keys = kmc.generate("330101199001011234")
    with pytest.raises(KmcError):
        kmc.generate("330101199001011234")  # one enrolment per identity
    proof = IdentityAttestation.sign(officer, "330101199001011234", "recover", T0)  # type: ignore[arg-type]
    again = kmc.recover("330101199001011234", proof)
    assert again.raw() == keys.raw()
    with pytest.raises(KmcError, match="already used"):
        kmc.recover("330101199001011234", proof)


def test_recovery_refuses_bad_proofs() -> None:
    kmc, officer = _kmc()
    kmc.generate("A")
    kmc.generate("B")
    stranger = KeyBundle.generate(random.Random(9)).signing
    cases = [
        IdentityAttestation.sign(stranger, "A", "recover", T0),  # untrusted attester
        IdentityAttestation.sign(officer, "B", "recover", T0),  # other identity  # type: ignore[arg-type]
        IdentityAttestation.sign(officer, "A", "rotate", T0),  # other purpose  # type: ignore[arg-type]
    ]
    for proof in cases:
        with pytest.raises(KmcError):
            kmc.recover("A", proof)
    good = IdentityAttestation.sign(officer, "A", "recover", T0)  # type: ignore[arg-type]
    forged = dataclasses.replace(good, signature=bytes(64))
    with pytest.raises(KmcError, match="signature"):
        kmc.recover("A", forged)
    with pytest.raises(KmcError, match="no escrowed"):
        kmc.recover("C", IdentityAttestation.sign(officer, "C", "recover", T0))  # type: ignore[arg-type]


def test_escrow_is_encrypted_and_bound_to_its_identity() -> None:
    kmc, officer = _kmc()
    keys = kmc.generate("A")
    kmc.generate("B")
    entry = kmc.escrow[hash_identifier("A")][0]
    assert keys.signing.private_bytes_raw() not in entry.ciphertext
    # moving A's escrow entry under B's identity does not open
    kmc.escrow[hash_identifier("B")] = [dataclasses.replace(entry, id_hash=hash_identifier("B"))]
    with pytest.raises(KmcError, match="does not open"):
        kmc.recover("B", IdentityAttestation.sign(officer, "B", "recover", T0))  # type: ignore[arg-type]


def test_password_based_key_file() -> None:
    keys = KeyBundle.generate(random.Random(1))
    blob = keys.export(b"correct horse")
    assert keys.signing.private_bytes_raw() not in blob
    assert KeyBundle.load(blob, b"correct horse").raw() == keys.raw()
    with pytest.raises(KmcError):
        KeyBundle.load(blob, b"wrong")
    with pytest.raises(KmcError):
        KeyBundle.load(b"\x00garbage", b"x")


def test_seal_open_and_tamper() -> None:
    rng = random.Random(2)
    keys = KeyBundle.generate(rng)
    blob = seal(keys.encryption_public, b"ID 330101199001011234", b"rec1", randbytes=rng.randbytes)
    assert open_sealed(EncryptionKey(keys.encryption), blob, b"rec1") == b"ID 330101199001011234"
    with pytest.raises(SealError):
        open_sealed(EncryptionKey(keys.encryption), blob, b"rec2")
    with pytest.raises(SealError):
        open_sealed(EncryptionKey(KeyBundle.generate(rng).encryption), blob, b"rec1")
    with pytest.raises(SealError):
        open_sealed(EncryptionKey(keys.encryption), blob[:-1] + bytes([blob[-1] ^ 1]), b"rec1")
    with pytest.raises(SealError):
        open_sealed(EncryptionKey(keys.encryption), b"short", b"")


def test_compromised_key_rotation_reseals_and_revokes(cast: Cast) -> None:
    w = cast.world
    t = T0 + DAY
    pc = cast.patient()
    sealed_id = pc.seal_private(b"name=Li Wei;id=330101199001011234", b"")
    first = pc.add_own("identity", sealed_id, at_us=t)
    assert isinstance(first, Allowed)
    officer = w.cas["cn/zj/hz"].key
    proof = IdentityAttestation.sign(officer, "330101199001011234", "rotate", t + DAY)
    old_cert = x509.load_der_x509_certificate(cast.P.chain[0])
    rot = rotate_subject(
        w.kmc,
        w.cas["cn/zj/hz"],
        w.ca_chain("cn/zj/hz"),
        "330101199001011234",
        proof,
        old_cert,
        {first.request_id: sealed_id},
        at_us=t + DAY,
        not_after_us=t + 400 * DAY,
        crl_next_update_us=t + 8 * DAY,
    )
    w.state.publish_crl(rot.crl)
    # the re-sealed field opens with the new key only
    new_blob = rot.resealed[first.request_id]
    assert (
        open_sealed(EncryptionKey(rot.new.encryption), new_blob)
        == b"name=Li Wei;id=330101199001011234"
    )
    with pytest.raises(SealError):
        open_sealed(EncryptionKey(rot.old.encryption), new_blob)
    assert SubjectInfo.from_certificate(rot.cert).enc_key == rot.new.encryption_public
    assert w.kmc.versions(hash_identifier("330101199001011234")) == 2
    # the old key can no longer act; what it signed before stays verifiable as of its time
    d = pc.add_own("visit", b"after", at_us=t + DAY + 1_000_000)
    assert isinstance(d, Refused) and d.reason is Reason.CERT_REVOKED
    old_req = w.chain.log[-2][0]
    assert old_req.request_id == first.request_id
    rules = Validator([EnvelopeRule(), CertificateRule()], access_key=w.access_key)
    assert isinstance(rules.check(old_req, w.state), Allowed)
    # the new identity registers and acts; the patient key changed, so it is a new subject key
    new_chain = (der(rot.cert), *w.ca_chain("cn/zj/hz"))
    w.state.register(new_chain, t + DAY + 2_000_000)
    from medbench.access.clients import Identity, PatientClient

    fresh = PatientClient(
        Identity(rot.new, new_chain, SubjectInfo.from_certificate(rot.cert)), w.chain, cast.rng
    )
    ok = fresh.add_own("identity", new_blob, at_us=t + DAY + 3_000_000)
    assert isinstance(ok, Allowed)
    assert (
        fresh.request(
            Operation.READ,
            patient=fresh.public_key,
            body={"history": False},
            at_us=t + DAY + 4_000_000,
        ).requester
        == rot.new.signing_public
    )


@dataclasses.dataclass
class _View:
    """A committed state as the KMC reads it (see ``EmergencyView``)."""

    emergencies: dict[bytes, tuple[bytes, bytes]]
    identities: dict[bytes, SubjectInfo]
    authorities: set[bytes]

    def is_authority(self, key: bytes) -> bool:
        return key in self.authorities


def test_emergency_release_record() -> None:
    kmc, _ = _kmc()
    keys = kmc.generate("A")
    authority, patient, request = b"\x01" * 32, b"\x03" * 32, b"\x02" * 32
    info = SubjectInfo("patient", "", "cn/zj/hz", hash_identifier("A"), b"\x04" * 32)
    view = _View({request: (authority, patient)}, {patient: info}, {authority})

    def release(view: _View = view, **kw: object) -> object:
        args: dict[str, object] = {"id_hash": hash_identifier("A"), "authority": authority,
                                   "justification": request, "at_us": T0}  # fmt: skip
        args.update(kw)
        return kmc.emergency_release(chain=view, **args)  # type: ignore[arg-type]

    # refused: not an accepted emergency request, another caller, not an authority, another
    # subject, nobody's keys
    for bad in (
        {"justification": b"\x09" * 32},
        {"authority": b"\x08" * 32},
        {"view": _View(view.emergencies, view.identities, set())},
        {"id_hash": hash_identifier("B")},
    ):
        with pytest.raises(KmcError):
            release(**bad)  # type: ignore[arg-type]
    got, draft = release()  # type: ignore[misc]
    assert got.raw() == keys.raw()
    assert draft.kind == "query" and draft.type == "kmc-emergency-release"
    assert draft.content["justification"] == request
    with pytest.raises(KmcError, match="already released"):
        release()
    assert len(kmc.operator_public) == 32 and kmc.operator_public != keys.signing_public
