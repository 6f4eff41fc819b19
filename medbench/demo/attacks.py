"""The attacks of the referral walk-through (docs/medical-chain.md §1.7 item 6), each checked, not
narrated.

Every verdict line is printed only after an ``assert``/:func:`~medbench.demo.deployment.check` of
the real outcome, so the demo fails loudly if a defence does not hold: leaked TX1 and TX2, an
altered and a deleted record, a primary that drops or alters a request, a backup that drops
messages, and malformed votes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from medbench import codec, merkle
from medbench.access.request import Operation
from medbench.consensus.pbft.byzantine import AlteringPrimary, BadVoter, DroppingPrimary
from medbench.consensus.pbft.messages import (
    Commit,
    Prepare,
    PrePrepare,
    ViewChange,
)
from medbench.demo.deployment import (
    H_A,
    H_B,
    T0,
    US,
    DroppingBackup,
    People,
    Run,
    _access_tx,
    _grant,
    _open,
    check,
    deploy,
    short,
)
from medbench.ledger import FindingKind, Transaction
from medbench.records import (
    PSEUDONYMOUS_SUBJECT,
    VisitRecord,
    scan,
)

# --- the attacks -------------------------------------------------------------------------------


def attack_tx1_leak(run: Run) -> str:
    """TX1 leaked: nothing in it ties it to P."""
    pp: People = run.facts["people"]
    tx1: Transaction = run.facts["tx1"]
    blob = tx1.to_wire()
    for key in (pp.patient.public.signing, pp.patient.public.encryption):
        check(key not in blob, "P's key appears in TX1")
    check(b"Li Wei" not in blob and b"330101" not in blob, "P's name or ID in TX1")
    subj = VisitRecord.decode(tx1.content).of_type("Condition")[0]["subject"]
    check(subj == PSEUDONYMOUS_SUBJECT, "TX1 names its subject")
    return (
        "TX1 leaked: holds no P key, name or ID (pseudonymous subject) -> not linkable to P; "
        "caught by records design (pseudonymous FHIR content)"
    )


def attack_tx2_leak(run: Run) -> str:
    """TX2 leaked: only P's private key opens the link to TX1."""
    pp: People = run.facts["people"]
    tx1, tx2 = run.facts["tx1"], run.facts["tx2"]
    check(
        tx1.id not in tx2.content and pp.patient.public.signing not in tx2.content,
        "TX2 shows its record or its patient",
    )
    for other in [pp.doc_d, pp.h_b, pp.doc_a, *pp.others]:
        check(list(scan(other, [tx2])) == [], "someone else opened TX2")
    (mine,) = list(scan(pp.patient, [tx2]))
    check(mine.record_id == tx1.id, "P cannot open TX2")
    return (
        f"TX2 leaked: {len(pp.others) + 3} other keys fail to open it, P's key yields TX1; "
        "caught by stealth association (X25519 + AES-GCM)"
    )


def attack_altered(run: Run) -> str:
    """A stored body altered on one node: verify_chain localises it, repair restores it."""
    env = run.facts["env"]
    victim = run.dep.nodes[2]
    tx = victim.ledger[env[0].id]
    # the stored body is a sealed access request: flip one bit inside its envelope
    fields = codec.decode(tx.content)
    box = fields["envelope"]
    fields["envelope"] = box[:64] + bytes([box[64] ^ 1]) + box[65:]
    forged = Transaction(
        tx.kind, codec.encode(fields), tx.timestamp_us, tx.public_keys, tx.signatures
    )
    check(forged.content != tx.content, "nothing altered")
    victim.store.tamper_transaction(env[0].id, forged.to_wire())
    report = victim.verify()
    (finding,) = report.findings
    check(
        finding.kind is FindingKind.BODY_ALTERED and finding.tx_id == env[0].id,
        "alteration not localised",
    )
    block = run.facts["block"]
    leaves = [forged.id if t == env[0].id else t for t in block.tx_ids]
    where = merkle.diff(list(block.tx_ids), leaves)
    check(list(where) == [block.tx_ids.index(env[0].id)], "merkle.diff did not localise")
    result = victim.repair([run.dep.nodes[i] for i in (0, 1, 3)])
    check(result.restored == (env[0].id,) and victim.verify().ok, "not repaired")
    return (
        f"record altered on VA_2 (TX1's stored body): recomputed ID {short(forged.id)} != "
        f"{short(env[0].id)}, "
        f"localised at block {finding.height} leaf {where[0]} (merkle.diff), restored from "
        "peers; caught by verify_chain"
    )


