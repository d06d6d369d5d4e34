"""Process look-back (issue 19 item 3, what atop does): snapshots of the
top-N process table kept with the history, so `processes_at` can answer
"what was on top at 03:12?" for as long as raw samples are kept.

Table `process_snapshots` (migration 0007), one row per stored snapshot.
The stream sends a table every `processes_interval` (2 s); one every
`processes_store_interval` (10 s) is stored.

Encoding (ENCODING_VERSION 2): a version byte, a kind byte, then zlib of a
compact JSON body: [total, running, started, exited, column, column, ...],
the columns in COLUMNS order, rows sorted by pid, numbers as integers in
fixed units (CPU % x10, memory % x100, RSS in KiB, I/O bytes/s x10, start
time in centiseconds). Sorting by pid lines the columns of successive
snapshots up, so a *delta* (kind 1) -- compressed with its group's keyframe
body as zlib's preset dictionary -- stores little more than the numbers
that changed: names, users and command lines are found in the keyframe.
A keyframe (kind 0) starts a group; a group lasts at most GROUP_SPAN (and
at most a quarter of the raw retention) and is pruned whole, by its
keyframe's time. Measured sizes are in docs/storage.md, "Process look-back".

Every database call goes through Store.interaction (adbapi, off the
reactor thread, with the store's deadline). Writes never wait on each other:
one flush at a time, snapshots queue (bounded) meanwhile and while the
database is down. The keyframe a delta names is written in the same or an
earlier transaction, and referenced by its row id, so nodes sharing the
database (even for one host name) never mix their groups up.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, TypeVar

import orjson
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from dashd.collect.processes import ProcessRow, ProcessSnapshot, ProcessTable
from dashd.errors import Unavailable

SECOND = 1.0
MINUTE = 60 * SECOND
ENCODING_VERSION = 2
KEYFRAME = 0
DELTA = 1
GROUP_SPAN = 5 * MINUTE  # a keyframe and the deltas after it
MAX_PENDING = 60  # snapshots held while the database is down (10 min at 10 s)
COLUMNS = (
    "pid",
    "ppid",
    "name",
    "user",
    "state",
    "cpu_x10",
    "memory_x100",
    "rss_kib",
    "threads",
    "read_bps_x10",
    "write_bps_x10",
    "start_cs",
    "cmdline",
)

_T = TypeVar("_T")  # what a database interaction returns


# ----- encoding


def snapshot_body(table: ProcessTable) -> bytes:
    """The compact, uncompressed body of a table (also a delta's dictionary)."""
    rows = sorted(table.rows, key=lambda row: row.pid)
    columns = [
        [row.pid for row in rows],
        [row.ppid for row in rows],
        [row.name for row in rows],
        [row.user for row in rows],
        [row.state for row in rows],
        [_scaled(row.cpu_percent, 10) for row in rows],
        [_scaled(row.memory_percent, 100) for row in rows],
        [row.rss // 1024 for row in rows],
        [row.threads for row in rows],
        [_scaled(row.io_read_bps, 10) for row in rows],
        [_scaled(row.io_write_bps, 10) for row in rows],
        [_scaled(row.start_time, 100) for row in rows],
        [row.cmdline for row in rows],
    ]
    return orjson.dumps([table.total, table.running, table.started, table.exited, *columns])


def encode_body(body: bytes, keyframe_body: bytes | None) -> bytes:
    """A keyframe (no dictionary) or a delta against `keyframe_body`."""
    if keyframe_body is None:
        compressor = zlib.compressobj(9)
        kind = KEYFRAME
    else:
        compressor = zlib.compressobj(9, zdict=keyframe_body)
        kind = DELTA
    return bytes([ENCODING_VERSION, kind]) + compressor.compress(body) + compressor.flush()


def decode_table(data: bytes, keyframe: bytes | None = None) -> ProcessTable:
    """The table stored in `data`; a delta needs its keyframe's stored bytes."""
    if len(data) < 2 or data[0] != ENCODING_VERSION or data[1] not in (KEYFRAME, DELTA):
        raise ValueError(f"unknown process snapshot encoding {data[:2]!r}")
    if data[1] == DELTA:
        if keyframe is None:
            raise ValueError("a delta snapshot needs its keyframe")
        decompressor = zlib.decompressobj(zdict=_body_of_keyframe(keyframe))
    else:
        decompressor = zlib.decompressobj()
    body = decompressor.decompress(data[2:]) + decompressor.flush()
    return table_of_body(body)


def _body_of_keyframe(keyframe: bytes) -> bytes:
    if len(keyframe) < 2 or keyframe[0] != ENCODING_VERSION or keyframe[1] != KEYFRAME:
        raise ValueError("a delta's reference is not a keyframe")
    return zlib.decompress(keyframe[2:])


def table_of_body(body: bytes) -> ProcessTable:
    total, running, started, exited, *columns = orjson.loads(body)
    if len(columns) != len(COLUMNS):
        raise ValueError(f"a process snapshot has {len(columns)} columns, not {len(COLUMNS)}")
    (pids, ppids, names, users, states, cpus, memories, rss_kib, threads, reads, writes, starts, cmdlines) = columns
    rows = [
        ProcessRow(
            pid=pid,
            ppid=ppid,
            name=name,
            user=user,
            state=state,
            cpu_percent=_unscaled(cpu, 10),
            memory_percent=memory / 100,
            rss=rss * 1024,
            threads=thread_count,
            io_read_bps=_unscaled(read, 10),
            io_write_bps=_unscaled(write, 10),
            start_time=start / 100,
            cmdline=cmdline,
        )
        for pid, ppid, name, user, state, cpu, memory, rss, thread_count, read, write, start, cmdline in zip(
            pids, ppids, names, users, states, cpus, memories, rss_kib, threads, reads, writes, starts, cmdlines
        )
    ]
    rows.sort(key=lambda row: (row.cpu_percent or 0.0, row.rss), reverse=True)
    return ProcessTable(rows=tuple(rows), total=total, started=started, exited=exited, running=running)


def _scaled(value: float | None, factor: int) -> int | None:
    return None if value is None else int(round(value * factor))


def _unscaled(value: int | None, factor: int) -> float | None:
    return None if value is None else value / factor


@dataclass(frozen=True)
class Keyframe:
    """The open group: the keyframe's row id, time and body."""

    row_id: int
    ts_ms: int
    body: bytes


class SnapshotEncoder:
    """Chooses keyframe or delta for each snapshot of one writer, in order.
    `encode` returns (stored bytes, the keyframe state after it); the caller
    keeps the new state only once the row is written (`commit`)."""

    def __init__(self, group_span_ms: int) -> None:
        self.group_span_ms = group_span_ms
        self.keyframe: Keyframe | None = None

    def starts_group(self, keyframe: Keyframe | None, ts_ms: int) -> bool:
        return keyframe is None or not 0 <= ts_ms - keyframe.ts_ms < self.group_span_ms

    def encode(self, snapshot: ProcessSnapshot, keyframe: Keyframe | None) -> tuple[bytes, bytes, bool]:
        """(stored bytes, body, is a keyframe) of one snapshot after `keyframe`."""
        body = snapshot_body(snapshot.table)
        if self.starts_group(keyframe, snapshot.timestamp_ms):
            return encode_body(body, None), body, True
        assert keyframe is not None  # starts_group is true without one
        return encode_body(body, keyframe.body), body, False


# ----- the database side


class SqlDialect(Protocol):
    """What this module needs of dashd.store.database.Dialect."""

    def sql(self, query: str) -> str: ...


class Cursor(Protocol):
    """The DB-API cursor (sqlite3 or pymysql, through adbapi) as used here."""

    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int: ...  # read only after this module's INSERT, which sets it

    def execute(self, query: str, params: Sequence[Any]) -> Any: ...  # Any: parameters and result vary by driver

    def fetchone(self) -> tuple[Any, ...] | None: ...  # Any: column values vary by driver (bytes or memoryview, ...)


class SnapshotDatabase(Protocol):
    """What this module needs of dashd.store.database.Store."""

    retention_raw_ms: int

    @property
    def dialect(self) -> SqlDialect: ...  # read-only here, so Store's Dialect attribute satisfies it

    async def interaction(self, work: Callable[..., _T], *args: Any) -> _T: ...  # args: work's, after the cursor

    async def ensure_schema(self) -> int: ...


class ProcessHistory(Service):
    """Keeps one process table every `store_interval` seconds in
    process_snapshots, prunes them with the raw retention, and finds the
    one nearest a time."""

    log = Logger()

    def __init__(
        self,
        store: SnapshotDatabase,
        clock: IReactorTime,
        *,
        store_interval: float,
        prune_interval: float,
        wall_clock_ms: Callable[[], int],
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._store = store
        self._clock = clock
        self.store_interval = store_interval
        self._prune_interval = prune_interval
        self._wall_clock_ms = wall_clock_ms
        self._max_pending = max_pending
        span_ms = int(min(GROUP_SPAN, store.retention_raw_ms / 4000.0) * 1000)
        self._encoder = SnapshotEncoder(max(span_ms, 1))
        self._pending: list[ProcessSnapshot] = []
        self._last_kept_ms: dict[str, int] = {}
        self._flushing: Deferred[None] | None = None
        self._flush_waiters: list[Deferred[None]] = []
        self._prune_loop: LoopingCall | None = None
        self.dropped = 0
        self.written = 0
        self.bytes_written = 0

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._prune_loop = LoopingCall(self._prune_tick)
        self._prune_loop.clock = self._clock
        self._prune_loop.start(self._prune_interval, now=False).addErrback(
            lambda failure: self.log.failure("process snapshot pruning stopped", failure)
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        if self._prune_loop is not None and self._prune_loop.running:
            self._prune_loop.stop()
        return self.flush()

    # ----- writes

    def offer(self, snapshot: ProcessSnapshot) -> None:
        """Every table the stream sends; one per store_interval is kept.
        A little slack, so a 2 s stream keeps every fifth at 10 s even when
        the collector's ticks jitter."""
        last = self._last_kept_ms.get(snapshot.host)
        if last is not None and snapshot.timestamp_ms - last < self.store_interval * 900:
            return
        self._last_kept_ms[snapshot.host] = snapshot.timestamp_ms
        self._pending.append(snapshot)
        if len(self._pending) > self._max_pending:
            del self._pending[0]
            self.dropped += 1
        if self.running:
            self.flush()

    def flush(self) -> Deferred[None]:
        """Write what is pending; fires once it is written (or has failed:
        logged, and kept for the next try when the store is down)."""
        if self._flushing is not None:
            # One write at a time, so the keyframe state stays in order;
            # this waiter's snapshots go in the write after the running one.
            waiter: Deferred[None] = Deferred()
            self._flush_waiters.append(waiter)
            return waiter
        if not self._pending:
            return succeed(None)
        batch, self._pending = self._pending, []
        waiters, self._flush_waiters = self._flush_waiters, []
        self._flushing = Deferred.fromCoroutine(self._write(batch))
        self._flushing.addBoth(self._flushed, waiters)
        return self._flushing

    def _flushed(self, result: None | Failure, waiters: list[Deferred[None]]) -> None:
        self._flushing = None
        for waiter in waiters:
            waiter.callback(None)
        if self._flush_waiters or (self._pending and self.running):
            later, self._flush_waiters = self._flush_waiters, []
            d = self.flush()
            for waiter in later:
                d.addBoth(lambda _, waiter: waiter.callback(None), waiter)

    async def _write(self, batch: list[ProcessSnapshot]) -> None:
        try:
            await self._store.ensure_schema()  # the table is migration 0007's
            keyframe, sizes = await self._store.interaction(self._insert, batch, self._encoder.keyframe)
        except Unavailable as e:
            # Kept for the next try, oldest dropped beyond the bound.
            self._pending[:0] = batch
            overflow = len(self._pending) - self._max_pending
            if overflow > 0:
                del self._pending[:overflow]
                self.dropped += overflow
            self.log.debug("process snapshots wait for the store ({error})", error=str(e))
            return
        except Exception:
            self.log.failure("writing {count} process snapshots failed; they are dropped", count=len(batch))
            self.dropped += len(batch)
            return
        self._encoder.keyframe = keyframe
        self.written += len(sizes)
        self.bytes_written += sum(sizes)

    def _insert(
        self, cursor: Cursor, batch: list[ProcessSnapshot], keyframe: Keyframe | None
    ) -> tuple[Keyframe | None, list[int]]:
        sql = self._store.dialect.sql
        sizes: list[int] = []
        for snapshot in batch:
            data, body, is_keyframe = self._encoder.encode(snapshot, keyframe)
            if is_keyframe:
                key_id, key_ms = None, snapshot.timestamp_ms
            else:
                assert keyframe is not None  # encode() makes a delta only after a keyframe
                key_id, key_ms = keyframe.row_id, keyframe.ts_ms
            cursor.execute(
                sql("INSERT INTO process_snapshots (host, ts_ms, key_id, key_ms, data) VALUES (?, ?, ?, ?, ?)"),
                (snapshot.host, snapshot.timestamp_ms, key_id, key_ms, data),
            )
            if is_keyframe:
                keyframe = Keyframe(int(cursor.lastrowid), snapshot.timestamp_ms, body)
            sizes.append(len(data))
        return keyframe, sizes

    # ----- pruning

    def _prune_tick(self) -> Deferred[int]:
        d = Deferred.fromCoroutine(self.prune(self._wall_clock_ms()))
        d.addErrback(lambda failure: failure.trap(Unavailable))  # type: ignore[call-overload]  # Failure.trap is untyped
        d.addErrback(lambda failure: self.log.failure("pruning process snapshots failed", failure))
        return d

    async def prune(self, now_ms: int) -> int:
        """Delete the groups whose keyframe is older than the raw retention."""
        cutoff = now_ms - self._store.retention_raw_ms
        await self._store.ensure_schema()

        def delete(cursor: Cursor) -> int:
            cursor.execute(self._store.dialect.sql("DELETE FROM process_snapshots WHERE key_ms < ?"), (cutoff,))
            return cursor.rowcount

        return await self._store.interaction(delete)

    # ----- reads

    async def nearest(self, host: str, at_ms: int, tolerance_ms: int) -> ProcessSnapshot | None:
        """The stored snapshot of `host` nearest `at_ms`, at most
        `tolerance_ms` away; None if there is none. Pending snapshots are
        written first, so a table just sent can be found."""
        await self.flush()
        await self._store.ensure_schema()
        return await self._store.interaction(self._nearest, host, at_ms, tolerance_ms)

    def _nearest(self, cursor: Cursor, host: str, at_ms: int, tolerance_ms: int) -> ProcessSnapshot | None:
        sql = self._store.dialect.sql
        candidates = []
        for comparison, order, low, high in (
            ("ts_ms <= ? AND ts_ms >= ?", "DESC", at_ms, at_ms - tolerance_ms),
            ("ts_ms > ? AND ts_ms <= ?", "ASC", at_ms, at_ms + tolerance_ms),
        ):
            cursor.execute(
                sql(
                    f"SELECT id, ts_ms, key_id, data FROM process_snapshots WHERE host = ? AND "
                    f"{comparison} ORDER BY ts_ms {order} LIMIT 1"
                ),
                (host, low, high),
            )
            row = cursor.fetchone()
            if row is not None:
                candidates.append(row)
        if not candidates:
            return None
        _, ts_ms, key_id, data = min(candidates, key=lambda row: abs(int(row[1]) - at_ms))
        keyframe = None
        if key_id is not None:
            cursor.execute(sql("SELECT data FROM process_snapshots WHERE id = ?"), (key_id,))
            found = cursor.fetchone()
            if found is None:
                return None  # its group is being pruned
            keyframe = bytes(found[0])
        return ProcessSnapshot(host, int(ts_ms), decode_table(bytes(data), keyframe))
