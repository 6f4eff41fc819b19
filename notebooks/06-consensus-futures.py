# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Consensus futures: PBFT, chained HotStuff and Raft for a hospital consortium
#
# The Medical Chain paper ends by asking for a faster BFT protocol and for a BFT + CFT hybrid
# among hospitals (docs/medical-chain.md §4). A consortium of 4, 16, 64 or 100 hospitals
# choosing a protocol today would compare PBFT with a linear, rotating-leader BFT protocol
# (chained HotStuff: Yin, Malkhi, Reiter, Gueta, Abraham, PODC 2019) and with crash-fault-tolerant
# Raft (Ongaro, Ousterhout, USENIX ATC 2014). This notebook measures the three in the same
# deterministic simulator, with one workload and one CPU cost profile
# (`medbench.study.futures`), over several seeds:
#
# 1. throughput at saturation (closed-loop clients), latency under light load, messages, bytes,
#    CPU and storage per transaction, against the consortium size n;
# 2. what a leader crash costs: PBFT's view change, HotStuff's pacemaker, Raft's election;
# 3. the crossover points where one protocol overtakes another;
# 4. what each tolerates: Byzantine leaders and voters (PBFT, HotStuff) and one lying node (Raft);
# 5. the cost of Medical Chain's two-level blocks on HotStuff.
#
# `MEDBENCH_SMALL=1` (set by `make test`) shrinks every sweep to a few seconds; without it the
# full comparison (n = 4 ... 100, three seeds) takes several minutes on two cores.

# %%
import os
from dataclasses import replace

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from medbench import experiments
from medbench.study import futures as fu
from medbench.study.report import markdown_table

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
settings = fu.Settings.small() if SMALL else fu.Settings.full()
settings

# %%
cmp = fu.compare(settings)
runs = pd.DataFrame(cmp.rows)
summary = cmp.summary
print(f"{len(runs)} runs in {cmp.wall_s:.1f} s; every run safe: {bool(runs['safety'].all())}; "
      f"live: {bool(runs['liveness'].all())}")

# %% [markdown]
# ## 1. The headline: every protocol at every size
# Mean over seeds (the spread, min-max over seeds, is in the `_spread` columns). Throughput is
# the steady rate of the middle half of the completions at saturation; latency is the median
# under light load (a request every 50 ms); CPU per transaction sums every node, clients
# included; storage is what a replica keeps per committed transaction (blocks, transactions,
# protocol log).

# %%
headline = pd.DataFrame(fu.headline(summary))
cols = ["n", "protocol", "throughput_tps_steady", "latency_ms_p50", "msgs_per_tx",
        "cpu_ms_per_tx", "storage_bytes_per_tx", "resume_ms", "stall_ms_total", "recovery_msgs"]
display(Markdown(markdown_table(headline.to_dict("records"), cols)))

