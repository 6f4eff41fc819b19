"""The Medical Chain world a runtime process rebuilds: users, genesis, node setup, client requests.

Theory of operation
-------------------
A real consortium enrols its users through the KMC and CA; this kit simulates that population
(:meth:`medbench.access.scenario.Consortium.create`: user CA tree, KMC, national authority,
policy; then one hospital, one doctor and one patient per member, exactly as
:func:`medbench.medchain.make_consortium` enrols them) from the consortium file's
``access_seed``, so every node process and every load generator rebuilds the same registered
identities, and load generators can sign as the users. What is *not* derived from a seed is what
makes the cluster a real one: each member's validator key (PBFT messages, ledger blocks) and
transport key are random and stay in that member's key files; the genesis lists the validator
keys from the consortium file.

:func:`node_setup` builds the :class:`~medbench.medchain.NodeSetup` of one member;
:class:`RequestFactory` builds signed, sealed medical transactions for a load generator: each
patient grants her hospital's doctor care access, then the doctor adds visit records
(countersigned by the hospital, sealed to the consortium access key) whose contents are the
FHIR visit records of the synthetic workload generator (:func:`medbench.workload.generate`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbench.access.clients import GranteeClient, Identity, PatientClient
from medbench.access.request import Operation
from medbench.access.scenario import GENESIS_US, Consortium
from medbench.access.state import ChainState
from medbench.consensus.pbft import Config, Keyring
from medbench.crypto.keys import Scheme, SigningKey
from medbench.hashing import sha256
from medbench.ledger.block import Genesis
from medbench.medchain.block_format import LedgerBlockFormat
from medbench.medchain.consortium import REGIONS
from medbench.medchain.node import NodeSetup
from medbench.medchain.validation import MAX_AGE_US, MAX_LEAD_US, AccessValidator
from medbench.medchain.validation import request_transaction as to_transaction
from medbench.pki.ca import der
from medbench.store.node_store import Synchronous

US = 1_000_000


@dataclass
class World:
    """The simulated users of one consortium (see the module docstring)."""

    seed: int
    world: Consortium
    hospitals: list[Identity]
    doctors: list[Identity]
    patients: list[Identity]

    @classmethod
    def build(cls, seed: int, n: int) -> World:
        """Enrol one hospital, doctor and patient per member, as ``make_consortium`` does."""
        world = Consortium.create(seed)
        at = GENESIS_US
        hospitals, doctors, patients = [], [], []
        for i in range(n):
            region = REGIONS[i % len(REGIONS)]
            inst = f"hospital-{i}"
            hospitals.append(world.enroll(inst, "institution", region, institution=inst, at_us=at))
            doctors.append(
                world.enroll(f"doctor-{i}", "doctor", region, institution=inst, at_us=at)
            )
            patients.append(world.enroll(f"patient-{i}", "patient", region, at_us=at))
        return cls(seed, world, hospitals, doctors, patients)

    def genesis(self, validators: list[bytes]) -> Genesis:
        """The chain's genesis: validator keys in replica order, this world's root CA."""
        return Genesis(
            f"medchain-{self.seed}",
            Scheme.ED25519,
            tuple(validators),
            sha256(der(self.world.root.cert)),
            GENESIS_US,
        )

    def make_access(self, genesis: Genesis) -> Any:
        """The ``make_access`` hook of a :class:`NodeSetup` (a fresh validator state per call)."""
        world = self.world
        idents = [world.national_authority, *self.hospitals, *self.doctors, *self.patients]
        chains = {ident.public_key: ident.chain for ident in idents}

        def make_access(fmt: LedgerBlockFormat) -> AccessValidator:
            state = ChainState(world.state.policy, world.state.anchors)
            for ident in idents:
                state.register(ident.chain, GENESIS_US)
            return AccessValidator(
                state, chains, genesis.validators, fmt, genesis.scheme, MAX_AGE_US, MAX_LEAD_US,
                (world.kmc.operator_public,), access_key=world.kmc.access_key(),
                require_sealed=True,
            )  # fmt: skip

        return make_access


def node_setup(
    world: World,
    node_id: int,
    config: Config,
    keyring: Keyring,
    validator_keys: list[bytes],
    key: SigningKey,
    store_path: Path,
    synchronous: Synchronous,
) -> NodeSetup:
    """The :class:`NodeSetup` of member ``node_id`` (its own validator key, real store)."""
    genesis = world.genesis(validator_keys)
    return NodeSetup(
        node_id, config, keyring, genesis, key, store_path, world.make_access(genesis),
        None, synchronous,
    )  # fmt: skip


def visit_contents(count: int, seed: int) -> list[bytes]:
    """FHIR visit-record contents from the synthetic workload generator (``count``, cycled)."""
    from medbench.workload import WorkloadConfig, generate

    try:
        wl = generate(WorkloadConfig(), seed)
        contents = [c for c in _add_contents(wl)]
    except Exception:  # pragma: no cover - the generator's optional FHIR layer is missing
        contents = []
    if not contents:
        rng = random.Random(seed)
        contents = [rng.randbytes(rng.randint(400, 2400)) for _ in range(64)]
    return [contents[i % len(contents)] for i in range(count)]


def _add_contents(wl: Any) -> Iterator[bytes]:
    from medbench import codec
    from medbench.ledger.transaction import Kind

    for tx in getattr(wl, "transactions", []):
        if tx.kind is Kind.ADD:
            try:
                content = codec.decode(tx.content)
            except Exception:
                continue
            body = content.get("body") if isinstance(content, dict) else None
            if isinstance(body, dict) and isinstance(body.get("content"), bytes):
                yield body["content"]
            elif isinstance(content, dict) and isinstance(content.get("content"), bytes):
                yield content["content"]


class RequestFactory:
    """Signed, sealed medical transactions for a load generator (see the module docstring)."""

    def __init__(self, world: World, seed: int) -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.patients = [
            PatientClient(p, None, self.rng, privacy=world.world.privacy)  # type: ignore[arg-type]
            for p in world.patients
        ]
        self.doctors = [
            GranteeClient(
                d,
                None,  # type: ignore[arg-type]
                self.rng,
                countersigner=h,
                privacy=world.world.privacy,
            )
            for d, h in zip(world.doctors, world.hospitals, strict=True)
        ]
        self.contents = visit_contents(256, seed)
        self.made = 0

    def grants(self, at_us: int) -> list[bytes]:
        """Each patient grants her hospital's doctor add/read access for a day (wire bytes)."""
        out = []
        for k, p in enumerate(self.patients):
            body = {
                "grantee": self.doctors[k].public_key,
                "ops": ["add", "read"],
                "categories": ["*"],
                "not_before_us": at_us - 60 * US,
                "not_after_us": at_us + 86_400 * US,
            }
            req = p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=at_us)
            out.append(to_transaction(req).to_wire())
        return out

    def record(self, at_us: int) -> bytes:
        """One doctor's visit record for their patient (round robin), countersigned, sealed."""
        k = self.made % len(self.doctors)
        content = self.contents[self.made % len(self.contents)]
        self.made += 1
        d = self.doctors[k]
        req = d.request(
            Operation.ADD,
            patient=self.patients[k].public_key,
            category="diagnosis",
            body={"content": content},
            at_us=at_us,
            countersign=True,
        )
        return to_transaction(req).to_wire()
