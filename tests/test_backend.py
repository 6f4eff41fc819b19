"""The backend selector, and the CI guarantee that the native core really loaded."""

from __future__ import annotations

import os
import subprocess
import sys

from medbench import backend


def test_native_core_loaded_unless_pure_python_is_forced() -> None:
    if backend.pure_python_forced():
        assert not backend.native_loaded()
        assert all(e["backend"] == "reference" for e in backend.describe()["groups"].values())
    else:
        # CI must fail when the extension did not build or load.
        assert backend.native_loaded(), backend.describe()


def test_public_modules_use_the_selected_backend() -> None:
    from medbench import hashing, merkle, quorum

    for group, public in (("hashing", hashing), ("merkle", merkle), ("quorum", quorum)):
        assert public.implementation() == backend.load(group).implementation()


def test_env_var_forces_reference_in_a_fresh_process() -> None:
    code = "from medbench import backend; print(backend.native_loaded())"
    env = dict(os.environ, MEDBENCH_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_unknown_group_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown backend group"):
        backend.load("nonsense")
