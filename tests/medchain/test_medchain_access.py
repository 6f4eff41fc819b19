"""Issue 5 on the running chain: identity and permission rules through PBFT on four nodes.

Every test here drives real :class:`~medbench.medchain.MedicalChainNode` replicas (PBFT +
:class:`~medbench.medchain.AccessValidator` + SQLite) and asserts what each of the four nodes'
chain state holds once the requests are committed — not what the in-memory ``LocalChain`` says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medchain_helpers import deploy

from medbench import codec
from medbench.access.request import Operation
from medbench.access.scenario import GENESIS_US
from medbench.ledger import Kind, Transaction
from medbench.medchain import Deployment, request_transaction

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}
HOUR_US = 3600 * 1_000_000


def results(net: Any, client: int) -> list[list[Any]]:
    """Decoded replies ``client`` received, in order."""
    return [codec.decode(c.result) for c in net.completed if c.client == client]


def settle(net: Any, us: int = 1_500_000) -> None:
    """Let requests, the records they cause and the blocks listing them commit."""
    net.run(us)


def grant_wire(dep: Deployment, patient: int, doctor: int, at_us: int, **window: int) -> bytes:
    """Patient ``patient`` grants doctor ``doctor`` read/add on everything."""
    p, d = dep.patient_client(patient), dep.doctor_client(doctor)
    body = {
        "grantee": d.public_key,
        "ops": ["add", "read"],
        "categories": ["*"],
        "not_before_us": window.get("nb", at_us),
        "not_after_us": window.get("na", at_us + HOUR_US),
    }
    req = p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=at_us)
    return request_transaction(req).to_wire()


def read_wire(dep: Deployment, doctor: int, patient: int, at_us: int) -> Transaction:
    """Doctor ``doctor`` reads patient ``patient``'s current records."""
    d, p = dep.doctor_client(doctor), dep.patient_client(patient)
    req = d.request(Operation.READ, patient=p.public_key, body={"history": False}, at_us=at_us)
    return request_transaction(req)


def node_record(dep: Deployment, node: int, content: dict[str, Any], kind: Kind) -> bytes:
    """A record signed by node ``node``'s validator key (as a Byzantine node would write it)."""
    return Transaction.create(
        kind, codec.encode(content), GENESIS_US + 3, [dep.setups[node].key]
    ).to_wire()


# --- 1. the blacklist cannot be forged by one node ------------------------------------------------


