"""A consortium on disk and its node processes: ``cluster init | up | status | down``.

Theory of operation
-------------------
:func:`generate` writes everything a consortium needs into one directory::

    DIR/consortium.toml          the shared file (members, keys, certificates, CA, CRL, protocol)
    DIR/ca/ca.pem, ca.key        the consortium CA (Ed25519; key encrypted, password in ca.pass)
    DIR/node-<i>/node.toml       the node's local file (listen, data dir, key files, metrics)
    DIR/node-<i>/tls.pem|.key    transport certificate and key (PKCS#8, scrypt + AES-256-CBC)
    DIR/node-<i>/validator.key   validator key (PBFT messages and ledger blocks)
    DIR/node-<i>/key.pass        the node's key password (mode 0600)
    DIR/node-<i>/data/           SQLite store, trust bundle; node.log and node.pid beside
    DIR/clients/load-<k>.*       load-generator identities (certificate naming its client ids)

The consensus protocol is PBFT unless ``consensus`` names ``hotstuff`` or ``raft`` (null service
only, :mod:`.protocols`); each has its own ``[protocol]`` defaults. Addresses default to
127.0.0.1 with free ports; ``hosts`` puts member ``i`` on
``hosts[i % len(hosts)]`` (several machines: copy ``consortium.toml`` and ``node-<i>/`` to each
host and run ``medbench node run node-<i>/node.toml`` there).

:func:`up` starts one ``medbench node run`` process per member (own session, output to
``node.log``, pid in ``node.pid``), waits until every node printed its readiness line and
reports ``n - 1`` connected peers on ``/metrics``, and returns the readiness line. :func:`down`
sends SIGTERM to the recorded pids (after checking each pid still runs ``medbench node run`` with
that node's file), waits, then SIGKILLs what is left. :func:`status` scrapes every node.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

import medbench
from medbench.runtime import certs
from medbench.runtime.config import Consortium, load_consortium

DEFAULT_PROTOCOL: dict[str, Any] = {
    "checkpoint_interval": 64,
    "log_window": 256,
    "max_batch_size": 64,
    "max_batch_delay_us": 1,
    "view_change_timeout_us": 1_000_000,
    "fetch_timeout_us": 500_000,
    "block_mode": "integrated",
    "block_size": 100,
    "block_interval_us": 1_000_000,
    "client_retransmit_us": 1_000_000,
}
"""PBFT settings of a generated consortium (see :mod:`.driver` for ``max_batch_delay_us``)."""

HOTSTUFF_PROTOCOL: dict[str, Any] = {
    "max_batch_size": 64,
    "max_batch_delay_us": 1,
    "view_timeout_us": 1_000_000,
    "client_retransmit_us": 1_000_000,
}
"""Chained HotStuff settings of a generated consortium: PBFT's batch bound and adaptive batching
(a leader proposes what arrived by its round's tick), and PBFT's view-change timeout."""

RAFT_PROTOCOL: dict[str, Any] = {
    "max_entries_per_append": 64,
    "election_timeout_us": 1_000_000,
    "heartbeat_interval_us": 100_000,
    "snapshot_interval": 0,
    "client_retransmit_us": 1_000_000,
}
"""Raft settings of a generated consortium: PBFT's batch bound, an election timeout as long as
PBFT's view-change timeout (a loaded host must not depose a working leader), no snapshots (the
log on disk is the committed order the audit reads, :mod:`.protocols`)."""

PROTOCOL_DEFAULTS = {"pbft": DEFAULT_PROTOCOL, "hotstuff": HOTSTUFF_PROTOCOL, "raft": RAFT_PROTOCOL}

MEDCHAIN_PROTOCOL: dict[str, Any] = {
    "checkpoint_interval": 16,
    "log_window": 64,
    "max_batch_size": 32,
}
"""Medical Chain overrides: sealed transactions are 2-9 KB, so one checkpoint interval of full
batches (16 x 32 x 8.4 KB = 4.3 MB) stays well inside one STATE frame (8 MiB)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _password() -> bytes:
    return os.urandom(18).hex().encode()


