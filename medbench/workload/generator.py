"""A seeded synthetic medical workload: institutions, staff, patients, visits, signed transactions.

Theory of operation
-------------------
Tests, benchmarks and notebooks need realistic but reproducible traffic. :func:`generate` draws
everything from one ``numpy.random.Generator(seed)`` — key seeds, sealed-box ephemeral keys,
content sizes, timestamps — so the same ``(config, seed)`` always yields the same bytes (Ed25519
and RFC 6979 ECDSA signatures are deterministic; the wall clock is never read).

RSA-PSS keys cannot be derived from a seed at a usable speed, so with ``scheme=RSA_PSS_3072`` the
signing keys come from the shipped pool of :mod:`medbench.ledger.rsa_pool`, in an order drawn
from the same generator: the key material is still a function of ``(config, seed)``, but PSS
signatures are randomised by design, so signature bytes — and the IDs of ``register``
transactions, which embed the identity's binding signature — differ between runs. Such a
population is capped at :data:`~medbench.ledger.rsa_pool.POOL_SIZE` keys.

The population follows docs/medical-chain.md §1.3 and §1.7:

* institutions (hospitals), staff affiliated to one institution, independent licensed workers,
  patients, and validators (one per institution, at least 4, §1.1);
* every entity has a ``register`` transaction (:func:`medbench.records.register`): role, public
  profile and bound public identity in clear, private fields (name, ID number, contact) sealed to
  its own encryption key; staff registrations are countersigned by their institution;
* a visit produces a record (``add``) whose content is FHIR R4B (an Encounter and an Observation
  holding the findings, validated by :func:`medbench.records.build_visit`), signed by the staff
  member *and* the institution, or by an independent worker alone, with optional imaging
  attachments referenced by SHA-256 only (the image bytes stay off chain; :meth:`ImageRef.payload`
  regenerates them for a blob store);
* each record is followed by an ``associate`` transaction linking it to the patient. By default
  it has the paper's form (§1.3 item 3: the link sealed to the patient, her public key in clear);
  with ``stealth_associations`` it is a stealth association that names nobody
  (:mod:`medbench.records.association`), and grants then carry a view capability of the
  patient's associations so far. Grants (patient -> author) and queries (owner = patient) are
  emitted at the visit, just before its record. In the paper's form they name the patient in
  clear, and link about half of the records to their patient whatever the association form;
  with ``sealed_access`` (which needs stealth associations and Ed25519) a grant is signed by a
  fresh one-day pseudonym of the patient and a query's condition is sealed, both to the
  consortium access key (:mod:`medbench.records.sealed`): the workload then has an access key
  (:attr:`Workload.access_key`, what the validators hold) and a pseudonym CA
  (:attr:`Workload.pseudonym_ca`). ``audit_queries`` adds a validator's audit record after each
  query (patient in clear, or sealed with ``sealed_access``). The sealing draws its randomness
  from a generator of its own and the main generator draws exactly what the clear form draws,
  so both forms of one ``(config, seed)`` hold the same visits by the same doctors at the same
  times — the unlinkability test compares them pairwise;
* patients occasionally ``grant`` a doctor a time window, doctors ``query`` (the condition is on
  chain), a few records are ``update``-d (new version + link) and a few ``delete``-d (tombstone
  naming the deleted ID) — all built by :mod:`medbench.records`.

Record sizes are log-normal (median ``content_median_bytes``, shape ``content_sigma``), clipped
to ``[64, max_content_bytes]`` and reached by sizing the findings text; inter-arrival gaps are
exponential. :func:`build_chain` packs the
transactions into blocks signed by the rotating blocker of :mod:`medbench.rotation`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from cryptography import x509

from medbench import codec
from medbench.crypto.identity import Identity
from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey
from medbench.hashing import sha256
from medbench.ledger import rsa_pool
from medbench.ledger.block import Block, Genesis
from medbench.ledger.transaction import Kind, SignerPolicy, Transaction
from medbench.pki.ca import CertificateAuthority, der
from medbench.pki.pseudonym import MAX_LIFETIME_US, PseudonymLink, certify_pseudonym
from medbench.pki.subject import hash_identifier
from medbench.records import (
    Attachment,
    FoundAssociation,
    PrivateProfile,
    PublicProfile,
    QueryCondition,
    Role,
    Writer,
    associate,
    audit_record,
    build_visit,
    crud,
    grant_view,
    paper_association,
    register,
    scan_one,
    sealed_grant_view,
    sealed_query,
)
from medbench.rotation import expected_blocker

_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ,.0123456789", dtype=np.uint8)
_MODALITIES = ("CT", "US", "MR", "XR")
_DEPARTMENTS = ("cardiology", "oncology", "pediatrics", "radiology", "emergency", "neurology")
_MEDIA_TYPES = {
    "CT": "application/dicom",
    "US": "video/mp4",
    "MR": "application/dicom",
    "XR": "image/jpeg",
}
_SEXES = ("female", "male")
_AGE_BANDS = ("0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+")
_LEVELS = ("resident", "attending", "chief")
_FHIR_OVERHEAD = 420
"""Approximate bytes of a visit's content besides its findings text (sizes the text)."""


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """Sizes and rates of a synthetic workload (defaults: a small city consortium)."""

    institutions: int = 4
    staff_per_institution: int = 3
    independent_workers: int = 1
    patients: int = 20
    visits: int = 60
    content_median_bytes: int = 1500
    content_sigma: float = 0.8
    max_content_bytes: int = 64 * 1024
    image_probability: float = 0.3
    image_median_bytes: int = 128 * 1024
    image_sigma: float = 1.0
    max_image_bytes: int = 4 * 1024 * 1024
    grant_probability: float = 0.3
    query_probability: float = 0.3
    delete_probability: float = 0.05
    update_probability: float = 0.0
    stealth_associations: bool = False
    sealed_access: bool = False
    audit_queries: bool = False
    mean_gap_us: int = 30_000_000
    start_us: int = 1_546_300_800_000_000  # 2019-01-01T00:00:00Z
    scheme: Scheme = Scheme.ED25519


