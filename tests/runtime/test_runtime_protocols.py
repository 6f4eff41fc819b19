"""Chained HotStuff and Raft consortia on loopback over mutual TLS (medbench.runtime.protocols).

Each test starts its own 4-node consortium (about 25 s), runs a closed-loop load generator
process, SIGKILLs a node under load and restarts it from its store, then stops every process
and audits the stores: every node committed the same order, no node voted twice, and every
request a client saw committed is in the order of every node that reached the top. Every
process is stopped by the test (``LiveCluster.stop`` in a ``finally``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.runtime import cluster
from medbench.runtime.audit import AuditReport
from medbench.runtime.config import ConfigError, load_consortium, parse_consortium
from medbench.runtime.scenarios import LiveCluster, _under_load


def _same_order(report: AuditReport) -> None:
    """Every two nodes hold the same entry at every position both committed."""
    logs = list(report.nodes.values())
    for a in logs:
        for b in logs:
            common = set(a.executed) & set(b.executed)
            assert all(a.executed[k] == b.executed[k] for k in common), (a.node, b.node)


def test_hotstuff_commits_and_a_killed_replica_catches_up(tmp_path: Path) -> None:
    live = LiveCluster.create(tmp_path, "hs", 4, "null", consensus="hotstuff")
    try:
        cons = load_consortium(live.lay.consortium)
        assert cons.consensus == "hotstuff" and cons.f == 1

        def act() -> dict[str, object]:
            victim = 2
            live.kill(victim)
            before = live.progress()
            # three replicas are a quorum (n - f): they keep committing without it
            moved = live.wait_progress(before + 5, 15.0)
            live.restart(victim)
            return {"moved": moved}

        results, extra = _under_load(live, 6.0, act)
        assert extra["moved"] is not None, "no commit while a replica was down"
        assert extra["caught_up"], "the restarted replica did not catch up"
    finally:
        live.stop()
    committed = sum(len(r["completed_ids"]) for r in results)
    assert committed >= 100, committed
    report = live.audit(results)
    assert report.ok, report.summary()
    _same_order(report)
    assert all(log.last_executed > 0 for log in report.nodes.values())
    assert "recovered True" in live.lay.log(2).read_text()


def test_raft_commits_and_elects_a_new_leader_when_the_leader_dies(tmp_path: Path) -> None:
    live = LiveCluster.create(tmp_path, "raft", 4, "null", consensus="raft")
    try:
        old = live.leader()
        assert old is not None, "no leader elected"

        def act() -> dict[str, object]:
            leader = live.leader()
            assert leader is not None
            live.kill(leader)
            # the followers keep naming the dead leader until their election timers fire, and
            # entries in flight may still execute: wait for a new leader, then for progress
            new = None
            end = time.monotonic() + 20.0
            while new is None and time.monotonic() < end:
                named = live.leader(timeout=1.0)
                new = named if named is not None and named != leader else None
            before = live.progress()
            resumed = live.wait_progress(before + 5, 20.0) if new is not None else None
            live.restart(leader)
            return {"old": leader, "new": new, "resumed": resumed}

        results, extra = _under_load(live, 7.0, act)
        assert extra["resumed"] is not None, "no commit after the leader's crash"
        assert extra["new"] is not None and extra["new"] != extra["old"], extra
        assert extra["caught_up"], "the restarted node did not catch up"
    finally:
        live.stop()
    committed = sum(len(r["completed_ids"]) for r in results)
    assert committed >= 100, committed
    report = live.audit(results)
    assert report.ok, report.summary()
    _same_order(report)
    assert all(log.last_executed > 0 for log in report.nodes.values())


def test_other_services_refuse_hotstuff_and_raft(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PBFT only"):
        cluster.generate(tmp_path / "x", 4, service="medchain", consensus="raft")
    assert not (tmp_path / "x").exists()
    lay = cluster.generate(tmp_path / "y", 4, consensus="hotstuff")
    import tomllib

    doc = tomllib.loads(lay.consortium.read_text())
    doc["consortium"]["service"] = "medchain"
    with pytest.raises(ConfigError, match="PBFT only"):
        parse_consortium(doc)
    doc["consortium"]["service"] = "null"
    doc["protocol"]["checkpoint_interval"] = 8  # a PBFT key
    with pytest.raises(ConfigError, match="unknown hotstuff keys"):
        parse_consortium(doc)
    cmd = [sys.executable, "-m", "medbench", "cluster", "up", "--dir", str(tmp_path / "z"),
           "--protocol", "hotstuff", "--service", "medchain"]  # fmt: skip
    t = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=cluster._env(), timeout=60)
    assert out.returncode == 2, out
    assert out.stderr.strip().count("\n") == 0 and "PBFT only" in out.stderr
    assert time.monotonic() - t < 60


def test_digest_names_the_protocol(tmp_path: Path) -> None:
    a = load_consortium(cluster.generate(tmp_path / "a", 4, consensus="raft").consortium)
    assert a.consensus == "raft" and a.f == 1 and a.consensus_config.snapshot_interval == 0
    b = load_consortium(cluster.generate(tmp_path / "b", 4).consortium)
    assert b.consensus == "pbft" and b.consensus_config is None
    import dataclasses

    assert dataclasses.replace(a, consensus="hotstuff").digest != a.digest
