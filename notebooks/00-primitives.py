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
# # 00 — The primitives under every block: SHA-256 batches, Merkle trees, quorums
#
# Every Medical Chain block carries a Merkle root over its transaction IDs, every audit recomputes
# roots and proofs, and every PBFT certificate is a quorum count. This notebook times the native
# core against its pure-Python twin as the tree grows, and shows how `merkle.diff` localises a
# tampered transaction. `MEDBENCH_SMALL=1` (set by `make test`) shrinks the sizes.

# %%
import os
import time

import matplotlib.pyplot as plt

from medbench import backend, merkle
from medbench.reference import merkle as reference_merkle

SMALL = os.environ.get("MEDBENCH_SMALL") == "1"
sizes = [2**k for k in range(6, 12 if SMALL else 19, 2)]
print(backend.describe())


# %%
def best_time(fn, repeat=3):
    """Best wall time of a few calls (seconds)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


rows = []
for n in sizes:
    leaves = [i.to_bytes(32, "big") for i in range(n)]
    rows.append(
        (n, best_time(lambda: merkle.root(leaves)), best_time(lambda: reference_merkle.root(leaves)))
    )
for n, fast, ref in rows:
    print(f"n={n:>7}  selected {fast * 1e3:8.3f} ms  reference {ref * 1e3:8.3f} ms  {ref / fast:5.1f}x")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog([r[0] for r in rows], [r[1] for r in rows], "o-", label=f"selected ({merkle.implementation()})")
ax.loglog([r[0] for r in rows], [r[2] for r in rows], "s--", label="pure-Python reference")
ax.set_xlabel("leaves (transaction IDs)")
ax.set_ylabel("seconds per Merkle root")
ax.legend()
ax.grid(True, which="both", alpha=0.3)
plt.show()

# %% [markdown]
# ## Localising a tampered transaction
# A node recomputes the IDs of the transactions a block lists; `merkle.diff` walks down only the
# subtrees whose hashes differ, so it names the altered transactions with O(k log n) comparisons.

# %%
ids = [i.to_bytes(32, "big") for i in range(sizes[-1])]
tampered = list(ids)
for i in (3, len(ids) // 2):
    tampered[i] = b"\xff" * 32
found = merkle.diff(ids, tampered)
print("differing transactions:", found)
assert sorted(found) == [3, len(ids) // 2]

# %% [markdown]
# ## What the figures show
# Written from the timings above (they vary with the machine and its load; the ratios are what
# the benchmark gate guards, `make bench-check`).

# %%
from IPython.display import Markdown, display

speedups = [ref / fast for _n, fast, ref in rows]
small_n, big_n = rows[0][0], rows[-1][0]
display(Markdown(
    f"The selected implementation ({merkle.implementation()}) computes a Merkle root "
    f"{min(speedups):.1f}x to {max(speedups):.1f}x faster than the pure-Python reference over "
    f"{small_n:,} to {big_n:,} leaves ({speedups[0]:.1f}x at the smallest tree, "
    f"{speedups[-1]:.1f}x at the largest); both grow about linearly with the leaves "
    f"({rows[-1][1] / rows[0][1]:.0f}x the time for {big_n // small_n}x the leaves, selected). "
    f"`merkle.diff` named exactly the {len(found)} tampered transactions "
    f"({', '.join(map(str, sorted(found)))}) of {len(ids):,}."
))
