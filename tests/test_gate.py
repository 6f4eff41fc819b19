"""The benchmark gate: ratios against floors, exact counts, the openssl comparison."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks import gate

FLOORS = {
    "ratios": {
        "root: reference / native": {
            "slow": "test_root[reference]",
            "fast": "test_root[native]",
            "floor": 5.0,
            "goal": 15,
        },
        "full only: reference / native": {
            "slow": "test_big[reference]",
            "fast": "test_big[native]",
            "floor": 5.0,
            "goal": None,
        },
        gate.OPENSSL_RATIO: {"floor": 1.0, "goal": 3.33},
    },
    "counts": {
        "test_root[native]": {"leaves": 8, "hash_calls": 15},
        "test_big[native]": {"leaves": 1 << 20},
    },
    "full_cases": ["test_big[reference]", "test_big[native]"],
}


def _case(name: str, best: float, **extra: object) -> dict[str, object]:
    stats = {"mean": best * 1.1, "min": best, "rounds": 3}
    return {"name": name, "stats": stats, "extra_info": extra}


def _write(tmp_path: Path, benchmarks: list[dict[str, object]]) -> Path:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"benchmarks": benchmarks}))
    (tmp_path / "floors.json").write_text(json.dumps(FLOORS))
    return path


@pytest.fixture(autouse=True)
def _floors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "FLOORS_FILE", tmp_path / "floors.json")


def test_check_passes_and_reports_every_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _write(
        tmp_path,
        [
            _case("test_root[reference]", 1.0),
            _case("test_root[native]", 0.1, leaves=8, hash_calls=15, hashes=10),
            _case("test_sha256_many[native]", 0.001, hashes=1000, **{gate.OPENSSL_KEY: 3000.0}),
        ],
    )
    assert gate.main(["check", str(run)]) == 0
    out = capsys.readouterr().out
    assert "root: reference / native" in out and "10.00" in out
    assert "not run: test_big[reference], test_big[native] (full only)" in out
    assert "goal missed" in out  # 10 < 15: reported, not gated


def test_ratio_below_floor_fails_check_but_not_report(tmp_path: Path) -> None:
    run = _write(
        tmp_path,
        [
            _case("test_root[reference]", 1.0),
            _case("test_root[native]", 0.5, leaves=8, hash_calls=15),
        ],
    )
    assert gate.main(["check", str(run)]) == 1
    assert gate.main(["report", str(run)]) == 0


def test_count_mismatch_fails_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write(
        tmp_path,
        [
            _case("test_root[reference]", 1.0),
            _case("test_root[native]", 0.1, leaves=8, hash_calls=14),
        ],
    )
    assert gate.main(["check", str(run)]) == 1
    assert "hash_calls = 14, committed 15" in capsys.readouterr().out


def test_openssl_ratio_uses_the_recorded_measurement(tmp_path: Path) -> None:
    cases = gate.load_cases(
        _write(
            tmp_path,
            [_case("test_sha256_many[native]", 0.001, hashes=1000, **{gate.OPENSSL_KEY: 3000.0})],
        )
    )
    (ratio,) = [
        r
        for r in gate.compute_ratios(cases, gate.load_floors(), measure_openssl=False)
        if r.name == gate.OPENSSL_RATIO
    ]
    assert ratio.value == pytest.approx(3.0)  # 3000 ns/hash openssl vs 1000 ns/hash native
    assert not ratio.failed


def test_missing_openssl_skips_only_that_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert gate.openssl_ns_per_hash() is None
    cases = gate.load_cases(
        _write(tmp_path, [_case("test_sha256_many[native]", 0.001, hashes=1000)])
    )
    ratios = gate.compute_ratios(cases, gate.load_floors(), measure_openssl=True)
    (ratio,) = [r for r in ratios if r.name == gate.OPENSSL_RATIO]
    assert ratio.value is None and "openssl not available" in ratio.note


def test_parse_openssl_speed_output() -> None:
    out = "type             64 bytes\nsha256          164271.94k\n"
    assert gate.parse_openssl_speed(out) == pytest.approx(64 / 164271940 * 1e9)
    assert gate.parse_openssl_speed("garbage") is None


def test_usage_and_empty_files(tmp_path: Path) -> None:
    assert gate.main(["nonsense"]) == 2
    assert gate.main(["check", str(_write(tmp_path, []))]) == 1
    assert gate.main(["check", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "junk.json").write_text("{not json")
    assert gate.main(["report", str(tmp_path / "junk.json")]) == 2
    (tmp_path / "shape.json").write_text('{"benchmarks": [{"name": "x"}]}')
    assert gate.main(["check", str(tmp_path / "shape.json")]) == 2


def test_committed_floors_name_real_cases() -> None:
    floors = json.loads((Path(gate.__file__).with_name("floors.json")).read_text())
    here = Path(gate.__file__).parent
    source = "".join(f.read_text() for f in sorted(here.glob("test_*.py")))
    for name, spec in floors["ratios"].items():
        assert spec["floor"] is not None and spec["floor"] > 0, name
        if spec.get("goal") is not None:
            assert spec["goal"] >= spec["floor"], f"{name}: goal below its floor"
        for side in ("slow", "fast", "case"):
            if side in spec:
                assert spec[side].split("[")[0] in source


def test_every_family_is_gated_against_the_reference() -> None:
    """Each benchmark file (family) has its cases gated by a ratio to the reference workload."""
    floors = json.loads((Path(gate.__file__).with_name("floors.json")).read_text())
    gated = {s["case"] for s in floors["ratios"].values() if s.get("against") == "reference"}
    here = Path(gate.__file__).parent
    for path in sorted(here.glob("test_*.py")):
        family = path.stem.removeprefix("test_")
        if family == "reference":
            continue
        names = {c.split("[")[0] for c in gated}
        defined = {
            line.split("(")[0].removeprefix("def ")
            for line in path.read_text().splitlines()
            if line.startswith("def test_")
        }
        assert names & defined, f"no case of benchmarks/{path.name} is gated"


def test_reference_ratio_uses_the_time_recorded_beside_the_case(tmp_path: Path) -> None:
    floors = {
        "ratios": {"sim vs reference": {"against": "reference", "case": "test_sim", "floor": 2.0}},
        "counts": {},
    }
    (tmp_path / "floors.json").write_text(json.dumps(floors))
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"benchmarks": [_case("test_sim", 0.01, reference_s=0.03)]}))
    assert gate.main(["check", str(ok)]) == 0  # 3.0 >= 2.0
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps({"benchmarks": [_case("test_sim", 0.02, reference_s=0.03)]}))
    assert gate.main(["check", str(slow)]) == 1  # 1.5x slower: 1.5 < 2.0
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"benchmarks": [_case("test_sim", 0.01)]}))
    assert gate.main(["check", str(bare)]) == 1  # no reference time: not measured


def test_proposed_floors_fail_a_1_5x_regression(tmp_path: Path) -> None:
    runs = []
    for k, noise in enumerate((1.0, 1.1, 0.95)):
        path = tmp_path / f"r{k}.json"
        cases = [
            _case("test_a", 0.010 * noise, reference_s=0.03),
            {**_case("test_b", 0.5, reference_s=0.05), "fullname": "benchmarks/test_x.py::test_b"},
        ]
        path.write_text(json.dumps({"benchmarks": cases}))
        runs.append(path)
    got = gate.propose(runs)
    spec = got["ratios"]["x: test_b vs reference"]
    assert spec["against"] == "reference" and spec["case"] == "test_b"
    a = next(v for k, v in got["ratios"].items() if v["case"] == "test_a")
    median = 0.03 / 0.010
    assert median / 1.5 < a["floor"] < 0.03 / (0.010 * 1.1)  # a 1.5x regression fails, noise not


def test_missing_required_ratio_case_fails_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The native case was skipped (extension not built): the gate must not pass silently.
    run = _write(tmp_path, [_case("test_root[reference]", 1.0)])
    assert gate.main(["check", str(run)]) == 1
    captured = capsys.readouterr()
    assert "FAIL (not run)" in captured.out
    assert "root: reference / native not measured: not run: test_root[native]" in captured.err
    assert "test_root[native]: not run" in captured.out  # its counts are missing too
    assert gate.main(["report", str(run)]) == 0


def test_missing_required_count_case_fails_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    floors = dict(FLOORS, counts={**FLOORS["counts"], "test_peer[pymerkle]": {"leaves": 8}})
    run = _write(
        tmp_path,
        [
            _case("test_root[reference]", 1.0),
            _case("test_root[native]", 0.1, leaves=8, hash_calls=15),
        ],
    )
    (tmp_path / "floors.json").write_text(json.dumps(floors))
    assert gate.main(["check", str(run)]) == 1
    assert "test_peer[pymerkle]: not run" in capsys.readouterr().out


def test_missing_count_key_fails_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _write(
        tmp_path,
        [_case("test_root[reference]", 1.0), _case("test_root[native]", 0.1, leaves=8)],
    )
    assert gate.main(["check", str(run)]) == 1
    assert "hash_calls = None, committed 15" in capsys.readouterr().out


def test_sha_ni_ratios_are_not_applicable_on_a_cpu_without_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    floors = {
        "ratios": {
            "x1 / x4": {
                "slow": "t[x1]",
                "fast": "t[x4]",
                "floor": 1.2,
                "goal": None,
                "needs_sha_ni": True,
            },
            "ref / native": {"slow": "t[ref]", "fast": "t[x4]", "floor": 5.0, "goal": None},
        },
        "counts": {"t[x1]": {"leaves": 8}},
        "sha_ni_cases": ["t[x1]"],
        "full_cases": [],
    }
    (tmp_path / "floors.json").write_text(json.dumps(floors))
    cases = [_case("t[ref]", 1.0), _case("t[x4]", 0.1)]  # the x1 case skipped itself
    run = tmp_path / "run.json"
    run.write_text(json.dumps({"machine_info": {"medbench_sha_ni": False}, "benchmarks": cases}))
    assert gate.main(["check", str(run)]) == 0
    out = capsys.readouterr().out
    assert "x1 / x4" in out and "not applicable" in out
    # The same file from a CPU that has them: the skipped case is a failure again.
    run.write_text(json.dumps({"machine_info": {"medbench_sha_ni": True}, "benchmarks": cases}))
    assert gate.main(["check", str(run)]) == 1
    # Ratios without the mark are gated either way.
    slow = [_case("t[ref]", 0.2), _case("t[x4]", 0.1)]
    run.write_text(json.dumps({"machine_info": {"medbench_sha_ni": False}, "benchmarks": slow}))
    assert gate.main(["check", str(run)]) == 1


def test_committed_full_cases_are_marked_full_in_the_suite() -> None:
    floors = json.loads((Path(gate.__file__).with_name("floors.json")).read_text())
    named = {
        spec[side]
        for spec in floors["ratios"].values()
        for side in ("slow", "fast")
        if side in spec
    }
    named |= set(floors["counts"])
    assert set(floors["full_cases"]) <= named
    # Every full case is a 2^20 Merkle root: the cases the suite marks `full`.
    assert all(
        c.startswith("test_merkle_root[") and c.endswith("-2^20]") for c in floors["full_cases"]
    )


# --- the counts are measured, not derived ---------------------------------------------------------


def _rfc_hash_calls(n: int) -> int:
    """Hash invocations of the RFC 9162 MTH recursion: H(b"") for 0, else one per node."""
    if n <= 1:
        return 1
    k = 1 << ((n - 1).bit_length() - 1)
    return 1 + _rfc_hash_calls(k) + _rfc_hash_calls(n - k)


@pytest.mark.parametrize("group", ["merkle", "hashing"])
def test_measure_work_counts_real_calls(group: str) -> None:
    from benchmarks.test_primitives import measure_work
    from medbench import backend

    modules = [backend.reference(group)]
    native = backend.native(group)
    if native is not None and not backend.pure_python_forced():
        modules.append(native)
    for module in modules:
        if group == "hashing":
            msgs = [bytes(n) for n in (0, 55, 56, 64, 65, 300)]
            work = measure_work(module, module.sha256_many, msgs)
            assert work["hash_calls"] == len(msgs)
            if "compressions" in work:  # (L + 9) / 64 rounded up, per FIPS 180-4 padding
                assert work["compressions"] == sum((len(m) + 72) // 64 for m in msgs)
            continue
        for n in range(10):
            leaves = [bytes([i]) * 32 for i in range(n)]
            assert measure_work(module, module.root, leaves)["hash_calls"] == _rfc_hash_calls(n)

        def twice(leaves: list[bytes], m: ModuleType = module) -> None:
            m.root(leaves)
            m.root(leaves[:3])

        leaves = [bytes([i]) * 32 for i in range(8)]
        assert measure_work(module, twice, leaves)["hash_calls"] == 15 + 5
    # The reference's hash constructor is restored after counting.
    import hashlib

    assert backend.reference(group)._sha256 is hashlib.sha256
