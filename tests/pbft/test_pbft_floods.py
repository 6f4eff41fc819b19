"""Floods from one faulty replica cost its peers bounded memory and time.

Defect 9 of issue 13: one replica could send CHECKPOINTs for one sequence with any number of
digests (and at any sequence of the window), all kept until that sequence became stable.
Defect 10: a VIEW-CHANGE flood from one replica cost its peers quadratic time and left one
dictionary key per view.
"""

from __future__ import annotations

from medbench.consensus.pbft import Config, Replica, make_keyrings
from medbench.consensus.pbft.messages import Checkpoint, ViewChange

N = 4
KEYS = make_keyrings("modeled", N, range(N))


def _replica(node_id: int = 0, **config: int) -> Replica:
    return Replica(
        node_id, Config(n=N, checkpoint_interval=4, log_window=16, **config), KEYS[node_id]
    )


def _signed(msg, sender: int):  # type: ignore[no-untyped-def]
    object.__setattr__(msg, "auth", KEYS[sender].sign(msg.body()))
    return msg


def _held_checkpoint_votes(r: Replica) -> int:
    return sum(len(v) for by_digest in r.checkpoints._votes.values() for v in by_digest.values())


def test_checkpoint_votes_are_one_per_sender_and_sequence() -> None:
    r = _replica()
    notes = []
    for k in range(1000):
        digest = k.to_bytes(32, "big")
        notes += r.step(3, _signed(Checkpoint(4, digest, 3), 3)).notes
    assert _held_checkpoint_votes(r) == 1
    equivocations = [n for n in notes if n.kind == "equivocation"]
    assert len(equivocations) == 999
    kind, first, second = equivocations[0].detail
    assert kind == "checkpoint" and first.state_digest != second.state_digest


def test_checkpoints_off_the_interval_are_refused() -> None:
    r = _replica()
    for s in range(1, 17):
        r.step(3, _signed(Checkpoint(s, bytes(32), 3), 3))
    assert _held_checkpoint_votes(r) == 4  # 4, 8, 12, 16 only
    assert r.rejections["checkpoint off the interval"] == 12


def test_a_checkpoint_equivocator_cannot_block_a_real_proof() -> None:
    r = _replica()
    good = bytes(32)
    r.step(3, _signed(Checkpoint(4, b"\x01" * 32, 3), 3))  # the faulty replica votes first
    for sender in (1, 2, 3):
        r.step(sender, _signed(Checkpoint(4, good, sender), sender))
    # its second vote is evidence, not a vote; 2f+1 = 3 honest votes are needed (0 is us)
    r.add_checkpoint(_signed(Checkpoint(4, good, 0), 0))
    assert r.checkpoints.stable == 4
    assert r.checkpoints.stable_digest == good


def _view_change(view: int, sender: int = 3) -> ViewChange:
    return _signed(ViewChange(view, 0, (), (), sender), sender)


def test_view_change_flood_holds_a_bounded_number_of_views() -> None:
    """Each replica's view changes are kept for at most 4 views and no empty view is left
    behind, so the views a replica scans per message are bounded by 4n: a flood costs linear
    time, not quadratic."""
    r = _replica()
    for v in range(1, 2001):
        r.step(3, _view_change(v))
        assert len(r.view_changes) <= 4 * N
    held = sum(1 for by_sender in r.view_changes.values() if 3 in by_sender)
    assert held == 4
    assert all(r.view_changes.values())  # no empty per-view dictionaries left behind
