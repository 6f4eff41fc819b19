"""The runtime's links: TCP (TLS 1.3 inside unless ``plain``), frames, bounded queues, faults.

Theory of operation
-------------------
:class:`Network` owns a process's connections. A node listens on its address and dials every
member with a higher id (one TCP link per pair of nodes: the lower id dials, with capped
exponential backoff and jitter after a failure or a lost link); a load generator dials every
member. A :class:`Connection` goes through three states:

1. **handshake** — TLS 1.3 run by this module on :class:`ssl.SSLObject` memory BIOs (so every
   failure surfaces here, is classified by :func:`.certs.verify_reason` and counted; asyncio's
   own TLS transport swallows server-side handshake failures), bounded by
   ``handshake_timeout_s``. The peer's identity is read from its verified certificate
   (:func:`.certs.identity_of`); a node certificate must carry the member's pinned key, a
   client certificate only ids the consortium file lists with its key, and a dialled member must
   be the one we meant to reach;
2. **hello** — both sides send a HELLO frame (:mod:`.framing`); the ids it claims must be ids the
   certificate names and its consortium digest must be ours, within ``hello_timeout_s``;
3. **open** — the connection is routed: every id it speaks for maps to it (a newer connection for
   the same node replaces an older one). Incoming frames wait in a per-connection inbox (at most
   ``inbox_frames``; beyond that the socket stops being read, so a flooding peer is slowed by TCP
   itself and memory stays bounded) for the driver to decode and step them fairly, connection by
   connection.

Hostile input never raises out of this module: a malformed, oversized or unknown frame, a frame
trickled slower than ``frame_timeout_s`` (slowloris), too many pending handshakes, an unknown
CA, a revoked or wrong-id certificate, a bad HELLO, a source id the certificate does not name, or
more than ``max_bad_frames`` undecodable messages close the connection and are counted in
:attr:`Network.rejections` by reason.

Sending: the driver hands :meth:`Network.send` one frame per destination; frames for a
connection are queued and written together by :meth:`Network.flush` (one TLS write, one
syscall, per connection per driver round). While the kernel buffer is above its high-water mark
(``pause_writing``) frames wait in a per-connection overflow queue of at most
``out_queue_bytes``; beyond it they are dropped and counted (``drops["queue-full"]``): PBFT
recovers lost messages by retransmission, view change and state transfer, while an unbounded
queue towards a dead or slow peer would not recover memory.

Link faults (:class:`LinkFaults`, from the node file's ``[link_faults]``) are injected on the
sending side with a seeded :class:`random.Random`: per-frame delay with uniform jitter (FIFO per
link), loss, bandwidth (a serialisation queue per link) and partitions (frames to and from a
partitioned peer are dropped at this node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from medbench.runtime.certs import PeerCertError, identity_of, verify_reason
from medbench.runtime.config import LinkFaultConfig, TransportLimits
from medbench.runtime.framing import HELLO, FrameError, FrameReader, Hello

log = logging.getLogger("medbench.runtime.transport")

READ_CHUNK = 1 << 16
WRITE_HIGH_WATER = 4 << 20
HANDSHAKE, HELLO_WAIT, OPEN, CLOSED = range(4)


class TlsLayer:
    """TLS 1.3 on memory BIOs: bytes in from the socket, plaintext out, records to send."""

    __slots__ = ("done", "inc", "obj", "out")

    def __init__(self, ctx: ssl.SSLContext, server_side: bool) -> None:
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=server_side)
        self.done = False

    def start(self) -> bytes:
        """The client's first flight (the server's is empty)."""
        self._handshake()
        return self.out.read()

    def _handshake(self) -> bool:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.done = True
        return True

    def receive(self, data: bytes) -> tuple[bytes, bytes, bool]:
        """Feed socket bytes: ``(plaintext, bytes to send back, peer closed)``.

        Raises :class:`ssl.SSLError` (a failed handshake, an alert, a corrupt record).
        """
        self.inc.write(data)
        if not self.done and not self._handshake():
            return b"", self.out.read(), False
        chunks = []
        eof = False
        obj = self.obj
        while True:
            try:
                chunk = obj.read(READ_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            if not chunk:
                break
            chunks.append(chunk)
        plain = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return plain, self.out.read(), eof

    def send(self, data: bytes) -> bytes:
        """Encrypt ``data`` into records."""
        view = memoryview(data)
        obj = self.obj
        while view:
            n = obj.write(view)
            view = view[n:]
        return self.out.read()

    def peer_der(self) -> bytes | None:
        """The peer's certificate (DER), after the handshake."""
        return self.obj.getpeercert(binary_form=True)


