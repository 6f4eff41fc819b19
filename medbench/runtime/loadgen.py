"""The load generator: PBFT clients in a process of their own, closed or open loop.

Theory of operation
-------------------
A load-generator process holds one consortium client identity (a certificate naming a block of
client ids, :mod:`.certs`) and runs ``clients`` sans-IO PBFT clients
(:class:`~medbench.consensus.pbft.Client`) over one mutual-TLS link to every member, on the same
:class:`~.driver.Driver` rounds as a node. **A request counts as committed when its client holds
f+1 matching replies from distinct replicas** (TOCS §4.1; a refusal needs 2f+1 matching
refusals) — the client's own rule, so no single replica can fake a commit.

With ``consensus = "hotstuff"`` the clients are :class:`medbench.consensus.hotstuff.Client`
(they broadcast each signed request to every replica — every view has another leader — and
complete on f+1 matching signed replies, the same rule); with ``"raft"``
:class:`medbench.consensus.raft.Client` (each sends its request to the leader it knows, first
member ``c mod n``, follows not-leader redirects and tries the next member after a timeout, and
completes on the leader's one reply: Raft trusts its servers). Both start their timestamps at the
clock, as PBFT's do, so a second run is never answered from the first one's reply cache.

Two kinds of load:

* **closed loop** (BFT-SMaRt's ThroughputLatency client): every client keeps one request
  outstanding and submits the next one when the previous completes, so ``clients`` is the
  number of outstanding requests; latency = completion - submission;
* **open loop** (Blockbench's fixed rate): requests are issued at ``rate`` per second, dealt
  round-robin to the clients (each queues what it cannot send yet); latency runs from the
  *scheduled* time, so queueing behind a slow system counts (no coordinated omission).

Operations: ``null`` sends the empty operation; ``medchain`` sends signed, sealed medical
transactions (:class:`~.world.RequestFactory`: grants first, then visit records), pre-built
before the clock starts and stamped with the chain's time.

Measurement: everything submitted in the steady window ``[start + warmup, start + warmup +
duration)`` is kept (latencies in an HDR histogram, 1 µs to 60 s, 3 significant digits, for
p50/p99/p99.9; and per request for :func:`medbench.metrics.summarize`); after the window the
clients stop submitting and wait up to ``drain_s`` for what is outstanding. ``start_at`` (wall
clock) lets several load processes and the benchmark's CPU sampling share one window. The
result is a JSON file (:func:`run_load`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from nacl.signing import VerifyKey

from medbench.consensus import hotstuff, raft
from medbench.consensus.auth import SignatureKeyring
from medbench.consensus.pbft import Client, Completion, Submit
from medbench.runtime import certs
from medbench.runtime.config import Consortium, load_consortium
from medbench.runtime.driver import Clock, Driver, reply_target
from medbench.runtime.node import install_loop, nacl_key
from medbench.runtime.transport import Network, public_key_of_pem, stats_of

log = logging.getLogger("medbench.runtime.loadgen")
US = 1_000_000
COMPLETIONS = (Completion, hotstuff.Completion, raft.Completion)
"""What a client of each protocol reports when one of its requests finished."""


@dataclass
class LoadSpec:
    """One load-generator process."""

    consortium: str
    cert: str
    key: str
    password_file: str
    identity: str  # the consortium file's [[clients]] name
    clients: int = 1
    first_client: int = 0  # offset into the identity's ids
    mode: str = "closed"
    rate: float = 0.0
    warmup_s: float = 2.0
    duration_s: float = 5.0
    drain_s: float = 10.0
    start_at: float = 0.0  # wall-clock time of the start (0: now)
    connect_timeout_s: float = 30.0
    seed: int = 0
    out: str = ""
    keep_ids: bool = True  # write every completed request id (for the fault checks)


@dataclass
class LoadResult:
    """What a load process measured (JSON)."""

    spec: dict[str, Any]
    window_start_us: int = 0
    window_end_us: int = 0
    submitted: int = 0
    window_submitted: int = 0
    completed: int = 0
    refused: int = 0
    retransmissions: int = 0
    window: list[tuple[int, int, int, int]] = field(default_factory=list)  # client, ts, sub, done
    completed_ids: list[str] = field(default_factory=list)  # request digests (hex)
    completed_tx_ids: list[str] = field(default_factory=list)  # ledger IDs (Medical Chain)
    histogram: str = ""
    outstanding_end: int = 0
    net: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    refusals: dict[str, int] = field(default_factory=dict)


class LoadHost(Driver):
    """Clients, their link to every member and the load schedule (see the module docstring)."""

    def __init__(self, spec: LoadSpec, cons: Consortium) -> None:
        super().__init__(Clock(cons.epoch_unix_us), tick_ms=10.0)
        self.spec = spec
        self.cons = cons
        group = cons.group(spec.identity)
        ids = list(group.ids)[spec.first_client : spec.first_client + spec.clients]
        if len(ids) != spec.clients:
            raise ValueError(f"identity {spec.identity} has {group.count} ids")
        self.password = Path(spec.password_file).read_bytes().strip()
        key = certs.read_key(Path(spec.key), self.password, group.public_key)
        directory = {m.id: VerifyKey(m.validator_key) for m in cons.members}
        directory.update({c: VerifyKey(group.public_key) for c in ids})
        signing = nacl_key(key)
        stamp = self.clock.now_us()
        self.submit_type: Any = Submit
        for c in ids:
            ring = SignatureKeyring(c, cons.n, signing, directory)
            client: Any
            if cons.consensus == "hotstuff":
                client = hotstuff.Client(c, cons.n, ring, cons.client_retransmit_us)
                self.submit_type = hotstuff.Submit
            elif cons.consensus == "raft":
                client = raft.Client(c, cons.n, cons.client_retransmit_us, leader=c % cons.n)
                self.submit_type = raft.Submit
            else:
                client = Client(c, cons.n, ring, cons.client_retransmit_us)
            # PBFT timestamps must grow across client restarts (TOCS §4.1: the client's clock)
            client.timestamp = stamp
            self.nodes[c] = client
        self.client_ids = frozenset(ids)
        self.issued: dict[int, deque[int]] = {c: deque() for c in ids}  # submit times queued
        self.result = LoadResult(asdict(spec))
        self.hist = HdrHistogram(1, 60 * US, 3)
        self.window = (0, 0)
        self.submitting = False
        self.ops = self._ops()
        self.rr = 0

    def _ops(self) -> Any:
        if self.cons.service == "null":
            return None
        from medbench.access.scenario import GENESIS_US
        from medbench.runtime.world import RequestFactory, World

        world = World.build(self.cons.access_seed, self.cons.n)
        # fresh nonces every run: a second run against the same chain must not replay the first
        self.factory = RequestFactory(world, self.spec.seed ^ int.from_bytes(os.urandom(8)))
        self.chain_offset = GENESIS_US
        return deque()

    def _op(self) -> bytes:
        if self.ops is None:
            return b""
        if not self.ops:
            self._build(64)
        return self.ops.popleft()  # type: ignore[no-any-return]

    def _build(self, count: int) -> None:
        at = self.chain_offset + self.clock.now_us()
        for j in range(count):
            self.ops.append(self.factory.record(at + j))

    # --- Driver hooks ----------------------------------------------------------------------------
    def dispatch(self, src: int, msg: Any) -> int | None:
        return reply_target(msg, self.client_ids)

    def output(self, node_id: int, ready: Any) -> None:
        if not ready.completed:
            return
        now = self.clock.now_us()
        res = self.result
        lo, hi = self.window
        for comp in ready.completed:
            if not isinstance(comp, COMPLETIONS):
                continue
            queue = self.issued[comp.client]
            submitted = queue.popleft() if queue else comp.submitted_us
            res.completed += 1
            res.retransmissions += comp.retransmissions
            refusal = getattr(comp, "refusal", "")  # only PBFT's clients are refused
            if refusal:
                res.refused += 1
                res.refusals[refusal] = res.refusals.get(refusal, 0) + 1
            elif self.spec.keep_ids:
                res.completed_ids.append(comp.request_id.hex())
                if self.ops is not None:
                    res.completed_tx_ids.append(self._ledger_id(comp))
            if lo <= submitted < hi:
                lat = max(now - submitted, 1)
                self.hist.record_value(min(lat, 60 * US))
                res.window.append((comp.client, comp.timestamp, submitted, now))
            if self.spec.mode == "closed" and self.submitting:
                self._submit(comp.client, now)

    def _ledger_id(self, comp: Any) -> str:
        """The ledger transaction ID a Medical Chain result names (else the request digest)."""
        from medbench import codec

        try:
            doc = codec.decode(comp.result)
            if isinstance(doc, list) and len(doc) == 2 and doc[0] == "accepted":
                return bytes(doc[1]).hex()
        except Exception:  # a result we cannot read: keep the request digest
            pass
        return str(comp.request_id.hex())

    def _submit(self, client: int, at_us: int) -> None:
        self.issued[client].append(at_us)
        self.result.submitted += 1
        if self.window[0] <= at_us < self.window[1]:
            self.result.window_submitted += 1
        self.local.append((client, client, self.submit_type(self._op())))
        self.wake()

    # --- the run ---------------------------------------------------------------------------------
    async def run(self) -> LoadResult:
        spec, cons = self.spec, self.cons
        if spec.out:
            trust = Path(spec.out).with_suffix(".trust.pem")
        else:
            fd, name = tempfile.mkstemp(suffix=".trust.pem")
            os.close(fd)
            trust = Path(name)
        trust.write_text(cons.ca_pem + cons.crl_pem)
        tls_client = None
        if cons.transport == "tls":
            tls_client = certs.client_context(Path(spec.cert), Path(spec.key), self.password, trust)
        self.net = Network(
            self_id=None,
            ids=self.client_ids,
            role="client",
            n=cons.n,
            digest=cons.digest,
            limits=cons.limits,
            pins={m.id: public_key_of_pem(m.certificate) for m in cons.members},
            addresses={m.id: m.address for m in cons.members},
            tls_server=None,
            tls_client=tls_client,
            on_ready=self.wake,
            accept_clients=False,
        )
        for m in cons.members:
            self.net.dial(m.id)
        self.net.start()
        self.start()
        # every member if possible; n - f suffice (a crashed member must not stop the load)
        start = time.monotonic()
        end = start + spec.connect_timeout_s
        while time.monotonic() < end:
            up = self.net.peers_connected
            if up == cons.n or (up >= cons.n - cons.f and time.monotonic() - start > 2.0):
                break
            await asyncio.sleep(0.02)
        if self.net.peers_connected < cons.n:
            log.warning("only %d of %d members reachable", self.net.peers_connected, cons.n)
        cpu0 = time.process_time()
        if self.ops is not None:
            await self._grants()
            expected = int(max(spec.rate, 400.0) * (spec.warmup_s + spec.duration_s))
            self._build(min(expected, 20_000))
        if spec.start_at:
            await asyncio.sleep(max(spec.start_at - time.time(), 0.0))
        t0 = self.clock.now_us()
        lo = t0 + int(spec.warmup_s * US)
        hi = lo + int(spec.duration_s * US)
        self.window = (lo, hi)
        self.result.window_start_us, self.result.window_end_us = lo, hi
        self.submitting = True
        if spec.mode == "closed":
            for c in sorted(self.client_ids):
                self._submit(c, t0)
            await asyncio.sleep(max((hi - self.clock.now_us()) / US, 0.0))
        else:
            await self._open_loop(t0, hi)
        self.submitting = False
        drain_end = time.monotonic() + spec.drain_s
        while time.monotonic() < drain_end and not all(self.nodes[c].idle for c in self.client_ids):
            await asyncio.sleep(0.02)
        res = self.result
        res.outstanding_end = sum(0 if self.nodes[c].idle else 1 for c in self.client_ids)
        res.histogram = self.hist.encode().decode()
        res.cpu_s = time.process_time() - cpu0
        res.net = stats_of(self.net)
        self.stop()
        await self.net.stop()
        trust.unlink(missing_ok=True)
        return res

    async def _grants(self) -> None:
        """Medical Chain: the patients' grants must be on chain before the doctors' records."""
        at = self.chain_offset + self.clock.now_us()
        grants = self.factory.grants(at)
        c = min(self.client_ids)
        for g in grants:
            self.issued[c].append(self.clock.now_us())
            self.local.append((c, c, self.submit_type(g)))
        self.wake()
        end = time.monotonic() + 30.0
        while not self.nodes[c].idle and time.monotonic() < end:
            await asyncio.sleep(0.01)
        # f+1 replies say the grants committed; the other replicas may execute them a little
        # later, and a replica that judges a record before its grant refuses it at admission
        await asyncio.sleep(1.0)
        self.issued[c].clear()
        self.result.completed = self.result.refused = 0

    async def _open_loop(self, t0: int, hi: int) -> None:
        rate = self.spec.rate
        if rate <= 0:
            raise ValueError("open loop needs a rate")
        clients = sorted(self.client_ids)
        k = 0
        while True:
            now = self.clock.now_us()
            if now >= hi:
                return
            due = int((now - t0) * rate / US) + 1
            while k < due:
                at = t0 + int(k * US / rate)
                c = clients[self.rr % len(clients)]
                self.rr += 1
                self._submit(c, at)
                k += 1
            await asyncio.sleep(0.001)


def run_load(spec: LoadSpec) -> LoadResult:
    """Run one load process to completion; writes ``spec.out`` (JSON) when set."""
    cons = load_consortium(spec.consortium)
    install_loop()

    async def main() -> LoadResult:
        host = LoadHost(spec, cons)
        return await host.run()

    result = asyncio.run(main())
    if spec.out:
        Path(spec.out).write_text(json.dumps(asdict(result)))
    return result


def merged_histogram(results: list[dict[str, Any]]) -> HdrHistogram:
    """One histogram of several load processes' results."""
    hist = HdrHistogram(1, 60 * US, 3)
    for r in results:
        if r.get("histogram"):
            hist.add(HdrHistogram.decode(r["histogram"].encode()))
    return hist
