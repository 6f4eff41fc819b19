"""Table 1 as text: the measured cells beside the paper's, with marks and reasons.

:func:`compare` marks each measured paper cell, :func:`mismatch_reason` says why a cell differs,
:func:`markdown` and the ``*_rows`` functions give the report's tables (markdown and CSV rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tabulate import tabulate

from medbench.sim.costs import CostProfile
from medbench.study.measure import BREAKDOWN
from medbench.study.report import LABELS, fmt
from medbench.study.systems import (
    COLUMNS,
    EXTRA_COLUMNS,
    LARGE_HASHES_PER_TX,
    PAPER,
    SYSTEMS,
    Row,
    large_cpu_ms,
)


def _paper_match(key: str, column: str, measured: str) -> bool:
    paper = PAPER[key][column]
    if column == "nodes_needed":
        if paper == "many":
            return False  # a number can never be "many"; the reason line says why
        if paper.startswith("few"):
            return measured.isdigit() and int(measured) == 4
    return measured == paper


def mismatch_reason(row: Row, column: str) -> str:
    """One line on why the measured cell differs from the paper's."""
    x = row.extras
    if column == "nodes_needed" and PAPER[row.system.key][column] == "many":
        return (
            f"{row.cells[column]} node(s) start and commit; the paper's 'many' is about "
            f"safety (honest hash-power majority), not about starting; tolerates "
            f"{x['faults_tolerated']} crash(es) at that size"
        )
    if column == "pays_rewards":
        return f"measured {x['rewards_per_tx']:.3g} units paid per committed transaction"
    if column == "compute_demand":
        return (
            f"measured {x['cpu_ms_per_tx']:.3g} CPU ms/tx ({x['hashes_per_tx']:.3g} hashes, "
            f"{x['learn_ms_per_tx']:.3g} ms learning) against the threshold "
            f"{row.large_cpu_ms:.3g} ms (the time of {LARGE_HASHES_PER_TX:.0e} hashes)"
        )
    return f"measured {row.cells[column]!r}, paper {PAPER[row.system.key][column]!r}"


@dataclass(slots=True)
class Comparison:
    """Measured cells beside the paper's: ``marks[key][column]`` and reasons for mismatches."""

    marks: dict[str, dict[str, bool]]
    reasons: dict[str, dict[str, str]]


def compare(rows: Sequence[Row]) -> Comparison:
    """Mark each measured paper cell as matched or not, with a reason for every mismatch.

    Declared cells (:attr:`Row.declared`) get no mark: they cannot fail.
    """
    marks: dict[str, dict[str, bool]] = {}
    reasons: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.system.key not in PAPER:
            continue
        k = row.system.key
        marks[k] = {}
        reasons[k] = {}
        for col in COLUMNS:
            if col in row.declared:
                continue
            ok = _paper_match(k, col, row.cells[col])
            marks[k][col] = ok
            if not ok:
                reasons[k][col] = mismatch_reason(row, col)
    return Comparison(marks, reasons)


def _fmt(v: Any, column: str = "") -> str:
    return fmt(v, column)


def measured_where(row: Row) -> str:
    """Where a row's measured columns come from (scaled-down configurations named)."""
    n = row.common.n if row.common.live else row.minimal.n
    opts = row.system.options_for(n)
    parts = " + ".join(f"{v} {k}" for k, v in opts.items() if isinstance(v, int))
    where = f"n = {n}" + (f" ({parts})" if parts else "")
    needed = row.cells.get("nodes_needed", "")
    if needed.isdigit() and int(needed) > n:
        where += f"; scaled down: its own configuration needs {needed} to start"
    return where


NODES_NEEDED_DEFINITION = (
    "'nodes needed' is the smallest n that starts and stays live (crash-free) and, for a system "
    "whose paper configuration must tolerate f Byzantine replicas (Medical Chain: f = 1, the "
    "paper's 'at least 4'), stays safe and live with f replicas playing each of the kit's "
    "Byzantine behaviours in turn."
)
"""The definition the search implements (:func:`medbench.study.table1.nodes_needed`)."""


