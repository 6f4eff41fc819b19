"""The adversary's randomized fault schedules for the bare PBFT replica (issue 13).

One seed draws (:func:`draw`, cheap, so its shares can be measured without running):

* n in {4, 4, 4, 7}, integrated or blocker mode, batch size and delay, modeled / MAC / signature
  authentication (the caller's choice);
* **k faulty replicas: k = f in 80 % of the seeds**, else fewer (0 included). In a quarter of the
  seeds with k >= 1 the faulty replicas form one coalition: colluding equivocators
  (:class:`~medbench.consensus.pbft.adversary.ColludingEquivocator`, every member double-votes
  for both halves) or, in a fifth of those, :class:`~medbench.consensus.pbft.byzantine.SplitBrain`.
  Otherwise each draws a category, then a behaviour: the classic wrappers of
  :mod:`~medbench.consensus.pbft.byzantine` or a black hole; a new primary choosing its
  certificates (:class:`~medbench.consensus.pbft.adversary.NewViewChooser`); a lying blocker
  (time, height, predecessor, contents; blocker mode); a reply liar (wrong result, fake refusal,
  inflated view, forged early replies); a state-transfer liar (altered batches, made-up proofs);
  a request reviver; a flooder (CHECKPOINTs, VIEW-CHANGEs); or **a replica whose stable storage
  fails**: it crashes and restarts from records rolled back (the tail lost), with one record
  dropped, one executed batch rewritten (contents, or time) or one bit flipped (an undecodable
  record is dropped, as the SQLite driver does). Faulty replicas prefer the ids where their
  behaviour bites (the primaries of views 0 and 1);
* a lying client in 35 % of the seeds (replays, conflicting requests under one timestamp, and
  with MACs partial authenticators), on top of two honest clients;
* in half of the seeds a stateful application: operations ``need:K`` are refused until a
  ``grant:K`` executed and after a ``revoke:K``, ``exp:T`` after time T, so honest replicas
  disagree at admission, refusals happen, and a refused request could be revived;
* network faults during the fault phase: random drops, a cut link, extra delay, **duplication**
  and **reordering** (PBFT assumes neither FIFO nor exactly-once links, TOCS 2002 §2: a message
  may overtake those sent before it on its link, and arrive twice), and crash-recover cycles of
  honest replicas (a crash with intact storage is no fault in PBFT's model).

Verdicts (:mod:`verdicts`), over the honest replicas and clients:

* safety after the fault phase, after the clients finish and at the end
  (:func:`pbft_harness.safety_violations`), with the store-faulted replicas included in every
  agreement check but the one on their own votes (a replica whose disk lost votes may vote again:
  it is one of the f faulty, and the safe outcome is that it refuses the bad record or refuses to
  start, never that it silently executes another history); a request whose client saw it
  refused is executed nowhere;
* liveness once the network healed: every honest client's request completes;
* agreement: after traffic up to a common stable checkpoint, the honest replicas have one state
  digest and one chain; each executed every completed request exactly once and no request twice;
  every result a client accepted was computed by an honest replica; no honest client follows a
  view no honest replica reached;
* resources: checkpoint votes and view-change entries kept per sender stay bounded.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pbft_harness import Network, safety_violations
from verdicts import (
    AgreementViolation,
    LivenessViolation,
    ResourceViolation,
    SafetyViolation,
    raise_if,
)

from medbench.consensus.pbft import BlockMode, Request, decode_record, encode_record
from medbench.consensus.pbft import adversary as lies
from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft.log import ExecutedBatch
from medbench.consensus.pbft.messages import MessageError

CLASSIC = (
    "silent",
    "dropping",
    "altering",
    "equivocating",
    "late-equivocating",
    "bad-view",
    "bad-sequence",
    "bad-digest",
    "replayer",
    "black-hole",
    "future-clock",
    "rewinding-clock",
    "forged-digest",
)
STORE_FAULTS = ("rollback", "drop-record", "corrupt-batch", "corrupt-time", "bitrot")
CATEGORIES: tuple[tuple[str, float], ...] = (
    ("classic", 3.0),
    ("new-view", 2.0),
    ("blocker", 1.5),
    ("reply", 1.0),
    ("state", 1.0),
    ("reviver", 1.0),
    ("flood", 0.5),
    ("store", 1.5),
)
PRIMARY_FIRST = {
    "silent", "dropping", "altering", "equivocating", "late-equivocating", "future-clock",
    "rewinding-clock", "reviver", "colluding", "split-brain", "forged-digest",
}  # fmt: skip
CHECKPOINT_INTERVAL = 4
FLOOD_LIMIT = 300  # messages per flooder: enough to show unbounded memory, cheap to run


@dataclass
class Crash:
    """One planned crash of a replica (``how``: at a time, of the primary, after a new view)."""

    how: str
    at: int
    replica: int
    downtime: int
    done: bool = False


@dataclass
class Draw:
    """Everything one seed decided (see the module docstring)."""

    seed: int
    n: int
    scheme: str
    mode: BlockMode
    batch_size: int
    batch_delay: int
    faulty: dict[int, str]
    coalition: str | None
    lying_client: str | None
    app: bool
    drop: float
    cut: tuple[int, int] | None
    delay: tuple[int, int] | None
    dup: float
    reorder: float
    phase: int
    crashes: list[Crash]
    rounds: int

    @property
    def f(self) -> int:
        return (self.n - 1) // 3


def _weighted(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    total = sum(w for _, w in table)
    x = rng.random() * total
    for name, w in table:
        x -= w
        if x < 0:
            return name
    return table[-1][0]


def _behaviour(rng: random.Random, mode: BlockMode) -> str:
    while True:
        cat = _weighted(rng, CATEGORIES)
        if cat == "classic":
            return rng.choice(CLASSIC)
        if cat == "new-view":
            return "new-view:" + rng.choice(lies.NEW_VIEW_STRATEGIES)
        if cat == "blocker":
            if mode is not BlockMode.BLOCKER:
                continue
            return "blocker:" + rng.choice(lies.BLOCK_LIES)
        if cat == "reply":
            return "reply:" + rng.choice(lies.REPLY_LIES)
        if cat == "state":
            return "state:" + rng.choice(lies.STATE_LIES)
        if cat == "flood":
            return "flood:" + rng.choice(lies.FLOODS)
        if cat == "store":
            return "store:" + rng.choice(STORE_FAULTS)
        return cat


ALL_BEHAVIOURS = (
    *CLASSIC,
    "colluding",
    "split-brain",
    *(f"new-view:{s}" for s in lies.NEW_VIEW_STRATEGIES),
    *(f"blocker:{s}" for s in lies.BLOCK_LIES),
    *(f"reply:{s}" for s in lies.REPLY_LIES),
    *(f"state:{s}" for s in lies.STATE_LIES),
    "reviver",
    *(f"flood:{s}" for s in lies.FLOODS),
    *(f"store:{s}" for s in STORE_FAULTS),
)
"""Every behaviour the generator draws (:func:`stratified` walks them in turn)."""


def stratified(index: int) -> Draw:
    """The ``index``-th stratified draw: seed ``20_000 + index`` with its first faulty replica
    forced to ``ALL_BEHAVIOURS[index % len]`` (everything else as the seed draws it), so every
    behaviour comes up once in each run of ``len(ALL_BEHAVIOURS)`` draws."""
    behaviour = ALL_BEHAVIOURS[index % len(ALL_BEHAVIOURS)]
    # a new primary has a choice of view changes to leave out only with some to spare: every
    # other round of the behaviours puts the NEW-VIEW choosers at n = 7
    n = 7 if behaviour.startswith("new-view:") and (index // len(ALL_BEHAVIOURS)) % 2 else None
    return draw(20_000 + index, behaviour=behaviour, n=n)


def draw(
    seed: int,
    scheme: str = "modeled",
    recovery: bool = False,
    colluders: int | None = None,
    behaviour: str | None = None,
    n: int | None = None,
) -> Draw:
    """The fault mix of ``seed``; ``colluders`` forces a coalition of that many colluding
    equivocators (f+1 for the non-vacuity figure), ``recovery`` focuses on crashes around a
    view change to a late-equivocating primary of view 1, ``behaviour`` forces the behaviour
    of one faulty replica (blocker mode for a lying blocker, the stateful application for a
    reviver or a reply liar, an honest replica crashing for a state-transfer liar to answer)."""
    rng = random.Random(seed)
    drawn = rng.choice((4, 4, 4, 7))
    n = n or drawn
    f = (n - 1) // 3
    mode = rng.choice((BlockMode.INTEGRATED, BlockMode.BLOCKER))
    if behaviour is not None and behaviour.startswith("blocker:"):
        mode = BlockMode.BLOCKER
    batch_size = rng.choice((1, 2, 4))
    batch_delay = rng.choice((0, 2_000))
    k = f if rng.random() < 0.8 else rng.randint(0, f - 1)
    coalition = None
    if colluders is not None:
        k, coalition = colluders, "colluding"
    elif recovery:
        k = max(k, 1)
    elif behaviour in ("colluding", "split-brain"):
        k, coalition = f, behaviour
    elif behaviour is not None:
        k = max(k, 1)
    elif k and rng.random() < 0.25:
        coalition = "split-brain" if rng.random() < 0.2 else "colluding"
    kinds = [coalition] * k if coalition else [_behaviour(rng, mode) for _ in range(k)]
    if recovery and k:
        kinds[0] = "late-equivocating"
    if behaviour is not None and coalition is None:
        kinds[0] = behaviour
    faulty: dict[int, str] = {}
    free = list(range(n))
    for kind in kinds:
        want = 0 if kind in PRIMARY_FIRST else 1 if kind.startswith("new-view") else None
        if recovery and kind == "late-equivocating" and 1 in free:
            r = 1
        elif want is not None and want in free and (coalition or behaviour or rng.random() < 0.6):
            r = want
        else:
            r = rng.choice(free)
        free.remove(r)
        faulty[r] = kind
    if coalition == "split-brain" and 0 not in faulty:  # SplitBrain acts as primary of view 0
        moved = next(iter(faulty))
        del faulty[moved]
        faulty[0] = "split-brain"
    lying = None
    if rng.random() < 0.35:
        lying = rng.choice(("replay", "conflict", "partial-mac") if scheme == "macs" else
                           ("replay", "conflict"))  # fmt: skip
    app = rng.random() < 0.5
    if behaviour is not None and behaviour.split(":")[0] in ("reviver", "reply"):
        app = True
    drop = rng.choice((0.0, 0.0, 0.02, 0.05))
    cut = tuple(rng.sample(range(n), 2)) if rng.random() < 0.5 else None
    delay = (rng.randrange(n), rng.randint(1_000, 30_000)) if rng.random() < 0.3 else None
    dup = rng.choice((0.0, 0.0, 0.05, 0.2))
    reorder = rng.choice((0.0, 0.0, 0.1, 0.3))
    phase = rng.randint(50_000, 450_000)
    honest = [r for r in range(n) if r not in faulty]
    triggers = ("time", "primary", "primary", "new-view", "new-view")
    crashes = [
        Crash(rng.choice(triggers), rng.randint(0, phase), rng.choice(honest),
              rng.randint(5_000, 150_000))
        for _ in range(rng.choice((0, 1, 1, 2, 3, 4)))
    ]  # fmt: skip
    if recovery:
        crashes.append(Crash("primary", rng.randint(0, phase // 3), 0, rng.randint(5_000, 150_000)))
        for _ in range(rng.randint(1, 3)):
            crashes.append(Crash("new-view", 0, rng.randrange(n), rng.randint(5_000, 60_000)))
    if behaviour is not None and behaviour.startswith("state:"):  # someone to answer a FETCH
        crashes.append(Crash("time", rng.randint(0, phase // 2), rng.choice(honest), phase))
    if behaviour is not None and behaviour.startswith("new-view:"):  # a view change to choose
        crashes.append(Crash("primary", rng.randint(phase // 8, phase // 2), 0, phase))
    for r, kind in faulty.items():  # a failing store shows only at a restart
        if kind.startswith("store:"):
            crashes.append(Crash("store", rng.randint(phase // 4, phase), r,
                                 rng.randint(5_000, 100_000)))  # fmt: skip
    return Draw(
        seed, n, scheme, mode, batch_size, batch_delay, faulty, coalition, lying, app, drop,
        cut, delay, dup, reorder, phase, crashes, rng.randint(3, 6),  # type: ignore[arg-type]
    )  # fmt: skip


# --- the stateful application ------------------------------------------------------------------


def make_app(net: Network, i: int) -> tuple[Any, Any]:
    """Replica ``i``'s validator and service over grants: ``need:K`` is valid once ``grant:K``
    executed and until ``revoke:K`` does; ``exp:T`` until the clock passes T (µs)."""
    granted: set[bytes] = set()
    revoked: set[bytes] = set()

    def validator(req: Request) -> str | None:
        body = req.operation.rsplit(b"|", 1)[-1]
        if body.startswith(b"need:"):
            key = body[5:]
            return None if key in granted and key not in revoked else "no-grant: not granted"
        if body.startswith(b"exp:"):
            return None if net.now <= int(body[4:]) else "expired: past its deadline"
        return None

    def service(req: Request, agreed_us: int) -> bytes:
        body = req.operation.rsplit(b"|", 1)[-1]
        if body.startswith(b"grant:"):
            granted.add(body[6:])
        elif body.startswith(b"revoke:"):
            revoked.add(body[7:])
        return req.digest()

    return validator, service


REVIVAL = (
    (b"need:0", b"need:0", b"need:1", b"need:1", b"need:1", b"need:1"),
    (b"op", b"op", b"grant:0", b"op", b"op", b"grant:1"),
)
"""The workload beside a request reviver: the first client's requests are refused, then
become valid once the second client's grants execute (the reviver proposes them again)."""


