"""``medbench demo referral``: PAPER.md §1.7 replayed on four simulated hospitals.

Theory of operation
-------------------
:func:`deploy` builds a Medical Chain consortium (:func:`medbench.medchain.make_consortium`,
four :class:`~medbench.medchain.MedicalChainNode` validators ``VA_0..VA_3``, one SQLite store
each in a private temporary directory) and runs it under the deterministic
:class:`medbench.sim.Simulator` on a ``city`` topology (each hospital's clients sit on its LAN).
Every node is wrapped in a :class:`Tap` that records what it sends (virtual time, ``src -> dst``,
kind, view, sequence, short digest), so the PBFT phases can be printed.

The steps of §1.7 are separate functions returning report lines (the notebook calls them one by
one): :func:`step1_entity` (P's ``register`` transaction, :mod:`medbench.records.entity`),
:func:`step2_query` (P's signed query through PBFT, its audit record, D's view of P's H_A records
found by her stealth associations), :func:`step3_save` (TX1 + TX2 signed by D and H_B, sent
together), :func:`step4_pbft` (the trace of their sequence number), :func:`step5_block` (the
ledger block made by blocker ``VA_1``); :func:`full_trace` lists every message sent, every ledger
transaction and every block of those steps. :func:`attacks` plays §1.7 item 6; every verdict line is
printed only after an ``assert``/:class:`AttackNotCaught` check of the real outcome, so the demo
fails loudly if a defence does not hold.

Two layers carry the walk-through: the *records* layer (:mod:`medbench.records`: sealed entity
fields, FHIR visit records with a pseudonymous subject, stealth associations only P can open)
and the *access/consensus* layer (the access requests the validators judge and PBFT orders).
The access requests travel sealed to the consortium access key (:mod:`medbench.access.envelope`)
and P signs hers under one-day pseudonyms (:mod:`medbench.pki.pseudonym`): the validators open
them and find P (the rules need her to find D's grant), while no transaction on chain shows P's
key in clear (checked after attack 2). The leak attacks are judged on the records-layer TX1/TX2,
whose content is what a leaked record body exposes.

Output is a pure function of the seed: no wall-clock times, no paths.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from medbench import codec, merkle
from medbench.access.request import AccessRequest, Operation, from_transaction_fields
from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft.byzantine import AlteringPrimary, BadVoter, Byzantine, DroppingPrimary
from medbench.consensus.pbft.messages import (
    Block,
    Checkpoint,
    Commit,
    Prepare,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
)
from medbench.crypto.identity import Identity
from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey
from medbench.ledger import FindingKind, Transaction
from medbench.ledger.errors import LedgerDecodeError
from medbench.medchain import Deployment, make_consortium, request_transaction
from medbench.medchain.blocks import BlockSignature
from medbench.node import Ready, Send
from medbench.records import (
    PSEUDONYMOUS_SUBJECT,
    PrivateProfile,
    PublicProfile,
    RecordBook,
    Role,
    VisitRecord,
    Writer,
    add,
    associate,
    build_visit,
    read_registration,
    scan,
)
from medbench.records import register as register_entity
from medbench.rotation import blocker_offset, expected_blocker
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


# --- the steps ---------------------------------------------------------------------------------


def setup(seed: int = 0) -> Run:
    """The consortium, P's earlier H_A visit (on chain) and P's grant to D; returns the run."""
    run = deploy(seed)
    run.facts["people"] = people(run.dep, seed)
    run.lines.append(
        f"four hospitals H_0..H_3 (H_A = H_{H_A}, H_B = H_{H_B}) on a 'city' topology; "
        f"validators VA_0..VA_3, primary VA_P = v mod 4 = VA_0 in view 0"
    )
    return run


def step1_entity(run: Run) -> list[str]:
    """P's entity transaction: ID number and name sealed, sex and age in clear, PUB_KEY_P."""
    pp = run.facts["people"]
    tx = register_entity(
        pp.patient,
        PublicProfile(Role.PATIENT, sex="female", age_band="30-39"),
        PrivateProfile("Li Wei", "330101199001011234"),
        T0,
        randbytes=pp.randbytes,
    )
    reg = read_registration(tx)
    check(
        b"Li Wei" not in tx.content and b"330101199001011234" not in tx.content,
        "name or ID number in clear",
    )
    check(reg.open_private(pp.patient).name == "Li Wei", "P cannot open her own fields")
    run.facts["entity"] = tx
    return [
        "STEP 1  P's entity transaction",
        f"  tx {short(tx.id)} kind={tx.kind.name.lower()} PUB_KEY_P={short(reg.key)}",
        f"  clear : role={reg.profile.role} sex={reg.profile.sex} age={reg.profile.age_band}",
        f"  sealed: {len(reg.sealed_private)} bytes (ID number and name, X25519-sealed to P);"
        " only P opens them",
    ]


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


