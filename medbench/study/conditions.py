"""What every table and figure of the study ran on: network, workload and cost profile, in words.

:func:`network` reads the simulator's defaults (:data:`medbench.experiments.DEFAULTS`: a complete
graph, 1 ms one way, 1 Gbit/s per pair, seeded jitter, no loss), :func:`workload` a study
:class:`~medbench.study.systems.Settings` at an offered rate or as closed loops, :func:`profile`
the cost profile and its provenance. :func:`caption` joins them into the line printed under each
table and :func:`context` gives the same facts as a dict for the table's JSON sidecar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medbench import experiments as ex
from medbench.sim.costs import DEFAULT_PROVENANCE, CostProfile
from medbench.study.systems import Settings
from medbench.study.units import duration, number


def network(params: Mapping[str, Any] | None = None) -> str:
    """The network of a run with ``params`` over the defaults, in words."""
    p = {**ex.DEFAULTS, **(params or {})}
    kind = str(p["topology"])
    jitter = int(p["jitter_us"])
    loss = float(p["loss"])
    if kind == "complete":
        base = (
            f"complete graph, {duration(int(p['latency_us']) / 1000)} one way, "
            f"{number(float(p['bandwidth_mbps']) / 1000)} Gbit/s per pair"
            if float(p["bandwidth_mbps"]) >= 1000
            else f"complete graph, {duration(int(p['latency_us']) / 1000)} one way, "
            f"{number(float(p['bandwidth_mbps']))} Mbit/s per pair"
        )
    else:
        base = f"{kind} topology"
    jit = (
        f"seeded jitter uniform in [0, {duration(jitter / 1000)}] per copy (links stay FIFO)"
        if jitter
        else "no jitter"
    )
    lossy = f"loss {loss:.1%} per copy" if loss else "no loss"
    return f"{base}, {jit}, {lossy}"


def workload(s: Settings, load: str = "offered", clients: int | str = 0, txs: int = 0) -> str:
    """The workload in words: ``offered`` (open loop at ``s.rate_tps``) or ``closed`` loops."""
    count = txs or s.txs
    if load == "closed":
        return (
            f"saturation: {count} transactions of {s.tx_bytes} bytes from {clients} closed-loop "
            "clients (each sends its next transaction when the previous one completes)"
        )
    return (
        f"offered load: {count} transactions of {s.tx_bytes} bytes at {number(s.rate_tps)} tx/s "
        "(open loop, fixed gaps)"
    )


def profile_name(p: CostProfile) -> str:
    """``the default cost profile`` or ``the cost profile of HOST``."""
    if p.host == DEFAULT_PROVENANCE["host"]:
        return "the default cost profile"
    return f"the cost profile of {p.host}"


def profile(p: CostProfile) -> str:
    """The cost profile and where its figures came from."""
    return f"{profile_name(p)}: {p.provenance()}"


def caption(
    s: Settings,
    load: str = "offered",
    clients: int | str = 0,
    txs: int = 0,
    seeds: Sequence[int] = (),
) -> str:
    """The italic line under a table or figure: network, workload, profile (and seeds)."""
    seed_text = ""
    if seeds:
        seed_text = (
            f" Seeds {', '.join(map(str, seeds))}: the figure shows their mean and, as bars, "
            "their range (min to max)."
            if len(seeds) > 1
            else f" Seed {seeds[0]}."
        )
    prof = s.cost_profile()
    return (
        f"*Network: {network()}. Workload: {workload(s, load, clients, txs)}. CPU: "
        f"{profile_name(prof)} (its provenance: metadata.json).{seed_text}*"
    )


def context(
    s: Settings,
    load: str = "offered",
    clients: int | str = 0,
    txs: int = 0,
    seeds: Sequence[int] = (),
) -> dict[str, Any]:
    """The facts of :func:`caption` for a table's JSON sidecar."""
    prof = s.cost_profile()
    return {
        "network": network(),
        "network_params": {
            k: ex.DEFAULTS[k]
            for k in ("topology", "latency_us", "bandwidth_mbps", "jitter_us", "loss")
        },
        "workload": workload(s, load, clients, txs),
        "cost_profile": profile(prof),
        "seeds": list(seeds) if seeds else [s.seed],
    }


__all__ = ["caption", "context", "network", "profile", "profile_name", "workload"]