def _operation(rng: random.Random, tag: bytes, app: bool, now: int) -> bytes:
    if not app:
        return tag
    key = b"%d" % rng.randrange(3)
    body = rng.choice(
        (b"op", b"op", b"grant:" + key, b"need:" + key, b"need:" + key, b"revoke:" + key,
         b"exp:%d" % (now + rng.randint(5_000, 300_000)))
    )  # fmt: skip
    return tag + b"|" + body


# --- running a draw -----------------------------------------------------------------------------


@dataclass
class Schedule:
    """One seed's network and who is what in it."""

    draw: Draw | None
    net: Network
    honest: list[int]
    suspects: list[int]  # store-faulted replicas: no silent divergence, may refuse to start
    clients: list[int]  # honest clients
    liar: int | None
    ops: Counter[tuple[int, bytes]] = field(default_factory=Counter)
    refused_to_start: set[int] = field(default_factory=set)
    flooders: list[Any] = field(default_factory=list)
    sent: dict[int, list[bytes]] = field(default_factory=dict)  # client -> ops, by timestamp
    name: str = ""  # how verdicts name the run (default: its seed)
    background: int | None = None  # an honest client that keeps traffic going once healed

    @property
    def seed(self) -> int:
        return self.draw.seed if self.draw is not None else 0

    @property
    def label(self) -> str:
        return self.name or f"seed {self.seed}"

    def submit(self, client: int, op: bytes) -> None:
        """Submit ``op`` from an honest ``client`` and remember it for the liveness check."""
        self.ops[(client, op)] += 1
        self.sent.setdefault(client, []).append(op)
        self.net.submit(client, op)