def step2_query(run: Run) -> list[str]:
    """H_A's earlier visit, P's signed query (identity check, logged), D sees P's H_A records."""
    pp: People = run.facts["people"]
    dep, u = run.dep, run.dep.user_ids
    out = ["STEP 2  P's signed query; P's H_A records shown to D"]
    # history: P's visit at H_A (record + stealth association, signed by the doctor and H_A)
    at_a = Writer(pp.doc_a.signing, pp.h_a.signing)
    visit_a = add(_visit("hypertension", "38341003", "amlodipine 5 mg").encode(), T0 + 1, at_a)
    assoc_a = associate(pp.patient.public, visit_a.id, T0 + 1, at_a, randbytes=pp.randbytes)
    run.submit(u[0], _grant(run, H_A, T0 + 1), 0)
    run.settle()
    for i, content in enumerate((visit_a.to_wire(), assoc_a.to_wire())):
        tx = _access_tx(
            run,
            "A",
            Operation.ADD,
            T0 + 2 + i,
            category="visit" if i == 0 else "association",
            body={"content": content},
            countersign=True,
        )
        run.submit(u[0], tx, 0)
    run.settle()
    # P's query, signed under a one-day pseudonym of hers, sealed to the validators; every
    # validator opens it and checks the pseudonym's chain, P's own chain and the signature
    q = _access_tx(run, "P", Operation.READ, T0 + 10, body={"history": False})
    run.submit(u[1], q, 0)
    run.settle()
    node = dep.nodes[H_B]
    listed = {t for b in node.ledger.blocks() for t in b.tx_ids}
    audits = [a for a in node.access.state.audit if a.content["request"] == q.id]
    check(q.id in listed, "the query was not packed into a block")
    check(len(audits) == 1, "the query was not logged")
    p_key = dep.patients[H_A].public_key
    check(p_key not in q.to_wire() and p_key not in codec.encode(audits[0].content),
          "the query or its audit names P in clear")  # fmt: skip
    opened = _open(run, q)
    check(opened.requester == p_key and opened.signer != p_key, "the query is not P's pseudonym")
    out.append(
        f"  query {short(q.id)} signed by a one-day pseudonym {short(q.public_keys[0])} of P, "
        f"sealed to the validators: each opened it, checked the pseudonym's and P's PKI chains "
        f"and the signature, accepted; audit record on chain (P sealed), query ID in a block"
    )
    # the identity behind the pseudonym is the key of P's entity transaction: it is what she gets
    registered = [run.facts["entity"]]  # the enrolment's register transactions
    (entity,) = [t for t in registered if read_registration(t).key == opened.requester]
    out.append(
        f"  returned: P's entity transaction {short(entity.id)} (its key = the one the "
        "validators found behind the pseudonym)"
    )
    # P grants D read (on chain); D reads; P's associations lead to her H_A visit records
    run.submit(u[0], _grant(run, H_B, T0 + 20), 0)
    run.settle()
    r = _access_tx(run, "D", Operation.READ, T0 + 21, body={"history": False})
    run.submit(u[2], r, 0)
    run.settle()
    check([x[0] for x in run.results(u[2])] == ["accepted"], "D's read refused")
    bodies = [
        Transaction.from_wire(v.content)
        for v in node.access.state.records.current(dep.patients[H_A].public_key)
    ]
    book = RecordBook.for_patient(pp.patient, [entity, *bodies])
    found = [v.tx for v in book.current()]
    check([t.id for t in found] == [visit_a.id], "P's association did not lead to her H_A visit")
    for t in found:
        rec = VisitRecord.decode(t.content)
        cond = rec.of_type("Condition")[0]["code"]["text"]
        out.append(
            f"  D's read {short(r.id)} accepted (P's grant); P's association "
            f"{short(assoc_a.id)} -> H_A visit {short(t.id)} (signed by doctor A + H_A): "
            f"condition '{cond}' shown to D"
        )
    # PAPER.md's example has B = L mod (N - 1) = 1 for the block of TX1/TX2: P re-reads her
    # records (each read is a logged query, hence blocks) until the next block has that L
    extra = 0
    while blocker_offset(node.stored_height + 1, run.n) != 1 and extra < 6:
        extra += 1
        q2 = _access_tx(run, "P", Operation.READ, T0 + 22 + extra, body={"history": False})
        run.submit(u[1], q2, 0)
        run.settle()
    check(blocker_offset(node.stored_height + 1, run.n) == 1, "cannot align the rotation")
    out.append(
        f"  P re-read her records {extra} more time(s) (each query logged); chain length "
        f"now L = {node.stored_height + 1}"
    )
    return out


