"""Faults on real processes, under load, with a safety audit from the disks afterwards.

Theory of operation
-------------------
Each scenario starts a fresh consortium (:mod:`.cluster`), runs a closed-loop load generator
(:mod:`.loadgen`, a separate process) for the whole scenario, injects its faults with signals on
the node processes (``SIGKILL``, ``SIGSTOP``/``SIGCONT``, ``SIGTERM``) or with link faults in the
runtime's own transport (``[link_faults]`` + ``SIGHUP``), samples every node's ``/metrics`` every
100 ms, lets the load finish and the nodes converge, stops the consortium and audits the stores
(:func:`.audit.audit`): the honest nodes executed identical batches, no replica voted twice, and
every request the clients saw committed (f+1 matching replies) was executed by every node.

The scenarios (the places users of BFT-SMaRt, CometBFT, Fabric and concord-bft report getting
stuck):

``kill-backup``      SIGKILL a backup under load, restart it: it recovers from its store and
                     catches up by state transfer;
``kill-primary``     SIGKILL the primary: the others change view and service resumes; the old
                     primary rejoins as a backup;
``stop-cont``        SIGSTOP a backup for a while, SIGCONT it: it catches up;
``restart-all``      SIGKILL every node, restart them all: service resumes from the disks;
``far-behind``       a backup down for most of the run, then restarted far behind;
``stale-primary``    a backup is partitioned away (link faults) and falls behind, the partition
                     heals, and the primary is killed at once: the view change must include the
                     stale replica;
``kill-f-plus-1``    SIGKILL f+1 nodes: service stops (no quorum); restart them: it resumes;
``lossy-links``      5 % loss and 2 ± 1 ms delay on every link (seeded): service continues.

:func:`run_scenarios` writes ``faults.csv`` (one verdict row per scenario) and ``faults.md``.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from medbench.runtime import cluster
from medbench.runtime.audit import AuditReport, committed_digests
from medbench.runtime.protocols import audit_stores

FAST_PROTOCOL = {
    "checkpoint_interval": 16,
    "log_window": 64,
    "view_change_timeout_us": 500_000,
    "client_retransmit_us": 500_000,
    "fetch_timeout_us": 300_000,
}
FAST_LIMITS = {"reconnect_min_ms": 20, "reconnect_max_ms": 300}
FAST_OTHER: dict[str, dict[str, Any]] = {
    "hotstuff": {"view_timeout_us": 500_000, "client_retransmit_us": 500_000},
    "raft": {"election_timeout_us": 500_000, "client_retransmit_us": 500_000},
}
"""The short timeouts of :data:`FAST_PROTOCOL` for HotStuff and Raft consortia."""


@dataclass
class Sample:
    """One poll of every node."""

    t: float
    executed: dict[int, int]
    views: dict[int, int]


@dataclass
class LiveCluster:
    """A running consortium under test (see the module docstring)."""

    lay: cluster.Layout
    n: int
    service: str = "null"
    consensus: str = "pbft"
    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    _poller: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(
        cls, work: Path, name: str, n: int = 4, service: str = "null", **kw: Any
    ) -> LiveCluster:
        """Generate and start a fresh consortium in ``work/name``."""
        d = work / name
        consensus = kw.get("consensus", "pbft")
        fast = FAST_OTHER.get(consensus, FAST_PROTOCOL)
        protocol = {**fast, **kw.pop("protocol", {})}
        limits = {**FAST_LIMITS, **kw.pop("limits", {})}
        cluster.generate(d, n, service=service, protocol=protocol, limits=limits, **kw)
        lay, _line = cluster.up(d, n, timeout=60)
        live = cls(lay, n, service, consensus)
        live.start_polling()
        return live

    # --- processes -------------------------------------------------------------------------------
    def note(self, what: str) -> None:
        """Record an event at the current time."""
        self.events.append((time.monotonic() - self.t0, what))

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to node ``i``; after SIGKILL wait until it is gone."""
        self.note(f"{signal.Signals(sig).name} node {i}")
        cluster.signal_node(self.lay, i, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            cluster.wait_exit(self.lay, [i], 10.0)

    def restart(self, i: int) -> None:
        """Start node ``i`` again from its store."""
        self.note(f"restart node {i}")
        cluster.start_node(self.lay, i)

    def set_faults(self, i: int, faults: dict[str, Any]) -> None:
        """Rewrite node ``i``'s ``[link_faults]`` and SIGHUP it."""
        path = self.lay.node_file(i)
        import tomllib

        doc = tomllib.loads(path.read_text())
        if faults:
            doc["link_faults"] = faults
        else:
            doc.pop("link_faults", None)
        path.write_text(tomli_w.dumps(doc))
        self.note(f"link faults on node {i}: {faults or 'none'}")
        cluster.signal_node(self.lay, i, signal.SIGHUP)

    def status(self, i: int) -> dict[str, Any] | None:
        """Node ``i``'s metrics (``None`` if down)."""
        if cluster.node_pid(self.lay, i) is None:
            return None
        return cluster.read_status(self.lay, i)

    def primary(self) -> int:
        """The primary most live nodes agree on."""
        views = [int(s["view"]) for i in range(self.n) if (s := self.status(i)) is not None]
        return max(set(views), key=views.count) % self.n if views else 0

    def leader(self, timeout: float = 10.0) -> int | None:
        """The leader (``primary`` metric) a majority of the members name, for any protocol
        (Raft's leader is elected, not ``view mod n``); ``None`` if none within ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            named = [int(s.get("primary", -1)) for i in range(self.n)
                     if (s := self.status(i)) is not None]  # fmt: skip
            for cand in set(named) - {-1}:
                if named.count(cand) > self.n // 2:
                    return cand
            time.sleep(0.1)
        return None

    # --- observation -----------------------------------------------------------------------------
    def start_polling(self) -> None:
        """Sample every node every 100 ms in a background thread."""

        def poll() -> None:
            while not self._stop.is_set():
                ex, vw = {}, {}
                for i in range(self.n):
                    st = self.status(i)
                    if st is not None:
                        ex[i] = int(st.get("last_executed", 0))
                        vw[i] = int(st.get("view", 0))
                self.samples.append(Sample(time.monotonic() - self.t0, ex, vw))
                self._stop.wait(0.1)

        self._poller = threading.Thread(target=poll, daemon=True)
        self._poller.start()

    def progress(self) -> int:
        """The highest last-executed sequence among live nodes."""
        return max((s.get("last_executed", 0) for i in range(self.n)
                    if (s := self.status(i)) is not None), default=0)  # fmt: skip

    def wait_progress(self, beyond: int, timeout: float) -> float | None:
        """Seconds until some live node executes past ``beyond`` (``None``: timed out)."""
        t = time.monotonic()
        end = t + timeout
        while time.monotonic() < end:
            if self.progress() > beyond:
                return time.monotonic() - t
            time.sleep(0.05)
        return None

    def wait_converged(self, timeout: float = 20.0) -> bool:
        """Wait until every node runs and all executed the same last sequence."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = [self.status(i) for i in range(self.n)]
            if all(s is not None for s in st):
                ex = {int(s["last_executed"]) for s in st if s is not None}
                if len(ex) == 1:
                    return True
            time.sleep(0.1)
        return False

    def wait_caught_up(self, target: int, timeout: float) -> bool:
        """Wait until every node runs and executed at least ``target``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = [self.status(i) for i in range(self.n)]
            if all(s is not None and int(s["last_executed"]) >= target for s in st):
                return True
            time.sleep(0.1)
        return False

    def rejections(self, i: int) -> dict[str, float]:
        """Node ``i``'s rejection counters by reason."""
        st = self.status(i) or {}
        rej = st.get("rejections_total", {})
        return dict(rej) if isinstance(rej, dict) else {}

    # --- load ------------------------------------------------------------------------------------
    def load(
        self, clients: int, duration_s: float, identity: int = 0, out: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a closed-loop load generator process (no warm-up) for ``duration_s``."""
        out = out or self.lay.root / f"load-{identity}.json"
        cmd = [
            sys.executable, "-m", "medbench", "cluster", "load", "--dir", str(self.lay.root),
            "--identity", str(identity), "--clients", str(clients), "--warmup", "0",
            "--duration", str(duration_s), "--out", str(out),
        ]  # fmt: skip
        log = (self.lay.root / f"load-{identity}.log").open("ab")
        try:
            return subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=cluster._env(),
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()

    def finish(self, procs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> list[Any]:
        """Wait for load processes; return their results."""
        results = []
        for p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for f in sorted(self.lay.root.glob("load-*.json")):
            results.append(json.loads(f.read_text()))
        return results

    def stop(self) -> None:
        """Stop polling and every node."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(2.0)
        cluster.down(self.lay.root, timeout=10.0)

    def audit(self, results: list[Any], complete: list[int] | None = None) -> AuditReport:
        """The safety audit of the stopped consortium's stores."""
        stores = {i: self.lay.node_dir(i) / "data" / "node.sqlite" for i in range(self.n)}
        return audit_stores(self.consensus, stores, committed_digests(results), complete=complete)


# --- the scenarios -------------------------------------------------------------------------------


Scenario = Callable[[LiveCluster], dict[str, Any]]


def _under_load(live: LiveCluster, seconds: float, act: Callable[[], dict[str, Any]]) -> Any:
    """Run ``act`` under a closed-loop load of ``seconds``, then let every node catch up.

    A replica that missed batches learns them only from a stable checkpoint beyond them
    (TOCS §4.3, §5.3), so once the load ends a restarted node may lag by less than a checkpoint
    interval until more requests come. A short second load (another client identity) pushes the
    consortium past a new checkpoint; then every node must have executed at least everything
    the main load committed.
    """
    before = live.progress()
    proc = live.load(8, seconds)
    if live.wait_progress(before, 30.0) is None:  # connected and committing
        live.note("the load did not start committing")
    time.sleep(0.5)
    extra = act()
    results = live.finish([proc], timeout=seconds + 30)
    target = live.progress()
    seconds = 1.0 if live.service == "null" else 3.0  # Medical Chain: grants first
    flush = live.load(4, seconds, identity=1, out=live.lay.root / "flush.json")
    live.finish([flush], timeout=60)
    extra["caught_up"] = live.wait_caught_up(target, 30.0)
    return results, extra


def kill_backup(live: LiveCluster) -> dict[str, Any]:
    """SIGKILL a backup under load, restart it; it catches up."""

    def act() -> dict[str, Any]:
        b = (live.primary() + 2) % live.n
        live.kill(b)
        time.sleep(2.0)
        live.restart(b)
        return {"victim": b}

    results, extra = _under_load(live, 7.0, act)
    return {"results": results, **extra}


def kill_primary(live: LiveCluster) -> dict[str, Any]:
    """SIGKILL the primary under load: view change, service resumes; it rejoins."""

    def act() -> dict[str, Any]:
        p = live.primary()
        before = live.progress()
        live.kill(p)
        resumed = live.wait_progress(before + 1, 15.0)
        live.restart(p)
        return {"victim": p, "resumed_after_s": resumed}

    results, extra = _under_load(live, 8.0, act)
    return {"results": results, **extra}


def stop_cont(live: LiveCluster) -> dict[str, Any]:
    """SIGSTOP a backup for 2 s, SIGCONT it."""

    def act() -> dict[str, Any]:
        b = (live.primary() + 1) % live.n
        live.kill(b, signal.SIGSTOP)
        time.sleep(2.0)
        live.kill(b, signal.SIGCONT)
        return {"victim": b}

    results, extra = _under_load(live, 6.0, act)
    return {"results": results, **extra}


def restart_all(live: LiveCluster) -> dict[str, Any]:
    """SIGKILL every node, restart all: service resumes from the disks."""

    def act() -> dict[str, Any]:
        before = live.progress()
        for i in range(live.n):
            live.kill(i)
        for i in range(live.n):
            live.restart(i)
        resumed = live.wait_progress(before, 20.0)
        return {"resumed_after_s": resumed}

    results, extra = _under_load(live, 8.0, act)
    return {"results": results, **extra}


def far_behind(live: LiveCluster) -> dict[str, Any]:
    """A backup down for most of the run, restarted far behind."""

    def act() -> dict[str, Any]:
        b = (live.primary() + 3) % live.n
        live.kill(b)
        start = live.progress()
        time.sleep(6.0)
        behind = live.progress() - start
        live.restart(b)
        return {"victim": b, "behind_batches": behind}

    results, extra = _under_load(live, 10.0, act)
    return {"results": results, **extra}


def stale_primary(live: LiveCluster) -> dict[str, Any]:
    """Partition a backup away, heal, and kill the primary at once."""

    def act() -> dict[str, Any]:
        p = live.primary()
        s = (p + 1) % live.n
        others = [i for i in range(live.n) if i != s]
        live.set_faults(s, {"partition": others})
        for i in others:
            live.set_faults(i, {"partition": [s]})
        time.sleep(2.0)
        st = live.status(s) or {}
        stale_by = live.progress() - int(st.get("last_executed", 0))
        for i in range(live.n):
            live.set_faults(i, {})
        live.kill(p)
        before = live.progress()
        resumed = live.wait_progress(before, 20.0)
        live.restart(p)
        return {"victim": p, "stale": s, "stale_by_batches": stale_by, "resumed_after_s": resumed}

    results, extra = _under_load(live, 9.0, act)
    return {"results": results, **extra}


def kill_f_plus_1(live: LiveCluster) -> dict[str, Any]:
    """SIGKILL f+1 nodes: service stops; restart them: it resumes."""
    f = (live.n - 1) // 3

    def act() -> dict[str, Any]:
        p = live.primary()
        victims = [(p + 1 + k) % live.n for k in range(f + 1)]
        for v in victims:
            live.kill(v)
        time.sleep(0.5)
        frozen = live.progress()
        time.sleep(2.0)
        stalled = live.progress() == frozen
        for v in victims:
            live.restart(v)
        resumed = live.wait_progress(frozen, 20.0)
        return {"victims": victims, "stalled_without_quorum": stalled, "resumed_after_s": resumed}

    results, extra = _under_load(live, 9.0, act)
    ok = bool(extra.get("stalled_without_quorum")) and extra.get("resumed_after_s") is not None
    return {"results": results, **extra, "expected_behaviour": ok}


def lossy_links(live: LiveCluster) -> dict[str, Any]:
    """5 % loss, 2 +- 1 ms delay on every link (seeded); service continues."""

    def act() -> dict[str, Any]:
        for i in range(live.n):
            live.set_faults(i, {"seed": i, "loss": 0.05, "delay_ms": 2.0, "jitter_ms": 1.0})
        time.sleep(4.0)
        for i in range(live.n):
            live.set_faults(i, {})
        return {}

    results, extra = _under_load(live, 6.0, act)
    return {"results": results, **extra}


SCENARIOS: dict[str, Scenario] = {
    "kill-backup": kill_backup,
    "kill-primary": kill_primary,
    "stop-cont": stop_cont,
    "restart-all": restart_all,
    "far-behind": far_behind,
    "stale-primary": stale_primary,
    "kill-f-plus-1": kill_f_plus_1,
    "lossy-links": lossy_links,
}


def run_scenario(work: Path, name: str, *, service: str = "null", n: int = 4) -> dict[str, Any]:
    """One scenario on a fresh consortium; returns its verdict row."""
    live = LiveCluster.create(work, name, n, service)
    t0 = time.monotonic()
    try:
        extra = SCENARIOS[name](live)
        converged = bool(extra.pop("caught_up", False))
    finally:
        live.stop()
    results = extra.pop("results", [])
    report = live.audit(results)
    committed = sum(len(r.get("completed_ids", [])) for r in results)
    views = max((max(s.views.values(), default=0) for s in live.samples), default=0)
    row: dict[str, Any] = {
        "scenario": name,
        "service": service,
        "n": n,
        "ok": report.ok and converged and extra.pop("expected_behaviour", True),
        "converged": converged,
        "committed": committed,
        "seconds": round(time.monotonic() - t0, 1),
        "final_view": views,
        "executed": json.dumps({i: log.last_executed for i, log in report.nodes.items()}),
        "problems": "; ".join(report.problems[:5]),
        "events": "; ".join(f"{t:.1f}s {w}" for t, w in live.events),
    }
    for k, v in extra.items():
        row[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
    return row


def run_scenarios(
    out: str | Path,
    work: str | Path | None = None,
    names: list[str] | None = None,
    *,
    service: str = "null",
    n: int = 4,
) -> bool:
    """Run the scenarios; write ``faults.csv`` and ``faults.md`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(work) if work else out / "clusters"
    base.mkdir(parents=True, exist_ok=True)
    run_dir = base / time.strftime("faults-%Y%m%d-%H%M%S")
    rows = []
    for name in names or list(SCENARIOS):
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")
        print(f"scenario {name} ...", flush=True)
        row = run_scenario(run_dir, name, service=service, n=n)
        rows.append(row)
        print(
            f"  {'ok' if row['ok'] else 'FAILED'}: {row['committed']} committed, "
            f"executed {row['executed']} {row['problems']}",
            flush=True,
        )
    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    with (out / "faults.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = ["| scenario | ok | committed | executed per node | seconds | notes |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        notes = ", ".join(
            f"{k}={r[k]}"
            for k in ("resumed_after_s", "behind_batches", "stale_by_batches",
                      "stalled_without_quorum")
            if k in r
        )  # fmt: skip
        lines.append(
            f"| {r['scenario']} | {'yes' if r['ok'] else 'NO'} | {r['committed']} | "
            f"{r['executed']} | {r['seconds']} | {notes} {r['problems']} |"
        )
    (out / "faults.md").write_text("\n".join(lines) + "\n")
    return all(r["ok"] for r in rows)
