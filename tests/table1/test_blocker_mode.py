"""Table 1's Medical Chain runs as the paper builds it: PBFT, then the rotating blocker's BLOCK
ordered by PBFT again (docs/medical-chain.md §1.5); message and hash counts stay exact in that
mode."""

from __future__ import annotations

from typing import Any

import pytest

from medbench import experiments as ex
from medbench.consensus.pbft.blocker import blocker_for
from medbench.consensus.pbft.messages import Block
from medbench.experiments.pbft import SimNode
from medbench.study import table1

QUICK = table1.Settings.quick()
K = 4  # checkpoint interval


def system(key: str) -> table1.System:
    return next(s for s in table1.SYSTEMS if s.key == key)


def blocker_run(n: int, requests: int, block_size: int) -> tuple[Any, Any]:
    """A fault-free blocker-mode run, continued until every accepted request is in a block."""
    params = {
        "protocol": "pbft",
        "n": n,
        "clients": 4,
        "requests": requests,
        "rate_tps": 50,  # one request per 20 ms
        "checkpoint_interval": K,
        "log_window": 4 * K,
        "block_mode": "blocker",
        "block_size": block_size,
        "block_interval_us": 300_000,
    }
    sim, _dep = ex.build_simulator(params, seed=n)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == requests
    left, _waited = table1.wait_for_blocks(sim, range(n))
    assert left == 0
    sim.drain(range(n))
    return sim, sim.snapshot()


@pytest.mark.parametrize(("n", "requests", "block_size"), [(4, 30, 8), (7, 24, 100)])
def test_blocker_messages_match_the_formula(n: int, requests: int, block_size: int) -> None:
    """Per batch (n-1) PRE-PREPAREs, (n-1)^2 PREPAREs, n(n-1) COMMITs; per request 1 REQUEST
    and n REPLYs; per block one BLOCK (blocker -> primary), ordered in a batch like a request;
    per checkpoint n(n-1) CHECKPOINTs."""
    sim, record = blocker_run(n, requests, block_size)
    batches = len(record.commits[0])
    assert all(len(record.commits[i]) == batches for i in range(n))
    chain = sim.nodes[0].replica.chain
    blocks = len(chain.blocks) - 1
    assert blocks >= 2 if block_size < requests else blocks >= 1
    expected = {
        "request": requests,
        "pre-prepare": (n - 1) * batches,
        "prepare": (n - 1) ** 2 * batches,
        "commit": n * (n - 1) * batches,
        "reply": n * requests,
        "block": blocks,
        "checkpoint": n * (n - 1) * (batches // K),
    }
    sent = {kind: count for kind, count in record.sent_msgs.items() if count}
    assert sent == expected
    # Every accepted request is in exactly one block, and each block came from the blocker
    # B = L mod (N - 1) after the primary of view 0 (no view change happened).
    ids = [tx for b in chain.blocks[1:] for tx in b.tx_ids]
    assert len(ids) == len(set(ids)) == requests
    for h, b in enumerate(chain.blocks[1:], start=1):
        assert b.header.blocker == blocker_for(h, 0, n) != 0
        assert len(b.tx_ids) <= block_size


def test_blocker_hashes_are_exact() -> None:
    """Per replica: one ID hash per request, one protocol digest per BLOCK item, two digests
    per batch, and (Merkle root over k IDs + block ID) built and re-validated per block."""
    n, requests = 4, 30
    sim, _record = blocker_run(n, requests, 8)
    for i in range(n):
        node = sim.nodes[i]
        assert isinstance(node, SimNode)
        st = node.stats()
        history = node.replica.history
        block_items = sum(1 for b in history.values() for it in b.items if type(it) is Block)
        blocks = node.replica.chain.blocks[1:]
        assert st["hash.tx_id"] == requests
        assert st["hash.digest"] == 2 * len(history) + block_items
        assert st["hash.merkle"] == 2 * sum(2 * len(b.tx_ids) - 1 for b in blocks)
        assert st["hash.block_id"] == 2 * len(blocks)
        assert block_items == len(blocks)  # fault-free: every ordered BLOCK was appended
        assert st["blocks_stored"] == len(blocks)


def test_table1_medical_chain_row_is_the_paper_s_blocker_mode() -> None:
    mc = system("medicalchain")
    t = table1.measure(mc, 4, {}, QUICK)
    assert t.live and t.row["params"]["block_mode"] == "blocker"
    assert t.row["unblocked_left"] == 0 and t.row["block_wait_ms"] > 0
    assert t.row["msgs_per_tx.block"] > 0  # the blocker's BLOCK messages were counted
    integrated = table1.measure(system("medicalchain_integrated"), 4, {}, QUICK)
    assert integrated.row["params"]["block_mode"] == "integrated"
    assert "msgs_per_tx.block" not in integrated.row
    # the second PBFT round per block costs messages on top of the same transactions
    assert t.row["msgs_per_tx"] > integrated.row["msgs_per_tx"]
    assert t.row["hash_per_tx.tx_id"] == pytest.approx(integrated.row["hash_per_tx.tx_id"])


def test_a_crashed_blocker_is_replaced_through_a_view_change() -> None:
    """n = 3, the first blocker crashed from the start: the other two still form a quorum, so
    requests commit; the transactions left outside a block time out, the view changes, and
    the blocker of the new view (another replica) packs them."""
    n, requests = 3, 12
    dead = blocker_for(1, 0, n)
    params = {
        "protocol": "pbft",
        "n": n,
        "clients": 4,
        "requests": requests,
        "rate_tps": 50,  # one request per 20 ms
        "block_mode": "blocker",
        "block_size": 8,
        "block_interval_us": 300_000,
        "faults": f"crash:{dead}@0",
    }
    sim, _dep = ex.build_simulator(params, seed=3)
    record = sim.run(60_000_000, stop_when_complete=True)
    assert len(record.completed) == requests  # a quorum of the live replicas orders them
    alive = [r for r in range(n) if r != dead]
    left, _waited = table1.wait_for_blocks(sim, alive)
    assert left == 0
    for r in alive:
        replica = sim.nodes[r].replica
        assert replica.view >= 1  # the blocker's silence cost a view change
        built_by = [b.header.blocker for b in replica.chain.blocks[1:]]
        assert built_by and dead not in built_by


def test_a_crash_at_n_2_stops_everything() -> None:
    """n = 2 tolerates no fault: its strong quorum is both replicas, so with one crashed
    nothing commits and the search counts the size as not live under a crash."""
    t = table1.measure(system("medicalchain"), 2, {}, QUICK, crashed=1)
    assert t.started and not t.live
    assert t.row["completed"] == 0


def test_searches_in_blocker_mode() -> None:
    """One replica cannot run a rotating blocker; 4 is the first membership with f = 1."""
    needed, trials = table1.nodes_needed(system("medicalchain"), QUICK)
    assert needed == 4
    by_n = {t.n: t for t in trials if t.crashed == 0 and not t.behaviour}
    assert not by_n[1].started and "blocker" in by_n[1].reason
    # Crash-free, n = 2 and 3 are live; one Byzantine replica breaks them (n = 2: the
    # equivocating primary's blocks never form; n = 3: it splits the honest replicas), and
    # n = 4 survives every behaviour.
    assert by_n[2].live and by_n[3].live
    split = {t.n: t for t in trials if t.behaviour == "split-brain"}
    assert not split[2].live and split[3].safe is False
    assert table1.survives([t for t in trials if t.n == 4 and t.behaviour])
    assert {t.behaviour for t in trials if t.n == 4} >= set(table1.PBFT_BEHAVIOURS)