def markdown(rows: Sequence[Row], cmp: Comparison | None = None) -> str:
    """The measured table (match marks on paper rows), the paper's table and the reasons."""
    cmp = cmp if cmp is not None else compare(rows)
    head = ["System", "measured at", *COLUMNS, *(LABELS.get(c, c) for c in EXTRA_COLUMNS)]
    body = []
    for row in rows:
        cells = []
        for col in COLUMNS:
            mark = ""
            if col in row.declared:
                mark = " (declared)"
            elif row.system.key in cmp.marks:
                mark = " ✓" if cmp.marks[row.system.key][col] else " ✗"
            cells.append(row.cells[col] + mark)
        extras = [_fmt(row.extras[c], c) for c in EXTRA_COLUMNS]
        body.append([row.system.name, measured_where(row), *cells, *extras])
    out = [tabulate(body, headers=head, tablefmt="github", disable_numparse=True)]
    out.append("")
    out.append(
        "Every measured column except 'nodes needed' and 'faults tolerated' comes from the "
        "configuration named under 'measured at'. " + NODES_NEEDED_DEFINITION
    )
    out.append("")
    out.append("Paper (docs/medical-chain.md §1.8):")
    out.append("")
    names = {s.key: s.name for s in SYSTEMS}
    paper = [[names[key], *(cells_[c] for c in COLUMNS)] for key, cells_ in PAPER.items()]
    out.append(
        tabulate(paper, headers=["System", *COLUMNS], tablefmt="github", disable_numparse=True)
    )
    out.append("")
    threshold = rows[0].large_cpu_ms if rows else large_cpu_ms(CostProfile.default())
    out.append(
        f"Compute demand is 'large' when the CPU time per committed transaction (cpu_ms_per_tx: "
        f"hashing, mining trials included at the profile's SHA-256 cost; signatures; message "
        f"handling; learning, learn_ms_per_tx) reaches {threshold:.3g} ms, the time of "
        f"{LARGE_HASHES_PER_TX:.0e} SHA-256 evaluations, else 'small'. hashes_per_tx counts "
        "every node's evaluations by one rule (transaction IDs, Merkle roots, block IDs, "
        "protocol digests, MACs, mining trials). Extra columns: faults_tolerated at the minimal "
        "configuration; throughput, latency and storage at the common configuration."
    )
    out.append("")
    out.append(
        "How the observed cells were measured ((declared) cells are the protocol's own "
        "description and carry no match mark):"
    )
    out.append("")
    for row in rows:
        for col, why in row.evidence.items():
            if col not in row.declared or col != "consensus":
                out.append(f"- {row.system.name} / {col}: {why}")
    out.append("")
    out.append("CPU per committed transaction by operation (common configuration):")
    out.append("")
    out.append(breakdown_markdown(rows).rstrip("\n"))
    mism = [
        f"- {names[k]} / {col}: {why}"
        for k, cols in cmp.reasons.items()
        for col, why in cols.items()
    ]
    if mism:
        out.append("")
        out.append("Mismatches:")
        out.extend(mism)
    return "\n".join(out) + "\n"


def breakdown_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """CPU ms per committed transaction by operation at the common configuration, per system.

    Summed over every node (PBFT's clients included), from :func:`cpu_breakdown`; with the
    signature operations per transaction behind the ``sign``/``verify`` columns, messages per
    transaction and the busiest node's total.
    """
    out = []
    for row in rows:
        r = row.common.row
        done = max(1, int(r.get("completed", 0)))
        counts: dict[str, int] = {}
        for node in row.common.nodes:
            for key, v in node.items():
                if key.startswith("count."):
                    counts[key[6:]] = counts.get(key[6:], 0) + int(v)
        client_v = float(r.get("client_sig_verifies_per_tx", 0.0))
        d: dict[str, Any] = {"system": row.system.name, "n": row.common.n}
        for op in BREAKDOWN:
            d[f"{op}_ms"] = float(r.get(f"cpu_ms.{op}", 0.0))
        d["total_ms"] = float(r.get("cpu_ms_per_tx", 0.0))
        d["busiest_node_ms"] = float(r.get("cpu_ms_busiest_node", 0.0))
        d["client_verifies_per_tx"] = client_v
        d["protocol_verifies_per_tx"] = counts.get("verify", 0) / done - client_v
        d["protocol_signs_per_tx"] = counts.get("sign", 0) / done - float(
            r.get("client_sig_signs_per_tx", 0.0)
        )
        d["msgs_per_tx"] = float(r.get("msgs_per_tx", 0.0))
        out.append(d)
    return out


