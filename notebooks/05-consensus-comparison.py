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
# # 05 — Consensus comparison against node count, at an offered load and at saturation
#
# Every system of Table 1 (and the extra rows) runs the same workload at growing membership on
# the default network (complete graph, 1 ms one way, 1 Gbit/s per pair, seeded jitter up to
# 0.1 ms, no loss) with the default cost profile. Each size runs with several seeds and the
# figures show their mean and range. Two loads, kept apart because they answer different
# questions:
#
# * an **offered load** (the common open-loop workload): does a system keep up, and at what
#   latency? A throughput equal to the offered rate measures the workload, not the system;
# * **saturation** (closed-loop clients): how much can the system itself commit per second?
#   (PBFT's clients are closed loops; the baselines join once their adapters take a
#   closed-loop load.)
#
# MDSM is scaled down to a quarter of auditors (its 121-member paper configuration is in
# notebook 04). `MEDBENCH_SMALL=1` (set by `make test`) uses the `--quick` workload, fewer sizes
# and two seeds.

# %%
import os
from dataclasses import replace

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from medbench.study import conditions, findings, reproduce, table1
from medbench.study.figures import render

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
settings = table1.Settings.quick() if SMALL else table1.Settings()
sizes = (4, 7) if SMALL else reproduce.SCALING_N
seeds = [1, 2] if SMALL else [1, 2, 3]
systems = table1.available()
names = [s.name for s in systems]  # one colour and marker per system in every figure
offered = reproduce.seed_rows(lambda s: reproduce.scaling(systems, sizes, s), settings, seeds)
caption = conditions.caption(settings, seeds=seeds)
display(Markdown(caption))

# %% [markdown]
# ## At the offered load: throughput, latency, compute and storage against n

# %%
render(replace(reproduce.scaling_figure(offered, settings, ""), series=names))
plt.show()
values = ("throughput_tps", "latency_ms_p50", "cpu_ms_per_tx", "storage_kb_per_node")
display(Markdown(reproduce.spread_markdown(
    reproduce.spread_rows(offered, ("system", "n"), values), ("system", "n"), values)))

# %% [markdown]
# ## At saturation: what each system commits when the clients never wait

# %%
saturated = reproduce.seed_rows(lambda s: reproduce.saturation(systems, sizes, s), settings, seeds)
render(replace(reproduce.saturation_figure(saturated, ""), series=names))
plt.show()
display(Markdown(conditions.caption(settings, "closed", reproduce.SATURATION_CLIENTS, seeds=seeds)))

# %% [markdown]
# ## Crash faults at one size
# `k` nodes crash at time 0 (MDSM's auditors and the relay's centre first); the largest `k`
# that still commits every transaction. For PBFT the count is also capped by quorum
# intersection (safety against Byzantine replicas).

# %%
n_faults = sizes[-1]
crash_rows = reproduce.seed_rows(
    lambda s: reproduce.faults(systems, n_faults, s, byzantine=False)[0], settings, seeds
)
render(replace(reproduce.crash_figure(crash_rows, n_faults, ""), series=names))
plt.show()

# %% [markdown]
# ## What the figures show
# Written from the rows above (`medbench.study.findings`), so it changes when the data do.

# %%
conclusion = [
    findings.offered_load(offered, settings.rate_tps),
    findings.saturation(saturated),
    findings.crashes(crash_rows),
]
display(Markdown("\n\n".join(conclusion)))
assert all(r["live"] for r in offered), [r for r in offered if not r["live"]]
