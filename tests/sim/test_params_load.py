"""Declared parameters (one schema per protocol), the shared workload and its load shapes."""

from __future__ import annotations

import itertools
import json
import random
import statistics
import warnings

import pytest

from medbench import cli, experiments
from medbench.experiments import load, params, size, toy
from medbench.experiments.params import RunParams, param


def test_every_registered_protocol_declares_its_parameters() -> None:
    """A protocol registered without a schema fails here, not at a user's sweep."""
    for name in experiments.protocols():
        schema = params.schema_for(name)
        rows = schema.table()
        names = {r["name"] for r in rows}
        assert set(load.WORKLOAD_FIELDS) <= names and {"n", "faults", "topology"} <= names
        for r in rows:
            assert r["help"], f"{name}.{r['name']} has no help"
            assert r["type"] and r["group"] in ("simulator", "workload", "protocol")
        full = params.resolve({"protocol": name})
        assert set(full) == names | {"protocol"}


def test_one_workload_with_the_same_defaults_for_every_protocol() -> None:
    workloads = {
        name: {k: params.resolve({"protocol": name})[k] for k in load.WORKLOAD_FIELDS}
        for name in experiments.protocols()
    }
    assert all(w == load.WORKLOAD_DEFAULTS for w in workloads.values())
    assert load.WORKLOAD_DEFAULTS["rate_tps"] == 50.0 and load.WORKLOAD_DEFAULTS["clients"] == 4


def test_unknown_names_wrong_types_and_bools_are_refused() -> None:
    with pytest.raises(experiments.ExperimentError, match=r"did you mean 'requests'.*valid: "):
        experiments.run({"protocol": "pbft", "requets": 10}, 0)
    with pytest.raises(experiments.ExperimentError, match="did you mean 'pbft'"):
        params.resolve({"protocol": "pbfy"})
    for bad in ({"n": "four"}, {"n": True}, {"loss": 1.5}, {"payload_bytes": -1}):
        with pytest.raises(experiments.ExperimentError, match="parameter"):
            params.resolve({"protocol": "poa", **bad})
    with pytest.raises(experiments.ExperimentError, match="unknown parameter 'delegates'"):
        params.resolve({"protocol": "pow", "delegates": 3})
    assert params.resolve({"protocol": "pbft", "n": "7", "byzantine_ids": 1})["n"] == 7
    assert params.resolve({"protocol": "pbft", "byzantine_ids": 1})["byzantine_ids"] == "1"
    pow_ = params.resolve({"protocol": "pow", "hashrates": [1, 2, 3, 4]})
    assert pow_["hashrates"] == (1.0, 2.0, 3.0, 4.0)


def test_old_workload_names_are_deprecated_aliases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        got = params.resolve({"protocol": "pow", "txs": 7, "tx_bytes": 10, "interval_us": 700})
        assert got["requests"] == 7 and got["payload_bytes"] == 10
        assert got["rate_tps"] == pytest.approx(1e6 / 700)
        assert params.resolve({"protocol": "toy-quorum", "poisson": True})["load"] == "poisson"
        assert params.resolve({"protocol": "pbft", "interval_us": 0})["rate_tps"] == 0
        with pytest.raises(experiments.ExperimentError, match="not both"):
            params.resolve({"protocol": "pbft", "txs": 3, "requests": 4})
        # the alias gives exactly the old gaps
        arr = load.arrivals(
            load.workload(params.resolve({"protocol": "pbft", "interval_us": 700})),
            random.Random(0),
        )
    assert [a.at_us for a in arr[:4]] == [0, 700, 1400, 2100]


def test_a_new_protocol_declares_its_schema_in_a_few_lines() -> None:
    class TinyParams(RunParams):
        retry_us: int = param(500_000, "resend after this long", ge=1)
        colour: str = param("red", "a protocol option", "")

    def build(p: dict[str, object], rng: random.Random) -> experiments.Deployment:
        checked = TinyParams.resolve(p, "test-schema")
        return toy.build({k: v for k, v in checked.items() if k != "colour"}, rng)

    experiments.register_protocol("test-schema", build, schema=TinyParams)
    assert params.schema_for("test-schema") is TinyParams
    assert {r["name"]: r["unit"] for r in TinyParams.table()}["retry_us"] == "us"
    row = experiments.run({"protocol": "test-schema", "requests": 2, "colour": "blue"}, 0)
    assert row["completed"] == 2 and row["colour"] == "blue"
    with pytest.raises(experiments.ExperimentError, match="'colour'"):
        params.resolve({"protocol": "test-schema", "color": "blue"})