def breakdown_markdown(rows: Sequence[Row]) -> str:
    """:func:`breakdown_rows` as a markdown table with a note on what each column charges."""
    flat = breakdown_rows(rows)
    if not flat:
        return ""
    head = list(flat[0])
    body = [[_fmt(d[k], k) for k in head] for d in flat]
    out = [tabulate(body, headers=head, tablefmt="github", disable_numparse=True), ""]
    out.append(
        "CPU ms per committed transaction at the common configuration, summed over every node "
        "(PBFT's clients included). Client signatures follow one rule in every row: the client "
        "signs each transaction once (sign_client) and each node that accepts a block, or each "
        "PBFT replica, verifies it once (verify_client). sign/verify_protocol are the "
        "protocol's own signatures (PBFT signs every message, docs/medical-chain.md §1.1; MDSM "
        "signs blocks and audits; Clique seals blocks); message = receiving and decoding, send = "
        "encoding and sending; mining = modeled nonce trials (off the node's CPU)."
    )
    return "\n".join(out) + "\n"


def table_rows(rows: Sequence[Row], cmp: Comparison | None = None) -> list[dict[str, Any]]:
    """Flat rows (one per system) for CSV: cells, paper cells, marks, reasons, extras."""
    cmp = cmp if cmp is not None else compare(rows)
    flat = []
    for row in rows:
        d: dict[str, Any] = {"system": row.system.name, "protocol": row.system.protocol}
        for col in COLUMNS:
            d[col] = row.cells[col]
            d[f"paper_{col}"] = PAPER.get(row.system.key, {}).get(col, "")
            d[f"match_{col}"] = cmp.marks.get(row.system.key, {}).get(col, "")
            d[f"reason_{col}"] = cmp.reasons.get(row.system.key, {}).get(col, "")
            d[f"how_{col}"] = row.evidence.get(col, "measured")
            d[f"declared_{col}"] = col in row.declared
        d.update(row.extras)
        flat.append(d)
    return flat


def trial_summary(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """:func:`trial_rows` with each run of consecutive refusals folded into one row."""
    out: list[dict[str, Any]] = []
    for t in trial_rows(rows):
        last = out[-1] if out else None
        if (
            last is not None
            and not t["started"]
            and not last["started"]
            and last["system"] == t["system"]
            and last["search"] == t["search"]
            and last["byzantine"] == t["byzantine"]
        ):
            first = str(last["n"]).split("..")[0]
            last["n"] = f"{first}..{t['n']}"
            last["reason"] = str(last["reason"]).split("; got ")[0]
            continue
        out.append(dict(t))
    return out


def trial_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Every search and fault trial as a flat row (for CSV)."""
    out = []
    for row in rows:
        for kind, trials in (("nodes_needed", row.search), ("faults", row.faults)):
            for t in trials:
                if kind == "faults" and any(t is u for u in row.search):
                    continue  # the search already ran these at the minimal size
                out.append(
                    {
                        "system": row.system.name,
                        "search": kind,
                        "n": t.n,
                        "crashed": t.crashed,
                        "byzantine": t.behaviour or "-",
                        "started": t.started,
                        "live": t.live,
                        "safety": "" if t.safe is None else t.safe,
                        "reason": t.reason,
                        "tolerated": "" if t.tolerated is None else t.tolerated,
                        "completed": t.row.get("completed", 0),
                        "latency_ms_p50": t.row.get("latency_ms_p50", ""),
                    }
                )
    return out
