"""``medbench selfcheck``: what it prints, and that its quorum timing runs the counting path."""

from __future__ import annotations

from types import ModuleType

import pytest

from medbench import backend, cli
from medbench.cli import selfcheck
from medbench.reference import quorum as ref_quorum


def test_selfcheck_prints_version_backends_and_timings(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["selfcheck", "--log2-leaves", "6"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("medbench ")
    for group in backend.GROUPS:
        assert f"  {group:8s} " in out
    assert f"native core loaded: {backend.native_loaded()}" in out
    for label in ("sha256_many 65-byte msgs", "merkle root 2^6 leaves", "quorum votes"):
        assert label in out


def test_selfcheck_prints_the_native_error_of_every_group_that_fell_back(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = {
        g: {"backend": "reference", "implementation": "ref", "native_error": f"ImportError: {g}!"}
        for g in backend.GROUPS
    }
    info = {"pure_python_forced": False, "groups": groups, "native_loaded": False}
    monkeypatch.setattr(backend, "describe", lambda: info)
    assert cli.main(["selfcheck", "--log2-leaves", "4"]) == 0
    out = capsys.readouterr().out
    for g in backend.GROUPS:  # not only the last group's
        assert f"native error: ImportError: {g}!" in out


def test_quorum_workload_counts_every_vote(
    quorum_impl: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medbench import quorum

    seen: list[object] = []

    class Recording(quorum_impl.QuorumTracker):  # type: ignore[name-defined,misc]
        def add(self, *vote: object) -> object:
            status = super().add(*vote)
            seen.append(status)
            return status

    monkeypatch.setattr(quorum, "QuorumTracker", Recording)
    digests = [i.to_bytes(32, "big") for i in range(50)]
    tracker = selfcheck.quorum_workload(digests)
    s = ref_quorum.Status
    # Per sequence: two votes pending, the third reaches 2f+1 = 3, the fourth is counted after.
    assert seen == [s.PENDING, s.PENDING, s.REACHED, s.ALREADY] * len(digests)
    assert len(tracker) == len(digests)
    assert tracker.take_evidence() == []
