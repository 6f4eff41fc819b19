"""An observer holding every transaction and every public key cannot link a record to its patient.

The observer of PAPER.md §1.7 step 6 ("TX1 leaked: not linkable to P") is given the whole chain —
registrations with every public key, every record, every association — and the ground truth is
hidden from it. It links each record to its association perfectly (same signers, same time: we
grant it that), then tries every strategy over public information to name the patient. With the
paper's association form it names her every time; with stealth associations each strategy is no
better than chance on a seeded population, and no association field equals or is derivable from
any patient's public keys without a private key.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import random
from collections import Counter
from collections.abc import Callable
from statistics import NormalDist

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from records_helpers import T0, Population, condition, encounter, population

from medbench.crypto.identity import IdentityPublic
from medbench.ledger import Kind, Transaction
from medbench.records import (
    StealthAssociation,
    add,
    associate,
    build_visit,
    paper_association,
    paper_owner,
    read_registration,
    scan_one,
)

PATIENTS = 8
VISITS = 240
ALPHA = 0.001  # a strategy "beats chance" if a one-sided binomial test rejects at this level


@functools.cache
def _world(
    stealth: bool, seed: int = 31
) -> tuple[list[Transaction], dict[bytes, bytes], Population]:
    pop = population(seed, institutions=3, staff_per=2, patients=PATIENTS)
    rng = random.Random(seed + 1)
    chain = list(pop.registrations)
    truth: dict[bytes, bytes] = {}
    t = T0 + 10**6
    for k in range(VISITS):
        patient = rng.choice(pop.patients)
        writer = pop.writer(rng.randrange(len(pop.staff)))
        t += rng.randrange(1, 3_600_000_000)
        record = add(build_visit([encounter(k), condition(k)]).encode(), t, writer)
        if stealth:
            assoc = associate(patient.public, record.id, t, writer, randbytes=rng.randbytes)
        else:
            content = paper_association(
                patient.public, record.id, writer.author.public, randbytes=rng.randbytes
            )
            assoc = writer.sign(Kind.ASSOCIATE, content, t)
        chain += [record, assoc]
        truth[record.id] = patient.key
    return chain, truth, pop


def _public_identities(chain: list[Transaction]) -> list[IdentityPublic]:
    """What the observer knows of the patients: every registered patient's public identity."""
    regs = [read_registration(tx) for tx in chain if tx.kind is Kind.REGISTER]
    return [r.identity for r in regs if r.profile.role == "patient"]


def _record_to_association(chain: list[Transaction]) -> dict[bytes, Transaction]:
    """The observer's metadata join: the association with the same signers and time."""
    assocs = {(tx.public_keys, tx.timestamp_us): tx for tx in chain if tx.kind is Kind.ASSOCIATE}
    return {
        tx.id: assocs[(tx.public_keys, tx.timestamp_us)]
        for tx in chain
        if tx.kind is Kind.ADD and (tx.public_keys, tx.timestamp_us) in assocs
    }


@functools.cache
def _candidates(p: IdentityPublic, ephemeral: bytes) -> list[bytes]:
    """Everything an observer can compute from P's public keys (and the association's E)."""
    out = []
    for key in (p.signing, p.encryption):
        out += [
            key,
            hashlib.sha256(key).digest(),
            hashlib.sha256(ephemeral + key).digest(),
            hmac.digest(key, b"assoc", "sha256"),
            hmac.digest(hashlib.sha256(key).digest(), b"assoc", "sha256"),
        ]
        # the real derivation with a public key where the shared secret should be
        s = HKDF(hashes.SHA256(), 32, ephemeral + p.encryption, b"medbench/association/v1")
        pseudo = s.derive(key)
        out += [pseudo, hmac.digest(pseudo, b"assoc", "sha256")]
    # a public key used as if it were a private scalar
    fake = x25519.X25519PrivateKey.from_private_bytes(p.encryption)
    z = fake.exchange(x25519.X25519PublicKey.from_public_bytes(ephemeral))
    s2 = HKDF(hashes.SHA256(), 32, ephemeral + p.encryption, b"medbench/association/v1").derive(z)
    out += [z, s2, hmac.digest(s2, b"assoc", "sha256")]
    return out


Strategy = Callable[[Transaction, list[IdentityPublic]], bytes]


