"""CPU cost of the PBFT replica per handled message (the hot path: PREPARE and COMMIT).

One round feeds a backup of an n = 64 group every PREPARE and COMMIT of ``SEQUENCES`` batches
(pre-prepares already accepted), so it measures counting, certificates, commit and execution.
``extra_info["us_per_message"]`` is the mean cost of one ``step``. Two authentication settings:
``modeled`` (keyed BLAKE2b tags: what a simulator runs, its cost is charged separately) and
``none`` (every authenticator accepted: the replica's own logic alone, cryptography excluded).
"""

from __future__ import annotations

from typing import Any

import pytest

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft import Config, Replica, make_keyrings
from medbench.consensus.pbft.messages import (
    Commit,
    Prepare,
    PrePrepare,
    Request,
    compute_batch_digest,
)

N = 64
SEQUENCES = 20


class AcceptAll(Keyring):
    """Signs nothing and accepts everything: isolates the replica's own CPU cost."""

    def sign(self, body: bytes, to: int | None = None) -> bytes:
        self.signs += 1
        return b""

    def verify(self, sender: int, body: bytes, auth: Any) -> bool:
        self.verifies += 1
        return True


def _prepared_backup(auth: str) -> tuple[Replica, list[tuple[int, Any]]]:
    config = Config(n=N, checkpoint_interval=1 << 20, log_window=1 << 21)
    keys: dict[int, Keyring]
    if auth == "none":
        keys = {i: AcceptAll(i, N) for i in range(N + 1)}
    else:
        keys = make_keyrings(auth, N, range(N + 1))

    def seal(msg: Any, signer: int) -> Any:
        object.__setattr__(msg, "auth", keys[signer].sign(msg.body()))
        msg.encode()  # the sender encoded it already (the driver sized it)
        return msg

    replica = Replica(1, config, keys[1])
    votes: list[tuple[int, Any]] = []
    for s in range(1, SEQUENCES + 1):
        req = seal(Request(N, s, b"op"), N)
        batch = (req,)
        d = compute_batch_digest(0, batch)
        replica.step(0, seal(PrePrepare(0, s, d, 0, batch, 0), 0))
        votes += [(j, seal(Prepare(0, s, d, j), j)) for j in range(2, N)]
        votes += [(j, seal(Commit(0, s, d, j), j)) for j in range(N) if j != 1]
    return replica, votes


@pytest.mark.parametrize("auth", ["none", "modeled"])
def test_replica_cost_per_vote(benchmark: Any, auth: str) -> None:
    def setup() -> tuple[tuple[Replica, list[tuple[int, Any]]], dict[str, Any]]:
        return (_prepared_backup(auth),), {}

    def run(state: tuple[Replica, list[tuple[int, Any]]]) -> Replica:
        replica, votes = state
        step = replica.step
        for src, msg in votes:
            step(src, msg)
        return replica

    replica = benchmark.pedantic(run, setup=setup, rounds=15, iterations=1)
    assert replica.last_executed == SEQUENCES
    messages = SEQUENCES * ((N - 2) + (N - 1))
    benchmark.extra_info["messages_per_round"] = messages
    benchmark.extra_info["us_per_message"] = benchmark.stats.stats.mean / messages * 1e6
