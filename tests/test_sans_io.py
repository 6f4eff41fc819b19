"""The consensus core is sans-IO (STYLE.md): no clock, randomness, socket, event loop or database.

An AST check of every module under ``medbench/consensus`` (every protocol, at any depth) and of
every ``medbench`` module they import. ``TYPE_CHECKING`` imports count too. The drivers and the
adapters that join a protocol to them live outside ``consensus`` (:mod:`medbench.sim`,
:mod:`medbench.experiments`), so nothing here is exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medbench

FORBIDDEN = {"time", "random", "socket", "asyncio", "sqlite3"}
ROOT = Path(medbench.__file__).resolve().parent.parent
CONSENSUS = ROOT / "medbench" / "consensus"
CORE = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for p in CONSENSUS.rglob("*.py")
)
# loaded by name through medbench.backend (invisible to the import graph): the pure-Python
# twins of the native quorum, hashing and Merkle code the core runs on
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


def test_the_core_modules_are_found() -> None:
    assert {"medbench.consensus.pbft.replica", "medbench.consensus.auth"} <= set(CORE)
    assert {"medbench.consensus.baselines.pow", "medbench.consensus.baselines.central"} <= set(CORE)
    assert {"medbench.consensus.hotstuff.replica", "medbench.consensus.raft.replica"} <= set(CORE)
    assert {"viewchange", "recovery", "statetransfer", "checkpoint", "log", "messages"} <= {
        m.rsplit(".", 1)[1] for m in CORE
    }


@pytest.mark.parametrize("module", CORE + REFERENCE)
def test_core_module_imports_no_clock_randomness_socket_or_database(module: str) -> None:
    assert forbidden_imports([module]) == {}


def test_the_check_sees_a_forbidden_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: the simulator adapter does use ``random``, and a planted import is found."""
    assert any("random" in k for k in forbidden_imports(["medbench.experiments.pbft"]))
    fake = tmp_path / "medbench" / "consensus" / "pbft"
    fake.mkdir(parents=True)
    (fake / "planted.py").write_text("from medbench.consensus.pbft import log\nimport time\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert forbidden_imports(["medbench.consensus.pbft.planted"]) == {
        "medbench.consensus.pbft.planted imports time": ["medbench.consensus.pbft.planted"]
    }
