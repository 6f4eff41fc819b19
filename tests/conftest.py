"""Shared fixtures: every accelerated group is tested on both backends in one run."""

from __future__ import annotations

import os
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from medbench import backend

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "soak",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _backends(group: str) -> list[ModuleType]:
    mods = [backend.reference(group)]
    native = None if backend.pure_python_forced() else backend.native(group)
    if native is not None:
        mods.append(native)
    return mods


def _ids(mods: list[ModuleType]) -> list[str]:
    return ["native" if m.__name__.startswith("medbench._native") else "reference" for m in mods]


@pytest.fixture(params=_backends("hashing"), ids=_ids(_backends("hashing")))
def hashing_impl(request: pytest.FixtureRequest) -> ModuleType:
    """``medbench.reference.hashing`` and, when built, ``medbench._native.hashing``."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=_backends("merkle"), ids=_ids(_backends("merkle")))
def merkle_impl(request: pytest.FixtureRequest) -> ModuleType:
    """``medbench.reference.merkle`` and, when built, ``medbench._native.merkle``."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=_backends("quorum"), ids=_ids(_backends("quorum")))
def quorum_impl(request: pytest.FixtureRequest) -> ModuleType:
    """``medbench.reference.quorum`` and, when built, ``medbench._native.quorum``."""
    return request.param  # type: ignore[no-any-return]
