"""docs/medical-chain.md §1.7 item 6: the attacks on the running system, against real Medical Chain
nodes."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from medchain_helpers import care_session, deploy, stored_chains

from medbench import codec
from medbench.access.scenario import GENESIS_US
from medbench.consensus.pbft.byzantine import AlteringPrimary, BadVoter, DroppingPrimary
from medbench.consensus.pbft.messages import Request
from medbench.ledger import Kind, Transaction
from medbench.medchain import AccessValidator

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}


def _serve(dep, net, honest: list[int]) -> None:  # type: ignore[no-untyped-def]
    """One care session per user; every honest node ends with the same verified chain."""
    for k, c in enumerate(dep.user_ids[:2]):
        for op in care_session(dep, k, 2, GENESIS_US + 100 * k):
            net.submit(c, op)
    for _ in range(40):
        if all(net.nodes[c].idle for c in dep.user_ids):
            break
        net.run(500_000)
    net.run(2_000_000)
    for c in dep.user_ids[:2]:
        results = [codec.decode(x.result)[0] for x in net.completed if x.client == c]
        assert results == ["accepted"] * 4
    chains = stored_chains(dep, honest)
    assert len(chains[0]) >= 2 and all(ch == chains[0] for ch in chains)
    for i in honest:
        assert dep.nodes[i].verify(dep.signer_policy()).ok


def test_primary_drops_the_request(tmp_path: Path) -> None:
    """The client times out and broadcasts, backups relay and time out: view change, commit."""
    dep, net = deploy(tmp_path, **FAST)
    victim = dep.user_ids[0]
    dep.nodes[0].core = DroppingPrimary(dep.nodes[0].replica, [victim])
    _serve(dep, net, [1, 2, 3])
    assert all(dep.nodes[i].replica.view >= 1 for i in (1, 2, 3))


def test_primary_alters_the_request(tmp_path: Path) -> None:
    """The client's authenticator no longer matches: backups refuse to prepare, view change."""
    dep, net = deploy(tmp_path, wrap={0: AlteringPrimary}, **FAST)
    _serve(dep, net, [1, 2, 3])
    refused = sum(dep.nodes[i].replica.rejections["request not authentic"] for i in (1, 2, 3))
    assert refused >= 2
    assert all(dep.nodes[i].replica.view >= 1 for i in (1, 2, 3))


def test_backup_drops_messages(tmp_path: Path) -> None:
    """A silent backup (f = 1) changes nothing: no view change, same chains."""
    dep, net = deploy(tmp_path, **FAST)
    net.black_holes.add(3)
    _serve(dep, net, [0, 1, 2])
    assert all(dep.nodes[i].replica.view == 0 for i in (0, 1, 2))


def test_backup_sends_malformed_votes(tmp_path: Path) -> None:
    """PREPAREs and COMMITs with a wrong digest, view or sequence are discarded."""
    for field in ("digest", "view", "sequence"):
        dep, net = deploy(tmp_path / field, wrap={2: partial(BadVoter, field=field)}, **FAST)
        _serve(dep, net, [0, 1, 3])
        assert all(dep.nodes[i].replica.view == 0 for i in (0, 1, 3))


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> AccessValidator:
    dep, _ = deploy(tmp_path_factory.mktemp("hostile"))
    return dep.nodes[1].access  # type: ignore[no-any-return]


_INT64 = st.integers(-(2**63), 2**63 - 1)
_HOSTILE = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda kind, content, ts, keys: Transaction(Kind(kind), content, ts, tuple(keys)).to_wire(),
        st.integers(1, 8),
        st.one_of(
            st.binary(max_size=80), st.dictionaries(st.text(max_size=8), _INT64).map(codec.encode)
        ),
        st.integers(0, 1 << 62),
        st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3, unique=True),
    ),
)


