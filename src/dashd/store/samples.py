"""The samples engine's database side: what runs in the store's database
thread (inside `runInteraction`) to write the head and sealed chunks, merge
rollups into the 1-minute and 1-hour tiers, prune whole chunks, and read
chunks back for history, stats and resume.

A chunk that does not decode (corrupt or truncated bytes) is skipped with
one log line naming it; the rest of the range is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypedDict, TypeVar

import numpy as np
from twisted.logger import Logger

from dashd.store.chunks import SealedChunk
from dashd.store.cursor import Cursor, Row
from dashd.store.encoding import AGGREGATE as AGGREGATE_TYPE
from dashd.store.encoding import RAW as RAW_TYPE
from dashd.store.encoding import (
    ChunkCorrupt,
    HeadColumns,
    RawColumns,
    decode_aggregate,
    decode_head,
    decode_many,
    decode_raw,
    encode_aggregate,
    encode_head,
    encode_raw,
)
from dashd.store.series import SeriesRegistry
from dashd.store.tiers import BUCKET_MS, HOUR, MINUTE, RAW, WINDOW_MS, Points, concat, group, merge

log = Logger()

IN_CHUNK = 500  # ids per IN (...) list
ROLLUP_MARK = "rollup_chunk_id"
ROLLUP_BATCH = 5_000  # raw chunks merged into the tiers per transaction
DEFAULT_OWNER = "local"  # the head owner of a store not given a node id (one node per database)

# (seq, host, time ms, series key, value): one queued sample (a
# metrics_update always names its host; StreamMessage types it optional).
SampleRow = tuple[int, str | None, int, str, float]

_Item = TypeVar("_Item")

# A stats reply's fields: avg/min/max/p95/last (None with no samples), count
# and `approximate` (an int and a bool: both floats to mypy).
Summary = dict[str, float | None]


class HistoryPoint(TypedDict):
    """One history bucket, as the wire carries it."""

    t: int
    avg: float
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class Memory:
    """Samples not in the chunks table yet (open and sealed-unwritten), by series."""

    raw: dict[int, list[RawColumns]]

    def of(self, series_id: int) -> list[RawColumns]:
        return self.raw.get(series_id, [])


def _chunks_of(items: list[_Item], size: int = IN_CHUNK) -> Iterable[list[_Item]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class SampleTables:
    """SQL over `series`, `chunks` and `chunk_head` for one dialect."""

    def __init__(self, sql: Callable[[str], str], registry: SeriesRegistry, owner: str = DEFAULT_OWNER) -> None:
        self.sql = sql
        self.registry = registry
        # The node whose head rows these are: nodes sharing one database
        # each seal and recover only their own rows (and read the others').
        self.owner = owner

    # ----- writes

    def write_head(self, cursor: Cursor, rows: Sequence[SampleRow], now_ms: int) -> HeadColumns:
        """Register new series, write the batch as one head row; the batch as
        columns (series id, time, seq, value) for the open chunks."""
        if not rows:
            empty = np.zeros(0, np.int64)
            return HeadColumns(empty, empty, empty, np.zeros(0, np.float64))
        # Columns first (zip(*rows) transposes in C), then the ids through
        # the registry's cache: no Python loop body per sample.
        seqs, hosts, times, metrics, values = zip(*rows)
        ids = list(map(self.registry.cached_ids.get, zip(hosts, metrics)))
        if None in ids:
            resolve, sql = self.registry.resolve, self.sql
            ids = [
                resolve(cursor, sql, host, metric, now_ms) if i is None else i
                for i, host, metric in zip(ids, hosts, metrics)
            ]
        head = HeadColumns(
            np.asarray(ids, np.int64),
            np.asarray(times, np.int64),
            np.asarray(seqs, np.int64),
            np.asarray(values, np.float64),
        )
        self._insert_head(cursor, head)
        return head

    def _insert_head(self, cursor: Cursor, head: HeadColumns) -> None:
        cursor.execute(
            self.sql("INSERT INTO chunk_head (owner, first_seq, last_seq, sample_count, data) VALUES (?, ?, ?, ?, ?)"),
            (
                self.owner,
                int(head.seq.min()),
                int(head.seq.max()),
                len(head.t),
                encode_head(head.series, head.t, head.seq, head.value),
            ),
        )

    def seal(self, cursor: Cursor, sealed: list[SealedChunk], still_open: HeadColumns) -> None:
        """Write sealed raw chunks and replace the head rows by the samples
        still open: one transaction. (Their rollups follow: `roll_up`.)"""
        if sealed:
            cursor.executemany(
                self.sql(
                    "INSERT INTO chunks (series_id, tier, start_ms, end_ms, first_seq, last_seq, sample_count, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [
                    (
                        c.series_id,
                        RAW,
                        c.start_ms,
                        c.end_ms,
                        c.first_seq,
                        c.last_seq,
                        c.count,
                        encode_raw(c.columns.t, c.columns.seq, c.columns.value),
                    )
                    for c in sealed
                ],
            )
        cursor.execute(self.sql("DELETE FROM chunk_head WHERE owner = ?"), (self.owner,))
        if len(still_open.t):
            self._insert_head(cursor, still_open)

    def rollup_mark(self, cursor: Cursor) -> int:
        """Raw chunks with ids up to this are in the 1-minute and 1-hour tiers."""
        cursor.execute(self.sql("SELECT value FROM meta WHERE name = ?"), (ROLLUP_MARK,))
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def set_rollup_mark(self, cursor: Cursor, chunk_id: int) -> None:
        cursor.execute(self.sql("REPLACE INTO meta (name, value) VALUES (?, ?)"), (ROLLUP_MARK, str(chunk_id)))

    def roll_up(self, cursor: Cursor, limit: int = ROLLUP_BATCH) -> int:
        """Merge the next raw chunks past the mark into the tiers, in chunk id
        order, and move the mark: what a crash interrupts is redone from
        the chunks. Returns how many chunks were read."""
        mark = self.rollup_mark(cursor)
        cursor.execute(
            self.sql("SELECT series_id, id, data FROM chunks WHERE tier = ? AND id > ? ORDER BY id LIMIT ?"),
            (RAW, mark, limit),
        )
        rows = cursor.fetchall()
        points: list[tuple[int, Points]] = []
        # In series order, each series' samples in time order: the sort on
        # (series, bucket) in merge_rollups then finds one presorted run.
        for series_id, chunk_ids, blobs in sorted(_by_series(rows), key=lambda group: group[0]):
            t, _seq, value = decode_many(blobs, RAW_TYPE, 3, _reporter(series_id, chunk_ids, RAW))
            points.append((series_id, Points.of_samples(t, value)))
        self.merge_rollups(cursor, points)
        if rows:
            self.set_rollup_mark(cursor, max(int(row[1]) for row in rows))
        return len(rows)

    def merge_rollups(self, cursor: Cursor, points: list[tuple[int, Points]]) -> None:
        """Fold finer points into the 1-minute and 1-hour tier chunks they
        fall in: only those chunk rows are read and rewritten. Every series
        is bucketed at once (one sort per tier on a (series, bucket) key),
        the hours from the minutes."""
        points = [(series_id, p) for series_id, p in points if len(p)]
        if not points:
            return
        finer = concat([p for _, p in points])
        series = np.concatenate([np.full(len(p), series_id, np.int64) for series_id, p in points])
        for tier in (MINUTE, HOUR):
            bucket = BUCKET_MS[tier]
            keys, merged = group(finer, (series << 32) | (finer.t // bucket))
            series = keys >> 32
            finer = Points((keys & 0xFFFFFFFF) * bucket, merged.avg, merged.min, merged.max, merged.count)
            windows = finer.t - finer.t % WINDOW_MS[tier]
            edges = np.flatnonzero((series[1:] != series[:-1]) | (windows[1:] != windows[:-1])) + 1
            bounds = np.concatenate(([0], edges, [len(series)])).tolist()
            updates = {
                (int(series[a]), int(windows[a])): finer.select(slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])
            }
            self._upsert_tier(cursor, tier, updates)

    def _upsert_tier(self, cursor: Cursor, tier: int, updates: dict[tuple[int, int], Points]) -> None:
        by_window: dict[int, list[int]] = {}
        for series_id, start in updates:
            by_window.setdefault(start, []).append(series_id)
        existing: dict[tuple[int, int], tuple[int, Points]] = {}
        for start, series_ids in by_window.items():
            for part in _chunks_of(series_ids):
                marks = ", ".join("?" for _ in part)
                cursor.execute(
                    self.sql(
                        f"SELECT id, series_id, data FROM chunks WHERE tier = ? AND start_ms = ? "
                        f"AND series_id IN ({marks}) ORDER BY id"
                    ),
                    (tier, start, *part),
                )
                for chunk_id, series_id, data in cursor.fetchall():
                    key = (int(series_id), start)
                    if key in existing:
                        continue
                    try:
                        existing[key] = (int(chunk_id), Points.of_columns(decode_aggregate(data)))
                    except ChunkCorrupt as e:
                        _log_corrupt(chunk_id, series_id, tier, e)
        inserts: list[tuple[int, int, int, int, int, int, int, bytes]] = []  # the chunks columns, in INSERT order
        changes: list[tuple[int, int, bytes, int]] = []  # (end_ms, sample_count, data, id)
        inserts, changes = [], []
        for (series_id, start), fresh in updates.items():
            if (series_id, start) in existing:
                chunk_id, old = existing[(series_id, start)]
                merged = merge(old, fresh)
                changes.append((int(merged.t[-1]), len(merged), _encode_tier(merged), chunk_id))
            else:
                inserts.append((series_id, tier, start, int(fresh.t[-1]), 0, 0, len(fresh), _encode_tier(fresh)))
        if inserts:
            cursor.executemany(
                self.sql(
                    "INSERT INTO chunks (series_id, tier, start_ms, end_ms, first_seq, last_seq, sample_count, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                inserts,
            )
        if changes:
            cursor.executemany(
                self.sql("UPDATE chunks SET end_ms = ?, sample_count = ?, data = ? WHERE id = ?"), changes
            )

    def prune(self, cursor: Cursor, before_ms: dict[int, int]) -> int:
        """Delete whole chunks whose newest point is older than their tier's cutoff."""
        deleted = 0
        for tier, cutoff in before_ms.items():
            cursor.execute(self.sql("DELETE FROM chunks WHERE tier = ? AND end_ms < ?"), (tier, cutoff))
            deleted += max(cursor.rowcount, 0)
        return deleted

    # ----- reads

    def read_head(self, cursor: Cursor) -> list[HeadColumns]:
        """This node's head rows (what it wrote before a kill -9)."""
        cursor.execute(self.sql("SELECT id, data FROM chunk_head WHERE owner = ? ORDER BY id"), (self.owner,))
        return self._decoded_heads(cursor.fetchall())

    def read_other_heads(
        self, cursor: Cursor, series_ids: set[int] | None = None, from_seq: int | None = None, to_seq: int | None = None
    ) -> dict[int, list[RawColumns]]:
        """The open-chunk samples of the other nodes sharing this database,
        by series (only `series_ids` when given). Our own open samples are
        in memory; another node's are only in its head rows until it seals
        them, which moves them to `chunks` in one transaction: a read in one
        transaction sees each sample in exactly one of the two."""
        params: list[str | int]
        query, params = "SELECT id, data FROM chunk_head WHERE owner <> ?", [self.owner]
        if from_seq is not None and to_seq is not None:
            query += " AND last_seq >= ? AND first_seq <= ?"
            params += [from_seq, to_seq]
        cursor.execute(self.sql(query + " ORDER BY id"), tuple(params))
        found: dict[int, list[RawColumns]] = {}
        for head in self._decoded_heads(cursor.fetchall()):
            for series_id in np.unique(head.series).tolist():
                if series_ids is not None and series_id not in series_ids:
                    continue
                keep = head.series == series_id
                found.setdefault(int(series_id), []).append(RawColumns(head.t[keep], head.seq[keep], head.value[keep]))
        return found

    def _decoded_heads(self, rows: Sequence[Row]) -> list[HeadColumns]:
        heads = []
        for head_id, data in rows:
            try:
                heads.append(decode_head(data))
            except ChunkCorrupt as e:
                log.error("store: head row {id} is corrupt ({error}); its samples are lost", id=head_id, error=str(e))
        return heads

    def read_tier(
        self, cursor: Cursor, series_ids: list[int], tier: int, from_ms: int, to_ms: int
    ) -> dict[int, list[Points]]:
        """Points of the tier's chunks overlapping [from_ms, to_ms], by series
        (each series' chunks decoded together: see decode_many)."""
        return self._decoded_points(self._chunk_rows(cursor, series_ids, tier, from_ms, to_ms), tier)

    def _decoded_points(self, rows: Sequence[Row], tier: int) -> dict[int, list[Points]]:
        found: dict[int, list[Points]] = {}
        for series_id, chunk_ids, blobs in _by_series(rows):
            report = _reporter(series_id, chunk_ids, tier)
            if tier == RAW:
                t, _seq, value = decode_many(blobs, RAW_TYPE, 3, report)
                points = Points.of_samples(t, value)
            else:
                t, avg, low, high, count = decode_many(blobs, AGGREGATE_TYPE, 5, report)
                points = Points(t, avg, low, high, count.astype(np.int64))
            if len(points):
                found[series_id] = [points]
        return found

    def read_unrolled(self, cursor: Cursor, series_ids: list[int], from_ms: int, to_ms: int) -> dict[int, list[Points]]:
        """Raw chunks past the rollup mark (not in the tiers yet) as points."""
        mark = self.rollup_mark(cursor)
        return self._decoded_points(self._chunk_rows(cursor, series_ids, RAW, from_ms, to_ms, after_id=mark), RAW)

    def read_raw(self, cursor: Cursor, series_ids: list[int], from_ms: int, to_ms: int) -> dict[int, list[RawColumns]]:
        found: dict[int, list[RawColumns]] = {}
        for series_id, chunk_ids, blobs in _by_series(self._chunk_rows(cursor, series_ids, RAW, from_ms, to_ms)):
            t, seq, value = decode_many(blobs, RAW_TYPE, 3, _reporter(series_id, chunk_ids, RAW))
            if len(t):
                found[series_id] = [RawColumns(t, seq, value)]
        return found

    def _chunk_rows(
        self, cursor: Cursor, series_ids: list[int], tier: int, from_ms: int, to_ms: int, after_id: int | None = None
    ) -> list[Row]:
        rows: list[Row] = []
        for part in _chunks_of(sorted(series_ids)):
            marks = ", ".join("?" for _ in part)
            if after_id is None:
                cursor.execute(
                    self.sql(
                        f"SELECT series_id, id, data FROM chunks WHERE series_id IN ({marks}) AND tier = ? "
                        f"AND start_ms >= ? AND start_ms <= ? AND end_ms >= ? ORDER BY series_id, start_ms, id"
                    ),
                    (*part, tier, from_ms - WINDOW_MS[tier], to_ms, from_ms),
                )
            else:
                # Chunks past the rollup mark are the newest few: walk the
                # primary key from the mark (the unary + keeps both SQLite
                # and MariaDB off the per-series index, which would visit
                # every chunk of the range).
                cursor.execute(
                    self.sql(
                        f"SELECT series_id, id, data FROM chunks WHERE id > ? AND +tier = ? AND +series_id IN ({marks}) "
                        f"AND +start_ms >= ? AND +start_ms <= ? AND +end_ms >= ? ORDER BY id"
                    ),
                    (after_id, tier, *part, from_ms - WINDOW_MS[tier], to_ms, from_ms),
                )
            rows.extend(cursor.fetchall())
        return rows

    def read_seq(self, cursor: Cursor, from_seq: int, to_seq: int) -> list[tuple[int, RawColumns]]:
        """Raw chunks holding seqs in [from_seq, to_seq]."""
        cursor.execute(
            self.sql("SELECT series_id, id, data FROM chunks WHERE last_seq >= ? AND first_seq <= ? AND tier = ?"),
            (from_seq, to_seq, RAW),
        )
        found: list[tuple[int, RawColumns]] = []
        for series_id, chunk_id, data in cursor.fetchall():
            try:
                found.append((int(series_id), decode_raw(data)))
            except ChunkCorrupt as e:
                _log_corrupt(chunk_id, series_id, RAW, e)
        return found

    def max_seq(self, cursor: Cursor) -> int:
        best = 0
        for table in ("chunks", "chunk_head"):
            cursor.execute(f"SELECT MAX(last_seq) FROM {table}")
            row = cursor.fetchone()
            assert row is not None  # an aggregate without GROUP BY gives one row
            best = max(best, int(row[0] or 0))
        return best


