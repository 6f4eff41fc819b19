"""Hostile peers over real sockets (127.0.0.1): every refusal typed, counted, bounded."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from medbench.consensus.pbft import make_keyrings
from medbench.consensus.pbft.messages import Prepare
from medbench.node import Ready
from medbench.runtime import certs
from medbench.runtime.config import LinkFaultConfig, TransportLimits
from medbench.runtime.driver import Clock, Driver
from medbench.runtime.framing import HEADER, PBFT, frame, message_frame
from medbench.runtime.transport import Network

PW = b"pw"
N = 4
DIGEST = b"consortium-digest"
LIMITS = TransportLimits(
    max_frame_bytes=64 * 1024,
    inbox_frames=64,
    inbox_bytes=200_000,
    handshake_timeout_s=0.3,
    hello_timeout_s=0.3,
    frame_timeout_s=0.3,
    max_pending_connections=4,
    max_bad_frames=3,
    reconnect_min_ms=10,
    reconnect_max_ms=50,
)


class Identity:
    def __init__(self, d: Path, name: str, cert: Any, key: Any) -> None:
        self.cert = d / f"{name}.pem"
        self.key = d / f"{name}.key"
        self.cert.write_text(certs.cert_pem(cert))
        self.key.write_text(certs.key_pem(key, PW))
        self.public = key.public


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("pki")
    ca = certs.new_ca("transport-test")
    out: dict[str, Any] = {}
    for i in range(N):
        key = certs.new_key()
        out[f"node{i}"] = Identity(d, f"node{i}", certs.issue_node_cert(ca, i, N, key.public), key)
    key = certs.new_key()
    out["client"] = Identity(
        d, "client", certs.issue_client_cert(ca, "load", range(8, 12), key.public), key
    )
    key = certs.new_key()
    out["impostor1"] = Identity(
        d, "impostor1", certs.issue_node_cert(ca, 1, N, key.public), key
    )  # a CA-valid certificate for member 1 with a key that is not member 1's
    key = certs.new_key()
    revoked = certs.issue_node_cert(ca, 2, N, key.public)
    ca.revoke(revoked, certs._now_us() - 60 * certs.US)
    out["revoked"] = Identity(d, "revoked", revoked, key)
    foreign = certs.new_ca("elsewhere")
    key = certs.new_key()
    out["foreign"] = Identity(d, "foreign", certs.issue_node_cert(foreign, 3, N, key.public), key)
    trust = d / "trust.pem"
    trust.write_text(certs.cert_pem(ca.cert) + certs.crl_pem(ca))
    out["trust"] = trust
    out["pins"] = {i: out[f"node{i}"].public for i in range(N)}
    return out


class Recorder(Driver):
    """A driver whose single local node records what it is given."""

    def __init__(self) -> None:
        super().__init__(Clock(0), tick_ms=20.0)
        self.got: list[tuple[int, Any]] = []
        rec = self

        class Node:
            def step(self, src: int, msg: Any) -> Ready:
                rec.got.append((src, msg))
                return Ready()

            def tick(self, now: int) -> Ready:
                return Ready()

        self.nodes[0] = Node()

    def dispatch(self, src: int, msg: Any) -> int | None:
        return 0


def network(
    pki: dict[str, Any],
    who: str,
    *,
    self_id: int | None,
    role: str,
    ids: frozenset[int],
    port: int = 0,
    on_ready: Callable[[], None] = lambda: None,
    tls: bool = True,
) -> Network:
    ident = pki[who]
    server = certs.server_context(ident.cert, ident.key, PW, pki["trust"]) if tls else None
    client = certs.client_context(ident.cert, ident.key, PW, pki["trust"]) if tls else None
    return Network(
        self_id=self_id,
        ids=ids,
        role=role,
        n=N,
        digest=DIGEST,
        limits=LIMITS,
        pins=pki["pins"],
        addresses={0: ("127.0.0.1", port)},
        tls_server=server if self_id is not None else None,
        tls_client=client,
        on_ready=on_ready,
        accept_clients=True,
    )


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def node0(pki: dict[str, Any], tls: bool = True) -> tuple[Network, Recorder]:
    drv = Recorder()
    net = network(pki, "node0", self_id=0, role="node", ids=frozenset({0, 4}), tls=tls,
                  on_ready=drv.wake)  # fmt: skip
    net.housekeeping_s = 0.05
    drv.net = net
    await net.listen("127.0.0.1", 0)
    net.start()
    drv.start()
    return net, drv


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


def _prepare(sender: int) -> Prepare:
    rings = make_keyrings("signatures", N, [], seed=b"t")
    msg = Prepare(0, 1, bytes(32), sender)
    return msg.with_auth(rings[sender].sign(msg.body()))


async def _dial(pki: dict[str, Any], who: str, server: Network, **kw: Any) -> Network:
    ids = kw.pop("ids", frozenset({1, 5}))
    role = kw.pop("role", "node")
    cli = network(pki, who, self_id=None, role=role, ids=ids, port=server.port, **kw)
    cli.dial(0)
    cli.start()
    return cli


def test_valid_peer_links_and_hostile_frames_are_counted(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        cli = await _dial(pki, "node1", net)
        assert await until(lambda: 1 in net.nodes and 0 in cli.nodes)
        conn = cli.nodes[0]
        conn.enqueue(message_frame(1, _prepare(1)))
        conn.enqueue(message_frame(2, _prepare(2)))  # a source id its certificate lacks
        conn.flush()
        assert await until(lambda: len(drv.got) == 1)
        assert drv.got[0][0] == 1 and drv.got[0][1] == _prepare(1)
        assert await until(lambda: net.rejections["spoofed-source"] == 1)
        for _ in range(4):  # undecodable messages: counted, then the link is closed
            conn.enqueue(frame(PBFT, 1, b"\xc1\xc1 not msgpack"))
        conn.flush()
        assert await until(lambda: net.rejections["too-many-bad-frames"] == 1)
        assert net.rejections["bad-message"] >= 3
        assert await until(lambda: 1 in net.nodes)  # the peer reconnects (backoff)
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_oversized_frame_closes_the_link(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        cli = await _dial(pki, "node1", net)
        assert await until(lambda: 1 in net.nodes and 0 in cli.nodes)
        cli.nodes[0]._write(HEADER.pack(10 * 1024 * 1024, PBFT, 1) + b"xx")
        assert await until(lambda: net.rejections["frame-too-large"] == 1)
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_slowloris_frame_and_silent_handshake_time_out(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        cli = await _dial(pki, "node1", net)
        assert await until(lambda: 1 in net.nodes and 0 in cli.nodes)
        cli.nodes[0]._write(struct.pack(">I", 100) + b"\x02")  # a frame that never completes
        _, silent = await asyncio.open_connection("127.0.0.1", net.port)  # no ClientHello
        assert await until(lambda: net.rejections["slow-frame"] >= 1)
        assert await until(lambda: net.rejections["handshake-timeout"] >= 1)
        silent.close()
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_garbage_and_pending_flood(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        _, w = await asyncio.open_connection("127.0.0.1", net.port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await until(lambda: net.rejections["tls-error"] == 1)
        w.close()
        writers = [
            (await asyncio.open_connection("127.0.0.1", net.port))[1]
            for _ in range(LIMITS.max_pending_connections + 3)
        ]
        assert await until(lambda: net.rejections["too-many-pending"] >= 3)
        assert len(net.pending) <= LIMITS.max_pending_connections
        for w in writers:
            w.close()
        drv.stop()
        await net.stop()

    run(body)


@pytest.mark.parametrize(
    ("who", "reason", "kw"),
    [
        ("foreign", "foreign-ca", {"ids": frozenset({3, 7})}),
        ("revoked", "revoked", {"ids": frozenset({2, 6})}),
        ("impostor1", "not-member-key", {}),
        ("node1", "id-mismatch", {"ids": frozenset({2})}),  # claims an id its certificate lacks
        ("client", "id-mismatch", {"ids": frozenset({8}), "role": "node"}),
    ],
)
def test_refused_identities(pki: dict[str, Any], who: str, reason: str, kw: Any) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        cli = await _dial(pki, who, net, **kw)
        assert await until(lambda: net.rejections[reason] >= 1), dict(net.rejections)
        assert not net.nodes and not net.clients
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_client_ids_come_from_the_certificate(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        cli = await _dial(pki, "client", net, ids=frozenset({8, 9}), role="client")
        assert await until(lambda: len(net.clients) == 1)
        assert set(net.routes) == {8, 9}
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_flood_is_bounded_by_pausing_reads(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        drv.stop()  # nobody consumes: the inbox must stay bounded
        cli = await _dial(pki, "node1", net)
        assert await until(lambda: 1 in net.nodes and 0 in cli.nodes)
        conn = cli.nodes[0]
        data = message_frame(1, _prepare(1))
        for _ in range(20):
            for _ in range(500):
                conn.enqueue(data)
            conn.flush()
            await asyncio.sleep(0.01)
        assert await until(lambda: net.counters["inbox-full-pauses"] >= 1)
        inbox = len(net.nodes[1].inbox)
        assert LIMITS.inbox_frames <= inbox < LIMITS.inbox_frames + 2000
        await cli.stop()
        await net.stop()

    run(body)


def test_flood_of_large_frames_is_bounded_in_bytes(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        drv.stop()
        cli = await _dial(pki, "node1", net)
        assert await until(lambda: 1 in net.nodes and 0 in cli.nodes)
        conn = cli.nodes[0]
        big = frame(PBFT, 1, b"x" * 30_000)
        for _ in range(30):
            for _ in range(20):
                conn.enqueue(big)
            conn.flush()
            await asyncio.sleep(0.01)
        assert await until(lambda: net.counters["inbox-full-pauses"] >= 1)
        peer = net.nodes[1]
        assert len(peer.inbox) < LIMITS.inbox_frames
        assert peer.inbox_bytes < LIMITS.inbox_bytes + 512 * 1024  # plus one read's worth
        await cli.stop()
        await net.stop()

    run(body)


def test_a_second_connection_of_a_client_replaces_the_first(pki: dict[str, Any]) -> None:
    async def body() -> None:
        net, drv = await node0(pki)
        first = await _dial(pki, "client", net, ids=frozenset({8, 9}), role="client")
        assert await until(lambda: len(net.clients) == 1)
        old = net.routes[8]
        second = await _dial(pki, "client", net, ids=frozenset({9, 10}), role="client")
        assert await until(lambda: net.routes.get(10) is not None and net.routes[10] is not old)
        assert old not in net.clients and net.counters["replaced-links"] >= 1
        await first.stop()
        await second.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_plain_transport_believes_hellos_but_not_replica_claims_from_clients(
    pki: dict[str, Any],
) -> None:
    async def body() -> None:
        net, drv = await node0(pki, tls=False)
        cli = await _dial(pki, "client", net, ids=frozenset({2, 9}), role="client", tls=False)
        assert await until(lambda: net.rejections["id-mismatch"] >= 1)
        await cli.stop()
        cli = await _dial(pki, "client", net, ids=frozenset({9}), role="client", tls=False)
        assert await until(lambda: 9 in net.routes)
        await cli.stop()
        drv.stop()
        await net.stop()

    run(body)


def test_link_faults_are_seeded() -> None:
    from medbench.runtime.transport import LinkFaults

    cfg = LinkFaultConfig(seed=7, delay_ms=5, jitter_ms=2, loss=0.2, partition=(3,))
    plans = []
    for _ in range(2):
        f = LinkFaults(cfg)
        plans.append([f.plan(1, 100, 10.0 + i / 1000) for i in range(200)])
    assert plans[0] == plans[1]
    lost = sum(p is None for p in plans[0])
    assert 20 < lost < 60
    kept = [p for p in plans[0] if p is not None]
    assert kept == sorted(kept)  # FIFO per link
    assert LinkFaults(cfg).plan(3, 100, 0.0) is None  # partitioned
    bw = LinkFaults(LinkFaultConfig(bandwidth_mbps=8.0))
    assert bw.plan(1, 1_000_000, 0.0) == pytest.approx(1.0)  # 8 Mbit at 8 Mbit/s
    assert bw.plan(1, 1_000_000, 0.0) == pytest.approx(2.0)
