"""Configuration: one consortium file shared by every member, one small local file per node.

Theory of operation
-------------------
Like CometBFT's genesis + ``config.toml`` split (ADR-074: consensus parameters are the network's,
not the node's) and Fabric's channel configuration, everything the members must agree on lives in
**one consortium file** (TOML), identical on every host:

``[consortium]``
    ``name``; ``service`` (``null``: PBFT ordering empty operations, the microbenchmark every BFT
    library reports; ``medchain``: the Medical Chain node); ``epoch_unix_us`` (PBFT time 0: every
    node's clock reads microseconds since this wall-clock instant, advanced by its monotonic
    clock); ``access_seed`` (Medical Chain: the seed of the simulated user population — user CA
    tree, KMC, hospitals, doctors, patients — that every process rebuilds; a deployment would
    enrol users through the KMC instead); the CA certificate and its CRL (PEM, inline);
    ``transport`` (``tls`` or ``plain``); ``durability`` (SQLite ``synchronous``: ``FULL``);
``[protocol]``
    the consensus protocol's settings and the clients' retransmission timeout: PBFT's
    :class:`~medbench.consensus.pbft.Config` fields (batching, window, timeouts, block mode) by
    default; with ``consensus = "hotstuff"`` or ``"raft"`` in ``[consortium]`` (null service
    only) the fields of :class:`medbench.consensus.hotstuff.Config` or
    :class:`medbench.consensus.raft.Config` instead (Raft's election jitter seed is derived from
    the consortium's name, so every member draws the same timeouts);
``[transport_limits]``
    frame size, queue bounds, handshake / hello / frame deadlines, reconnect backoff;
``[[members]]``
    one per replica, in id order: ``id``, ``name``, ``address`` (``host:port`` other members and
    clients dial), ``validator_key`` (hex Ed25519 key: PBFT messages and ledger blocks),
    ``certificate`` (PEM: the transport certificate, whose key is pinned);
``[[clients]]``
    load-generator identities: ``name``, ``first_id``, ``count``, ``public_key`` (hex Ed25519:
    the key that signs their PBFT requests and is in their certificate).

and **one local file per node**: ``consortium`` (path), ``id``, ``listen`` (``host:port``),
``data_dir``, ``tls_key`` / ``tls_cert`` / ``validator_key`` (PKCS#8 files),
``key_password_file``, ``metrics_listen`` (``host:port`` of the Prometheus endpoint, empty: none),
``durability`` (overrides the consortium's, e.g. to measure ``NORMAL``), ``tick_ms`` and an
optional ``[link_faults]`` table (:class:`LinkFaultConfig`; re-read on ``SIGHUP``). Relative paths
are relative to the file that names them.

Everything is validated on load; errors are :class:`ConfigError` with the offending key.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from medbench.consensus import hotstuff, raft
from medbench.consensus.pbft import BlockMode, Config

SERVICES = ("null", "medchain")
CONSENSUS = ("pbft", "hotstuff", "raft")
TRANSPORTS = ("tls", "plain")
DURABILITY = ("FULL", "NORMAL", "EXTRA")


class ConfigError(ValueError):
    """A configuration file is missing, malformed or inconsistent."""


def _table(doc: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        if required:
            raise ConfigError(f"missing [{key}]")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _get(doc: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise ConfigError(f"{where}: missing {key!r}")
    value = doc[key]
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def parse_address(text: str, where: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; IPv6 hosts in brackets."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{where}: address {text!r} is not host:port")
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: address {text!r} is not host:port")
    return host, int(port)


def _hex(value: Any, size: int, where: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: not hex") from None
    if len(raw) != size:
        raise ConfigError(f"{where}: expected {size} bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Member:
    """One replica of the consortium."""

    id: int
    name: str
    address: tuple[str, int]
    validator_key: bytes
    certificate: str  # PEM


@dataclass(frozen=True)
class ClientGroup:
    """A load-generator identity: client ids ``first_id .. first_id + count - 1``."""

    name: str
    first_id: int
    count: int
    public_key: bytes

    @property
    def ids(self) -> range:
        """The client ids this identity may use."""
        return range(self.first_id, self.first_id + self.count)


@dataclass(frozen=True)
class TransportLimits:
    """Bounds and deadlines of the transport (uniform across the consortium)."""

    max_frame_bytes: int = 8 * 1024 * 1024 + 64
    out_queue_bytes: int = 32 * 1024 * 1024
    inbox_frames: int = 4096
    inbox_bytes: int = 64 * 1024 * 1024
    max_client_connections: int = 1024
    handshake_timeout_s: float = 5.0
    hello_timeout_s: float = 5.0
    frame_timeout_s: float = 10.0
    max_pending_connections: int = 64
    max_bad_frames: int = 16
    reconnect_min_ms: int = 20
    reconnect_max_ms: int = 1000


@dataclass(frozen=True)
class Consortium:
    """The consortium file, loaded (see the module docstring)."""

    name: str
    service: str
    transport: str
    durability: str
    epoch_unix_us: int
    access_seed: int
    ca_pem: str
    crl_pem: str
    protocol: Config
    client_retransmit_us: int
    limits: TransportLimits
    members: tuple[Member, ...]
    clients: tuple[ClientGroup, ...]
    path: Path | None = None
    consensus: str = "pbft"
    consensus_config: Any = None  # HotStuff's or Raft's Config (``protocol`` is then unused)

    @property
    def n(self) -> int:
        """Number of replicas."""
        return len(self.members)

    @property
    def f(self) -> int:
        """Faults tolerated: ``(n - 1) // 3`` (Byzantine), ``(n - 1) // 2`` for Raft (crashes)."""
        return (self.n - 1) // (2 if self.consensus == "raft" else 3)

    @property
    def digest(self) -> bytes:
        """What a HELLO names: the consortium's name, service, protocol and members' keys."""
        ident = f"{self.name}|{self.service}|{self.n}"
        if self.consensus != "pbft":  # PBFT keeps its earlier digest
            ident += f"|{self.consensus}"
        h = hashlib.sha256(ident.encode())
        for m in self.members:
            h.update(m.validator_key)
        return h.digest()

    def client_keys(self) -> dict[int, bytes]:
        """Client id -> the Ed25519 key that signs its requests."""
        out: dict[int, bytes] = {}
        for g in self.clients:
            for c in g.ids:
                out[c] = g.public_key
        return out

    def group(self, name: str) -> ClientGroup:
        """The client identity called ``name``."""
        for g in self.clients:
            if g.name == name:
                return g
        raise ConfigError(f"no client identity {name!r} in the consortium file")


