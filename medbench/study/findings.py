"""The report's sentences that state a result, each written from the data it states.

Every function takes the rows a report section measured and returns markdown prose; nothing here
asserts an outcome the rows do not show (tests change one datum and watch the sentence change).
Numbers are written for reading (:mod:`medbench.study.units`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from medbench.study.units import duration, number

CPU_BOUND = 0.8
"""A saturation run is CPU-bound when its busiest node's CPU was busy this share of the run."""

KEEP_UP = 0.95
"""A system *keeps up* with an offered load when its throughput reaches this share of it."""


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    if len(items) == 1:
        return items[0]
    return "; ".join(items[:-1]) + "; and " + items[-1]


def _by(rows: Sequence[Mapping[str, Any]], *keys: str) -> dict[tuple[Any, ...], list[Any]]:
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        out.setdefault(tuple(r[k] for k in keys), []).append(r)
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def offered_load(rows: Sequence[Mapping[str, Any]], rate_tps: float) -> str:
    """Which systems kept up with the offered load at every n, which did not, and where."""
    kept, behind = [], []
    for (system,), runs in _by(rows, "system").items():
        slow = sorted(
            {
                r["n"]
                for r in runs
                if not r.get("live") or float(r["throughput_tps"]) < KEEP_UP * rate_tps
            }
        )
        if slow:
            worst = min(float(r["throughput_tps"]) for r in runs)
            behind.append(
                f"{system} (n = {', '.join(map(str, slow))}; as low as {number(worst)} tx/s)"
            )
        else:
            kept.append(system)
    text = (
        f"At the offered load of {number(rate_tps)} tx/s, a throughput equal to the offered rate "
        "says only that a system kept up: it measures the workload, not the system's capacity "
        "(see the saturation section for that). "
    )
    if kept:
        text += f"Kept up at every n and seed: {_join(kept)}. "
    if behind:
        text += f"Fell behind (below {KEEP_UP:.0%} of the offered rate): {_join(behind)}. "
    lat = {
        system: _mean([float(r["latency_ms_p50"]) for r in runs if r.get("live")])
        for (system,), runs in _by(rows, "system").items()
    }
    lat = {k: v for k, v in lat.items() if v == v}
    if lat:
        fast = min(lat, key=lambda k: lat[k])
        slow_ = max(lat, key=lambda k: lat[k])
        text += (
            f"Median latency, averaged over n and seeds, ranges from {duration(lat[fast])} "
            f"({fast}) to {duration(lat[slow_])} ({slow_})."
        )
    return text


def saturation(rows: Sequence[Mapping[str, Any]]) -> str:
    """Each system's throughput under closed-loop load at its smallest and largest n."""
    parts = []
    dead = sorted({r["system"] for r in rows if not r.get("live", True)})
    for (system,), runs in _by([r for r in rows if r.get("live", True)], "system").items():
        by_n = {n: _mean([float(r["throughput_tps"]) for r in rs]) for (n,), rs in
                _by(runs, "n").items()}  # fmt: skip
        ns = sorted(by_n)
        lo, hi = ns[0], ns[-1]
        if lo == hi:
            parts.append(f"{system} {number(by_n[lo])} tx/s at n = {lo}")
            continue
        change = by_n[hi] / by_n[lo] - 1 if by_n[lo] else float("nan")
        trend = (
            "about the same"
            if abs(change) < 0.05
            else (f"{abs(change):.0%} {'higher' if change > 0 else 'lower'}")
        )
        parts.append(
            f"{system} {number(by_n[lo])} tx/s at n = {lo} and {number(by_n[hi])} tx/s at "
            f"n = {hi} ({trend})"
        )
    if not parts and not dead:
        return "No system ran under closed-loop load."
    text = ""
    if parts:
        best = max(
            (r for r in rows if r.get("live", True)), key=lambda r: float(r["throughput_tps"])
        )
        text = (
            "Under saturation (closed-loop clients, so the system sets the pace), mean "
            "throughput over seeds: " + "; ".join(parts) + f". The highest single run: "
            f"{best['system']} at n = {best['n']}, {number(float(best['throughput_tps']))} tx/s."
        )
    busy: dict[str, list[float]] = {}
    for r in rows:
        tps = float(r.get("throughput_tps", 0.0))
        if not r.get("live", True) or tps <= 0 or "cpu_s_max_node" not in r:
            continue
        makespan = float(r["completed"]) / tps
        busy.setdefault(r["system"], []).append(float(r["cpu_s_max_node"]) / makespan)
    cpu_bound = sorted(k for k, v in busy.items() if max(v) >= CPU_BOUND)
    paced = sorted(k for k, v in busy.items() if max(v) < CPU_BOUND)
    if cpu_bound:
        text += (
            " CPU-bound (the busiest node's CPU busy at least "
            f"{CPU_BOUND:.0%} of the run): "
            + _join([f"{k} (up to {max(busy[k]):.0%})" for k in cpu_bound])
            + "."
        )
    if paced:
        text += (
            " Not CPU-bound, so paced by the protocol's timing (slots, block intervals, "
            "confirmations) or by its clients: "
            + _join([f"{k} (busiest node {max(busy[k]):.1%} busy)" for k in paced])
            + "."
        )
    if dead:
        text += (
            f" Not live under closed-loop load (some transactions never committed; left out of "
            f"the figure): {_join(dead)}."
        )
    return text.strip()