def step3_save(run: Run) -> list[str]:
    """D saves TX1 (add) and TX2 (association), both signed by D and H_B, sent together."""
    pp: People = run.facts["people"]
    at_b = Writer(pp.doc_d.signing, pp.h_b.signing)
    tx1 = add(_visit("pneumonia", "233604007", "amoxicillin 500 mg").encode(), T0 + 30, at_b)
    tx2 = associate(pp.patient.public, tx1.id, T0 + 30, at_b, randbytes=pp.randbytes)
    run.facts["tx1"], run.facts["tx2"] = tx1, tx2
    env = [
        _access_tx(
            run,
            "D",
            Operation.ADD,
            T0 + 30 + i,
            category=cat,
            body={"content": t.to_wire()},
            countersign=True,
        )
        for i, (cat, t) in enumerate((("diagnosis", tx1), ("association", tx2)))
    ]
    for tx in env:
        check(len(tx.public_keys) == 2 and len(tx.signatures) == 2, "not signed by D and H_B")
    run.facts["env"] = env
    start = len(run.trace)
    run.facts["trace_start"] = start
    u = run.dep.user_ids
    at = run.sim.now + 10_000
    run.submit(u[2], env[0], at)
    run.submit(u[3], env[1], at)
    check(run.settle(), "TX1/TX2 never completed")
    return [
        "STEP 3  D saves the diagnosis",
        f"  TX1 {short(tx1.id)} type=add keys=PUB_KEY_D {short(tx1.public_keys[0])} + "
        f"PUB_KEY_HB {short(tx1.public_keys[1])}, SIG_D + SIG_HB; "
        "content: condition + treatment plan (FHIR, pseudonymous subject)",
        f"  TX2 {short(tx2.id)} type=associate, same keys and signatures; "
        "content: stealth link to record ID = TX1",
        f"  TXM to the primary VA_0: TX1 in access request {short(env[0].id)}, TX2 in "
        f"{short(env[1].id)} (each signed by D and H_B); the ledger lists these IDs",
    ]


def _describe(run: Run, hop: Hop) -> str | None:
    m = hop.msg
    src, dst = run.name(hop.src), run.name(hop.dst)
    head = f"  t={hop.time_us:>9} us  {src:>4} -> {dst:<4}"
    if isinstance(m, Request):
        try:
            tx = f" tx={short(Transaction.from_wire(m.operation).id)}"
        except LedgerDecodeError:
            tx = ""
        return f"{head} REQUEST     client={run.name(m.client)} d={short(m.digest())}{tx}"
    if isinstance(m, PrePrepare):
        kinds = ",".join("block" if isinstance(i, Block) else "req" for i in m.batch)
        return f"{head} PRE-PREPARE v={m.view} n={m.sequence} d={short(m.batch_digest)} [{kinds}]"
    if isinstance(m, (Prepare, Commit)):
        k = "PREPARE    " if isinstance(m, Prepare) else "COMMIT     "
        return f"{head} {k} v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Reply):
        what = "refused" if m.refusal else codec.decode(m.result)[0]
        return f"{head} REPLY       v={m.view} {what}"
    if isinstance(m, Block):
        return (
            f"{head} BLOCK       v={m.view} h={m.height} blocker=VA_{m.blocker} ids={len(m.tx_ids)}"
        )
    return None


