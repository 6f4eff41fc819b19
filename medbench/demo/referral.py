"""``medbench demo referral``: docs/medical-chain.md §1.7 replayed on four simulated hospitals.

Theory of operation
-------------------
:func:`setup` deploys four traced hospitals (:mod:`medbench.demo.deployment`: a Medical Chain
consortium under the deterministic simulator, every message a node sends recorded, so the PBFT
phases can be printed).

The steps of §1.7 are separate functions returning report lines (the notebook calls them one by
one): :func:`step1_entity` (P's ``register`` transaction, :mod:`medbench.records.entity`),
:func:`step2_query` (P's signed query through PBFT, its audit record, D's view of P's H_A records
found by her stealth associations), :func:`step3_save` (TX1 + TX2 signed by D and H_B, sent
together), :func:`step4_pbft` (the trace of their sequence number), :func:`step5_block` (the
ledger block made by blocker ``VA_1``); :func:`full_trace` lists every message sent, every ledger
transaction and every block of those steps. :func:`medbench.demo.attacks.attacks` plays
§1.7 item 6, each verdict checked before it is printed.

Two layers carry the walk-through: the *records* layer (:mod:`medbench.records`: sealed entity
fields, FHIR visit records with a pseudonymous subject, stealth associations only P can open)
and the *access/consensus* layer (the access requests the validators judge and PBFT orders).
The access requests travel sealed to the consortium access key (:mod:`medbench.crypto.envelope`)
and P signs hers under one-day pseudonyms (:mod:`medbench.pki.pseudonym`): the validators open
them and find P (the rules need her to find D's grant), while no transaction on chain shows P's
key in clear (checked after attack 2). The leak attacks are judged on the records-layer TX1/TX2,
whose content is what a leaked record body exposes.

Output is a pure function of the seed: no wall-clock times, no paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medbench import codec, merkle
from medbench.access.request import Operation
from medbench.consensus.pbft.messages import (
    Block,
    Checkpoint,
    Commit,
    Prepare,
    PrePrepare,
    Reply,
    Request,
    ViewChange,
)
from medbench.demo import attacks, sequence
from medbench.demo.deployment import (
    H_A,
    H_B,
    T0,
    Hop,
    People,
    Run,
    _access_tx,
    _grant,
    _open,
    _visit,
    check,
    deploy,
    people,
    short,
)
from medbench.ledger import Transaction
from medbench.ledger.errors import LedgerDecodeError
from medbench.medchain.block_format import BlockSignature
from medbench.records import (
    PrivateProfile,
    PublicProfile,
    RecordBook,
    Role,
    VisitRecord,
    Writer,
    add,
    associate,
    read_registration,
)
from medbench.records import register as register_entity
from medbench.rotation import blocker_offset, expected_blocker
from medbench.sim import trace as sim_trace

# --- the steps ---------------------------------------------------------------------------------


def setup(seed: int = 0) -> Run:
    """The consortium, P's earlier H_A visit (on chain) and P's grant to D; returns the run."""
    run = deploy(seed)
    run.facts["people"] = people(run.dep, seed)
    run.lines.append(
        f"four hospitals H_0..H_3 (H_A = H_{H_A}, H_B = H_{H_B}) on a 'city' topology; "
        f"validators VA_0..VA_3, primary VA_P = v mod 4 = VA_0 in view 0"
    )
    return run


def step1_entity(run: Run) -> list[str]:
    """P's entity transaction: ID number and name sealed, sex and age in clear, PUB_KEY_P."""
    pp = run.facts["people"]
    tx = register_entity(
        pp.patient,
        PublicProfile(Role.PATIENT, sex="female", age_band="30-39"),
        PrivateProfile("Li Wei", "330101199001011234"),
        T0,
        randbytes=pp.randbytes,
    )
    reg = read_registration(tx)
    check(
        b"Li Wei" not in tx.content and b"330101199001011234" not in tx.content,
        "name or ID number in clear",
    )
    check(reg.open_private(pp.patient).name == "Li Wei", "P cannot open her own fields")
    run.facts["entity"] = tx
    return [
        "STEP 1  P's entity transaction",
        f"  tx {short(tx.id)} kind={tx.kind.name.lower()} PUB_KEY_P={short(reg.key)}",
        f"  clear : role={reg.profile.role} sex={reg.profile.sex} age={reg.profile.age_band}",
        f"  sealed: {len(reg.sealed_private)} bytes (ID number and name, X25519-sealed to P);"
        " only P opens them",
    ]


