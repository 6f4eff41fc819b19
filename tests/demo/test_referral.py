"""``medbench demo referral``: docs/medical-chain.md §1.7 replayed, every attack caught,
deterministic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from medbench import cli
from medbench.consensus.pbft.byzantine import Byzantine
from medbench.demo import attacks, referral
from medbench.demo.deployment import DemoCheckFailed
from medbench.node import Send


@pytest.fixture(scope="module")
def report() -> list[str]:
    return referral.run_demo(0)


def test_every_step_appears_in_order(report: list[str]) -> None:
    heads = [line for line in report if line.startswith(("STEP", "ATTACKS"))]
    assert [h.split()[0] + (h.split()[1] if h.startswith("STEP") else "") for h in heads] == [
        "STEP1",
        "STEP2",
        "STEP3",
        "STEP4",
        "STEP5",
        "ATTACKS",
    ]
    text = "\n".join(report)
    assert "clear : role=patient sex=female age=30-39" in text
    assert "sealed:" in text and "Li Wei" not in text and "330101" not in text
    assert "condition 'hypertension' shown to D" in text
    assert "keys=PUB_KEY_D" in text and "PUB_KEY_HB" in text and "SIG_D + SIG_HB" in text
    assert "blocker=VA_1 (L = " in text and "B = L mod 3 = 1" in text


def test_pbft_trace_shows_three_phases(report: list[str]) -> None:
    start = report.index(next(x for x in report if x.startswith("STEP 4")))
    end = report.index(next(x for x in report if x.startswith("STEP 5")))
    trace = report[start + 1 : end]
    pre = [x for x in trace if "PRE-PREPARE" in x]
    prepares = [x for x in trace if " PREPARE " in x]
    commits = [x for x in trace if " COMMIT " in x]
    assert [x.split("->")[1].split()[0] for x in pre] == ["VA_1", "VA_2", "VA_3"]
    assert all("VA_0 ->" in x and "[req,req]" in x for x in pre)  # TX1 and TX2: one batch
    assert {x.split("->")[0].split()[-1] for x in prepares} == {"VA_1", "VA_2", "VA_3"}
    assert {x.split("->")[0].split()[-1] for x in commits} == {"VA_0", "VA_1", "VA_2", "VA_3"}
    assert len(prepares) == 9 and len(commits) == 12
    seqs = {re.search(r" n=(\d+) ", x).group(1) for x in pre + prepares + commits}  # type: ignore[union-attr]
    assert len(seqs) == 1


def test_each_attack_has_a_verdict(report: list[str]) -> None:
    start = report.index("ATTACKS (docs/medical-chain.md §1.7 item 6)")
    attacks = [x for x in report[start + 1 :] if re.match(r"  \d\. ", x)]
    notes = [x for x in report[start + 1 :] if x not in attacks]
    assert len(notes) == 1 and "sealed to the validators' access key" in notes[0]
    assert "P's keys appear in none of the" in notes[0]
    expected = [
        "TX1 leaked",
        "TX2 leaked",
        "record altered",
        "record deleted",
        "primary drops the request",
        "primary alters the request",
        "backup VA_3 drops every message",
        "backup VA_2 sends malformed PREPARE/COMMIT",
    ]
    assert len(attacks) == len(expected)
    for k, (line, what) in enumerate(zip(attacks, expected, strict=True), 1):
        assert line.startswith(f"  {k}. {what}")
        assert "caught by" in line
    assert "merkle.diff" in attacks[2] and "view 1" in attacks[4]


def test_determinism_two_runs_byte_for_byte(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert cli.main(["demo", "referral", "--seed", "3", "--out", str(a)]) == 0
    assert cli.main(["demo", "referral", "--seed", "3", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert str(tmp_path) not in a.read_text() and "/tmp" not in a.read_text()


def test_stdout_matches_out_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.txt"
    assert cli.main(["demo", "referral", "--trace", "summary", "--out", str(out)]) == 0
    assert cli.main(["demo", "referral"]) == 0
    summary = capsys.readouterr().out
    assert summary == out.read_text() and "FULL TRACE" not in summary
    # An --out file gets the full trace by default (what make run writes).
    full = tmp_path / "full.txt"
    assert cli.main(["demo", "referral", "--out", str(full)]) == 0
    assert cli.main(["demo", "referral", "--trace", "full"]) == 0
    assert capsys.readouterr().out == full.read_text()
    assert full.read_text().startswith(summary.rstrip("\n"))


def test_full_trace_lists_every_message_transaction_and_block() -> None:
    run = referral.setup(0)
    try:
        for step in (
            referral.step1_entity,
            referral.step2_query,
            referral.step3_save,
            referral.step4_pbft,
            referral.step5_block,
        ):
            step(run)
        lines = referral.full_trace(run)
        copies = len(run.trace)
        blocks = run.dep.nodes[0].ledger.blocks()
        seq = run.facts["seq"]
    finally:
        run.close()
    msgs = [x for x in lines if x.startswith("  t=")]
    # Every copy sent is on some line (a broadcast line names all its receivers).
    assert sum(len(x.split("->")[1].split()[0].split(",")) for x in msgs) == copies
    assert f"({copies} copies)" in lines[0]
    for kind in ("REQUEST", "PRE-PREPARE", "PREPARE ", "COMMIT ", "REPLY", "BLOCK ", "CHECKPOINT"):
        assert any(f" {kind}" in x for x in msgs), kind
    # TX1/TX2's sequence: one pre-prepare broadcast, 3 prepare and 4 commit broadcasts.
    ours = [x for x in msgs if f" n={seq} " in x]
    assert sum(" PRE-PREPARE " in x for x in ours) == 1
    assert sum(" PREPARE " in x for x in ours) == 3 and sum(" COMMIT " in x for x in ours) == 4
    text = "\n".join(lines)
    for b in blocks:
        assert f"h={b.header.height} id={b.id[:4].hex()}" in text
        for t in b.tx_ids:
            assert f"tx={t[:4].hex()}" in text
    assert all(" us " in x for x in msgs)


class _Honest(Byzantine):
    """A 'fault' that changes nothing."""

    def outgoing(self, send: Send) -> list[Send]:
        return [send]


def test_an_attack_that_is_not_caught_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    # if the "altering" primary did not alter anything, there is nothing to catch: the demo
    # must refuse to print a verdict
    monkeypatch.setattr(attacks, "AlteringPrimary", _Honest)
    with pytest.raises(DemoCheckFailed, match=r"altered request|view change"):
        attacks.attack_primary_alters(0)


def test_a_leak_check_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    run = referral.setup(0)
    try:
        referral.step1_entity(run)
        pp = run.facts["people"]
        # a TX1 that names its patient must not pass as unlinkable
        from medbench.records import Writer, add

        at_b = Writer(pp.doc_d.signing, pp.h_b.signing)
        run.facts["tx1"] = add(pp.patient.public.signing + b"pneumonia", 1, at_b)
        with pytest.raises(DemoCheckFailed, match="P's key"):
            attacks.attack_tx1_leak(run)
    finally:
        run.close()


def test_undeleted_record_is_not_reported_as_repaired(monkeypatch: pytest.MonkeyPatch) -> None:
    run = referral.setup(0)
    try:
        for step in (
            referral.step1_entity,
            referral.step2_query,
            referral.step3_save,
            referral.step4_pbft,
            referral.step5_block,
        ):
            step(run)
        # the deletion silently does nothing: verify finds nothing, so no verdict
        monkeypatch.setattr(type(run.dep.nodes[3].store), "delete_transaction", lambda *a: None)
        with pytest.raises(DemoCheckFailed, match="deletion not found"):
            attacks.attack_deleted(run)
    finally:
        run.close()


def test_diagram_and_perfetto_trace(tmp_path: Path) -> None:
    """--diagram draws step 4 as a message-sequence PNG; --trace-out writes Chrome trace
    events of steps 1-5 (every copy a send slice, a receive slice and a flow arrow)."""
    png, trace_json = tmp_path / "referral.png", tmp_path / "referral.trace.json"
    args = ["demo", "referral", "--seed", "0", "--out", str(tmp_path / "r.txt")]
    assert cli.main([*args, "--diagram", str(png), "--trace-out", str(trace_json)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = json.loads(trace_json.read_text())["traceEvents"]
    names = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"VA_0", "VA_1", "VA_2", "VA_3"} <= names
    flows = [e for e in events if e["ph"] in ("s", "f")]
    assert flows and len(flows) % 2 == 0
    assert any(e["name"] == "recv pre-prepare" for e in events)
    text = (tmp_path / "r.txt").read_text()
    assert "message-sequence diagram of step 4 written to referral.png" in text
