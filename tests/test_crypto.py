"""Tests of medbench.crypto: signing per scheme, PBE key files, sealed boxes, identities."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from hypothesis import given
from hypothesis import strategies as st

from medbench import codec
from medbench.crypto import (
    SIGNATURE_SIZE,
    BindingError,
    CryptoUsageError,
    EncryptionKey,
    Identity,
    IdentityPublic,
    KeyFormatError,
    PublicKey,
    Scheme,
    SealError,
    SeedNotSupportedError,
    SigningKey,
    UnknownSchemeError,
    WrongPasswordError,
    decrypt_signing_key,
    encrypt_signing_key,
    open_sealed,
    pbe,
    scheme_of,
    seal,
    verify,
)
from medbench.crypto.keys import public_key_object, raw_public_of

SEED = bytes(range(32))


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    """One RSA-3072 key for the module (generation takes a while)."""
    return SigningKey.generate(Scheme.RSA_PSS_3072)


@pytest.fixture(scope="module", params=list(Scheme), ids=[str(s) for s in Scheme])
def key(request: pytest.FixtureRequest, rsa_key: SigningKey) -> SigningKey:
    """A key of each scheme."""
    if request.param is Scheme.RSA_PSS_3072:
        return rsa_key
    return SigningKey.generate(request.param, SEED)


def test_sign_verify_each_scheme(key: SigningKey) -> None:
    sig = key.sign(b"transaction id")
    assert len(sig) == SIGNATURE_SIZE[key.scheme]
    assert verify(key.scheme, key.public, b"transaction id", sig)
    assert key.public_key.verify(b"transaction id", sig)
    assert not verify(key.scheme, key.public, b"transaction iD", sig)


def test_wrong_key_fails(key: SigningKey) -> None:
    other = (
        SigningKey.generate(key.scheme)
        if key.scheme is Scheme.RSA_PSS_3072
        else SigningKey.generate(key.scheme, bytes(32))
    )
    sig = key.sign(b"m")
    assert not verify(key.scheme, other.public, b"m", sig)


def test_flipped_signature_bit_fails(key: SigningKey) -> None:
    sig = bytearray(key.sign(b"m"))
    sig[len(sig) // 2] ^= 0x01
    assert not verify(key.scheme, key.public, b"m", bytes(sig))


def test_verify_under_other_scheme_is_false(key: SigningKey) -> None:
    sig = key.sign(b"m")
    for other in Scheme:
        if other is not key.scheme:
            assert not verify(other, key.public, b"m", sig)


def test_seeded_generation_is_deterministic() -> None:
    for scheme in (Scheme.ED25519, Scheme.ECDSA_P256):
        a, b = SigningKey.generate(scheme, SEED), SigningKey.generate(scheme, SEED)
        assert a.public == b.public
        assert a.sign(b"x") == b.sign(b"x")  # Ed25519 and RFC 6979 ECDSA are deterministic
        assert SigningKey.generate(scheme, bytes(32)).public != a.public
    assert len(SigningKey.generate(Scheme.ED25519, SEED).public) == 32
    assert len(SigningKey.generate(Scheme.ECDSA_P256, SEED).public) == 33


def test_ed25519_seed_is_rfc8032_private_key() -> None:
    # RFC 8032 §7.1 TEST 1
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    k = SigningKey.generate(Scheme.ED25519, seed)
    assert k.public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert k.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065")


def test_rsa_seed_refused_and_bad_seed_length() -> None:
    with pytest.raises(SeedNotSupportedError):
        SigningKey.generate(Scheme.RSA_PSS_3072, SEED)
    with pytest.raises(ValueError):
        SigningKey.generate(Scheme.ED25519, b"short")


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownSchemeError):
        scheme_of("sm2")
    with pytest.raises(UnknownSchemeError):
        SigningKey.generate("dsa")
    assert not verify("sm2", b"k" * 32, b"m", b"s" * 64)
    with pytest.raises(UnknownSchemeError):
        PublicKey("sm2", b"")


@given(
    scheme=st.sampled_from([*list(Scheme), "nope"]),
    public=st.binary(max_size=500),
    msg=st.binary(max_size=64),
    sig=st.binary(max_size=400),
)
def test_verify_never_raises_on_garbage(scheme: str, public: bytes, msg: bytes, sig: bytes) -> None:
    assert verify(scheme, public, msg, sig) is False


def test_verify_non_bytes_is_false() -> None:
    k = SigningKey.generate(Scheme.ED25519, SEED)
    assert not verify(Scheme.ED25519, k.public, "m", k.sign(b"m"))  # type: ignore[arg-type]
    assert not verify(Scheme.ED25519, None, b"m", k.sign(b"m"))  # type: ignore[arg-type]


def test_pkcs8_round_trip(key: SigningKey) -> None:
    again = SigningKey.from_pkcs8(key.to_pkcs8())
    assert again.scheme is key.scheme and again.public == key.public
    assert verify(key.scheme, key.public, b"m", again.sign(b"m"))
    with pytest.raises(KeyFormatError):
        SigningKey.from_pkcs8(b"\x30\x03garbage")


def test_pbe_round_trip_and_wrong_password(key: SigningKey) -> None:
    blob = encrypt_signing_key(key, "correct horse", log2_n=10)
    assert key.to_pkcs8() not in blob
    opened = decrypt_signing_key(blob, "correct horse", expected_public=key.public)
    assert opened.public == key.public and opened.scheme is key.scheme
    with pytest.raises(WrongPasswordError):
        decrypt_signing_key(blob, "battery staple")
    with pytest.raises(WrongPasswordError):
        decrypt_signing_key(blob, "correct horse", expected_public=b"\x00" * len(key.public))


def test_pbe_file_is_standard_pkcs8_scrypt_pbes2(key: SigningKey) -> None:
    blob = encrypt_signing_key(key, b"pw")
    # cryptography's own PKCS#8 loader opens it with the password...
    loaded = serialization.load_der_private_key(blob, b"pw")
    assert SigningKey.from_cryptography(loaded).public == key.public
    with pytest.raises(ValueError):
        serialization.load_der_private_key(blob, b"wrong")
    # ...and it names PBES2 / id-scrypt / AES-256-CBC with a memory-hard default cost.
    info = pbe.EncryptedPrivateKeyInfo.load(blob)
    alg = info["encryption_algorithm"]
    kdf = alg["parameters"]["key_derivation_func"]
    assert alg["algorithm"].dotted == "1.2.840.113549.1.5.13"
    assert kdf["algorithm"].dotted == "1.3.6.1.4.1.11591.4.11"
    assert alg["parameters"]["encryption_scheme"]["algorithm"].dotted == "2.16.840.1.101.3.4.1.42"
    sp = kdf["parameters"]
    assert 128 * sp["cost_parameter"].native * sp["block_size"].native >= 16 << 20


def _openssl_pkcs8(path: Path, password: str) -> bytes:
    out = subprocess.run(
        [
            "openssl",
            "pkcs8",
            "-inform",
            "DER",
            "-in",
            str(path),
            "-passin",
            f"pass:{password}",
            "-outform",
            "DER",
        ],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode(errors="replace"))
    return out.stdout


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not on PATH")
def test_pbe_file_opens_with_openssl_pkcs8(key: SigningKey, tmp_path: Path) -> None:
    path = tmp_path / "key.p8"
    path.write_bytes(encrypt_signing_key(key, "s3cret pw"))
    # openssl may re-encode optional fields (EC parameters), so compare the keys, not bytes
    plain = serialization.load_der_private_key(_openssl_pkcs8(path, "s3cret pw"), None)
    assert SigningKey.from_cryptography(plain).public == key.public
    with pytest.raises(RuntimeError):
        _openssl_pkcs8(path, "not it")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not on PATH")
def test_pbe_opens_what_openssl_writes(tmp_path: Path) -> None:
    key = SigningKey.generate(Scheme.ED25519, SEED)
    (tmp_path / "plain.der").write_bytes(key.to_pkcs8())
    subprocess.run(
        [
            "openssl",
            "pkcs8",
            "-topk8",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "plain.der"),
            "-outform",
            "DER",
            "-out",
            str(tmp_path / "enc.der"),
            "-scrypt",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:pw",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    blob = (tmp_path / "enc.der").read_bytes()
    assert decrypt_signing_key(blob, "pw", expected_public=key.public).public == key.public


def test_pbe_refuses_pbkdf2_files() -> None:
    # cryptography's BestAvailableEncryption writes PBKDF2: not memory-hard, refused by policy.
    der = (
        SigningKey.generate(Scheme.ED25519, SEED)
        .to_cryptography()
        .private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(KeyFormatError, match="only PBES2/scrypt"):
        decrypt_signing_key(der, b"pw")


def _scrypt_params(blob: bytes) -> tuple[pbe.EncryptedPrivateKeyInfo, object]:
    info = pbe.EncryptedPrivateKeyInfo.load(blob)
    return info, info["encryption_algorithm"]["parameters"]["key_derivation_func"]["parameters"]


def test_pbe_refuses_hostile_cost() -> None:
    blob = encrypt_signing_key(SigningKey.generate(Scheme.ED25519, SEED), b"pw", log2_n=10)
    info, sp = _scrypt_params(blob)
    sp["cost_parameter"] = 1 << 30  # type: ignore[index]  # 2**30 * 8 * 128 bytes of memory
    with pytest.raises(KeyFormatError, match="bounds"):
        decrypt_signing_key(info.dump(force=True), b"pw")
    info, sp = _scrypt_params(blob)
    sp["cost_parameter"] = 3000  # type: ignore[index]  # not a power of two
    with pytest.raises(KeyFormatError, match="bounds"):
        decrypt_signing_key(info.dump(force=True), b"pw")
    with pytest.raises(CryptoUsageError):
        encrypt_signing_key(SigningKey.generate(Scheme.ED25519, SEED), b"pw", log2_n=22)


def test_pbe_refuses_non_der_encoding() -> None:
    blob = encrypt_signing_key(SigningKey.generate(Scheme.ED25519, SEED), b"pw", log2_n=10)
    # the same SEQUENCE with a long-form length octet: valid BER, not DER
    body = blob[2:] if blob[1] < 0x80 else blob[2 + (blob[1] & 0x7F) :]
    ber = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    with pytest.raises(KeyFormatError):
        decrypt_signing_key(ber, b"pw")


@pytest.mark.parametrize("scheme", [Scheme.ED25519, Scheme.ECDSA_P256])
def test_pbe_any_tampered_byte_is_detected(scheme: Scheme) -> None:
    key = SigningKey.generate(scheme, SEED)
    blob = encrypt_signing_key(key, b"pw", log2_n=10, randbytes=random.Random(5).randbytes)
    for i in range(len(blob)):  # every byte: structure, salt, cost, IV, ciphertext
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises((KeyFormatError, WrongPasswordError)):
            decrypt_signing_key(bytes(bad), b"pw", expected_public=key.public)


@pytest.mark.parametrize("scheme", [Scheme.ED25519, Scheme.ECDSA_P256])
def test_pbe_every_iv_bit_flip_is_detected(scheme: Scheme) -> None:
    # CBC: an IV bit flips the same plaintext bit of the PKCS#8 header (tag, length, version);
    # whether the key library tolerates the result must not decide whether tampering is seen
    key = SigningKey.generate(scheme, SEED)
    blob = encrypt_signing_key(key, b"pw", log2_n=10, randbytes=random.Random(7).randbytes)
    iv_at = blob.index(random.Random(7).randbytes(pbe.SALT_SIZE + pbe.IV_SIZE)[pbe.SALT_SIZE :])
    for i in range(iv_at, iv_at + pbe.IV_SIZE):
        for bit in range(8):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            with pytest.raises(WrongPasswordError):
                decrypt_signing_key(bytes(bad), b"pw", expected_public=key.public)


def test_pbe_refuses_a_v2_private_key_info_without_public_key() -> None:
    # version 1 (v2) says a public key follows (RFC 5958 §2); some cryptography releases load
    # it anyway, which let an IV flip of the version byte pass unnoticed
    v1 = SigningKey.generate(Scheme.ED25519, SEED).to_pkcs8()
    assert v1[4] == 0  # SEQUENCE, len, INTEGER, len, version
    v2 = v1[:4] + b"\x01" + v1[5:]
    blob = pbe.encrypt_pkcs8(v2, b"pw", log2_n=10)
    assert pbe.decrypt_pkcs8(blob, b"pw") == v2
    with pytest.raises(WrongPasswordError):
        pbe.load_private_key(blob, b"pw")


def test_pbe_tampered_ciphertext_is_detected_without_expected_key() -> None:
    key = SigningKey.generate(Scheme.ECDSA_P256, SEED)
    blob = encrypt_signing_key(key, b"pw", log2_n=10, randbytes=random.Random(6).randbytes)
    # the last ciphertext block carries the PKCS#7 padding, the first the DER header
    for i in (len(blob) - 1, len(blob) - 20, len(blob) - 16 * 4):
        bad = bytearray(blob)
        bad[i] ^= 0x80
        with pytest.raises(WrongPasswordError):
            decrypt_signing_key(bytes(bad), b"pw")


@given(st.binary(max_size=300))
def test_pbe_garbage_raises_typed_error(data: bytes) -> None:
    with pytest.raises((KeyFormatError, WrongPasswordError)):
        decrypt_signing_key(data, b"pw")


def test_pbe_deterministic_with_injected_randomness() -> None:
    k = SigningKey.generate(Scheme.ED25519, SEED)
    a = encrypt_signing_key(k, b"pw", log2_n=10, randbytes=random.Random(1).randbytes)
    b = encrypt_signing_key(k, b"pw", log2_n=10, randbytes=random.Random(1).randbytes)
    assert a == b and a != encrypt_signing_key(k, b"pw", log2_n=10)


def test_seal_round_trip_with_associated_data() -> None:
    recipient = EncryptionKey.generate(SEED)
    box = seal(recipient.public, b"ID 110101199001011234", b"record-id")
    assert b"110101" not in box
    assert open_sealed(recipient, box, b"record-id") == b"ID 110101199001011234"
    assert recipient.open(box, b"record-id") == b"ID 110101199001011234"
    with pytest.raises(SealError):
        open_sealed(recipient, box, b"other-record")
    with pytest.raises(SealError):
        open_sealed(EncryptionKey.generate(bytes(32)), box, b"record-id")


def test_seal_is_randomised_unless_seeded() -> None:
    r = EncryptionKey.generate(SEED)
    assert seal(r.public, b"x") != seal(r.public, b"x")
    assert seal(r.public, b"x", randbytes=random.Random(3).randbytes) == seal(
        r.public, b"x", randbytes=random.Random(3).randbytes
    )


@given(st.data())
def test_any_tampered_box_raises(data: st.DataObject) -> None:
    r = EncryptionKey.generate(SEED)
    box = bytearray(seal(r.public, b"private field", b"ad"))
    i = data.draw(st.integers(0, len(box) - 1))
    box[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        open_sealed(r, bytes(box), b"ad")


@given(st.binary(max_size=100))
def test_garbage_box_raises_seal_error(data: bytes) -> None:
    with pytest.raises(SealError):
        open_sealed(EncryptionKey.generate(SEED), data)


def test_seal_to_bad_public_key() -> None:
    with pytest.raises(KeyFormatError):
        seal(b"short", b"x")


@pytest.mark.parametrize("scheme", [Scheme.ED25519, Scheme.ECDSA_P256])
def test_identity_binding_and_sealing(scheme: Scheme) -> None:
    ident = Identity.generate(scheme, SEED)
    assert Identity.generate(scheme, SEED).public == ident.public
    pub = ident.public
    assert pub.is_bound() and pub.signing == ident.key
    box = pub.seal(b"name: Zhang San")
    assert ident.open(box) == b"name: Zhang San"
    # An attacker substitutes their own encryption key: the binding fails.
    mallory = EncryptionKey.generate(bytes(32))
    forged = IdentityPublic(pub.scheme, pub.signing, mallory.public, pub.binding)
    assert not forged.is_bound()
    with pytest.raises(BindingError):
        forged.seal(b"x")
    again = IdentityPublic.from_fields(codec.decode(codec.encode(pub.to_fields())))
    assert again == pub


def test_identity_from_fields_rejects_garbage() -> None:
    for bad in (None, [], ["ed25519", b"", b"x" * 32, b""], ["sm2", b"k", b"x" * 32, b""]):
        with pytest.raises(KeyFormatError):
            IdentityPublic.from_fields(bad)


@pytest.mark.parametrize("scheme", [Scheme.ED25519, Scheme.ECDSA_P256])
def test_identity_export_load(scheme: Scheme) -> None:
    ident = Identity.generate(scheme, SEED)
    blob = ident.export("pw", log2_n=10)
    assert ident.encryption.private_raw() not in blob
    again = Identity.load(blob, "pw")
    assert again.public == ident.public
    assert again.encryption.private_raw() == ident.encryption.private_raw()
    with pytest.raises(WrongPasswordError):
        Identity.load(blob, "nope")
    with pytest.raises(KeyFormatError):  # a plain signing-key file is not an identity file
        Identity.load(encrypt_signing_key(ident.signing, "pw", log2_n=10), "pw")


def test_identity_file_holds_two_standard_pkcs8_keys() -> None:
    ident = Identity.generate(Scheme.ED25519, SEED)
    fields = codec.decode(ident.export(b"pw", log2_n=10))
    sig = serialization.load_der_private_key(fields[3], b"pw")
    enc = serialization.load_der_private_key(fields[4], b"pw")
    assert isinstance(enc, x25519.X25519PrivateKey)  # X25519 is PKCS#8 too, not raw bytes
    assert enc.public_key().public_bytes_raw() == ident.public.encryption
    assert SigningKey.from_cryptography(sig).public == ident.key


def test_identity_file_tamper_is_detected() -> None:
    ident = Identity.generate(Scheme.ED25519, SEED)
    other = Identity.generate(Scheme.ED25519, bytes(32))
    blob = ident.export(b"pw", log2_n=10)
    for i in range(len(blob)):  # every byte of the container, the public half and both keys
        bad = bytearray(blob)
        bad[i] ^= 0x04
        with pytest.raises((KeyFormatError, WrongPasswordError)):
            Identity.load(bytes(bad), b"pw")
    # swapping in another identity's (correctly encrypted) X25519 key is caught as well
    fields = codec.decode(blob)
    fields[4] = codec.decode(other.export(b"pw", log2_n=10))[4]
    with pytest.raises(WrongPasswordError, match="public half"):
        Identity.load(codec.encode(fields), b"pw")


def test_cryptography_interop(key: SigningKey) -> None:
    obj = key.to_cryptography()
    again = SigningKey.from_cryptography(obj)
    assert again.public == key.public and again.scheme is key.scheme
    pub_obj = public_key_object(key.scheme, key.public)
    assert raw_public_of(pub_obj) == (key.scheme, key.public)
    with pytest.raises(KeyFormatError):
        public_key_object(key.scheme, b"\x00" * 7)


def test_public_key_value_semantics() -> None:
    a = SigningKey.generate(Scheme.ED25519, SEED).public_key
    b = PublicKey("ed25519", a.raw)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != PublicKey(Scheme.ECDSA_P256, a.raw)
    assert "ed25519" in repr(a)