def step2_query(run: Run) -> list[str]:
    """H_A's earlier visit, P's signed query (identity check, logged), D sees P's H_A records."""
    pp: People = run.facts["people"]
    dep, u = run.dep, run.dep.user_ids
    out = ["STEP 2  P's signed query; P's H_A records shown to D"]
    # history: P's visit at H_A (record + stealth association, signed by the doctor and H_A)
    at_a = Writer(pp.doc_a.signing, pp.h_a.signing)
    visit_a = add(_visit("hypertension", "38341003", "amlodipine 5 mg").encode(), T0 + 1, at_a)
    assoc_a = associate(pp.patient.public, visit_a.id, T0 + 1, at_a, randbytes=pp.randbytes)
    run.submit(u[0], _grant(run, H_A, T0 + 1), 0)
    run.settle()
    for i, content in enumerate((visit_a.to_wire(), assoc_a.to_wire())):
        tx = _access_tx(
            run,
            "A",
            Operation.ADD,
            T0 + 2 + i,
            category="visit" if i == 0 else "association",
            body={"content": content},
            countersign=True,
        )
        run.submit(u[0], tx, 0)
    run.settle()
    # P's query, signed under a one-day pseudonym of hers, sealed to the validators; every
    # validator opens it and checks the pseudonym's chain, P's own chain and the signature
    q = _access_tx(run, "P", Operation.READ, T0 + 10, body={"history": False})
    run.submit(u[1], q, 0)
    run.settle()
    node = dep.nodes[H_B]
    listed = {t for b in node.ledger.blocks() for t in b.tx_ids}
    audits = [a for a in node.access.state.audit if a.content["request"] == q.id]
    check(q.id in listed, "the query was not packed into a block")
    check(len(audits) == 1, "the query was not logged")
    p_key = dep.patients[H_A].public_key
    check(p_key not in q.to_wire() and p_key not in codec.encode(audits[0].content),
          "the query or its audit names P in clear")  # fmt: skip
    opened = _open(run, q)
    check(opened.requester == p_key and opened.signer != p_key, "the query is not P's pseudonym")
    out.append(
        f"  query {short(q.id)} signed by a one-day pseudonym {short(q.public_keys[0])} of P, "
        f"sealed to the validators: each opened it, checked the pseudonym's and P's PKI chains "
        f"and the signature, accepted; audit record on chain (P sealed), query ID in a block"
    )
    # the identity behind the pseudonym is the key of P's entity transaction: it is what she gets
    registered = [run.facts["entity"]]  # the enrolment's register transactions
    (entity,) = [t for t in registered if read_registration(t).key == opened.requester]
    out.append(
        f"  returned: P's entity transaction {short(entity.id)} (its key = the one the "
        "validators found behind the pseudonym)"
    )
    # P grants D read (on chain); D reads; P's associations lead to her H_A visit records
    run.submit(u[0], _grant(run, H_B, T0 + 20), 0)
    run.settle()
    r = _access_tx(run, "D", Operation.READ, T0 + 21, body={"history": False})
    run.submit(u[2], r, 0)
    run.settle()
    check([x[0] for x in run.results(u[2])] == ["accepted"], "D's read refused")
    bodies = [
        Transaction.from_wire(v.content)
        for v in node.access.state.records.current(dep.patients[H_A].public_key)
    ]
    book = RecordBook.for_patient(pp.patient, [entity, *bodies])
    found = [v.tx for v in book.current()]
    check([t.id for t in found] == [visit_a.id], "P's association did not lead to her H_A visit")
    for t in found:
        rec = VisitRecord.decode(t.content)
        cond = rec.of_type("Condition")[0]["code"]["text"]
        out.append(
            f"  D's read {short(r.id)} accepted (P's grant); P's association "
            f"{short(assoc_a.id)} -> H_A visit {short(t.id)} (signed by doctor A + H_A): "
            f"condition '{cond}' shown to D"
        )
    # docs/medical-chain.md's example has B = L mod (N - 1) = 1 for the block of TX1/TX2: P re-reads
    # her records (each read is a logged query, hence blocks) until the next block has that L
    extra = 0
    while blocker_offset(node.stored_height + 1, run.n) != 1 and extra < 6:
        extra += 1
        q2 = _access_tx(run, "P", Operation.READ, T0 + 22 + extra, body={"history": False})
        run.submit(u[1], q2, 0)
        run.settle()
    check(blocker_offset(node.stored_height + 1, run.n) == 1, "cannot align the rotation")
    out.append(
        f"  P re-read her records {extra} more time(s) (each query logged); chain length "
        f"now L = {node.stored_height + 1}"
    )
    return out