class _Capped(lies.Flooder):
    """A flood of ``FLOOD_LIMIT`` messages, then a drip: one every 20 ticks, for ever."""

    ticks = 0

    def tick(self, now: int) -> Any:
        self.ticks += 1
        if self.count < FLOOD_LIMIT:
            return super().tick(now)
        if self.ticks % 20:
            return self._filter(self.inner.tick(now))
        self.per_tick = 1
        return super().tick(now)


def _wrap(net: Network, r: int, kind: str, coalition: lies.Coalition | None, outbox: dict) -> None:
    inner = net.nodes[r]
    name, _, arg = kind.partition(":")
    node: Any
    if kind == "silent":
        node = faults.SilentPrimary(inner)
    elif kind == "dropping":
        node = faults.DroppingPrimary(inner, [net.n])
    elif kind == "altering":
        node = faults.AlteringPrimary(inner)
    elif kind == "equivocating":
        node = faults.EquivocatingPrimary(inner)
    elif kind == "late-equivocating":
        node = faults.LateEquivocator(inner)
    elif kind.startswith("bad-"):
        node = faults.BadVoter(inner, kind[4:])
    elif kind == "replayer":
        node = faults.Replayer(inner)
    elif kind == "future-clock":  # far beyond the backups' skew bound (TOCS §4.6)
        node = faults.SkewedClockPrimary(inner, 60_000_000)
    elif kind == "rewinding-clock":  # back before the previous batch, within the skew bound
        node = faults.SkewedClockPrimary(inner, -30_000, honest=1)
    elif kind == "forged-digest":
        node = lies.DigestForger(inner)
    elif kind == "colluding":
        assert coalition is not None
        node = lies.ColludingEquivocator(inner, coalition)
    elif kind == "split-brain":
        assert coalition is not None
        node = faults.SplitBrain(inner, coalition.members, net.keyrings, outbox)
    elif name == "new-view":
        node = lies.NewViewChooser(inner, arg)
    elif name == "blocker":
        node = lies.LyingBlocker(inner, arg)
    elif name == "reply":
        node = lies.ReplyLiar(inner, arg)
    elif name == "state":
        node = lies.StateLiar(inner, arg)
    elif kind == "reviver":
        node = lies.RequestReviver(inner)
    elif name == "flood":
        node = _Capped(inner, arg)
    else:
        raise AssertionError(kind)
    net.nodes[r] = node


