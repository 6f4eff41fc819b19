"""The central-server system's field encryption, kept only to be measured against
(docs/medical-chain.md §2).

Theory of operation
-------------------
The Flask "medical blockchain" with a central server encrypts medical data with AES using *the
patient's name* as the key. A name is not a secret and has little entropy: the few thousand most
common Chinese full names cover a large share of a population, so whoever holds a ciphertext can
try them all. This module reproduces that scheme faithfully enough to attack it —
:func:`name_key` pads/truncates the UTF-8 name to an AES-128 key, :func:`encrypt_with_name` uses
AES-CBC with PKCS#7 padding and a random IV — and implements the attack:

* :func:`common_names` — a deterministic dictionary of pinyin full names (surname x given name);
* :func:`dictionary_attack` — a bounded loop over the dictionary that stops at the first key
  whose plaintext has valid padding and decodes as a canonical :mod:`medbench.codec` record.

:func:`attack_sealed` runs the same dictionary against a field sealed the medbench way (X25519 +
HKDF + AES-GCM to the patient's public key): every name-derived private key fails, because the
sealing key is a random 32-byte secret and not a function of anything the attacker can guess.

Do not use :func:`encrypt_with_name` for anything but this comparison.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from medbench import codec
from medbench.crypto.errors import SealError
from medbench.crypto.sealing import EncryptionKey, open_sealed
from medbench.hashing import sha256


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = _words(
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo "
    "zheng liang xie song tang han feng deng cao peng zeng xiao tian dong yuan pan yu jiang cai "
    "du ye cheng wei su lv ding ren shen yao lu jiang cui zhong tan lu wang fan jin shi liao jia "
    "xia wei fu fang bai zou meng xiong qin qiu jiang yin xue yan duan lei hou long shi tao li "
    "he gu mao hao gong shao wan qian yan qin wu dai mo kong xiang tang"
)
GIVEN = _words(
    "wei fang na min jing li qiang lei jun yang yong yan jie juan tao ming chao xiuying hua "
    "ping gang gui ying hong bo xin peng hui hao kai long yu lan jian ting dan xia bin ning "
    "hai liang jun yun zhen qing fei rui lin xue mei jia hong yi cheng chen fan hua"
)


def common_names(count: int | None = None) -> list[str]:
    """Distinct ``"Surname Given"`` names, most common combinations first; ``count`` caps it."""
    names: list[str] = []
    seen: set[str] = set()
    for given in dict.fromkeys(GIVEN):
        for surname in dict.fromkeys(SURNAMES):
            name = f"{surname.capitalize()} {given.capitalize()}"
            if name not in seen:
                seen.add(name)
                names.append(name)
    return names if count is None else names[:count]


def name_key(name: str) -> bytes:
    """The baseline's AES-128 key: the UTF-8 name, zero-padded or truncated to 16 bytes."""
    return name.encode("utf-8")[:16].ljust(16, b"\0")


def encrypt_with_name(name: str, plaintext: bytes, rng: random.Random) -> bytes:
    """AES-128-CBC under :func:`name_key` with PKCS#7 padding; ``iv || ciphertext``."""
    iv = rng.randbytes(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext) + padder.finalize()
    enc = Cipher(algorithms.AES(name_key(name)), modes.CBC(iv)).encryptor()
    return iv + enc.update(data) + enc.finalize()


def decrypt_with_name(name: str, blob: bytes) -> bytes:
    """Inverse of :func:`encrypt_with_name`; raises ``ValueError`` on bad length or padding."""
    if len(blob) < 32 or len(blob) % 16:
        raise ValueError("ciphertext length")
    dec = Cipher(algorithms.AES(name_key(name)), modes.CBC(blob[:16])).decryptor()
    data = dec.update(blob[16:]) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(data) + unpadder.finalize()


def looks_like_record(plaintext: bytes) -> bool:
    """The attacker's oracle: the plaintext is a canonical codec dict (a medical record)."""
    try:
        return isinstance(codec.decode(plaintext), dict)
    except codec.DecodeError:
        return False


@dataclass(frozen=True, slots=True)
class AttackResult:
    """What a dictionary attack found, after how many tries."""

    name: str | None
    plaintext: bytes | None
    tries: int


def dictionary_attack(
    blob: bytes,
    candidates: Sequence[str],
    *,
    looks_right: Callable[[bytes], bool] = looks_like_record,
    max_tries: int = 100_000,
) -> AttackResult:
    """Try each candidate name as the key (at most ``max_tries``); stop at the first hit."""
    tries = 0
    for name in candidates[:max_tries]:
        tries += 1
        try:
            plaintext = decrypt_with_name(name, blob)
        except ValueError:
            continue
        if looks_right(plaintext):
            return AttackResult(name, plaintext, tries)
    return AttackResult(None, None, tries)


def name_derived_x25519(name: str) -> X25519PrivateKey:
    """The best an attacker can do against sealing: a private key derived from the name."""
    return X25519PrivateKey.from_private_bytes(bytes(sha256(name.encode("utf-8"))))


def attack_sealed(
    blob: bytes, candidates: Sequence[str], *, aad: bytes = b"", max_tries: int = 100_000
) -> AttackResult:
    """The same dictionary against an X25519-sealed field: try name-derived private keys."""
    tries = 0
    for name in candidates[:max_tries]:
        tries += 1
        try:
            plaintext = open_sealed(EncryptionKey(name_derived_x25519(name)), blob, aad)
        except SealError:
            continue
        return AttackResult(name, plaintext, tries)
    return AttackResult(None, None, tries)