def step3_save(run: Run) -> list[str]:
    """D saves TX1 (add) and TX2 (association), both signed by D and H_B, sent together."""
    pp: People = run.facts["people"]
    at_b = Writer(pp.doc_d.signing, pp.h_b.signing)
    tx1 = add(_visit("pneumonia", "233604007", "amoxicillin 500 mg").encode(), T0 + 30, at_b)
    tx2 = associate(pp.patient.public, tx1.id, T0 + 30, at_b, randbytes=pp.randbytes)
    run.facts["tx1"], run.facts["tx2"] = tx1, tx2
    env = [
        _access_tx(
            run,
            "D",
            Operation.ADD,
            T0 + 30 + i,
            category=cat,
            body={"content": t.to_wire()},
            countersign=True,
        )
        for i, (cat, t) in enumerate((("diagnosis", tx1), ("association", tx2)))
    ]
    for tx in env:
        check(len(tx.public_keys) == 2 and len(tx.signatures) == 2, "not signed by D and H_B")
    run.facts["env"] = env
    start = len(run.trace)
    run.facts["trace_start"] = start
    u = run.dep.user_ids
    at = run.sim.now + 10_000
    run.submit(u[2], env[0], at)
    run.submit(u[3], env[1], at)
    check(run.settle(), "TX1/TX2 never completed")
    return [
        "STEP 3  D saves the diagnosis",
        f"  TX1 {short(tx1.id)} type=add keys=PUB_KEY_D {short(tx1.public_keys[0])} + "
        f"PUB_KEY_HB {short(tx1.public_keys[1])}, SIG_D + SIG_HB; "
        "content: condition + treatment plan (FHIR, pseudonymous subject)",
        f"  TX2 {short(tx2.id)} type=associate, same keys and signatures; "
        "content: stealth link to record ID = TX1",
        f"  TXM to the primary VA_0: TX1 in access request {short(env[0].id)}, TX2 in "
        f"{short(env[1].id)} (each signed by D and H_B); the ledger lists these IDs",
    ]


def _describe(run: Run, hop: Hop) -> str | None:
    m = hop.msg
    src, dst = run.name(hop.src), run.name(hop.dst)
    head = f"  t={hop.time_us:>9} us  {src:>4} -> {dst:<4}"
    if isinstance(m, Request):
        try:
            tx = f" tx={short(Transaction.from_wire(m.operation).id)}"
        except LedgerDecodeError:
            tx = ""
        return f"{head} REQUEST     client={run.name(m.client)} d={short(m.digest())}{tx}"
    if isinstance(m, PrePrepare):
        kinds = ",".join("block" if isinstance(i, Block) else "req" for i in m.batch)
        return f"{head} PRE-PREPARE v={m.view} n={m.sequence} d={short(m.batch_digest)} [{kinds}]"
    if isinstance(m, (Prepare, Commit)):
        k = "PREPARE    " if isinstance(m, Prepare) else "COMMIT     "
        return f"{head} {k} v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Reply):
        what = "refused" if m.refusal else codec.decode(m.result)[0]
        return f"{head} REPLY       v={m.view} {what}"
    if isinstance(m, Block):
        return (
            f"{head} BLOCK       v={m.view} h={m.height} blocker=VA_{m.blocker} ids={len(m.tx_ids)}"
        )
    return None