@dataclass(frozen=True, slots=True)
class Entity:
    """A participant: ``role`` is institution, staff, worker or patient."""

    role: str
    name: str
    identity: Identity
    institution: bytes | None = None

    @property
    def key(self) -> bytes:
        """The raw signing public key (the on-chain identifier)."""
        return self.identity.key


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An off-chain image: only ``digest`` goes on chain; :meth:`payload` regenerates the bytes."""

    digest: bytes
    size: int
    modality: str
    seed: int

    def payload(self) -> bytes:
        """The image bytes (deterministic from ``seed``); their SHA-256 is :attr:`digest`."""
        return _image_bytes(self.seed, self.size)


def _image_bytes(seed: int, size: int) -> bytes:
    return np.random.default_rng(seed).bytes(size)


@dataclass
class Workload:
    """The generated population and transactions, in timestamp order."""

    config: WorkloadConfig
    seed: int
    validators: list[SigningKey]
    root_ca: SigningKey
    institutions: list[Entity]
    staff: list[Entity]
    workers: list[Entity]
    patients: list[Entity]
    transactions: list[Transaction] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    access_key: EncryptionKey | None = None
    pseudonym_ca: CertificateAuthority | None = None

    @property
    def pseudonym_anchors(self) -> tuple[x509.Certificate, ...]:
        """The trust anchor of the workload's pseudonym certificates (empty in clear form)."""
        return () if self.pseudonym_ca is None else (self.pseudonym_ca.cert,)

    @property
    def affiliation(self) -> dict[bytes, bytes]:
        """Staff key → institution key."""
        return {s.key: s.institution for s in self.staff if s.institution is not None}

    @property
    def policy(self) -> SignerPolicy:
        """The signer rule of this population (staff records need the institution too)."""
        return SignerPolicy(self.affiliation)

    def store(self) -> dict[bytes, Transaction]:
        """A fresh transaction store (ID → body) holding every transaction."""
        return {tx.id: tx for tx in self.transactions}

    def genesis(self, chain_id: str = "medical-chain") -> Genesis:
        """The consortium's genesis: validators in replica order, the root CA key as root of
        trust, timestamped at the workload's start."""
        return Genesis(
            chain_id,
            self.config.scheme,
            tuple(v.public for v in self.validators),
            self.root_ca.public,
            self.config.start_us,
        )


