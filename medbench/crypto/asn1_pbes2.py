# mypy: disallow-subclassing-any=False
"""ASN.1 schema of a PBES2 + scrypt + AES-256-CBC ``EncryptedPrivateKeyInfo`` (for asn1crypto).

RFC 5958 §3 (``EncryptedPrivateKeyInfo``), RFC 8018 §A.4 (``PBES2-params``) and §B.2.5 (AES-CBC
parameters: the IV), RFC 7914 §7 (``scrypt-params``), narrowed to the one combination
:mod:`medbench.crypto.pbe` writes and accepts. Each ``AlgorithmIdentifier`` parses its
parameters by OID (asn1crypto's ``_oid_pair``), so a file naming another algorithm keeps them
opaque and :mod:`medbench.crypto.pbe` can refuse it with a clear message.
"""

from __future__ import annotations

from asn1crypto import core

PBES2_OID = "1.2.840.113549.1.5.13"
SCRYPT_OID = "1.3.6.1.4.1.11591.4.11"
AES256_CBC_OID = "2.16.840.1.101.3.4.1.42"


class ScryptParams(core.Sequence):
    """``scrypt-params`` of RFC 7914 §7."""

    _fields = [  # noqa: RUF012 - asn1crypto's schema attribute
        ("salt", core.OctetString),
        ("cost_parameter", core.Integer),
        ("block_size", core.Integer),
        ("parallelization_parameter", core.Integer),
        ("key_length", core.Integer, {"optional": True}),
    ]


class _KdfId(core.ObjectIdentifier):
    _map = {SCRYPT_OID: "scrypt"}  # noqa: RUF012


class _Kdf(core.Sequence):
    _fields = [("algorithm", _KdfId), ("parameters", core.Any)]  # noqa: RUF012
    _oid_pair = ("algorithm", "parameters")
    _oid_specs = {"scrypt": ScryptParams}  # noqa: RUF012


class _CipherId(core.ObjectIdentifier):
    _map = {AES256_CBC_OID: "aes256_cbc"}  # noqa: RUF012


class _Cipher(core.Sequence):
    _fields = [("algorithm", _CipherId), ("parameters", core.Any)]  # noqa: RUF012
    _oid_pair = ("algorithm", "parameters")
    _oid_specs = {"aes256_cbc": core.OctetString}  # noqa: RUF012


class _Pbes2Params(core.Sequence):
    _fields = [("key_derivation_func", _Kdf), ("encryption_scheme", _Cipher)]  # noqa: RUF012


class _SchemeId(core.ObjectIdentifier):
    _map = {PBES2_OID: "pbes2"}  # noqa: RUF012


class _Scheme(core.Sequence):
    _fields = [("algorithm", _SchemeId), ("parameters", core.Any)]  # noqa: RUF012
    _oid_pair = ("algorithm", "parameters")
    _oid_specs = {"pbes2": _Pbes2Params}  # noqa: RUF012


class EncryptedPrivateKeyInfo(core.Sequence):
    """``EncryptedPrivateKeyInfo`` of RFC 5958 §3 with the PBES2 choices above."""

    _fields = [  # noqa: RUF012
        ("encryption_algorithm", _Scheme),
        ("encrypted_data", core.OctetString),
    ]
