"""placeholder"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def generic(p: Mapping[str, Any]) -> dict[str, float]:
    return {"messages": 0.0, "memory_bytes": 0.0}


pbft = baseline = toy = generic
