"""The fuzz harnesses live in ``fuzz/`` at the repository root, beside ``medbench``."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
