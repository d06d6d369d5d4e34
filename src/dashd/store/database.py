"""The store (the original specification's DataProvider): samples,
notifications, rules, users and audit in SQLite (default) or MySQL, through
twisted.enterprise.adbapi so no query runs on the reactor thread.

Samples are kept as compressed chunks, one series each (docs/storage.md):
every `batch_interval` the queued samples are written as one head row (the
write-ahead log of the open chunks) and appended to their open chunk in
memory; a chunk whose 10-minute window is over is sealed, encoded once and
written with its 1-minute and 1-hour rollups. While the database is
unreachable samples wait in a bounded in-memory queue (oldest dropped first,
with a log line) and are written when it comes back.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable, Iterable, Sequence, TypeVar, TypeVarTuple, cast

from twisted.application.service import Service
from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, DeferredLock, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from dashd.errors import Unavailable
from dashd.ops.private import private_file
from dashd.settings import DatabaseURL, check_db_url, redact_url
from dashd.store.chunks import OpenChunks, SealedChunk
from dashd.store.cursor import Cursor, Row, SqliteCursor
from dashd.store.encoding import HeadColumns, RawColumns
from dashd.store.pool import SOCKET_MARGIN, DeadlineExceeded, DeadlinePool, Ticket, abort_connection
from dashd.store.samples import (
    DEFAULT_OWNER,
    HistoryPoint,
    Memory,
    SampleRow,
    SampleTables,
    Summary,
    bucketed,
    exact_summary,
    summary,
)
from dashd.store.samples import ROLLUP_BATCH as ROLLUP_BATCH_CHUNKS
from dashd.store.series import Describe, SeriesRegistry
from dashd.store.spill import SpillFile
from dashd.store.tiers import HOUR, HOUR_MS, MINUTE, RAW, TIER_NAMES, Points
from dashd.stream.streams import METRICS_UPDATE, NOTIFICATION, NOTIFICATION_ACK, StreamMessage
from dashd.timefmt import iso_ms

MINUTE_MS = 60_000
DAY = 86_400.0
SECOND = 1.0
GIL_SWITCH_INTERVAL = 0.0005  # seconds; see Store.startService
QUERY_ATTEMPTS = 5  # a query overlapping a seal reads again (seals are minutes apart)
ROLLUP_SAMPLES = 2_000_000  # sealed samples that trigger a rollup batch
ROLLUP_INTERVAL = 3600.0  # seconds: and at least this often
READY_TIMEOUT = 1.5 * SECOND  # readiness answers "not ready" this soon into a stall
MAINTENANCE_TIMEOUT = 300 * SECOND  # migrations, rollups and pruning scan whole tables

# A queued notification: (id, seq, ts_ms, level, title, message, source, state).
NotificationRow = tuple[str, int, int, str, str, str, str, str | None]
AckRow = tuple[int, str, str, int]  # a queued acknowledgement: (seq, notification id, by, ts_ms)
Notification = dict[str, str | None]  # a notification's body, as the wire carries it

_Result = TypeVar("_Result")  # what a database interaction returns
_Args = TypeVarTuple("_Args")  # what it takes after the cursor
_Item = TypeVar("_Item")


class StoreUnavailable(Unavailable):
    """The database cannot answer now."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations(dialect: str) -> list[Migration]:
    folder = resources.files("dashd.store") / "migrations" / dialect
    migrations = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        match = re.match(r"^(\d+)_(.+)\.sql$", entry.name)
        if not match:
            continue
        text = entry.read_text(encoding="utf-8")
        text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
        statements = tuple(s.strip() for s in text.split(";") if s.strip())
        migrations.append(Migration(int(match.group(1)), match.group(2), statements))
    return migrations