def attack_deleted(run: Run) -> str:
    """A stored body deleted on one node: found missing, fetched from peers, re-verified."""
    env = run.facts["env"]
    victim = run.dep.nodes[3]
    victim.store.delete_transaction(env[1].id)
    report = victim.verify()
    check(
        any(
            f.kind is FindingKind.TRANSACTION_MISSING and f.tx_id == env[1].id
            for f in report.findings
        ),
        "deletion not found",
    )
    result = victim.repair([run.dep.nodes[i] for i in (0, 1, 2)])
    check(env[1].id in result.restored and victim.verify().ok, "not restored")
    return (
        "record deleted on VA_3: body of TX2's request missing, fetched from peers and "
        "re-verified; caught by verify_chain + repair"
    )


def _serve(run: Run, honest: list[int], seed_k: int) -> None:
    dep, u = run.dep, run.dep.user_ids
    t = T0 + 100 * seed_k
    run.submit(u[0], _grant(run, H_B, t), 0)
    run.settle(limit_us=4 * US, extra_us=0)
    for j in range(2):
        tx = _access_tx(
            run,
            "D",
            Operation.ADD,
            t + 1 + j,
            category="diagnosis",
            body={"content": b"record %d" % j},
            countersign=True,
        )
        run.submit(u[1 + j], tx, 0)
    for _ in range(40):
        if run.settle(limit_us=2 * US, extra_us=0):
            break
    run.sim.run(run.sim.now + 2 * US)
    done = sum(len(run.results(c)) for c in u[:3])
    check(done == 3, f"only {done} of 3 requests completed")
    chains = [[b.id for b in dep.nodes[i].ledger.blocks()] for i in honest]
    check(len(chains[0]) >= 1 and all(c == chains[0] for c in chains), "honest chains differ")
    for i in honest:
        check(dep.nodes[i].verify(dep.signer_policy()).ok, f"VA_{i} does not verify")


def _view_changes(run: Run) -> int:
    return sum(1 for h in run.trace if isinstance(h.msg, ViewChange))


def attack_primary_drops(seed: int) -> str:
    """The primary ignores one client's requests: the client times out, the view changes."""
    run = deploy(seed + 1)
    try:
        victim = run.dep.user_ids[1]
        run.dep.nodes[0].core = DroppingPrimary(run.dep.nodes[0].replica, [victim])
        _serve(run, [1, 2, 3], 1)
        views = [run.dep.nodes[i].replica.view for i in (1, 2, 3)]
        check(min(views) >= 1, "no view change")
        retrans = run.dep.nodes[victim].retransmissions
        return (
            f"primary drops the request: client retransmitted to all, {_view_changes(run)} "
            f"VIEW-CHANGE messages, now view {min(views)}, request committed; caught by "
            f"client timeout -> view change (retransmissions={retrans})"
        )
    finally:
        run.close()


def attack_primary_alters(seed: int) -> str:
    """The primary alters a request: backups refuse it (bad signature), the view changes."""
    run = deploy(seed + 2, wrap={0: AlteringPrimary})
    try:
        _serve(run, [1, 2, 3], 2)
        refused = sum(
            run.dep.nodes[i].replica.rejections["request not authentic"] for i in (1, 2, 3)
        )
        check(refused >= 2, "backups accepted an altered request")
        check(all(run.dep.nodes[i].replica.view >= 1 for i in (1, 2, 3)), "no view change")
        return (
            f"primary alters the request: {refused} refusals 'request not authentic', view "
            "change, honest chains verify; caught by request signature check -> view change"
        )
    finally:
        run.close()