def _message_text(run: Run, m: Any) -> str:
    """One message in readable form (kind, view, sequence, short digests), for the full trace."""
    if isinstance(m, Request):
        try:
            t = Transaction.from_wire(m.operation)
            tx = f" tx={short(t.id)} {t.kind.name.lower()}"
        except LedgerDecodeError:
            tx = ""
        return f"REQUEST     client={run.name(m.client)} t={m.timestamp} d={short(m.digest())}{tx}"
    if isinstance(m, PrePrepare):
        items = " ".join(
            f"block(h={i.height})" if isinstance(i, Block) else f"req({short(i.digest())})"
            for i in m.batch
        )
        return f"PRE-PREPARE v={m.view} n={m.sequence} d={short(m.batch_digest)} [{items}]"
    if isinstance(m, Prepare):
        return f"PREPARE     v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Commit):
        return f"COMMIT      v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Reply):
        verdict = ["refused", m.refusal] if m.refusal else codec.decode(m.result)
        what = verdict[0] if isinstance(verdict, list) and verdict else verdict
        return f"REPLY       v={m.view} t={m.timestamp} to={run.name(m.client)} {what}"
    if isinstance(m, Block):
        ids = " ".join(short(t) for t in m.tx_ids)
        return (
            f"BLOCK       v={m.view} h={m.height} blocker=VA_{m.blocker} "
            f"prev={short(m.prev_id)} ids=[{ids}]"
        )
    if isinstance(m, Checkpoint):
        return f"CHECKPOINT  n={m.sequence} state={short(m.state_digest)}"
    if isinstance(m, BlockSignature):
        return f"BLOCK-SIG   block={short(m.block_id)} (the blocker's signature over the block ID)"
    if isinstance(m, ViewChange):
        return f"VIEW-CHANGE v={m.view} stable={m.stable_sequence} prepared={len(m.prepared)}"
    kind = getattr(getattr(m, "KIND", None), "name", type(m).__name__)
    fields = " ".join(
        f"{k}={getattr(m, k)}" for k in ("view", "sequence") if isinstance(getattr(m, k, None), int)
    )
    return f"{str(kind).upper():<11} {fields}".rstrip()


def full_trace(run: Run, end: int | None = None) -> list[str]:
    """Every message sent, every ledger transaction and every block of the walk-through.

    Messages come from the tap, in send order, one line per send (a broadcast lists all its
    destinations); transactions and blocks from VA_0's store, in chain order (every node stores
    the same chain: :func:`step5_block` checked it).
    """
    hops = run.trace[:end]
    out = [
        f"FULL TRACE  every message ({len(hops)} copies), transaction and block of steps 1-5",
        "  messages (time, sender -> receivers, content):",
    ]
    k = 0
    while k < len(hops):
        h = hops[k]
        dsts = [h.dst]
        k += 1
        while k < len(hops) and hops[k].msg is h.msg and hops[k].src == h.src:
            dsts.append(hops[k].dst)
            k += 1
        to = ",".join(run.name(d) for d in dsts)
        out.append(
            f"  t={h.time_us:>9} us  {run.name(h.src):>4} -> {to:<14} {_message_text(run, h.msg)}"
        )
    node = run.dep.nodes[0]
    validators = run.dep.genesis.validators
    stored = node.store.transactions
    blocks = node.ledger.blocks()
    out.append(f"  transactions on the ledger ({sum(len(b.tx_ids) for b in blocks)}, chain order):")
    for b in blocks:
        for tx_id in b.tx_ids:
            row = stored.get(tx_id)
            if row is None:
                out.append(f"  h={b.header.height} tx={short(tx_id)} (body not stored at VA_0)")
                continue
            tx = Transaction.from_wire(row.body)
            out.append(
                f"  h={b.header.height} tx={short(tx_id)} {tx.kind.name.lower():<9} "
                f"t={tx.timestamp_us} keys={len(tx.public_keys)} "
                f"signatures={sum(1 for s in tx.signatures if s)} content={len(tx.content)} B"
            )
    out.append(f"  blocks ({len(blocks)} above genesis):")
    for b in blocks:
        h = b.header
        who = validators.index(h.blocker) if h.blocker in validators else -1
        out.append(
            f"  h={h.height} id={short(b.id)} prev={short(h.previous_id)} blocker=VA_{who} "
            f"merkle_root={short(h.merkle_root)} t={h.timestamp_us} "
            f"ids=[{' '.join(short(t) for t in b.tx_ids)}]"
        )
    return out


