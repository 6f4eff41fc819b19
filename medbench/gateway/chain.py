"""The gateway's road to the chain: a pool of PBFT clients over mutual TLS to every member.

Theory of operation
-------------------
Exactly what a load generator does (:mod:`medbench.runtime.loadgen`), for one request at a time
per HTTP request: the gateway process holds the consortium client identity ``gateway-<i>``
(:mod:`.enrol`), runs one sans-IO PBFT :class:`~medbench.consensus.pbft.Client` per client id on
a :class:`~medbench.runtime.driver.Driver` in the web server's event loop, and dials every member.
:meth:`ChainClient.submit` takes a free client, submits the transaction's wire bytes and waits
for the client's own rule: **f+1 matching replies** from distinct replicas (a refusal before
consensus needs 2f+1 matching refusals). No single replica, not even the gateway's own hospital
node, can fake a commit.

The result is a :class:`Outcome`: ``accepted`` with the ledger transaction ID, or ``refused``
with the validator's reason (``"<reason>: <detail>"``, a :class:`medbench.access.Reason` value
first). While fewer than ``n - f`` members are reachable, or when no reply quorum arrives within
``timeout_s``, :class:`NoQuorum` is raised (the HTTP layer answers 503); the PBFT client keeps
retransmitting and is reused once its request completes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from medbench import codec
from medbench.consensus.auth import SignatureKeyring
from medbench.consensus.pbft import Client, Completion, Submit
from medbench.runtime import certs
from medbench.runtime.config import Consortium
from medbench.runtime.driver import Clock, Driver, reply_target
from medbench.runtime.node import nacl_key
from medbench.runtime.transport import Network, public_key_of_pem


class NoQuorum(Exception):
    """The consortium cannot commit now (fewer than n - f members reachable, or no quorum)."""


@dataclass(frozen=True)
class Outcome:
    """What the chain answered for one transaction."""

    accepted: bool
    tx_id: bytes = b""
    reason: str = ""  # "<reason>: <detail>" when refused
    latency_us: int = 0

    @property
    def code(self) -> str:
        """The typed reason (e.g. ``no-grant``), empty when accepted."""
        return self.reason.split(":", 1)[0].strip()


def outcome_of(comp: Completion) -> Outcome:
    """Read a Medical Chain completion (``["accepted", id]`` / ``["refused", reason]``)."""
    lat = max(comp.completed_us - comp.submitted_us, 0)
    if comp.refusal:
        return Outcome(False, reason=comp.refusal, latency_us=lat)
    try:
        doc = codec.decode(comp.result)
    except codec.DecodeError:
        return Outcome(False, reason="malformed: unreadable result", latency_us=lat)
    if isinstance(doc, list) and len(doc) == 2 and doc[0] == "accepted":
        return Outcome(True, tx_id=bytes(doc[1]), latency_us=lat)
    if isinstance(doc, list) and len(doc) == 2 and doc[0] == "refused":
        return Outcome(False, reason=str(doc[1]), latency_us=lat)
    return Outcome(False, reason="malformed: unexpected result", latency_us=lat)


class ChainClient(Driver):
    """PBFT clients of one gateway (see the module docstring)."""

    def __init__(
        self,
        cons: Consortium,
        identity: str,
        cert: Path,
        key: Path,
        password: bytes,
        trust: Path,
        *,
        timeout_s: float = 8.0,
    ) -> None:
        super().__init__(Clock(cons.epoch_unix_us), tick_ms=10.0)
        self.cons = cons
        group = cons.group(identity)
        self.cert, self.key_path, self.password, self.trust = cert, key, password, trust
        signing = nacl_key(certs.read_key(key, password, group.public_key))
        directory = {m.id: VerifyKey(m.validator_key) for m in cons.members}
        directory.update({c: VerifyKey(group.public_key) for c in group.ids})
        stamp = self.clock.now_us()
        for c in group.ids:
            client = Client(
                c,
                cons.n,
                SignatureKeyring(c, cons.n, signing, directory),
                cons.client_retransmit_us,
            )
            client.timestamp = stamp  # timestamps grow across gateway restarts
            self.nodes[c] = client
        self.client_ids = frozenset(group.ids)
        self.free: deque[int] = deque(sorted(group.ids))
        self.waiting: deque[asyncio.Future[int]] = deque()
        self.pending: dict[int, asyncio.Future[Completion]] = {}
        self.timeout_s = timeout_s
        self.submitted = 0
        self.accepted = 0
        self.refused = 0
        self.timeouts = 0
        self.latencies: deque[tuple[float, int]] = deque(maxlen=4096)  # (wall time, commit µs)

    # --- Driver hooks ----------------------------------------------------------------------------
    def dispatch(self, src: int, msg: Any) -> int | None:
        return reply_target(msg, self.client_ids)

    def output(self, node_id: int, ready: Any) -> None:
        for comp in ready.completed:
            if not isinstance(comp, Completion):
                continue
            fut = self.pending.pop(comp.client, None)
            if fut is not None and not fut.done():
                fut.set_result(comp)
            self._release(comp.client)

    def _release(self, client: int) -> None:
        while self.waiting:
            w = self.waiting.popleft()
            if not w.done():
                w.set_result(client)
                return
        self.free.append(client)

    # --- life cycle ------------------------------------------------------------------------------
    async def connect(self, wait_s: float = 10.0) -> None:
        """Dial every member; wait (bounded) until n - f of them are connected."""
        cons = self.cons
        tls = None
        if cons.transport == "tls":
            tls = certs.client_context(self.cert, self.key_path, self.password, self.trust)
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
            tls_client=tls,
            on_ready=self.wake,
            accept_clients=False,
        )
        for m in cons.members:
            self.net.dial(m.id)
        self.net.start()
        self.start()
        end = time.monotonic() + wait_s
        while time.monotonic() < end and self.net.peers_connected < cons.n:
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        """Stop rounds and close the links."""
        self.stop()
        if self.net is not None:
            await self.net.stop()

    @property
    def reachable(self) -> int:
        """Members connected now."""
        return self.net.peers_connected if self.net is not None else 0

    @property
    def quorum(self) -> bool:
        """Whether enough members are reachable to commit (n - f)."""
        return self.reachable >= self.cons.n - self.cons.f

    def chain_time_us(self, offset_us: int) -> int:
        """The consortium clock plus ``offset_us`` (the chain's genesis time)."""
        return offset_us + self.clock.now_us()

    # --- submitting ------------------------------------------------------------------------------
    async def submit(self, op: bytes) -> Outcome:
        """Submit one transaction and wait for f+1 matching replies (see the module docstring)."""
        if not self.quorum:
            raise NoQuorum(f"{self.reachable} of {self.cons.n} members reachable")
        loop = asyncio.get_running_loop()
        if self.free:
            client = self.free.popleft()
        else:
            w: asyncio.Future[int] = loop.create_future()
            self.waiting.append(w)
            try:
                client = await asyncio.wait_for(w, self.timeout_s)
            except TimeoutError:
                raise NoQuorum("every chain client is busy") from None
        fut: asyncio.Future[Completion] = loop.create_future()
        self.pending[client] = fut
        self.submitted += 1
        self.local.append((client, client, Submit(op)))
        self.wake()
        try:
            comp = await asyncio.wait_for(asyncio.shield(fut), self.timeout_s)
        except TimeoutError:
            self.timeouts += 1
            raise NoQuorum(f"no reply quorum within {self.timeout_s:.0f} s") from None
        out = outcome_of(comp)
        if out.accepted:
            self.accepted += 1
            self.latencies.append((time.time(), out.latency_us))
        else:
            self.refused += 1
        return out
