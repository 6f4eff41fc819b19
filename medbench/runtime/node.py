"""One hospital node process: ``medbench node run NODE.toml``.

Theory of operation
-------------------
:class:`NodeHost` loads the node's local file and the consortium file (:mod:`.config`), opens its
keys (PKCS#8, password file), its SQLite store and its TLS contexts, then builds the protocol
node with the consortium's service:

* ``null`` — a bare :class:`~medbench.consensus.pbft.Replica` with the permissive validator and
  the default service (the result of a request is its digest): PBFT ordering empty operations.
  :class:`NullNode` persists ``Ready.persist`` in the store's consensus log
  (:func:`~medbench.consensus.pbft.encode_record`) and rebuilds the replica from it after a crash
  (:meth:`Replica.recover`: its votes, view, prepared certificates and executed batches come back,
  and its FETCH asks the peers for the rest — state transfer);
* ``medchain`` — a :class:`~medbench.medchain.MedicalChainNode` (replica + access validator +
  blocker + ledger store, restarted with :meth:`MedicalChainNode.restart` when its store holds a
  consensus log) and the node's own :class:`~medbench.medchain.HospitalClient` (client id
  ``n + id``), which submits the audit and blacklist records its node drafts.

The node's PBFT keyring signs with its validator key and knows every member's validator key (from
the consortium file), each hospital client's (its node's) and each load generator's key.

The :class:`~.driver.Driver` rounds wrap every step of a round in one store group
(:meth:`medbench.store.NodeStore.group`): one commit, under the durability the configuration
names. ``FULL`` (the default) fsyncs the WAL at each commit, so a node never sends a vote that a
power cut could take back. ``NORMAL`` fsyncs only at WAL checkpoints: a process crash (SIGKILL)
loses nothing, because committed pages are in the OS cache, but an OS crash or power cut can roll
back the last commits after their messages left — the node may then vote again differently for
a sequence it already voted on, i.e. behave Byzantine, so it counts towards ``f``.

Signals: ``SIGTERM``/``SIGINT`` stop gracefully (stop reading, flush what is queued, close the
links and the store, exit 0); ``SIGHUP`` re-reads the node file's ``[link_faults]``. On start it
prints one readiness line and serves Prometheus metrics (:mod:`.telemetry`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey as NaclSigningKey
from nacl.signing import VerifyKey

from medbench.consensus.auth import SignatureKeyring
from medbench.consensus.pbft import (
    Client,
    Config,
    ExecutedBatch,
    MessageError,
    Replica,
    decode_record,
    encode_record,
)
from medbench.crypto.keys import SigningKey
from medbench.node import Ready
from medbench.runtime import certs
from medbench.runtime.config import ConfigError, NodeConfig, load_node, reload_link_faults
from medbench.runtime.driver import Clock, Driver, reply_target
from medbench.runtime.transport import Network, public_key_of_pem, stats_of
from medbench.store.node_store import NodeStore

log = logging.getLogger("medbench.runtime.node")


def nacl_key(key: SigningKey) -> NaclSigningKey:
    """The PyNaCl signing key of an Ed25519 :class:`SigningKey`."""
    return NaclSigningKey(key.to_cryptography().private_bytes_raw())


def keyring_for(node_id: int, key: SigningKey, cfg: Any) -> SignatureKeyring:
    """The signature keyring of replica or hospital client ``node_id`` (see the module doc)."""
    n = cfg.n
    directory: dict[int, VerifyKey] = {}
    for m in cfg.members:
        directory[m.id] = VerifyKey(m.validator_key)
        directory[n + m.id] = VerifyKey(m.validator_key)  # the node's hospital client
    for c, pub in cfg.client_keys().items():
        directory[c] = VerifyKey(pub)
    return SignatureKeyring(node_id, n, nacl_key(key), directory)


class RestoredReplica:
    """A replica rebuilt from its persisted records (a fresh one when there are none): its
    recovery's output (``first``) leaves with its first tick, after the transport is up.
    :class:`NullNode` and the HotStuff and Raft nodes of :mod:`medbench.runtime.protocols`."""

    replica: Any
    first: Ready

    def step(self, src: int, msg: Any) -> Ready:
        """The replica's step."""
        return self.replica.step(src, msg)  # type: ignore[no-any-return]

    def tick(self, now: int) -> Ready:
        """The replica's tick, with the recovery's output before the first one."""
        ready: Ready = self.replica.tick(now)
        if self.first:
            first, self.first = self.first, Ready()
            ready = first.extend(ready)
        return ready


