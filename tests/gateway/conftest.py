"""One 4-node Medical Chain consortium with gateways on nodes 0 and 1 for the gateway tests.

Started once per session (about 15 s), stopped by the fixture whatever happens. Gateway 1
runs retention every half second with short ages so the retention test sees tier moves.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from medbench.gateway import processes


@dataclass
class Consortium:
    """The running consortium and how to reach its gateways."""

    root: Path
    urls: list[str]

    def user(self, name: str) -> tuple[str, str]:
        """(certificate, key) files of a user."""
        d = self.root / "gateway" / "users"
        return str(d / f"{name}.pem"), str(d / f"{name}.key")

    @property
    def ca(self) -> str:
        """The CA bundle HTTPS clients trust."""
        return str(self.root / "gateway" / "ca.pem")

    def context(self, user: str | None = None) -> ssl.SSLContext:
        """An SSL context trusting the CA, with ``user``'s certificate."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if user:
            ctx.load_cert_chain(*self.user(user))
        return ctx

    def call(
        self,
        method: str,
        url: str,
        user: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One HTTPS request; (status, headers, JSON or bytes)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/fhir+json"} if data is not None else {}
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, context=self.context(user), timeout=30) as r:
                status, hdrs, payload = (
                    r.status,
                    {k.lower(): v for k, v in r.headers.items()},
                    r.read(),
                )
        except urllib.error.HTTPError as e:
            status, hdrs, payload = e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
        try:
            return status, hdrs, json.loads(payload)
        except ValueError:
            return status, hdrs, payload


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("gw") / "c"
    try:
        urls = processes.up(
            root,
            4,
            [0, 1],
            timeout=90,
            extra=["--retention-interval", "0.5", "--online-age", "2", "--nearline-age", "4"],
        )
        yield Consortium(root, urls)
    finally:
        if (root / "consortium.toml").exists():
            processes.down(root)
