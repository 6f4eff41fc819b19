"""Hostile input: any message of any kind, in any replica state, never crashes a replica and
never breaks safety (Hypothesis; the model is h2's state-machine property tests).

Replica 3 is the attacker: it can authenticate anything in its own name, replay and mutate what
it has seen, and put anyone's name on a message (without their key). Honest replicas 0-2 must
stay safe, and once the attacker stops, every request still completes.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pbft_harness import Network, safety_violations, sample_messages

from medbench import faults
from medbench.consensus.pbft import make_keyrings
from medbench.consensus.pbft.messages import (
    Block,
    Checkpoint,
    Commit,
    Fetch,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    State,
    StateBatch,
    ViewChange,
    compute_batch_digest,
)

ATTACKER = 3
SAMPLES = sample_messages(make_keyrings("modeled", 4, range(6), seed=b"test-0"))

small = st.integers(0, 6)
views = st.sampled_from([0, 0, 0, 1, 2, 7, 2**40])
seqs = st.sampled_from([0, 1, 2, 3, 4, 5, 8, 16, 17, 64, 2**40])
digests = st.one_of(st.binary(min_size=32, max_size=32), st.just(bytes(32)))
replicas = st.integers(0, 5)
auths = st.one_of(st.just(b""), st.binary(max_size=20), st.just("sign"))
requests = st.builds(Request, st.integers(0, 6), st.integers(0, 5), st.binary(max_size=8))
blocks = st.builds(
    Block, views, small, digests, st.integers(-1, 5), st.tuples(digests), st.integers(0, 9)
)
items = st.lists(st.one_of(requests, blocks), max_size=3).map(tuple)


@st.composite
def pre_prepares(draw: st.DrawFn) -> PrePrepare:
    batch = draw(items)
    ts = draw(st.integers(0, 5))
    d = compute_batch_digest(ts, batch) if draw(st.booleans()) else draw(digests)
    return PrePrepare(draw(views), draw(seqs), d, ts, batch, draw(replicas))


checkpoints = st.builds(Checkpoint, seqs, digests, replicas)
prepares = st.builds(Prepare, views, seqs, digests, replicas)
proofs = st.builds(PreparedProof, pre_prepares(), st.lists(prepares, max_size=3).map(tuple))
view_changes = st.builds(
    ViewChange,
    views,
    seqs,
    st.lists(checkpoints, max_size=3).map(tuple),
    st.lists(proofs, max_size=2).map(tuple),
    replicas,
)
hostile = st.one_of(
    requests,
    blocks,
    pre_prepares(),
    prepares,
    st.builds(Commit, views, seqs, digests, replicas),
    st.builds(Reply, views, small, small, replicas, st.binary(max_size=4)),
    checkpoints,
    view_changes,
    st.builds(
        NewView,
        views,
        st.lists(view_changes, max_size=3).map(tuple),
        st.lists(pre_prepares(), max_size=2).map(tuple),
        replicas,
    ),
    st.builds(Fetch, seqs, replicas),
    st.builds(
        State,
        seqs,
        seqs,
        st.lists(st.builds(StateBatch, seqs, small, items), max_size=2).map(tuple),
        st.lists(checkpoints, max_size=3).map(tuple),
        replicas,
    ),
    st.sampled_from(SAMPLES),
    st.just(object()),
    st.just(None),
)


def _mutate(net: Network, pick: int, field: str, delta: int) -> Any:
    """A recently sent real message with one field changed (its authenticator kept)."""
    if not net.recent:
        return None
    msg = net.recent[pick % len(net.recent)]
    names = [f.name for f in dataclasses.fields(msg) if f.init and f.name != "auth"]
    name = field if field in names else names[delta % len(names)]
    value = getattr(msg, name)
    if isinstance(value, bool) or not isinstance(value, (int, bytes, tuple)):
        return msg
    if isinstance(value, int):
        value = max(0, value + delta)
    elif isinstance(value, bytes):
        value = bytes([(value[0] + 1) % 256]) + value[1:] if value else b"x"
    else:
        value = value[1:] + value[:1]
    values = {f: getattr(msg, f) for f in names}
    values[name] = value
    try:
        return type(msg)(**values, auth=msg.auth)
    except ValueError:
        return msg


mutations = st.tuples(
    st.just("mutate"),
    st.integers(0, 255),
    st.sampled_from(["view", "sequence", "batch_digest", "replica", "timestamp", "batch"]),
    st.integers(-2, 3),
)


def _arm(net: Network, msg: Any, how: str) -> Any:
    """Give ``msg`` the attacker's authenticator, or a garbage one."""
    if isinstance(msg, tuple) and msg and msg[0] == "mutate":
        msg = _mutate(net, *msg[1:])
    if not hasattr(msg, "body") or how == "keep":
        return msg
    if how == "sign":  # a copy: the original may be in flight (and a client may resend it)
        return msg.with_auth(net.keyrings[ATTACKER].sign(msg.body()))
    return msg


@settings(max_examples=int(os.environ.get("PBFT_HOSTILE_EXAMPLES", "60")), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(hostile, mutations),
            st.sampled_from(["sign", "keep"]),
            st.integers(0, 2),  # target replica
            st.sampled_from([ATTACKER, ATTACKER, 0, 1, 2, 4, 5]),  # claimed transport source
            st.integers(0, 30_000),  # when
        ),
        min_size=1,
        max_size=25,
    ),
    st.booleans(),
)
def test_hostile_messages_never_crash_or_break_safety(
    attacks: list[tuple[Any, str, int, int, int]], silent_primary: bool
) -> None:
    net = Network(
        n=4,
        clients=2,
        seed=0,
        checkpoint_interval=2,
        log_window=4,
        view_change_timeout_us=50_000,
        client_timeout_us=60_000,
    )
    if silent_primary:  # the primary is the attacker's accomplice: views change meanwhile
        net.nodes[0] = faults.SilentPrimary(net.nodes[0])
    for k in range(3):
        for c in net.client_ids:
            net.submit(c, b"op%d" % k)
    for msg, how, dst, src, when in sorted(attacks, key=lambda a: a[4]):
        net.run(max(0, when - net.now % 30_000) // 4 + 1)
        net.deliver_now(src if src != dst else ATTACKER, dst, _arm(net, msg, how))
    honest = [1, 2] if silent_primary else [0, 1, 2]
    assert net.run_until_idle(20_000_000, step_us=20_000)
    assert safety_violations(net, honest) == []
    assert len(net.completed) == net.submitted
