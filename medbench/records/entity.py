"""Entity registration: patients, staff, institutions, nodes and independent licensed workers.

Theory of operation
-------------------
docs/medical-chain.md §1.3 item 1 and §1.7 step 1: an entity's ``register`` transaction carries

* in clear: its role and public profile (sex, age band, institution, department, level) and its
  public identity (signing key, bound X25519 encryption key, binding signature — see
  :mod:`medbench.crypto.identity`), so that others can verify it and seal data to it;
* sealed to the entity's *own* encryption key: the private fields (ID-card number, name, contact),
  which only the holder of the private key can read back (associated data ``b"register"``).

The private plaintext is padded to a multiple of :data:`PRIVATE_PAD` bytes so the box length does
not leak the length of a name. The entity signs its registration. An entity that claims an
affiliation (staff or a validator node of an institution) lists the institution's key second and
the institution countersigns, so nobody can claim to work for a hospital that did not vouch for
it; :func:`affiliations` derives the staff → institution map that the ledger's
:class:`~medbench.ledger.SignerPolicy` needs from such registrations, a pure function of the chain.
:func:`read_registration` parses a ``register`` transaction from the chain and raises only
:class:`RecordDecodeError`.

*Leaving an institution.* An affiliation is what obliges a staff member's records to carry the
institution's countersignature, so it must not end on the member's word alone: otherwise a doctor
could re-register as an independent worker (a registration only they sign) and then sign records
alone. A re-registration that drops or changes the affiliation of a key therefore names the
institution it leaves in a ``releases`` field and lists that institution as its last signer
(:func:`register` with ``releasing=``); :func:`affiliations` applies a change of affiliation only
when the registration is released by the institution the key belongs to and every listed
signature verifies, and otherwise keeps the affiliation it had.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from medbench import codec
from medbench.crypto.errors import KeyFormatError
from medbench.crypto.identity import Identity, IdentityPublic
from medbench.crypto.sealing import RandBytes
from medbench.ledger.transaction import Kind, Transaction, verify_transaction
from medbench.records.errors import RecordDecodeError, RecordUsageError

REGISTER_AAD = b"register"
"""Associated data of the sealed private fields."""
PRIVATE_PAD = 64
_MAX_FIELD = 256
_REGISTRATION_FIELDS = frozenset({"role", "identity", "institution", "public", "private"})
_SEXES = frozenset({"female", "male", "other", "unknown"})  # FHIR administrative-gender


class Role(StrEnum):
    """What kind of entity registers (docs/medical-chain.md §1.3 item 1, §1.6)."""

    PATIENT = "patient"
    STAFF = "staff"
    INSTITUTION = "institution"
    NODE = "node"
    WORKER = "worker"
    """An independent licensed worker: writes records and signs alone."""


AFFILIATED_ROLES: frozenset[Role] = frozenset({Role.STAFF, Role.NODE})
"""Roles that belong to an institution and need its countersignature."""


def _opt_str(value: Any, name: str) -> str | None:
    if value is not None and (type(value) is not str or len(value) > _MAX_FIELD):
        return f"{name} must be a str of at most {_MAX_FIELD} characters or None"
    return None


@dataclass(frozen=True, slots=True)
class PublicProfile:
    """The fields of a registration that stay in clear."""

    role: Role
    sex: str | None = None
    age_band: str | None = None
    institution: bytes | None = None
    department: str | None = None
    level: str | None = None

    def problem(self) -> str | None:
        """Why this profile is inconsistent, or ``None``."""
        if type(self.role) is not Role:
            return "role must be a Role"
        if self.sex is not None and (type(self.sex) is not str or self.sex not in _SEXES):
            return f"sex must be one of {sorted(_SEXES)}"
        for name in ("age_band", "department", "level"):
            p = _opt_str(getattr(self, name), name)
            if p is not None:
                return p
        inst = self.institution
        if inst is not None and (type(inst) is not bytes or not 0 < len(inst) <= 1024):
            return "institution must be a raw public key"
        if (inst is not None) != (self.role in AFFILIATED_ROLES):
            return "staff and nodes name their institution; other roles do not"
        return None

    def to_fields(self) -> dict[str, Any]:
        """The canonical map of the clear fields (institution is a top-level field)."""
        return {
            "sex": self.sex,
            "age_band": self.age_band,
            "department": self.department,
            "level": self.level,
        }


@dataclass(frozen=True, slots=True)
class PrivateProfile:
    """The fields sealed to the entity itself."""

    name: str
    id_number: str = ""
    contact: str = ""

    def encode(self) -> bytes:
        """Padded canonical plaintext (length hides the length of the fields)."""
        body = {"name": self.name, "id_number": self.id_number, "contact": self.contact}
        bare = len(codec.encode({**body, "pad": b""}))
        # a bin8 length grows by one byte past 255 padding bytes: recompute until stable
        pad = (-bare) % PRIVATE_PAD
        encoded = codec.encode({**body, "pad": b"\x00" * pad})
        while len(encoded) % PRIVATE_PAD:
            pad += 1
            encoded = codec.encode({**body, "pad": b"\x00" * pad})
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> PrivateProfile:
        """Parse :meth:`encode` output; raises :class:`RecordDecodeError`."""
        try:
            fields = codec.decode(data)
        except codec.DecodeError as exc:
            raise RecordDecodeError(f"malformed private fields: {exc}") from None
        if not isinstance(fields, dict) or set(fields) != {"name", "id_number", "contact", "pad"}:
            raise RecordDecodeError("private fields are name, id_number, contact, pad")
        if not all(type(fields[k]) is str for k in ("name", "id_number", "contact")):
            raise RecordDecodeError("private fields are strings")
        return cls(fields["name"], fields["id_number"], fields["contact"])


@dataclass(frozen=True, slots=True)
class Registration:
    """A parsed ``register`` transaction (private fields still sealed)."""

    tx_id: bytes
    timestamp_us: int
    identity: IdentityPublic
    profile: PublicProfile
    sealed_private: bytes
    released_from: bytes | None = None
    """The institution this registration leaves (it countersigned the release), if any."""

    @property
    def key(self) -> bytes:
        """The entity's raw signing public key (its identifier on chain)."""
        return self.identity.signing

    def open_private(self, identity: Identity) -> PrivateProfile:
        """The private fields; raises :class:`~medbench.crypto.SealError` for any other key."""
        return PrivateProfile.decode(identity.open(self.sealed_private, REGISTER_AAD))