@given(_HOSTILE)
def test_hostile_operation_bytes_are_refused_never_raise(
    access: AccessValidator, data: bytes
) -> None:
    req = Request(8, 1, data)
    reason = access(req)
    assert isinstance(reason, str) and reason
    assert codec.decode(access.service(req))[0] == "refused"
    assert access.format.ledger_ids[req.digest()] == b""  # left out of any ledger block


def test_node_records_are_checked(tmp_path: Path) -> None:
    from medbench.access.request import Operation
    from medbench.crypto.envelope import seal_record
    from medbench.crypto.keys import Scheme, SigningKey
    from medbench.medchain import request_transaction

    dep, _ = deploy(tmp_path)
    access = dep.nodes[1].access
    node_key, outsider = dep.setups[0].key, SigningKey.generate(Scheme.ED25519, seed=b"o" * 32)

    def verdict(content: dict, kind: Kind = Kind.ADD, key=node_key) -> str | None:  # type: ignore[no-untyped-def]
        tx = Transaction.create(kind, codec.encode(content), GENESIS_US, [key])
        return access(Request(8, 1, tx.to_wire()))

    d, p = dep.doctor_client(0), dep.patient_client(1)
    refused = request_transaction(
        d.request(Operation.READ, patient=p.public_key, body={"history": False}, at_us=GENESIS_US)
    )
    key = dep.world.access_key
    assert p.public_key not in refused.to_wire()  # the patient travels sealed
    sealed = seal_record(key, "blacklist", refused.id, {"patient": p.public_key})
    good = {"type": "blacklist", "request": refused.id, "subject": d.public_key,
            "operation": "read", "sealed": sealed, "reason": "no-grant",
            "evidence": refused.to_wire()}  # fmt: skip
    assert verdict(good) is None  # every replica re-derives this refusal from the evidence
    assert verdict(good, key=outsider).startswith("record-not-by-a-writer")
    assert verdict(good, kind=Kind.QUERY).startswith("malformed")
    assert verdict({**good, "subject": 7}).startswith("malformed")
    assert verdict({"type": "audit", "request": 5}, kind=Kind.QUERY).startswith("malformed")
    # a record must say exactly what the rules say about its evidence
    other = seal_record(key, "blacklist", refused.id, {"patient": d.public_key})
    for lie in ({"reason": "grant-expired"}, {"subject": p.public_key}, {"evidence": b"x"},
                {"request": b"r" * 32}, {"evidence": None}, {"sealed": other},
                {"patient": p.public_key}):  # fmt: skip
        assert verdict({**good, **lie}).startswith(("unproven-record", "malformed")), lie
    # an audit of a query nobody made, and of one without evidence of its refusal
    private = {"requester": d.public_key, "patient": p.public_key, "category": "*"}
    audit = {"type": "audit", "request": refused.id, "signer": d.public_key,
             "operation": "read", "sealed": seal_record(key, "audit", refused.id, private),
             "outcome": "allowed"}  # fmt: skip
    assert verdict(audit, kind=Kind.QUERY).startswith("unproven-record")
    proven = {**audit, "outcome": "no-grant", "evidence": refused.to_wire()}
    assert verdict(proven, kind=Kind.QUERY) is None


def test_backdated_request_is_refused(tmp_path: Path) -> None:
    """A request stamped before the chain's clock allows cannot reopen an expired grant."""
    from medbench.access.request import Operation
    from medbench.medchain import request_transaction

    dep, _ = deploy(tmp_path)
    access = dep.nodes[0].access
    p = dep.patient_client(0)
    access.format.head_timestamp = GENESIS_US + 2 * access.max_age_us  # blocks made meanwhile
    old = p.request(Operation.READ, patient=p.public_key, body={"history": False},
                    at_us=GENESIS_US + access.max_age_us - 1)  # fmt: skip
    fresh = p.request(Operation.READ, patient=p.public_key, body={"history": False},
                      at_us=GENESIS_US + access.max_age_us)  # fmt: skip
    assert access(Request(8, 1, request_transaction(old).to_wire())).startswith("stale-timestamp")
    assert access(Request(8, 2, request_transaction(fresh).to_wire())) is None
