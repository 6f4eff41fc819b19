"""The access rules judge every request at its batch's agreed time (TOCS §4.6 on four nodes).

Admission (each replica's own clock) is bypassed on every node here, as if the clocks were wrong
or the request slipped through: the deterministic check at execution, against the PRE-PREPARE's
agreed time, must still refuse a future-dated or backdated stamp, on every replica alike, and
the client completes with the f+1 matching refusals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from medchain_helpers import deploy

from medbench import codec
from medbench.access.request import Operation
from medbench.access.scenario import GENESIS_US
from medbench.medchain import Deployment, request_transaction

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}
TIGHT = {**FAST, "max_age_us": 200_000, "max_lead_us": 200_000}
HOUR_US = 3600 * 1_000_000


def _grant(dep: Deployment, at_us: int, nb: int, na: int) -> bytes:
    p, d = dep.patient_client(0), dep.doctor_client(0)
    body = {"grantee": d.public_key, "ops": ["read"], "categories": ["*"],
            "not_before_us": nb, "not_after_us": na}  # fmt: skip
    return request_transaction(
        p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=at_us)
    ).to_wire()


def _read(dep: Deployment, at_us: int) -> Any:
    d, p = dep.doctor_client(0), dep.patient_client(0)
    return request_transaction(
        d.request(Operation.READ, patient=p.public_key, body={"history": False}, at_us=at_us)
    )


def _bypass_admission(dep: Deployment) -> None:
    for i in range(dep.config.n):
        dep.nodes[i].replica.validator = lambda request: None


def _verdicts(dep: Deployment, client: int) -> list[bytes]:
    return [dep.nodes[i].replica.last_reply[client].result for i in range(dep.config.n)]


@pytest.mark.parametrize("case", ["future", "backdated"])
def test_a_stamp_outside_the_agreed_time_window_is_refused_at_execution_everywhere(
    tmp_path: Path, case: str
) -> None:
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    if case == "future":  # a grant valid only from an hour on; the read is dated into it
        start = GENESIS_US + HOUR_US
        net.submit(users[0], _grant(dep, GENESIS_US + 1, start, start + HOUR_US))
        net.run(1_500_000)
        tx = _read(dep, start + 5)
        reason = "future-timestamp"
    else:  # a grant that ended 0.3 s after genesis; the chain then stays idle for a second
        net.submit(users[0], _grant(dep, GENESIS_US + 1, GENESIS_US, GENESIS_US + 300_000))
        net.run(1_500_000)
        head = dep.nodes[0].format.head_timestamp
        tx = _read(dep, GENESIS_US + 100_000)  # inside the window, a second "ago"
        # the newest block is older than the clock: the head-block bound alone would accept it
        assert tx.timestamp_us >= head - TIGHT["max_age_us"]
        reason = "stale-timestamp"
    assert [codec.decode(c.result)[0] for c in net.completed] == ["accepted"]
    _bypass_admission(dep)
    net.submit(users[1], tx.to_wire())
    net.run(1_500_000)
    done = [c for c in net.completed if c.client == users[1]]
    assert [codec.decode(c.result) for c in done] == [["refused", reason]]
    for i in range(4):
        assert tx.id not in dep.nodes[i].access.state.seen
    verdicts = _verdicts(dep, users[1])
    assert len(set(verdicts)) == 1  # every replica reached the same verdict at the same time


def test_an_honest_stamp_is_accepted_at_the_agreed_time_on_every_node(tmp_path: Path) -> None:
    """Positive control: the same flow with an honest stamp is accepted by all four nodes."""
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    net.submit(users[0], _grant(dep, GENESIS_US + 1, GENESIS_US, GENESIS_US + HOUR_US))
    net.run(1_500_000)
    _bypass_admission(dep)
    tx = _read(dep, GENESIS_US + net.now)
    net.submit(users[1], tx.to_wire())
    net.run(1_500_000)
    done = [c for c in net.completed if c.client == users[1]]
    assert [codec.decode(c.result) for c in done] == [["accepted", tx.id]]
    assert all(tx.id in dep.nodes[i].access.state.seen for i in range(4))
    assert len(set(_verdicts(dep, users[1]))) == 1
