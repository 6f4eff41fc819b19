"""The gate's rate ratios: a throughput recorded in ``extra_info``, fast case over slow case."""

from __future__ import annotations

from benchmarks import gate


def _case(name: str, best: float, **extra: object) -> gate.Case:
    return gate.Case(name, best * 1.1, best, 3, dict(extra))


FLOORS = {
    "ratios": {
        "sim: hotstuff / pbft": {
            "slow": "test_sim[pbft]",
            "fast": "test_sim[hotstuff]",
            "rate": "messages_per_second",
            "floor": 0.5,
            "goal": None,
        }
    },
    "counts": {},
}


def test_rate_ratio_is_the_fast_rate_over_the_slow_rate() -> None:
    cases = {
        "test_sim[pbft]": _case("test_sim[pbft]", 2.0, messages_per_second=200_000),
        "test_sim[hotstuff]": _case("test_sim[hotstuff]", 9.0, messages_per_second=150_000),
    }
    (r,) = gate.compute_ratios(cases, FLOORS, measure_openssl=False)
    assert r.value == 0.75 and not r.failed  # times are ignored: the recorded rates count
    cases["test_sim[hotstuff]"] = _case("test_sim[hotstuff]", 9.0, messages_per_second=90_000)
    (r,) = gate.compute_ratios(cases, FLOORS, measure_openssl=False)
    assert r.below_floor and r.failed


def test_a_rate_that_was_not_recorded_fails() -> None:
    cases = {
        "test_sim[pbft]": _case("test_sim[pbft]", 2.0, messages_per_second=200_000),
        "test_sim[hotstuff]": _case("test_sim[hotstuff]", 9.0),
    }
    (r,) = gate.compute_ratios(cases, FLOORS, measure_openssl=False)
    assert r.value is None and r.missing and r.failed
