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
# # 01 — The referral walk-through (docs/medical-chain.md §1.7), step by step
#
# Patient P (keys on her phone) moves from hospital H_A to hospital H_B and sees doctor D. This
# notebook replays the paper's five steps on four simulated hospitals — four real
# `MedicalChainNode` validators (PBFT replica + access rules + rotating blocker + SQLite store)
# driven by the deterministic `medbench.sim.Simulator` on a `city` topology — and then plays the
# attacks of §1.7 item 6. It calls the functions of `medbench.demo.referral`, the code behind
# `medbench demo referral`; each function checks what it reports and raises `DemoCheckFailed`
# if the system did not behave as the paper says, so every line below is backed by an assertion.

# %%
import os

from pathlib import Path

from IPython.display import Image, Markdown, display

from medbench.demo import attacks, referral, sequence
from medbench.sim import trace

SEED = 0
SMALL = os.environ.get("MEDBENCH_SMALL") == "1"  # the demo is already small: same run either way
OUT = Path(os.environ.get("MEDBENCH_REPORT_DIR", "."))
run = referral.setup(SEED)
recorder = trace.record(run.sim)  # every message copy from here on, with its arrival time
print("\n".join(run.lines))

# %% [markdown]
# ## Step 1 — P's entity transaction
#
# A `register` transaction (`medbench.records.entity`): the role, sex and age band stay in clear
# (statistics need them), the ID number and the name are sealed to P's own X25519 key, and the
# transaction lists PUB_KEY_P. Only P can open the sealed part.

# %%
print("\n".join(referral.step1_entity(run)))

# %% [markdown]
# ## Step 2 — P's signed query; her H_A records are shown to D
#
# First some history: P grants the H_A doctor access, who saves a visit record and a *stealth
# association* (both signed by the doctor and countersigned by H_A). Then P signs a query with
# her key. Every validator checks her certificate chain (PKI) and signature before PBFT orders
# it; executing it writes an audit record, and both the query and the audit land in a block.
# P grants D read access; D's read is accepted, and P's associations — which only her private
# key can open — lead to her H_A visit, whose condition is shown to D.

# %%
print("\n".join(referral.step2_query(run)))

# %% [markdown]
# ## Step 3 — D saves a diagnosis: TX1 and TX2
#
# TX1 is an `add` of a FHIR visit record (condition + treatment plan, pseudonymous subject);
# TX2 is the association "record ID = TX1", readable by P alone. Both list PUB_KEY_D and
# PUB_KEY_HB and carry both signatures. On chain each travels inside an access request signed by
# D and countersigned by H_B, and the two are sent together to the primary VA_0 (v = 0).

# %%
print("\n".join(referral.step3_save(run)))

# %% [markdown]
# ## Step 4 — PBFT with four validators
#
# The message trace of the sequence number that ordered TX1 and TX2 (virtual time in
# microseconds, sender -> receiver, kind, view v, sequence n, short batch digest): one
# PRE-PREPARE from VA_0 to each backup (both requests in one batch), PREPAREs from the three
# backups, COMMITs from all four validators.

# %%
print("\n".join(referral.step4_pbft(run)))

# %% [markdown]
# The same round as a message-sequence diagram: one lifeline per node, time going down, each
# arrow from a copy's send time to its arrival (the city topology's 1-5 ms links, queueing
# included). The whole walk-through is also written as Chrome trace events, which
# [Perfetto](https://ui.perfetto.dev) opens (one track per node, an arrow per message).

# %%
env = run.facts["env"]
step4 = sequence.step4_messages(recorder.deliveries, [e.to_wire() for e in env], run.facts["seq"])
diagram = sequence.draw(step4, run.name, OUT / "referral.png", f"Step 4: PBFT sequence {run.facts['seq']}")
display(Image(filename=str(diagram)))
trace.write_chrome_trace(OUT / "referral.trace.json", recorder.deliveries, [run.name(i) for i in range(run.sim.n)])
kinds = {}
for d in step4:
    label = sequence._kind(d.msg)[0]
    kinds[label] = kinds.get(label, 0) + 1
span_ms = (max(d.arrived_us for d in step4) - min(d.sent_us for d in step4)) / 1000

# %% [markdown]
# ## Step 5 — the block
#
# The blocker is the B-th validator after the primary, B = L mod (N - 1) with L the chain length:
# L mod 3 = 1 gives VA_1, as in the paper. VA_1 signs the block (height, previous ID, its key,
# Merkle root of the transaction IDs) and sends it to the primary; PBFT orders it like a request.
# Every node stores the same chain and `verify_chain` accepts it.

# %%
print("\n".join(referral.step5_block(run)))

# %% [markdown]
# ## The attacks (§1.7 item 6)
#
# 1. **TX1 leaked** — its content holds no key, name or ID of P (the FHIR subject is a
#    pseudonym): nothing links it to her.
# 2. **TX2 leaked** — the stealth association opens only with P's private key; every other
#    registered key fails.
# 3. **A record altered** on one node — the recomputed transaction ID no longer matches the ID in
#    the block; `verify_chain` names the block and leaf (`merkle.diff`), and the body is restored
#    from the peers.
# 4. **A record deleted** on one node — reported missing, fetched from the peers, re-verified.
# 5. **The primary drops a request** — the client times out and broadcasts; the backups' timers
#    expire and the view changes; the request commits under the new primary.
# 6. **The primary alters a request** — the client's signature no longer verifies; the backups
#    refuse to prepare and the view changes.
# 7. **A backup drops its messages** — with f = 1, the other three still form quorums: no effect.
# 8. **A backup sends malformed PREPAREs/COMMITs** (wrong v, n or digest) — they match no
#    proposal, count toward no certificate, and change nothing.
#
# The note after attack 2: the access requests carrying TX1/TX2 (and all others) are sealed to the
# validators' consortium access key, and P signs hers under one-day pseudonyms; the validators open
# them and find P (they need her to find D's grant), but no transaction on chain shows P's key.

# %%
verdicts = attacks.attacks(run, SEED)
for line in verdicts:
    print(line)
run.close()

# %% [markdown]
# ## What the walk-through shows
# Written from the run above: the messages of step 4's round and the attack verdicts.

# %%
numbered = [line for line in verdicts if line.strip()[:2].rstrip(".").isdigit()]
caught = [line for line in numbered if "caught by" in line]
display(Markdown(
    f"Step 4 ordered TX1 and TX2 in one PBFT round of {len(step4)} message copies "
    f"({', '.join(f'{v} {k}' for k, v in kinds.items())}) within {span_ms:.1f} ms of virtual "
    f"time from the first request to the last reply. Of the {len(numbered)} attacks of §1.7 "
    f"item 6, {len(caught)} were caught ("
    + "; ".join(line.strip().split(' caught by ')[0].rstrip(';') for line in caught)
    + ")."
))
