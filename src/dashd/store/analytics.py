"""The analytics service: summaries over a window (avg/min/max/p95) and the
maths behind history downsampling checks. Queries run in the store's
threads; this module is pure functions."""

from __future__ import annotations

import math
from typing import Any, Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return sorted_values[int(position)]
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """avg/min/max/p95/count/last of a series in time order; nulls when empty."""
    if not values:
        return {"avg": None, "min": None, "max": None, "p95": None, "count": 0, "last": None}
    ordered = sorted(values)
    return {
        "avg": round(sum(values) / len(values), 4),
        "min": ordered[0],
        "max": ordered[-1],
        "p95": round(percentile(ordered, 0.95), 4),
        "count": len(values),
        "last": values[-1],
    }
