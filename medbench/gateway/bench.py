"""FHIR load on a gateway against the same transactions submitted directly: ``gateway bench``.

Theory of operation
-------------------
One fresh 4-node Medical Chain consortium with a gateway on node 0 (:mod:`.processes`), one run:

1. patient-0 registers her Patient and grants doctor-0 add/read (through the gateway);
2. for each number of connections ``c`` (1, 16, 64): closed loop, ``c`` HTTPS connections (httpx,
   client certificate of doctor-0), each with one request outstanding:

   * **create**: ``POST /fhir/Encounter`` — the gateway validates, signs, countersigns, seals,
     commits (f+1 replies) and answers 201 once the block is in the node's store;
   * **read**: ``GET /fhir/Encounter/<id>`` — an audited ``read`` query committed on chain, then
     the store;
   * **direct**: the load generator (:mod:`medbench.runtime.loadgen`, a process of its own) with
     ``c`` PBFT clients submitting the same kind of transaction (a doctor's visit record,
     countersigned and sealed) straight to the nodes: latency = submit to f+1 replies.

Latencies of requests *started* in the measurement window (after ``warmup``) are kept;
requests/s = completed in the window / window. The gateway's own commit time (f+1 replies, its
``medbench_gateway_commit_seconds``) and its wait for the block after the commit
(``medbench_gateway_block_wait_seconds``, and how many waits hit the bound) are also reported,
so what the gateway adds splits into the wait for the block and HTTP + FHIR + signing.
"""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from medbench.gateway import processes

US = 1_000_000


def _ctx(root: Path, user: str) -> ssl.SSLContext:
    d = root / "gateway"
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "users" / f"{user}.pem"), str(d / "users" / f"{user}.key"))
    return ctx


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(int(p * len(s)), len(s) - 1)]


def _encounter(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
    }


async def _closed_loop(
    base: str,
    ctx: ssl.SSLContext,
    conns: int,
    warmup: float,
    duration: float,
    make: Any,
) -> dict[str, Any]:
    import httpx

    lat: list[float] = []
    errors: dict[str, int] = {}
    t0 = time.perf_counter()
    lo, hi = t0 + warmup, t0 + warmup + duration
    done = 0

    async def worker(k: int) -> None:
        nonlocal done
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(verify=ctx, limits=limits, timeout=30.0) as client:
            i = 0
            while time.perf_counter() < hi:
                method, url, body = make(k, i)
                i += 1
                start = time.perf_counter()
                try:
                    r = await client.request(
                        method,
                        base + url,
                        json=body,
                        headers={"Content-Type": "application/fhir+json"},
                    )
                    ok = r.status_code < 300
                    key = str(r.status_code)
                except httpx.HTTPError as exc:
                    ok, key = False, type(exc).__name__
                end = time.perf_counter()
                if not ok:
                    errors[key] = errors.get(key, 0) + 1
                if lo <= start < hi and ok:
                    lat.append((end - start) * 1000)
                    done += 1

    await asyncio.gather(*(worker(k) for k in range(conns)))
    return {
        "req_s": done / duration,
        "p50_ms": _pct(lat, 0.5),
        "p99_ms": _pct(lat, 0.99),
        "n": done,
        "errors": errors,
    }


GATEWAY_SERIES = (
    "medbench_gateway_commit_seconds_sum",
    "medbench_gateway_commit_seconds_count",
    "medbench_gateway_block_wait_seconds_sum",
    "medbench_gateway_block_wait_seconds_count",
    "medbench_gateway_block_wait_timeouts_total",
)


def _gateway_series(base: str, ctx: ssl.SSLContext) -> dict[str, float]:
    """The gateway's commit and block-wait totals from its ``/metrics`` (for deltas)."""
    import urllib.request

    url = base.removesuffix("/fhir") + "/metrics"
    with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
        text = r.read().decode()
    out = dict.fromkeys(GATEWAY_SERIES, 0.0)
    for line in text.splitlines():
        name = line.split(" ", 1)[0]
        if name in out:
            out[name] = float(line.split()[-1])
    return out


def _mean_ms(before: dict[str, float], after: dict[str, float], what: str) -> float:
    total = after[f"{what}_sum"] - before[f"{what}_sum"]
    count = after[f"{what}_count"] - before[f"{what}_count"]
    return total / max(count, 1) * 1000


def _direct(root: Path, conns: int, warmup: float, duration: float, out: Path) -> dict[str, Any]:
    res_file = out / f"direct-{conns}.json"
    cmd = [
        sys.executable,
        "-m",
        "medbench",
        "cluster",
        "load",
        "--dir",
        str(root),
        "--identity",
        "0",
        "--clients",
        str(conns),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
        "--out",
        str(res_file),
    ]
    subprocess.run(cmd, check=True, timeout=warmup + duration + 120, capture_output=True)
    doc = json.loads(res_file.read_text())
    lat = [(done - sub) / 1000 for _, _, sub, done in doc["window"]]
    return {
        "req_s": len(lat) / duration,
        "p50_ms": _pct(lat, 0.5),
        "p99_ms": _pct(lat, 0.99),
        "n": len(lat),
        "errors": {"refused": doc.get("refused", 0)},
    }