def _phase(run: Run, seq: int, start: int) -> tuple[list[str], PrePrepare]:
    """The trace lines of sequence ``seq`` (pre-prepare, prepares, commits) after ``start``."""
    out = []
    pp = None
    for hop in run.trace[start:]:
        m = hop.msg
        if isinstance(m, (PrePrepare, Prepare, Commit)) and m.sequence == seq:
            if isinstance(m, PrePrepare):
                pp = m
            line = _describe(run, hop)
            if line:
                out.append(line)
    assert pp is not None
    return out, pp


def step4_pbft(run: Run) -> list[str]:
    """The PBFT trace of the sequence number that ordered TX1 and TX2."""
    start = run.facts["trace_start"]
    env = run.facts["env"]
    seq = None
    for hop in run.trace[start:]:
        m = hop.msg
        if isinstance(m, PrePrepare):
            ops = {i.operation for i in m.batch if isinstance(i, Request)}
            if env[0].to_wire() in ops:
                seq = m.sequence
                check(env[1].to_wire() in ops, "TX1 and TX2 in different pre-prepares")
                break
    check(seq is not None, "no pre-prepare carried TX1")
    assert seq is not None
    out = ["STEP 4  PBFT with 4 validators (VA_0 primary)"]
    for hop in run.trace[start:]:
        if isinstance(hop.msg, Request) and hop.msg.operation in (
            env[0].to_wire(),
            env[1].to_wire(),
        ):
            line = _describe(run, hop)
            if line:
                out.append(line)
    lines, pp = _phase(run, seq, start)
    out += lines
    hops = [h for h in run.trace[start:] if getattr(h.msg, "sequence", None) == seq]
    pre_to = sorted(h.dst for h in hops if isinstance(h.msg, PrePrepare))
    preparers = {h.src for h in hops if isinstance(h.msg, Prepare)}
    committers = {h.src for h in hops if isinstance(h.msg, Commit)}
    n_pre, n_prep, n_com = len(pre_to), len(preparers), len(committers)
    check(pre_to == [1, 2, 3] and preparers == {1, 2, 3}, "pre-prepare/prepares not as in PBFT")
    check(n_pre == 3 and n_prep == 3 and n_com == 4, "unexpected PBFT phases")
    results = {(r[0], r[1]) for c in run.dep.user_ids[2:] for r in run.results(c)}
    check({("accepted", e.id) for e in env} <= results, "TX1/TX2 not accepted")
    out.append(
        f"  pre-prepare to VA_1..VA_3; prepares from {n_prep} backups; commits from "
        f"{n_com} validators; TX1 and TX2 accepted (n={seq})"
    )
    run.facts["seq"] = seq
    run.facts["pp"] = pp
    return out


