"""Compute fairness of Table 1: every system pays the same client-signature work.

The rule (medbench.consensus.baselines.common, medbench.experiments.pbft): a client signs each
transaction once; each node that accepts a block holding it (a PBFT replica: each replica that
accepts the request) verifies its signature once. PBFT's per-message signatures stay on top.
"""

from __future__ import annotations

from typing import Any

import pytest

from medbench import experiments as ex
from medbench.consensus.auth import Scheme
from medbench.consensus.pbft.messages import Request
from medbench.consensus.pbft.replica import Config, Replica
from medbench.experiments.baselines import SimBaseline
from medbench.experiments.pbft import SignedRequestMacKeyring, shared_keyrings
from medbench.study import table1

QUICK = table1.Settings.quick()


@pytest.fixture(scope="module")
def rows() -> dict[str, table1.Row]:
    return {r.system.key: r for r in table1.measure_table(QUICK)}


@pytest.mark.parametrize(
    ("protocol", "extra"),
    [
        ("pow", {}),
        ("poi", {}),
        ("poa", {}),
        ("dpos", {"delegates": 3, "auditors": 2}),
        ("central", {}),
    ],
)
def test_baseline_nodes_verify_each_client_signature_once(
    protocol: str, extra: dict[str, Any]
) -> None:
    n, txs = 5, 8
    params = {"protocol": protocol, "n": n, "tick_us": 0, "txs": txs, **extra}
    sim, _dep = ex.build_simulator(params, seed=3)
    record = sim.run(900_000_000, stop_when_complete=True)
    assert len(record.completed) == txs
    signed = 0
    for i in range(n):
        node = sim.nodes[i]
        assert isinstance(node, SimBaseline)
        st = node.stats()
        signed += st["tx_sign_ops"]
        held = {t[0] for b, _final in node.node.stored_blocks() for t in b.txs}
        # One check per distinct transaction in the blocks the node accepted, however often
        # it saw them (forks, resyncs).
        assert st["tx_verify_ops"] == len(held) == len(node.node.tx_verified)
        assert record.op_counts[i].get("verify", 0) == st["verify_ops"] + st["tx_verify_ops"]
        assert record.op_counts[i].get("sign", 0) == st["sign_ops"] + st["tx_sign_ops"]
    assert signed == txs  # the client signs each transaction once


@pytest.mark.parametrize("extra", [{}, {"auth": "macs", "client_signatures": 1}])
def test_pbft_replicas_verify_each_request_once(extra: dict[str, Any]) -> None:
    n, requests = 4, 12
    params = {"protocol": "pbft", "n": n, "requests": requests, "clients": 3, **extra}
    sim, _dep = ex.build_simulator(params, seed=2)
    record = sim.run(60_000_000, stop_when_complete=True)
    sim.drain(range(n))
    assert len(record.completed) == requests
    stats = [sim.nodes[i].stats() for i in range(n + 3)]
    assert [s["client_sig_verifies"] for s in stats[:n]] == [requests] * n
    assert sum(s["client_sig_signs"] for s in stats[n:]) == requests
    assert all(s["client_sig_signs"] == 0 for s in stats[:n])
    if extra:
        # MACs among replicas: the only signatures charged are the clients'.
        charged = sim.snapshot().op_counts
        assert sum(c.get("verify", 0) for c in charged.values()) == n * requests
        assert sum(c.get("sign", 0) for c in charged.values()) == requests
        assert stats[1]["hash.mac"] > 0


def test_macs_sign_client_requests_by_default() -> None:
    """``auth=macs`` signs client requests unless asked not to (defect 7 of issue 13)."""
    params = {"protocol": "pbft", "n": 4, "requests": 4, "auth": "macs"}
    sim, _dep = ex.build_simulator(params, seed=2)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == 4
    assert all(sim.nodes[i].stats()["client_sig_verifies"] >= 4 for i in range(4))


