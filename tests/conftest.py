"""Shared fixtures: every accelerated group is tested on both backends in one run."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
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


# Native SHA-256 paths: the SHA-NI lanes (where the CPU has them) and the portable C code.
SHA_PATHS: tuple[str, ...] = ("sha-ni", "portable")


def _backends(group: str) -> list[tuple[ModuleType, str | None]]:
    """(module, SHA path) pairs: the reference, then the native module on every path it has."""
    mods: list[tuple[ModuleType, str | None]] = [(backend.reference(group), None)]
    native = None if backend.pure_python_forced() else backend.native(group)
    if native is None:
        return mods
    if not hasattr(native, "_set_shani"):
        return [*mods, (native, None)]
    paths = SHA_PATHS if native._shani_available() else SHA_PATHS[1:]
    return [*mods, *((native, path) for path in paths)]


def _ids(params: list[tuple[ModuleType, str | None]]) -> list[str]:
    out = []
    for mod, path in params:
        kind = "native" if mod.__name__.startswith("medbench._native") else "reference"
        out.append(kind if path is None else f"{kind}-{path}")
    return out


def _sha_modules() -> list[ModuleType]:
    return [m for m in (backend.native("hashing"), backend.native("merkle")) if m is not None]


@contextlib.contextmanager
def on_sha_path(path: str | None) -> Iterator[None]:
    """Run the block on one SHA-256 path of every native module, then restore the default.

    Each native extension carries its own copy of the path switch, so all are set together.
    """
    if path is None:
        yield
        return
    mods = _sha_modules()
    want = path == "sha-ni"
    assert [m._set_shani(want) for m in mods] == [want] * len(mods)
    try:
        yield
    finally:
        for m in mods:
            m._set_shani(not m._env_disables_shani())


@pytest.fixture(params=SHA_PATHS)
def sha_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on one SHA-256 path of every native module, then restore the default."""
    if not _sha_modules():
        pytest.skip("native core not built")
    if request.param == "sha-ni" and not _sha_modules()[0]._shani_available():
        pytest.skip("this CPU has no SHA extensions")
    with on_sha_path(request.param):
        yield request.param


def _select(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    module, path = request.param
    with on_sha_path(path):
        yield module


@pytest.fixture(params=_backends("hashing"), ids=_ids(_backends("hashing")))
def hashing_impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """``medbench.reference.hashing`` and, when built, ``medbench._native.hashing`` on each
    SHA-256 path (SHA-NI and portable)."""
    yield from _select(request)


@pytest.fixture(params=_backends("merkle"), ids=_ids(_backends("merkle")))
def merkle_impl(request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """``medbench.reference.merkle`` and, when built, ``medbench._native.merkle`` on each
    SHA-256 path (SHA-NI and portable)."""
    yield from _select(request)


@pytest.fixture(params=_backends("quorum"), ids=_ids(_backends("quorum")))
def quorum_impl(request: pytest.FixtureRequest) -> ModuleType:
    """``medbench.reference.quorum`` and, when built, ``medbench._native.quorum``."""
    return request.param[0]  # type: ignore[no-any-return]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop joblib's worker processes (the parallel-run tests start them; loky keeps them for
    reuse until interpreter exit, which is after pytest: every process a test starts is stopped
    by the suite)."""
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(loky, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