def _text(rng: np.random.Generator, n: int) -> str:
    return _ALPHABET[rng.integers(0, len(_ALPHABET), n)].tobytes().decode("ascii")


def _lognormal_size(rng: np.random.Generator, median: int, sigma: float, lo: int, hi: int) -> int:
    return int(np.clip(rng.lognormal(np.log(median), sigma), lo, hi))


def _randbytes(rng: np.random.Generator) -> Callable[[int], bytes]:
    return rng.bytes


def _register(
    e: Entity, ts: int, rng: np.random.Generator, institution: Entity | None
) -> Transaction:
    role = Role(e.role)
    if role is Role.PATIENT:
        profile = PublicProfile(
            role,
            sex=_SEXES[int(rng.integers(len(_SEXES)))],
            age_band=_AGE_BANDS[int(rng.integers(len(_AGE_BANDS)))],
        )
    elif role is Role.STAFF:
        profile = PublicProfile(
            role,
            institution=e.institution,
            department=_DEPARTMENTS[int(rng.integers(len(_DEPARTMENTS)))],
            level=_LEVELS[int(rng.integers(len(_LEVELS)))],
        )
    else:
        profile = PublicProfile(role)
    private = PrivateProfile(e.name, id_number=_text(rng, 18), contact=_text(rng, 11))
    return register(
        e.identity,
        profile,
        private,
        ts,
        institution=None if institution is None else institution.identity,
        randbytes=_randbytes(rng),
    )


def _visit_content(
    rng: np.random.Generator, cfg: WorkloadConfig, visit_us: int, images: list[Attachment]
) -> bytes:
    """A FHIR R4B visit (Encounter + Observation with the findings), sized log-normally."""
    n = _lognormal_size(rng, cfg.content_median_bytes, cfg.content_sigma, 64, cfg.max_content_bytes)
    department = _DEPARTMENTS[int(rng.integers(len(_DEPARTMENTS)))]
    when = f"{np.datetime64(visit_us, 'us').astype('datetime64[s]')}Z"
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": {"start": when},
        "serviceType": {"text": department},
    }
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "clinical findings"},
        "effectiveDateTime": when,
        "valueString": "x" + _text(rng, max(1, n - _FHIR_OVERHEAD)).rstrip() + ".",
    }
    return build_visit([encounter, observation], images).encode()