def test_medbench_params_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["params", "pbft"]) == 0
    out = capsys.readouterr().out
    for text in ("pbft parameters:", "workload (every protocol):", "batch", "requests", "tx/s"):
        assert text in out
    assert cli.main(["params", "pow", "--json", "--group", "protocol"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"hashrate", "confirmations", "attacker"} <= {r["name"] for r in rows}
    assert cli.main(["params"]) == 0
    assert "toy-quorum" in capsys.readouterr().out


W = dict(load.WORKLOAD_DEFAULTS)


@pytest.mark.parametrize("shape", load.LOAD_SHAPES)
def test_every_shape_offers_every_request_round_robin(shape: str) -> None:
    w = load.Workload(**{**W, "load": shape, "requests": 40, "clients": 3})
    arr = load.arrivals(w, random.Random(1))
    assert [a.index for a in arr] == list(range(40))
    assert [a.client for a in arr] == [i % 3 for i in range(40)]
    if shape != "closed":
        times = [a.at_us for a in arr]
        assert times == sorted(times) and all(a.after is None for a in arr)


def test_shapes_keep_their_promises() -> None:
    rng = random.Random(5)
    const = load.arrivals(load.Workload(requests=5, rate_tps=100.0), rng)
    assert [a.at_us for a in const] == [0, 10_000, 20_000, 30_000, 40_000]
    unpaced = load.arrivals(load.Workload(requests=3, rate_tps=0, start_us=7), rng)
    assert [a.at_us for a in unpaced] == [7, 7, 7]
    burst = load.arrivals(
        load.Workload(requests=6, rate_tps=100.0, burst_size=3, load="burst"), rng
    )
    assert [a.at_us for a in burst] == [0, 0, 0, 30_000, 30_000, 30_000]
    ramp = load.arrivals(
        load.Workload(requests=50, rate_tps=10.0, ramp_to_tps=100.0, load="ramp"), rng
    )
    gaps = [b.at_us - a.at_us for a, b in itertools.pairwise(ramp)]
    assert gaps[0] == 100_000 and gaps[-1] < 11_000 and gaps == sorted(gaps, reverse=True)
    assert ramp[-1].at_us == pytest.approx(
        load.offered_span_us(
            load.Workload(requests=50, rate_tps=10.0, ramp_to_tps=100.0, load="ramp")
        ),
        rel=0.05,
    )
    pw = load.Workload(requests=2000, rate_tps=1000.0, load="poisson")
    a, b = load.arrivals(pw, random.Random(9)), load.arrivals(pw, random.Random(9))
    assert a == b  # seeded
    gaps = [y.at_us - x.at_us for x, y in itertools.pairwise(a)]
    assert statistics.mean(gaps) == pytest.approx(1000, rel=0.1)
    assert statistics.pstdev(gaps) == pytest.approx(1000, rel=0.15)  # exponential: sd = mean
    closed = load.arrivals(
        load.Workload(requests=7, clients=2, outstanding=2, think_us=5, load="closed"), rng
    )
    assert [(a.after, a.at_us) for a in closed] == [(None, 0)] * 4 + [(0, 5), (1, 5), (2, 5)]
    with pytest.raises(ValueError, match="rate_tps > 0"):
        load.Workload(load="poisson", rate_tps=0)


@pytest.mark.parametrize("protocol", ["toy-quorum", "pbft", "central"])
def test_a_closed_loop_keeps_outstanding_requests_per_client(protocol: str) -> None:
    p = {"protocol": protocol, "requests": 12, "clients": 2, "outstanding": 1, "load": "closed"}
    sim, dep = experiments.build_simulator(p, 0)
    rec = sim.run(30_000_000, stop_when_complete=True)
    assert len(rec.completed) == 12
    chained = [s for s in dep.submissions if s.after is not None]
    assert len(chained) == 10
    for s in chained:  # each left only once its predecessor was answered
        assert rec.submitted[s.tx] >= rec.completed[s.after]


def test_a_stalled_closed_loop_counts_the_requests_never_sent() -> None:
    p = {"protocol": "toy-quorum", "requests": 6, "clients": 1, "load": "closed"}
    row = experiments.run({**p, "faults": "crash:0@0", "duration_ms": 200}, 0)
    assert row["liveness"] is False and row["not_issued"] == 5 and row["submitted"] == 1


def test_progress_is_reported_and_changes_nothing() -> None:
    p = {"protocol": "toy-quorum", "n": 4, "requests": 30, "rate_tps": 20.0, "jitter_us": 300}
    seen: list[tuple[int, int, int]] = []
    quiet = experiments.run(p, 3)
    loud = experiments.run(p, 3, progress=lambda *a: seen.append(a))
    assert loud["trace_digest"] == quiet["trace_digest"]
    assert [s[0] for s in seen] == [1_000_000]  # 30 requests at 20/s: 1.45 s of virtual time
    assert 0 < seen[0][1] < 30


def test_size_estimates_are_close_on_small_measured_runs() -> None:
    for p, tol in (({"protocol": "toy-quorum", "n": 7, "requests": 10}, 0.0),
                   ({"protocol": "pbft", "n": 7, "requests": 20}, 0.15)):  # fmt: skip
        full = params.resolve(p)
        est = params.schema_for(p["protocol"]).estimate(full)
        sim, _dep = experiments.build_simulator(p, 0)
        rec = sim.run(3_000_000)  # every message, to the end
        got = sum(rec.sent_msgs.values())
        assert est["messages"] == pytest.approx(got, rel=tol + 0.05)
    assert size.parse_bytes("4G") == 4e9 and size.parse_bytes("500mb") == 5e8
    with pytest.raises(ValueError):
        size.parse_bytes("-1")
    assert size.human_bytes(3.4e9) == "3.4 GB"
