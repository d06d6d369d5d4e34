"""`dashd migrate`'s data step: move a v1 database's narrow `samples` rows
and `rollup_1m` buckets into chunks, then drop the v1 tables.

Bounded memory: rows are read in keyset-paginated batches of `batch_rows`
in (host, metric, time) order, each batch cut at a chunk-window boundary.
Resumable: each batch's chunks and the position reached are committed in
one transaction (meta `migrate_v1`), so an interrupted run continues where
the last commit left it. Works on both dialects (row-value comparisons).

Order of work: first the v1 1-minute buckets older than v1's rollup mark
(`rollup_until_ms`; raw rows may already be pruned there) go into the
1-minute and 1-hour tiers; then every raw row becomes raw chunks, and rows
from the mark on are rolled up into the tiers as sealing does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from twisted.logger import Logger

from dashd.store.encoding import encode_raw
from dashd.store.tiers import RAW, WINDOW_MS, Points

log = Logger()

META_KEY = "migrate_v1"
DEFAULT_BATCH_ROWS = 50_000


@dataclass
class Progress:
    phase: str  # "rollup", "samples", "drop", "done"
    position: list[Any] | None = None  # last (host, metric, t) committed
    rollup_rows: int = 0
    sample_rows: int = 0
    chunks: int = 0

    def dump(self) -> str:
        return json.dumps(self.__dict__)

    @staticmethod
    def load(text: str | None) -> Progress:
        return Progress(**json.loads(text)) if text else Progress("rollup")


def v1_tables(cursor: Any, dialect: str) -> set[str]:
    if dialect == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('samples', 'rollup_1m')")
    else:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name IN ('samples', 'rollup_1m')"
        )
    return {row[0] for row in cursor.fetchall()}


class V1Migration:
    """Runs batches through a Store's pool (its `_run`), one transaction each."""

    def __init__(
        self,
        store: Any,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        report: Callable[[Progress], None] = lambda progress: None,
    ) -> None:
        self.store = store
        self.sql = store.dialect.sql
        self.batch_rows = batch_rows
        self.report = report

    async def run(self, max_batches: int | None = None) -> Progress:
        """Move batches until done (or `max_batches`, for tests of resuming)."""
        await self.store.ready()
        batches = 0
        while True:
            progress: Progress = await self.store._run(self._transaction)
            self.report(progress)
            if progress.phase == "done":
                return progress
            batches += 1
            if max_batches is not None and batches >= max_batches:
                return progress

    def _progress(self, cursor: Any) -> Progress:
        cursor.execute(self.sql("SELECT value FROM meta WHERE name = ?"), (META_KEY,))
        row = cursor.fetchone()
        return Progress.load(row[0] if row else None)

    def _save(self, cursor: Any, progress: Progress) -> None:
        cursor.execute(self.sql("REPLACE INTO meta (name, value) VALUES (?, ?)"), (META_KEY, progress.dump()))

    def _transaction(self, cursor: Any) -> Progress:
        try:
            progress = self._step(cursor)
        except Exception:
            self.store.registry.rolled_back()
            raise
        self.store.registry.committed()
        return progress

    def _step(self, cursor: Any) -> Progress:
        progress = self._progress(cursor)
        tables = v1_tables(cursor, self.store.dialect.name)
        if progress.phase == "done" or not tables:
            progress.phase = "done"
            return progress
        if progress.phase == "rollup":
            if "rollup_1m" not in tables or not self._rollup_batch(cursor, progress):
                progress.phase, progress.position = "samples", None
        elif progress.phase == "samples":
            # Chunks written by the daemon meanwhile get their rollups first:
            # then the mark can move past this batch's chunks, whose rollups
            # this batch merges itself (only from v1's rollup mark on).
            while self.store.tables.roll_up(cursor):
                pass
            if "samples" not in tables or not self._samples_batch(cursor, progress):
                progress.phase, progress.position = "drop", None
        elif progress.phase == "drop":
            for table in sorted(tables):
                cursor.execute(f"DROP TABLE {table}")
            progress.phase = "done"
        self._save(cursor, progress)
        return progress

    def _mark(self, cursor: Any) -> int | None:
        cursor.execute(self.sql("SELECT value FROM meta WHERE name = ?"), ("rollup_until_ms",))
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] else None

    def _after(self, progress: Progress, columns: str) -> tuple[str, tuple[Any, ...]]:
        if progress.position is None:
            return "", ()
        return f"AND ({columns}) > (?, ?, ?) ", tuple(progress.position)

    def _rollup_batch(self, cursor: Any, progress: Progress) -> bool:
        mark = self._mark(cursor)
        if mark is None:
            return False
        where, params = self._after(progress, "host, metric, bucket_ms")
        cursor.execute(
            self.sql(
                f"SELECT host, metric, bucket_ms, avg_value, min_value, max_value, sample_count FROM rollup_1m "
                f"WHERE bucket_ms < ? {where}ORDER BY host, metric, bucket_ms LIMIT ?"
            ),
            (mark, *params, self.batch_rows),
        )
        rows = cursor.fetchall()
        if not rows:
            return False
        by_series: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for host, metric, bucket, avg, low, high, count in rows:
            by_series.setdefault((host, metric), []).append((bucket, avg, low, high, count))
        points = []
        for (host, metric), buckets in by_series.items():
            series_id = self.store.registry.resolve(cursor, self.sql, host, metric, self.store.wall_clock_ms())
            t, avg, low, high, count = (np.asarray(c) for c in zip(*buckets))
            points.append(
                (
                    series_id,
                    Points(
                        t.astype(np.int64),
                        avg.astype(np.float64),
                        low.astype(np.float64),
                        high.astype(np.float64),
                        count.astype(np.int64),
                    ),
                )
            )
        self.store.tables.merge_rollups(cursor, points)
        host, metric, bucket = rows[-1][:3]
        progress.position = [host, metric, int(bucket)]
        progress.rollup_rows += len(rows)
        return True

    def _samples_batch(self, cursor: Any, progress: Progress) -> bool:
        where, params = self._after(progress, "host, metric, ts_ms")
        cursor.execute(
            self.sql(
                f"SELECT host, metric, ts_ms, seq, value FROM samples WHERE 1 = 1 {where}"
                f"ORDER BY host, metric, ts_ms LIMIT ?"
            ),
            (*params, self.batch_rows),
        )
        rows = cursor.fetchall()
        if not rows:
            return False
        window = WINDOW_MS[RAW]
        if len(rows) == self.batch_rows:
            # Cut before the last (series, window): the next batch starts
            # with it whole (duplicates of one timestamp included).
            last = (rows[-1][0], rows[-1][1], rows[-1][2] - rows[-1][2] % window)
            keep = len(rows)
            while (
                keep and (rows[keep - 1][0], rows[keep - 1][1], rows[keep - 1][2] - rows[keep - 1][2] % window) == last
            ):
                keep -= 1
            rows = rows[:keep] if keep else rows
        mark = self._mark(cursor)
        groups: dict[tuple[str, str, int], list[tuple[Any, ...]]] = {}
        for host, metric, ts_ms, seq, value in rows:
            groups.setdefault((host, metric, ts_ms - ts_ms % window), []).append((ts_ms, seq, value))
        chunk_rows, to_roll = [], []
        for (host, metric, start), samples in groups.items():
            series_id = self.store.registry.resolve(cursor, self.sql, host, metric, self.store.wall_clock_ms())
            samples.sort()
            t = np.asarray([s[0] for s in samples], np.int64)
            seq = np.asarray([s[1] for s in samples], np.int64)
            value = np.asarray([s[2] for s in samples], np.float64)
            chunk_rows.append(
                (series_id, RAW, start, int(t[-1]), int(seq.min()), int(seq.max()), len(t), encode_raw(t, seq, value))
            )
            fresh = t >= mark if mark is not None else np.ones(len(t), bool)
            if fresh.any():
                to_roll.append((series_id, Points.of_samples(t[fresh], value[fresh])))
        cursor.executemany(
            self.sql(
                "INSERT INTO chunks (series_id, tier, start_ms, end_ms, first_seq, last_seq, sample_count, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            chunk_rows,
        )
        self.store.tables.merge_rollups(cursor, to_roll)
        cursor.execute(self.sql("SELECT MAX(id) FROM chunks WHERE tier = ?"), (RAW,))
        self.store.tables.set_rollup_mark(cursor, int(cursor.fetchone()[0]))
        host, metric, ts_ms = rows[-1][:3]
        progress.position = [host, metric, int(ts_ms)]
        progress.sample_rows += len(rows)
        progress.chunks += len(chunk_rows)
        return True
