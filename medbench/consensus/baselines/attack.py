"""The 51% attack on PoW (docs/medical-chain.md §1.8: "control 51% of the hash power to tamper and
forge").

Theory of operation
-------------------
A double-spending attacker with a share ``q`` of the hash power mines a private branch from the
block before the victim's transaction, while the honest miners (share ``p = 1 - q``) extend the
public chain. The merchant waits until the victim's block is ``z`` deep. The attacker wins if its
branch ever becomes strictly heavier than the public one after that, at which moment it releases
the branch and every honest node reorganises onto it.

Because both sides mine Poisson processes, the sequence of who finds the next block is a series
of independent coin flips with P(attacker) = ``q``: :func:`simulate_double_spend` plays that race
with an injected generator (bounded by ``max_blocks``; the attacker gives up when ``give_up``
blocks behind), and :func:`rosenfeld` gives the exact probability (Rosenfeld 2014's method, which
corrects Nakamoto's Poisson approximation, with the strict lead that first-seen fork choice
demands): ``1`` when ``q >= p``.
:class:`PrivateMiner` is the same attacker as a real node, for runs under a driver.
"""

from __future__ import annotations

from math import comb
from typing import Any

from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import Rng
from medbench.consensus.baselines.pow import PowBlock, PowNode, PowParams
from medbench.node import Note, Ready, Send


def rosenfeld(q: float, z: int) -> float:
    """Exact probability that an attacker of hash share ``q`` ever gets strictly ahead.

    When the honest side has found ``z`` blocks the attacker has found ``m`` with the negative
    binomial law ``C(m+z-1, m) p^z q^m``; from a deficit ``d`` a random walk with up-probability
    ``q < 1/2`` ever gains ``d`` steps with probability ``(q/p)^d`` (Rosenfeld 2014). The attacker
    needs a strict lead (a tie loses to the block seen first), so ``d = z - m + 1``.
    """
    if not 0 <= q <= 1 or z < 1:
        raise ValueError("need 0 <= q <= 1 and z >= 1")
    p = 1.0 - q
    if q >= p:
        return 1.0
    lose = sum(
        comb(m + z - 1, m) * p**z * q**m * (1.0 - (q / p) ** (z - m + 1)) for m in range(z + 1)
    )
    return min(1.0, max(0.0, 1.0 - lose))


def simulate_double_spend(
    q: float, z: int, trials: int, rng: Rng, give_up: int = 50, max_blocks: int = 2000
) -> float:
    """Fraction of ``trials`` in which the attacker's private branch overtakes (see module doc)."""
    if not 0 <= q <= 1 or z < 1 or trials < 1:
        raise ValueError("need 0 <= q <= 1, z >= 1, trials >= 1")
    scale = 1 << 53
    threshold = int(q * scale)
    wins = 0
    for _ in range(trials):
        honest = attacker = 0
        for _ in range(max_blocks):
            if rng.below(scale) < threshold:
                attacker += 1
            else:
                honest += 1
            if honest >= z and attacker > honest:
                wins += 1
                break
            if honest - attacker > give_up:
                break
    return wins / trials


def attack_curve(shares: list[float], z: int, trials: int, rng: Rng) -> list[dict[str, float]]:
    """Success probability against hash share: simulated and exact, one row per share."""
    return [
        {
            "share": q,
            "confirmations": z,
            "simulated": simulate_double_spend(q, z, trials, rng),
            "exact": rosenfeld(q, z),
        }
        for q in shares
    ]


class PrivateMiner(PowNode):
    """A PoW attacker that mines a private branch and releases it once heavier and ``z`` deep.

    It starts the branch at its first tick (from the head then) and keeps mining on it whatever
    the honest miners publish, unless they lead by more than ``give_up`` blocks (then it adopts
    their head and starts again). When its branch is heavier than the best public block and the
    public chain has grown ``release_depth`` blocks past the fork point, it sends every withheld
    block to its peers; the honest nodes then reorganise (their commits at depth below
    ``release_depth`` are reverted).
    """

    def __init__(
        self,
        node_id: int,
        n: int,
        params: PowParams,
        rng: Rng,
        release_depth: int,
        give_up: int = 1000,
    ) -> None:
        super().__init__(node_id, n, params, rng)
        self.release_depth = release_depth
        self.give_up = give_up
        self.fork = self.tree.head
        self.private_tip = self.tree.head
        self.public_tip = self.tree.head
        self.withheld: list[PowBlock] = []
        self.releases = 0
        self.released_blocks = 0

    def mining_parent(self) -> Entry:
        """Always the private tip."""
        return self.private_tip

    def publish(self, block: PowBlock, ready: Ready) -> None:
        """Withhold: remember the block instead of sending it."""
        self.withheld.append(block)

    def mine_block(self, ready: Ready) -> Entry | None:
        """Extend the private branch, then release it if it now wins."""
        entry = super().mine_block(ready)
        if entry is not None:
            self.private_tip = entry
        self.maybe_release(ready)
        return entry

    def after_add(self, added: list[Entry], ready: Ready) -> Any:
        """Also track the heaviest block the honest miners published."""
        for e in added:
            if e.block.miner != self.node_id and e.total > self.public_tip.total:
                self.public_tip = e
        return super().after_add(added, ready)

    def handle_block(self, src: int, msg: PowBlock, ready: Ready) -> None:
        """Insert the honest block; give up if hopelessly behind; maybe release."""
        super().handle_block(src, msg, ready)
        lead = self.public_tip.height - self.private_tip.height
        if lead > self.give_up:
            self.fork = self.private_tip = self.public_tip
            self.withheld.clear()
            ready.notes.append(Note("attack_abandoned", lead))
        self.maybe_release(ready)

    def maybe_release(self, ready: Ready) -> bool:
        """Send the withheld branch if it is heavier and the public chain is deep enough."""
        deep = self.public_tip.height - self.fork.height >= self.release_depth
        if not self.withheld or not deep or self.private_tip.total <= self.public_tip.total:
            return False
        if self.peers:
            for block in self.withheld:
                ready.messages.append(Send(self.peers, block))
        self.releases += 1
        self.released_blocks += len(self.withheld)
        ready.notes.append(Note("attack_released", len(self.withheld)))
        self.withheld.clear()
        self.fork = self.public_tip = self.private_tip
        return True

    def stats(self) -> dict[str, int]:
        """PoW figures plus releases."""
        out = super().stats()
        out.update(releases=self.releases, released_blocks=self.released_blocks)
        return out


__all__ = ["PrivateMiner", "attack_curve", "rosenfeld", "simulate_double_spend"]
