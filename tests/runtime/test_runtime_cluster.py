"""A 4-node consortium on loopback over mutual TLS: load, SIGKILL a backup and the primary,
refuse foreign, revoked and unknown certificates, stop by itself, audit the disks.

One cluster for the module (about 25 s): the refusal test runs while it is up, the fault test
last (it stops the cluster and audits the stores). Every process is stopped by the fixture.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medbench.runtime import certs
from medbench.runtime.config import load_consortium
from medbench.runtime.scenarios import LiveCluster, _under_load
from medbench.runtime.transport import Network


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCluster]:
    work = tmp_path_factory.mktemp("cluster")
    cl = LiveCluster.create(work, "c", 4, "null", rogue=True)
    try:
        yield cl
    finally:
        cl.stop()


def _attempt(live: LiveCluster, name: str, role: str, ids: frozenset[int]) -> None:
    """Dial member 0 for a second with the rogue certificate ``name``."""
    cons = load_consortium(live.lay.consortium)
    rogue = live.lay.root / "rogue"
    trust = rogue / "trust.pem"
    trust.write_text(cons.ca_pem + cons.crl_pem)
    ctx = certs.client_context(rogue / f"{name}.pem", rogue / f"{name}.key", b"rogue", trust)

    async def body() -> None:
        net = Network(
            self_id=None, ids=ids, role=role, n=cons.n, digest=cons.digest, limits=cons.limits,
            pins={}, addresses={0: cons.members[0].address}, tls_server=None, tls_client=ctx,
            on_ready=lambda: None, accept_clients=False,
        )  # fmt: skip
        net.dial(0)
        await asyncio.sleep(1.0)
        await net.stop()

    asyncio.run(body())


def test_refuses_foreign_revoked_and_unknown_certificates(live: LiveCluster) -> None:
    _attempt(live, "revoked", "node", frozenset({1, 5}))
    _attempt(live, "foreign", "node", frozenset({1, 5}))
    _attempt(live, "client", "client", frozenset({10_000}))
    end = time.monotonic() + 5
    while time.monotonic() < end:
        rej = live.rejections(0)
        if all(rej.get(f"conn:{r}", 0) >= 1 for r in ("revoked", "foreign-ca", "unknown-client")):
            break
        time.sleep(0.1)
    rej = live.rejections(0)
    assert rej.get("conn:revoked", 0) >= 1, rej
    assert rej.get("conn:foreign-ca", 0) >= 1, rej
    assert rej.get("conn:unknown-client", 0) >= 1, rej
    st = live.status(0) or {}
    assert st.get("peers_connected") == 3  # the members' links are untouched


def test_commits_and_survives_sigkill_of_backup_and_primary(live: LiveCluster) -> None:
    def act() -> dict[str, object]:
        p = live.primary()
        backup = (p + 2) % live.n
        live.kill(backup)
        time.sleep(1.0)
        live.restart(backup)
        time.sleep(1.0)
        before = live.progress()
        live.kill(p)
        resumed = live.wait_progress(before + 1, 15.0)
        live.restart(p)
        return {"primary": p, "backup": backup, "resumed": resumed}

    results, extra = _under_load(live, 6.0, act)
    assert extra["resumed"] is not None, "no view change after the primary's crash"
    assert extra["caught_up"], "a restarted node did not catch up"
    views = {s.views.get(i) for s in live.samples[-5:] for i in range(live.n)} - {None}
    live.stop()
    committed = sum(len(r["completed_ids"]) for r in results)
    assert committed >= 300, committed
    report = live.audit(results)
    assert report.ok, report.summary()
    assert max(v for v in views if v is not None) >= 1  # the view changed
    assert all(log.last_executed > 0 for log in report.nodes.values())


def test_logs_have_readiness_lines(live: LiveCluster) -> None:
    for i in range(live.n):
        text = Path(live.lay.log(i)).read_text()
        assert f"node {i} ready:" in text