def _clear_key(assoc: Transaction, patients: list[IdentityPublic]) -> bytes:
    """The patient whose key (or its hash) appears in the association; else the first patient."""
    for p in patients:
        for needle in (p.signing, p.encryption, hashlib.sha256(p.signing).digest()):
            if needle in assoc.content:
                return p.signing
    owner = paper_owner(assoc)
    return owner if owner is not None else patients[0].signing


def _derivation_match(assoc: Transaction, patients: list[IdentityPublic]) -> bytes:
    """The patient one of whose public derivations equals any association field."""
    sa = StealthAssociation.decode(assoc.content)
    fields = {sa.ephemeral, sa.tag, sa.link[:32], sa.link[-32:]}
    for p in patients:
        if fields & set(_candidates(p, sa.ephemeral)):
            return p.signing
    return patients[0].signing


def _closest_tag(assoc: Transaction, patients: list[IdentityPublic]) -> bytes:
    """The patient whose best public derivation is closest to the tag in Hamming distance."""
    sa = StealthAssociation.decode(assoc.content)

    def score(p: IdentityPublic) -> int:
        return max(
            sum(8 - bin(a ^ b).count("1") for a, b in zip(c, sa.tag, strict=False))
            for c in _candidates(p, sa.ephemeral)
        )

    return max(patients, key=score).signing


def _majority(assoc: Transaction, patients: list[IdentityPublic]) -> bytes:
    """The prior: always the same patient (the best an observer with no signal can do)."""
    return patients[0].signing


def _accuracy(strategy: Strategy, stealth: bool) -> tuple[int, int]:
    chain, truth, _ = _world(stealth)
    patients = _public_identities(chain)
    joined = _record_to_association(chain)
    assert len(joined) == VISITS  # the observer's metadata join is perfect: we grant it that
    hits = sum(strategy(joined[rid], patients) == truth[rid] for rid in truth)
    return hits, len(truth)


def _binomial_tail(hits: int, n: int, p: float) -> float:
    """P[X >= hits] for X ~ Binomial(n, p), exactly."""
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(hits, n + 1))


def _beats_chance(hits: int, n: int) -> bool:
    """A one-sided exact binomial test against guessing among the patients."""
    return _binomial_tail(hits, n, 1 / PATIENTS) < ALPHA


def _chi2_critical(df: int, alpha: float) -> float:
    """Upper ``alpha`` quantile of chi-square (Wilson-Hilferty; within 0.5% for df > 100)."""
    z = NormalDist().inv_cdf(1 - alpha)
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_the_papers_form_is_linkable_by_any_observer() -> None:
    hits, n = _accuracy(_clear_key, stealth=False)
    assert hits == n  # the owner key is in clear: the observer names every patient
    assert _beats_chance(hits, n)
    assert not _beats_chance(n // PATIENTS, n)  # the test itself is calibrated


def test_stealth_associations_leave_every_strategy_at_chance() -> None:
    for strategy in (_clear_key, _derivation_match, _closest_tag, _majority):
        hits, n = _accuracy(strategy, stealth=True)
        assert not _beats_chance(hits, n), (strategy.__name__, hits, n)
        assert hits < 0.25 * n, (strategy.__name__, hits, n)


def test_no_field_equals_or_derives_from_public_keys_but_the_private_key_finds_it() -> None:
    chain, truth, pop = _world(True)
    patients = _public_identities(chain)
    assocs = [tx for tx in chain if tx.kind is Kind.ASSOCIATE]
    by_key = {p.key: p for p in pop.patients}
    record_of = {a.id: r for r, a in _record_to_association(chain).items()}
    for tx in assocs:
        sa = StealthAssociation.decode(tx.content)
        for p in patients:
            for c in _candidates(p, sa.ephemeral):
                assert c not in tx.content
        # positive control: with the private key the tag is derivable and names the record
        owner = by_key[truth[record_of[tx.id]]]
        found = scan_one(owner, tx)
        assert found is not None and found.record_id == record_of[tx.id]


def test_association_contents_look_uniform_and_equal_length() -> None:
    chain, _, _ = _world(True)
    contents = [StealthAssociation.decode(tx.content) for tx in chain if tx.kind is Kind.ASSOCIATE]
    assert len({len(c.encode()) for c in contents}) == 1
    assert len({c.ephemeral for c in contents}) == len(contents)  # fresh E every time
    data = b"".join(c.tag + c.link for c in contents)
    counts = Counter(data)
    expected = len(data) / 256
    chi2 = sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(256))
    assert chi2 < _chi2_critical(255, ALPHA)