def _message_text(run: Run, m: Any) -> str:
    """One message in readable form (kind, view, sequence, short digests), for the full trace."""
    if isinstance(m, Request):
        try:
            t = Transaction.from_wire(m.operation)
            tx = f" tx={short(t.id)} {t.kind.name.lower()}"
        except LedgerDecodeError:
            tx = ""
        return f"REQUEST     client={run.name(m.client)} t={m.timestamp} d={short(m.digest())}{tx}"
    if isinstance(m, PrePrepare):
        items = " ".join(
            f"block(h={i.height})" if isinstance(i, Block) else f"req({short(i.digest())})"
            for i in m.batch
        )
        return f"PRE-PREPARE v={m.view} n={m.sequence} d={short(m.batch_digest)} [{items}]"
    if isinstance(m, Prepare):
        return f"PREPARE     v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Commit):
        return f"COMMIT      v={m.view} n={m.sequence} d={short(m.batch_digest)}"
    if isinstance(m, Reply):
        verdict = ["refused", m.refusal] if m.refusal else codec.decode(m.result)
        what = verdict[0] if isinstance(verdict, list) and verdict else verdict
        return f"REPLY       v={m.view} t={m.timestamp} to={run.name(m.client)} {what}"
    if isinstance(m, Block):
        ids = " ".join(short(t) for t in m.tx_ids)
        return (
            f"BLOCK       v={m.view} h={m.height} blocker=VA_{m.blocker} "
            f"prev={short(m.prev_id)} ids=[{ids}]"
        )
    if isinstance(m, Checkpoint):
        return f"CHECKPOINT  n={m.sequence} state={short(m.state_digest)}"
    if isinstance(m, BlockSignature):
        return f"BLOCK-SIG   block={short(m.block_id)} (the blocker's signature over the block ID)"
    if isinstance(m, ViewChange):
        return f"VIEW-CHANGE v={m.view} stable={m.stable_sequence} prepared={len(m.prepared)}"
    kind = getattr(getattr(m, "KIND", None), "name", type(m).__name__)
    fields = " ".join(
        f"{k}={getattr(m, k)}" for k in ("view", "sequence") if isinstance(getattr(m, k, None), int)
    )
    return f"{str(kind).upper():<11} {fields}".rstrip()


def full_trace(run: Run, end: int | None = None) -> list[str]:
    """Every message sent, every ledger transaction and every block of the walk-through.

    Messages come from the tap, in send order, one line per send (a broadcast lists all its
    destinations); transactions and blocks from VA_0's store, in chain order (every node stores
    the same chain: :func:`step5_block` checked it).
    """
    hops = run.trace[:end]
    out = [
        f"FULL TRACE  every message ({len(hops)} copies), transaction and block of steps 1-5",
        "  messages (time, sender -> receivers, content):",
    ]
    k = 0
    while k < len(hops):
        h = hops[k]
        dsts = [h.dst]
        k += 1
        while k < len(hops) and hops[k].msg is h.msg and hops[k].src == h.src:
            dsts.append(hops[k].dst)
            k += 1
        to = ",".join(run.name(d) for d in dsts)
        out.append(
            f"  t={h.time_us:>9} us  {run.name(h.src):>4} -> {to:<14} {_message_text(run, h.msg)}"
        )
    node = run.dep.nodes[0]
    validators = run.dep.genesis.validators
    stored = node.store.transactions
    blocks = node.ledger.blocks()
    out.append(f"  transactions on the ledger ({sum(len(b.tx_ids) for b in blocks)}, chain order):")
    for b in blocks:
        for tx_id in b.tx_ids:
            row = stored.get(tx_id)
            if row is None:
                out.append(f"  h={b.header.height} tx={short(tx_id)} (body not stored at VA_0)")
                continue
            tx = Transaction.from_wire(row.body)
            out.append(
                f"  h={b.header.height} tx={short(tx_id)} {tx.kind.name.lower():<9} "
                f"t={tx.timestamp_us} keys={len(tx.public_keys)} "
                f"signatures={sum(1 for s in tx.signatures if s)} content={len(tx.content)} B"
            )
    out.append(f"  blocks ({len(blocks)} above genesis):")
    for b in blocks:
        h = b.header
        who = validators.index(h.blocker) if h.blocker in validators else -1
        out.append(
            f"  h={h.height} id={short(b.id)} prev={short(h.previous_id)} blocker=VA_{who} "
            f"merkle_root={short(h.merkle_root)} t={h.timestamp_us} "
            f"ids=[{' '.join(short(t) for t in b.tx_ids)}]"
        )
    return out