class Dialect:
    """What differs between SQLite and MySQL, in one place."""

    def __init__(self, url: DatabaseURL) -> None:
        self.url = url
        self.name = url.dialect

    def sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.name == "mysql" else query

    def bucket(self, column: str) -> str:
        """Integer bucket index of `column` given (origin, width) parameters."""
        if self.name == "mysql":
            return f"FLOOR(({column} - ?) / ?)"
        return f"(({column} - ?) / ?)"

    def minute(self, column: str) -> str:
        if self.name == "mysql":
            return f"({column} DIV {MINUTE_MS}) * {MINUTE_MS}"
        return f"({column} / {MINUTE_MS}) * {MINUTE_MS}"

    def system_pool(self, connect_timeout: float = 5.0, query_timeout: float = 5.0) -> DeadlinePool:
        """One connection of its own for the daemon's small, urgent queries
        (authentication, revocation polling, readiness), so they never wait
        behind clients' history and stats queries on the main pool. SQLite
        in WAL mode lets it read while the main connection reads or writes."""
        return self._pool(connect_timeout, query_timeout, connections=1)

    def connection_pool(self, connect_timeout: float = 5.0, query_timeout: float = 5.0) -> DeadlinePool:
        """A pool whose operations can be given deadlines (store/pool.py)."""
        return self._pool(connect_timeout, query_timeout, connections=3)

    def _pool(self, connect_timeout: float, query_timeout: float, connections: int) -> DeadlinePool:
        if self.name == "sqlite":
            directory = os.path.dirname(os.path.abspath(self.url.path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            private_file(self.url.path)  # 0600 whatever the umask (dashd.ops.private)
            # One connection: SQLite serializes writers anyway, and one
            # thread means no "database is locked" between our own threads.
            return DeadlinePool(
                "sqlite3",
                self.url.path,
                check_same_thread=False,
                timeout=30,
                cp_min=1,
                cp_max=1,
                cp_openfun=_sqlite_open,
            )
        # The socket timeouts are reset per operation from its deadline; these
        # bound anything run outside Store._run (tests, tools).
        return DeadlinePool(
            "pymysql",
            host=self.url.host,
            port=self.url.port,
            user=self.url.user,
            password=self.url.password,
            database=self.url.database,
            charset="utf8mb4",
            connect_timeout=connect_timeout,
            read_timeout=query_timeout + SOCKET_MARGIN,
            write_timeout=query_timeout + SOCKET_MARGIN,
            autocommit=False,
            cp_min=1,
            cp_max=connections,
            cp_reconnect=True,
            cp_noisy=False,
        )


def _sqlite_open(connection: sqlite3.Connection) -> None:
    # Head rows are written every flush and deleted at every seal: with
    # incremental auto-vacuum (settable only before the first table, so new
    # databases only) the seal gives their pages back to the file system.
    connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


@dataclass(frozen=True)
class HistorySeries:
    tier: str
    bucket_ms: int
    series: dict[str, list[HistoryPoint]]


_NUMBER = (int, float)


def rows_of(message: StreamMessage) -> list[SampleRow]:
    seq, host, ts = message.seq, message.host, message.timestamp_ms
    # `value - value == 0` is false for inf and NaN: the finiteness test
    # without a call per value (this runs for every sample of every host).
    return [
        (seq, host, ts, name, float(value))
        for name, value in (message.metrics or {}).items()
        if type(value) in _NUMBER and value - value == 0
    ]


class SystemQueries:
    """The store's generic `execute`/`fetchall` on the system connection:
    what authentication and revocation polling use (UserDirectory), so
    logins and the 5 s revocation bound never wait behind user queries."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def execute(self, query: str, params: Iterable[object] = ()) -> int:
        def run(cursor: Cursor) -> int:
            cursor.execute(self._store.dialect.sql(query), tuple(params))
            return cursor.rowcount

        return await self._store._run_system(run)

    async def fetchall(self, query: str, params: Iterable[object] = ()) -> list[Row]:
        def run(cursor: Cursor) -> list[Row]:
            cursor.execute(self._store.dialect.sql(query), tuple(params))
            return list(cursor.fetchall())

        return await self._store._run_system(run)


class Store(Service):
    """Batched writes, history and stats queries, notifications, rules,
    users and sessions. Started and stopped with the service tree."""

    log = Logger()

    def __init__(
        self,
        db_url: str,
        clock: IReactorTime,
        *,
        batch_interval: float = 2.0,
        prune_interval: float = 300.0,
        retention_raw: float = 7 * DAY,
        retention_rollup: float = 90 * DAY,
        retention_hourly: float = 730 * DAY,
        max_queue_rows: int = 100_000,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        describe: Describe | None = None,
        query_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        spill_path: str | None = None,
        node_id: str = DEFAULT_OWNER,
        on_write: Callable[[float, int], None] = lambda seconds, rows: None,
    ) -> None:
        self.db_url = db_url
        self.dialect = Dialect(check_db_url(db_url))
        self.clock = clock
        self.batch_interval = batch_interval
        self.prune_interval = prune_interval
        self.retention_raw_ms = int(retention_raw * 1000)
        self.retention_rollup_ms = int(retention_rollup * 1000)
        self.retention_hourly_ms = int(max(retention_hourly, retention_rollup) * 1000)
        self.max_queue_rows = max_queue_rows
        self.wall_clock_ms = wall_clock_ms
        self.query_timeout = query_timeout
        self.connect_timeout = connect_timeout
        # Where rows that cannot be written at shutdown go (store/spill.py).
        self.spill = SpillFile(spill_path, max_queue_rows) if spill_path else None
        self._spilled_rows = 0  # rows at the queue's head read from the spill file
        self._read_error: str | None = None  # why the last flush failed, for reads
        self.pool: DeadlinePool | None = None
        self.system_pool: DeadlinePool | None = None
        self.system = SystemQueries(self)
        self.migrated = False
        self.available = False
        self._sample_rows: list[SampleRow] = []
        self._notification_rows: list[NotificationRow] = []
        self._ack_rows: list[AckRow] = []
        self._flushing: Deferred[int] | None = None
        self._flush_waiters: list[Deferred[int]] = []
        self._schema_lock = DeferredLock()
        self._flush_loop: LoopingCall | None = None
        self._prune_loop: LoopingCall | None = None
        self._outage_logged = False
        self._stalled = False  # the last failure was a deadline: do not retry at once
        self._down_since = 0.0
        self._write_failing = False  # the last write failed (a full disk still answers SELECT 1)
        self._dropped = 0
        # Durability tickets (when_written): each write takes the whole
        # queue and bumps the generation; a ticket is settled by the first
        # write that took its rows (committed to the head, the write-ahead
        # log of the open chunks).
        self._generation = 0
        self._durability_waiters: list[tuple[int, int, Deferred[bool]]] = []
        # The chunk engine: series ids, open chunks (already in the head
        # rows), sealed chunks not written yet, and a seal counter that lets a
        # query notice a seal that ran while it read (odd while sealing).
        self.registry = SeriesRegistry(describe)
        self.node_id = node_id  # owner of this node's head rows (store/node.py)
        self.tables = SampleTables(self.dialect.sql, self.registry, node_id)
        self.open_chunks = OpenChunks()
        self._sealed: list[SealedChunk] = []
        self._seal_epoch = 0
        self._unrolled = 0  # samples sealed since the last rollup
        self._rolled_at = clock.seconds()
        self._seal_waiters: list[Deferred[None]] = []
        self._recovered = False
        self._on_write = on_write  # (seconds, rows) after each successful write: telemetry

    # ----- lifecycle

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        # Chunks are decoded and bucketed (numpy, Python) in the database
        # threads. With CPython's default 5 ms GIL switch interval a thread
        # kept busy by a flood of queries makes the reactor wait up to 5 ms at
        # every GIL hand-off (the convoy effect) and live updates stall; a
        # shorter interval keeps the reactor responsive. Only ever lowered.
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL:
            sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.pool = self.dialect.connection_pool(self.connect_timeout, self.query_timeout)
        self.pool.start()  # type: ignore[no-untyped-call]  # adbapi's ConnectionPool is untyped
        self.system_pool = self.dialect.system_pool(self.connect_timeout, self.query_timeout)
        self.system_pool.start()  # type: ignore[no-untyped-call]  # adbapi's ConnectionPool is untyped
        self.log.info("store: {url}", url=redact_url(self.db_url))
        self._load_spill()
        self._flush_loop = self._loop(self._flush_tick, self.batch_interval)
        self._prune_loop = self._loop(self._prune_tick, self.prune_interval)
        Deferred.fromCoroutine(self._prepare()).addErrback(lambda f: self.log.failure("store start failed", f))

    async def _prepare(self) -> None:
        try:
            await self.ready()
        except StoreUnavailable:
            pass  # logged by _run; the flush loop retries, samples queue meanwhile
        if self._spilled_rows and self._recovered:
            await self.flush()  # the spilled rows first, before the next batch

    def _loop(self, tick: Callable[[], object], interval: float) -> LoopingCall:
        loop = LoopingCall(tick)
        loop.clock = self.clock
        loop.start(interval, now=False).addErrback(lambda f: self.log.failure("store loop stopped", f))
        return loop

    def stopService(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        for loop in (self._flush_loop, self._prune_loop):
            if loop is not None and loop.running:
                loop.stop()
        # Flush what is pending; a database that is down gets a few tries,
        # one that stalls (each try costs a deadline) only one.
        for _attempt in range(3):
            await self.flush()
            if not self.pending_rows or self._stalled:
                break
        if self.pending_rows:
            # Only what the head (the chunks' write-ahead log) does not hold
            # yet is lost with the process: those rows go to the spill file.
            self._spill_or_report()
        else:
            if self.spill is not None and os.path.exists(self.spill.path):
                self._forget_spill(0)  # its rows were written, or dropped by the queue bound
            if self._recovered:
                # A clean stop seals every open chunk (nothing waits in the
                # head) and rolls them up.
                await self._seal(everything=True)
                await self.rollup()
        if self.pool is not None:
            # close() joins the pool's threads: wake any blocked on a stall.
            self.pool.abort_running()
            self.pool.close()  # type: ignore[no-untyped-call]  # adbapi's ConnectionPool is untyped
        if self.system_pool is not None:
            self.system_pool.close()  # type: ignore[no-untyped-call]  # adbapi's ConnectionPool is untyped
        Service.stopService(self)  # type: ignore[no-untyped-call]  # Twisted's Service is untyped

    def _spill_or_report(self) -> None:
        if self.spill is None:
            self.log.error("store: {rows} rows could not be written before shutdown", rows=self.pending_rows)
            return
        try:
            rows = self.spill.write(self._sample_rows, self._notification_rows, self._ack_rows)
        except OSError as e:
            self.log.error(
                "store: {rows} rows could not be written before shutdown, nor spilled to {path} ({error})",
                rows=self.pending_rows,
                path=self.spill.path,
                error=e,
            )
            return
        self.log.warn(
            "store: database unavailable at shutdown; spilled {rows} rows to {path}, written at the next start",
            rows=rows,
            path=self.spill.path,
        )

    def _forget_spill(self, rows: int) -> None:
        """The spilled rows are in the database: remove the file."""
        assert self.spill is not None  # only called with a spill file
        try:
            self.spill.remove()
        except OSError as e:
            # Left in place it would be written again at the next start.
            self.log.error(
                "store: wrote the {rows} spilled rows but cannot remove {path} ({error}); remove it "
                "before the next start",
                rows=rows,
                path=self.spill.path,
                error=e,
            )
            return
        self.log.info("store: wrote the {rows} rows spilled at the last shutdown", rows=rows)

    def _load_spill(self) -> None:
        """Put what an earlier shutdown spilled at the head of the queue."""
        if self.spill is None:
            return
        try:
            batch = self.spill.read()
        except (OSError, ValueError) as e:
            # Keep the daemon up, and the file for whoever wants to recover it.
            aside = f"{self.spill.path}.unreadable"
            try:
                os.replace(self.spill.path, aside)
            except OSError:
                aside = self.spill.path  # cannot move it either: say where it is
            self.log.error("store: cannot read the spill file ({error}); moved it to {aside}", error=e, aside=aside)
            return
        if batch is None:
            return
        self._sample_rows[:0] = batch.samples
        self._notification_rows[:0] = batch.notifications
        self._ack_rows[:0] = batch.acks
        self._spilled_rows = batch.rows
        self.log.info("store: {rows} rows spilled at the last shutdown are queued first", rows=batch.rows)

    async def ensure_schema(self) -> int:
        """Apply pending migrations; returns how many ran."""
        async with self._schema_lock:
            if self.migrated:
                return 0
            applied = await self._run(self._migrate, timeout=MAINTENANCE_TIMEOUT)
            self.migrated = True
            return applied

    async def ready(self) -> None:
        """Schema applied and the open chunks of the last run read back from
        the head rows (what a kill -9 left there)."""
        await self.ensure_schema()
        if self._recovered:
            return
        async with self._schema_lock:
            if self._recovered:
                return
            heads = await self._run(self._recover)
            for head in heads:
                self.open_chunks.add_columns(head)
            self._recovered = True
            if heads:
                self.log.info(
                    "store: read back {samples} samples of open chunks from the head",
                    samples=sum(len(h.t) for h in heads),
                )

    def _recover(self, cursor: Cursor) -> list[HeadColumns]:
        self.registry.load(cursor)
        return self.tables.read_head(cursor)

    def _migrate(self, cursor: Cursor) -> int:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
            "applied_at_ms BIGINT NOT NULL)"
        )
        cursor.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cursor.fetchall()}
        applied = 0
        for migration in load_migrations(self.dialect.name):
            if migration.version in done:
                continue
            for statement in migration.statements:
                cursor.execute(statement)
            cursor.execute(
                self.dialect.sql("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)"),
                (migration.version, migration.name, self.wall_clock_ms()),
            )
            applied += 1
            self.log.info("store: applied migration {version} {name}", version=migration.version, name=migration.name)
        return applied

    async def _run(
        self,
        interaction: Callable[[Cursor, *_Args], _Result],
        *args: *_Args,
        timeout: float | None = None,
        settle: bool = False,
    ) -> _Result:
        """Run `interaction(cursor, *args)` in a transaction with a deadline
        (`timeout`, default query_timeout); StoreUnavailable when the database
        fails or does not answer in time. `settle`: for writes, wait for the
        real outcome of a transaction aborted at its deadline (store/pool.py).
        Cancelling the Deferred (the client went away) keeps a queued
        interaction from starting and interrupts a running one."""
        return await self._run_in(self.pool, interaction, *args, timeout=timeout, settle=settle)

    async def _run_system(
        self, interaction: Callable[[Cursor, *_Args], _Result], *args: *_Args, timeout: float | None = None
    ) -> _Result:
        """On the system connection (see Dialect.system_pool)."""
        return await self._run_in(self.system_pool, interaction, *args, timeout=timeout)

    async def _run_in(
        self,
        pool: DeadlinePool | None,
        interaction: Callable[[Cursor, *_Args], _Result],
        *args: *_Args,
        timeout: float | None = None,
        settle: bool = False,
    ) -> _Result:
        if pool is None:
            raise StoreUnavailable("store not started")
        # A pooled MySQL connection the server dropped (restart, wait_timeout)
        # fails the interaction that finds it dead; cp_reconnect only discards
        # it. Retry on a fresh one, once per pooled connection at most.
        retries = pool.max if self.dialect.name == "mysql" else 0
        # One deadline for the operation, retries included.
        deadline = self.clock.seconds() + (timeout or self.query_timeout)
        while True:
            try:
                result: _Result = await pool.run(
                    self.clock,
                    max(deadline - self.clock.seconds(), 0.001),
                    interaction,
                    *args,
                    settle=settle,
                    cancel_running=self._kill_query,
                )
                break
            except DeadlineExceeded as e:
                self._stalled = True
                self._went_down(e)
                raise StoreUnavailable(str(e)) from e
            except (sqlite3.Error, adbapi.ConnectionLost, OSError, _mysql_errors()) as e:
                if retries > 0 and _connection_dropped(e) and not self._stalled and deadline - self.clock.seconds() > 0:
                    retries -= 1
                    continue
                self._went_down(e)
                raise StoreUnavailable(str(e)) from e
        self._came_back()
        return result

    def _went_down(self, error: Exception) -> None:
        """One log line per outage, when it starts."""
        self.available = False
        if not self._outage_logged:
            self._outage_logged = True
            self._down_since = self.clock.seconds()
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.log.error(
                "store: database unavailable ({error}); {rows} rows queued in memory",
                error=detail,
                rows=self.pending_rows,
            )

    def _came_back(self) -> None:
        self.available = True
        self._stalled = False
        if self._outage_logged:
            self._outage_logged = False
            self.log.info(
                "store: database back after {seconds:.1f}s; {rows} queued rows to write",
                seconds=self.clock.seconds() - self._down_since,
                rows=self.pending_rows,
            )

    def _kill_query(self, ticket: Ticket, connection: Any) -> None:  # Any: the pool's raw PyMySQL connection
        """Cancel a running MySQL query with KILL QUERY on the system
        connection, only while the cancelled interaction still holds
        `connection` (checked under its ticket's lock, so a later interaction
        that reuses the connection is never killed). The connection stays
        usable; SQLite is interrupted by the pool itself."""
        thread_id = connection.thread_id()

        def kill(cursor: Cursor) -> None:
            with ticket.lock:
                if ticket.connection is connection:
                    cursor.execute(f"KILL QUERY {int(thread_id)}")

        if self.system_pool is None:
            abort_connection(connection)
            return
        self.system_pool.run(self.clock, self.query_timeout, kill).addErrback(
            lambda f: self.log.warn("store: could not cancel a query: {error}", error=f.getErrorMessage())
        )

    async def check(self) -> bool:
        """Readiness: can the database answer a query now (within
        READY_TIMEOUT, on the system connection, so a flood of client
        queries does not make the daemon look dead), and did the last write
        go through? (A full disk still answers SELECT 1.)"""
        try:
            await self._run_system(
                lambda cursor: cursor.execute("SELECT 1"), timeout=min(READY_TIMEOUT, self.query_timeout)
            )
        except StoreUnavailable:
            return False
        return not self._write_failing

    # ----- writes

    def record(self, message: StreamMessage) -> None:
        """Queue a sequenced stream message for the next batch."""
        if message.type == METRICS_UPDATE:
            self._sample_rows.extend(rows_of(message))
        elif message.type == NOTIFICATION:
            body = message.body or {}
            self._notification_rows.append(
                (
                    body["id"],
                    message.seq,
                    message.timestamp_ms,
                    body.get("level", "info"),
                    body.get("title", ""),
                    body.get("message", ""),
                    body.get("source", ""),
                    body.get("state"),
                )
            )
        elif message.type == NOTIFICATION_ACK:
            body = message.body or {}
            self._ack_rows.append((message.seq, body["id"], body["acknowledged_by"], message.timestamp_ms))
        overflow = len(self._sample_rows) - self.max_queue_rows
        if overflow > 0:
            del self._sample_rows[:overflow]
            self._spilled_rows = max(0, self._spilled_rows - overflow)
            self._dropped += overflow
            self.log.warn(
                "store: queue full ({limit} rows), dropped the oldest {count} sample rows",
                limit=self.max_queue_rows,
                count=overflow,
            )

    @property
    def pending_rows(self) -> int:
        return len(self._sample_rows) + len(self._notification_rows) + len(self._ack_rows)

    def _flush_tick(self) -> None:
        self.flush().addErrback(lambda f: self.log.failure("store flush failed", f))

    def flush(self) -> Deferred[int]:
        """Write everything queued in one transaction; on failure keep it.

        Concurrent callers (the batch timer, every history or stats request)
        share the write in flight rather than queueing on a lock: a lock's
        waiters resume one inside another, which under a flood of requests
        exhausts the stack."""
        if self._flushing is None:
            if not self.pending_rows:
                return succeed(0)
            self._flushing = Deferred.fromCoroutine(self._write_pending())
            self._flushing.addBoth(self._settle_flush)
        waiter: Deferred[int] = Deferred()
        self._flush_waiters.append(waiter)
        return waiter

    async def _flush_for_read(self) -> None:
        """Write what is queued before a read sees the tables; if that fails
        the read would too, so say so now rather than after another deadline."""
        if self._flushing is None and not self.pending_rows:
            self._read_error = None
        await self.flush()
        if self._read_error is not None:
            raise StoreUnavailable(self._read_error)

    def _settle_flush(self, result: int | Failure) -> None:
        self._flushing = None
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            waiter.callback(result)

    def when_written(self) -> Deferred[bool]:
        """A ticket for every row recorded so far: fires True once they are
        all written, False when the write that took them failed or rows were
        dropped (queue overflow) before it took them. Starts a write. This
        is what an acknowledgement to an agent waits for (issue 11 D)."""
        if not self.pending_rows and self._flushing is None:
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        self._durability_waiters.append((self._generation, self._dropped, waiter))

        async def write() -> None:
            # The first flush may share a write that took earlier rows only.
            await self.flush()
            await self.flush()

        Deferred.fromCoroutine(write()).addErrback(lambda f: self.log.failure("store flush failed", f))
        return waiter

    def _settle_tickets(self, taken: int, dropped_at_take: int, written: bool) -> None:
        keep = []
        for generation, dropped_at_issue, waiter in self._durability_waiters:
            if generation <= taken:
                waiter.callback(written and dropped_at_take == dropped_at_issue)
            elif written and not self.pending_rows:
                waiter.callback(dropped_at_take == dropped_at_issue)  # issued with nothing new to write
            else:
                keep.append((generation, dropped_at_issue, waiter))
        self._durability_waiters = keep

    async def _write_pending(self) -> int:
        samples, notifications, acks = self._sample_rows, self._notification_rows, self._ack_rows
        self._sample_rows, self._notification_rows, self._ack_rows = [], [], []
        taken, dropped_at_take = self._generation, self._dropped
        self._generation += 1
        started = time.perf_counter()
        spilled, self._spilled_rows = self._spilled_rows, 0
        try:
            if not self._recovered:
                await self.ready()
            head = await self._run(self._write_batch, samples, notifications, acks, settle=True)
        except StoreUnavailable as e:
            self._settle_tickets(taken, dropped_at_take, written=False)
            self._sample_rows[:0] = samples
            self._notification_rows[:0] = notifications
            self._ack_rows[:0] = acks
            self._spilled_rows = spilled
            self._write_failing = True
            self._read_error = str(e).splitlines()[0] if str(e) else "the database is unavailable"
            return 0
        # Durable in the head row now: into the open chunks, settle the
        # tickets, then seal the windows that are over (their own
        # transaction; on failure they wait in memory and in the head for
        # the next flush).
        self.open_chunks.add_columns(head)
        self._write_failing = False
        self._read_error = None
        if spilled and self.spill is not None:
            self._forget_spill(spilled)
        written = len(samples) + len(notifications) + len(acks)
        self._settle_tickets(taken, dropped_at_take, written=True)
        self._on_write(time.perf_counter() - started, written)
        await self._seal()
        return written

    def _write_batch(
        self, cursor: Cursor, samples: list[SampleRow], notifications: list[NotificationRow], acks: list[AckRow]
    ) -> HeadColumns:
        sql = self.dialect.sql
        try:
            head = self.tables.write_head(cursor, samples, self.wall_clock_ms())
        except Exception:
            self.registry.rolled_back()
            raise
        if notifications:
            cursor.executemany(
                sql(
                    "REPLACE INTO notifications (id, seq, ts_ms, level, title, message, source, state) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                notifications,
            )
        if acks:
            cursor.executemany(
                sql(
                    "REPLACE INTO notification_acks (seq, notification_id, acknowledged_by, ts_ms) VALUES (?, ?, ?, ?)"
                ),
                acks,
            )
            for _, notification_id, by, at in acks:
                cursor.execute(
                    sql("UPDATE notifications SET acknowledged_by = ?, acknowledged_at_ms = ? WHERE id = ?"),
                    (by, at, notification_id),
                )
        return head

    async def _seal(self, everything: bool = False) -> int:
        """Write the chunks whose window is over (all, at a clean stop) with
        their rollups, and shrink the head to the samples still open."""
        self._sealed.extend(self.open_chunks.take_due(self.wall_clock_ms(), everything))
        if not self._sealed:
            return 0
        sealed = list(self._sealed)
        self._seal_epoch += 1
        try:
            await self._run(self._seal_interaction, sealed, self.open_chunks.head_columns(), settle=True)
        except StoreUnavailable as e:
            self.log.warn(
                "store: sealing {chunks} chunks failed ({error}); they stay in the head and are retried",
                chunks=len(sealed),
                error=str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
            return 0
        finally:
            self._seal_epoch += 1
            waiters, self._seal_waiters = self._seal_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        written = {id(chunk) for chunk in sealed}
        self._sealed = [chunk for chunk in self._sealed if id(chunk) not in written]
        self._unrolled += sum(chunk.count for chunk in sealed)
        if self._unrolled >= ROLLUP_SAMPLES or self.clock.seconds() - self._rolled_at >= ROLLUP_INTERVAL:
            await self.rollup()
        return len(sealed)

    async def rollup(self, now_ms: int | None = None) -> int:
        """Merge the sealed raw chunks not rolled up yet into the 1-minute
        and 1-hour tiers (batched: every ROLLUP_SAMPLES samples or
        ROLLUP_INTERVAL, at each prune and at a clean stop; a bucket is
        rewritten once per batch, not once per seal). Returns chunks read."""
        total = 0
        try:
            while True:
                count = await self._run(self.tables.roll_up, timeout=MAINTENANCE_TIMEOUT)
                total += count
                if count < ROLLUP_BATCH_CHUNKS:
                    break
        except StoreUnavailable as e:
            self.log.warn(
                "store: rolling up failed ({error}); retried later",
                error=str(e).splitlines()[0] if str(e) else type(e).__name__,
            )
            return total
        self._unrolled = 0
        self._rolled_at = self.clock.seconds()
        return total

    def _seal_interaction(self, cursor: Cursor, sealed: list[SealedChunk], still_open: HeadColumns) -> None:
        self.tables.seal(cursor, sealed, still_open)
        self.registry.committed()
        if self.dialect.name == "sqlite":
            # Last in the transaction: executescript commits first and runs
            # the pragma to the end (execute() would free a single page).
            try:
                cast(SqliteCursor, cursor).executescript("PRAGMA incremental_vacuum;")
            except sqlite3.Error as e:  # the seal is committed already: only space is not returned
                self.log.warn("store: returning free pages failed ({error})", error=str(e))

    def _memory(self, series_ids: set[int] | None) -> Memory:
        """Copies of the samples not in the chunks table yet."""
        raw: dict[int, list[RawColumns]] = {}
        for series_id, columns in self.open_chunks.snapshot(series_ids):
            raw.setdefault(series_id, []).append(columns)
        for chunk in self._sealed:
            if series_ids is None or chunk.series_id in series_ids:
                raw.setdefault(chunk.series_id, []).append(chunk.columns)
        return Memory(raw)

    def _with_other_heads(
        self, cursor: Cursor, memory: Memory, series_ids: set[int] | None, seqs: tuple[int, int] | None = None
    ) -> Memory:
        """Memory plus the open samples other nodes sharing the database
        hold in their head rows (read in the same transaction as the
        chunks, so a sample the other node sealed meanwhile is in one only)."""
        if self.dialect.name == "sqlite" and not cast(SqliteCursor, cursor).connection.in_transaction:
            # sqlite3 runs a lone SELECT in autocommit: open the transaction
            # so the head rows and the chunks come from one snapshot when
            # another process shares the file (committed by the pool).
            cursor.execute("BEGIN")
        others = self.tables.read_other_heads(cursor, series_ids, *(seqs or (None, None)))
        if not others:
            return memory
        raw = {series_id: list(parts) for series_id, parts in memory.raw.items()}
        for series_id, parts in others.items():
            raw.setdefault(series_id, []).extend(parts)
        if any(self.registry.info(series_id) is None for series_id in others):
            self.registry.load(cursor)  # series another node registered
        return Memory(raw)

    async def _consistent(
        self,
        series_ids: Callable[[], set[int] | None],
        interaction: Callable[[Cursor, Memory, *_Args], _Result],
        *args: *_Args,
    ) -> _Result:
        """Run a read over the chunks table plus a snapshot of memory, again
        if a seal moved samples from memory to the table meanwhile."""
        for _attempt in range(QUERY_ATTEMPTS):
            epoch = self._seal_epoch
            if epoch % 2:
                waiter: Deferred[None] = Deferred()
                self._seal_waiters.append(waiter)
                await waiter
                continue
            result = await self._run(interaction, self._memory(series_ids()), *args)
            if self._seal_epoch == epoch:
                return result
        return result

    # ----- retention

    def _prune_tick(self) -> None:
        Deferred.fromCoroutine(self.prune()).addErrback(lambda f: self.log.failure("store prune failed", f))

    async def prune(self) -> None:
        """Seal what is due, then delete whole chunks past their tier's
        retention (raw, 1-minute, 1-hour) and old notifications."""
        now = self.wall_clock_ms()
        try:
            await self.flush()
            await self._seal()
            await self.rollup()
            await self._run(self._delete_old, now, timeout=MAINTENANCE_TIMEOUT)
        except StoreUnavailable:
            pass

    def _delete_old(self, cursor: Cursor, now_ms: int) -> None:
        sql = self.dialect.sql
        self.tables.prune(
            cursor,
            {
                RAW: now_ms - self.retention_raw_ms,
                MINUTE: now_ms - self.retention_rollup_ms,
                HOUR: now_ms - self.retention_hourly_ms,
            },
        )
        before = now_ms - self.retention_rollup_ms
        cursor.execute(sql("DELETE FROM notification_acks WHERE ts_ms < ?"), (before,))
        cursor.execute(sql("DELETE FROM notifications WHERE ts_ms < ?"), (before,))

    def _get_meta(self, cursor: Cursor, name: str) -> str | None:
        cursor.execute(self.dialect.sql("SELECT value FROM meta WHERE name = ?"), (name,))
        row = cursor.fetchone()
        return row[0] if row else None

    def _set_meta(self, cursor: Cursor, name: str, value: str) -> None:
        cursor.execute(self.dialect.sql("REPLACE INTO meta (name, value) VALUES (?, ?)"), (name, value))

    # ----- reads

    def tier_for(self, from_ms: int, now_ms: int, bucket_ms: int = 0) -> int:
        """The tier a range starting at from_ms is read from: the finest
        whose retention covers its start, or a coarser one whose buckets are
        still finer than the reply's (`bucket_ms`): a 30-day history at 500
        points (86-minute buckets) merges 720 hourly buckets per series, not
        43,200 minutes, and a 24-hour one 1,440 minutes, not 86,400 samples."""
        if from_ms >= now_ms - self.retention_raw_ms:
            covering = RAW
        elif from_ms >= now_ms - self.retention_rollup_ms:
            covering = MINUTE
        else:
            covering = HOUR
        fine_enough = HOUR if bucket_ms > HOUR_MS else MINUTE if bucket_ms > MINUTE_MS else RAW
        return max(covering, fine_enough)

    def _ids_of(self, host: str, keys: Sequence[str]) -> Callable[[], set[int]]:
        return lambda: {i for i in (self.registry.cached(host, key) for key in keys) if i is not None}

    async def history(
        self, host: str, metrics: Sequence[str], from_ms: int, to_ms: int, max_points: int, raw_resolution_ms: int
    ) -> HistorySeries:
        """Downsampled series: at most `max_points` equal buckets per metric,
        each with avg/min/max/count, from the tier `tier_for` picks (raw,
        1-minute, 1-hour); samples not rolled up yet are folded in from the
        finer data. A tier bucket counts in the reply's bucket its start
        falls in."""
        await self._flush_for_read()
        if not self._recovered:
            await self.ready()
        span = max(1, to_ms - from_ms)
        tier = self.tier_for(from_ms, self.wall_clock_ms(), math.ceil(span / max_points))
        resolution = raw_resolution_ms if tier == RAW else (MINUTE_MS if tier == MINUTE else HOUR_MS)
        bucket_ms = max(resolution, math.ceil(span / max_points))
        series = await self._consistent(
            self._ids_of(host, metrics), self._history, tier, host, list(metrics), from_ms, to_ms, bucket_ms
        )
        return HistorySeries(TIER_NAMES[tier], bucket_ms, series)

    def _history(
        self,
        cursor: Cursor,
        memory: Memory,
        tier: int,
        host: str,
        metrics: list[str],
        from_ms: int,
        to_ms: int,
        bucket_ms: int,
    ) -> dict[str, list[HistoryPoint]]:
        ids = self.registry.lookup(cursor, self.dialect.sql, host, metrics)
        memory = self._with_other_heads(cursor, memory, set(ids.values()))
        stored = self.tables.read_tier(cursor, list(ids.values()), tier, from_ms, to_ms)
        if tier != RAW:  # sealed chunks whose rollups are not merged yet
            for unrolled_id, points in self.tables.read_unrolled(cursor, list(ids.values()), from_ms, to_ms).items():
                stored.setdefault(unrolled_id, []).extend(points)
        series: dict[str, list[HistoryPoint]] = {}
        for name in metrics:
            series_id = ids.get(name)
            if series_id is None:
                series[name] = []
                continue
            points = stored.get(series_id, []) + [Points.of_samples(c.t, c.value) for c in memory.of(series_id)]
            series[name] = bucketed(points, from_ms, to_ms, bucket_ms)
        return series

    async def stats(self, host: str, metrics: Sequence[str], from_ms: int, to_ms: int) -> dict[str, Summary]:
        """avg/min/max/p95/count/last per metric over [from_ms, to_ms]: exact
        from raw samples where raw retention covers the window; the part
        before it from 1-minute buckets (1-hour buckets beyond the 1-minute
        retention), marked `"approximate": true`."""
        await self._flush_for_read()
        if not self._recovered:
            await self.ready()
        now_ms = self.wall_clock_ms()
        return await self._consistent(
            self._ids_of(host, metrics),
            self._stats,
            host,
            list(metrics),
            from_ms,
            to_ms,
            now_ms - self.retention_raw_ms,
            now_ms - self.retention_rollup_ms,
        )

    def _stats(
        self,
        cursor: Cursor,
        memory: Memory,
        host: str,
        metrics: list[str],
        from_ms: int,
        to_ms: int,
        raw_from_ms: int,
        minute_from_ms: int,
    ) -> dict[str, Summary]:
        ids = self.registry.lookup(cursor, self.dialect.sql, host, metrics)
        memory = self._with_other_heads(cursor, memory, set(ids.values()))
        exact_from = max(from_ms, raw_from_ms)
        raw = self.tables.read_raw(cursor, list(ids.values()), exact_from, to_ms)
        older: dict[int, list[Points]] = {}
        if from_ms < raw_from_ms:
            older = self._tier_points(cursor, list(ids.values()), from_ms, exact_from - 1, minute_from_ms)
        result: dict[str, Summary] = {}
        for name in metrics:
            series_id = ids.get(name, -1)
            _, values = exact_summary(raw.get(series_id, []) + memory.of(series_id), exact_from, to_ms)
            approximate: Points | None = None
            if from_ms < raw_from_ms:
                points = Points.of_columns(_merged(older.get(series_id, [])).columns())
                approximate = points.select((points.t >= from_ms) & (points.t < exact_from))
            result[name] = summary(values, approximate)
        return result

    def _tier_points(
        self, cursor: Cursor, series_ids: list[int], from_ms: int, to_ms: int, minute_from_ms: int
    ) -> dict[int, list[Points]]:
        """Buckets over [from_ms, to_ms] from the tiers: hours before the
        1-minute retention (`minute_from_ms`), minutes from it, and the raw
        chunks not rolled up yet."""
        found: dict[int, list[Points]] = {}

        def add(parts: dict[int, list[Points]], low: int, high: int) -> None:
            # A tier chunk covers more than the range: keep only [low, high].
            for series_id, points in parts.items():
                found.setdefault(series_id, []).extend(p.select((p.t >= low) & (p.t <= high)) for p in points)

        split = min(max(from_ms, minute_from_ms - minute_from_ms % HOUR_MS), to_ms + 1)
        if from_ms < split:
            add(self.tables.read_tier(cursor, series_ids, HOUR, from_ms, split - 1), from_ms, split - 1)
        if split <= to_ms:
            add(self.tables.read_tier(cursor, series_ids, MINUTE, split, to_ms), split, to_ms)
        add(self.tables.read_unrolled(cursor, series_ids, from_ms, to_ms), from_ms, to_ms)
        return found

    async def read_stream(self, from_seq: int, to_seq: int) -> list[StreamMessage]:
        """Stream messages with from_seq <= seq <= to_seq, rebuilt from the
        chunks and tables, in seq order (for resume)."""
        await self._flush_for_read()
        if not self._recovered:
            await self.ready()
        return await self._consistent(lambda: None, self._read_stream, from_seq, to_seq)

    def _read_stream(self, cursor: Cursor, memory: Memory, from_seq: int, to_seq: int) -> list[StreamMessage]:
        sql = self.dialect.sql
        messages: dict[int, StreamMessage] = {}
        grouped: dict[int, tuple[str, int, dict[str, float]]] = {}
        memory = self._with_other_heads(cursor, memory, None, (from_seq, to_seq))
        stored = self.tables.read_seq(cursor, from_seq, to_seq)
        in_memory = [(series_id, c) for series_id, parts in memory.raw.items() for c in parts]
        for series_id, columns in stored + in_memory:
            info = self.registry.info(series_id)
            if info is None:
                continue
            keep = (columns.seq >= from_seq) & (columns.seq <= to_seq)
            for seq, ts_ms, value in zip(
                columns.seq[keep].tolist(), columns.t[keep].tolist(), columns.value[keep].tolist()
            ):
                grouped.setdefault(seq, (info.host, ts_ms, {}))[2][info.key] = value
        for seq, (host, ts_ms, metrics) in grouped.items():
            messages[seq] = StreamMessage(seq, METRICS_UPDATE, ts_ms, host, metrics)
        cursor.execute(
            sql(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE seq >= ? AND seq <= ?"), (from_seq, to_seq)
        )
        for row in cursor.fetchall():
            body = notification_of_row(row)
            messages[row[1]] = StreamMessage(row[1], NOTIFICATION, row[2], body=body)
        cursor.execute(
            sql(
                "SELECT seq, notification_id, acknowledged_by, ts_ms FROM notification_acks WHERE seq >= ? AND seq <= ?"
            ),
            (from_seq, to_seq),
        )
        for seq, notification_id, by, ts_ms in cursor.fetchall():
            messages[seq] = StreamMessage(
                seq,
                NOTIFICATION_ACK,
                ts_ms,
                body={"id": notification_id, "acknowledged_by": by, "acknowledged_at": iso_ms(ts_ms)},
            )
        return [messages[seq] for seq in sorted(messages)]

    async def newest_timestamp(self, host: str) -> int | None:
        """The newest sample time stored for a host (ingest de-duplication)."""
        times = await self._host_times(host, None, None)
        return max(times) if times else None

    async def sample_times(self, host: str, from_ms: int, to_ms: int) -> set[int]:
        """The sample times stored for a host in [from_ms, to_ms]."""
        return await self._host_times(host, from_ms, to_ms)

    async def _host_times(self, host: str, from_ms: int | None, to_ms: int | None) -> set[int]:
        await self.flush()
        if not self._recovered:
            await self.ready()
        ids = {i.id for i in self.registry.all() if i.host == host}
        return await self._consistent(lambda: ids, self._times, host, from_ms, to_ms)

    def _times(self, cursor: Cursor, memory: Memory, host: str, from_ms: int | None, to_ms: int | None) -> set[int]:
        cursor.execute(self.dialect.sql("SELECT id FROM series WHERE host = ?"), (host,))
        ids = [row[0] for row in cursor.fetchall()]
        memory = self._with_other_heads(cursor, memory, set(ids))
        times: set[int] = set()
        if from_ms is None:
            for part in _batches(ids):
                marks = ", ".join("?" for _ in part)
                cursor.execute(
                    self.dialect.sql(f"SELECT MAX(end_ms) FROM chunks WHERE tier = 0 AND series_id IN ({marks})"),
                    tuple(part),
                )
                row = cursor.fetchone()
                assert row is not None  # MAX without GROUP BY gives one row
                newest = row[0]
                if newest is not None:
                    times.add(int(newest))
            for series_id in ids:
                times.update(int(c.t.max()) for c in memory.of(series_id) if len(c.t))
            return times
        assert to_ms is not None  # a range has both ends (_host_times)
        stored = self.tables.read_raw(cursor, ids, from_ms, to_ms)
        for series_id in ids:
            for columns in stored.get(series_id, []) + memory.of(series_id):
                times.update(t for t in columns.t.tolist() if from_ms <= t <= to_ms)
        return times

    async def max_seq(self) -> int:
        def query(cursor: Cursor) -> int:
            best = self.tables.max_seq(cursor)
            for table in ("notifications", "notification_acks"):
                cursor.execute(f"SELECT MAX(seq) FROM {table}")
                row = cursor.fetchone()
                assert row is not None  # MAX without GROUP BY gives one row
                best = max(best, row[0] or 0)
            return best

        best = await self._run(query)
        return max([best] + [int(c.seq.max()) for parts in self._memory(None).raw.values() for c in parts])

    # ----- notifications

    async def notification(self, notification_id: str) -> Notification | None:
        def query(cursor: Cursor) -> Notification | None:
            cursor.execute(
                self.dialect.sql(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?"), (notification_id,)
            )
            row = cursor.fetchone()
            return notification_of_row(row) if row else None

        await self._flush_for_read()
        return await self._run(query)

    async def notifications(
        self, limit: int, unacknowledged: bool, *, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[Notification]:
        """The newest `limit` notifications, optionally only those stamped
        between from_ms and to_ms (inclusive)."""

        def query(cursor: Cursor) -> list[Notification]:
            conditions: list[str] = []
            params: list[int] = []
            conditions, params = [], []
            if unacknowledged:
                conditions.append("acknowledged_by IS NULL")
            if from_ms is not None:
                conditions.append("ts_ms >= ?")
                params.append(from_ms)
            if to_ms is not None:
                conditions.append("ts_ms <= ?")
                params.append(to_ms)
            where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
            cursor.execute(
                self.dialect.sql(f"SELECT {NOTIFICATION_COLUMNS} FROM notifications {where}ORDER BY seq DESC LIMIT ?"),
                (*params, limit),
            )
            return [notification_of_row(row) for row in cursor.fetchall()]

        await self._flush_for_read()
        return await self._run(query)

    # ----- rules

    # A rule's spec is JSON (dashd.alerting): its values are any JSON value.
    async def rules(self) -> dict[str, dict[str, Any]]:
        def query(cursor: Cursor) -> dict[str, dict[str, Any]]:
            cursor.execute("SELECT name, spec FROM alert_rules ORDER BY name")
            return {name: json.loads(spec) for name, spec in cursor.fetchall()}

        return await self._run(query)

    async def save_rule(self, name: str, spec: dict[str, Any], by: str) -> None:
        await self._run(
            lambda cursor: cursor.execute(
                self.dialect.sql(
                    "REPLACE INTO alert_rules (name, spec, updated_by, updated_at_ms) VALUES (?, ?, ?, ?)"
                ),
                (name, json.dumps(spec), by, self.wall_clock_ms()),
            )
        )

    async def delete_rule(self, name: str) -> None:
        await self._run(
            lambda cursor: cursor.execute(self.dialect.sql("DELETE FROM alert_rules WHERE name = ?"), (name,))
        )

    # ----- generic access for the auth and audit modules

    async def execute(self, query: str, params: Iterable[object] = ()) -> int:
        def run(cursor: Cursor) -> int:
            cursor.execute(self.dialect.sql(query), tuple(params))
            return cursor.rowcount

        return await self._run(run)

    async def fetchall(self, query: str, params: Iterable[object] = ()) -> list[Row]:
        def run(cursor: Cursor) -> list[Row]:
            cursor.execute(self.dialect.sql(query), tuple(params))
            return list(cursor.fetchall())

        return await self._run(run)

    async def interaction(self, work: Callable[[Cursor, *_Args], _Result], *args: *_Args) -> _Result:
        """Run `work(cursor, *args)` in one transaction; for store modules
        such as dashd.store.alerting."""
        return await self._run(work, *args)


NOTIFICATION_COLUMNS = "id, seq, ts_ms, level, title, message, source, state, acknowledged_by, acknowledged_at_ms"


def notification_of_row(row: Row) -> Notification:
    (notification_id, _seq, ts_ms, level, title, message, source, state, by, at_ms) = row
    body = {
        "id": notification_id,
        "level": level,
        "title": title,
        "message": message,
        "timestamp": iso_ms(ts_ms),
        "source": source,
        "acknowledged_by": by,
        "acknowledged_at": iso_ms(at_ms) if at_ms else None,
    }
    if state:
        body["state"] = state
    return body


def _batches(items: list[_Item], size: int = 500) -> list[list[_Item]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _merged(parts: list[Points]) -> Points:
    from dashd.store.tiers import MINUTE_MS as BUCKET
    from dashd.store.tiers import concat
    from dashd.store.tiers import rollup as rollup_points

    every = concat(parts)
    return rollup_points(every, BUCKET) if len(every) else every


def _mysql_errors() -> type[Exception]:
    import pymysql

    return pymysql.err.Error


def _connection_dropped(error: Exception) -> bool:
    """Did the interaction fail because its connection had died (so adbapi
    discarded it), rather than because the server cannot be reached?"""
    import pymysql

    if getattr(error, "never_opened", False):  # store/pool.py: a fresh connection that failed to open
        return False
    if isinstance(error, (adbapi.ConnectionLost, pymysql.err.InterfaceError)):
        return True
    # 2006 server gone away, 2013 / 2055 connection lost during a query.
    return isinstance(error, pymysql.err.OperationalError) and bool(error.args) and error.args[0] in (2006, 2013, 2055)
