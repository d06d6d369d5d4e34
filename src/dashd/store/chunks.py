"""Open chunks: the samples of each series' current raw window, in memory,
until the window is over and the chunk is sealed, encoded once and written
as one row.

They are kept as columns (series id, time, seq, value: 32 bytes a sample),
one batch per flush, never as a Python object per sample: adding a flush's
samples, finding the windows that are over and cutting them into chunks
are a few numpy operations whatever the number of series. Every
COMPACT_BATCHES flushes the recent batches are merged into one run ordered
by series (a stable sort: arrival order within a series), so a query's
snapshot of a few series is a binary search per run rather than a scan;
runs are never re-sorted into each other (that would copy the window's
samples again and again), and chunks are put in time order when cut.

Their samples are already durable: every flush writes its batch as one row
of `chunk_head` first (the write-ahead log of open chunks), and sealing
replaces the head rows with the samples still open, in the same
transaction as the sealed chunks. A restart reads the head back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashd.store.encoding import HeadColumns, RawColumns
from dashd.store.tiers import RAW, WINDOW_MS

# A window is sealed once a later window of the same series has samples
# (in-order arrival) or, for a series gone quiet, once the wall clock is
# this far past its end: late samples within it join their chunk.
LATE_MS = 60_000
COMPACT_BATCHES = 64  # flush batches kept apart before they are merged into the ordered one


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


def _empty() -> HeadColumns:
    none = np.zeros(0, np.int64)
    return HeadColumns(none, none, none, np.zeros(0, np.float64))


def _concat(parts: list[HeadColumns]) -> HeadColumns:
    if len(parts) == 1:
        return parts[0]
    return HeadColumns(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("series", "t", "seq", "value")))


def _take(columns: HeadColumns, index: np.ndarray) -> HeadColumns:
    return HeadColumns(columns.series[index], columns.t[index], columns.seq[index], columns.value[index])


class OpenChunks:
    """Every open raw sample, by series and window (window = time rounded
    down to WINDOW_MS[RAW]). Arrays are never changed in place, so a column
    handed to the database thread (head_columns) stays valid."""

    def __init__(self) -> None:
        self._runs: list[HeadColumns] = []  # merged batches, each ordered by series
        self._batches: list[HeadColumns] = []  # flushes since the last merge, in arrival order
        self._newest = np.full(0, -1, np.int64)  # newest window start seen, by series id
        self._overtaken = False  # a window may have been passed by a newer one of its series
        self._oldest: int | None = None  # earliest window start among the open samples
        self.samples = 0

    def __len__(self) -> int:
        return self.samples

    def add_columns(self, head: HeadColumns) -> None:
        """Append a batch of samples (a flush, or head rows read back)."""
        if not len(head.t):
            return
        windows = head.t - head.t % WINDOW_MS[RAW]
        top = int(head.series.max())
        if top >= len(self._newest):
            grown = np.full(max(top + 1, 2 * len(self._newest)), -1, np.int64)
            grown[: len(self._newest)] = self._newest
            self._newest = grown
        before = self._newest[head.series]
        self._newest[head.series] = np.maximum(before, windows)
        if (self._newest[head.series] < windows).any():  # a series twice in the batch: the slow, exact way
            np.maximum.at(self._newest, head.series, windows)
        # A sample in a newer window than its series had overtakes the older
        # one; a late sample in an older window is sealed as a chunk of its
        # own (and a batch read back from the head may span windows).
        if ((before >= 0) & (windows != before)).any() or (windows < self._newest[head.series]).any():
            self._overtaken = True
        oldest = int(windows.min())
        self._oldest = oldest if self._oldest is None else min(self._oldest, oldest)
        self._batches.append(head)
        self.samples += len(head.t)
        if len(self._batches) >= COMPACT_BATCHES:
            self._runs.append(_by_series(_concat(self._batches)))
            self._batches = []

    def _every(self) -> HeadColumns:
        parts = self._runs + self._batches
        return _concat(parts) if parts else _empty()

    def take_due(self, now_ms: int, everything: bool = False) -> list[SealedChunk]:
        """Remove and return the chunks whose window is over: overtaken by a
        newer window of their series, or idle past LATE_MS (checked only
        when one may be: this runs every flush)."""
        window = WINDOW_MS[RAW]
        oldest = self._oldest
        if not self.samples or oldest is None:  # _oldest is set whenever samples are open
            return []
        if not (everything or self._overtaken or now_ms >= oldest + window + LATE_MS):
            return []
        every = self._every()
        windows = every.t - every.t % window
        if everything:
            due = np.ones(len(windows), bool)
        else:
            due = (windows < self._newest[every.series]) | (now_ms >= windows + window + LATE_MS)
        kept = ~due
        self._runs = [_by_series(_take(every, kept))] if kept.any() else []
        self._batches = []
        self._overtaken = False
        self._oldest = int(windows[kept].min()) if kept.any() else None
        self.samples = int(kept.sum())
        ripe = _take(every, due)
        ripe_windows = windows[due]
        order = np.lexsort((ripe.seq, ripe.t, ripe_windows, ripe.series))
        return _cut(_take(ripe, order), ripe_windows[order])

    def head_columns(self) -> HeadColumns:
        """Every open sample, for the head row that replaces the others at a seal."""
        return self._every()

    def snapshot(self, series_ids: set[int] | None = None) -> list[tuple[int, RawColumns]]:
        """The open samples (of some series), for queries: per series, in
        one or more parts."""
        if series_ids is None:
            return [(chunk.series_id, chunk.columns) for chunk in _cut(self._every(), None, ordered=False)]
        wanted = np.asarray(sorted(series_ids), np.int64)
        found = []
        for run in self._runs:
            lows = np.searchsorted(run.series, wanted, "left")
            highs = np.searchsorted(run.series, wanted, "right")
            for series_id, low, high in zip(wanted.tolist(), lows.tolist(), highs.tolist()):
                if high > low:
                    found.append((series_id, RawColumns(run.t[low:high], run.seq[low:high], run.value[low:high])))
        for batch in self._batches:
            mask = np.isin(batch.series, wanted)
            if mask.any():
                found.extend(
                    (s.series_id, s.columns) for s in _cut(_take(batch, np.flatnonzero(mask)), None, ordered=False)
                )
        return found


def _by_series(columns: HeadColumns) -> HeadColumns:
    return _take(columns, np.argsort(columns.series, kind="stable"))


def _cut(columns: HeadColumns, windows: np.ndarray | None, ordered: bool = True) -> list[SealedChunk]:
    """Split samples ordered by (series, t, seq) into one part per series
    (and per window, when `windows` is given, ordered by it after series)."""
    if not len(columns.t):
        return []
    if not ordered:
        columns = _take(columns, np.lexsort((columns.seq, columns.t, columns.series)))
    change = columns.series[1:] != columns.series[:-1]
    if windows is not None:
        change |= windows[1:] != windows[:-1]
    edges = np.concatenate(([0], np.flatnonzero(change) + 1, [len(columns.t)])).tolist()
    starts = (windows if windows is not None else columns.t)[edges[:-1]].tolist()
    series = columns.series[edges[:-1]].tolist()
    window = WINDOW_MS[RAW]
    return [
        SealedChunk(
            series_id,
            start - start % window if windows is None else start,
            RawColumns(columns.t[a:b], columns.seq[a:b], columns.value[a:b]),
        )
        for series_id, start, a, b in zip(series, starts, edges[:-1], edges[1:])
    ]
