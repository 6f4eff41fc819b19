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
# # 05 — Consensus comparison against node count
#
# Every system of Table 1 (and the extra rows) runs the same workload at growing membership:
# throughput, median latency, CPU time and storage per node, then how many crashed nodes each
# tolerates at one size. Runs are deterministic simulations (`medbench.study.reproduce.scaling`); MDSM
# is scaled down to a quarter of auditors (its 121-member paper configuration is in notebook 04).
# `MEDBENCH_SMALL=1` (set by `make test`) uses the `--quick` workload and fewer sizes.

# %%
import os

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from medbench.study import reproduce, table1
from medbench.study.report import markdown_table

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
settings = table1.Settings.quick() if SMALL else table1.Settings()
sizes = (4, 7, 10) if SMALL else reproduce.SCALING_N
systems = table1.available()
rows = reproduce.scaling(systems, sizes, settings)
shown = ["system", "n", "live", "throughput_tps", "latency_ms_p50", "cpu_ms_per_tx", "storage_kb_per_node"]
display(Markdown(markdown_table(rows, shown)))

# %% [markdown]
# ## Throughput, latency, compute and storage against n
# Proof-of-work chains wait for 12 confirmations of 15-second blocks, so their latency is minutes
# whatever n; PBFT's grows with the n² vote messages; MDSM's is set by its 3-second slots.

# %%
fig, axes = plt.subplots(2, 2, figsize=(10, 7))
for ax, (col, label) in zip(
    axes.flat,
    [
        ("throughput_tps", "throughput (tx/s)"),
        ("latency_ms_p50", "median latency (ms)"),
        ("cpu_ms_per_tx", "CPU ms per committed tx"),
        ("storage_kb_per_node", "storage per node (KiB)"),
    ],
):
    for system in systems:
        pts = [(r["n"], r[col]) for r in rows if r["system"] == system.name]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=system.name)
    ax.set_xlabel("nodes")
    ax.set_ylabel(label)
    if col != "storage_kb_per_node":
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
axes[0, 0].legend(fontsize="small")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Crash faults at one size
# `k` nodes crash at time 0 (MDSM's auditors and the relay's centre first); the table shows the
# largest `k` that still commits every transaction. For PBFT the count is also capped by quorum
# intersection (safety against Byzantine replicas).

# %%
crash_rows, byz_rows = reproduce.faults(systems, sizes[1], settings)
for system in systems:
    k = next(r["tolerated"] for r in crash_rows if r["system"] == system.name)
    print(f"{system.name:20s} tolerates {k} crashed node(s) of {sizes[1]}")
display(Markdown(markdown_table(byz_rows)))

# %%
assert all(r["live"] for r in rows), [r for r in rows if not r["live"]]