class NullNode(RestoredReplica):
    """A PBFT replica of empty operations, persisted by the runtime (see the module docstring)."""

    replica: Replica

    def __init__(
        self, node_id: int, config: Config, keyring: SignatureKeyring, store: NodeStore, now: int
    ) -> None:
        self.node_id = node_id
        self.store = store
        records = []
        self.corrupt = 0
        for entry in store.read_log():
            try:
                records.append(decode_record(entry.record))
            except MessageError:
                self.corrupt += 1
        if records:
            self.replica, self.first = Replica.recover(node_id, config, keyring, records, now=now)
        else:
            self.replica, self.first = Replica(node_id, config, keyring), Ready()
        self.recovered = len(records)

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        """Every record of the round in the consensus log (inside the round's group)."""
        entries = []
        for _, ready in outputs:
            for rec in ready.persist:
                entries.append(
                    (getattr(rec, "sequence", 0), getattr(rec, "view", 0), encode_record(rec))
                )
        if entries:
            self.store.append_log_batch(entries)

    @property
    def height(self) -> int:
        """Blocks after genesis."""
        return self.replica.chain.length - 1


class MedchainNode:
    """A Medical Chain node and its hospital client (see the module docstring)."""

    def __init__(self, cfg: NodeConfig, key: SigningKey, keyring: SignatureKeyring, now: int):
        from medbench.medchain.consortium import HospitalClient
        from medbench.medchain.node import MedicalChainNode
        from medbench.runtime.world import World, node_setup

        cons = cfg.consortium
        world = World.build(cons.access_seed, cons.n)
        store_path = cfg.data_dir / "node.sqlite"
        self.setup = node_setup(
            world, cfg.id, cons.protocol, keyring, [m.validator_key for m in cons.members], key,
            store_path, cfg.durability,  # type: ignore[arg-type]
        )  # fmt: skip
        recover = False
        if store_path.exists():
            with NodeStore(store_path) as probe:
                recover = bool(probe.read_log())
        self.node = MedicalChainNode(self.setup, now=now, recover=recover)
        self.recovered = recover
        self.store = self.node.store
        client_id = cons.n + cfg.id
        hospital_ring = keyring_for(client_id, key, cons)
        client = Client(client_id, cons.n, hospital_ring, cons.client_retransmit_us)
        client.timestamp = now  # PBFT timestamps must grow across restarts (the clock)
        self.client = HospitalClient(client, self.node)
        self.first = self.node.first

    @property
    def replica(self) -> Replica:
        """The PBFT replica."""
        return self.node.replica

    @property
    def height(self) -> int:
        """Blocks stored after genesis."""
        return int(self.node.stored_height)