def test_byzantine_node_cannot_blacklist_an_honest_doctor(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    n, users = dep.config.n, dep.user_ids
    victim = dep.doctors[1].public_key
    net.submit(users[0], grant_wire(dep, 1, 1, GENESIS_US + 1))
    honest_read = read_wire(dep, 1, 1, GENESIS_US + 2)
    net.submit(users[1], honest_read.to_wire())
    settle(net)
    assert [r[0] for r in results(net, users[1])] == ["accepted"]
    # a request "signed" by the victim that the victim never signed: a wrong signature
    forged = Transaction(
        honest_read.kind, honest_read.content, honest_read.timestamp_us + 1,
        honest_read.public_keys, (bytes(64),),
    )  # fmt: skip
    fabricated = [
        # the probe's record: no evidence at all
        {"type": "blacklist", "request": bytes([i]) * 32, "subject": victim, "reason": "no-grant"}
        for i in range(3)
    ] + [
        # the victim's own accepted read cited as a refusal
        {"type": "blacklist", "subject": victim, "request": honest_read.id, "operation": "read",
         "patient": dep.patients[1].public_key, "reason": "no-grant",
         "evidence": honest_read.to_wire()},
        # a forged request in the victim's name
        {"type": "blacklist", "subject": victim, "request": forged.id, "operation": "read",
         "patient": dep.patients[1].public_key, "reason": "no-grant", "evidence": forged.to_wire()},
    ]  # fmt: skip
    for content in fabricated:
        net.submit(n + 3, node_record(dep, 3, content, Kind.ADD))  # node 3 is Byzantine
    settle(net, 3_000_000)
    again = read_wire(dep, 1, 1, GENESIS_US + 10)
    net.submit(users[2], again.to_wire())
    settle(net)
    assert results(net, users[2]) == [["accepted", again.id]]
    for i in range(4):
        state = dep.nodes[i].access.state
        assert state.blacklist == {} and state.blacklist_records == []
    # the honest primary refused every fabrication before ordering, with a typed reason
    refused = dep.nodes[0].access.refusals
    assert refused["unproven-record"] >= len(fabricated)  # (client retransmissions count too)


def test_a_real_refusal_still_blacklists_on_every_node(tmp_path: Path) -> None:
    """Positive control: the honest record carries its evidence and every replica re-derives it."""
    dep, net = deploy(tmp_path, **FAST)
    tx = read_wire(dep, 0, 2, GENESIS_US + 5)  # doctor 0 has no grant from patient 2
    net.submit(dep.user_ids[0], tx.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert state.blacklist == {dep.doctors[0].public_key: 1}
        (record,) = state.blacklist_records
        assert record.content["evidence"] == tx.to_wire()
        assert record.content["reason"] == "no-grant"
        (audit,) = [a for a in state.audit if a.content["request"] == tx.id]
        assert audit.content["outcome"] == "no-grant"


# --- 2. time: the stamp is bounded on both sides -------------------------------------------------

TIGHT = {**FAST, "max_age_us": 200_000, "max_lead_us": 200_000}


def test_backdating_into_an_expired_grant_window_is_refused(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    net.submit(users[0], grant_wire(dep, 0, 0, GENESIS_US + 1, na=GENESIS_US + 300_000))
    net.run(1_000_000)  # every replica's clock is now ~0.7 s past the grant's end
    assert [r[0] for r in results(net, users[0])] == ["accepted"]
    back = read_wire(dep, 0, 0, GENESIS_US + 100_000)  # inside the window, a second "ago"
    net.submit(users[1], back.to_wire())
    settle(net)
    assert results(net, users[1]) == []  # never ordered
    assert dep.nodes[0].access.refusals["stale-timestamp"] >= 1
    now = read_wire(dep, 0, 0, GENESIS_US + net.now)  # honestly stamped: the grant has expired
    net.submit(users[2], now.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert back.id not in state.seen and now.id not in state.seen
        assert [r.content["reason"] for r in state.blacklist_records] == ["grant-expired"]


def test_future_dating_into_a_grant_not_yet_valid_is_refused_even_by_a_byzantine_primary(
    tmp_path: Path,
) -> None:
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    start = GENESIS_US + HOUR_US
    net.submit(users[0], grant_wire(dep, 0, 0, GENESIS_US + 1, nb=start, na=start + HOUR_US))
    settle(net)
    assert [r[0] for r in results(net, users[0])] == ["accepted"]
    ahead = read_wire(dep, 0, 0, start + 5)
    net.submit(users[1], ahead.to_wire())
    settle(net)
    assert results(net, users[1]) == [] and dep.nodes[0].access.refusals["future-timestamp"] >= 1
    # a Byzantine primary admits anything: the honest backups' clocks still refuse to prepare it
    dep.nodes[0].replica.validator = lambda request: None
    ahead2 = read_wire(dep, 0, 0, start + 6)
    net.submit(users[2], ahead2.to_wire())
    net.run(3_000_000)
    assert results(net, users[2]) == []
    for i in range(4):
        seen = dep.nodes[i].access.state.seen
        assert ahead.id not in seen and ahead2.id not in seen
    assert all(dep.nodes[i].access.refusals["future-timestamp"] >= 1 for i in (1, 2, 3))


def test_a_stamp_before_a_grant_revocation_on_chain_is_refused_on_every_node(
    tmp_path: Path,
) -> None:
    """The revocation floor is deterministic: no clock needed, every replica refuses alike."""
    dep, net = deploy(tmp_path, **FAST)  # a 10-minute clock window: the floor does the work
    users = dep.user_ids
    grant = grant_wire(dep, 0, 0, GENESIS_US + 1)
    net.submit(users[0], grant)
    settle(net)
    p = dep.patient_client(0)
    gid = Transaction.from_wire(grant).id
    revoke = p.request(Operation.REVOKE, patient=p.public_key, body={"grant": gid},
                       at_us=GENESIS_US + 500_000)  # fmt: skip
    net.submit(users[0], request_transaction(revoke).to_wire())
    settle(net)
    assert [r[0] for r in results(net, users[0])] == ["accepted", "accepted"]
    back = read_wire(dep, 0, 0, GENESIS_US + 400_000)  # while the grant was still active
    from medbench.consensus.pbft.messages import Request

    for i in range(4):
        reason = dep.nodes[i].access(Request(99, 1, back.to_wire()))
        assert reason is not None and reason.startswith("stale-timestamp: predates a revocation")
    net.submit(users[1], back.to_wire())
    late = read_wire(dep, 0, 0, GENESIS_US + 600_000)
    net.submit(users[2], late.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert back.id not in state.seen and late.id not in state.seen
        assert [r.content["reason"] for r in state.blacklist_records] == ["grant-revoked"]
