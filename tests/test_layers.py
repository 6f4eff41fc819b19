"""The layout's rules hold (README "Layout"): imports point down the layers, no import cycle, a
protocol loads no simulator, numerics or database.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and ``make lint`` runs
``lint-imports``; these tests run the same contracts, show that they catch a planted upward import
and a planted cycle (so a kept contract means something), and import every protocol package in a
fresh interpreter to see what it drags in.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import medbench

ROOT = Path(medbench.__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` (its own pyproject.toml)."""
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package and its contracts to plant imports in."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        ROOT / "medbench", root / "medbench", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # a primitive reaching up to a front
        ("codec.py", "import medbench.cli\n", "Every import points down the layers"),
        # the records layer reaching up to the node store
        ("records/crud.py", "import medbench.store.rows\n", "Every import points down the layers"),
        # a protocol reaching into the domain
        ("consensus/pbft/log.py", "import medbench.ledger\n", "A protocol knows nothing"),
        ("consensus/pbft/log.py", "import numpy\n", "A protocol knows nothing"),
        # the simulator reaching into a protocol
        ("sim/costs.py", "import medbench.consensus.pbft\n", "The simulator is a pure driver"),
        # the cluster driver reaching for the simulator or up to the experiments
        ("runtime/driver.py", "import medbench.sim.engine\n", "Every import points down"),
        ("runtime/bench.py", "import medbench.experiments\n", "The cluster driver drives nodes"),
        # the runtime or a sibling front reaching for the gateway (only the command line may)
        ("runtime/node.py", "import medbench.gateway.app\n", "Every import points down"),
        ("study/__init__.py", "import medbench.gateway\n", "Every import points down"),
        # one protocol reaching into another
        (
            "consensus/raft/log.py",
            "import medbench.consensus.pbft.log\n",
            "Each protocol stands alone",
        ),
        # a cycle inside one package: messages <-> log (log already imports messages)
        ("consensus/pbft/messages.py", "import medbench.consensus.pbft.log\n", "No import cycle"),
    ],
)
def test_a_planted_import_breaks_a_contract(
    scratch: Path, module: str, planted: str, contract: str
) -> None:
    path = scratch / "medbench" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n" + planted)
        done = lint(scratch)
        assert done.returncode != 0, done.stdout[-2000:]
        broken = [line for line in done.stdout.splitlines() if line.endswith("BROKEN")]
        assert any(line.startswith(contract) for line in broken), done.stdout[-3000:]
    finally:
        path.write_text(original)


PROTOCOLS = [
    "medbench.consensus",
    "medbench.consensus.auth",
    "medbench.consensus.pbft",
    "medbench.consensus.pbft.byzantine",
    "medbench.consensus.baselines",
    "medbench.consensus.baselines.pow",
    "medbench.consensus.baselines.poi",
    "medbench.consensus.baselines.dpos",
    "medbench.consensus.baselines.central",
    "medbench.consensus.hotstuff",
    "medbench.consensus.raft",
]
HEAVY = ("numpy", "networkx", "sqlite3", "_sqlite3", "medbench.sim", "medbench.experiments")


@pytest.mark.parametrize("module", PROTOCOLS)
def test_importing_a_protocol_loads_no_simulator_numerics_or_database(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_fresh_interpreter_check_sees_a_heavy_import() -> None:
    """Not vacuous: the simulator adapter of PBFT does load numpy and the simulator."""
    code = (
        "import sys, medbench.experiments.pbft\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert "numpy" in done.stdout and "medbench.sim" in done.stdout
