"""The dashboard in a real headless browser (Debian's chromium driven by Playwright, no browser
download): it loads, shows four nodes, updates when a transaction commits and when a node is
killed, and draws a block's Merkle tree and a transaction's inclusion proof. Runs last in the
session (file order): it kills a node."""

from __future__ import annotations

import shutil
import signal

import pytest

from medbench.runtime import cluster
from tests.gateway.conftest import Consortium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_dashboard_live(consortium: Consortium) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = consortium.urls[0].removesuffix("/fhir")
    lay = cluster.Layout(consortium.root)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(f"{root}/dashboard", timeout=20_000)
            rows = page.locator("#nodes tbody tr")
            expect(rows).to_have_count(4, timeout=15_000)
            expect(page.locator("#nodes tbody tr.up")).to_have_count(4, timeout=15_000)
            before = int(page.locator("#committed").inner_text())
            # a transaction commits through this gateway: the counters and the blocks move
            st, _, doc = consortium.call(
                "POST", f"{consortium.urls[0]}/Patient", "patient-3",
                {"resourceType": "Patient",
                 "identifier": [{"system": "urn:medbench:user", "value": "patient-3"}]},
            )  # fmt: skip
            assert st == 201, doc
            page.wait_for_function(
                f"Number(document.getElementById('committed').textContent) > {before}",
                timeout=15_000,
            )
            # a block's Merkle tree, then a transaction's inclusion proof
            page.locator("#blocks li").first.click()
            expect(page.locator("#tree circle").first).to_be_visible(timeout=10_000)
            page.locator("#proof a.tx").first.click()
            expect(page.locator("#proof-detail")).to_be_visible(timeout=10_000)
            expect(page.locator("#tree circle.path").first).to_be_visible(timeout=10_000)
            # kill a backup: its row turns down
            status = consortium.call("GET", f"{root}/dashboard/api/status")[2]
            primary = status["nodes"][0]["primary"]
            victim = next(i for i in (3, 2, 1) if i != primary)
            cluster.signal_node(lay, victim, signal.SIGKILL)
            cluster.wait_exit(lay, [victim], 10.0)
            expect(page.locator(f'#nodes tbody tr[data-node="{victim}"].down')).to_have_count(
                1, timeout=15_000
            )
            expect(page.locator("#nodes tbody tr.up")).to_have_count(3, timeout=5_000)
        finally:
            browser.close()
            for i in range(4):
                if cluster.node_pid(lay, i) is None:
                    cluster.start_node(lay, i)
