"""The Raft core is sans-IO and keeps to its layer (STYLE.md, the import-linter contract).

An AST check of every module of ``medbench.consensus.raft`` and of every ``medbench`` module
they import, at any depth: no clock, randomness, socket, event loop or database. And a layer check
of the package's own imports: the standard library (minus those), the primitives, ``crypto``,
``consensus.auth`` and the package itself — never PBFT, the simulator, the ledger, numpy, ...
``TYPE_CHECKING`` imports count too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import medbench

FORBIDDEN = {"time", "random", "socket", "asyncio", "sqlite3"}
ALLOWED_MEDBENCH = {
    "medbench.codec",
    "medbench.hashing",
    "medbench.merkle",
    "medbench.quorum",
    "medbench.node",
    "medbench.backend",
    "medbench.rotation",
    "medbench.hashwork",
    "medbench.crypto",
    "medbench.consensus.auth",
}
PACKAGE = "medbench.consensus.raft"
ROOT = Path(medbench.__file__).resolve().parent.parent
CORE = sorted(
    f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE
    for p in ROOT.joinpath(*PACKAGE.split(".")).glob("*.py")
)
# loaded by name through medbench.backend (invisible to the import graph)
REFERENCE = ["medbench.reference.quorum", "medbench.reference.hashing", "medbench.reference.merkle"]


def _path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str) -> set[str]:
    """Every module name ``module`` imports (``from a import b`` yields ``a.b`` if b is one)."""
    path = _path(module)
    assert path is not None, module
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            for alias in node.names:
                if _path(f"{node.module}.{alias.name}") is not None:
                    out.add(f"{node.module}.{alias.name}")
    return out


def forbidden_imports(roots: list[str]) -> dict[str, list[str]]:
    """Forbidden top-level modules reached from ``roots``, each with the import chain."""
    chains: dict[str, list[str]] = {r: [r] for r in roots}
    todo = list(roots)
    found: dict[str, list[str]] = {}
    while todo:
        mod = todo.pop()
        for imp in sorted(_imports(mod)):
            top = imp.split(".")[0]
            if top in FORBIDDEN:
                found.setdefault(f"{mod} imports {imp}", chains[mod])
            elif top == "medbench" and imp not in chains and _path(imp):
                chains[imp] = [*chains[mod], imp]
                todo.append(imp)
    return found


def layer_violations(module: str, package: str) -> list[str]:
    """Direct imports of ``module`` outside its layer (see the module docstring)."""
    bad = []
    for imp in sorted(_imports(module)):
        top = imp.split(".")[0]
        if top == "medbench":
            if imp == "medbench" or imp == package or imp.startswith(package + "."):
                continue
            if not any(imp == a or imp.startswith(a + ".") for a in ALLOWED_MEDBENCH):
                bad.append(imp)
        elif top in FORBIDDEN or top not in sys.stdlib_module_names:
            bad.append(imp)
    return bad


def test_the_core_modules_are_found() -> None:
    names = {m.rsplit(".", 1)[1] for m in CORE}
    assert {"replica", "election", "log", "statemachine", "messages", "wire", "recovery"} <= names


@pytest.mark.parametrize("module", CORE + REFERENCE)
def test_core_module_imports_no_clock_randomness_socket_or_database(module: str) -> None:
    assert forbidden_imports([module]) == {}


@pytest.mark.parametrize("module", CORE)
def test_core_module_keeps_to_its_layer(module: str) -> None:
    assert layer_violations(module, PACKAGE) == []


def test_the_checks_see_violations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: the PBFT simulator driver uses ``random`` and imports the simulator; a planted
    module with ``import time`` and a PBFT import is caught by both checks."""
    assert any("random" in k for k in forbidden_imports(["medbench.consensus.pbft.sim"]))
    assert "medbench.experiments" in layer_violations("medbench.consensus.pbft.sim", "x")
    fake = tmp_path / "medbench" / "consensus" / "raft"
    fake.mkdir(parents=True)
    (fake / "planted.py").write_text(
        "import time\nimport numpy\nfrom medbench.consensus.pbft import messages\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    planted = f"{PACKAGE}.planted"
    assert forbidden_imports([planted]) == {f"{planted} imports time": [planted]}
    assert layer_violations(planted, PACKAGE) == ["medbench.consensus.pbft", "numpy", "time"]