_PROTOCOL_KEYS = {f.name for f in fields(Config)} - {"n"}


def load_consortium(path: str | Path) -> Consortium:
    """Read and validate a consortium file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse_consortium(doc, path)


def parse_consortium(doc: dict[str, Any], path: Path | None = None) -> Consortium:
    """Validate a parsed consortium document."""
    c = _table(doc, "consortium")
    where = "[consortium]"
    service = _get(c, "service", str, where)
    if service not in SERVICES:
        raise ConfigError(f"{where}: service must be one of {SERVICES}")
    transport = c.get("transport", "tls")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}: transport must be one of {TRANSPORTS}")
    durability = c.get("durability", "FULL")
    if durability not in DURABILITY:
        raise ConfigError(f"{where}: durability must be one of {DURABILITY}")
    members_doc = doc.get("members")
    if not isinstance(members_doc, list) or not members_doc:
        raise ConfigError("need at least one [[members]] entry")
    members = []
    for i, m in enumerate(members_doc):
        w = f"[[members]] #{i}"
        if not isinstance(m, dict):
            raise ConfigError(f"{w}: not a table")
        if _get(m, "id", int, w) != i:
            raise ConfigError(f"{w}: members must be listed in id order from 0")
        members.append(
            Member(
                i,
                _get(m, "name", str, w),
                parse_address(_get(m, "address", str, w), w),
                _hex(_get(m, "validator_key", str, w), 32, f"{w} validator_key"),
                _get(m, "certificate", str, w),
            )
        )
    n = len(members)
    p = _table(doc, "protocol", required=False)
    consensus = c.get("consensus", "pbft")
    if consensus not in CONSENSUS:
        raise ConfigError(f"{where}: consensus must be one of {CONSENSUS}")
    if consensus != "pbft" and service != "null":
        raise ConfigError(f"{where}: the {service} service runs on PBFT only, not {consensus}")
    if consensus == "pbft":
        protocol, other = _pbft_config(p, n), None
    else:
        protocol, other = Config(n=n), _other_config(consensus, p, n, _get(c, "name", str, where))
    retransmit = p.get("client_retransmit_us", 1_000_000)
    lim_doc = _table(doc, "transport_limits", required=False)
    lim_names = {f.name for f in fields(TransportLimits)}
    if set(lim_doc) - lim_names:
        raise ConfigError(f"[transport_limits]: unknown keys {sorted(set(lim_doc) - lim_names)}")
    limits = TransportLimits(**lim_doc)
    clients = []
    taken = set(range(2 * n))  # replicas and their hospital clients
    for i, g in enumerate(doc.get("clients", []) or []):
        w = f"[[clients]] #{i}"
        group = ClientGroup(
            _get(g, "name", str, w),
            _get(g, "first_id", int, w),
            _get(g, "count", int, w),
            _hex(_get(g, "public_key", str, w), 32, f"{w} public_key"),
        )
        ids = set(group.ids)
        if group.count < 1 or ids & taken:
            raise ConfigError(f"{w}: ids overlap replicas, hospital clients or another group")
        taken |= ids
        clients.append(group)
    return Consortium(
        name=_get(c, "name", str, where),
        service=service,
        transport=transport,
        durability=durability,
        epoch_unix_us=_get(c, "epoch_unix_us", int, where),
        access_seed=int(c.get("access_seed", 1)),
        ca_pem=_get(c, "ca_certificate", str, where),
        crl_pem=_get(c, "crl", str, where),
        protocol=protocol,
        client_retransmit_us=int(retransmit),
        limits=limits,
        members=tuple(members),
        clients=tuple(clients),
        path=path,
        consensus=consensus,
        consensus_config=other,
    )


def _pbft_config(p: dict[str, Any], n: int) -> Config:
    unknown = set(p) - _PROTOCOL_KEYS - {"client_retransmit_us"}
    if unknown:
        raise ConfigError(f"[protocol]: unknown keys {sorted(unknown)}")
    kwargs = {k: v for k, v in p.items() if k in _PROTOCOL_KEYS}
    if "block_mode" in kwargs:
        kwargs["block_mode"] = BlockMode(kwargs["block_mode"])
    try:
        return Config(n=n, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[protocol]: {exc}") from None


def _other_config(consensus: str, p: dict[str, Any], n: int, name: str) -> Any:
    """HotStuff's or Raft's :class:`Config` from the ``[protocol]`` table."""
    cls: Any = hotstuff.Config if consensus == "hotstuff" else raft.Config
    keys = {f.name for f in fields(cls)} - {"n", "seed"}
    unknown = set(p) - keys - {"client_retransmit_us"}
    if unknown:
        raise ConfigError(f"[protocol]: unknown {consensus} keys {sorted(unknown)}")
    kwargs = {k: v for k, v in p.items() if k in keys}
    if consensus == "raft":
        # every member must draw the same election timeouts for a given (node, term)
        kwargs["seed"] = hashlib.sha256(f"raft|{name}".encode()).digest()[:16]
    try:
        return cls(n=n, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[protocol]: {exc}") from None


@dataclass(frozen=True)
class LinkFaultConfig:
    """Faults the node injects on its own outgoing links (seeded; see :mod:`.transport`).

    ``delay_ms`` ± ``jitter_ms`` (uniform) on every frame, ``loss`` (probability a frame is
    dropped), ``bandwidth_mbps`` (0: unlimited) and ``partition`` (peer ids whose links drop
    everything both ways). ``peers``: the peer ids the delay, loss and bandwidth apply to (empty:
    all).
    """

    seed: int = 0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    bandwidth_mbps: float = 0.0
    partition: tuple[int, ...] = ()
    peers: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """Whether any fault is configured."""
        return bool(
            self.delay_ms or self.jitter_ms or self.loss or self.bandwidth_mbps or self.partition
        )

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> LinkFaultConfig:
        """From a ``[link_faults]`` table."""
        names = {f.name for f in fields(cls)}
        if set(doc) - names:
            raise ConfigError(f"[link_faults]: unknown keys {sorted(set(doc) - names)}")
        kw = dict(doc)
        for key in ("partition", "peers"):
            if key in kw:
                kw[key] = tuple(int(x) for x in kw[key])
        out = cls(**kw)
        if not 0.0 <= out.loss <= 1.0 or out.delay_ms < 0 or out.jitter_ms < 0:
            raise ConfigError("[link_faults]: loss in [0, 1], delays >= 0")
        return out


@dataclass(frozen=True)
class NodeConfig:
    """One node's local file, loaded (see the module docstring)."""

    id: int
    consortium: Consortium
    listen: tuple[str, int]
    data_dir: Path
    tls_key: Path
    tls_cert: Path
    validator_key: Path
    key_password_file: Path
    metrics_listen: tuple[str, int] | None
    durability: str
    tick_ms: float
    link_faults: LinkFaultConfig = field(default_factory=LinkFaultConfig)
    path: Path | None = None

    def password(self) -> bytes:
        """The key files' password."""
        return self.key_password_file.read_bytes().strip()