def run_bench(out: Path, connections: list[int], duration: float, warmup: float) -> int:
    """Run the benchmark (see the module docstring); writes ``gateway.csv`` and ``gateway.md``."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    root = out / "consortium"
    if root.exists():
        shutil.rmtree(root)
    rows: list[dict[str, Any]] = []
    try:
        (base,) = processes.up(root, 4, [0])
        ctx = _ctx(root, "doctor-0")
        pctx = _ctx(root, "patient-0")
        import httpx

        with httpx.Client(verify=pctx, timeout=30) as c:
            r = c.post(
                f"{base}/Patient",
                json={
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:medbench:user", "value": "patient-0"}],
                },
                headers={"Content-Type": "application/fhir+json"},
            )
            pid = r.json()["id"]
            consent = {
                "resourceType": "Consent",
                "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/{pid}"},
                "provision": {
                    "actor": [
                        {
                            "role": {"coding": [{"code": "PRCP"}]},
                            "reference": {"reference": "Practitioner/doctor-0"},
                        }
                    ],
                    "action": [{"coding": [{"code": "add"}]}, {"coding": [{"code": "read"}]}],
                },
            }
            r = c.post(
                f"{base}/Consent", json=consent, headers={"Content-Type": "application/fhir+json"}
            )
            assert r.status_code == 201, r.text
        with httpx.Client(verify=ctx, timeout=30) as c:
            r = c.post(
                f"{base}/Encounter",
                json=_encounter(pid),
                headers={"Content-Type": "application/fhir+json"},
            )
            read_id = r.json()["id"]
        for conns in connections:
            m0 = _gateway_series(base, ctx)
            create = asyncio.run(
                _closed_loop(
                    base,
                    ctx,
                    conns,
                    warmup,
                    duration,
                    lambda k, i: ("POST", "/Encounter", _encounter(pid)),
                )
            )
            m1 = _gateway_series(base, ctx)
            commit_ms = _mean_ms(m0, m1, "medbench_gateway_commit_seconds")
            wait_ms = _mean_ms(m0, m1, "medbench_gateway_block_wait_seconds")
            key = "medbench_gateway_block_wait_timeouts_total"
            wait_timeouts = int(m1[key] - m0[key])
            read = asyncio.run(
                _closed_loop(
                    base,
                    ctx,
                    conns,
                    warmup,
                    duration,
                    lambda k, i: ("GET", f"/Encounter/{read_id}", None),
                )
            )
            direct = _direct(root, conns, warmup, duration, out)
            for what, r_ in (("fhir-create", create), ("fhir-read", read), ("direct", direct)):
                rows.append(
                    {
                        "connections": conns,
                        "what": what,
                        **{k: r_[k] for k in ("req_s", "p50_ms", "p99_ms", "n")},
                        "errors": json.dumps(r_["errors"]),
                        "gateway_commit_mean_ms": commit_ms if what == "fhir-create" else "",
                        "block_wait_mean_ms": wait_ms if what == "fhir-create" else "",
                        "block_wait_timeouts": wait_timeouts if what == "fhir-create" else "",
                    }
                )
            print(
                f"c={conns}: create {create['req_s']:.1f}/s p50 {create['p50_ms']:.1f} ms "
                f"p99 {create['p99_ms']:.1f}; read {read['req_s']:.1f}/s p50 "
                f"{read['p50_ms']:.1f} p99 {read['p99_ms']:.1f}; direct {direct['req_s']:.1f}/s "
                f"p50 {direct['p50_ms']:.1f} p99 {direct['p99_ms']:.1f}; gateway commit mean "
                f"{commit_ms:.1f} ms, block wait mean {wait_ms:.1f} ms "
                f"({wait_timeouts} hit the bound)",
                flush=True,
            )
    finally:
        if (root / "consortium.toml").exists():
            processes.down(root)
    with (out / "gateway.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["connections"])
        w.writeheader()
        w.writerows(rows)
    lines = ["| connections | what | req/s | p50 ms | p99 ms | n |", "|---|---|---|---|---|---|"]
    for r_ in rows:
        lines.append(
            f"| {r_['connections']} | {r_['what']} | {r_['req_s']:.1f} | "
            f"{r_['p50_ms']:.1f} | {r_['p99_ms']:.1f} | {r_['n']} |"
        )
    for conns in connections:
        c_ = next(
            (r_ for r_ in rows if r_["connections"] == conns and r_["what"] == "fhir-create"), None
        )
        d_ = next(
            (r_ for r_ in rows if r_["connections"] == conns and r_["what"] == "direct"), None
        )
        if c_ and d_ and d_["p50_ms"]:
            lines.append(
                f"\nc={conns}: the gateway's create p50 is "
                f"{100 * (c_['p50_ms'] / d_['p50_ms'] - 1):+.0f} % over direct submission"
            )
    (out / "gateway.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
