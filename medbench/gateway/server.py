"""The gateway process: ``medbench gateway run --dir DIR --node I``.

Theory of operation
-------------------
One process per hospital, beside its node (same host: it reads the node's SQLite store). In one
event loop (uvloop when available):

* uvicorn serves the Starlette app (:mod:`.app`) over HTTPS (TLS 1.2+, the gateway's ECDSA
  certificate from the consortium CA). Client certificates are *optional* at the TLS layer, so a
  browser reaches the dashboard and auditors the chain endpoints, and *required* by every FHIR
  interaction; they are verified against the consortium CA and its CRL
  (``VERIFY_CRL_CHECK_LEAF``). The HTTP protocol class records each connection's verified
  certificate (:data:`.app.PEERS`) — uvicorn does not put it in the ASGI scope;
* the PBFT client pool (:class:`~.chain.ChainClient`) runs its driver rounds;
* the retention task applies the policy of docs/medical-chain.md §1.4 to this hospital's blob
  store every ``retention_s`` seconds (:func:`medbench.store.retention.blob_tier` per image: own
  institution's online; others' near-line after ``online_age``, offline — evicted locally, kept
  by the health authority's archive — after ``nearline_age``), counting moves and evictions in
  the metrics.

SIGTERM/SIGINT: uvicorn stops accepting, finishes what is in flight, then the chain links and
the store connection close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from medbench.access.scenario import GENESIS_US
from medbench.gateway import app as app_mod
from medbench.gateway import service
from medbench.gateway.chain import ChainClient
from medbench.gateway.enrol import GatewayFiles
from medbench.gateway.index import StoreIndex
from medbench.runtime.config import load_consortium
from medbench.runtime.node import install_loop
from medbench.runtime.telemetry import scrape
from medbench.runtime.world import World
from medbench.store.blobs import BlobStore, Tier
from medbench.store.errors import ArchiveMissing, BlobCorrupted
from medbench.store.retention import RetentionPolicy, blob_tier

log = logging.getLogger("medbench.gateway.server")


class PeerCertProtocol(H11Protocol):
    """uvicorn's h11 protocol, remembering each TLS connection's client certificate."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        obj = transport.get_extra_info("ssl_object")
        peer = transport.get_extra_info("peername")
        self._peer_key = None
        if obj is not None and peer:
            der = obj.getpeercert(binary_form=True)
            if der:
                self._peer_key = (str(peer[0]), int(peer[1]))
                service.PEERS[self._peer_key] = der

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_peer_key", None) is not None:
            service.PEERS.pop(self._peer_key, None)  # type: ignore[arg-type]
        super().connection_lost(exc)


@dataclass
class GatewayConfig:
    """What one gateway process needs."""

    root: Path
    node: int
    host: str = "127.0.0.1"
    port: int = 8443
    retention_s: float = 60.0
    online_age_s: float = 183 * 86_400.0
    nearline_age_s: float = 730 * 86_400.0
    commit_timeout_s: float = 8.0


def tls_context(files: GatewayFiles, trust: Path) -> ssl.SSLContext:
    """HTTPS: the gateway's certificate; client certificates optional, verified with the CRL."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.server_cert), str(files.server_key))
    ctx.load_verify_locations(cafile=str(trust))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def node_metrics_urls(root: Path, n: int) -> list[str | None]:
    """Every node's ``/metrics`` URL from its local file."""
    out: list[str | None] = []
    for i in range(n):
        try:
            doc = tomllib.loads((root / f"node-{i}" / "node.toml").read_text())
            addr = doc.get("metrics_listen", "")
            out.append(f"http://{addr}/metrics" if addr else None)
        except (OSError, tomllib.TOMLDecodeError):
            out.append(None)
    return out


def _scrape_all(urls: list[str | None]) -> list[dict[str, Any]]:
    out = []
    for i, url in enumerate(urls):
        st: dict[str, Any] | None = None
        if url is not None:
            with contextlib.suppress(OSError, ValueError):
                st = scrape(url, timeout=0.5)
        if st is None:
            out.append({"id": i, "up": False})
            continue
        out.append(
            {
                "id": i,
                "up": True,
                "view": int(st.get("view", 0)),
                "primary": int(st.get("primary", 0)),
                "last_executed": int(st.get("last_executed", 0)),
                "height": int(st.get("chain_height", 0)),
                "peers": int(st.get("peers_connected", 0)),
                "committed": int(
                    st.get("committed_requests_total", st.get("committed_requests", 0))
                ),
            }
        )
    return out


