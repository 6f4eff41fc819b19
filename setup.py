"""Build the optional native core (Cython + C) of medbench.

The package is fully functional without it: every accelerated function has a pure-Python twin
in ``medbench.reference``. When no compiler is available the build prints a warning and installs
the pure-Python kit. Cython 3.3 ignores ``optional=True`` inside ``cythonize``, so failures are
caught here, in a custom ``build_ext``.

``MEDBENCH_REQUIRE_NATIVE=1`` (set by ``.ci/run``) turns every one of those degradations into a
failed build: a missing Cython, a cythonize error or a C compile error then fails the install.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRE_ENV = "MEDBENCH_REQUIRE_NATIVE"


def native_required() -> bool:
    """True when ``MEDBENCH_REQUIRE_NATIVE=1``: a native build failure must fail the install."""
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


class NativeBuildError(RuntimeError):
    """The native core could not be built although ``MEDBENCH_REQUIRE_NATIVE=1`` asks for it."""


class OptionalBuildExt(build_ext):
    """A build_ext that degrades to pure Python instead of failing the install, unless the
    native core is required."""

    def run(self) -> None:
        if native_required() and not self.extensions:
            # native_extensions() raises first; this guards a setup() call without ext_modules.
            raise NativeBuildError(f"{REQUIRE_ENV}=1 but there is no native extension to build")
        try:
            super().run()
        except Exception as exc:
            if native_required():
                raise
            self._warn(exc)

    def build_extensions(self) -> None:
        self._failed: set[str] = set()
        super().build_extensions()
        # Forget the extensions that did not build, so the in-place / editable copy step that
        # follows installs the ones that did instead of failing on a missing file.
        self.extensions = [e for e in self.extensions if e.name not in self._failed]

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            if native_required():
                raise
            self._failed.add(ext.name)
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        print(
            f"WARNING: medbench native core not built ({exc!r}); "
            "installing the pure-Python reference backend.",
            file=sys.stderr,
        )


def native_extensions() -> list[Extension]:
    """Cythonize ``_native/``; return no extensions when Cython itself is missing."""
    try:
        from Cython.Build import cythonize
    except ImportError:
        if native_required():
            raise NativeBuildError(f"{REQUIRE_ENV}=1 but Cython is not installed") from None
        print("WARNING: Cython not available; pure-Python install.", file=sys.stderr)
        return []
    cflags = ["-O3"]
    if sys.platform != "win32":
        cflags += ["-std=c11", "-fno-strict-aliasing"]
    sha_c = os.path.join("_native", "sha256.c")
    sha_deps = ["_native/sha256.h", "_native/csha256.pxd"]
    exts = [
        Extension(
            "medbench._native.hashing",
            ["_native/hashing.pyx", sha_c],
            include_dirs=["_native"],
            extra_compile_args=cflags,
            depends=sha_deps,
        ),
        Extension(
            "medbench._native.merkle",
            ["_native/merkle.pyx", sha_c],
            include_dirs=["_native"],
            extra_compile_args=cflags,
            depends=sha_deps,
        ),
        Extension(
            "medbench._native.quorum",
            ["_native/quorum.pyx"],
            include_dirs=["_native"],
            extra_compile_args=cflags,
        ),
    ]
    missing = [s for e in exts for s in e.sources if not os.path.exists(s)]
    if missing and native_required():
        raise NativeBuildError(f"native sources missing: {missing}")
    exts = [e for e in exts if all(os.path.exists(s) for s in e.sources)]
    try:
        return cythonize(
            exts,
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "embedsignature": True,
            },
        )
    except Exception as exc:
        if native_required():
            raise NativeBuildError(f"cythonize failed: {exc!r}") from exc
        print(f"WARNING: cythonize failed ({exc!r}); pure-Python install.", file=sys.stderr)
        return []


setup(ext_modules=native_extensions(), cmdclass={"build_ext": OptionalBuildExt})