@dataclass(frozen=True)
class Layout:
    """Where a generated consortium keeps things."""

    root: Path

    @property
    def consortium(self) -> Path:
        """The shared file."""
        return self.root / "consortium.toml"

    def node_dir(self, i: int) -> Path:
        """Node ``i``'s directory."""
        return self.root / f"node-{i}"

    def node_file(self, i: int) -> Path:
        """Node ``i``'s local file."""
        return self.node_dir(i) / "node.toml"

    def log(self, i: int) -> Path:
        """Node ``i``'s log."""
        return self.node_dir(i) / "node.log"

    def pid(self, i: int) -> Path:
        """Node ``i``'s pid file."""
        return self.node_dir(i) / "node.pid"

    @property
    def clients(self) -> Path:
        """Load-generator identities."""
        return self.root / "clients"

    def client_files(self, k: int) -> tuple[Path, Path, Path]:
        """Certificate, key and password files of load-generator identity ``k``."""
        d = self.clients
        return d / f"load-{k}.pem", d / f"load-{k}.key", d / "key.pass"


def generate(
    directory: str | Path,
    n: int,
    *,
    service: str = "null",
    transport: str = "tls",
    durability: str = "FULL",
    hosts: list[str] | None = None,
    base_port: int = 0,
    metrics: bool = True,
    client_groups: int = 4,
    clients_per_group: int = 64,
    access_seed: int = 1,
    protocol: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    rogue: bool = False,
    name: str = "",
    consensus: str = "pbft",
) -> Layout:
    """Write a consortium of ``n`` members into ``directory`` (see the module docstring).

    ``consensus``: ``pbft``, ``hotstuff`` or ``raft`` (the last two with the null service only:
    :mod:`.protocols`); ``protocol`` overrides that protocol's defaults.

    ``rogue`` also writes test material under ``DIR/rogue/``: a certificate for member 1 from the
    consortium CA with another key, revoked on the CRL (``revoked.*``), one from a foreign CA
    (``foreign.*``), and a valid client certificate of the consortium CA (``client.*``).
    """
    if consensus not in PROTOCOL_DEFAULTS:
        raise ValueError(f"unknown consensus {consensus!r} (pbft, hotstuff or raft)")
    if consensus != "pbft" and service != "null":
        raise ValueError(f"the {service} service runs on PBFT only, not on {consensus}")
    lay = Layout(Path(directory))
    lay.root.mkdir(parents=True, exist_ok=True)
    if lay.consortium.exists():
        raise FileExistsError(f"{lay.consortium} exists")
    name = name or f"medbench-{n}"
    ca = certs.new_ca(f"{name}-ca")
    (lay.root / "ca").mkdir(exist_ok=True)
    ca_pass = _password()
    certs.write_private(lay.root / "ca" / "ca.pass", ca_pass)
    from medbench.crypto.keys import SigningKey

    certs.write_private(
        lay.root / "ca" / "ca.key", certs.key_pem(SigningKey.from_cryptography(ca.key), ca_pass)
    )
    (lay.root / "ca" / "ca.pem").write_text(certs.cert_pem(ca.cert))
    hosts = hosts or ["127.0.0.1"]
    members = []
    for i in range(n):
        host = hosts[i % len(hosts)]
        d = lay.node_dir(i)
        (d / "data").mkdir(parents=True, exist_ok=True)
        pw = _password()
        certs.write_private(d / "key.pass", pw)
        tls_key, validator = certs.new_key(), certs.new_key()
        cert = certs.issue_node_cert(ca, i, n, tls_key.public)
        certs.write_private(d / "tls.key", certs.key_pem(tls_key, pw))
        certs.write_private(d / "validator.key", certs.key_pem(validator, pw))
        (d / "tls.pem").write_text(certs.cert_pem(cert))
        port = base_port + i if base_port else free_port(host if host != "0.0.0.0" else "")
        mport = (base_port + 100 + i if base_port else free_port()) if metrics else 0
        members.append(
            {
                "id": i,
                "name": f"hospital-{i}",
                "address": f"{host}:{port}",
                "validator_key": validator.public.hex(),
                "certificate": certs.cert_pem(cert),
            }
        )
        node_doc: dict[str, Any] = {
            "consortium": "../consortium.toml",
            "id": i,
            "listen": f"{host}:{port}",
            "data_dir": "data",
            "tls_key": "tls.key",
            "tls_cert": "tls.pem",
            "validator_key": "validator.key",
            "key_password_file": "key.pass",
            "metrics_listen": f"127.0.0.1:{mport}" if metrics else "",
            "durability": durability,
            "tick_ms": 5.0,
        }
        lay.node_file(i).write_text(tomli_w.dumps(node_doc))
    lay.clients.mkdir(exist_ok=True)
    cpw = _password()
    certs.write_private(lay.clients / "key.pass", cpw)
    groups = []
    for k in range(client_groups):
        first = 2 * n + k * clients_per_group
        key = certs.new_key()
        cert = certs.issue_client_cert(
            ca, f"load-{k}", range(first, first + clients_per_group), key.public
        )
        pem, keyf, _ = lay.client_files(k)
        pem.write_text(certs.cert_pem(cert))
        certs.write_private(keyf, certs.key_pem(key, cpw))
        groups.append(
            {
                "name": f"load-{k}",
                "first_id": first,
                "count": clients_per_group,
                "public_key": key.public.hex(),
            }
        )
    if rogue:
        _rogue(lay, ca, n)
    doc = {
        "consortium": {
            "name": name,
            "service": service,
            "transport": transport,
            "durability": durability,
            "epoch_unix_us": time.time_ns() // 1000,
            "access_seed": access_seed,
            "ca_certificate": certs.cert_pem(ca.cert),
            "crl": certs.crl_pem(ca),
            **({"consensus": consensus} if consensus != "pbft" else {}),
        },
        "protocol": {
            **PROTOCOL_DEFAULTS[consensus],
            **(MEDCHAIN_PROTOCOL if service == "medchain" else {}),
            **(protocol or {}),
        },
        "transport_limits": dict(limits or {}),
        "members": members,
        "clients": groups,
    }
    lay.consortium.write_text(tomli_w.dumps(doc, multiline_strings=True))
    load_consortium(lay.consortium)  # what we wrote must load
    return lay


