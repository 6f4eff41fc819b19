"""Whether a node or gateway process "runs": a process this driver started counts while it has
not exited, even before it exec'd (when /proc still shows the parent's command line); a pid
file naming any other process counts only if that process runs the expected command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from medbench.gateway import processes
from medbench.runtime import cluster

# a child that has not exec'd the node/gateway command: its command line names neither
_IDLE = [sys.executable, "-c", "import time; time.sleep(30)"]


def test_a_started_gateway_counts_as_running_until_it_exits(tmp_path: Path) -> None:
    (tmp_path / "gateway").mkdir()
    proc = subprocess.Popen(_IDLE)
    try:
        (tmp_path / "gateway" / "gateway-0.pid").write_text(str(proc.pid))
        assert processes.gateway_pid(tmp_path, 0) is None  # not ours, not a gateway
        processes._children[proc.pid] = proc
        assert processes.gateway_pid(tmp_path, 0) == proc.pid
        proc.kill()
        proc.wait(timeout=10)
        assert processes.gateway_pid(tmp_path, 0) is None
    finally:
        processes._children.pop(proc.pid, None)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_started_node_counts_as_running_until_it_exits(tmp_path: Path) -> None:
    lay = cluster.Layout(tmp_path)
    lay.pid(0).parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(_IDLE)
    try:
        lay.pid(0).write_text(str(proc.pid))
        assert cluster.node_pid(lay, 0) is None  # not ours, not node 0's command
        cluster._children[proc.pid] = proc
        assert cluster.node_pid(lay, 0) == proc.pid
        proc.kill()
        proc.wait(timeout=10)
        assert cluster.node_pid(lay, 0) is None
    finally:
        cluster._children.pop(proc.pid, None)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
