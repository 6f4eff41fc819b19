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
# # 04 — Table 1 of Medical Chain, measured
#
# Medical Chain's Table 1 (docs/medical-chain.md §1.8) compares MDSM (improved DPoS), MedRec (PoW), ModelChain
# (PoI) and Medical Chain (PBFT) on seven qualitative columns. Here every cell comes from runs of
# the deterministic simulator (`medbench.study.table1`): the "nodes needed" cell by trying `n = 1, 2, ...`
# until a membership starts, commits and tolerates the paper configuration's faults; "pays rewards"
# from the chains' own accounting; "compute demand" from hash evaluations per committed
# transaction against a stated threshold. The central relay of docs/medical-chain.md §2 and MedRec 2.0's Clique
# PoA are extra rows. `MEDBENCH_SMALL=1` (set by `make test`) uses the `--quick` workload.

# %%
import os

import matplotlib.pyplot as plt

from medbench.study import findings, table1

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
settings = table1.Settings.quick() if SMALL else table1.Settings()
systems = table1.available()
print("systems measured:", [s.name for s in systems])
rows = table1.measure_table(settings, systems)

# %% [markdown]
# ## The measured table beside the paper's
# ✓/✗ marks whether a measured cell matches the paper's; every mismatch gets a one-line reason.

# %%
from IPython.display import Markdown, display

comparison = table1.compare(rows)
display(Markdown(table1.markdown(rows, comparison)))

# %% [markdown]
# ## How "nodes needed" was found
# "Nodes needed" is the smallest `n` that starts and stays live (crash-free) and, for a system
# whose paper configuration must tolerate `f` Byzantine replicas (Medical Chain: `f = 1`, the
# paper's "at least 4"), stays safe and live with `f` replicas playing each of the kit's
# Byzantine behaviours in turn. MDSM refuses to start below 101 delegates + 20 auditors.
# Crash-free, PBFT memberships of 2 and 3 are live too; the trials below show what breaks
# them once one replica is Byzantine (the sentence under the table is written from them).

# %%
trials = table1.trial_rows(rows)
for row in rows:
    tried = [(t.n, t.behaviour or "-", t.live, t.safe) for t in row.search]
    print(f"{row.system.name:45s} needed {row.cells['nodes_needed']:>4s}  last trials {tried[-3:]}")
for row in rows:
    if row.system.byzantine_behaviours:
        display(Markdown(findings.nodes_needed(trials, row.system.name, row.cells["nodes_needed"])))

# %% [markdown]
# ## Compute demand: CPU time per committed transaction
# Hashing (mining trials at the profile's SHA-256 cost, block and Merkle hashes), signatures,
# message handling and ModelChain's learning, per committed transaction. The dashed line is the
# threshold between "small" and "large": the time of 10^6 SHA-256 evaluations. Hash evaluations
# alone are printed below the plot, with ModelChain's learning share.

# %%
limit = rows[0].large_cpu_ms
fig, ax = plt.subplots(figsize=(7, 3.5))
names = [r.system.name for r in rows]
values = [max(r.extras["cpu_ms_per_tx"], 1e-3) for r in rows]
ax.barh(names, values, color=["C3" if v >= limit else "C0" for v in values])
ax.axvline(limit, ls="--", color="k")
ax.set_xscale("log")
ax.set_xlabel("CPU ms per committed transaction")
plt.tight_layout()
plt.show()
for r in rows:
    x = r.extras
    print(
        f"{r.system.name:20s} {x['hashes_per_tx']:>12.3g} hashes/tx  "
        f"{x['learn_ms_per_tx']:.3g} ms learning/tx  -> {r.cells['compute_demand']}"
    )

# %% [markdown]
# ## Where the CPU time goes
# Every system pays the same client-signature work: the client signs each transaction once and
# every node that accepts it (a block holding it, or a PBFT request) verifies the signature once
# (`verify_client`). What is left is the protocol's own work. Medical Chain signs every PBFT
# message (docs/medical-chain.md §1.1), and PBFT sends O(n²) messages per batch, so `verify_protocol`
# dominates its row; the MAC-authenticator variant (Castro & Liskov's fast mode, requests still
# signed by their clients) shows what that authentication choice costs.

# %%
display(Markdown(table1.breakdown_markdown(rows)))

# %% [markdown]
# ## What the table shows
# Written from the measured rows: how many paper cells the simulator reproduces, which differ
# and why, and what each row's compute demand is.

# %%
paper_rows = [r for r in rows if r.system.key in table1.PAPER]
marks = [ok for r in paper_rows for ok in comparison.marks[r.system.key].values()]
declared = sum(len(r.declared) for r in paper_rows)
lines = [f"{sum(marks)} of {len(marks)} measured paper cells reproduced ({declared} declared)."]
for key, cols in comparison.reasons.items():
    for col, why in cols.items():
        lines.append(f"{key} / {col} differs: {why}.")
demand = {r.system.name: r.cells["compute_demand"] for r in rows}
lines.append(
    "Compute demand is large for "
    + ", ".join(k for k, v in demand.items() if v == "large")
    + " and small for the others."
)
for row in rows:
    where = table1.measured_where(row)
    if "scaled down" in where:
        lines.append(f"{row.system.name} is measured at {where}.")
display(Markdown("\n\n".join(lines)))
assert {r.system.key: r.cells["compute_demand"] for r in rows}["medrec"] == "large"