def crashes(rows: Sequence[Mapping[str, Any]]) -> str:
    """How many crashed nodes each system tolerated, over the seeds."""
    parts = []
    for (system,), runs in _by(rows, "system").items():
        per_seed = sorted({int(r["tolerated"]) for r in runs})
        n = runs[0]["n"]
        k = str(per_seed[0]) if len(per_seed) == 1 else f"{per_seed[0]} to {per_seed[-1]}"
        parts.append(f"{system} {k} of {n}")
    return (
        "Crashed nodes tolerated (the largest k with every transaction still committed; for "
        "PBFT capped by quorum intersection, i.e. safety against Byzantine replicas): "
        + "; ".join(parts)
        + "."
    )


def _verdict(r: Mapping[str, Any]) -> str:
    safe, live = bool(r.get("safety")), bool(r.get("live"))
    if safe and live:
        return "stayed safe and live"
    if not safe and not live:
        return "lost safety and liveness"
    return "lost safety" if not safe else "stayed safe but lost liveness"


def byzantine(rows: Sequence[Mapping[str, Any]]) -> str:
    """One clause per Byzantine run or attack, from its verdicts and counters."""
    out = []
    for r in rows:
        clause = f"{r['system']}, {r['behaviour']}: {_verdict(r)}"
        extra = []
        if int(r.get("commits_undone", 0)):
            extra.append(f"{r['commits_undone']} committed blocks undone")
        if "centre" in str(r["behaviour"]) or "central" in str(r["system"]).lower():
            refused = int(r.get("rejections", 0))
            extra.append(
                "no node server refused it" if refused == 0 else f"{refused} messages refused"
            )
        elif int(r.get("rejections", 0)):
            extra.append(f"{r['rejections']} messages refused")
        if int(r.get("view_changes", 0)):
            extra.append(f"{r['view_changes']} view changes")
        if extra:
            clause += " (" + ", ".join(extra) + ")"
        out.append(clause)
    return "Outcomes of the runs below: " + "; ".join(out) + "." if out else ""


def nodes_needed(trials: Sequence[Mapping[str, Any]], system: str, needed: str) -> str:
    """Why the search stopped where it did, from ``system``'s trial rows."""
    mine = [t for t in trials if t["system"] == system and t["search"] == "nodes_needed"]
    if not mine:
        return ""
    crash_free = [t for t in mine if t.get("byzantine", "-") == "-" and t["started"]]
    live_ns = [t["n"] for t in crash_free if t["live"]]
    failed = [t for t in mine if t.get("byzantine", "-") != "-" and not (t["live"] and t["safety"])]
    text = f"{system}: {needed} needed."
    if live_ns:
        text += f" Crash-free it is live at n = {', '.join(map(str, live_ns))}."
    for t in failed:
        what = "lost safety" if t["safety"] is False else "lost liveness"
        text += f" At n = {t['n']} one replica playing '{t['byzantine']}' {what}."
    passed = [t for t in mine if t.get("byzantine", "-") != "-" and t["live"] and t["safety"]]
    if passed and needed.isdigit():
        at = [t for t in passed if str(t["n"]) == needed]
        if at:
            text += (
                f" At n = {needed} every one of the {len(at)} behaviours left the run safe and "
                "live."
            )
    return text


def scaled_down(row_name: str, where: str, minimal: Mapping[str, Any], needed: str) -> str:
    """A scaled-down row's measured columns beside its own configuration's run."""
    if "scaled down" not in where:
        return ""
    tps = float(minimal.get("throughput_tps", float("nan")))
    lat = float(minimal.get("latency_ms_p50", float("nan")))
    return (
        f"{row_name}'s measured columns come from {where.split(';')[0]}, scaled down; its own "
        f"configuration ({needed} nodes) ran in the search with throughput {number(tps)} tx/s "
        f"and median latency {duration(lat)}."
    )


__all__ = [
    "CPU_BOUND",
    "KEEP_UP",
    "byzantine",
    "crashes",
    "nodes_needed",
    "offered_load",
    "saturation",
    "scaled_down",
]