# %% [markdown]
# ## 2. Against the consortium size
# Lines are the means, bands the min-max over seeds, bars one standard deviation.

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 8))
for ax, metric in zip(
    axes.flat, ["throughput_tps_steady", "latency_ms_p50", "msgs_per_tx", "cpu_ms_per_tx"]
):
    what, unit, _ = fu.METRICS[metric]
    for p in fu.PROTOCOLS:
        pts = sorted(
            (r["n"], r[metric], r[f"{metric}_min"], r[f"{metric}_max"])
            for r in summary
            if r["protocol"] == p and r["experiment"] == fu.SOURCE_EXPERIMENT[metric] and metric in r
        )
        if not pts:
            continue
        ns, mean, lo, hi = zip(*pts)
        line = ax.plot(ns, mean, marker="o", label=fu.LABELS[p])[0]
        ax.fill_between(ns, lo, hi, alpha=0.2, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("consortium size n (replicas)")
    ax.set_ylabel(f"{what} ({unit})")
    ax.set_title(what)
    ax.grid(True, alpha=0.3, which="both")
axes[0, 0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. A leader crash
# Every failure detector is set to the same timeout (PBFT's view-change and client timeouts,
# HotStuff's view timeout, Raft's election timeout drawn in [T, 2T)); the leader crashes under
# open-loop load. `resume_ms` is the time until service first resumes, `stall_ms_total` all the
# time lost after the crash (HotStuff's round-robin leaders meet the crashed replica again every
# n views), `recovery_msgs` the view-change, NEW-VIEW or election messages sent after it. A run
# stops 10 s of virtual time after the crash; `resumed` is the share of runs whose service came
# back by then (a run that did not is not live, and its stall counts up to the horizon).

# %%
failure = runs[runs["experiment"] == "failure"]
display(
    failure.groupby(["n", "protocol"])[
        ["resumed", "resume_ms", "outage_ms", "stalls", "stall_ms_total", "recovery_msgs",
         "view_changes"]
    ].agg(["mean", "min", "max"]).round(1)
)

# %% [markdown]
# ## 4. Crossover points
# For each metric and pair of protocols: between which measured sizes the better one changes,
# with the crossing interpolated linearly in log n; `robust` when every seed keeps the two
# apart on both sides.

# %%
crosses = fu.crossovers(summary)
display(Markdown(markdown_table(crosses) if crosses else "No crossover in this sweep."))

# %% [markdown]
# ## 5. What each tolerates
# One run each at n = 4 (f = 1 for the BFT protocols): PBFT with an equivocating or a silent
# primary, HotStuff with an equivocating leader, a silent leader or a double voter, and Raft
# (n = 5, two crashes tolerated) with one node that lies — as the leader it sends half of its
# followers a forged entry; as a follower it impersonates a new leader.

# %%
byzantine = [
    ("pbft", 4, "equivocating-primary"),
    ("pbft", 4, "silent-primary"),
    ("hotstuff", 4, "equivocating-leader"),
    ("hotstuff", 4, "silent-leader"),
    ("hotstuff", 4, "double-voter"),
    ("raft", 5, "lying-leader"),
]
rows = []
for protocol, n, behaviour in byzantine:
    params = {"protocol": protocol, "n": n, "requests": 24, "clients": 4, "rate_tps": 500.0,
              "byzantine": behaviour}
    if protocol == "raft":
        params["byzantine_ids"] = str(n - 1)
    if protocol == "hotstuff":
        params["view_timeout_us"] = 100_000
    if protocol == "pbft":
        params["view_change_timeout_us"] = 100_000
    r = experiments.run(params, 1)
    rows.append({"protocol": protocol, "n": n, "behaviour": behaviour, "safe": r["safety"],
                 "live": r["liveness"], "completed": r["completed"],
                 "why": str(r.get("safety_reason", ""))[:60]})
byz = pd.DataFrame(rows)
display(byz)
assert byz[byz.protocol != "raft"].safe.all() and not byz[byz.protocol == "raft"].safe.any()

# %% [markdown]
# ## 6. Medical Chain's two-level blocks on HotStuff
# In blocker mode a rotating blocker packs accepted transaction IDs into blocks with a Merkle
# root, which HotStuff orders again (`medbench.consensus.hotstuff.blocks`); integrated mode makes
# every committed HotStuff block a chain block. Same workload, blocks every 100 ms.

# %%
two_level = []
for mode in ("integrated", "blocker"):
    params = {"protocol": "hotstuff", "n": 7 if SMALL else 16, "requests": 120 if SMALL else 600,
              "clients": 24, "batch": 16, "rate_tps": 0, "block_mode": mode, "block_size": 100,
              "block_interval_us": 100_000, "blocker_turn_us": 100_000}
    sim, dep = experiments.build_simulator(params, 1)
    record = sim.run(60_000_000, stop_when_complete=True)
    sim.drain(range(params["n"]))
    from medbench import metrics

    r = metrics.summarize(sim.snapshot(), dep.checkers)
    blocks = sim.nodes[0].stats()["blocks_stored"]
    two_level.append({"mode": mode, "throughput_tps": r["throughput_tps"],
                      "latency_ms_p50": r["latency_ms_p50"], "msgs_per_tx": r["msgs_per_tx"],
                      "chain_blocks": blocks, "safe": r["safety"], "chain": r["chain"]})
two = pd.DataFrame(two_level)
display(two)
cost = two.set_index("mode").loc["blocker", "msgs_per_tx"] / two.set_index("mode").loc[
    "integrated", "msgs_per_tx"]
print(f"the second level costs {100 * (cost - 1):.1f}% more messages per transaction")

# %% [markdown]
# ## 7. Conclusions (computed from the data above)
# The sentences below are generated from the measured means and spreads
# (`medbench.study.futures.conclusions`): for each consortium size that was measured, who leads
# on throughput, latency, CPU and recovery, by how much and whether the seeds agree; then every
# crossover point. Raft's figures come with its fault model: it tolerates crashes only, and one
# lying node broke it above (section 5), while PBFT and HotStuff held with a faulty leader.

# %%
for line in fu.conclusions(summary, crosses, consortia=fu.CONSORTIA):
    display(Markdown(line))

# %%
assert all(r["safe"] for r in summary), [r for r in summary if not r["safe"]]
not_live = [(r["experiment"], r["protocol"], r["n"]) for r in summary if not r["live"]]
print("runs that were not live (only a leader crash may leave one so):", not_live)
assert all(e == "failure" for e, _p, _n in not_live)