def load_node(path: str | Path) -> NodeConfig:
    """Read a node's local file and the consortium file it names."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    base = path.parent
    where = str(path)

    def rel(key: str) -> Path:
        p = Path(_get(doc, key, str, where))
        return p if p.is_absolute() else base / p

    consortium = load_consortium(rel("consortium"))
    node_id = _get(doc, "id", int, where)
    if not 0 <= node_id < consortium.n:
        raise ConfigError(f"{where}: id {node_id} is not a member")
    metrics = doc.get("metrics_listen", "")
    durability = doc.get("durability", consortium.durability)
    if durability not in DURABILITY:
        raise ConfigError(f"{where}: durability must be one of {DURABILITY}")
    return NodeConfig(
        id=node_id,
        consortium=consortium,
        listen=parse_address(_get(doc, "listen", str, where), where),
        data_dir=rel("data_dir"),
        tls_key=rel("tls_key"),
        tls_cert=rel("tls_cert"),
        validator_key=rel("validator_key"),
        key_password_file=rel("key_password_file"),
        metrics_listen=parse_address(metrics, where) if metrics else None,
        durability=durability,
        tick_ms=float(doc.get("tick_ms", 5.0)),
        link_faults=LinkFaultConfig.parse(_table(doc, "link_faults", required=False)),
        path=path,
    )


def reload_link_faults(path: Path) -> LinkFaultConfig:
    """Re-read only the ``[link_faults]`` table of a node file (``SIGHUP``)."""
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return LinkFaultConfig.parse(_table(doc, "link_faults", required=False))