AVG_DECIMALS = 4  # what history reports; lets the averages use the decimal encoding


def _encode_tier(points: Points) -> bytes:
    """Tier buckets as a chunk; averages kept to AVG_DECIMALS places (min,
    max and count stay exact)."""
    return encode_aggregate(
        Points(points.t, np.round(points.avg, AVG_DECIMALS), points.min, points.max, points.count).columns()
    )


def _by_series(rows: Sequence[Row]) -> list[tuple[int, list[int], list[bytes]]]:
    """(series_id, chunk id, data) rows -> per series: (id, chunk ids, blobs)."""
    grouped: dict[int, tuple[list[int], list[bytes]]] = {}
    for series_id, chunk_id, data in rows:
        ids, blobs = grouped.setdefault(int(series_id), ([], []))
        ids.append(chunk_id)
        blobs.append(data)
    return [(series_id, ids, blobs) for series_id, (ids, blobs) in grouped.items()]


def _reporter(series_id: int, chunk_ids: list[int], tier: int) -> Callable[[int, Exception], None]:
    return lambda index, error: _log_corrupt(chunk_ids[index], series_id, tier, error)


def _log_corrupt(chunk_id: int, series_id: int, tier: int, error: Exception) -> None:
    log.error(
        "store: chunk {id} (series {series}, tier {tier}) is corrupt ({error}); skipped",
        id=chunk_id,
        series=series_id,
        tier=tier,
        error=str(error),
    )


