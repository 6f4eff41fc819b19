"""The simulator adapter of PBFT: shared modeled keyrings, costs, note names, parameters."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medbench import experiments
from medbench.consensus.auth import Scheme, make_keyrings
from medbench.experiments.load import WORKLOAD_DEFAULTS
from medbench.experiments.pbft import PBFT_DEFAULTS, SimNode, build, shared_keyrings
from medbench.node import Note, Ready

SEED = b"s" * 32


@settings(max_examples=200, deadline=None)
@given(
    sender=st.integers(-2, 6),
    body=st.binary(max_size=40),
    tamper=st.booleans(),
    auth=st.one_of(st.none(), st.binary(max_size=20), st.tuples(st.binary(max_size=4))),
)
def test_shared_memo_gives_the_same_verdicts(
    sender: int, body: bytes, tamper: bool, auth: object
) -> None:
    """Memoised checks answer exactly as the plain modeled keyring, forged or not, twice."""
    plain = make_keyrings(Scheme.MODELED, 4, [4, 5], seed=SEED)
    shared = shared_keyrings(Scheme.MODELED, 4, [4, 5], seed=SEED)
    if auth is None and 0 <= sender <= 5:
        auth = plain[sender].sign(body)
        if tamper:
            body = body + b"!"
    for receiver in (1, 2, 1):
        want = plain[receiver].verify(sender, body, auth)  # type: ignore[arg-type]
        got = shared[receiver].verify(sender, body, auth)  # type: ignore[arg-type]
        assert got == want
    assert shared[1].verifies == plain[1].verifies == 2


def test_other_schemes_are_the_plain_keyrings() -> None:
    """Signatures and MACs are not memoised."""
    rings = shared_keyrings(Scheme.MACS, 4, [4], seed=SEED)
    assert type(rings[0]).__name__ == "MacKeyring"


def test_costs_follow_the_keyring_counters() -> None:
    """take_costs reports signs and verifies since the last call, then nothing."""
    rings = shared_keyrings(Scheme.MODELED, 4, [4], seed=SEED)

    class Quiet:
        node_id = 0
        _ready = Ready()

        def step(self, src: int, msg: object) -> Ready:
            return self._ready

        def tick(self, now: int) -> Ready:
            return self._ready

    node = SimNode(Quiet(), rings[0])
    assert node.take_costs() == {}
    tag = rings[0].sign(b"x")
    rings[0].verify(0, b"x", tag)
    rings[0].verify(0, b"x", tag)
    assert node.take_costs() == {"sign": 1, "verify": 2}
    assert node.take_costs() == {}
    macs = shared_keyrings(Scheme.MACS, 4, [4], seed=SEED)
    node = SimNode(Quiet(), macs[0])
    macs[0].sign(b"x")  # an authenticator: one MAC per replica
    assert node.take_costs() == {"hash": 8}


def test_view_change_notes_are_renamed() -> None:
    """The replica's view-change notes get the metric names view_change / new_view."""
    rings = shared_keyrings(Scheme.MODELED, 4, [4], seed=SEED)

    class Changing:
        node_id = 0

        def __init__(self) -> None:
            self._ready = Ready()

        def step(self, src: int, msg: object) -> Ready:
            self._ready = Ready(notes=[Note("view-change", 1), Note("new-view", 1)])
            return self._ready

        def tick(self, now: int) -> Ready:
            return Ready()

    node = SimNode(Changing(), rings[0])
    ready = node.step(1, object())
    node.take_costs()
    assert [n.kind for n in ready.notes] == ["view_change", "new_view"]


@pytest.mark.parametrize(
    "bad",
    [
        {"n": 0},
        {"batch": 0},
        {"auth": "rot13"},
        {"block_mode": "sideways"},
        {"requests": "many"},
        {"requets": 10},
        {"n": True},
        {"load": "sideways"},
        {"byzantine": "silent-primary", "byzantine_ids": "9"},
    ],
)
def test_bad_parameters_are_experiment_errors(bad: dict[str, object]) -> None:
    """Bad parameters raise ExperimentError, never a stray exception."""
    with pytest.raises(experiments.ExperimentError):
        build({"n": 4, **bad}, random.Random(0))


def test_defaults_build_a_live_group() -> None:
    """The defaults give n replicas plus the clients; the run completes every request."""
    dep = build({"n": 4}, random.Random(0))
    assert len(dep.nodes) == 4 + WORKLOAD_DEFAULTS["clients"]
    assert len(dep.submissions) == WORKLOAD_DEFAULTS["requests"]
    assert dep.params is not None and dep.params["batch"] == PBFT_DEFAULTS["batch"]
    row = experiments.run({"protocol": "pbft", "n": 4, "requests": 10}, 0)
    assert row["completed"] == 10 and row["safety"] and row["chain"] and row["liveness"]
    assert row["cpu_s.verify"] > 0 and row["cpu_s.sign"] > 0


@pytest.mark.parametrize("auth", ["signatures", "macs"])
def test_real_authentication_schemes_run(auth: str) -> None:
    """Ed25519 and MAC authenticators work end to end in the simulator."""
    row = experiments.run({"protocol": "pbft", "n": 4, "requests": 6, "auth": auth}, 1)
    assert row["completed"] == 6 and row["safety"] and row["liveness"]