def build(d: Draw) -> Schedule:
    """The network of draw ``d`` with its faulty replicas and clients in place."""
    clients = 3  # two with the workload, one for background traffic once healed
    net = Network(
        n=d.n,
        clients=clients + (1 if d.lying_client else 0),
        seed=d.seed,
        scheme=d.scheme,
        tick_us=5_000,
        latency_us=(200, 3_000),
        checkpoint_interval=CHECKPOINT_INTERVAL,
        log_window=2 * CHECKPOINT_INTERVAL,
        max_batch_size=d.batch_size,
        max_batch_delay_us=d.batch_delay,
        view_change_timeout_us=60_000,
        max_view_change_timeout_us=1_920_000,  # a few backoffs: liveness is judged in 20 s
        fetch_timeout_us=40_000,
        client_timeout_us=80_000,
        block_mode=d.mode,
        block_size=3,
        block_interval_us=50_000,
        app=make_app if d.app else None,
    )
    members = [r for r, kind in d.faulty.items() if kind in ("colluding", "split-brain")]
    coalition = lies.Coalition(sorted(members, key=lambda r: r != 0), net.keyrings, d.n)
    if d.coalition == "split-brain":
        coalition.members = sorted(members, key=lambda r: r != 0)  # the primary of view 0 first
    outbox: dict = {}
    suspects = []
    for r, kind in sorted(d.faulty.items()):
        if kind == "black-hole":
            net.black_holes.add(r)
        elif kind.startswith("store:"):
            suspects.append(r)
            net.amnesiac.add(r)
        else:
            _wrap(net, r, kind, coalition, outbox)
    liar = None
    if d.lying_client:
        liar = d.n + clients
        net.nodes[liar] = lies.LyingClient(
            liar, d.n, net.keyrings[liar], d.lying_client, seed=d.seed, retransmit_timeout_us=80_000
        )
    honest_clients = list(range(d.n, d.n + clients))
    net.client_ids = honest_clients
    honest = [r for r in range(d.n) if r not in d.faulty]
    sched = Schedule(d, net, honest, suspects, honest_clients, liar, background=d.n + 2)
    sched.flooders = [node for node in net.nodes.values() if isinstance(node, _Capped)]
    return sched