# ----- query maths (run in the database thread too: numpy, not the reactor)


def bucketed(points: list[Points], from_ms: int, to_ms: int, bucket_ms: int) -> list[HistoryPoint]:
    """History points: equal buckets from `from_ms`, empty ones left out,
    avg/min/max/count merged from every point (sample or bucket) in them."""
    every = concat(points)
    every = every.select((every.t >= from_ms) & (every.t < to_ms))
    keys, merged = group(every, (every.t - from_ms) // bucket_ms)
    # Whole columns to Python numbers at once (tolist), not one call per value.
    columns = (
        (from_ms + keys * bucket_ms).tolist(),
        np.round(merged.avg, 4).tolist(),
        merged.min.astype(np.float64).tolist(),
        merged.max.astype(np.float64).tolist(),
        merged.count.tolist(),
    )
    return [{"t": t, "avg": a, "min": lo, "max": hi, "count": c} for t, a, lo, hi, c in zip(*columns)]


def exact_summary(parts: list[RawColumns], from_ms: int, to_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) of raw samples in [from_ms, to_ms], in time order."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    t = np.concatenate([p.t for p in parts])
    seq = np.concatenate([p.seq for p in parts])
    v = np.concatenate([p.value for p in parts])
    keep = (t >= from_ms) & (t <= to_ms)
    t, seq, v = t[keep], seq[keep], v[keep]
    order = np.lexsort((seq, t))
    return t[order], v[order]


def summary(values: np.ndarray, approximate: Points | None = None) -> Summary:
    """avg/min/max/p95/count/last; with tier buckets before the raw part,
    an approximation (p95 from bucket averages weighted by their counts)."""
    from dashd.store.analytics import summarize

    if approximate is None or not len(approximate):
        if not len(values):
            return summarize([])
        return {
            "avg": round(float(values.mean()), 4),
            "min": float(values.min()),
            "max": float(values.max()),
            "p95": round(float(np.percentile(values, 95)), 4),
            "count": int(len(values)),
            "last": float(values[-1]),
        }
    count = int(approximate.count.sum()) + len(values)
    total = float((approximate.avg * approximate.count).sum() + values.sum())
    spread = np.concatenate((np.repeat(approximate.avg, np.minimum(approximate.count, 60)), values))
    return {
        "avg": round(total / count, 4),
        "min": float(min(approximate.min.min(), values.min() if len(values) else np.inf)),
        "max": float(max(approximate.max.max(), values.max() if len(values) else -np.inf)),
        "p95": round(float(np.percentile(spread, 95)), 4),
        "count": count,
        "last": float(values[-1]) if len(values) else float(approximate.avg[-1]),
        "approximate": True,
    }