def _rogue(lay: Layout, ca: Any, n: int) -> None:
    d = lay.root / "rogue"
    d.mkdir(exist_ok=True)
    pw = b"rogue"
    (d / "key.pass").write_bytes(pw)
    key = certs.new_key()
    revoked = certs.issue_node_cert(ca, 1, n, key.public)
    ca.revoke(revoked, time.time_ns() // 1000 - 60_000_000)
    (d / "revoked.pem").write_text(certs.cert_pem(revoked))
    (d / "revoked.key").write_text(certs.key_pem(key, pw))
    foreign_ca = certs.new_ca("foreign-ca")
    key = certs.new_key()
    foreign = certs.issue_node_cert(foreign_ca, 1, n, key.public)
    (d / "foreign.pem").write_text(certs.cert_pem(foreign))
    (d / "foreign.key").write_text(certs.key_pem(key, pw))
    key = certs.new_key()
    client = certs.issue_client_cert(ca, "intruder", range(10_000, 10_004), key.public)
    (d / "client.pem").write_text(certs.cert_pem(client))
    (d / "client.key").write_text(certs.key_pem(key, pw))


# --- processes -----------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(medbench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start_node(lay: Layout, i: int, env: dict[str, str] | None = None) -> int:
    """Start node ``i``'s process (appending to its log); returns its pid."""
    logf = lay.log(i).open("ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "medbench", "node", "run", str(lay.node_file(i))],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**_env(), **(env or {})},
        )
    finally:
        logf.close()
    lay.pid(i).write_text(str(proc.pid))
    _children[proc.pid] = proc
    return proc.pid


_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None and proc.poll() is not None:
        del _children[pid]


def node_pid(lay: Layout, i: int) -> int | None:
    """The recorded pid of node ``i`` if that process still runs node ``i``."""
    try:
        pid = int(lay.pid(i).read_text().strip())
    except (OSError, ValueError):
        return None
    _reap(pid)
    if pid in _children:
        # started here and not exited: between fork and exec /proc still shows our own command
        # line, so the check below would call a node that is starting "not running"
        return pid
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if str(lay.node_file(i)).encode() not in cmdline:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state == "Z" else pid


def signal_node(lay: Layout, i: int, sig: int) -> bool:
    """Send ``sig`` to node ``i`` if it runs; returns whether it was sent."""
    pid = node_pid(lay, i)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
        return True
    return False


def wait_exit(lay: Layout, ids: list[int], timeout: float) -> list[int]:
    """Wait until the nodes ``ids`` exited; returns those still running."""
    end = time.monotonic() + timeout
    left = list(ids)
    while left and time.monotonic() < end:
        left = [i for i in left if node_pid(lay, i) is not None]
        if left:
            time.sleep(0.05)
    return left


def metrics_url(lay: Layout, i: int) -> str | None:
    """Node ``i``'s ``/metrics`` URL (from its local file)."""
    import tomllib

    doc = tomllib.loads(lay.node_file(i).read_text())
    addr = doc.get("metrics_listen", "")
    return f"http://{addr}/metrics" if addr else None


def read_status(lay: Layout, i: int) -> dict[str, Any] | None:
    """Node ``i``'s metrics, or ``None`` when it does not answer."""
    from medbench.runtime.telemetry import scrape

    url = metrics_url(lay, i)
    if url is None:
        return None
    try:
        return scrape(url, timeout=1.0)
    except OSError:
        return None


def wait_ready(
    lay: Layout, ids: list[int], n: int, timeout: float, peers: int | None = None
) -> bool:
    """Wait until every node of ``ids`` answers and has ``peers`` (default n - 1) links."""
    want = n - 1 if peers is None else peers
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ok = True
        for i in ids:
            st = read_status(lay, i)
            if st is None or st.get("peers_connected", 0) < want:
                ok = False
                break
        if ok:
            return True
        time.sleep(0.1)
    return False


def up(
    directory: str | Path,
    n: int = 4,
    *,
    timeout: float = 60.0,
    env: dict[int, dict[str, str]] | None = None,
    **generate_kw: Any,
) -> tuple[Layout, str]:
    """Generate (unless present) and start the consortium; returns the readiness line.

    ``env`` adds environment variables per node (e.g. ``MEDBENCH_PROFILE`` for one node).
    """
    lay = Layout(Path(directory))
    t0 = time.monotonic()
    if not lay.consortium.exists():
        generate(directory, n, **generate_kw)
    cons = load_consortium(lay.consortium)
    for i in range(cons.n):
        if node_pid(lay, i) is None:
            start_node(lay, i, (env or {}).get(i))
    ok = wait_ready(lay, list(range(cons.n)), cons.n, timeout)
    dt = time.monotonic() - t0
    if not ok:
        bad = [i for i in range(cons.n) if read_status(lay, i) is None]
        raise RuntimeError(
            f"cluster not ready after {timeout:.0f} s (not answering: {bad}); see node logs"
        )
    line = (
        f"cluster ready: {cons.n} hospitals running {cons.consensus} (f={cons.f}) "
        f"over {cons.transport}, "
        f"service {cons.service}, in {dt:.1f} s; status: medbench cluster status --dir {lay.root}"
    )
    return lay, line


def down(directory: str | Path, timeout: float = 10.0) -> list[int]:
    """Stop every node (SIGTERM, then SIGKILL after ``timeout``); returns the killed ids."""
    lay = Layout(Path(directory))
    cons = load_consortium(lay.consortium)
    ids = list(range(cons.n))
    for i in ids:
        signal_node(lay, i, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        signal_node(lay, i, signal.SIGTERM)
    left = wait_exit(lay, ids, timeout)
    for i in left:
        signal_node(lay, i, signal.SIGKILL)
    wait_exit(lay, left, 5.0)
    for pid in list(_children):
        _reap(pid)
    return left


def status(directory: str | Path) -> list[dict[str, Any]]:
    """One row per node: pid, whether it answers, view, last executed, height, peers, counters."""
    lay = Layout(Path(directory))
    cons: Consortium = load_consortium(lay.consortium)
    rows = []
    for i in range(cons.n):
        pid = node_pid(lay, i)
        st = read_status(lay, i) if pid is not None else None
        row: dict[str, Any] = {"node": i, "pid": pid or "-", "up": st is not None}
        if st is not None:
            rej = st.get("rejections_total", st.get("rejections", {}))
            row.update(
                view=int(st.get("view", 0)),
                primary=int(st.get("primary", 0)),
                last_executed=int(st.get("last_executed", 0)),
                height=int(st.get("chain_height", 0)),
                peers=int(st.get("peers_connected", 0)),
                clients=int(st.get("clients_connected", 0)),
                committed=int(st.get("committed_requests_total", 0)),
                view_changes=int(st.get("view_changes_total", 0)),
                rejected=int(sum(rej.values())) if isinstance(rej, dict) else 0,
            )
        rows.append(row)
    return rows


def format_status(rows: list[dict[str, Any]]) -> str:
    """The per-node table ``cluster status`` prints."""
    cols = ["node", "pid", "up", "view", "primary", "last_executed", "height", "peers",
            "clients", "committed", "view_changes", "rejected"]  # fmt: skip
    table = [[str(r.get(c, "-")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[k]) for t in table)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    for t in table:
        lines.append("  ".join(v.rjust(w) for v, w in zip(t, widths, strict=True)))
    return "\n".join(lines)
