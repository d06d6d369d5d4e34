"""Open chunks: the samples of each series' current raw window, in memory
(three typed arrays each, 24 bytes a sample), until the window is over and
the chunk is sealed, encoded once and written as one row.

Their samples are already durable: every flush writes its batch as one row
of `chunk_head` first (the write-ahead log of open chunks), and sealing
replaces the head rows with the samples still open, in the same
transaction as the sealed chunks. A restart reads the head back.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from dashd.store.encoding import HeadColumns, RawColumns
from dashd.store.tiers import RAW, WINDOW_MS

# A window is sealed once a later window of the same series has samples
# (in-order arrival) or, for a series gone quiet, once the wall clock is
# this far past its end: late samples within it join their chunk.
LATE_MS = 60_000


@dataclass
class OpenChunk:
    series_id: int
    start_ms: int
    t: array[int]
    seq: array[int]
    value: array[float]

    @classmethod
    def empty(cls, series_id: int, start_ms: int) -> OpenChunk:
        return cls(series_id, start_ms, array("q"), array("q"), array("d"))

    def __len__(self) -> int:
        return len(self.t)

    def columns(self) -> RawColumns:
        """Copies of the arrays, ordered by time (arrival order may differ)."""
        t = np.frombuffer(self.t, np.int64).copy()
        seq = np.frombuffer(self.seq, np.int64).copy()
        value = np.frombuffer(self.value, np.float64).copy()
        if len(t) > 1 and (np.diff(t) < 0).any():
            order = np.lexsort((seq, t))
            t, seq, value = t[order], seq[order], value[order]
        return RawColumns(t, seq, value)


@dataclass(frozen=True)
class SealedChunk:
    """A raw chunk ready to be written: its row's fields and its columns."""

    series_id: int
    start_ms: int
    columns: RawColumns

    @property
    def end_ms(self) -> int:
        return int(self.columns.t[-1])

    @property
    def first_seq(self) -> int:
        return int(self.columns.seq.min())

    @property
    def last_seq(self) -> int:
        return int(self.columns.seq.max())

    @property
    def count(self) -> int:
        return len(self.columns.t)


class OpenChunks:
    """Every open raw chunk, keyed by (series id, window start)."""

    def __init__(self) -> None:
        self._chunks: dict[tuple[int, int], OpenChunk] = {}
        self._current: dict[int, OpenChunk] = {}  # series id -> chunk of its newest window
        self._passed: set[tuple[int, int]] = set()  # chunks a newer window of their series has overtaken
        self._deadline: int | None = None  # earliest window end + LATE_MS among the open chunks
        self.samples = 0

    def __len__(self) -> int:
        return len(self._chunks)

    def __iter__(self) -> Iterator[OpenChunk]:
        return iter(list(self._chunks.values()))

    def add(self, series_ids: Iterable[int], rows: Iterable[tuple[int, str | None, int, str | None, float]]) -> None:
        """Append (seq, host, ts_ms, metric, value) rows to their chunks (host and metric unused)."""
        window = WINDOW_MS[RAW]
        current = self._current
        added = 0
        for series_id, (seq, _host, ts_ms, _metric, value) in zip(series_ids, rows):
            chunk = current.get(series_id)
            if chunk is None or not chunk.start_ms <= ts_ms < chunk.start_ms + window:
                chunk = self._chunk_for(series_id, ts_ms - ts_ms % window)
            chunk.t.append(ts_ms)
            chunk.seq.append(seq)
            chunk.value.append(value)
            added += 1
        self.samples += added

    def _chunk_for(self, series_id: int, start: int) -> OpenChunk:
        """The open chunk of a series' window, made on first use (the slow path)."""
        chunk = self._chunks.get((series_id, start))
        if chunk is None:
            chunk = self._chunks[(series_id, start)] = OpenChunk.empty(series_id, start)
            deadline = start + WINDOW_MS[RAW] + LATE_MS
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
        newest = self._current.get(series_id)
        if newest is None or start > newest.start_ms:
            if newest is not None:
                self._passed.add((series_id, newest.start_ms))
            self._current[series_id] = chunk
        elif start < newest.start_ms:
            self._passed.add((series_id, start))
        return chunk

    def add_columns(self, head: HeadColumns) -> None:
        rows = zip(head.seq.tolist(), [None] * len(head.t), head.t.tolist(), [None] * len(head.t), head.value.tolist())
        self.add(head.series.tolist(), rows)

    def take_due(self, now_ms: int, everything: bool = False) -> list[SealedChunk]:
        """Remove and return the chunks whose window is over: overtaken by a
        newer window of their series, or idle past LATE_MS (checked only
        when the earliest deadline has come: this runs every flush)."""
        if everything:
            keys = list(self._chunks)
        else:
            keys = [key for key in self._passed if key in self._chunks]
            if self._deadline is not None and now_ms >= self._deadline:
                keys = list(self._chunks)
        window = WINDOW_MS[RAW]
        due = []
        for key in keys:
            chunk = self._chunks[key]
            if not (everything or key in self._passed or now_ms >= chunk.start_ms + window + LATE_MS):
                continue
            del self._chunks[key]
            self._passed.discard(key)
            if self._current.get(chunk.series_id) is chunk:
                del self._current[chunk.series_id]
            self.samples -= len(chunk)
            if len(chunk):
                due.append(SealedChunk(chunk.series_id, chunk.start_ms, chunk.columns()))
        self._passed.intersection_update(self._chunks)
        if due or (self._deadline is not None and now_ms >= self._deadline):
            self._deadline = min((c.start_ms + window + LATE_MS for c in self._chunks.values()), default=None)
        return due

    def head_columns(self) -> HeadColumns:
        """Every open sample, for the head row that replaces the others at a seal."""
        chunks = [c for c in self._chunks.values() if len(c)]
        if not chunks:
            empty = np.zeros(0, np.int64)
            return HeadColumns(empty, empty, empty, np.zeros(0, np.float64))
        return HeadColumns(
            np.concatenate([np.full(len(c), c.series_id, np.int64) for c in chunks]),
            np.concatenate([np.frombuffer(c.t, np.int64) for c in chunks]),
            np.concatenate([np.frombuffer(c.seq, np.int64) for c in chunks]),
            np.concatenate([np.frombuffer(c.value, np.float64) for c in chunks]),
        )

    def snapshot(self, series_ids: set[int] | None = None) -> list[tuple[int, RawColumns]]:
        """Copies of the open samples (of some series), for queries."""
        return [(c.series_id, c.columns()) for c in list(self._chunks.values())
                if len(c) and (series_ids is None or c.series_id in series_ids)]