def step5_block(run: Run) -> list[str]:
    """The ledger block listing TX1 and TX2 (blocker VA_1 = VA_(0 + B) mod 4, B = 1)."""
    env = run.facts["env"]
    node = run.dep.nodes[0]
    block = next(b for b in node.ledger.blocks() if env[0].id in b.tx_ids)
    check(env[1].id in block.tx_ids, "TX2 not in TX1's block")
    validators = run.dep.genesis.validators
    blocker = validators.index(block.header.blocker)
    height = block.header.height
    check(blocker == 1, "the block was not made by VA_1")
    check(
        block.header.blocker == expected_blocker(height, validators, validators[0]),
        "the blocker does not follow the rotation",
    )
    check(merkle.root(list(block.tx_ids)) == block.header.merkle_root, "Merkle root mismatch")
    start = run.facts["trace_start"]
    out = ["STEP 5  the block"]
    for hop in run.trace[start:]:
        if isinstance(hop.msg, Block) and hop.msg.height == block.header.height:
            out.append(_describe(run, hop) or "")
            break
    seqs = sorted(
        {
            h.msg.sequence
            for h in run.trace[start:]
            if isinstance(h.msg, PrePrepare)
            and any(isinstance(i, Block) and i.height == block.header.height for i in h.msg.batch)
        }
    )
    check(len(seqs) == 1, "the block was not ordered exactly once")
    lines, _ = _phase(run, seqs[0], start)
    count = {
        k: sum(1 for x in lines if f" {k} " in x) for k in ("PRE-PREPARE", "PREPARE", "COMMIT")
    }
    check(count == {"PRE-PREPARE": 3, "PREPARE": 9, "COMMIT": 12}, "block not ordered by PBFT")
    out.append(
        f"  PBFT again for the block (n={seqs[0]}): {count['PRE-PREPARE']} PRE-PREPAREs, "
        f"{count['PREPARE']} PREPAREs, {count['COMMIT']} COMMITs"
    )
    h = block.header
    out += [
        f"  block height={h.height} id={short(block.id)} prev={short(h.previous_id)} "
        f"blocker=VA_{blocker} (L = {height}, B = L mod 3 = {blocker_offset(height, 4)}) "
        f"merkle_root={short(h.merkle_root)}",
        "  IDs: "
        + " ".join(
            short(t) + ("(TX1)" if t == env[0].id else "(TX2)" if t == env[1].id else "")
            for t in block.tx_ids
        ),
    ]
    chains = [[b.id for b in run.dep.nodes[i].ledger.blocks()] for i in range(4)]
    check(all(c == chains[0] for c in chains), "nodes disagree on the chain")
    for i in range(4):
        check(run.dep.nodes[i].verify(run.dep.signer_policy()).ok, f"VA_{i} chain does not verify")
    out.append(f"  all 4 nodes store the same {len(chains[0])} blocks; verify_chain ok on each")
    run.facts["block"] = block
    return out


# --- the attacks -------------------------------------------------------------------------------


def attack_tx1_leak(run: Run) -> str:
    """TX1 leaked: nothing in it ties it to P."""
    pp: People = run.facts["people"]
    tx1: Transaction = run.facts["tx1"]
    blob = tx1.to_wire()
    for key in (pp.patient.public.signing, pp.patient.public.encryption):
        check(key not in blob, "P's key appears in TX1")
    check(b"Li Wei" not in blob and b"330101" not in blob, "P's name or ID in TX1")
    subj = VisitRecord.decode(tx1.content).of_type("Condition")[0]["subject"]
    check(subj == PSEUDONYMOUS_SUBJECT, "TX1 names its subject")
    return (
        "TX1 leaked: holds no P key, name or ID (pseudonymous subject) -> not linkable to P; "
        "caught by records design (pseudonymous FHIR content)"
    )


def attack_tx2_leak(run: Run) -> str:
    """TX2 leaked: only P's private key opens the link to TX1."""
    pp: People = run.facts["people"]
    tx1, tx2 = run.facts["tx1"], run.facts["tx2"]
    check(
        tx1.id not in tx2.content and pp.patient.public.signing not in tx2.content,
        "TX2 shows its record or its patient",
    )
    for other in [pp.doc_d, pp.h_b, pp.doc_a, *pp.others]:
        check(list(scan(other, [tx2])) == [], "someone else opened TX2")
    (mine,) = list(scan(pp.patient, [tx2]))
    check(mine.record_id == tx1.id, "P cannot open TX2")
    return (
        f"TX2 leaked: {len(pp.others) + 3} other keys fail to open it, P's key yields TX1; "
        "caught by stealth association (X25519 + AES-GCM)"
    )


def attack_altered(run: Run) -> str:
    """A stored body altered on one node: verify_chain localises it, repair restores it."""
    env = run.facts["env"]
    victim = run.dep.nodes[2]
    tx = victim.ledger[env[0].id]
    # the stored body is a sealed access request: flip one bit inside its envelope
    fields = codec.decode(tx.content)
    box = fields["envelope"]
    fields["envelope"] = box[:64] + bytes([box[64] ^ 1]) + box[65:]
    forged = Transaction(
        tx.kind, codec.encode(fields), tx.timestamp_us, tx.public_keys, tx.signatures
    )
    check(forged.content != tx.content, "nothing altered")
    victim.store.tamper_transaction(env[0].id, forged.to_wire())
    report = victim.verify()
    (finding,) = report.findings
    check(
        finding.kind is FindingKind.BODY_ALTERED and finding.tx_id == env[0].id,
        "alteration not localised",
    )
    block = run.facts["block"]
    leaves = [forged.id if t == env[0].id else t for t in block.tx_ids]
    where = merkle.diff(list(block.tx_ids), leaves)
    check(list(where) == [block.tx_ids.index(env[0].id)], "merkle.diff did not localise")
    result = victim.repair([run.dep.nodes[i] for i in (0, 1, 3)])
    check(result.restored == (env[0].id,) and victim.verify().ok, "not repaired")
    return (
        f"record altered on VA_2 (TX1's stored body): recomputed ID {short(forged.id)} != "
        f"{short(env[0].id)}, "
        f"localised at block {finding.height} leaf {where[0]} (merkle.diff), restored from "
        "peers; caught by verify_chain"
    )


