"""A consortium with its gateways on this host: ``medbench gateway up | down | status``.

:func:`up` generates a Medical Chain consortium (unless the directory has one), enrols users and
gateways (:mod:`.enrol`, before the nodes start: they pin the gateways' client keys), starts the
nodes (:func:`medbench.runtime.cluster.up`) and one ``medbench gateway run`` process per chosen
node (own session, log ``DIR/gateway/gateway-<i>.log``, pid beside it), and waits until each
printed its readiness line. :func:`down` stops the gateways (SIGTERM, then SIGKILL) and the nodes.
Blocks are cut every :data:`BLOCK_INTERVAL_US` (or 100 transactions): a create is answered once
its block is in the node's store, so the interval bounds what a create waits beyond its commit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import medbench
from medbench.gateway.enrol import enrol
from medbench.runtime import cluster
from medbench.runtime.config import load_consortium

BLOCK_INTERVAL_US = 10_000
GATEWAY_PROTOCOL: dict[str, Any] = {"block_interval_us": BLOCK_INTERVAL_US}


def _files(root: Path, i: int) -> tuple[Path, Path, Path]:
    d = root / "gateway"
    return d / f"gateway-{i}.pid", d / f"gateway-{i}.log", d / f"gateway-{i}.url"


def gateway_url(root: str | Path, i: int) -> str:
    """Gateway ``i``'s FHIR base URL (written by :func:`start_gateway`)."""
    return _files(Path(root), i)[2].read_text().strip()


def gateway_pid(root: Path, i: int) -> int | None:
    """The pid of gateway ``i`` if that process still runs it."""
    pidf = _files(root, i)[0]
    try:
        pid = int(pidf.read_text().strip())
    except (OSError, ValueError):
        return None
    proc = _children.get(pid)
    if proc is not None:
        # started here: its exit status decides (between fork and exec, /proc still shows our
        # own command line, and a gateway that was starting looked dead: "did not start")
        return pid if proc.poll() is None else None
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    if b"gateway" not in cmd or str(root).encode() not in cmd or state == "Z":
        return None
    return pid


_children: dict[int, subprocess.Popen[bytes]] = {}


def start_gateway(root: Path, i: int, port: int = 0, extra: list[str] | None = None) -> int:
    """Start gateway ``i`` (``port`` 0: a free one); returns its pid."""
    root = root.resolve()
    port = port or cluster.free_port()
    pidf, logf, urlf = _files(root, i)
    urlf.write_text(f"https://127.0.0.1:{port}/fhir\n")
    env = dict(os.environ)
    src = str(Path(medbench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with logf.open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medbench",
                "gateway",
                "run",
                "--dir",
                str(root),
                "--node",
                str(i),
                "--port",
                str(port),
                *(extra or []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    pidf.write_text(str(proc.pid))
    _children[proc.pid] = proc
    return proc.pid


def wait_gateway(root: Path, i: int, timeout: float = 60.0) -> bool:
    """Wait until gateway ``i`` printed its readiness line (or exited)."""
    _, logf, _ = _files(root.resolve(), i)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError):
            if f"gateway {i} ready" in logf.read_text(errors="replace"):
                return True
        if gateway_pid(root.resolve(), i) is None:
            return False
        time.sleep(0.1)
    return False


def up(
    directory: str | Path,
    n: int = 4,
    gateways: list[int] | None = None,
    *,
    timeout: float = 90.0,
    extra: list[str] | None = None,
    **generate_kw: Any,
) -> list[str]:
    """Consortium + enrolment + nodes + gateways; returns the gateways' base URLs."""
    root = Path(directory).resolve()
    if not (root / "consortium.toml").exists():
        protocol = {**GATEWAY_PROTOCOL, **generate_kw.pop("protocol", {})}
        cluster.generate(root, n, service="medchain", protocol=protocol, **generate_kw)
    enrol(root)
    cons = load_consortium(root / "consortium.toml")
    cluster.up(root, cons.n, timeout=timeout)
    ids = list(range(cons.n)) if gateways is None else gateways
    for i in ids:
        if gateway_pid(root, i) is None:
            start_gateway(root, i, extra=extra)
    bad = [i for i in ids if not wait_gateway(root, i, timeout)]
    if bad:
        raise RuntimeError(f"gateways {bad} did not start; see {root / 'gateway'}/gateway-*.log")
    return [gateway_url(root, i) for i in ids]


def stop_gateway(root: Path, i: int, timeout: float = 10.0) -> None:
    """SIGTERM gateway ``i``, SIGKILL after ``timeout``."""
    root = root.resolve()
    pid = gateway_pid(root, i)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and gateway_pid(root, i) is not None:
        proc = _children.get(pid)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
        else:
            time.sleep(0.05)
    if gateway_pid(root, i) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc = _children.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def down(directory: str | Path) -> None:
    """Stop every gateway, then every node."""
    root = Path(directory).resolve()
    cons = load_consortium(root / "consortium.toml")
    for i in range(cons.n):
        stop_gateway(root, i)
    cluster.down(root)