def _phase(run: Run, seq: int, start: int) -> tuple[list[str], PrePrepare]:
    """The trace lines of sequence ``seq`` (pre-prepare, prepares, commits) after ``start``."""
    out = []
    pp = None
    for hop in run.trace[start:]:
        m = hop.msg
        if isinstance(m, (PrePrepare, Prepare, Commit)) and m.sequence == seq:
            if isinstance(m, PrePrepare):
                pp = m
            line = _describe(run, hop)
            if line:
                out.append(line)
    assert pp is not None
    return out, pp


def step4_pbft(run: Run) -> list[str]:
    """The PBFT trace of the sequence number that ordered TX1 and TX2."""
    start = run.facts["trace_start"]
    env = run.facts["env"]
    seq = None
    for hop in run.trace[start:]:
        m = hop.msg
        if isinstance(m, PrePrepare):
            ops = {i.operation for i in m.batch if isinstance(i, Request)}
            if env[0].to_wire() in ops:
                seq = m.sequence
                check(env[1].to_wire() in ops, "TX1 and TX2 in different pre-prepares")
                break
    check(seq is not None, "no pre-prepare carried TX1")
    assert seq is not None
    out = ["STEP 4  PBFT with 4 validators (VA_0 primary)"]
    for hop in run.trace[start:]:
        if isinstance(hop.msg, Request) and hop.msg.operation in (
            env[0].to_wire(),
            env[1].to_wire(),
        ):
            line = _describe(run, hop)
            if line:
                out.append(line)
    lines, pp = _phase(run, seq, start)
    out += lines
    hops = [h for h in run.trace[start:] if getattr(h.msg, "sequence", None) == seq]
    pre_to = sorted(h.dst for h in hops if isinstance(h.msg, PrePrepare))
    preparers = {h.src for h in hops if isinstance(h.msg, Prepare)}
    committers = {h.src for h in hops if isinstance(h.msg, Commit)}
    n_pre, n_prep, n_com = len(pre_to), len(preparers), len(committers)
    check(pre_to == [1, 2, 3] and preparers == {1, 2, 3}, "pre-prepare/prepares not as in PBFT")
    check(n_pre == 3 and n_prep == 3 and n_com == 4, "unexpected PBFT phases")
    results = {(r[0], r[1]) for c in run.dep.user_ids[2:] for r in run.results(c)}
    check({("accepted", e.id) for e in env} <= results, "TX1/TX2 not accepted")
    out.append(
        f"  pre-prepare to VA_1..VA_3; prepares from {n_prep} backups; commits from "
        f"{n_com} validators; TX1 and TX2 accepted (n={seq})"
    )
    run.facts["seq"] = seq
    run.facts["pp"] = pp
    return out