def attack_deleted(run: Run) -> str:
    """A stored body deleted on one node: found missing, fetched from peers, re-verified."""
    env = run.facts["env"]
    victim = run.dep.nodes[3]
    victim.store.delete_transaction(env[1].id)
    report = victim.verify()
    check(
        any(
            f.kind is FindingKind.TRANSACTION_MISSING and f.tx_id == env[1].id
            for f in report.findings
        ),
        "deletion not found",
    )
    result = victim.repair([run.dep.nodes[i] for i in (0, 1, 2)])
    check(env[1].id in result.restored and victim.verify().ok, "not restored")
    return (
        "record deleted on VA_3: body of TX2's request missing, fetched from peers and "
        "re-verified; caught by verify_chain + repair"
    )


def _serve(run: Run, honest: list[int], seed_k: int) -> None:
    dep, u = run.dep, run.dep.user_ids
    t = T0 + 100 * seed_k
    run.submit(u[0], _grant(run, H_B, t), 0)
    run.settle(limit_us=4 * US, extra_us=0)
    for j in range(2):
        tx = _access_tx(
            run,
            "D",
            Operation.ADD,
            t + 1 + j,
            category="diagnosis",
            body={"content": b"record %d" % j},
            countersign=True,
        )
        run.submit(u[1 + j], tx, 0)
    for _ in range(40):
        if run.settle(limit_us=2 * US, extra_us=0):
            break
    run.sim.run(run.sim.now + 2 * US)
    done = sum(len(run.results(c)) for c in u[:3])
    check(done == 3, f"only {done} of 3 requests completed")
    chains = [[b.id for b in dep.nodes[i].ledger.blocks()] for i in honest]
    check(len(chains[0]) >= 1 and all(c == chains[0] for c in chains), "honest chains differ")
    for i in honest:
        check(dep.nodes[i].verify(dep.signer_policy()).ok, f"VA_{i} does not verify")


def _view_changes(run: Run) -> int:
    return sum(1 for h in run.trace if isinstance(h.msg, ViewChange))


def attack_primary_drops(seed: int) -> str:
    """The primary ignores one client's requests: the client times out, the view changes."""
    run = deploy(seed + 1)
    try:
        victim = run.dep.user_ids[1]
        run.dep.nodes[0].core = DroppingPrimary(run.dep.nodes[0].replica, [victim])
        _serve(run, [1, 2, 3], 1)
        views = [run.dep.nodes[i].replica.view for i in (1, 2, 3)]
        check(min(views) >= 1, "no view change")
        retrans = run.dep.nodes[victim].retransmissions
        return (
            f"primary drops the request: client retransmitted to all, {_view_changes(run)} "
            f"VIEW-CHANGE messages, now view {min(views)}, request committed; caught by "
            f"client timeout -> view change (retransmissions={retrans})"
        )
    finally:
        run.close()


def attack_primary_alters(seed: int) -> str:
    """The primary alters a request: backups refuse it (bad signature), the view changes."""
    run = deploy(seed + 2, wrap={0: AlteringPrimary})
    try:
        _serve(run, [1, 2, 3], 2)
        refused = sum(
            run.dep.nodes[i].replica.rejections["request not authentic"] for i in (1, 2, 3)
        )
        check(refused >= 2, "backups accepted an altered request")
        check(all(run.dep.nodes[i].replica.view >= 1 for i in (1, 2, 3)), "no view change")
        return (
            f"primary alters the request: {refused} refusals 'request not authentic', view "
            "change, honest chains verify; caught by request signature check -> view change"
        )
    finally:
        run.close()