def register(
    identity: Identity,
    profile: PublicProfile,
    private: PrivateProfile,
    timestamp_us: int,
    *,
    institution: Identity | None = None,
    releasing: Identity | None = None,
    randbytes: RandBytes = os.urandom,
) -> Transaction:
    """The signed ``register`` transaction of ``identity``.

    Staff and nodes pass their ``institution``, which is listed second and countersigns. An
    entity leaving an affiliation (becoming independent, or moving to another institution) passes
    the institution it leaves as ``releasing``, which is listed last and countersigns the release.
    ``randbytes`` feeds the sealing's ephemeral key (seeded in the workload generator).
    """
    problem = profile.problem()
    if problem is not None:
        raise RecordUsageError(f"invalid profile: {problem}")
    if (institution is None) != (profile.institution is None) or (
        institution is not None and institution.key != profile.institution
    ):
        raise RecordUsageError("pass the institution named in the profile to countersign")
    if releasing is not None and releasing.key in (identity.key, profile.institution):
        raise RecordUsageError("the releasing institution is the one being left, not joined")
    fields: dict[str, Any] = {
        "role": str(profile.role),
        "identity": identity.public.to_fields(),
        "institution": profile.institution,
        "public": profile.to_fields(),
        "private": identity.public.seal(private.encode(), REGISTER_AAD, randbytes=randbytes),
    }
    signers = [identity.signing] if institution is None else [identity.signing, institution.signing]
    if releasing is not None:  # only then: registrations without a release keep their bytes
        fields["releases"] = releasing.key
        signers.append(releasing.signing)
    return Transaction.create(Kind.REGISTER, codec.encode(fields), timestamp_us, signers)


