"""Unlinkability of a record to its patient: what the association hides, and what it cannot.

The observer of PAPER.md §1.7 step 6 ("TX1 leaked: not linkable to P") is given the whole chain —
registrations with every public key, every record, every association — and the ground truth is
hidden from it. It links each record to its association perfectly (same signers, same time: we
grant it that), then tries every strategy over the *associations* to name the patient. With the
paper's association form it names her every time; with stealth associations each strategy is no
better than chance, on a hand-built world and on the workload generator's full output, and no
association field equals or is derivable from any patient's public keys without a private key.

The claim is narrower than "no observer can link a record": ``grant`` transactions name patient
and grantee in clear and ``query`` transactions name querier and owner, because the access layer
(PAPER.md §1.5: validators check permission transactions before answering) must read them. On
the generator's stealth workload (20 patients, 300 visits) a naive observer that pairs each record
with the last grant (patient -> author) or query (owner = patient) by the same author names the
patient 48-59% of the time on seeds 0-4 (grants alone about 32%, queries alone about 34%) against
5% chance. That channel is the access layer's to close (grants and queries that do not name the
patient in clear); the last tests below measure it and hold it under a stated bound, so that a
change making it worse fails here.
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

from medbench import codec
from medbench.crypto.identity import IdentityPublic
from medbench.ledger import Kind, Transaction
from medbench.ledger.workload import Entity, WorkloadConfig, generate
from medbench.records import (
    QueryCondition,
    StealthAssociation,
    add,
    associate,
    build_visit,
    paper_association,
    paper_owner,
    read_registration,
    scan_one,
    scan_paper,
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


# --- the generator's full output: associations at chance, grants and queries a measured channel --

GEN_PATIENTS = 20
GEN_VISITS = 300
GEN_SEEDS = (0, 1, 2)
RESIDUAL_BOUND = 0.65
"""Largest share of records the naive grant/query observer may name on any seed (measured 0.547,
0.557, 0.587 on seeds 0-2 when this bound was set; chance is 1/20)."""


@functools.cache
def _generated(seed: int, stealth: bool = True) -> tuple[list[Transaction], dict[bytes, bytes]]:
    """The generator's output and the ground truth record ID -> patient key (found by scanning
    every association with every patient's private key: the positive control)."""
    cfg = WorkloadConfig(patients=GEN_PATIENTS, visits=GEN_VISITS, stealth_associations=stealth)
    wl = generate(cfg, seed=seed)
    truth: dict[bytes, bytes] = {}
    for tx in wl.transactions:
        if tx.kind is not Kind.ASSOCIATE:
            continue
        for p in wl.patients:
            if stealth:
                opened = scan_one(p.identity, tx)
                found = None if opened is None else opened.record_id
            else:
                found = _paper_found(p, tx)
            if found is not None:
                truth[found] = p.key
                break
    assert len(truth) == GEN_VISITS  # every association opens for exactly its patient
    return wl.transactions, truth


def _paper_found(p: Entity, tx: Transaction) -> bytes | None:
    return next(scan_paper(p.identity, [tx]), None)


def _generated_joins(chain: list[Transaction]) -> dict[bytes, Transaction]:
    """Record ID -> its association: the next association by the same signers (the generator
    writes it right after the record)."""
    last_record: dict[tuple[bytes, ...], bytes] = {}
    out: dict[bytes, Transaction] = {}
    for tx in chain:
        if tx.kind is Kind.ADD:
            last_record[tx.public_keys] = tx.id
        elif tx.kind is Kind.ASSOCIATE and tx.public_keys in last_record:
            out[last_record.pop(tx.public_keys)] = tx
    return out


def naive_grant_query_observer(
    chain: list[Transaction], *, grants: bool = True, queries: bool = True
) -> dict[bytes, bytes | None]:
    """Record ID -> the patient named by the last grant to, or query by, the record's author."""
    last: dict[bytes, bytes] = {}
    guesses: dict[bytes, bytes | None] = {}
    for tx in chain:
        if tx.kind is Kind.GRANT and grants:
            last[codec.decode(tx.content)["grantee"]] = tx.author
        elif tx.kind is Kind.QUERY and queries:
            owner = QueryCondition.decode(tx.content).owner
            if owner is not None:
                last[tx.author] = owner
        elif tx.kind is Kind.ADD:
            guesses[tx.id] = last.get(tx.author)
    return guesses


def _rate(guesses: dict[bytes, bytes | None], truth: dict[bytes, bytes]) -> tuple[int, int]:
    return sum(guesses.get(rid) == pk for rid, pk in truth.items()), len(truth)


def test_generator_associations_leave_every_strategy_at_chance() -> None:
    for seed in GEN_SEEDS[:2]:
        chain, truth = _generated(seed)
        patients = _public_identities(chain)
        assert len(patients) == GEN_PATIENTS
        joined = _generated_joins(chain)
        assert set(truth) <= set(joined)
        for strategy in (_clear_key, _derivation_match, _majority):
            hits = sum(strategy(joined[rid], patients) == pk for rid, pk in truth.items())
            tail = _binomial_tail(hits, len(truth), 1 / GEN_PATIENTS)
            assert tail >= ALPHA, (seed, strategy.__name__, hits)


def test_generator_paper_form_is_linked_by_the_clear_key() -> None:
    chain, truth = _generated(0, stealth=False)
    patients = _public_identities(chain)
    joined = _generated_joins(chain)
    assert all(_clear_key(joined[rid], patients) == pk for rid, pk in truth.items())


def test_grants_and_queries_are_a_measured_residual_channel() -> None:
    pooled_hits = pooled_n = 0
    for seed in GEN_SEEDS:
        chain, truth = _generated(seed)
        hits, n = _rate(naive_grant_query_observer(chain), truth)
        g_hits, _ = _rate(naive_grant_query_observer(chain, queries=False), truth)
        q_hits, _ = _rate(naive_grant_query_observer(chain, grants=False), truth)
        assert hits / n <= RESIDUAL_BOUND, (seed, hits, n)
        # each half of the channel contributes; together they are worse than either alone
        assert max(g_hits, q_hits) < hits, (seed, g_hits, q_hits, hits)
        pooled_hits, pooled_n = pooled_hits + hits, pooled_n + n
    # the narrowed claim, pinned: this channel is real (far above the 1/20 of chance) ...
    assert _binomial_tail(pooled_hits, pooled_n, 1 / GEN_PATIENTS) < ALPHA
    # ... and without grants and queries the same observer has nothing to go on
    chain, truth = _generated(GEN_SEEDS[0])
    blind = naive_grant_query_observer(chain, grants=False, queries=False)
    assert _rate(blind, truth)[0] == 0