def _tamper(records: list[Any], fault: str, rng: random.Random) -> None:
    """What a failing disk does to a replica's records (see the module docstring)."""
    if not records:
        return
    if fault == "rollback":
        del records[len(records) - rng.randint(1, max(1, len(records) // 2)) :]
    elif fault == "drop-record":
        pick = [i for i, r in enumerate(records) if not isinstance(r, ExecutedBatch)]
        if pick:
            del records[rng.choice(pick)]
    elif fault in ("corrupt-batch", "corrupt-time"):
        pick = [i for i, r in enumerate(records) if isinstance(r, ExecutedBatch) and r.items]
        if pick:
            i = rng.choice(pick)
            b = records[i]
            items, ts = b.items, b.timestamp
            if fault == "corrupt-batch":
                items = items[:-1]
            else:
                ts += 1
            records[i] = ExecutedBatch(b.sequence, ts, b.batch_digest, items, (), (),
                                       b.state_digest)  # fmt: skip
    else:  # bitrot: one bit of one recent record
        i = rng.randrange(max(0, len(records) - 30), len(records))
        data = bytearray(encode_record(records[i]))
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        try:
            records[i] = decode_record(bytes(data))
        except MessageError:
            del records[i]  # the driver drops an undecodable record (as MedicalChainNode does)


def _restart(sched: Schedule, r: int) -> None:
    """Restart ``r``; a store-faulted replica that refuses to start stays down (a safe outcome)."""
    net = sched.net
    if r in sched.suspects:
        try:
            net.restart(r)
        except Exception:  # refusing to start on a corrupt store is allowed, and only then
            net.crashed.add(r)
            sched.refused_to_start.add(r)
    else:
        net.restart(r)


def check_safety(sched: Schedule, context: str) -> None:
    """Safety over the honest replicas; the store-faulted ones join every check but the one on
    their own votes."""
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
    executed = executed_requests(sched)
    for c in net.completed:
        if c.client in sched.clients and c.refusal and (c.client, c.timestamp) in executed:
            problems.append(f"client {c.client} saw request {c.timestamp} refused; it executed")
    raise_if(problems, SafetyViolation, f"{sched.label} {context}")


def executed_requests(sched: Schedule) -> set[tuple[int, int]]:
    """(client, timestamp) of every request an honest or store-faulted replica executed."""
    out = set()
    for r in sched.net.replicas(sched.honest + sched.suspects):
        for b in r.history.values():
            for q in b.requests:
                out.add((q.client, q.timestamp))
    return out


def check_resources(sched: Schedule) -> None:
    """Per sender, an honest replica keeps a bounded number of checkpoint votes and views."""
    problems = []
    for r in sched.net.replicas(sched.honest):
        per: Counter[int] = Counter()
        for by_digest in getattr(r.checkpoints, "_votes", {}).values():
            for voters in by_digest.values():
                per.update(voters.keys())
        bound = r.config.log_window // r.config.checkpoint_interval + 1
        for sender, count in per.items():
            if count > bound:
                problems.append(f"replica {r.node_id} keeps {count} checkpoints of {sender}")
        if len(r.view_changes) > 4 * r.n + 1:
            problems.append(f"replica {r.node_id} keeps {len(r.view_changes)} view-change views")
    raise_if(problems, ResourceViolation, sched.label)


def run_schedule(sched: Schedule) -> Schedule:
    """The fault phase (safety checked after it), then heal and restart every crashed replica."""
    d, net = sched.draw, sched.net
    rng = random.Random(d.seed * 7919 + 1)
    net.drop_rate, net.dup_rate, net.reorder_rate = d.drop, d.dup, d.reorder
    if d.cut:
        net.cut_link(*d.cut)
    if d.delay:
        net.extra_delay[d.delay[0]] = d.delay[1]
    for k in range(d.rounds):
        for c in sched.clients:
            if c == sched.background:
                continue
            tag = b"seed%d-c%d-op%d" % (d.seed, c, k)
            if "reviver" in d.faulty.values() and d.app:  # refusals that become valid later
                body = REVIVAL[c - d.n][k % len(REVIVAL[0])]
                sched.submit(c, tag + b"|" + body)
            else:
                sched.submit(c, _operation(rng, tag, d.app, net.now))
        if sched.liar is not None:
            net.submit(sched.liar, b"seed%d-liar-op%d" % (d.seed, k))
    restarts: dict[int, int] = {}
    seen = 0
    while net.now < d.phase:
        net.run(min(net.tick_us, d.phase - net.now))
        installed = {i for i, note in net.notes[seen:] if note.kind == "new-view"}
        seen = len(net.notes)
        for c in d.crashes:
            if c.done or net.now < c.at:
                continue
            if c.how == "primary":
                victim = net.replicas([c.replica])[0].primary()
            elif c.how == "new-view":
                backups = sorted(i for i in installed if not net.replicas([i])[0].is_primary)
                if not backups:
                    continue
                victim = backups[c.replica % len(backups)]
            else:
                victim = c.replica
            c.done = True
            if c.how == "store" or (victim in sched.honest and victim not in net.crashed):
                if victim in net.crashed:
                    continue
                net.crash(victim)
                restarts[victim] = net.now + c.downtime
        for r, at in sorted(restarts.items()):
            if net.now >= at:
                del restarts[r]
                if r in sched.suspects:
                    _tamper(net.persisted[r], d.faulty[r][6:], rng)
                _restart(sched, r)
    check_safety(sched, "after the fault phase")
    check_resources(sched)
    net.heal()
    net.black_holes |= {r for r, kind in d.faulty.items() if kind == "black-hole"}
    for r in sorted(net.crashed - sched.refused_to_start):
        if r in sched.suspects and r in restarts:
            _tamper(net.persisted[r], d.faulty[r][6:], rng)
        _restart(sched, r)
    return sched


def drive_to_checkpoint(sched: Schedule, rounds: int = 12) -> bool:
    """Keep client traffic going until a stable checkpoint covers everything executed before,
    every honest replica has executed exactly up to it, and no transaction waits for a block
    (True), or until ``rounds`` rounds pass (False).

    A replica that missed messages, or that alone moved to a higher view (it waits there for
    f+1 others, TOCS §4.5.2, and meanwhile follows only checkpoints), catches up only at a stable
    checkpoint by state transfer; hence the traffic, sized each round to end the sequence at a
    multiple of the checkpoint interval.
    """
    net = sched.net
    k = net.config.checkpoint_interval
    settle = 3 * net.config.block_interval_us + 4 * net.config.view_change_timeout_us
    target = max(r.last_executed for r in net.replicas(sched.honest))
    client = sched.clients[0]
    for turn in range(rounds + 1):
        net.run_until_idle(limit_us=10_000_000, step_us=20_000)
        net.run(settle)  # blocks of the blocker, checkpoints and state transfers land
        rs = net.replicas(sched.honest)
        done = {(r.last_executed, r.checkpoints.stable) for r in rs}
        covered = rs[0].checkpoints.stable >= target
        if len(done) == 1 and covered and not any(r.chain.unblocked for r in rs):
            return True
        if turn == rounds:
            break
        # one client's requests run one after another, one batch each: ``gap`` of them close
        # the gap in integrated mode; in blocker mode 1 or 2 requests (+ one block) add 2 or 3
        gap = -max(r.last_executed for r in rs) % k or k
        if net.config.block_mode is BlockMode.BLOCKER:
            gap = 1 if gap == 2 else 2
        for j in range(gap):
            sched.submit(client, b"%s-more%d-%d" % (sched.label.encode(), turn, j))
    return False


def check_outcomes(sched: Schedule) -> None:
    """Exactly-once execution, refusals final, clients' results and views honest."""
    net = sched.net
    done: dict[tuple[int, int], Any] = {}
    for c in net.completed:
        if c.client in sched.clients:
            done[(c.client, c.timestamp)] = c
    problems: list[str] = []
    by_op = {}
    for r in net.replicas(sched.honest):
        seen: Counter[tuple[int, int]] = Counter()
        ops: Counter[tuple[int, bytes]] = Counter()
        for s in sorted(r.history):
            for q in r.history[s].requests:
                seen[(q.client, q.timestamp)] += 1
                if q.client in sched.clients:
                    ops[(q.client, q.operation)] += 1
        twice = [key for key, count in seen.items() if count > 1]
        if twice:
            problems.append(f"replica {r.node_id} executed {len(twice)} requests twice")
        by_op[r.node_id] = ops
    expected: Counter[tuple[int, bytes]] = Counter()
    refused = 0
    for (client, ts), c in done.items():
        if c.refusal:
            refused += 1
        else:
            expected[(client, _op_of(sched, client, ts))] += 1
    for rid, ops in by_op.items():
        if ops != expected:
            problems.append(
                f"replica {rid} executed {sum(ops.values())} honest requests, "
                f"{sum(expected.values())} completed with a result"
            )
    honest_results: dict[tuple[int, int], set[bytes]] = {}
    for (i, kind, client, ts), results in net.votes_sent.items():
        if kind == "reply" and i in sched.honest:
            honest_results.setdefault((client, ts), set()).update(results)
    for key, c in done.items():
        if not c.refusal and c.result not in honest_results.get(key, set()):
            problems.append(f"client {key[0]} accepted a result no honest replica gave ({key[1]})")
    top = max(r.view for r in net.replicas(sched.honest))
    for cid in sched.clients:
        if net.nodes[cid].view > top:
            problems.append(f"client {cid} follows view {net.nodes[cid].view}, honest top {top}")
    raise_if(problems, AgreementViolation, sched.label)


def _op_of(sched: Schedule, client: int, ts: int) -> bytes:
    """The operation an honest client sent under timestamp ``ts`` (its ts-th submission)."""
    return sched.sent[client][ts - 1]


def check_seed(
    seed: int, scheme: str = "modeled", recovery: bool = False, colluders: int | None = None
) -> Schedule:
    """Draw, run and judge one seed; raise a :class:`verdicts.VerdictFailure` on a violation."""
    return check_draw(draw(seed, scheme, recovery, colluders))


FINDINGS: tuple[tuple[str, int], ...] = (
    ("seed", 34),  # a request split at admission livelocked
    ("seed", 207),  # a restarted primary refused what it had pre-prepared
    ("stratified", 194),  # a refusal revived by a later NEW-VIEW (on main too)
    ("stratified", 542),  # the split with f silent replicas
    ("seed", 584),  # lost CHECKPOINTs wedged the group
    ("seed", 876),
    ("seed", 1124),
    ("seed", 14627),  # a reviving primary kept a giving-up replica's vote open (soak)
)
"""The draws on which the adversary found bugs beyond issue 13's list (the mutation gate runs
them first; ``test_pbft_adversary_findings.py`` keeps them green)."""


def check_finding(index: int) -> Schedule:
    """Run ``FINDINGS[index]``."""
    kind, k = FINDINGS[index % len(FINDINGS)]
    return check_draw(stratified(k) if kind == "stratified" else draw(k))


def check_draw(d: Draw) -> Schedule:
    """Build, run and judge the draw ``d``."""
    return check_healed(run_schedule(build(d)))


def run_with_traffic(sched: Schedule, limit_us: int) -> bool:
    """Run until the workload's clients are idle (True) or ``limit_us`` passes (False), the
    background client submitting a plain request every 200 ms meanwhile.

    Liveness is judged under continued traffic, as PBFT guarantees it (TOCS §4.5.2): a sequence
    is decided only once something is proposed for it, so a request a replica voted for at a
    sequence left open (and may not refuse, :meth:`~.core.ReplicaCore._may_refuse`) is settled
    only by later traffic.
    """
    net, bg = sched.net, sched.background
    workload = [c for c in sched.clients if c != bg]
    spent = k = 0
    while spent < limit_us:
        if all(net.nodes[c].idle for c in workload):
            return True
        if bg is not None and spent % 200_000 == 0 and net.nodes[bg].idle:
            sched.submit(bg, b"%s-background%d" % (sched.label.encode(), k))
            k += 1
        net.run(20_000)
        spent += 20_000
    return all(net.nodes[c].idle for c in workload)


def check_healed(sched: Schedule) -> Schedule:
    """After the faults healed: liveness, convergence at a common stable checkpoint, agreement
    and exactly-once execution, safety all along (the verdicts of the module docstring)."""
    net = sched.net
    done = run_with_traffic(sched, limit_us=20_000_000)
    check_safety(sched, "after the clients")
    if not done:
        raise LivenessViolation(
            f"{sched.label}: {len(net.completed)}/{net.submitted} completed; views "
            f"{[r.view for r in net.replicas()]} executed "
            f"{[r.last_executed for r in net.replicas()]}"
        )
    converged = drive_to_checkpoint(sched) and all(net.nodes[c].idle for c in sched.clients)
    check_safety(sched, "at the end")
    rs = net.replicas(sched.honest)
    if not converged:
        raise LivenessViolation(
            f"{sched.label}: no common checkpoint; views {[(r.view, r.active) for r in rs]} "
            f"executed {[r.last_executed for r in rs]} stable "
            f"{[r.checkpoints.stable for r in rs]} unblocked {[len(r.chain.unblocked) for r in rs]}"
        )
    first = rs[0]
    problems = []
    for r in rs[1:]:
        if r.state_digest != first.state_digest:
            problems.append(f"state of {r.node_id} differs")
        if r.chain.ids != first.chain.ids:
            problems.append(f"chain of {r.node_id} differs")
    raise_if(problems, AgreementViolation, sched.label)
    check_outcomes(sched)
    for r in rs:
        executed = {q.digest() for b in r.history.values() for q in b.requests}
        if r.chain.unblocked or r.chain.blocked != executed:
            raise LivenessViolation(f"{sched.label}: replica {r.node_id} left transactions out")
    return sched