def read_registration(tx: Transaction) -> Registration:
    """Parse a ``register`` transaction from the chain; raises only :class:`RecordDecodeError`.

    Checks the structure, the identity binding, that the author is the registered identity and
    that an affiliated entity lists its institution second. Signatures themselves are the
    ledger's job (:func:`~medbench.ledger.verify_transaction`).
    """
    if tx.kind is not Kind.REGISTER:
        raise RecordDecodeError(f"not a register transaction: {tx.kind.name}")
    try:
        c = codec.decode(tx.content)
    except codec.DecodeError as exc:
        raise RecordDecodeError(f"malformed registration: {exc}") from None
    if not isinstance(c, dict) or set(c) - {"releases"} != _REGISTRATION_FIELDS:
        raise RecordDecodeError(
            "a registration is role, identity, institution, public, private (and releases)"
        )
    released = c.get("releases")
    if "releases" in c and (type(released) is not bytes or not 0 < len(released) <= 1024):
        raise RecordDecodeError("releases must be the raw public key of an institution")
    try:
        identity = IdentityPublic.from_fields(c["identity"])
    except KeyFormatError as exc:
        raise RecordDecodeError(str(exc)) from None
    pub = c["public"]
    if type(c["role"]) is not str or c["role"] not in Role._value2member_map_:
        raise RecordDecodeError("unknown role")
    if not isinstance(pub, dict):
        raise RecordDecodeError("malformed public fields")
    if set(pub) != {"sex", "age_band", "department", "level"}:
        raise RecordDecodeError("public fields are sex, age_band, department, level")
    profile = PublicProfile(Role(c["role"]), institution=c["institution"], **pub)
    problem = profile.problem()
    if problem is not None:
        raise RecordDecodeError(f"invalid profile: {problem}")
    if type(c["private"]) is not bytes:
        raise RecordDecodeError("private fields must be a sealed box")
    if identity.signing != tx.author or not identity.is_bound():
        raise RecordDecodeError("the registered identity is not the author or is not bound")
    expected = (tx.author,) if profile.institution is None else (tx.author, profile.institution)
    if released is not None:
        if released in expected:
            raise RecordDecodeError("a registration cannot release the institution it joins")
        expected = (*expected, released)
    if tx.public_keys != expected:
        raise RecordDecodeError(
            "an affiliated entity must list its institution as countersigner, "
            "and a released one the institution it leaves last"
        )
    return Registration(tx.id, tx.timestamp_us, identity, profile, c["private"], released)


def affiliation_change_refused(current: bytes | None, reg: Registration) -> str | None:
    """Why ``reg`` may not change the affiliation ``current`` of its key, or ``None`` if it may.

    Joining (no current affiliation) needs only the joined institution's countersignature, which
    :func:`read_registration` already demands; leaving or moving needs the release of
    ``current`` (module docstring, "Leaving an institution").
    """
    new = reg.profile.institution
    if current is None or new == current:
        return None
    if reg.released_from != current:
        return "leaving an institution needs that institution's release"
    return None


def affiliations(transactions: Iterable[Transaction]) -> dict[bytes, bytes]:
    """Staff/node key → institution key from every well-formed registration, in chain order.

    Malformed registrations, and registrations whose listed signatures do not all verify, are
    skipped (they were counted where they were rejected). A later registration of the same key
    replaces the earlier affiliation only as :func:`affiliation_change_refused` allows: a
    registration that leaves an institution without its release changes nothing.
    """
    out: dict[bytes, bytes] = {}
    for tx in transactions:
        if tx.kind is not Kind.REGISTER:
            continue
        try:
            reg = read_registration(tx)
        except RecordDecodeError:
            continue
        if affiliation_change_refused(out.get(reg.key), reg) is not None:
            continue
        if not verify_transaction(tx, reg.identity.scheme).ok:
            continue  # a change of affiliation rests on these signatures; never trust it unsigned
        if reg.profile.institution is not None:
            out[reg.key] = reg.profile.institution
        else:
            out.pop(reg.key, None)
    return out