def step5_block(run: Run) -> list[str]:
    """The ledger block listing TX1 and TX2 (blocker VA_1 = VA_(0 + B) mod 4, B = 1)."""
    env = run.facts["env"]
    node = run.dep.nodes[0]
    block = next(b for b in node.ledger.blocks() if env[0].id in b.tx_ids)
    check(env[1].id in block.tx_ids, "TX2 not in TX1's block")
    validators = run.dep.genesis.validators
    blocker = validators.index(block.header.blocker)
    height = block.header.height
    check(blocker == 1, "the block was not made by VA_1")
    check(
        block.header.blocker == expected_blocker(height, validators, validators[0]),
        "the blocker does not follow the rotation",
    )
    check(merkle.root(list(block.tx_ids)) == block.header.merkle_root, "Merkle root mismatch")
    start = run.facts["trace_start"]
    out = ["STEP 5  the block"]
    for hop in run.trace[start:]:
        if isinstance(hop.msg, Block) and hop.msg.height == block.header.height:
            out.append(_describe(run, hop) or "")
            break
    seqs = sorted(
        {
            h.msg.sequence
            for h in run.trace[start:]
            if isinstance(h.msg, PrePrepare)
            and any(isinstance(i, Block) and i.height == block.header.height for i in h.msg.batch)
        }
    )
    check(len(seqs) == 1, "the block was not ordered exactly once")
    lines, _ = _phase(run, seqs[0], start)
    count = {
        k: sum(1 for x in lines if f" {k} " in x) for k in ("PRE-PREPARE", "PREPARE", "COMMIT")
    }
    check(count == {"PRE-PREPARE": 3, "PREPARE": 9, "COMMIT": 12}, "block not ordered by PBFT")
    out.append(
        f"  PBFT again for the block (n={seqs[0]}): {count['PRE-PREPARE']} PRE-PREPAREs, "
        f"{count['PREPARE']} PREPAREs, {count['COMMIT']} COMMITs"
    )
    h = block.header
    out += [
        f"  block height={h.height} id={short(block.id)} prev={short(h.previous_id)} "
        f"blocker=VA_{blocker} (L = {height}, B = L mod 3 = {blocker_offset(height, 4)}) "
        f"merkle_root={short(h.merkle_root)}",
        "  IDs: "
        + " ".join(
            short(t) + ("(TX1)" if t == env[0].id else "(TX2)" if t == env[1].id else "")
            for t in block.tx_ids
        ),
    ]
    chains = [[b.id for b in run.dep.nodes[i].ledger.blocks()] for i in range(4)]
    check(all(c == chains[0] for c in chains), "nodes disagree on the chain")
    for i in range(4):
        check(run.dep.nodes[i].verify(run.dep.signer_policy()).ok, f"VA_{i} chain does not verify")
    out.append(f"  all 4 nodes store the same {len(chains[0])} blocks; verify_chain ok on each")
    run.facts["block"] = block
    return out


def run_demo(
    seed: int = 0,
    full: bool = False,
    diagram: str | Path | None = None,
    trace_out: str | Path | None = None,
) -> list[str]:
    """The whole walk-through and the attacks, as report lines.

    ``full`` appends :func:`full_trace` (every message, transaction and block of steps 1-5).
    ``diagram``: write step 4's PBFT round as a message-sequence diagram (PNG,
    :mod:`medbench.demo.sequence`); ``trace_out``: write every message copy of steps 1-5 as
    Chrome trace events (Perfetto opens them, :mod:`medbench.sim.trace`).
    """
    run = setup(seed)
    recorder = sim_trace.record(run.sim)
    try:
        lines = list(run.lines)
        for step in (step1_entity, step2_query, step3_save, step4_pbft, step5_block):
            lines += step(run)
        trace = full_trace(run) if full else []  # before the attacks add their own traffic
        copies = list(recorder.deliveries)
        if diagram is not None:
            env = run.facts["env"]
            step4 = sequence.step4_messages(copies, [e.to_wire() for e in env], run.facts["seq"])
            title = (
                f"Step 4 (docs/medical-chain.md §1.7): TX1 and TX2 ordered by PBFT at sequence "
                f"{run.facts['seq']}\n{len(step4)} message copies, city topology, seed {seed}"
            )
            sequence.draw(step4, run.name, diagram, title)
            lines.append(f"message-sequence diagram of step 4 written to {Path(diagram).name}")
        if trace_out is not None:
            names = [run.name(i) for i in range(run.sim.n)]
            sim_trace.write_chrome_trace(trace_out, copies, names)
            lines.append(
                f"{len(copies)} message copies of steps 1-5 written as Chrome trace events to "
                f"{Path(trace_out).name} (open it in ui.perfetto.dev)"
            )
        lines += attacks.attacks(run, seed)
        lines += trace
    finally:
        run.close()
    return lines
