"""MAC mode and the view change: what a Byzantine replica can and cannot do (TOCS 2002 §4.5).

With MAC authenticators a replica checks its own entry of a nested message's authenticator
only; the VIEW-CHANGE-ACK protocol of TOCS §4.5 is not implemented (see
:mod:`medbench.consensus.auth`). These tests pin the consequences down:

* it cannot forge: an entry for an honest receiver needs the pairwise key of the claimed author,
  so a VIEW-CHANGE, a nested certificate or a NEW-VIEW in an honest replica's name is refused by
  every honest replica — safety rests on that;
* it can split verdicts: an authenticator of its own that verifies at some honest replicas and
  not at others makes those others refuse every certificate containing that message, hence the
  honest VIEW-CHANGEs carrying it and every NEW-VIEW built on them. While the faulty replica is
  also absent the group then cannot change view (liveness, not safety); with signatures the
  same attack (withholding the pre-prepare from one backup) leaves the group live.
"""

from __future__ import annotations

import pytest
from pbft_harness import Network, safety_violations

from medbench.consensus.pbft import byzantine as faults
from medbench.consensus.pbft import viewchange
from medbench.consensus.pbft.messages import (
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    ViewChange,
)

ATTACKER = 3


def _attack_scenario(scheme: str) -> Network:
    """Replica 0 (primary, the one fault) commits a first batch that replica 3 cannot verify
    (MAC: a spoiled entry; signatures: it withholds the pre-prepare), then goes away."""
    net = Network(n=4, clients=1, seed=31, scheme=scheme, view_change_timeout_us=100_000,
                  client_timeout_us=100_000, checkpoint_interval=8, log_window=16)  # fmt: skip
    if scheme == "macs":
        net.nodes[0] = faults.PartialAuthenticator(net.nodes[0], [3])
    else:
        net.cut_link(0, 3)
    net.submit(4, b"first")
    assert net.run_until_idle(2_000_000)
    assert [r.last_executed for r in net.replicas()] == [1, 1, 1, 0]
    net.isolated.add(0)
    net.submit(4, b"second")
    return net


def test_mac_split_verdicts_block_the_view_change_while_the_faulty_replica_is_away() -> None:
    net = _attack_scenario("macs")
    r3 = net.replicas([3])[0]
    assert r3.rejections["not authentic"] == 1  # its entry of the first pre-prepare was spoiled
    assert not net.run_until_idle(3_000_000)  # the second request cannot commit
    assert r3.rejections["certificate pre-prepare not authentic"] >= 1  # honest VIEW-CHANGEs
    assert r3.rejections["view change: certificate pre-prepare not authentic"] >= 1  # NEW-VIEWs
    assert not r3.active and r3.last_new_view is None
    assert safety_violations(net, [1, 2, 3]) == []  # liveness lost, safety kept
    net.isolated.clear()  # the faulty replica votes again: 0, 1, 2 are a quorum
    assert net.run_until_idle(5_000_000)
    assert safety_violations(net, [1, 2, 3]) == []
    assert [r.last_executed for r in net.replicas([0, 1, 2])] == [2, 2, 2]


def test_with_signatures_the_same_attack_leaves_the_group_live() -> None:
    net = _attack_scenario("signatures")
    assert net.run_until_idle(3_000_000)  # replica 3 checks the certificate like anyone
    assert all(r.view >= 1 and r.active and r.last_executed == 2 for r in net.replicas([1, 2, 3]))
    assert safety_violations(net, [1, 2, 3]) == []


def _in_view_change() -> tuple[Network, list[int]]:
    """A view change to view 1 under way (its NEW-VIEW late); the honest replicas still
    entering it are returned."""
    net = Network(n=4, clients=1, seed=32, scheme="macs", view_change_timeout_us=50_000,
                  client_timeout_us=60_000, checkpoint_interval=8, log_window=16)  # fmt: skip
    net.submit(4, b"op")
    assert net.run_until_idle(2_000_000)
    net.nodes[0] = faults.SilentPrimary(net.nodes[0])  # it only omits: it still checks honestly
    net.extra_delay[1] = 30_000  # the new primary's NEW-VIEW arrives late
    net.submit(4, b"op2")
    entering: list[int] = []
    for _ in range(500):
        net.run(1_000)
        entering = [r.node_id for r in net.replicas([0, 2]) if r.view == 1 and not r.active]
        if 1 in net.replicas([ATTACKER])[0].own_view_changes and len(entering) == 2:
            break
    assert entering == [0, 2]
    return net, entering


def _sealed(net: Network, msg: object) -> object:
    return msg.with_auth(net.keyrings[ATTACKER].sign(msg.body()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("forgery", ["view-change", "certificate", "new-view"])
def test_mac_mode_cannot_forge_an_honest_replica_message(forgery: str) -> None:
    net, entering = _in_view_change()
    me = net.replicas([ATTACKER])[0]
    honest = net.replicas(entering)
    own = me.own_view_changes[1]
    if forgery == "view-change":  # its own view change, in replica 2's name
        msg = _sealed(
            net, ViewChange(1, own.stable_sequence, own.checkpoint_proof, own.prepared, 2)
        )
        src, why = 2, "not authentic"
    elif forgery == "certificate":  # a certificate of prepares "from" 1 and 2
        slot = next(s for s in me.log if s.proof is not None)
        pp = slot.proof.pre_prepare
        fake = tuple(
            _sealed(net, Prepare(pp.view, pp.sequence, pp.batch_digest, r)) for r in (1, 2)
        )
        msg = _sealed(net, ViewChange(1, own.stable_sequence, own.checkpoint_proof,
                                      (PreparedProof(pp, fake),), ATTACKER))  # fmt: skip
        src, why = ATTACKER, "certificate prepare not authentic"
    else:  # a NEW-VIEW in the name of the new primary, from real view changes
        held = net.replicas([2])[0].view_changes[1]
        vcs = tuple(held[r] for r in sorted(held))
        plan = viewchange.plan_new_view(vcs)
        pps = tuple(_sealed(net, PrePrepare(1, s, d, ts, batch, 1))
                    for s, (ts, batch, d) in sorted(plan.batches.items()))  # fmt: skip
        msg = _sealed(net, NewView(1, vcs, pps, 1))
        src, why = ATTACKER, "not authentic"
    for r in honest:
        before = r.rejections[why]
        net.deliver_now(src, r.node_id, msg)
        assert r.rejections[why] == before + 1, (r.node_id, dict(r.rejections))
        assert not r.active and r.view == 1
    assert all(ATTACKER not in r.view_changes.get(1, {}) or r.view_changes[1][ATTACKER] == own
               for r in honest)  # fmt: skip