class Retention:
    """The scheduled retention pass over this hospital's images (see the module docstring)."""

    def __init__(self, gw: service.Gateway, policy: RetentionPolicy, own: bytes) -> None:
        self.gw, self.policy, self.own = gw, policy, own

    def run_once(self) -> None:
        gw = self.gw
        m = gw.metrics
        gw.index.refresh()
        now = gw.chain.chain_time_us(GENESIS_US)
        for info in list(gw.index.blobs.values()):
            want = blob_tier(
                self.policy,
                own_institution=self.own,
                producer=info.producer,
                produced_at_us=info.at_us,
                now_us=now,
            )
            have = gw.blobs.tier_of(info.digest)
            if have == want or (have is None and want is Tier.OFFLINE):
                continue
            if have is None and not _held(gw.blobs, info.digest):
                continue  # never held here (another hospital's upload)
            try:
                gw.blobs.move(info.digest, want)
            except (ArchiveMissing, BlobCorrupted, KeyError):
                m.retention_refused.inc()
                continue
            src = "offline" if have is None else have.name.lower()
            m.moves.labels(src, want.name.lower()).inc()
            if want is Tier.OFFLINE:
                m.evictions.inc()
        for tier in (Tier.ONLINE, Tier.NEARLINE):
            m.blobs.labels(tier.name.lower()).set(gw.blobs.usage(tier)[0])
        m.retention_runs.inc()


def _held(blobs: BlobStore, digest: bytes) -> bool:
    archive = blobs.archive
    return isinstance(archive, BlobStore) and archive.tier_of(digest) is not None


async def serve(cfg: GatewayConfig, ready: asyncio.Event | None = None) -> None:
    """Run gateway ``cfg.node`` until SIGTERM/SIGINT."""
    root = cfg.root.resolve()
    files = GatewayFiles(root, cfg.node)
    cons = load_consortium(root / "consortium.toml")
    world = World.build(cons.access_seed, cons.n)
    trust = files.dir / f"trust-{cfg.node}.pem"
    trust.write_text(cons.ca_pem + cons.crl_pem)
    password = files.password.read_bytes().strip()
    chain = ChainClient(
        cons,
        f"gateway-{cfg.node}",
        files.client_cert,
        files.client_key,
        password,
        trust,
        timeout_s=cfg.commit_timeout_s,
    )
    await chain.connect()
    w = world.world
    idents = [w.national_authority, *world.hospitals, *world.doctors, *world.patients]
    index = StoreIndex(
        root / f"node-{cfg.node}" / "data" / "node.sqlite",
        w.access_key,
        {i.public_key: i.chain for i in idents},
    )
    archive = BlobStore(root / "authority-archive", fsync=False)
    blobs = BlobStore(root / f"node-{cfg.node}" / "blobs", archive=archive)
    urls = node_metrics_urls(root, cons.n)

    async def nodes_status() -> list[dict[str, Any]]:
        return await asyncio.to_thread(_scrape_all, urls)

    base = f"https://{cfg.host}:{cfg.port}/fhir"
    gw = service.Gateway(
        node=cfg.node,
        world=world,
        chain=chain,
        index=index,
        blobs=blobs,
        base=base,
        nodes_status=nodes_status,
    )
    application = app_mod.build_app(gw)
    config = uvicorn.Config(
        application,
        host=cfg.host,
        port=cfg.port,
        http=PeerCertProtocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        limit_concurrency=1024,
        h11_max_incomplete_event_size=64 * 1024,
    )
    config.load()
    config.ssl = tls_context(files, trust)
    server = uvicorn.Server(config)
    policy = RetentionPolicy(int(cfg.online_age_s * 1e6), int(cfg.nearline_age_s * 1e6))
    retention = Retention(gw, policy, world.hospitals[cfg.node].public_key)

    async def retention_loop() -> None:
        while not server.should_exit:
            await asyncio.sleep(cfg.retention_s)
            try:
                await asyncio.to_thread(retention.run_once)
            except Exception:
                log.exception("retention pass failed")

    task = asyncio.create_task(retention_loop())

    async def announce() -> None:
        end = time.monotonic() + 30
        while not server.started and time.monotonic() < end:
            await asyncio.sleep(0.02)
        print(
            f"gateway {cfg.node} ready: {base} (dashboard https://{cfg.host}:{cfg.port}/dashboard)"
            f", {chain.reachable} of {cons.n} members reachable",
            flush=True,
        )
        if ready is not None:
            ready.set()

    announcer = asyncio.create_task(announce())
    try:
        await server.serve()
    finally:
        task.cancel()
        announcer.cancel()
        await chain.close()
        index.close()
        print(f"gateway {cfg.node} stopped", flush=True)


def run(cfg: GatewayConfig) -> int:
    """Entry point of ``medbench gateway run``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    install_loop()
    asyncio.run(serve(cfg))
    return 0
