"""The adversary's randomized fault schedules against real Medical Chain nodes (issue 13).

A seed builds a four-node consortium (SQLite stores, the access validator, ledger blocks signed
by the rotating blocker; modeled, MAC or signature authentication; blocker mode in three seeds of
four) and draws, like ``tests/pbft/schedules.py``:

* one faulty node (f = 1) in 80 % of the seeds: a classic wrapper, a lying blocker (an hour ahead,
  an hour back, wrong height or predecessor, a transaction never executed or already in a block,
  an empty block), a NEW-VIEW chooser, a reply or state-transfer liar, a lone colluding
  equivocator, or **a node whose store fails**: it crashes and restarts from its SQLite file
  after a bit flipped in a consensus-log record (``bitrot``, the row digest left as it was), one
  executed batch rewritten with its row digest recomputed (``rewrite``), or the whole file rolled
  back to an earlier snapshot (``rollback``). The safe outcomes: the node refuses the record or
  refuses to start; never a silent divergence;
* a forger on the network in 30 % of the seeds: unauthenticated BLOCKs in a replica's name with
  timestamps near 2^63, far heights and junk contents, signature answers for blocks nobody made,
  requests with extreme timestamps (an honest node must never raise on them);
* a lying user in 30 % of the seeds, replaying its old requests to every node;
* link drops and duplication, crash-recover cycles of honest nodes (from their stores). Links
  stay FIFO here: a blocker's BlockSignature travels ahead of its BLOCK on the same link
  (:mod:`medbench.medchain.node`), and reordering would only delay blocks by a view-change
  timeout each (the node holds a BLOCK until its signature comes); the bare replica's schedules
  reorder.

The workload is valid: two care sessions (grant, countersigned records, a read) and the records
the nodes draft themselves. Verdicts: safety as for the bare replica (votes, commits, executed
contents) plus the SQLite ledgers of honest and store-faulted nodes agree on their common
prefix, verify, and never date a block ahead of the clock or before its predecessor; liveness:
every user request completes **accepted** once the network healed (a valid request refused, e.g.
as stale behind a block dated in the future, is a liveness failure: the chain froze), judged
under continued traffic (:func:`run_with_traffic`) as PBFT guarantees it; agreement: honest
nodes end with the same stored chain.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medchain_helpers import care_session, network
from pbft_harness import Network, safety_violations
from schedules import CLASSIC
from verdicts import AgreementViolation, LivenessViolation, SafetyViolation, raise_if

from medbench import codec
from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft import adversary as lies
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft import decode_record, encode_record
from medbench.consensus.pbft.log import ExecutedBatch
from medbench.consensus.pbft.messages import Block as BlockMessage
from medbench.consensus.pbft.messages import MessageError, Request
from medbench.hashing import sha256
from medbench.medchain import BlockSignature, Deployment, SignatureWanted, make_consortium

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16,
        "view_change_timeout_us": 200_000, "max_view_change_timeout_us": 3_200_000,
        "fetch_timeout_us": 100_000}  # fmt: skip
STORE_FAULTS = ("bitrot", "rewrite", "rollback")
MED_CLASSIC = tuple(
    k for k in CLASSIC if k not in ("rewinding-clock", "late-equivocating", "forged-digest")
)
MAX_U63 = 2**63 - 1


@dataclass
class MedDraw:
    """One seed's decisions (see the module docstring)."""

    seed: int
    auth: str
    mode: str
    faulty: dict[int, str]
    forger: bool
    liar: bool
    drop: float
    dup: float
    phase: int
    crashes: list[tuple[int, int, int]]  # (at, replica, downtime) of honest nodes
    store_at: int
    snapshot_at: int