def generate(config: WorkloadConfig | None = None, seed: int = 0) -> Workload:
    """Generate a workload; the same ``(config, seed)`` always gives the same bytes."""
    cfg = config or WorkloadConfig()
    rng = np.random.default_rng(seed)
    scheme = cfg.scheme

    n_validators = max(4, cfg.institutions)
    pooled: Iterator[SigningKey] | None = None
    if scheme is Scheme.RSA_PSS_3072:  # unseedable: take keys from the seeded pool
        n_keys = (
            n_validators
            + 1
            + cfg.institutions * (1 + cfg.staff_per_institution)
            + cfg.independent_workers
            + cfg.patients
        )
        pooled = iter(rsa_pool.assign(rng, n_keys))

    def signing_key() -> SigningKey:
        seed = rng.bytes(32)
        return SigningKey.generate(scheme, seed) if pooled is None else next(pooled)

    def ident() -> Identity:
        seed = rng.bytes(32)
        if pooled is None:
            return Identity.generate(scheme, seed)
        return Identity(next(pooled), EncryptionKey.generate(seed))

    validators = [signing_key() for _ in range(n_validators)]
    root_ca = signing_key()
    institutions = [
        Entity("institution", f"Hospital {i}", ident()) for i in range(cfg.institutions)
    ]
    staff = [
        Entity("staff", f"Dr. {h}-{j}", ident(), inst.key)
        for h, inst in enumerate(institutions)
        for j in range(cfg.staff_per_institution)
    ]
    workers = [Entity("worker", f"Licensed {k}", ident()) for k in range(cfg.independent_workers)]
    patients = [Entity("patient", f"Patient {p}", ident()) for p in range(cfg.patients)]
    wl = Workload(cfg, seed, validators, root_ca, institutions, staff, workers, patients)
    inst_by_key = {i.key: i for i in institutions}
    seal_rng: np.random.Generator | None = None
    if cfg.sealed_access:
        if not cfg.stealth_associations or scheme is not Scheme.ED25519:
            raise ValueError("sealed access needs stealth associations and Ed25519 keys")
        seal_rng = np.random.default_rng([seed, 0x5EA1])  # its own stream (module docstring)
        wl.access_key = EncryptionKey.generate(seal_rng.bytes(32))
        wl.pseudonym_ca = CertificateAuthority.create_root(
            random.Random(seal_rng.bytes(32)),
            "cn",
            not_before_us=cfg.start_us - MAX_LIFETIME_US,
            not_after_us=cfg.start_us + 50 * 365 * MAX_LIFETIME_US,
            path_length=0,
            name="pseudonym-ca",
        )

    t = cfg.start_us

    def tick() -> int:
        nonlocal t
        t += int(rng.exponential(cfg.mean_gap_us)) + 1
        return t

    txs = wl.transactions
    for e in [*institutions, *staff, *workers, *patients]:
        inst = None if e.institution is None else inst_by_key[e.institution]
        txs.append(_register(e, tick(), rng, inst))
    authors = staff + workers
    live: list[Transaction] = []  # current versions, candidates for update and delete
    found: dict[bytes, list[FoundAssociation]] = {p.key: [] for p in patients}
    for _ in range(cfg.visits):
        patient = patients[int(rng.integers(len(patients)))]
        author = authors[int(rng.integers(len(authors)))]
        inst_key = author.institution
        writer = Writer(
            author.identity.signing,
            None if inst_key is None else inst_by_key[inst_key].identity.signing,
        )
        if rng.random() < cfg.grant_probability:
            until = t + 86_400_000_000 * 180
            if seal_rng is not None:
                grant = _sealed_grant(wl, seal_rng, patient, author, found[patient.key], t,
                                      until, tick())  # fmt: skip
                rng.bytes(32)  # what the clear form's view box draws: keeps the visits aligned
            elif cfg.stealth_associations:
                grant = grant_view(
                    patient.identity,
                    author.identity.public,
                    found[patient.key],
                    t,
                    until,
                    tick(),
                    randbytes=_randbytes(rng),
                )
            else:
                content = codec.encode({"grantee": author.key, "from_us": t, "until_us": until})
                grant = Transaction.create(Kind.GRANT, content, tick(), [patient.identity.signing])
            txs.append(grant)
        if rng.random() < cfg.query_probability:
            condition = QueryCondition(owner=patient.key, from_us=cfg.start_us, until_us=t)
            if seal_rng is not None:
                assert wl.access_key is not None
                q = sealed_query(
                    condition,
                    tick(),
                    author.identity.signing,
                    access_public=wl.access_key.public,
                    randbytes=_randbytes(seal_rng),
                )
            else:
                q = crud.query(condition, tick(), author.identity.signing)
            txs.append(q)
            if cfg.audit_queries:
                validator = validators[len(txs) % len(validators)]
                txs.append(audit_record(q, patient.key, tick(), validator, wl.access_key))
        images = []
        if rng.random() < cfg.image_probability:
            size = _lognormal_size(
                rng, cfg.image_median_bytes, cfg.image_sigma, 1024, cfg.max_image_bytes
            )
            img_seed = int(rng.integers(1 << 62))
            modality = _MODALITIES[int(rng.integers(len(_MODALITIES)))]
            ref = ImageRef(sha256(_image_bytes(img_seed, size)), size, modality, img_seed)
            wl.images.append(ref)
            images.append(Attachment(ref.digest, _MEDIA_TYPES[modality], size, modality))
        record = crud.add(_visit_content(rng, cfg, t, images), tick(), writer)
        live.append(record)
        txs.append(record)
        ts = tick()
        if cfg.stealth_associations:
            assoc = associate(
                patient.identity.public, record.id, ts, writer, randbytes=_randbytes(rng)
            )
            mine = scan_one(patient.identity, assoc)
            assert mine is not None, "a fresh stealth association must open for its patient"
            found[patient.key].append(mine)
        else:
            content = paper_association(
                patient.identity.public, record.id, author.key, randbytes=_randbytes(rng)
            )
            assoc = writer.sign(Kind.ASSOCIATE, content, ts)
        txs.append(assoc)
        if live and rng.random() < cfg.update_probability:
            i = int(rng.integers(len(live)))
            new, link = crud.update(
                live[i].id, _visit_content(rng, cfg, t, []), tick(), writer, "amended findings"
            )
            live[i] = new
            txs += [new, link]
        if live and rng.random() < cfg.delete_probability:
            victim = live.pop(int(rng.integers(len(live))))
            txs.append(crud.delete(victim.id, tick(), writer))
    return wl