def attack_backup_drops(seed: int) -> str:
    """A backup sends nothing (f = 1): no effect."""
    run = deploy(seed + 3, wrap={3: DroppingBackup})
    try:
        _serve(run, [0, 1, 2], 3)
        check(all(run.dep.nodes[i].replica.view == 0 for i in (0, 1, 2)), "a view change")
        sent = sum(1 for h in run.trace if h.src == 3)
        check(sent == 0, "the dropping backup sent messages")
        return (
            "backup VA_3 drops every message: 0 sent, still view 0, all requests committed; "
            "caught by quorum 2f+1 = 3 (no effect while faulty <= f = 1)"
        )
    finally:
        run.close()


def attack_malformed_votes(seed: int) -> str:
    """A backup's PREPAREs/COMMITs with wrong v, n or digest are discarded."""
    counts = []
    for k, fld in enumerate(("view", "sequence", "digest")):
        run = deploy(seed + 4 + k, wrap={2: partial(BadVoter, field=fld)})
        try:
            _serve(run, [0, 1, 3], 4 + k)
            check(all(run.dep.nodes[i].replica.view == 0 for i in (0, 1, 3)), "view change")
            proposed = {
                (h.msg.view, h.msg.sequence, h.msg.batch_digest)
                for h in run.trace
                if isinstance(h.msg, PrePrepare)
            }
            bad = [
                (h.msg.view, h.msg.sequence, h.msg.batch_digest)
                for h in run.trace
                if h.src == 2 and isinstance(h.msg, (Prepare, Commit))
            ]
            check(bool(bad), "no malformed vote sent")
            # a vote counts only toward the (v, n, digest) it names: these match no proposal
            check(not proposed.intersection(bad), "a malformed vote matched a pre-prepare")
            counts.append(f"{fld}:{len(bad)}")
        finally:
            run.close()
    return (
        "backup VA_2 sends malformed PREPARE/COMMIT (wrong "
        + ", ".join(counts)
        + " votes): discarded, no view change, chains agree; caught by vote matching "
        "(v, n, digest) in the quorum tracker"
    )


def attacks(run: Run, seed: int) -> list[str]:
    """Every attack of §1.7 item 6, each line printed only after its check passed."""
    out = ["ATTACKS (PAPER.md §1.7 item 6)"]
    steps: list[Callable[[], str]] = [
        partial(attack_tx1_leak, run),
        partial(attack_tx2_leak, run),
        partial(attack_altered, run),
        partial(attack_deleted, run),
        partial(attack_primary_drops, seed),
        partial(attack_primary_alters, seed),
        partial(attack_backup_drops, seed),
        partial(attack_malformed_votes, seed),
    ]
    for k, fn in enumerate(steps, 1):
        out.append(f"  {k}. {fn()}")
        if k == 2:
            # the access requests that carried TX1/TX2 (and every other of steps 2-5) are
            # sealed: P's keys appear nowhere in clear on the chain, only inside boxes
            p = run.dep.patients[H_A]
            node = run.dep.nodes[H_B]
            bodies = [node.ledger[t].to_wire() for b in node.ledger.blocks() for t in b.tx_ids]
            named = [b for b in bodies if p.public_key in b or p.keys.encryption_public in b]
            check(not named, "an access transaction names P in clear")
            opened = _open(run, run.facts["env"][0])
            check(opened.patient == p.public_key, "the validators do not find P in the envelope")
            out.append(
                f"     note: the access envelopes carrying TX1/TX2 are sealed to the validators' "
                f"access key: P's keys appear in none of the {len(bodies)} transactions on "
                "chain; the validators open them and find P (the grant check needs her)"
            )
    return out


def run_demo(seed: int = 0, full: bool = False) -> list[str]:
    """The whole walk-through and the attacks, as report lines.

    ``full`` appends :func:`full_trace` (every message, transaction and block of steps 1-5).
    """
    run = setup(seed)
    try:
        lines = list(run.lines)
        for step in (step1_entity, step2_query, step3_save, step4_pbft, step5_block):
            lines += step(run)
        trace = full_trace(run) if full else []  # before the attacks add their own traffic
        lines += attacks(run, seed)
        lines += trace
    finally:
        run.close()
    return lines
