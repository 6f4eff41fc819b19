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
# # 03 — Fault tolerance: Byzantine replicas up to f, and beyond
#
# PBFT with `n = 3f + 1` replicas stays *safe* (honest replicas never commit different batches
# at one sequence number, so their chains of blocks agree) and *live* (every request completes)
# as long as at most `f` replicas are faulty (docs/medical-chain.md §1.1, §1.7). This notebook runs each
# Byzantine behaviour of `medbench.consensus.pbft.byzantine` in the simulator (`medbench.experiments.run_grid`,
# protocol `"pbft"`), first with `f` faulty replicas, then with `f + 1`, and reads the verdicts
# of the run's checkers: `safety` (per-sequence agreement of the honest replicas), `chain`
# (their chains share a prefix) and `liveness` (every request completed in the time allowed).
#
# The faulty replicas are the first ones, so they are the primaries of the first views: the
# worst placement, since every view they lead must be abandoned by a view change.
# `MEDBENCH_SMALL=1` shrinks the sweep.

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd

from medbench import experiments
from medbench.experiments.pbft import BEHAVIOURS

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
NS = [4] if SMALL else [4, 7, 10]
SEEDS = 1 if SMALL else 3
BEHAVIOURS_F = [b for b in BEHAVIOURS if b != "split-brain"]
BASE = {
    "protocol": "pbft",
    "requests": 20 if SMALL else 60,
    "clients": 2,
    "rate_tps": 0,  # every request offered at time 0
    "payload_bytes": 64,
    "batch": 4,
    "view_change_timeout_us": 200_000,
    "client_timeout_us": 200_000,
    "duration_ms": 20_000,
    "tick_us": 5_000,
}


def sweep(rows_of):
    """Concatenate the rows of several grids into a DataFrame."""
    rows = []
    for grid in rows_of:
        rows += experiments.run_grid({**BASE, **grid}, SEEDS, progress=not SMALL)
    return pd.DataFrame(rows)


# %% [markdown]
# ## Up to f faulty replicas
# Behaviours: a *silent* primary (sends no pre-prepare), a primary *dropping* the clients'
# requests, *altering* a request (its client signature no longer matches), *equivocating*
# (different pre-prepares to the two halves of the backups); *bad voters* (prepares and commits
# with a wrong digest, view or sequence), a *replayer* (old and relayed messages, forged names)
# and *crashed* replicas. The fault-free run is the baseline.

# %%
within = sweep(
    [{"n": n, "byzantine": [""] + BEHAVIOURS_F, "byzantine_count": (n - 1) // 3} for n in NS]
)
within["behaviour"] = within["byzantine"].replace("", "none")
table = within.groupby(["n", "behaviour"])[
    ["safety", "chain", "liveness", "view_changes", "latency_ms_p50", "msgs_per_tx"]
].mean()
print(table.round(2).to_string())
assert within["safety"].all() and within["chain"].all() and within["liveness"].all()

# %%
n0 = NS[-1]
g = within[within["n"] == n0].groupby("behaviour").mean(numeric_only=True)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].barh(g.index, g["latency_ms_p50"])
axes[0].set_xlabel("median request latency (ms, virtual)")
axes[1].barh(g.index, g["msgs_per_tx"])
axes[1].set_xlabel("messages per request")
fig.suptitle(f"n = {n0}, f = {(n0 - 1) // 3} faulty replicas: all runs safe and live")
for ax in axes:
    ax.grid(True, axis="x", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# Every run is safe and live. Faulty *primaries* cost latency: the clients' retransmission
# timer and then the backups' view-change timer must expire before a new primary takes over
# (one view change per faulty primary in a row), and view changes add VIEW-CHANGE and NEW-VIEW
# messages. Faulty *voters* and replayers cost almost nothing: their votes are rejected (wrong
# digest, bad authenticator, duplicate) and the `2f + 1` honest votes suffice.

# %% [markdown]
# ## f + 1 faulty replicas: beyond the bound
# With one faulty replica too many PBFT guarantees nothing. Most single behaviours still cannot
# make honest replicas disagree, since a quorum of `2f + 1` still contains honest replicas that
# check what they vote for, but they can stop progress: `f + 1` crashed replicas leave fewer than
# `2f + 1` live ones. A *split brain* coalition of `f + 1` colluders (the primary and `f`
# backups) sends two conflicting pre-prepares to two halves of the honest replicas and votes
# for both; each half gathers `2f + 1` votes and commits a different batch, which the safety
# checker reports.

# %%
n1 = NS[0]
beyond = sweep([{"n": n1, "byzantine": BEHAVIOURS, "byzantine_count": (n1 - 1) // 3 + 1}])
bt = beyond.groupby("byzantine")[["safety", "chain", "liveness", "completed"]].mean()
print(bt.round(2).to_string())
split = beyond[beyond["byzantine"] == "split-brain"]
print(split[["seed", "safety_reason"]].to_string(index=False))
assert not split["safety"].any()

# %%
fig, ax = plt.subplots(figsize=(8, 3.8))
x = range(len(bt))
ax.bar([i - 0.2 for i in x], bt["safety"], width=0.4, label="safe (fraction of runs)")
ax.bar([i + 0.2 for i in x], bt["liveness"], width=0.4, label="live (fraction of runs)")
ax.set_xticks(list(x), bt.index, rotation=40, ha="right")
ax.set_ylim(0, 1.1)
ax.set_title(f"n = {n1}, f + 1 = {(n1 - 1) // 3 + 1} faulty replicas")
ax.legend(loc="lower left")
plt.tight_layout()
plt.show()

# %% [markdown]
# Beyond the bound the checkers are not vacuous: the split brain breaks safety on every seed,
# and `f + 1` crashed replicas (or silent primaries whose views keep failing, depending on
# placement) break liveness. Behaviours that only corrupt their own messages remain harmless
# to safety even at `f + 1`, because honest replicas verify the requests and digests they vote
# for; what `n >= 3f + 1` buys is the guarantee, whatever the faulty replicas do.

# %% [markdown]
# ## What the figures show
# Written from the runs above.

# %%
from IPython.display import Markdown, display

w = within.groupby("behaviour").mean(numeric_only=True)
slowest = w["latency_ms_p50"].idxmax()
unsafe = sorted(beyond[~beyond["safety"].astype(bool)]["byzantine"].unique())
stalled = sorted(beyond[~beyond["liveness"].astype(bool)]["byzantine"].unique())
display(Markdown(
    f"With f faulty replicas, {int(within['safety'].sum())} of {len(within)} runs were safe and "
    f"{int(within['liveness'].sum())} live (n = {', '.join(map(str, NS))}, {SEEDS} seed(s)); the "
    f"costliest behaviour was '{slowest}' (median latency {w['latency_ms_p50'][slowest]:.0f} ms "
    f"against {w['latency_ms_p50']['none']:.1f} ms fault-free, "
    f"{w['view_changes'][slowest]:.1f} view changes on average). With f + 1 at n = {n1}, safety "
    f"was lost under {', '.join(unsafe) or 'no behaviour'} and liveness under "
    f"{', '.join(stalled) or 'no behaviour'}."
))