def _sealed_grant(
    wl: Workload,
    seal_rng: np.random.Generator,
    patient: Entity,
    author: Entity,
    found: list[FoundAssociation],
    from_us: int,
    until_us: int,
    ts: int,
) -> Transaction:
    """A grant signed by a fresh one-day pseudonym of ``patient`` (see :mod:`.records.sealed`)."""
    assert wl.access_key is not None and wl.pseudonym_ca is not None
    pseudonym = SigningKey.generate(Scheme.ED25519, seal_rng.bytes(32))
    enc = EncryptionKey.generate(seal_rng.bytes(32)).public
    link = PseudonymLink(patient.key, hash_identifier(patient.name))
    cert = certify_pseudonym(
        wl.pseudonym_ca, wl.access_key.public, link, pseudonym.public, enc, at_us=ts
    )
    return sealed_grant_view(
        patient.identity,
        author.identity.public,
        found,
        from_us,
        until_us,
        ts,
        access_public=wl.access_key.public,
        pseudonym=pseudonym,
        pseudonym_chain=[der(cert)],
        randbytes=_randbytes(seal_rng),
    )


def build_chain(
    workload: Workload,
    block_size: int = 16,
    *,
    primary: bytes | None = None,
    chain_id: str = "medical-chain",
) -> tuple[Genesis, list[Block]]:
    """Pack the workload's transactions, in order, into blocks of ``block_size`` IDs, each signed
    by the expected blocker (primary ``validators[0]`` unless given) and timestamped with its last
    transaction's time."""
    genesis = workload.genesis(chain_id)
    by_key = {v.public: v for v in workload.validators}
    p = primary if primary is not None else genesis.validators[0]
    blocks: list[Block] = []
    prev = genesis.id
    txs = workload.transactions
    for start in range(0, len(txs), block_size):
        chunk = txs[start : start + block_size]
        height = len(blocks) + 1
        blocker = by_key[expected_blocker(height, genesis.validators, p)]
        block = Block.make(height, prev, blocker, [tx.id for tx in chunk], chunk[-1].timestamp_us)
        blocks.append(block)
        prev = block.id
    return genesis, blocks
