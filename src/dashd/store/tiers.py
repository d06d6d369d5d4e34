"""Tiers: raw samples, 1-minute and 1-hour buckets (avg, min, max, count).

Buckets are mergeable (count-weighted average, min of mins, max of maxes,
sum of counts), so a rollup is computed from the raw chunk being sealed and
merged into the tier chunk covering it: no tier is ever re-read whole. Pure
numpy functions; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashd.store.encoding import AggregateColumns

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

RAW, MINUTE, HOUR = 0, 1, 2
TIER_NAMES = {RAW: "raw", MINUTE: "1m", HOUR: "1h"}
BUCKET_MS = {MINUTE: MINUTE_MS, HOUR: HOUR_MS}
# Time span of one chunk row per tier. Raw: 10 minutes (600 samples at 1 Hz,
# about a kilobyte: small enough to stay inside an InnoDB page, big enough
# that the row and index overhead is a fraction of a byte per sample).
# Tiers: a day of minutes, 60 days of hours (1,440 buckets, about 8 KB):
# a 30-day history reads 30 chunks per series.
WINDOW_MS = {RAW: 10 * MINUTE_MS, MINUTE: DAY_MS, HOUR: 60 * DAY_MS}


def window_start(t_ms: int, tier: int) -> int:
    return t_ms - t_ms % WINDOW_MS[tier]


@dataclass(frozen=True)
class Points:
    """Buckets or samples on one time axis (a raw sample is a bucket of 1)."""

    t: np.ndarray
    avg: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: np.ndarray

    @staticmethod
    def of_samples(t: np.ndarray, values: np.ndarray) -> Points:
        return Points(np.asarray(t, np.int64), values, values, values, np.ones(len(t), np.int64))

    @staticmethod
    def of_columns(columns: AggregateColumns) -> Points:
        return Points(columns.t, columns.avg, columns.min, columns.max, columns.count)

    def columns(self) -> AggregateColumns:
        return AggregateColumns(self.t, self.avg, self.min, self.max, self.count)

    def __len__(self) -> int:
        return len(self.t)

    def select(self, mask: np.ndarray | slice) -> Points:
        return Points(self.t[mask], self.avg[mask], self.min[mask], self.max[mask], self.count[mask])


def concat(parts: list[Points]) -> Points:
    if not parts:
        empty = np.zeros(0, np.float64)
        return Points(np.zeros(0, np.int64), empty, empty, empty, np.zeros(0, np.int64))
    return Points(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("t", "avg", "min", "max", "count")))


def group(points: Points, keys: np.ndarray) -> tuple[np.ndarray, Points]:
    """Merge points sharing a key: (sorted unique keys, merged buckets)."""
    if not len(points):
        return keys[:0], points
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    count = points.count[order]
    weighted = np.add.reduceat(points.avg[order] * count, starts)
    counts = np.add.reduceat(count, starts)
    merged = Points(
        keys[starts].astype(np.int64),
        weighted / counts,
        np.minimum.reduceat(points.min[order], starts),
        np.maximum.reduceat(points.max[order], starts),
        counts.astype(np.int64),
    )
    return keys[starts], merged


def rollup(points: Points, bucket_ms: int) -> Points:
    """Buckets of `bucket_ms` (aligned to the epoch) from finer points."""
    keys = points.t - points.t % bucket_ms
    _, merged = group(points, keys)
    return merged


def merge(a: Points, b: Points) -> Points:
    """Two bucket series on the same grid as one (buckets at equal t merged)."""
    both = concat([a, b])
    _, merged = group(both, both.t)
    return merged