def attack_backup_drops(seed: int) -> str:
    """A backup sends nothing (f = 1): no effect."""
    run = deploy(seed + 3, wrap={3: DroppingBackup})
    try:
        _serve(run, [0, 1, 2], 3)
        check(all(run.dep.nodes[i].replica.view == 0 for i in (0, 1, 2)), "a view change")
        sent = sum(1 for h in run.trace if h.src == 3)
        check(sent == 0, "the dropping backup sent messages")
        return (
            "backup VA_3 drops every message: 0 sent, still view 0, all requests committed; "
            "caught by quorum 2f+1 = 3 (no effect while faulty <= f = 1)"
        )
    finally:
        run.close()


def attack_malformed_votes(seed: int) -> str:
    """A backup's PREPAREs/COMMITs with wrong v, n or digest are discarded."""
    counts = []
    for k, fld in enumerate(("view", "sequence", "digest")):
        run = deploy(seed + 4 + k, wrap={2: partial(BadVoter, field=fld)})
        try:
            _serve(run, [0, 1, 3], 4 + k)
            check(all(run.dep.nodes[i].replica.view == 0 for i in (0, 1, 3)), "view change")
            proposed = {
                (h.msg.view, h.msg.sequence, h.msg.batch_digest)
                for h in run.trace
                if isinstance(h.msg, PrePrepare)
            }
            bad = [
                (h.msg.view, h.msg.sequence, h.msg.batch_digest)
                for h in run.trace
                if h.src == 2 and isinstance(h.msg, (Prepare, Commit))
            ]
            check(bool(bad), "no malformed vote sent")
            # a vote counts only toward the (v, n, digest) it names: these match no proposal
            check(not proposed.intersection(bad), "a malformed vote matched a pre-prepare")
            counts.append(f"{fld}:{len(bad)}")
        finally:
            run.close()
    return (
        "backup VA_2 sends malformed PREPARE/COMMIT (wrong "
        + ", ".join(counts)
        + " votes): discarded, no view change, chains agree; caught by vote matching "
        "(v, n, digest) in the quorum tracker"
    )


def attacks(run: Run, seed: int) -> list[str]:
    """Every attack of §1.7 item 6, each line printed only after its check passed."""
    out = ["ATTACKS (docs/medical-chain.md §1.7 item 6)"]
    steps: list[Callable[[], str]] = [
        partial(attack_tx1_leak, run),
        partial(attack_tx2_leak, run),
        partial(attack_altered, run),
        partial(attack_deleted, run),
        partial(attack_primary_drops, seed),
        partial(attack_primary_alters, seed),
        partial(attack_backup_drops, seed),
        partial(attack_malformed_votes, seed),
    ]
    for k, fn in enumerate(steps, 1):
        out.append(f"  {k}. {fn()}")
        if k == 2:
            # the access requests that carried TX1/TX2 (and every other of steps 2-5) are
            # sealed: P's keys appear nowhere in clear on the chain, only inside boxes
            p = run.dep.patients[H_A]
            node = run.dep.nodes[H_B]
            bodies = [node.ledger[t].to_wire() for b in node.ledger.blocks() for t in b.tx_ids]
            named = [b for b in bodies if p.public_key in b or p.keys.encryption_public in b]
            check(not named, "an access transaction names P in clear")
            opened = _open(run, run.facts["env"][0])
            check(opened.patient == p.public_key, "the validators do not find P in the envelope")
            out.append(
                f"     note: the access envelopes carrying TX1/TX2 are sealed to the validators' "
                f"access key: P's keys appear in none of the {len(bodies)} transactions on "
                "chain; the validators open them and find P (the grant check needs her)"
            )
    return out
