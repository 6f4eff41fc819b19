"""Medical Chain nodes end to end: PBFT + access rules + rotating blocker + SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from medchain_helpers import US, care_session, crash, deploy, restart, stored_chains

from medbench import codec
from medbench.access.request import Operation
from medbench.access.scenario import GENESIS_US
from medbench.ledger import FindingKind, Transaction
from medbench.medchain import request_transaction

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}


def _result(net, client: int) -> list[list]:
    return [
        ["refused", c.refusal] if c.refusal else codec.decode(c.result)
        for c in net.completed
        if c.client == client
    ]


def test_workload_commits_identical_verified_chains(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    for k, c in enumerate(dep.user_ids):
        for op in care_session(dep, k, 3, GENESIS_US + k * 100):
            net.submit(c, op)
    assert net.run_until_idle(20_000_000)
    net.run(500_000)  # the last block and the audit records
    for c in dep.user_ids:
        assert [r[0] for r in _result(net, c)] == ["accepted"] * 5
    chains = stored_chains(dep, [0, 1, 2, 3])
    assert len(chains[0]) >= 3 and all(ch == chains[0] for ch in chains)
    policy = dep.signer_policy()
    for i in range(4):
        node = dep.nodes[i]
        report = node.verify(policy)
        assert report.ok, report.findings
        # 4 sessions x 5 transactions + 4 audit records, each body stored once, listed once
        assert report.transactions_checked == 24 == len(node.ledger)
        assert not node.access.accepted  # every accepted body reached a block
    blockers = {b.header.blocker for b in dep.nodes[0].ledger.blocks()}
    # the primary never blocks (docs/medical-chain.md §1.5)
    assert dep.genesis.validators[0] not in blockers


def test_unauthorized_read_is_refused_and_blacklisted(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    doctor, patient = dep.doctor_client(0), dep.patient_client(1)
    req = doctor.request(Operation.READ, patient=patient.public_key, body={"history": False},
                         at_us=GENESIS_US + 5)  # fmt: skip
    net.submit(dep.user_ids[0], request_transaction(req).to_wire())
    net.run(1_000_000)
    assert not _result(net, dep.user_ids[0])  # never ordered, never answered
    # the primary refused it with its typed reason (backups see it only on a retransmission)
    assert dep.nodes[0].replica.rejections["invalid request: no-grant: read on *"] == 1
    for i in range(4):
        node = dep.nodes[i]
        state = node.access.state
        assert state.blacklist == {doctor.public_key: 1}  # once, however many nodes refused
        (record,) = state.blacklist_records
        assert record.content["reason"] == "no-grant"
        audits = [a for a in state.audit if a.content["request"] == req.request_id]
        assert [a.content["outcome"] for a in audits] == ["no-grant"]
        assert node.verify().ok
    listed = {t for b in dep.nodes[0].ledger.blocks() for t in b.tx_ids}
    kinds = sorted(codec.decode(dep.nodes[0].ledger[t].content)["type"] for t in listed)
    assert kinds == ["audit", "blacklist"]


def test_query_commits_an_audit_transaction(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    p = dep.patient_client(2)
    req = p.request(Operation.READ, patient=p.public_key, body={"history": False},
                    at_us=GENESIS_US + 9)  # fmt: skip
    net.submit(dep.user_ids[0], request_transaction(req).to_wire())
    assert net.run_until_idle(5_000_000)
    net.run(300_000)
    assert _result(net, dep.user_ids[0]) == [["accepted", req.request_id]]
    store = dep.nodes[3].ledger
    listed = [t for b in store.blocks() for t in b.tx_ids]
    assert req.request_id in listed
    (audit,) = [store[t] for t in listed if t != req.request_id]
    content = codec.decode(audit.content)
    assert content["type"] == "audit" and content["request"] == req.request_id
    assert audit.author in dep.genesis.validators  # written and signed by a hospital node


def test_crashed_node_recovers_from_its_store_and_catches_up(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    sessions = [care_session(dep, k, 4, GENESIS_US + k * 100) for k in range(4)]
    for k, c in enumerate(dep.user_ids[:2]):
        for op in sessions[k]:
            net.submit(c, op)
    net.run(150_000)
    crash(dep, net, 2)
    for k, c in enumerate(dep.user_ids[2:], start=2):
        for op in sessions[k]:
            net.submit(c, op)
    assert net.run_until_idle(20_000_000)
    net.run(300_000)
    before = dep.nodes[2].stored_height
    restart(dep, net, 2)
    net.run(3_000_000)
    assert net.stats.messages["state"] >= 1  # caught up by state transfer
    # blocks it executed from a STATE answer came without their blocker's signature: it asked
    assert net.stats.messages["signature-wanted"] >= 1
    chains = stored_chains(dep, [0, 1, 2, 3])
    assert dep.nodes[2].stored_height > before
    assert all(ch == chains[0] for ch in chains)
    assert dep.nodes[2].verify(dep.signer_policy()).ok
    assert dep.nodes[2].access.state.records.versions.keys() == (
        dep.nodes[0].access.state.records.versions.keys()
    )


def test_tampered_body_is_localised_and_repaired_from_a_peer(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    for op in care_session(dep, 0, 3, GENESIS_US):
        net.submit(dep.user_ids[0], op)
    assert net.run_until_idle(5_000_000)
    net.run(300_000)
    victim = dep.nodes[1]
    block = victim.ledger.blocks()[0]
    target = block.tx_ids[1]
    tx = victim.ledger[target]
    # the stored body is a sealed request: flip one byte inside its envelope
    fields = codec.decode(tx.content)
    env = fields["envelope"]
    fields["envelope"] = env[:100] + bytes([env[100] ^ 1]) + env[101:]
    forged = Transaction(tx.kind, codec.encode(fields), tx.timestamp_us, tx.public_keys,
                         tx.signatures)  # fmt: skip
    victim.store.tamper_transaction(target, forged.to_wire())
    report = victim.verify()
    (finding,) = report.findings
    assert finding.kind is FindingKind.BODY_ALTERED
    assert (finding.height, finding.tx_index, finding.tx_id) == (1, 1, target)
    result = victim.repair([dep.nodes[0], dep.nodes[2]])
    assert result.restored == (target,) and result.report.ok
    assert victim.verify().ok


def test_stores_survive_in_sqlite(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    for op in care_session(dep, 0, 1, GENESIS_US):
        net.submit(dep.user_ids[0], op)
    assert net.run_until_idle(5_000_000)
    net.run(300_000)
    assert dep.nodes[0].store.read_log()  # the consensus log is on disk
    assert (tmp_path / "node-0.sqlite").stat().st_size > 0
    assert US == 1_000_000


@pytest.mark.parametrize(
    ("scheme", "auth", "block_mode"),
    [
        ("ed25519", "macs", "blocker"),
        ("ed25519", "modeled", "blocker"),
        ("ed25519", "signatures", "integrated"),
        ("ed25519", "macs", "integrated"),
    ],
)
def test_every_configuration_builds_verified_chains(
    tmp_path: Path, scheme: str, auth: str, block_mode: str
) -> None:
    dep, net = deploy(tmp_path, scheme=scheme, auth=auth, block_mode=block_mode, **FAST)
    for k, c in enumerate(dep.user_ids[:2]):
        for op in care_session(dep, k, 2, GENESIS_US + 100 * k):
            net.submit(c, op)
    assert net.run_until_idle(10_000_000)
    net.run(1_000_000)
    chains = stored_chains(dep, [0, 1, 2, 3])
    assert len(chains[0]) >= 2 and all(ch == chains[0] for ch in chains)
    assert dep.genesis.scheme == scheme
    for i in range(4):
        node = dep.nodes[i]
        assert node.stored_height == node.replica.chain.length - 1
        report = node.verify(dep.signer_policy())
        assert report.ok, report.findings
        assert len(node.ledger) == 10  # 2 sessions x 4 transactions + 2 audit records


def test_one_signature_scheme_per_chain(tmp_path: Path) -> None:
    # the ledger checks every signature under the genesis scheme; users sign with Ed25519
    with pytest.raises(ValueError, match="Ed25519"):
        deploy(tmp_path, scheme="ecdsa-p256")
