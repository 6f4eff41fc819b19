"""A create is stored while one validator (f = 1) is stopped: the 16-connection stall of the README.

In ``integrated`` block mode every committed batch is a block whose ledger signature comes from
one validator fixed by the height (the rotation under ``VA_0``:
:meth:`medbench.medchain.block_format.LedgerBlockFormat.build`). Nodes used to store blocks in
height order only once signed, so one stopped validator stopped block storage on *every* node at
the first block it had to sign, and a gateway create answered after its 5 s bound with block
height 0. Now a node stores each block at once and fills the signature in when it arrives
(:meth:`medbench.medchain.node.MedicalChainNode._persist_blocks`, docs/medical-chain.md §1.5):
this test stops node 2 and expects every create to come back with its block.
"""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

from medbench.gateway import processes
from medbench.runtime import cluster

H = {"Content-Type": "application/fhir+json"}


def _post(base: str, ctx: ssl.SSLContext, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(base + path, json.dumps(body).encode(), H, method="POST")
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, json.loads(r.read())


def _ctx(root: Path, user: str) -> ssl.SSLContext:
    d = root / "gateway"
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    ctx.load_cert_chain(str(d / "users" / f"{user}.pem"), str(d / "users" / f"{user}.key"))
    return ctx


def test_creates_get_their_block_with_one_validator_stopped(tmp_path: Path) -> None:
    root = tmp_path / "c"
    lay = cluster.Layout(root)
    try:
        (base,) = processes.up(root, 4, [0])
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:medbench:user", "value": "patient-0"}],
        }
        status, _, _ = _post(base, _ctx(root, "patient-0"), "/Patient", patient)
        assert status == 201
        assert cluster.signal_node(lay, 2, signal.SIGSTOP)
        heights = []
        end = time.monotonic() + 20
        # the rotation gives node 2 every third block: four creates reach one of its turns
        while len(heights) < 4 and time.monotonic() < end:
            status, hdrs, _ = _post(base, _ctx(root, "patient-0"), "/Patient", patient)
            assert status == 201
            heights.append(int(hdrs["x-medbench-block-height"]))
            if heights[-1] == 0:
                break  # the bound was hit: the block is not in node 0's store
        assert heights and all(h > 0 for h in heights), heights
    finally:
        cluster.signal_node(lay, 2, signal.SIGCONT)
        if (root / "consortium.toml").exists():
            processes.down(root)
        shutil.rmtree(root, ignore_errors=True)