class LinkFaults:
    """Seeded faults on this node's outgoing frames (see the module docstring)."""

    def __init__(self, config: LinkFaultConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.partition = frozenset(config.partition)
        self.peers = frozenset(config.peers)
        self._free_at: dict[int, float] = {}  # bandwidth: when each link's queue is empty
        self._last: dict[int, float] = {}  # FIFO: latest release time per link

    def applies(self, peer: int) -> bool:
        """Whether delay, loss and bandwidth apply to ``peer``."""
        return not self.peers or peer in self.peers

    def plan(self, peer: int, size: int, now: float) -> float | None:
        """When a frame of ``size`` bytes to ``peer`` leaves (loop time), or ``None``: lost."""
        cfg = self.config
        if peer in self.partition:
            return None
        if not self.applies(peer):
            return now
        if cfg.loss and self.rng.random() < cfg.loss:
            return None
        t = now
        if cfg.bandwidth_mbps:
            start = max(now, self._free_at.get(peer, now))
            t = start + size * 8 / (cfg.bandwidth_mbps * 1e6)
            self._free_at[peer] = t
        delay = cfg.delay_ms
        if cfg.jitter_ms:
            delay += self.rng.uniform(-cfg.jitter_ms, cfg.jitter_ms)
        t += max(delay, 0.0) / 1000.0
        t = max(t, self._last.get(peer, 0.0))  # links stay FIFO
        self._last[peer] = t
        return t


class Connection(asyncio.Protocol):
    """One TCP connection (see the module docstring for its states)."""

    def __init__(self, net: Network, *, expect: int | None = None) -> None:
        self.net = net
        self.expect = expect  # the member we dialled (None: accepted)
        self.state = HANDSHAKE
        self.transport: asyncio.Transport | None = None
        self.tls: TlsLayer | None = None
        self.reader = FrameReader(net.limits.max_frame_bytes)
        self.started = time.monotonic()
        self.role = ""
        self.node_id: int | None = None
        self.cert_ids: frozenset[int] | None = None  # None: plain transport (ids are claimed)
        self.ids: frozenset[int] = frozenset()
        self.inbox: deque[tuple[int, int, bytes]] = deque()
        self.inbox_bytes = 0
        self.queued = False  # in the network's ready queue
        self.reading_paused = False
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.overflow: deque[bytes] = deque()
        self.overflow_bytes = 0
        self.writing_paused = False
        self.bad_frames = 0
        self.closed: asyncio.Future[None] = net.loop.create_future()
        self.bytes_in = 0
        self.bytes_out = 0

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        net = self.net
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        if self.expect is None and len(net.pending) >= net.limits.max_pending_connections:
            self.reject("too-many-pending")
            return
        net.pending.add(self)
        if not net.tls:  # plain transport
            self._handshake_done()
            return
        if self.expect is None:
            if net.tls_server is None:
                self.reject("not-accepting")
                return
            self.tls = TlsLayer(net.tls_server, server_side=True)
        else:
            assert net.tls_client is not None
            self.tls = TlsLayer(net.tls_client, server_side=False)
            transport.write(self.tls.start())

    def data_received(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        self.bytes_in += len(data)
        tls = self.tls
        if tls is not None:
            was_done = tls.done
            try:
                data, reply, eof = tls.receive(data)
            except ssl.SSLError as exc:
                self.reject(verify_reason(exc), exc)
                return
            if reply and self.transport is not None:
                self.transport.write(reply)
            if not was_done and tls.done:
                self._handshake_done()
                if self.state == CLOSED:
                    return
            if eof:
                self.close()
                return
            if not data:
                return
        try:
            frames = self.reader.feed(data)
        except FrameError as exc:
            self.reject(exc.reason, exc)
            return
        if not frames:
            return
        if self.state == HELLO_WAIT:
            kind, _src, payload = frames[0]
            if kind != HELLO:
                self.reject("no-hello")
                return
            try:
                hello = Hello.decode(payload)
            except FrameError as exc:
                self.reject(exc.reason, exc)
                return
            self._hello(hello)
            if self.state != OPEN:
                return
            frames = frames[1:]
        inbox = self.inbox
        for f in frames:
            if f[0] == HELLO:
                self.reject("repeated-hello")
                return
            inbox.append(f)
            self.inbox_bytes += len(f[2])
        if frames:
            self.net.ready(self)
            lim = self.net.limits
            full = len(inbox) >= lim.inbox_frames or self.inbox_bytes >= lim.inbox_bytes
            if full and not self.reading_paused:
                self.reading_paused = True
                self.net.counters["inbox-full-pauses"] += 1
                if self.transport is not None:
                    self.transport.pause_reading()

    def eof_received(self) -> bool | None:
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        while self.overflow and not self.writing_paused:
            chunk = self.overflow.popleft()
            self.overflow_bytes -= len(chunk)
            self.pending.append(chunk)
            self.pending_bytes += len(chunk)
        self.flush()

    # --- handshake and hello -------------------------------------------------------------------
    def _handshake_done(self) -> None:
        net = self.net
        if self.tls is not None:
            der = self.tls.peer_der()
            if der is None:
                self.reject("no-certificate")
                return
            try:
                ident = identity_of(der, net.n)
            except PeerCertError as exc:
                self.reject(exc.reason, exc)
                return
            if ident.role == "node":
                assert ident.node_id is not None
                if net.pins.get(ident.node_id) != ident.public_key:
                    self.reject("not-member-key", f"node {ident.node_id}")
                    return
            elif net.client_pins is not None:
                keys = {net.client_pins.get(c) for c in ident.ids}
                if None in keys:
                    self.reject("unknown-client", f"ids {sorted(ident.ids)[:4]}")
                    return
                if keys != {ident.public_key}:
                    self.reject("not-member-key", "client")
                    return
            if self.expect is not None and ident.node_id != self.expect:
                self.reject("wrong-id", f"dialled {self.expect}, certificate names {ident.node_id}")
                return
            self.role = ident.role
            self.node_id = ident.node_id
            self.cert_ids = ident.ids
        self.state = HELLO_WAIT
        self._write(net.hello)

    def _hello(self, hello: Hello) -> None:
        net = self.net
        if hello.consortium != net.digest:
            self.reject("wrong-consortium")
            return
        claimed = frozenset(hello.ids)
        if not claimed:
            self.reject("bad-hello", "no ids")
            return
        if self.cert_ids is not None:
            if hello.role != self.role or not claimed <= self.cert_ids:
                self.reject("id-mismatch", f"claims {sorted(claimed)[:4]} as {hello.role}")
                return
        else:  # plain transport: believed (measurement only)
            self.role = hello.role
            nodes = [i for i in claimed if i < net.n]
            if hello.role == "node":
                if len(nodes) != 1:
                    self.reject("bad-hello", "a node claims exactly one replica id")
                    return
                self.node_id = nodes[0]
            elif nodes:
                self.reject("id-mismatch", "a client claims a replica id")
                return
            if self.expect is not None and self.node_id != self.expect:
                self.reject("wrong-id")
                return
        if self.role == "node" and self.node_id == net.self_id:
            self.reject("wrong-id", "a connection to ourselves")
            return
        if self.role == "client" and not net.accept_clients:
            self.reject("unexpected-client")
            return
        self.ids = claimed
        self.state = OPEN
        net.pending.discard(self)
        net.attach(self)

    # --- sending ---------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.tls is not None:
            data = self.tls.send(data)
        self.bytes_out += len(data)
        self.transport.write(data)

    def enqueue(self, data: bytes) -> bool:
        """Queue a frame; ``False`` if it was dropped (queue full or connection closed)."""
        if self.state != OPEN:
            return False
        if self.writing_paused:
            if self.overflow_bytes + len(data) > self.net.limits.out_queue_bytes:
                return False
            self.overflow.append(data)
            self.overflow_bytes += len(data)
            return True
        if not self.pending:
            self.net.dirty.append(self)
        self.pending.append(data)
        self.pending_bytes += len(data)
        return True

    def flush(self) -> None:
        """Write every queued frame in one go."""
        if not self.pending:
            return
        data = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
        self.pending = []
        self.pending_bytes = 0
        self._write(data)

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting in this process for this connection."""
        return self.pending_bytes + self.overflow_bytes

    # --- inbox -----------------------------------------------------------------------------------
    def take(self) -> tuple[int, int, bytes]:
        """The oldest frame of the inbox (the driver's side)."""
        f = self.inbox.popleft()
        self.inbox_bytes -= len(f[2])
        return f

    def consumed(self) -> None:
        """The driver took frames: read again once the inbox is down to half."""
        lim = self.net.limits
        if (
            self.reading_paused
            and len(self.inbox) <= lim.inbox_frames // 2
            and self.inbox_bytes <= lim.inbox_bytes // 2
        ):
            self.reading_paused = False
            if self.reader.partial_since is not None:
                self.reader.partial_since = time.monotonic()  # the deadline restarts now
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def bad_frame(self, reason: str) -> None:
        """A frame of this connection did not decode: count it; too many close the link."""
        self.net.rejections[reason] += 1
        self.bad_frames += 1
        if self.bad_frames > self.net.limits.max_bad_frames:
            self.reject("too-many-bad-frames")

    # --- closing ---------------------------------------------------------------------------------
    def reject(self, reason: str, detail: object = "") -> None:
        """Refuse this connection for ``reason`` (counted) and close it."""
        self.net.rejections[reason] += 1
        peer = self.node_id if self.node_id is not None else sorted(self.ids)[:3]
        log.info("refused connection (peer %s): %s %s", peer, reason, str(detail)[:160])
        if self.tls is not None and self.transport is not None:
            with contextlib.suppress(Exception):
                alert = self.tls.out.read()  # e.g. the TLS alert after a failed verification
                if alert:
                    self.transport.write(alert)
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        if self.transport is not None:
            self.transport.close()
        self._closed()

    def _closed(self) -> None:
        self.state = CLOSED
        self.inbox.clear()
        self.inbox_bytes = 0
        self.pending = []
        self.overflow.clear()
        self.overflow_bytes = self.pending_bytes = 0
        self.net.detach(self)
        if not self.closed.done():
            self.closed.set_result(None)


class Network:
    """A process's connections: listening, dialling, routing, queues and counters."""

    def __init__(
        self,
        *,
        self_id: int | None,
        ids: frozenset[int],
        role: str,
        n: int,
        digest: bytes,
        limits: TransportLimits,
        pins: dict[int, bytes],
        addresses: dict[int, tuple[str, int]],
        tls_server: ssl.SSLContext | None,
        tls_client: ssl.SSLContext | None,
        on_ready: Callable[[], None],
        faults: LinkFaultConfig | None = None,
        accept_clients: bool = True,
        client_pins: dict[int, bytes] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.self_id = self_id
        self.n = n
        self.digest = digest
        self.limits = limits
        self.pins = pins
        self.addresses = addresses
        self.tls_server = tls_server
        self.tls_client = tls_client
        self.tls = tls_server is not None or tls_client is not None
        self.on_ready = on_ready
        self.accept_clients = accept_clients
        self.client_pins = client_pins  # client id -> key its certificate must carry
        self.hello = Hello(digest, role, tuple(sorted(ids))).encode()
        self.routes: dict[int, Connection] = {}
        self.nodes: dict[int, Connection] = {}
        self.clients: set[Connection] = set()
        self.pending: set[Connection] = set()
        self.queue: deque[Connection] = deque()
        self.dirty: list[Connection] = []
        self.rejections: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()
        self.faults = LinkFaults(faults) if faults is not None and faults.active else None
        self._delayed: dict[int, deque[tuple[float, bytes]]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._housekeeping: asyncio.TimerHandle | None = None
        self.port = 0
        self.housekeeping_s = 0.5

    # --- life cycle ------------------------------------------------------------------------------
    async def listen(self, host: str, port: int) -> None:
        """Accept connections on ``host:port``."""
        self._server = await self.loop.create_server(
            lambda: Connection(self), host, port, reuse_address=True, backlog=128
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def dial(self, peer: int) -> None:
        """Keep a connection to member ``peer`` up (reconnecting with backoff)."""
        self._tasks.append(self.loop.create_task(self._dialer(peer)))

    def start(self) -> None:
        """Start the housekeeping timer (deadlines of handshakes, hellos and slow frames)."""
        self._housekeeping = self.loop.call_later(self.housekeeping_s, self._housekeep)

    async def stop(self) -> None:
        """Close everything: listener, dialers, connections."""
        self._stopping = True
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        for t in self._timers.values():
            t.cancel()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        for conn in [*self.nodes.values(), *self.clients, *self.pending]:
            conn.flush()
            conn.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _dialer(self, peer: int) -> None:
        lim = self.limits
        backoff = lim.reconnect_min_ms / 1000.0
        rng = random.Random(hash((self.self_id, peer)))
        host, port = self.addresses[peer]
        while not self._stopping:
            opened = False
            try:
                _, conn = await self.loop.create_connection(
                    lambda: Connection(self, expect=peer), host, port
                )
                await conn.closed
                opened = conn.ids != frozenset()
            except (TimeoutError, OSError):
                self.counters["dial-failures"] += 1
            if self._stopping:
                return
            if opened:
                backoff = lim.reconnect_min_ms / 1000.0
            await asyncio.sleep(backoff * (0.5 + rng.random() / 2))
            backoff = min(backoff * 2, lim.reconnect_max_ms / 1000.0)

    def _housekeep(self) -> None:
        now = time.monotonic()
        lim = self.limits
        for conn in list(self.pending):
            if conn.state == HANDSHAKE and now - conn.started > lim.handshake_timeout_s:
                conn.reject("handshake-timeout")
            elif conn.state == HELLO_WAIT and now - conn.started > (
                lim.handshake_timeout_s + lim.hello_timeout_s
            ):
                conn.reject("hello-timeout")
        for conn in [*self.nodes.values(), *self.clients, *self.pending]:
            since = conn.reader.partial_since
            if conn.reading_paused:
                continue  # we stopped reading (backpressure): the peer is not the slow one
            if since is not None and now - since > lim.frame_timeout_s:
                conn.reject("slow-frame")
        if not self._stopping:
            self._housekeeping = self.loop.call_later(self.housekeeping_s, self._housekeep)

    # --- routing ---------------------------------------------------------------------------------
    def attach(self, conn: Connection) -> None:
        """An open connection: route its ids to it."""
        if conn.role == "node":
            assert conn.node_id is not None
            old = self.nodes.get(conn.node_id)
            self.nodes[conn.node_id] = conn
            if old is not None and old is not conn:
                self.counters["replaced-links"] += 1
                old.close()
        else:
            # one connection per client id: a newer one replaces those it overlaps
            for old_conn in {self.routes[i] for i in conn.ids if i in self.routes}:
                if old_conn is not conn and old_conn.role == "client":
                    self.counters["replaced-links"] += 1
                    old_conn.close()
            if len(self.clients) >= self.limits.max_client_connections:
                conn.reject("too-many-clients")
                return
            self.clients.add(conn)
        for i in conn.ids:
            self.routes[i] = conn
        self.counters["links-opened"] += 1
        log.info("link open: %s %s", conn.role, conn.node_id if conn.role == "node" else "")

    def detach(self, conn: Connection) -> None:
        """A closed connection: forget its routes."""
        self.pending.discard(conn)
        if conn.role == "node" and self.nodes.get(conn.node_id or 0) is conn:
            del self.nodes[conn.node_id or 0]
        self.clients.discard(conn)
        for i in conn.ids:
            if self.routes.get(i) is conn:
                del self.routes[i]

    def ready(self, conn: Connection) -> None:
        """``conn`` has frames in its inbox: queue it for the driver."""
        if not conn.queued:
            conn.queued = True
            self.queue.append(conn)
            self.on_ready()

    @property
    def peers_connected(self) -> int:
        """Open links to other members."""
        return len(self.nodes)

    # --- sending ---------------------------------------------------------------------------------
    def send(self, dst: int, data: bytes) -> None:
        """Queue one frame for ``dst`` (a node or client id); drops are counted."""
        conn = self.routes.get(dst)
        if conn is None:
            self.drops["no-route"] += 1
            return
        faults = self.faults
        if faults is not None:
            peer = conn.node_id if conn.node_id is not None else dst
            when = faults.plan(peer, len(data), self.loop.time())
            if when is None:
                self.drops["fault"] += 1
                return
            if when > self.loop.time() + 1e-4:
                self._delay(conn, peer, when, data)
                return
        if not conn.enqueue(data):
            self.drops["queue-full" if conn.state == OPEN else "closed"] += 1

    def _delay(self, conn: Connection, peer: int, when: float, data: bytes) -> None:
        line = self._delayed.setdefault(peer, deque())
        line.append((when, data))
        if peer not in self._timers:
            self._timers[peer] = self.loop.call_at(line[0][0], self._release, peer)

    def _release(self, peer: int) -> None:
        self._timers.pop(peer, None)
        line = self._delayed.get(peer)
        now = self.loop.time()
        sent = False
        while line and line[0][0] <= now + 1e-4:
            _, data = line.popleft()
            conn = self.nodes.get(peer) if peer < self.n else self.routes.get(peer)
            if conn is None or not conn.enqueue(data):
                self.drops["fault-closed"] += 1
            else:
                sent = True
        if sent:
            self.flush()
        if line:
            self._timers[peer] = self.loop.call_at(line[0][0], self._release, peer)

    def dropped_from(self, conn: Connection) -> bool:
        """Whether frames from ``conn`` are dropped on arrival (a partition)."""
        faults = self.faults
        return faults is not None and conn.node_id is not None and conn.node_id in faults.partition

    def set_faults(self, config: LinkFaultConfig) -> None:
        """Replace the link faults (``SIGHUP``)."""
        self.faults = LinkFaults(config) if config.active else None

    def flush(self) -> None:
        """Write every connection's queued frames."""
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.flush()

    # --- introspection ---------------------------------------------------------------------------
    def queue_bytes(self) -> dict[int, int]:
        """Bytes queued per connected member."""
        return {i: c.queued_bytes for i, c in self.nodes.items()}


def public_key_of_pem(pem: str) -> bytes:
    """The raw public key of a PEM certificate (the consortium file's pins)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def stats_of(net: Network) -> dict[str, Any]:
    """Counters for status and metrics."""
    return {
        "peers": len(net.nodes),
        "clients": len(net.clients),
        "pending": len(net.pending),
        "rejections": dict(net.rejections),
        "drops": dict(net.drops),
        "counters": dict(net.counters),
    }
