"""A deterministic Medical Chain deployment: genesis, n hospital nodes, their clients, users.

Theory of operation
-------------------
:func:`make_consortium` draws everything from ``seed``: the access world
(:meth:`medbench.access.scenario.Consortium.create`: CA tree, KMC, policy), one hospital
institution identity per node plus a doctor and a patient per hospital, each node's validator
:class:`~medbench.crypto.SigningKey` (the genesis lists them in replica order, so replica ``i``
is ``VA_i``), the PBFT keyrings (``auth``: signatures, MAC authenticators or modeled tags) and one
SQLite store per node under ``store_dir``. Node ids: replicas ``0..n-1``, the hospitals' own
clients ``n..2n-1`` (they submit the blacklist and audit records their node drafts), user clients
``2n..``.

Every node starts from the same registered identities (its own copy of the chain state), as if
the ``register`` transactions of the enrolment were the chain's first entries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.access.clients import AuthorityClient, GranteeClient, Identity, PatientClient
from medbench.access.scenario import GENESIS_US, Consortium
from medbench.access.state import ChainState
from medbench.consensus.pbft import BlockMode, Client, Config, Replica, Submit, make_keyrings
from medbench.crypto.keys import Scheme, SigningKey
from medbench.hashing import sha256
from medbench.ledger.block import Genesis
from medbench.ledger.transaction import SignerPolicy
from medbench.medchain.block_format import LedgerBlockFormat
from medbench.medchain.node import MedicalChainNode, NodeSetup
from medbench.medchain.validation import (
    MAX_AGE_US,
    MAX_LEAD_US,
    AccessValidator,
    draft_transaction,
)
from medbench.node import Ready
from medbench.pki.ca import der
from medbench.store.node_store import Synchronous

REGIONS = ("cn/zj/hz", "cn/zj/nb", "cn/gd/gz")


class HospitalClient:
    """The client on a hospital node: signs and submits the records its node drafted."""

    def __init__(self, client: Client, node: MedicalChainNode) -> None:
        self.client = client
        self.node = node  # replaced by the driver when the node restarts
        self.node_id = client.node_id

    def step(self, src: int, msg: Any) -> Ready:
        """Replies from the replicas."""
        return self.client.step(src, msg)

    def tick(self, now: int) -> Ready:
        """Submit drafted records (signed with the node's validator key), then tick."""
        ready = Ready()
        outbox = self.node.access.outbox
        while outbox:
            tx = draft_transaction(outbox.pop(0), self.node.setup.key)
            r = self.client.step(self.node_id, Submit(tx.to_wire()))
            ready.messages.extend(r.messages)
        r = self.client.tick(now)
        ready.messages.extend(r.messages)
        ready.completed.extend(r.completed)
        return ready

    @property
    def idle(self) -> bool:
        """No record waiting and no request outstanding."""
        return not self.node.access.outbox and self.client.idle


@dataclass
class Deployment:
    """What :func:`make_consortium` built."""

    genesis: Genesis
    config: Config
    setups: list[NodeSetup]
    nodes: dict[int, Any]
    world: Consortium
    hospitals: list[Identity]
    doctors: list[Identity]
    patients: list[Identity]
    user_ids: list[int]
    rng: random.Random
    keyrings: dict[int, Any] = field(default_factory=dict)

    def restart(self, i: int, now: int) -> MedicalChainNode:
        """Rebuild node ``i`` from its store (its hospital client follows)."""
        node = MedicalChainNode.restart(self.setups[i], now)
        self.nodes[i] = node
        self.nodes[self.config.n + i].node = node
        return node

    def signer_policy(self) -> SignerPolicy:
        """Who must countersign: each doctor's records need their hospital (docs/medical-chain.md
        §1.2)."""
        return SignerPolicy(
            {d.public_key: h.public_key for d, h in zip(self.doctors, self.hospitals, strict=True)}
        )

    def patient_client(self, k: int) -> PatientClient:
        """The request builder of patient ``k`` (its chain argument is unused here): sealed
        requests, each signed under a fresh pseudonym."""
        return PatientClient(self.patients[k], None, self.rng, privacy=self.world.privacy)  # type: ignore[arg-type]

    def authority_client(self) -> AuthorityClient:
        """The national health authority's request builder (the policy's root authority)."""
        return AuthorityClient(
            self.world.national_authority,
            None,  # type: ignore[arg-type]
            self.rng,
            privacy=self.world.privacy,
        )

    def client(self, ident: Identity, countersigner: Identity | None = None) -> GranteeClient:
        """A sealed request builder for any enrolled identity (pseudonymous if it is a service
        receiver), countersigned by ``countersigner`` when asked."""
        return GranteeClient(
            ident,
            None,  # type: ignore[arg-type]
            self.rng,
            countersigner=countersigner,
            privacy=self.world.privacy,
        )

    def kmc_key(self) -> SigningKey:
        """The key the KMC signs its emergency-release records with (replicas know it)."""
        return SigningKey.generate(Scheme.ED25519, seed=self.world.kmc.operator_seed)

    def doctor_client(self, k: int) -> GranteeClient:
        """Doctor ``k``'s request builder, countersigned by their hospital."""
        return GranteeClient(
            self.doctors[k],
            None,  # type: ignore[arg-type]
            self.rng,
            countersigner=self.hospitals[k],
            privacy=self.world.privacy,
        )


def make_consortium(
    n: int,
    seed: int,
    store_dir: str | Path,
    *,
    scheme: str = "ed25519",  # the genesis scheme (one per chain)
    auth: str = "signatures",
    block_mode: str = "blocker",
    users: int = 4,
    wrap: dict[int, Callable[[Replica], Any]] | None = None,
    synchronous: Synchronous = "FULL",
    max_age_us: int = MAX_AGE_US,
    max_lead_us: int = MAX_LEAD_US,
    enroll: Callable[[Consortium], Sequence[Identity]] | None = None,
    require_sealed: bool = True,
    **config: Any,
) -> Deployment:
    """Build genesis, ``n`` nodes with stores under ``store_dir``, hospital and user clients.

    ``max_age_us`` / ``max_lead_us`` bound a transaction's timestamp against the chain's and the
    replicas' clocks (:mod:`medbench.medchain.validation`); ``enroll(world)`` may issue more
    identities, registered on every node at genesis like the hospitals' (tests, experiments);
    every node holds the KMC's consortium access key and, with ``require_sealed``, refuses
    requests in clear (:mod:`medbench.medchain.validation`, *Sealed requests*); the rest of
    ``config`` is PBFT's.
    """
    if Scheme(scheme) is not Scheme.ED25519:
        # verify_chain checks every signature of a chain under its genesis scheme, and the
        # access layer's identities (KMC keys, X.509 certificates) are Ed25519
        raise ValueError("Medical Chain users sign with Ed25519: the chain's scheme must be too")
    world = Consortium.create(seed)
    at = GENESIS_US
    hospitals, doctors, patients = [], [], []
    for i in range(n):
        region = REGIONS[i % len(REGIONS)]
        inst = f"hospital-{i}"
        hospitals.append(world.enroll(inst, "institution", region, institution=inst, at_us=at))
        doctors.append(world.enroll(f"doctor-{i}", "doctor", region, institution=inst, at_us=at))
        patients.append(world.enroll(f"patient-{i}", "patient", region, at_us=at))
    rng = random.Random(seed)
    keys = [
        SigningKey.generate(Scheme(scheme), seed=sha256(b"va|%d|%d" % (seed, i))) for i in range(n)
    ]
    genesis = Genesis(
        f"medchain-{seed}", Scheme(scheme), tuple(k.public for k in keys),
        sha256(der(world.root.cert)), at,
    )  # fmt: skip
    cfg = Config(n=n, block_mode=BlockMode(block_mode), **config)
    user_ids = list(range(2 * n, 2 * n + users))
    keyrings = make_keyrings(auth, n, range(2 * n + users), seed=b"medchain-%d" % seed)
    extra = list(enroll(world)) if enroll is not None else []
    idents = [world.national_authority, *hospitals, *doctors, *patients, *extra]
    chains = {ident.public_key: ident.chain for ident in idents}

    def make_access(fmt: LedgerBlockFormat) -> AccessValidator:
        state = ChainState(world.state.policy, world.state.anchors)
        for ident in idents:
            state.register(ident.chain, at)
        return AccessValidator(
            state, chains, genesis.validators, fmt, genesis.scheme, max_age_us, max_lead_us,
            (world.kmc.operator_public,), access_key=world.kmc.access_key(),
            require_sealed=require_sealed,
        )  # fmt: skip

    store = Path(store_dir)
    store.mkdir(parents=True, exist_ok=True)
    setups = [
        NodeSetup(i, cfg, keyrings[i], genesis, keys[i], store / f"node-{i}.sqlite", make_access,
                  (wrap or {}).get(i), synchronous)
        for i in range(n)
    ]  # fmt: skip
    nodes: dict[int, Any] = {i: MedicalChainNode(s) for i, s in enumerate(setups)}
    for i in range(n):
        nodes[n + i] = HospitalClient(Client(n + i, n, keyrings[n + i]), nodes[i])
    for c in user_ids:
        nodes[c] = Client(c, n, keyrings[c])
    return Deployment(
        genesis, cfg, setups, nodes, world, hospitals, doctors, patients, user_ids, rng, keyrings
    )