class NodeHost(Driver):
    """The node process: driver, network, store, metrics (see the module docstring)."""

    def __init__(self, cfg: NodeConfig) -> None:
        cons = cfg.consortium
        super().__init__(Clock(cons.epoch_unix_us), cfg.tick_ms)
        self.cfg = cfg
        self.cons = cons
        self.n = cons.n
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        password = cfg.password()
        key = certs.read_key(cfg.validator_key, password, cons.members[cfg.id].validator_key)
        self.keyring = keyring_for(cfg.id, key, cons)
        now = self.clock.now_us()
        self.service: Any
        if cons.service == "null":
            store = NodeStore(cfg.data_dir / "node.sqlite", synchronous=cfg.durability)  # type: ignore[arg-type]
            self.service = self.null_service(store, now)
            self.nodes[cfg.id] = self.service
            self.local_clients: frozenset[int] = frozenset()
        else:
            self.service = MedchainNode(cfg, key, self.keyring, now)
            self.nodes[cfg.id] = self.service.node
            self.nodes[self.n + cfg.id] = self.service.client
            self.local_clients = frozenset({self.n + cfg.id})
            if self.service.first:
                self.startup.append((cfg.id, self.service.first))
        self.store: NodeStore = self.service.store
        self.committed_batches = 0
        self.committed_requests = 0
        self.completed = 0
        self.last_executed = self.position()[1]
        self.trust_path = cfg.data_dir / "trust.pem"
        self.trust_path.write_text(cons.ca_pem + cons.crl_pem)
        self._password = password
        self.stop_event: asyncio.Event | None = None
        self.metrics_server: Any = None

    # --- protocol hooks (medbench.runtime.protocols overrides them for HotStuff and Raft) ---------
    def null_service(self, store: NodeStore, now: int) -> Any:
        """The null service's protocol node: a PBFT :class:`NullNode`."""
        return NullNode(self.cfg.id, self.cons.protocol, self.keyring, store, now)

    def position(self) -> tuple[int, int]:
        """``(view, last executed)`` of the local replica, for the readiness line."""
        r = self.service.replica
        return int(r.view), int(r.last_executed)

    # --- Driver hooks ----------------------------------------------------------------------------
    def dispatch(self, src: int, msg: Any) -> int | None:
        client = reply_target(msg, self.local_clients)
        return client if client is not None else self.cfg.id

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        # a Medical Chain node writes inside its steps: one transaction for the round; the null
        # node's records are written by persist() in one append (one transaction) anyway
        if isinstance(self.service, NullNode):
            yield
            return
        with self.store.group():
            yield

    def persist(self, outputs: list[tuple[int, Ready]]) -> None:
        if isinstance(self.service, NullNode):
            self.service.persist(outputs)

    def output(self, node_id: int, ready: Ready) -> None:
        if ready.committed:
            for c in ready.committed:
                batch = c.payload
                if isinstance(batch, ExecutedBatch):
                    self.committed_batches += 1
                    self.committed_requests += len(batch.requests)
            self.last_executed = self.service.replica.last_executed
        if ready.completed:
            self.completed += len(ready.completed)

    # --- life cycle ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Listen, dial, serve metrics, run rounds until SIGTERM/SIGINT."""
        cfg, cons = self.cfg, self.cons
        self.stop_event = asyncio.Event()
        tls_server = tls_client = None
        if cons.transport == "tls":
            tls_server = certs.server_context(
                cfg.tls_cert, cfg.tls_key, self._password, self.trust_path
            )
            tls_client = certs.client_context(
                cfg.tls_cert, cfg.tls_key, self._password, self.trust_path
            )
        ids = frozenset({cfg.id, *self.local_clients})
        self.net = Network(
            self_id=cfg.id,
            ids=ids,
            role="node",
            n=self.n,
            digest=cons.digest,
            limits=cons.limits,
            pins={m.id: public_key_of_pem(m.certificate) for m in cons.members},
            addresses={m.id: m.address for m in cons.members},
            tls_server=tls_server,
            tls_client=tls_client,
            on_ready=self.wake,
            faults=cfg.link_faults,
            client_pins=cons.client_keys(),
        )
        await self.net.listen(*cfg.listen)
        for m in cons.members:
            if m.id > cfg.id:
                self.net.dial(m.id)
        self.net.start()
        if cfg.metrics_listen is not None:
            from medbench.runtime.telemetry import serve_metrics

            self.metrics_server = serve_metrics(self, *cfg.metrics_listen)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_faults)
        self.start()
        self.wake()
        metrics = (
            f"http://{cfg.metrics_listen[0]}:{cfg.metrics_listen[1]}/metrics"
            if (cfg.metrics_listen)
            else "off"
        )
        print(
            f"node {cfg.id} ready: pid {os.getpid()} listening on {cfg.listen[0]}:{cfg.listen[1]} "
            f"({cons.transport}), service {cons.service}, n={self.n} f={cons.f}, "
            f"durability {cfg.durability}, view {self.position()[0]}, "
            f"last executed {self.last_executed}, recovered {bool(self.service.recovered)}, "
            f"metrics {metrics}",
            flush=True,
        )
        await self.stop_event.wait()
        await self.shutdown()

    def _reload_faults(self) -> None:
        if self.cfg.path is None or self.net is None:
            return
        try:
            faults = reload_link_faults(self.cfg.path)
        except ConfigError as exc:
            log.warning("SIGHUP: %s", exc)
            return
        self.net.set_faults(faults)
        log.info("link faults now %s", faults)

    async def shutdown(self) -> None:
        """Stop rounds, close links, the store and the metrics server."""
        self.stop()
        if self.net is not None:
            self.net.flush()
            await self.net.stop()
        if self.metrics_server is not None:
            with contextlib.suppress(Exception):
                self.metrics_server.shutdown()
        self.store.close()
        print(f"node {self.cfg.id} stopped: last executed {self.last_executed}", flush=True)

    # --- status ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything ``cluster status`` and ``/metrics`` show."""
        r = self.service.replica
        net = self.net
        out: dict[str, Any] = {
            "node": self.cfg.id,
            "view": r.view,
            "active": r.active,
            "primary": r.view % self.n,
            "last_executed": r.last_executed,
            "stable_checkpoint": r.checkpoints.stable,
            "height": self.service.height,
            "committed_batches": self.committed_batches,
            "committed_requests": self.committed_requests,
            "view_changes": self.notes.get("new-view", 0),
            "rounds": self.rounds,
            "steps": self.steps,
            "round_steps_max": self.round_steps_max,
            "replica_queue": len(r.queue),
            "pending_requests": len(r.pending),
            "rejections": dict(self.rejections),
            "notes": dict(self.notes),
            "sent_msgs": dict(self.sent_msgs),
            "sent_bytes": dict(self.sent_bytes),
            "timing": dict(self.timing),
        }
        if net is not None:
            out.update({f"net_{k}": v for k, v in stats_of(net).items()})
            out["out_queue_bytes"] = sum(net.queue_bytes().values())
            out["inbox_frames"] = sum(len(c.inbox) for c in [*net.nodes.values(), *net.clients])
        return out


def run_node(path: str | Path, host_for: Callable[[NodeConfig], Any] | None = None) -> int:
    """Entry point of ``medbench node run``: load, run until a stop signal; exit code.

    ``host_for`` builds the host from the loaded configuration (default :class:`NodeHost`;
    :func:`medbench.runtime.protocols.run_node` picks the consensus protocol's host).
    """
    logging.basicConfig(
        level=os.environ.get("MEDBENCH_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        cfg = load_node(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    install_loop()

    async def main() -> None:
        host = (host_for or NodeHost)(cfg)
        await host.run()

    profile_to = os.environ.get("MEDBENCH_PROFILE", "")
    if not profile_to:
        asyncio.run(main())
        return 0
    import cProfile
    import time

    prof = cProfile.Profile(time.process_time)  # CPU time: other processes' load does not count
    prof.enable()
    try:
        asyncio.run(main())
    finally:
        prof.disable()
        prof.dump_stats(profile_to)
    return 0


def install_loop() -> str:
    """uvloop's event loop policy where available (Linux, macOS), else the standard loop."""
    if os.environ.get("MEDBENCH_LOOP", "") == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a Linux/macOS dependency
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