def draw(seed: int) -> MedDraw:
    """The fault mix of ``seed``."""
    rng = random.Random(seed)
    auth = rng.choice(("modeled", "macs", "signatures"))
    mode = rng.choice(("blocker", "blocker", "blocker", "integrated"))
    faulty: dict[int, str] = {}
    if rng.random() < 0.8:
        cat = rng.choice(("classic", "blocker", "blocker", "new-view", "reply", "state",
                          "colluding", "store", "store"))  # fmt: skip
        if cat == "blocker" and mode != "blocker":
            cat = "classic"
        if cat == "classic":
            kind = rng.choice(MED_CLASSIC)
        elif cat == "blocker":
            kind = "blocker:" + rng.choice(lies.BLOCK_LIES)
        elif cat == "new-view":
            kind = "new-view:" + rng.choice(lies.NEW_VIEW_STRATEGIES)
        elif cat == "reply":
            kind = "reply:" + rng.choice(("result", "refusal", "view"))
        elif cat == "state":
            kind = "state:" + rng.choice(lies.STATE_LIES)
        elif cat == "store":
            kind = "store:" + rng.choice(STORE_FAULTS)
        else:
            kind = "colluding"
        primary_first = ("silent", "dropping", "altering", "equivocating", "future-clock",
                         "colluding")  # fmt: skip
        want = 0 if kind in primary_first else 1 if kind.startswith("new-view") else None
        faulty[want if want is not None and rng.random() < 0.6 else rng.randrange(4)] = kind
    phase = rng.randint(300_000, 1_500_000)
    honest = [r for r in range(4) if r not in faulty]
    crashes = [
        (rng.randint(0, phase), rng.choice(honest), rng.randint(20_000, 400_000))
        for _ in range(rng.choice((0, 0, 1, 2)))
    ]
    return MedDraw(
        seed, auth, mode, faulty, rng.random() < 0.3, rng.random() < 0.3,
        rng.choice((0.0, 0.0, 0.02, 0.05)), rng.choice((0.0, 0.05, 0.2)), phase, crashes,
        rng.randint(phase // 3, phase), rng.randint(50_000, phase // 3),
    )  # fmt: skip


@dataclass
class MedSchedule:
    """One seed's deployment and who is what in it."""

    draw: MedDraw
    dep: Deployment
    net: Network
    honest: list[int]
    suspects: list[int]
    users: list[int]
    sent: dict[int, list[bytes]] = field(default_factory=dict)  # user -> ops, by timestamp
    refused_to_start: set[int] = field(default_factory=set)
    snapshot: Path | None = None
    background: int | None = None  # an honest user that keeps traffic going once healed

    @property
    def label(self) -> str:
        return f"medchain seed {self.draw.seed}"


def _wrap(sched: MedSchedule, r: int, kind: str) -> None:
    dep = sched.dep
    node = dep.nodes[r]
    inner = node.replica
    name, _, arg = kind.partition(":")
    w: Any
    if kind == "silent":
        w = faults.SilentPrimary(inner)
    elif kind == "dropping":
        w = faults.DroppingPrimary(inner, sched.users[:1])
    elif kind == "altering":
        w = faults.AlteringPrimary(inner)
    elif kind == "equivocating":
        w = faults.EquivocatingPrimary(inner)
    elif kind.startswith("bad-"):
        w = faults.BadVoter(inner, kind[4:])
    elif kind == "replayer":
        w = faults.Replayer(inner)
    elif kind == "future-clock":
        w = faults.SkewedClockPrimary(inner, 60_000_000)
    elif kind == "black-hole":
        sched.net.black_holes.add(r)
        return
    elif kind == "colluding":
        w = lies.ColludingEquivocator(inner, lies.Coalition([r], dep.keyrings, 4))
    elif name == "blocker":
        w = lies.LyingBlocker(inner, arg)
    elif name == "new-view":
        w = lies.NewViewChooser(inner, arg)
    elif name == "reply":
        w = lies.ReplyLiar(inner, arg)
    elif name == "state":
        w = lies.StateLiar(inner, arg)
    else:
        raise AssertionError(kind)
    node.core = w


def build(d: MedDraw, store_dir: Path) -> MedSchedule:
    """The deployment of draw ``d`` under ``store_dir``."""
    dep = make_consortium(
        n=4, seed=d.seed, store_dir=store_dir, auth=d.auth, block_mode=d.mode,
        synchronous="NORMAL", **FAST,
    )  # fmt: skip
    net = network(dep, seed=d.seed)
    users = dep.user_ids[:2]
    suspects = [r for r, k in d.faulty.items() if k.startswith("store:")]
    net.amnesiac.update(suspects)  # a store rolled back may commit a sequence again
    background = dep.user_ids[3]
    # the honest nodes' hospital clients (the records they draft) and the honest users
    net.client_ids = [*(4 + r for r in range(4) if r not in d.faulty), *users, background]
    honest = [r for r in range(4) if r not in d.faulty]
    sched = MedSchedule(d, dep, net, honest, suspects, users, background=background)
    for r, kind in d.faulty.items():
        if not kind.startswith("store:"):
            _wrap(sched, r, kind)
    if d.liar:
        liar = dep.user_ids[2]
        dep.nodes[liar] = lies.LyingClient(liar, 4, dep.keyrings[liar], "replay", seed=d.seed)
        net.nodes = dep.nodes
    return sched


# --- faults --------------------------------------------------------------------------------------


def _forge(sched: MedSchedule, rng: random.Random) -> None:
    """One hostile, unauthenticated message to every node (the forger)."""
    net = sched.net
    pick = rng.randrange(5)
    if pick == 0:
        view, height = rng.choice((0, MAX_U63)), rng.choice((1, 2, MAX_U63))
        msg: Any = BlockMessage(view, height, bytes(32), 1, (sha256(b"x"),), MAX_U63 - 1)
        src = 1
    elif pick == 1:
        msg = BlockMessage(0, 1, sha256(b"p"), 2, (), rng.choice((0, MAX_U63)))
        src = 2
    elif pick == 2:
        msg = BlockSignature(sha256(b"nobody's block %d" % rng.randrange(9)), bytes(64))
        src = rng.randrange(4)
    elif pick == 3:
        msg = SignatureWanted(sha256(b"w"))
        src = rng.randrange(4)
    else:
        msg = Request(sched.users[0], MAX_U63, b"\x00" * rng.randrange(40))
        src = sched.users[0]
    for dst in range(4):
        if dst not in net.crashed:
            net.deliver_now(src, dst, msg)


def _db(sched: MedSchedule, r: int) -> Path:
    return Path(sched.dep.setups[r].store_path)


def _snapshot(sched: MedSchedule, r: int, dest: Path) -> None:
    src = sqlite3.connect(_db(sched, r))
    out = sqlite3.connect(dest)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()


def _tamper(sched: MedSchedule, r: int, fault: str, rng: random.Random) -> None:
    """What a failing disk does to node ``r``'s (closed) SQLite file."""
    path = _db(sched, r)
    if fault == "rollback":
        assert sched.snapshot is not None
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            extra.unlink(missing_ok=True)
        shutil.copyfile(sched.snapshot, path)
        return
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT idx, record FROM consensus_log ORDER BY idx").fetchall()
        if fault == "bitrot" and rows:
            idx, data = rows[rng.randrange(max(0, len(rows) - 40), len(rows))]
            data = bytearray(data)
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            conn.execute("UPDATE consensus_log SET record = ? WHERE idx = ?", (bytes(data), idx))
        elif fault == "rewrite":
            batches = []
            for idx, data in rows:
                try:
                    rec = decode_record(data)
                except MessageError:
                    continue
                if isinstance(rec, ExecutedBatch) and rec.items:
                    batches.append((idx, rec))
            if batches:
                idx, b = rng.choice(batches)
                bad = ExecutedBatch(b.sequence, b.timestamp, b.batch_digest, b.items[:-1], (), (),
                                    b.state_digest)  # fmt: skip
                data = encode_record(bad)
                conn.execute(
                    "UPDATE consensus_log SET record = ?, digest = ? WHERE idx = ?",
                    (data, sha256(data), idx),
                )
        conn.commit()
    finally:
        conn.close()


def submit(sched: MedSchedule, user: int, op: bytes) -> None:
    """An honest user submits ``op`` (its n-th submission gets client timestamp n)."""
    sched.sent.setdefault(user, []).append(op)
    sched.net.submit(user, op)


def _crash(sched: MedSchedule, r: int) -> None:
    sched.net.crash(r)
    sched.dep.nodes[r].close()


def _restart(sched: MedSchedule, r: int) -> None:
    net = sched.net
    try:
        node = sched.dep.restart(r, net.now)
    except Exception:
        if r not in sched.suspects:
            raise
        sched.refused_to_start.add(r)  # refusing to start on a corrupt store: a safe outcome
        return
    net.crashed.discard(r)
    net._apply(r, node.first)


# --- running and judging -------------------------------------------------------------------------


def run(sched: MedSchedule, scratch: Path) -> MedSchedule:
    """The fault phase, then heal; safety checked after the phase."""
    d, net, dep = sched.draw, sched.net, sched.dep
    rng = random.Random(d.seed * 31 + 7)
    net.drop_rate, net.dup_rate = d.drop, d.dup
    t0 = GENESIS_US
    for k, c in enumerate(sched.users):
        for op in care_session(dep, k, 2, t0 + 100 * k):
            submit(sched, c, op)
    if d.liar:
        liar = dep.user_ids[2]
        for op in care_session(dep, 2, 1, t0 + 300):
            net.submit(liar, op)
    store = next(iter(sched.suspects), None)
    pending = [list(c) for c in d.crashes]
    restarts: dict[int, int] = {}
    step = 10_000
    while net.now < d.phase:
        net.run(step)
        if d.forger and rng.random() < 0.2:
            _forge(sched, rng)
        if store is not None and sched.snapshot is None and net.now >= d.snapshot_at:
            sched.snapshot = scratch / f"snapshot-{d.seed}.sqlite"
            _snapshot(sched, store, sched.snapshot)
        if (
            store is not None
            and net.now >= d.store_at
            and store not in net.crashed
            and store not in restarts
            and store not in sched.refused_to_start
        ):
            _crash(sched, store)
            restarts[store] = net.now + rng.randint(20_000, 200_000)
        for c in pending:
            if c[0] >= 0 and net.now >= c[0] and c[1] not in net.crashed:
                _crash(sched, c[1])
                restarts[c[1]] = net.now + c[2]
                c[0] = -1
        for r, at in sorted(restarts.items()):
            if net.now >= at:
                del restarts[r]
                if r == store:
                    if sched.snapshot is None:
                        sched.snapshot = scratch / f"snapshot-{d.seed}.sqlite"
                        _snapshot(sched, r, sched.snapshot)
                    _tamper(sched, r, d.faulty[r][6:], rng)
                _restart(sched, r)
                if r == store:
                    store = None  # one failure per seed
    check_safety(sched, "after the fault phase")
    net.heal()
    net.black_holes |= {r for r, k in d.faulty.items() if k == "black-hole"}
    for r in sorted(net.crashed - sched.refused_to_start):
        if r in restarts and r in sched.suspects:
            _tamper(sched, r, d.faulty[r][6:], rng)
        _restart(sched, r)
    return sched


def _ledgers(sched: MedSchedule, ids: list[int]) -> dict[int, list[Any]]:
    out = {}
    for i in ids:
        if i in sched.net.crashed:
            continue
        out[i] = sched.dep.nodes[i].ledger.blocks()
    return out


def check_safety(sched: MedSchedule, context: str) -> None:
    """Safety of the replicas (as for the bare replica) and of the SQLite ledgers."""
    net = sched.net
    problems = safety_violations(net, sched.honest)
    if sched.suspects:
        everyone = sorted(sched.honest + sched.suspects)
        problems += [
            p
            for p in safety_violations(net, everyone)
            if not any(p.startswith(f"replica {s} sent") for s in sched.suspects)
            and p not in problems
        ]
    ledgers = _ledgers(sched, sorted(sched.honest + sched.suspects))
    ids = {i: [b.id for b in blocks] for i, blocks in ledgers.items()}
    skew = sched.dep.config.max_clock_skew_us
    genesis = sched.dep.genesis.timestamp_us
    for i, blocks in ledgers.items():
        for j, other in ids.items():
            k = min(len(ids[i]), len(other))
            if j > i and ids[i][:k] != other[:k]:
                problems.append(f"stored ledgers of {i} and {j} differ")
        prev = genesis
        for b in blocks:
            t = b.header.timestamp_us
            if t < prev:
                problems.append(f"node {i}: block {b.header.height} dated before its predecessor")
            if t > genesis + net.now + skew:
                problems.append(f"node {i}: block {b.header.height} dated ahead of the clock")
            prev = max(prev, t)
    raise_if(problems, SafetyViolation, f"{sched.label} {context}")


def _outcomes(sched: MedSchedule) -> dict[bytes, list[str]]:
    """Every outcome each honest user's operation got, in order (resubmissions included)."""
    out: dict[bytes, list[str]] = {}
    for c in sched.net.completed:
        if c.client in sched.users:
            op = sched.sent[c.client][c.timestamp - 1]
            outcome = "refused: " + c.refusal if c.refusal else str(codec.decode(c.result)[0])
            out.setdefault(op, []).append(outcome)
    return out


def _settle(sched: MedSchedule) -> bool:
    """Traffic (a patient reading her records: a query and the audit record nodes draft) until
    every honest node executed as far as the others, at a common stable checkpoint, and stored
    the same chain; False if that does not happen within the rounds."""
    from medbench.access.request import Operation
    from medbench.medchain import request_transaction

    net, dep = sched.net, sched.dep
    p = dep.patient_client(0)
    for _ in range(12):
        net.run_until_idle(limit_us=10_000_000, step_us=50_000)
        net.run(1_500_000)  # the last blocks, their signatures and the drafted records land
        rs = [dep.nodes[i].replica for i in sched.honest]
        state = {(r.last_executed, r.checkpoints.stable, r.chain.length) for r in rs}
        heights = {dep.nodes[i].stored_height for i in sched.honest}
        idle = all(net.nodes[c].idle for c in net.client_ids)
        if len(state) == 1 and len(heights) == 1 and idle:
            return True
        req = p.request(Operation.READ, patient=p.public_key, body={"history": False},
                        at_us=GENESIS_US + net.now)  # fmt: skip
        submit(sched, sched.users[0], request_transaction(req).to_wire())
    return False


def run_with_traffic(sched: MedSchedule, limit_us: int) -> bool:
    """Run until the workload's clients (the users and the hospital clients) are idle (True) or
    ``limit_us`` passes (False), the background user submitting a valid grant every 200 ms
    meanwhile.

    Liveness is judged under continued traffic, as PBFT guarantees it (TOCS 2002 §4.5.2), and as
    ``tests/pbft/schedules.py`` judges the bare replica: a sequence a replica voted for, left open
    by a NEW-VIEW, is decided only once later proposals reach it, and a request honest replicas
    split on at admission is given up only after f+1 views that executed other batches.
    """
    from medbench.access.request import Operation
    from medbench.medchain import request_transaction

    net, dep, bg = sched.net, sched.dep, sched.background
    workload = [c for c in net.client_ids if c != bg]
    k = 3  # patient 3 grants doctor 3: valid at any time, and it needs no earlier transaction
    patient, doctor = dep.patient_client(k), dep.doctor_client(k)
    spent = 0
    while spent < limit_us:
        if all(net.nodes[c].idle for c in workload):
            return True
        if bg is not None and spent % 200_000 == 0 and net.nodes[bg].idle:
            at = GENESIS_US + net.now
            body = {"grantee": doctor.public_key, "ops": ["read"], "categories": ["*"],
                    "not_before_us": at, "not_after_us": at + 3_600_000_000}  # fmt: skip
            req = patient.request(Operation.GRANT, patient=patient.public_key, body=body, at_us=at)
            submit(sched, bg, request_transaction(req).to_wire())
        net.run(50_000)
        spent += 50_000
    return all(net.nodes[c].idle for c in workload)


FINDINGS: tuple[int, ...] = (1016, 1029, 1095, 1230, 1260, 1293, 1354, 1362)
"""Soak seeds that failed liveness while it was judged without traffic (each is a request split
at admission: honest nodes judged an audit record before or after the query it audits executed,
a doctor's record before or after its grant). The nodes that admitted it either voted for it at
sequences a NEW-VIEW left open (1029, 1095, 1230, 1260, 1293, 1354: they may not refuse it until
another batch is decided there) or, one of them, changed view alone for it while the others had
nothing pending (1016, 1362); either way only later proposals let them give it up
(``medbench.consensus.pbft.viewchange``, ``_rejudge``), so its client got 2 of 3 refusals and
waited for ever. ``test_medchain_adversary.py`` keeps them green."""


RETRIES = 3
"""How often a user resubmits an operation refused (the refusal of a valid request is an answer:
honest replicas may judge it before a grant it depends on executed; the user tries again)."""


def check(seed: int, scratch: Path) -> MedSchedule:
    """Draw, run and judge one seed (raises a :class:`verdicts.VerdictFailure`)."""
    sched = run(build(draw(seed), scratch / f"stores-{seed}"), scratch)
    net, dep = sched.net, sched.dep
    for attempt in range(RETRIES + 1):
        done = run_with_traffic(sched, limit_us=20_000_000)
        check_safety(sched, "after the clients")
        if not done:
            raise LivenessViolation(
                f"{sched.label}: user requests still open after 20 s; views "
                f"{[r.view for r in net.replicas()]}"
            )
        todo = [
            (c, op)
            for c in sched.users
            for op in dict.fromkeys(sched.sent.get(c, []))
            if "accepted" not in _outcomes(sched).get(op, ["accepted"])
        ]
        if not todo:
            break
        if attempt == RETRIES:
            out = _outcomes(sched)
            raise LivenessViolation(
                f"{sched.label}: valid requests refused {RETRIES + 1} times: "
                f"{[out[op][-2:] for _, op in todo[:3]]}"
            )
        for c, op in todo:
            submit(sched, c, op)
    settled = _settle(sched)
    check_safety(sched, "at the end")
    if not settled:
        heights = {i: dep.nodes[i].stored_height for i in sched.honest}
        raise LivenessViolation(f"{sched.label}: honest nodes did not converge: {heights}")
    problems = []
    for i in sched.honest:
        report = dep.nodes[i].verify(dep.signer_policy())
        if not report.ok:
            problems.append(f"node {i}'s ledger does not verify: {report.findings[:2]}")
        seen: Counter[tuple[int, int]] = Counter(
            (q.client, q.timestamp)
            for b in dep.nodes[i].replica.history.values()
            for q in b.requests
        )
        if any(v > 1 for v in seen.values()):
            problems.append(f"node {i} executed a request twice")
    chains = {i: [b.id for b in dep.nodes[i].ledger.blocks()] for i in sched.honest}
    if len({tuple(c) for c in chains.values()}) != 1:
        problems.append("honest nodes stored different chains")
    raise_if(problems, AgreementViolation, sched.label)
    return sched
