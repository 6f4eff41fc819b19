"""The referral demo's deployment: four simulated hospitals whose every message is traced.

:func:`deploy` builds a Medical Chain consortium (:func:`medbench.medchain.make_consortium`, four
:class:`~medbench.medchain.MedicalChainNode` validators ``VA_0..VA_3``, one SQLite store each in a
private temporary directory) and runs it under the deterministic :class:`medbench.sim.Simulator`
on a ``city`` topology (each hospital's clients sit on its LAN). Every node is wrapped in a
:class:`Tap` that records what it sends (virtual time, ``src -> dst``, kind, view, sequence, short
digest), so the PBFT phases can be printed. :func:`people` gives the records-layer actors (P, D,
the hospitals) their identities.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench import codec
from medbench.access.request import AccessRequest, Operation, from_transaction_fields
from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft.byzantine import Byzantine
from medbench.crypto.identity import Identity
from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey
from medbench.ledger import Transaction
from medbench.medchain import Deployment, make_consortium, request_transaction
from medbench.node import Ready, Send
from medbench.records import (
    PSEUDONYMOUS_SUBJECT,
    VisitRecord,
    build_visit,
)
from medbench.sim import Simulator
from medbench.sim import topology as topo

US = 1_000_000
CONFIG: dict[str, Any] = {
    "block_size": 8,
    "block_interval_us": 50_000,
    "checkpoint_interval": 4,
    "log_window": 16,
    "max_batch_delay_us": 5_000,  # lets the primary put TX1 and TX2 in one PRE-PREPARE
}
H_A, H_B = 0, 1  # hospitals (and their validators VA_0, VA_1)
T0 = GENESIS_US + 10 * US


class DemoCheckFailed(AssertionError):
    """A step did not happen as §1.7 says, or an attack was not caught: the demo stops (it
    never prints a line its checks did not establish)."""


def check(ok: bool, what: str) -> None:
    """Raise :class:`DemoCheckFailed` unless ``ok``."""
    if not ok:
        raise DemoCheckFailed(what)


def short(b: bytes) -> str:
    """The first 4 bytes of an ID or digest in hex."""
    return b[:4].hex()


# --- the traced driver ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    """One message copy sent: virtual time, source, destination and the message."""

    time_us: int
    src: int
    dst: int
    msg: Any


class Tap:
    """A node wrapper recording every message its node sends (for the PBFT trace)."""

    def __init__(self, node: Any, log: list[Hop], clock: Callable[[], int]) -> None:
        self.node = node
        self.node_id = node.node_id
        self.log = log
        self.clock = clock

    def _record(self, ready: Ready, now: int) -> Ready:
        for send in ready.messages:
            for dst in send.dsts:
                if dst != self.node_id:
                    self.log.append(Hop(now, self.node_id, dst, send.msg))
        return ready

    def step(self, src: int, msg: Any) -> Ready:
        """Forward to the node, record its sends at the arrival instant."""
        return self._record(self.node.step(src, msg), self.clock())

    def tick(self, now: int) -> Ready:
        """Forward the tick, record its sends."""
        return self._record(self.node.tick(now), now)


class DroppingBackup(Byzantine):
    """A backup that receives everything and sends nothing (a message-dropping validator)."""

    def outgoing(self, send: Send) -> list[Send]:
        """Drop every message."""
        return []


@dataclass
class Run:
    """A deployment under the simulator, with its trace and the demo's named actors."""

    dep: Deployment
    sim: Simulator
    trace: list[Hop]
    tmp: tempfile.TemporaryDirectory[str]
    lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of validators."""
        return self.dep.config.n

    def name(self, i: int) -> str:
        """``VA_i`` for a validator, ``HC_i`` for a hospital client, ``U_k`` for a user client."""
        n = self.n
        if i < n:
            return f"VA_{i}"
        if i < 2 * n:
            return f"HC_{i - n}"
        return f"U_{i - 2 * n}"

    def submit(self, client: int, tx: Transaction, at_us: int) -> None:
        """The user client ``client`` submits ``tx`` at simulated time ``at_us``."""
        from medbench.consensus.pbft import Submit

        self.sim.schedule_input(max(at_us, self.sim.now), client, Submit(tx.to_wire()))

    def settle(self, limit_us: int = 20 * US, extra_us: int = 300_000) -> bool:
        """Run until every client is idle (bounded), then ``extra_us`` more (blocks, audits)."""
        end = self.sim.now + limit_us
        while self.sim.now < end:
            self.sim.run(self.sim.now + 50_000)
            if all(self.dep.nodes[c].idle for c in range(self.n, len(self.dep.nodes))):
                break
        self.sim.run(self.sim.now + extra_us)
        return all(self.dep.nodes[c].idle for c in range(self.n, len(self.dep.nodes)))

    def results(self, client: int) -> list[list[Any]]:
        """Decoded results of every request ``client`` completed."""
        out = []
        for c in self.sim.record.completed:
            if isinstance(c, tuple) and c[0] == client:
                out.append(c[1])
        return out

    def close(self) -> None:
        """Close the stores and remove the temporary directory."""
        for i in range(self.n):
            self.dep.nodes[i].close()
        self.tmp.cleanup()


def deploy(seed: int, wrap: dict[int, Callable[[Any], Any]] | None = None) -> Run:
    """Four hospitals on a city topology under the simulator, every node tapped."""
    tmp = tempfile.TemporaryDirectory(prefix="medbench-demo-")
    dep = make_consortium(4, seed, Path(tmp.name), users=4, wrap=wrap, **CONFIG)
    n = dep.config.n
    trace: list[Hop] = []
    rng = random.Random(seed)
    total = len(dep.nodes)
    sites = [i % n for i in range(total)]  # clients share their hospital's LAN
    topology = topo.city(n, rng).for_nodes(sites)
    holder: list[Simulator] = []
    nodes = [Tap(dep.nodes[i], trace, lambda: holder[0].now) for i in range(total)]
    sim = Simulator(
        nodes, topology, rng=rng, tick_us=10_000, replicas=range(n), completion_key=_completion
    )
    holder.append(sim)
    return Run(dep, sim, trace, tmp)


def _completion(item: Any) -> Any:
    """Completed client requests keyed by (client, decoded result, timestamp)."""
    result = getattr(item, "result", None)
    if result is None:
        return repr(item)
    if item.refusal:  # refused before ordering: f+1 matching typed refusals
        return (item.client, ("refused", item.refusal), item.timestamp)
    return (item.client, tuple(codec.decode(result)), item.timestamp)


# --- the records-layer actors ---------------------------------------------------------------------


@dataclass
class People:
    """Records-layer identities of P, the H_A doctor, D and the two hospitals."""

    patient: Identity
    doc_a: Identity
    doc_d: Identity
    h_a: Identity
    h_b: Identity
    others: list[Identity]
    rand: random.Random

    def randbytes(self, k: int) -> bytes:
        """Seeded randomness for sealing."""
        return self.rand.randbytes(k)


def records_identity(ident: Any) -> Identity:
    """The records-layer :class:`~medbench.crypto.identity.Identity` of an access identity
    (same Ed25519 signing key, same X25519 key: PUB_KEY_P is one key in both layers)."""
    keys = ident.keys
    return Identity(
        SigningKey.generate(Scheme.ED25519, keys.signing.private_bytes_raw()),
        EncryptionKey.from_raw(keys.encryption.private_bytes_raw()),
    )


def people(dep: Deployment, seed: int) -> People:
    """P = patient of H_A, doctor A at H_A, D at H_B, the hospitals and everybody else."""
    ids = [records_identity(x) for x in (*dep.patients, *dep.doctors, *dep.hospitals)]
    n = dep.config.n
    pat, doc, hos = ids[:n], ids[n : 2 * n], ids[2 * n :]
    named = (pat[H_A], doc[H_A], doc[H_B], hos[H_A], hos[H_B])
    others = [x for x in ids if all(x is not y for y in named)]
    return People(
        pat[H_A], doc[H_A], doc[H_B], hos[H_A], hos[H_B], others, random.Random(seed + 17)
    )


def _visit(text: str, code: str, plan: str) -> VisitRecord:
    return build_visit(
        [
            {
                "resourceType": "Condition",
                "subject": PSEUDONYMOUS_SUBJECT,
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": code}],
                    "text": text,
                },
                "recordedDate": "2019-03-01",
            },
            {
                "resourceType": "MedicationRequest",  # the treatment plan
                "status": "active",
                "intent": "order",
                "subject": PSEUDONYMOUS_SUBJECT,
                "medicationCodeableConcept": {"text": plan},
            },
        ]
    )


def _access_tx(run: Run, who: str, op: Operation, at_us: int, **kw: Any) -> Transaction:
    dep = run.dep
    client = (
        dep.patient_client(H_A) if who == "P" else dep.doctor_client(H_B if who == "D" else H_A)
    )
    req = client.request(op, patient=dep.patients[H_A].public_key, at_us=at_us, **kw)
    return request_transaction(req)


def _open(run: Run, tx: Transaction) -> AccessRequest:
    """An access transaction as the validators read it (they hold the consortium access key)."""
    node = run.dep.nodes[H_B].access
    chains = [node.chains.get(k, ()) for k in tx.public_keys]
    return from_transaction_fields(
        tx.kind, tx.content, tx.timestamp_us, tx.public_keys, tx.signatures, chains,
        access_key=run.dep.world.access_key,
    )  # fmt: skip


def _grant(run: Run, grantee_doctor: int, at_us: int) -> Transaction:
    body = {
        "grantee": run.dep.doctors[grantee_doctor].public_key,
        "ops": ["add", "read"],
        "categories": ["*"],
        "not_before_us": at_us,
        "not_after_us": at_us + 3600 * US,
    }
    return _access_tx(run, "P", Operation.GRANT, at_us, body=body)
