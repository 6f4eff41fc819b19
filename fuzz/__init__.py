"""Coverage-guided fuzzing of medbench's decoders and of two protocol nodes (issue 13).

One harness per target, ``fuzz/fuzz_<target>.py`` (see :mod:`fuzz.common` for what a harness
is), run by atheris through ``python -m fuzz`` (:mod:`fuzz.__main__`): ``make fuzz`` runs every
target on both backends for a bounded time. This package imports nothing of medbench itself, so
the runner can import the harnesses under atheris' coverage instrumentation.
"""

from __future__ import annotations

import importlib
from typing import Any

TARGETS: dict[str, tuple[str, ...]] = {
    # target name -> packages instrumented besides medbench and fuzz
    "codec": (),
    "pbft_wire": (),
    "pbft_persist": (),
    "ledger_tx": (),
    "ledger_block": (),
    "ledger_genesis": (),
    "medchain_side": (),
    "envelope": (),
    "sealed_records": (),
    "record_content": (),
    "fhir": ("fhir",),
    "policy": (),
    "access_request": (),
    "pkcs8": ("asn1crypto",),
    "identity_file": ("asn1crypto",),
    "kmc_keyfile": (),
    "x509": (),
    "topology": ("networkx.readwrite",),
    "cost_profile": (),
    "baselines": (),
    "pbft_step": (),
    "medchain_step": (),
}
"""Every target, in the order ``make fuzz`` runs them."""

WEIGHTS: dict[str, int] = {"pbft_step": 4, "medchain_step": 4}
"""Per-target budgets a target gets in ``make fuzz`` (default 1): the stateful targets run a few
hundred inputs a second, the decoders thousands."""


def load(name: str) -> Any:
    """The ``HARNESS`` of target ``name`` (imports its module)."""
    if name not in TARGETS:
        raise KeyError(f"unknown fuzz target {name!r}; expected one of {sorted(TARGETS)}")
    return importlib.import_module(f"fuzz.fuzz_{name}").HARNESS
