"""One Table 1 run: parameters, the simulation, and the figures read off it.

:func:`run_params` maps a system and a workload to simulator parameters, :func:`measure` runs
them (waiting in blocker mode until every accepted transaction is in a block,
:func:`wait_for_blocks`) and reads throughput, latency, hash work, CPU by operation
(:func:`cpu_breakdown`), storage and the replicas' re-checked chains.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from medbench import experiments as ex
from medbench import hashwork, metrics
from medbench.consensus.baselines.common import MembershipError
from medbench.sim.costs import CostProfile
from medbench.study.systems import (
    BLOCK_WAIT_US,
    Settings,
    System,
    Trial,
)


def run_params(
    system: System, n: int, options: Mapping[str, Any], s: Settings, crashed: int = 0
) -> dict[str, Any]:
    """The simulator parameters of one run (workload mapped to the protocol's names)."""
    p: dict[str, Any] = {
        "protocol": system.protocol,
        "n": n,
        "tick_us": 0,
        "duration_ms": s.duration_ms,
        **system.run_options,
        **options,
    }
    order = system.crash_order(n)
    dead = order[:crashed]
    if dead:
        p["faults"] = ";".join(f"crash:{i}@0" for i in dead)
    # The common workload vocabulary (medbench.experiments.load): an open load at the rate.
    p.update(requests=s.txs, rate_tps=s.rate_tps, payload_bytes=s.tx_bytes)
    if system.protocol == "pbft":
        # Clients are separate nodes (never crashed); four closed loops keep the pipeline busy.
        p.update(clients=4, tick_us=1000)
    else:
        # One client at the first eligible node, which every crash order crashes last: a
        # transaction left open then means lost liveness, not a crashed entry point.
        p.update(clients=1)
    return p


def measure(
    system: System,
    n: int,
    options: Mapping[str, Any],
    s: Settings,
    crashed: int = 0,
    profile: CostProfile | None = None,
) -> Trial:
    """Run ``system`` with ``n`` nodes and ``crashed`` nodes down from time 0.

    ``profile`` overrides the settings' cost profile.
    """
    profile = profile if profile is not None else s.cost_profile()
    params = run_params(system, n, options, s, crashed)
    try:
        sim, dep = ex.build_simulator(params, s.seed, profile)
    except (MembershipError, ex.ExperimentError, ValueError) as exc:
        return Trial(system.key, n, crashed, False, False, f"refused to start: {exc}")
    t0 = time.perf_counter()
    record = sim.run(int(s.duration_ms) * 1000, stop_when_complete=True)
    replicas = [r for r in record.replicas if r < sim.n] or list(range(sim.n))
    done = len(record.completed) == len(record.submitted) > 0
    left, waited = wait_for_blocks(sim, replicas) if done else (0, 0)
    if waited:
        record = sim.snapshot()  # the second level's work (BLOCKs ordered again) included
    row = metrics.summarize(record, dep.checkers)
    row["wall_s"] = time.perf_counter() - t0
    row["block_wait_ms"] = waited / 1000
    row["unblocked_left"] = left
    live = bool(row["liveness"]) and row["completed"] > 0 and left == 0
    if left:
        row["liveness_reason"] = f"{left} accepted transaction(s) left outside blocks"
    # Work, storage and chains are read once the other replicas caught up with the last commit:
    # with network jitter the run stops at the last completion while copies of the last block
    # are still on their way to some replicas, whose work for it belongs to the transactions.
    row["drain_ms"] = sim.drain(replicas) / 1000 if live else 0.0
    after = sim.snapshot()
    row.update(_node_figures(sim, after, profile))
    nodes = metrics.node_table(after)  # CPU up to the caught-up point, like the row
    row.update(_storage_and_chains(sim, after, replicas))
    for mine in nodes:
        mine["alive"] = sim.alive(mine["node"])
    row["params"] = params
    reason = "" if live else str(row.get("liveness_reason") or "nothing committed")
    return Trial(system.key, n, crashed, True, live, reason, row, nodes=nodes)


def wait_for_blocks(
    sim: Any, replicas: Sequence[int], max_us: int = BLOCK_WAIT_US, chunk_us: int = 100_000
) -> tuple[int, int]:
    """Run on until no live replica holds an accepted transaction outside a block.

    Only nodes with an ``unblocked()`` count (PBFT in blocker mode: transactions are replied to
    once accepted, and blocked later) can make this wait. Returns (transactions still
    unblocked after ``max_us``, virtual microseconds waited).
    """

    def left() -> int:
        total = 0
        for r in replicas:
            count = getattr(sim.nodes[r], "unblocked", None)
            if callable(count) and sim.alive(r):
                total += int(count())
        return total

    start = sim.now
    waiting = left()
    while waiting and sim.now - start < max_us:
        sim.run(sim.now + chunk_us)
        waiting = left()
    return waiting, sim.now - start


def _node_figures(sim: Any, record: metrics.RunRecord, profile: CostProfile) -> dict[str, Any]:
    """Money, hashes, CPU, votes and producers per committed transaction from the nodes."""
    done = max(1, len(metrics.latencies_us(record)))
    money = 0
    mining = 0
    flops = 0
    by_kind = dict.fromkeys(hashwork.CATEGORIES, 0)
    decisions = 0
    votes_min = 0
    validators = 0
    producers: set[int] = set()
    client_signs = client_verifies = 0
    signers = 0  # nodes that made protocol signatures (client signatures excluded)
    for i, node in enumerate(sim.nodes):
        stats = getattr(node, "stats", None)
        if not callable(stats):
            continue
        st = stats()
        signs = int(st.get("tx_sign_ops", 0)) + int(st.get("client_sig_signs", 0))
        client_signs += signs
        client_verifies += int(st.get("tx_verify_ops", 0)) + int(st.get("client_sig_verifies", 0))
        if i in record.replicas and record.op_counts.get(i, {}).get("sign", 0) > signs:
            signers += 1
        if st.get("decisions", 0) > 0:
            decisions += int(st["decisions"])
            got = int(st["finality_votes_min"])
            votes_min = got if votes_min == 0 else min(votes_min, got)
            validators = max(validators, int(st.get("validators", 0)))
        producers.update(getattr(node, "producers", ()))
        for kind in by_kind:
            by_kind[kind] += int(st.get(f"hash.{kind}", 0))
        mining += int(st.get("hash_mining", 0))
        flops += int(st.get("train_flops", 0)) + int(st.get("validate_flops", 0))
        if sim.alive(i):
            # Every live full node sees the same final chain: take the richest view.
            money = max(money, int(st.get("rewards_paid", 0)) + int(st.get("fees_paid", 0)))
    charged = sum(c.get("hash", 0) for c in record.op_counts.values())
    cpu_ns = sum(sum(ops.values()) for ops in record.cpu_ns.values())
    cpu_ns += int(mining * profile.unit_ns("hash"))
    replicas = [r for r in record.replicas if r < sim.n] or list(range(sim.n))
    blocks = any(record.commits.get(r) for r in replicas)
    return {
        **{f"hash_per_tx.{k}": v / done for k, v in by_kind.items()},
        "hashes_per_tx": (charged + mining) / done,
        "mining_hashes_per_tx": mining / done,
        "flops_per_tx": flops / done,
        "learn_ms_per_tx": flops * profile.unit_ns("flop") / 1e6 / done,
        "cpu_ms_per_tx": cpu_ns / 1e6 / done,
        "rewards_per_tx": money / done,
        "committed_blocks": blocks,
        "decisions": decisions,
        "finality_votes_min": votes_min,
        "validators": validators,
        "producers": ",".join(map(str, sorted(producers))),
        "signing_nodes": signers,
        "client_sig_signs_per_tx": client_signs / done,
        "client_sig_verifies_per_tx": client_verifies / done,
        **cpu_breakdown(record, client_signs, client_verifies, profile, done, mining),
    }


BREAKDOWN = (
    "sign_client",
    "sign_protocol",
    "verify_client",
    "verify_protocol",
    "hash",
    "flop",
    "message",
    "send",
    "mining",
)
"""CPU ms per committed transaction by operation (:func:`cpu_breakdown`), in report order."""


def cpu_breakdown(
    record: metrics.RunRecord,
    client_signs: int,
    client_verifies: int,
    profile: CostProfile,
    done: int,
    mining: int = 0,
) -> dict[str, float]:
    """CPU ms per committed transaction by operation, summed over every node (clients too).

    ``sign``/``verify`` are split into the client signatures on transactions (the same rule for
    every system: one signature per transaction, one check per transaction at each node that
    accepts it) and the protocol's own (PBFT's signed messages, block seals, audits);
    ``message`` is receiving and decoding, ``send`` encoding and sending; ``mining`` the
    modeled nonce trials (off the node's CPU, in the compute demand). Keys ``cpu_ms.<op>``, and
    ``cpu_ms_busiest_node`` for the busiest node's total.
    """
    by_op: dict[str, int] = {}
    busiest = 0
    for ops in record.cpu_ns.values():
        busiest = max(busiest, sum(ops.values()))
        for op, ns in ops.items():
            by_op[op] = by_op.get(op, 0) + ns
    per = max(1, done) * 1e6
    sign_c = client_signs * profile.unit_ns("sign")
    verify_c = client_verifies * profile.unit_ns("verify")
    out = {
        "sign_client": sign_c,
        "sign_protocol": by_op.get("sign", 0) - sign_c,
        "verify_client": verify_c,
        "verify_protocol": by_op.get("verify", 0) - verify_c,
        "hash": by_op.get("hash", 0),
        "flop": by_op.get("flop", 0),
        "message": by_op.get("message", 0),
        "send": by_op.get("send", 0),
        "mining": mining * profile.unit_ns("hash"),
    }
    known = {"sign", "verify", "hash", "flop", "message", "send"}
    other = sum(ns for op, ns in by_op.items() if op not in known)
    got = {f"cpu_ms.{k}": v / per for k, v in out.items()}
    got["cpu_ms.other"] = other / per
    got["cpu_ms_busiest_node"] = busiest / per
    return got


def _storage_and_chains(
    sim: Any, record: metrics.RunRecord, replicas: Sequence[int]
) -> dict[str, Any]:
    """Encoded bytes stored per live replica (mean, by category) and the chain re-check."""
    live = [r for r in replicas if sim.alive(r)] or list(replicas)
    cats: dict[str, int] = {}
    for r in live:
        for cat, b in record.storage.get(r, {}).items():
            cats[cat] = cats.get(cat, 0) + int(b)
    per = max(1, len(live))
    chain_blocks, chain_fault = _verify_chains(sim, replicas)
    return {
        "storage_kb_per_node": sum(cats.values()) / per / 1024,
        **{f"storage_kb.{c}": b / per / 1024 for c, b in sorted(cats.items())},
        "chain_blocks_min": chain_blocks,
        "chain_fault": chain_fault,
    }


def _verify_chains(sim: Any, replicas: Sequence[int]) -> tuple[int, str]:
    """Re-check every live replica's chain: (fewest blocks on one, first fault or "")."""
    fewest: int | None = None
    for r in replicas:
        verify = getattr(sim.nodes[r], "verify_chain", None)
        if not sim.alive(r) or not callable(verify):
            continue
        count, fault = verify()
        if fault is not None:
            return int(count), f"node {r}: {fault}"
        fewest = int(count) if fewest is None else min(fewest, int(count))
    return (fewest or 0), ""
