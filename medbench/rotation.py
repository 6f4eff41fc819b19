"""Who acts in turn: the primary of a view and the blocker of a chain length (docs/medical-chain.md
§1.5).

The one home of both rules; PBFT (:mod:`medbench.consensus.pbft.blocker`), the ledger's chain check
and the Medical Chain block format all ask these functions.

Theory of operation
-------------------
After accepting transactions for a while, every node computes ``B = L mod (N - 1)`` with ``L`` the
current chain length and ``N`` the number of validators; the primary is excluded from blocking
because it already carries all client traffic. The paper's worked example: ``L = 1, N = 4`` gives
``B = 1`` and ``VA_1`` builds the next block (with ``VA_0`` the primary of view 0).

The formula alone is ambiguous: read literally as "validator number B" it would pick the primary
whenever ``B`` equals the primary's index (e.g. ``B = 0`` in view 0), which the same paragraph
forbids, and it would never pick ``VA_{N-1}``. medbench reads it as **the B-th validator after the
primary in replica order, counting cyclically, where B = 0 stands for N - 1** (``L mod (N-1)`` and
``N-1`` are the same residue). This

* reproduces the worked example exactly (primary ``VA_0``, ``L = 1`` → ``VA_1``), and agrees with
  the literal reading for primary ``VA_0`` whenever ``B != 0``;
* never picks the primary, and rotates through all ``N - 1`` backups as ``L`` grows.

``L`` counts the genesis block, so the first block after genesis is made at ``L = 1`` and a block
at height ``h`` is expected from ``expected_blocker(h, validators, primary)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

V = TypeVar("V")


def primary_of(view: int, n: int) -> int:
    """The primary of ``view`` among replicas ``0..n-1``: ``v mod n`` (docs/medical-chain.md
    §1.1)."""
    if n < 1:
        raise ValueError("need at least one replica")
    return view % n


def blocker_offset(chain_length: int, n_validators: int) -> int:
    """The blocker's distance after the primary in replica order, in ``1 .. N-1``."""
    if n_validators < 2:
        raise ValueError("blocker rotation needs at least 2 validators")
    if chain_length < 0:
        raise ValueError("chain length is non-negative")
    b = chain_length % (n_validators - 1)
    return b if b else n_validators - 1


def expected_blocker(chain_length: int, validators: Sequence[V], primary: V) -> V:
    """The validator that must build the block made when the chain has ``chain_length`` blocks.

    ``validators`` are in replica order (``VA_0 .. VA_{N-1}``); ``primary`` is one of them (the
    primary of the current view, ``v mod N``). ``expected_blocker(1, [VA_0..VA_3], VA_0)`` is
    ``VA_1``, as in docs/medical-chain.md §1.5.
    """
    n = len(validators)
    try:
        p = list(validators).index(primary)
    except ValueError:
        raise ValueError("the primary is not one of the validators") from None
    return validators[(p + blocker_offset(chain_length, n)) % n]


def blocker_for(chain_length: int, view: int, n: int) -> int:
    """The replica index that builds the next block: ``VA_{(p + B) mod N}``, ``B = L mod (N-1)``.

    ``p = view mod N`` is the primary, never the blocker (worked example:
    ``blocker_for(1, 0, 4) == 1``).
    """
    return (primary_of(view, n) + blocker_offset(chain_length, n)) % n