def test_plain_macs_have_no_client_signatures() -> None:
    params = {"protocol": "pbft", "n": 4, "requests": 4, "auth": "macs", "client_signatures": 0}
    sim, _dep = ex.build_simulator(params, seed=2)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == 4
    assert all(sim.nodes[i].stats()["client_sig_verifies"] == 0 for i in range(4))
    assert all("sign" not in c for c in record.op_counts.values())


@pytest.mark.parametrize("signer", [Scheme.MODELED, Scheme.SIGNATURES])
def test_signed_request_mac_keyring_refuses_forged_requests(signer: Scheme) -> None:
    """A request must carry its own client's signature: a MAC authenticator, another
    client's signature, or a tampered operation is refused and counted, never executed."""
    rings = shared_keyrings(Scheme.MACS, 4, [4, 5], seed=b"k" * 32, client_signer=signer)
    assert all(isinstance(k, SignedRequestMacKeyring) for k in rings.values())
    replica = Replica(1, Config(n=4), rings[1])
    good = Request(4, 1, b"op")
    good = good.with_auth(rings[4].sign(good.body()))
    other = Request(4, 1, b"op")
    other = other.with_auth(rings[5].sign(other.body()))
    mac = Request(4, 1, b"op")
    mac = mac.with_auth(super(SignedRequestMacKeyring, rings[4]).sign(mac.body()))
    tampered = Request(4, 1, b"oq").with_auth(good.auth)
    for bad in (other, mac, tampered):
        ready = replica.step(4, bad)
        assert any(note.kind == "reject" for note in ready.notes), bad
    assert replica.rejections["request not authentic"] == 3
    before = sum(replica.rejections.values())
    replica.step(4, good)
    assert sum(replica.rejections.values()) == before
    with pytest.raises(ValueError):
        shared_keyrings(Scheme.MACS, 4, [4], seed=b"k" * 32, client_signer=Scheme.MACS)


def test_every_row_charges_the_same_client_signature_work(rows: dict[str, table1.Row]) -> None:
    """At the common size every system's nodes check each transaction's signature once."""
    n = QUICK.common_n
    for key, row in rows.items():
        r = row.common.row
        assert r["client_sig_signs_per_tx"] == pytest.approx(1.0), key
        assert r["client_sig_verifies_per_tx"] == pytest.approx(n), key
        assert r["cpu_ms.verify_client"] == pytest.approx(
            n * QUICK.cost_profile().verify_ns / 1e6
        ), key


def test_breakdown_adds_up_and_names_pbft_cost(rows: dict[str, table1.Row]) -> None:
    for key, row in rows.items():
        r = row.common.row
        parts = sum(r[f"cpu_ms.{op}"] for op in table1.BREAKDOWN) + r["cpu_ms.other"]
        assert parts == pytest.approx(r["cpu_ms_per_tx"], rel=1e-9), key
        assert min(r[f"cpu_ms.{op}"] for op in table1.BREAKDOWN) >= -1e-9, key
    flat = {d["system"]: d for d in table1.breakdown_rows(list(rows.values()))}
    sig = flat["Medical Chain"]
    macs = flat["Medical Chain, MAC authenticators (variant)"]
    # PBFT's signed messages, not client signatures, make its CPU time.
    assert sig["verify_protocol_ms"] > 5 * sig["verify_client_ms"]
    assert macs["verify_protocol_ms"] == pytest.approx(0.0, abs=1e-12)
    assert macs["sign_protocol_ms"] == pytest.approx(0.0, abs=1e-12)
    assert macs["total_ms"] < sig["total_ms"] / 2
    assert macs["verify_client_ms"] == pytest.approx(sig["verify_client_ms"])
    md = table1.markdown(list(rows.values()))
    assert "| Medical Chain, MAC authenticators (variant) |" in md
    assert "verify_client" in md


def test_relay_family_ignores_client_signatures(rows: dict[str, table1.Row]) -> None:
    """Client signatures are not block seals: the relay is still no PoA."""
    assert rows["central"].cells["family"] == "none"
    assert rows["poa"].cells["family"] == "PoA"
