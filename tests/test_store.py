"""The store against real databases: SQLite (embedded default) and MariaDB
(when DASHD_TEST_MYSQL_URL is set; the `db_url` fixture parametrizes every
test that takes it over both and gives each test a throwaway database).

The Store's LoopingCall timers run on an injected `task.Clock`, so flushes and
prunes happen when a test says so; sample times come from a fake wall clock.
Assertions about what is in the database read it over an independent
connection, not through the Store under test.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pytest
import pytest_twisted
from twisted.internet import reactor, threads
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.protocols import portforward

from dashd.settings import check_db_url
from dashd.store.database import MINUTE_MS, Store, load_migrations
from dashd.store.encoding import decode_aggregate, decode_head, decode_raw
from dashd.stream.streams import METRICS_UPDATE, NOTIFICATION, NOTIFICATION_ACK, StreamMessage
from dashd.timefmt import iso_ms
from fakes import sleep

SECOND_MS = 1000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
HOUR = 3600.0  # seconds, the unit of Store's retention options
DAY = 24 * HOUR
T0_MS = 1_699_999_200_000  # "now" for most tests: an hour boundary, so minutes are aligned

ALL_TABLES = {
    "schema_migrations",
    "series",
    "chunks",
    "chunk_head",
    "notifications",
    "notification_acks",
    "alert_rules",
    "meta",
    "users",
    "sessions",
    "audit_log",
}
VENV_BIN = os.path.dirname(sys.executable)


# ----- helpers


class WallClock:
    """A settable `wall_clock_ms` for the Store."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@dataclass
class Rig:
    store: Store
    clock: Clock
    wall: WallClock


def sample(seq: int, ts_ms: int, host: str = "h1", **metrics: float) -> StreamMessage:
    return StreamMessage(seq, METRICS_UPDATE, ts_ms, host, metrics)


def notification(seq: int, ts_ms: int, notification_id: str, **fields: Any) -> StreamMessage:
    body = {
        "id": notification_id,
        "level": "warning",
        "title": f"title {notification_id}",
        "message": f"message {notification_id}",
        "timestamp": iso_ms(ts_ms),
        "source": "rule:cpu",
        "acknowledged_by": None,
        "acknowledged_at": None,
        **fields,
    }
    return StreamMessage(seq, NOTIFICATION, ts_ms, body=body)


def ack(seq: int, ts_ms: int, notification_id: str, by: str) -> StreamMessage:
    return StreamMessage(
        seq,
        NOTIFICATION_ACK,
        ts_ms,
        body={"id": notification_id, "acknowledged_by": by, "acknowledged_at": iso_ms(ts_ms)},
    )


def _query_sync(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    url = check_db_url(db_url)
    if url.dialect == "sqlite":
        connection = sqlite3.connect(url.path)
        try:
            return [tuple(row) for row in connection.execute(sql, params).fetchall()]
        finally:
            connection.close()
    import pymysql

    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        connection.close()


async def query(db_url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the database over a connection of our own (in a thread)."""
    return await threads.deferToThread(_query_sync, db_url, sql, params)


async def tables(db_url: str) -> set[str]:
    if check_db_url(db_url).dialect == "sqlite":
        rows = await query(db_url, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        rows = await query(db_url, "SHOW TABLES")
    return {row[0] for row in rows}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait (bounded) until `check()` is true: for work the Store started on
    its own timer, whose Deferred the test cannot hold."""
    waited = 0.0
    while not await check():
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await sleep(0.02)
        waited += 0.02


def store_messages(events: list[dict], level: LogLevel, text: str) -> list[str]:
    return [formatEvent(e) for e in events if e.get("log_level") == level and text in formatEvent(e)]


@pytest.fixture
def store_log():
    """Every event the store logged during the test."""
    events: list[dict] = []

    def observer(event: dict) -> None:
        if event.get("log_namespace", "").startswith("dashd.store."):
            events.append(event)

    globalLogPublisher.addObserver(observer)
    yield events
    globalLogPublisher.removeObserver(observer)


@pytest_twisted.async_yield_fixture
async def open_store(db_url):
    """Start Store services on the test's database (or another URL), with a
    task.Clock for their timers; all are stopped at the end."""
    rigs: list[Rig] = []

    async def open_(url: str | None = None, now_ms: int = T0_MS, **options: Any) -> Rig:
        clock, wall = Clock(), WallClock(now_ms)
        store = Store(url or db_url, clock, wall_clock_ms=wall, **options)
        rigs.append(Rig(store, clock, wall))
        store.startService()
        await store.ready()  # waits for the migration (and head recovery) startService began
        return rigs[-1]

    yield open_
    for rig in rigs:
        if rig.store.running:
            await rig.store.stopService()


async def count_rows(db_url: str, table: str) -> int:
    return (await query(db_url, f"SELECT COUNT(*) FROM {table}"))[0][0]


def _snapshot_sync(db_url: str, queries: list[str]) -> list[list[tuple]]:
    """Several SELECTs from one snapshot (one read transaction), so a flush
    or seal committing meanwhile is seen by all of them or by none."""
    url = check_db_url(db_url)
    if url.dialect == "sqlite":
        connection = sqlite3.connect(url.path, isolation_level=None)
        try:
            connection.execute("BEGIN")
            return [[tuple(row) for row in connection.execute(sql).fetchall()] for sql in queries]
        finally:
            connection.close()
    import pymysql

    connection = pymysql.connect(
        host=url.host, port=url.port, user=url.user, password=url.password, database=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            results = []
            for sql in queries:
                cursor.execute(sql)
                results.append([tuple(row) for row in cursor.fetchall()])
            return results
    finally:
        connection.close()


def _series_names(db_url: str) -> dict[int, tuple[str, str]]:
    return _names_of(_query_sync(db_url, "SELECT id, host, name, labels FROM series"))


def _names_of(rows: list[tuple]) -> dict[int, tuple[str, str]]:
    return {i: (host, name + (f"{{{labels}}}" if labels else "")) for i, host, name, labels in rows}


def stored_rows_sync(db_url: str) -> list[tuple]:
    """Every sample in the database, (seq, host, ts_ms, metric, value) sorted:
    the raw chunks and the head rows, decoded from our own connection (one
    snapshot: a flush polled for must not be seen half)."""
    series, chunks, heads = _snapshot_sync(
        db_url,
        [
            "SELECT id, host, name, labels FROM series",
            "SELECT series_id, data FROM chunks WHERE tier = 0",
            "SELECT data FROM chunk_head",
        ],
    )
    names = _names_of(series)
    rows = []
    for series_id, data in chunks:
        columns = decode_raw(data)
        host, key = names[series_id]
        rows += [
            (seq, host, t, key, v)
            for t, seq, v in zip(columns.t.tolist(), columns.seq.tolist(), columns.value.tolist())
        ]
    for (data,) in heads:
        head = decode_head(data)
        rows += [
            (seq, names[sid][0], t, names[sid][1], v)
            for sid, t, seq, v in zip(head.series.tolist(), head.t.tolist(), head.seq.tolist(), head.value.tolist())
        ]
    return sorted(rows)


async def stored_rows(db_url: str) -> list[tuple]:
    return await threads.deferToThread(stored_rows_sync, db_url)


async def count_samples(db_url: str) -> int:
    return len(await stored_rows(db_url))


async def minute_buckets(db_url: str, host: str, metric: str) -> list[tuple]:
    """(bucket_ms, avg, min, max, count) of the 1-minute tier, decoded."""
    names = await threads.deferToThread(_series_names, db_url)
    ids = [i for i, hk in names.items() if hk == (host, metric)]
    buckets = []
    for (data,) in await query(db_url, "SELECT data FROM chunks WHERE tier = 1 AND series_id = ?", tuple(ids)):
        c = decode_aggregate(data)
        buckets += list(zip(c.t.tolist(), c.avg.tolist(), c.min.tolist(), c.max.tolist(), c.count.tolist()))
    return sorted(buckets)


# ----- 1. migrations


def test_each_dialect_has_the_same_numbered_migrations():
    """One migration set per dialect, numbered from 1 upwards, each number once, with the same
    versions and names. Numbers are handed out per feature branch, so a branch may skip
    some (0005 before 0002 lands); the runner applies whatever is missing, in order."""
    sqlite_set = [(m.version, m.name) for m in load_migrations("sqlite")]
    mysql_set = [(m.version, m.name) for m in load_migrations("mysql")]
    assert sqlite_set and sqlite_set == mysql_set
    versions = [version for version, _ in sqlite_set]
    assert versions[0] == 1 and versions == sorted(set(versions))
    assert all(m.statements for m in load_migrations("sqlite") + load_migrations("mysql"))


@pytest_twisted.ensureDeferred
async def test_migrations_apply_once_and_are_recorded(db_url):
    """A fresh database gets every migration once; a second run applies none."""
    expected = load_migrations(check_db_url(db_url).dialect)
    applied = []
    for _ in range(2):
        store = Store(db_url, Clock(), wall_clock_ms=WallClock(T0_MS))
        store.pool = store.dialect.connection_pool()  # as `dashd migrate` does: no timers
        store.pool.start()
        try:
            applied.append(await store.ensure_schema())
            applied.append(await store.ensure_schema())  # the same Store does not look again
        finally:
            store.pool.close()
    assert applied == [len(expected), 0, 0, 0]
    rows = await query(db_url, "SELECT version, name, applied_at_ms FROM schema_migrations ORDER BY version")
    assert rows == [(m.version, m.name, T0_MS) for m in expected]
    assert ALL_TABLES <= await tables(db_url)


@pytest_twisted.ensureDeferred
async def test_store_service_migrates_at_start(open_store, db_url):
    """startService applies the migrations itself (no `dashd migrate` needed)."""
    assert await tables(db_url) == set()
    rig = await open_store()
    assert rig.store.migrated
    assert ALL_TABLES <= await tables(db_url)
    assert await count_rows(db_url, "schema_migrations") == len(load_migrations(rig.store.dialect.name))


def test_dashd_migrate_command(db_url, tmp_path):
    """`dashd migrate --db URL --state-dir DIR` creates the schema, says so,
    and a second run changes nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
    command = [os.path.join(VENV_BIN, "dashd"), "migrate", "--db", db_url, "--state-dir", str(tmp_path / "state")]
    for _ in range(2):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"database up to date: {db_url}"
    versions = _query_sync(db_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(m.version,) for m in load_migrations(check_db_url(db_url).dialect)]
    assert _query_sync(db_url, "SELECT COUNT(*) FROM chunks") == [(0,)]


# ----- 2. batched writes


@pytest_twisted.ensureDeferred
async def test_record_queues_and_one_flush_writes_the_batch_in_one_interaction(open_store, db_url, monkeypatch):
    """record() does no I/O; flush() writes 200 samples x 5 metrics, the
    notifications and acks with a single runInteraction (one transaction)."""
    rig = await open_store()
    store = rig.store
    calls: list[str] = []
    original = store.pool.runInteraction

    def counting(interaction, *args, **kwargs):
        calls.append(getattr(interaction, "__name__", repr(interaction)))
        return original(interaction, *args, **kwargs)

    monkeypatch.setattr(store.pool, "runInteraction", counting)
    for i in range(200):
        store.record(
            sample(i + 1, T0_MS - 200 * SECOND_MS + i * SECOND_MS, cpu=i, mem=2 * i, disk=0.5, net=float(i) / 3, load=1)
        )
    store.record(notification(201, T0_MS, "n-1"))
    store.record(ack(202, T0_MS, "n-1", "alice"))
    assert calls == [] and store.pending_rows == 1002
    assert await count_samples(db_url) == 0

    assert await store.flush() == 1002
    assert calls == ["_write_batch"]  # the window is still open: no seal yet
    assert store.pending_rows == 0
    rows = await stored_rows(db_url)
    assert len(rows) == 1000 and await count_rows(db_url, "chunk_head") == 1
    by_metric: dict[str, list[float]] = {}
    for _seq, _host, _ts, metric, value in rows:
        by_metric.setdefault(metric, []).append(value)
    assert sorted((m, len(v), sum(v)) for m, v in by_metric.items()) == [
        ("cpu", 200, float(sum(range(200)))),
        ("disk", 200, 100.0),
        ("load", 200, 200.0),
        ("mem", 200, float(2 * sum(range(200)))),
        ("net", 200, pytest.approx(sum(range(200)) / 3)),
    ]
    assert await query(db_url, "SELECT id, acknowledged_by FROM notifications") == [("n-1", "alice")]
    assert await count_rows(db_url, "notification_acks") == 1
    assert await store.flush() == 0 and calls == ["_write_batch"]  # nothing queued: no round-trip


@pytest_twisted.ensureDeferred
async def test_batch_timer_flushes_every_batch_interval(open_store, db_url):
    """The flush LoopingCall (on the injected clock) writes what was recorded;
    nothing is written before the interval passes."""
    rig = await open_store(batch_interval=2.0)
    rig.store.record(sample(1, T0_MS, cpu=1.0, mem=2.0))
    rig.clock.advance(1.9)
    await sleep(0.05)
    assert await count_samples(db_url) == 0 and rig.store.pending_rows == 2
    rig.clock.advance(0.1)

    async def written() -> bool:
        return await count_samples(db_url) == 2

    await eventually(written)
    assert rig.store.pending_rows == 0
    rig.store.record(sample(2, T0_MS + 1, cpu=3.0))
    rig.clock.advance(2.0)  # and again: the loop keeps running

    async def written_again() -> bool:
        return await count_samples(db_url) == 3

    await eventually(written_again)


def test_non_numeric_and_non_finite_values_are_not_queued():
    """Only finite numbers become sample rows (a NaN would break AVG and MySQL)."""
    store = Store("sqlite:///unused.db", Clock())
    store.record(sample(1, T0_MS, cpu=1.5, bad=float("nan"), worse=float("inf"), text="x", count=3))
    assert sorted((row[3], row[4]) for row in store._sample_rows) == [("count", 3.0), ("cpu", 1.5)]


# ----- 3. history


@pytest_twisted.ensureDeferred
async def test_history_raw_tier_downsamples_to_max_points(open_store):
    """Within raw retention: buckets of span/max_points over raw rows, with
    avg/min/max/count per bucket; empty buckets are left out; other hosts and
    metrics are not mixed in."""
    rig = await open_store()
    store = rig.store
    start = T0_MS - 10 * MINUTE_MS
    seq = 0
    for i in range(600):  # one sample a second for 10 minutes; cpu == i
        if 180 <= i < 240:
            continue  # a 1-minute gap: bucket 3 has no data
        seq += 1
        store.record(sample(seq, start + i * SECOND_MS, cpu=i, mem=50, other=-1))
        seq += 1
        store.record(sample(seq, start + i * SECOND_MS, host="h2", cpu=1000 + i))

    result = await store.history("h1", ["cpu", "mem"], start, T0_MS, max_points=10, raw_resolution_ms=SECOND_MS)
    assert result.tier == "raw" and result.bucket_ms == MINUTE_MS
    assert set(result.series) == {"cpu", "mem"}
    buckets = [k for k in range(10) if k != 3]
    assert result.series["cpu"] == [
        {"t": start + k * MINUTE_MS, "avg": 60 * k + 29.5, "min": 60 * k, "max": 60 * k + 59, "count": 60}
        for k in buckets
    ]
    assert result.series["mem"] == [
        {"t": start + k * MINUTE_MS, "avg": 50, "min": 50, "max": 50, "count": 60} for k in buckets
    ]

    # An uneven split: never more than max_points buckets, and nothing lost.
    result = await store.history("h1", ["cpu"], start, T0_MS, max_points=7, raw_resolution_ms=SECOND_MS)
    bucket_ms = result.bucket_ms
    assert bucket_ms == -(-10 * MINUTE_MS // 7)
    expected: dict[int, list[int]] = {}
    for i in [i for i in range(600) if not 180 <= i < 240]:
        expected.setdefault(i * SECOND_MS // bucket_ms, []).append(i)
    assert len(result.series["cpu"]) == len(expected) <= 7
    for point, (k, values) in zip(result.series["cpu"], sorted(expected.items())):
        assert point == {
            "t": start + k * bucket_ms,
            "avg": pytest.approx(sum(values) / len(values), abs=1e-4),
            "min": min(values),
            "max": max(values),
            "count": len(values),
        }

    # Asking for more points than there are samples: buckets no finer than raw_resolution_ms.
    result = await store.history(
        "h1", ["cpu"], start, start + 10 * SECOND_MS, max_points=1000, raw_resolution_ms=2 * SECOND_MS
    )
    assert result.bucket_ms == 2 * SECOND_MS
    assert [(p["min"], p["max"], p["count"]) for p in result.series["cpu"]] == [
        (0, 1, 2),
        (2, 3, 2),
        (4, 5, 2),
        (6, 7, 2),
        (8, 9, 2),
    ]


@pytest_twisted.ensureDeferred
async def test_history_beyond_raw_retention_reads_the_1m_rollup(open_store, db_url):
    """A range older than retention_raw is answered from the 1-minute tier
    (avg/min/max/count per minute, rolled up when the raw chunk was sealed),
    merged into at most max_points buckets; it still answers after the raw
    chunks are pruned."""
    rig = await open_store(retention_raw=1 * HOUR, retention_rollup=30 * DAY)
    store = rig.store
    start = T0_MS - 3 * HOUR_MS  # older than raw retention
    for i in range(600):  # 10 minutes, cpu == i
        store.record(sample(i + 1, start + i * SECOND_MS, cpu=i))
    await store.flush()  # the windows are long over: sealed
    await store.rollup()  # (the store batches rollups; prune and stop run them too)
    minutes = await minute_buckets(db_url, "h1", "cpu")
    assert minutes == [(start + m * MINUTE_MS, 60 * m + 29.5, 60 * m, 60 * m + 59, 60) for m in range(10)]

    end = start + 10 * MINUTE_MS
    result = await store.history("h1", ["cpu"], start, end, max_points=5, raw_resolution_ms=SECOND_MS)
    assert result.tier == "1m" and result.bucket_ms == 2 * MINUTE_MS
    expected = [
        {"t": start + k * 2 * MINUTE_MS, "avg": 120 * k + 59.5, "min": 120 * k, "max": 120 * k + 119, "count": 120}
        for k in range(5)
    ]
    assert result.series["cpu"] == expected

    # More points than minutes: one bucket per rollup minute, never finer.
    result = await store.history("h1", ["cpu"], start, end, max_points=500, raw_resolution_ms=SECOND_MS)
    assert result.tier == "1m" and result.bucket_ms == MINUTE_MS and len(result.series["cpu"]) == 10

    await store.prune()
    assert await count_samples(db_url) == 0  # all raw chunks were past retention
    result = await store.history("h1", ["cpu"], start, end, max_points=5, raw_resolution_ms=SECOND_MS)
    assert result.series["cpu"] == expected


@pytest_twisted.ensureDeferred
async def test_rollup_rerolls_late_rows_into_their_minute(open_store, db_url):
    """A sample that arrives after its chunk was sealed and rolled up makes a
    chunk of its own, whose rollup is merged into the same minute bucket."""
    rig = await open_store()
    store = rig.store
    minute = T0_MS - 5 * MINUTE_MS
    rig.wall.ms = T0_MS + 2 * MINUTE_MS  # the window [T0 - 10 min, T0) is over
    store.record(sample(1, minute + 1_000, cpu=10))
    await store.flush()
    await store.rollup()
    assert await minute_buckets(db_url, "h1", "cpu") == [(minute, 10.0, 10.0, 10.0, 1)]
    store.record(sample(2, minute + 2_000, cpu=30))
    await store.flush()
    await store.rollup()
    assert await minute_buckets(db_url, "h1", "cpu") == [(minute, 20.0, 10.0, 30.0, 2)]
    assert await count_rows(db_url, "chunks WHERE tier = 0") == 2 and await count_samples(db_url) == 2


# ----- 4. stats


@pytest_twisted.ensureDeferred
async def test_stats_over_the_window(open_store):
    """avg/min/max/p95/count/last per metric over raw samples in [from, to];
    samples outside the window or of other hosts do not count."""
    rig = await open_store()
    store = rig.store
    start = T0_MS - MINUTE_MS
    values = [(i * 7) % 20 + 1 for i in range(20)]  # 1..20 shuffled; last is 14
    store.record(sample(1, start - 1, cpu=1000))  # just before the window
    for i, value in enumerate(values):
        store.record(sample(i + 2, start + i * SECOND_MS, cpu=value, mem=5))
    store.record(sample(30, start + 19 * SECOND_MS, host="h2", cpu=-1000))
    store.record(sample(31, start + 20 * SECOND_MS + 1, cpu=2000))  # just after

    stats = await store.stats("h1", ["cpu", "mem", "absent"], start, start + 19 * SECOND_MS)
    # p95 of 1..20 by linear interpolation: position 19 * 0.95 = 18.05 -> 19.05
    assert stats["cpu"] == {"avg": 10.5, "min": 1, "max": 20, "p95": 19.05, "count": 20, "last": 14}
    assert stats["mem"] == {"avg": 5, "min": 5, "max": 5, "p95": 5, "count": 20, "last": 5}
    assert stats["absent"] == {"avg": None, "min": None, "max": None, "p95": None, "count": 0, "last": None}


# ----- 5. read_stream


@pytest_twisted.ensureDeferred
async def test_read_stream_rebuilds_messages_in_seq_order(open_store):
    """Samples, notifications and acks come back as the StreamMessages they
    were, in seq order, within [from_seq, to_seq] (queued ones included)."""
    rig = await open_store()
    store = rig.store
    t = T0_MS - MINUTE_MS
    messages = [
        sample(1, t, cpu=1.5),
        notification(2, t + 1, "n-a"),
        sample(3, t + 2, host="h2", cpu=3.0, mem=4.25),
        notification(4, t + 3, "n-b", state="firing"),
        ack(5, t + 4, "n-a", "alice"),
        sample(6, t + 5, cpu=6.0),
        sample(7, t + 6, cpu=7.0),
    ]
    for message in messages[:4]:
        store.record(message)
    await store.flush()
    for message in messages[4:]:
        store.record(message)  # still queued: read_stream flushes first

    rebuilt = await store.read_stream(2, 6)
    assert [(m.seq, m.type) for m in rebuilt] == [
        (2, NOTIFICATION),
        (3, METRICS_UPDATE),
        (4, NOTIFICATION),
        (5, NOTIFICATION_ACK),
        (6, METRICS_UPDATE),
    ]
    assert rebuilt[1] == messages[2]
    assert rebuilt[4] == messages[5]
    # A notification is rebuilt with its current acknowledgement.
    assert rebuilt[0].timestamp_ms == t + 1
    assert rebuilt[0].body == dict(messages[1].body, acknowledged_by="alice", acknowledged_at=iso_ms(t + 4))
    assert rebuilt[2].body == messages[3].body
    assert rebuilt[3] == messages[4]
    assert await store.read_stream(8, 100) == []
    assert await store.max_seq() == 7


# ----- 6. retention


@pytest_twisted.ensureDeferred
async def test_prune_applies_both_retentions(open_store, db_url):
    """prune() keeps raw rows newer than retention_raw and rollups newer than
    retention_rollup, and deletes the older ones."""
    rig = await open_store(retention_raw=1 * HOUR, retention_rollup=1 * DAY)
    store = rig.store
    old_day, old_hour, recent = T0_MS - 2 * DAY_MS, T0_MS - 2 * HOUR_MS, T0_MS - 30 * MINUTE_MS
    for seq, ts in enumerate((old_day, old_hour, recent), start=1):
        store.record(sample(seq, ts, cpu=float(seq)))
    store.record(notification(4, old_day, "n-old"))
    store.record(notification(5, old_hour, "n-kept"))
    await store.prune()

    assert [row[2] for row in await stored_rows(db_url)] == [recent]
    assert [row[0] for row in await minute_buckets(db_url, "h1", "cpu")] == [old_hour, recent]
    assert await query(db_url, "SELECT id FROM notifications") == [("n-kept",)]


@pytest_twisted.ensureDeferred
async def test_prune_timer_runs_prune(open_store, db_url):
    """The prune LoopingCall fires every prune_interval on the injected clock."""
    rig = await open_store(retention_raw=1 * HOUR, prune_interval=300.0, batch_interval=1000.0)
    rig.store.record(sample(1, T0_MS - 2 * HOUR_MS, cpu=1))
    rig.store.record(sample(2, T0_MS - 1, cpu=2))
    await rig.store.flush()
    assert await count_samples(db_url) == 2
    rig.clock.advance(300.0)

    async def pruned() -> bool:
        return await count_samples(db_url) == 1

    await eventually(pruned)
    assert [row[2] for row in await stored_rows(db_url)] == [T0_MS - 1]
    assert len(await minute_buckets(db_url, "h1", "cpu")) == 1  # the open chunk is not rolled up yet


# ----- 7. database down


class TrackedProxyServer(portforward.ProxyServer):
    def connectionMade(self) -> None:
        self.factory.servers.add(self)
        super().connectionMade()

    def connectionLost(self, reason) -> None:
        self.factory.servers.discard(self)
        super().connectionLost(reason)


class MySQLOutage:
    """A TCP forwarder between the Store and MariaDB: `down()` stops listening
    and drops every forwarded connection, `up()` listens again on the same port."""

    unreachable = True  # not even a SELECT gets through

    def __init__(self, db_url: str) -> None:
        self.real = check_db_url(db_url)
        self.factory = portforward.ProxyFactory(self.real.host, self.real.port)
        self.factory.protocol = TrackedProxyServer
        self.factory.servers = set()
        self.listening = None
        self.port = 0

    @property
    def store_url(self) -> str:
        return f"mysql://{self.real.user}@127.0.0.1:{self.port}/{self.real.database}"

    async def up(self) -> None:
        self.listening = await TCP4ServerEndpoint(reactor, self.port, interface="127.0.0.1").listen(self.factory)
        self.port = self.listening.getHost().port

    async def prepare(self, store: Store) -> None:
        pass

    async def down(self) -> None:
        await self.listening.stopListening()
        self.listening = None
        for server in list(self.factory.servers):
            server.transport.abortConnection()
            if server.peer is not None:
                server.peer.transport.abortConnection()

        async def closed() -> bool:
            return not self.factory.servers

        await eventually(closed)

    async def close(self) -> None:
        if self.listening is not None:
            await self.listening.stopListening()
            for server in list(self.factory.servers):
                server.transport.abortConnection()


class SQLiteOutage:
    """SQLite cannot be stopped, and as root file permissions do not stop it
    either; what makes it unable to write is another process holding the
    write lock. `down()` takes an exclusive lock from a second connection."""

    unreachable = False  # WAL readers still read while a writer holds the lock

    def __init__(self, db_url: str) -> None:
        self.store_url = db_url
        self.path = check_db_url(db_url).path
        self.blocker: sqlite3.Connection | None = None

    async def up(self) -> None:
        if self.blocker is not None:
            self.blocker.rollback()
            self.blocker.close()
            self.blocker = None

    async def prepare(self, store: Store) -> None:
        # The Store waits up to 30 s for a lock; a short wait keeps the test quick.
        await store.pool.runInteraction(lambda cursor: cursor.execute("PRAGMA busy_timeout = 100"))

    async def down(self) -> None:
        self.blocker = sqlite3.connect(self.path, isolation_level=None)
        self.blocker.execute("BEGIN EXCLUSIVE")

    async def close(self) -> None:
        await self.up()


@pytest_twisted.async_yield_fixture
async def outage(db_url):
    """A way to take the test's database away from the Store and bring it back."""
    chosen = SQLiteOutage(db_url) if check_db_url(db_url).dialect == "sqlite" else MySQLOutage(db_url)
    await chosen.up()
    yield chosen
    await chosen.close()


@pytest_twisted.ensureDeferred
async def test_database_down_queues_rows_and_writes_them_when_back(outage, open_store, db_url, store_log):
    """While the database is unreachable flushes fail, rows stay queued and
    one "database unavailable" error is logged; when it returns the next
    flush writes everything, once."""
    rig = await open_store(outage.store_url)
    store = rig.store
    await outage.prepare(store)
    store.record(sample(1, T0_MS, cpu=1.0, mem=2.0))
    await store.flush()  # the connection is in use before the outage
    store.record(sample(2, T0_MS + 1, cpu=3.0, mem=4.0))
    store.record(notification(3, T0_MS + 2, "n-1"))

    await outage.down()
    assert await store.flush() == 0
    assert store.pending_rows == 3 and not store.available
    store.record(sample(4, T0_MS + 3, cpu=5.0, mem=6.0))
    assert await store.flush() == 0
    assert await store.flush() == 0
    assert store.pending_rows == 5
    if outage.unreachable:
        assert not await store.check()  # readiness says so too
    errors = store_messages(store_log, LogLevel.error, "database unavailable")
    assert len(errors) == 1, errors
    assert "rows queued in memory" in errors[0]

    await outage.up()
    assert await store.flush() == 5
    assert store.pending_rows == 0 and store.available
    assert store_messages(store_log, LogLevel.info, "database back")
    assert [(seq, metric, value) for seq, _h, _t, metric, value in await stored_rows(db_url)] == [
        (1, "cpu", 1.0),
        (1, "mem", 2.0),
        (2, "cpu", 3.0),
        (2, "mem", 4.0),
        (4, "cpu", 5.0),
        (4, "mem", 6.0),
    ]
    assert await query(db_url, "SELECT id, seq FROM notifications") == [("n-1", 3)]
    assert len(store_messages(store_log, LogLevel.error, "database unavailable")) == 1


@pytest_twisted.ensureDeferred
async def test_dropped_connection_is_replaced_without_losing_a_batch(outage, open_store, db_url, store_log):
    """The database goes away and comes back between two flushes: the pooled
    connection is dead, yet the next flush reconnects and writes its rows."""
    if not outage.unreachable:
        pytest.skip("SQLite is a file opened in-process: there is no server connection to drop")
    rig = await open_store(outage.store_url)
    store = rig.store
    await outage.prepare(store)
    store.record(sample(1, T0_MS, cpu=1.0))
    assert await store.flush() == 1
    await outage.down()
    await outage.up()
    store.record(sample(2, T0_MS + 1, cpu=2.0))
    assert await store.flush() == 1
    assert [row[0] for row in await stored_rows(db_url)] == [1, 2]
    assert store_messages(store_log, LogLevel.error, "database unavailable") == []


@pytest_twisted.ensureDeferred
async def test_queue_is_bounded_and_drops_the_oldest_with_a_warning(open_store, db_url, store_log):
    """With max_queue_rows=5, rows past the bound push out the oldest, and
    each drop logs a warning naming the count."""
    rig = await open_store(max_queue_rows=5)
    store = rig.store
    for seq in (1, 2, 3):
        store.record(sample(seq, T0_MS + seq, a=seq, b=seq, c=seq))
    assert store.pending_rows == 5
    warnings = store_messages(store_log, LogLevel.warn, "queue full")
    assert len(warnings) == 2
    assert "dropped the oldest 1 sample rows" in warnings[0]
    assert "dropped the oldest 3 sample rows" in warnings[1]
    assert await store.flush() == 5
    assert [(seq, metric) for seq, _h, _t, metric, _v in await stored_rows(db_url)] == [
        (2, "b"),
        (2, "c"),
        (3, "a"),
        (3, "b"),
        (3, "c"),
    ]


# ----- 8. shutdown


@pytest_twisted.ensureDeferred
async def test_stop_service_flushes_pending_rows_then_closes(open_store, db_url):
    """stopService writes what is queued, stops the timers and closes the pool."""
    rig = await open_store()
    store = rig.store
    for seq in range(1, 11):
        store.record(sample(seq, T0_MS + seq, cpu=seq))
    store.record(notification(11, T0_MS + 11, "n-1"))
    assert await count_samples(db_url) == 0
    await store.stopService()
    assert not store.running and store.pending_rows == 0
    assert not store.pool.running
    assert rig.clock.getDelayedCalls() == []  # both LoopingCalls stopped
    assert await count_samples(db_url) == 10
    assert await count_rows(db_url, "chunk_head") == 0  # a clean stop seals every open chunk
    assert await count_rows(db_url, "chunks WHERE tier = 0") == 1
    assert await count_rows(db_url, "notifications") == 1


@pytest_twisted.ensureDeferred
async def test_stop_service_with_database_down_says_what_it_lost(outage, open_store, store_log):
    """If the rows cannot be written at shutdown, the count is logged and the stop still completes."""
    rig = await open_store(outage.store_url)
    await outage.prepare(rig.store)
    await rig.store.check()
    rig.store.record(sample(1, T0_MS, cpu=1.0, mem=2.0))
    await outage.down()
    await rig.store.stopService()
    assert not rig.store.running and not rig.store.pool.running
    assert store_messages(store_log, LogLevel.error, "2 rows could not be written before shutdown")


@pytest_twisted.ensureDeferred
async def test_notifications_between_two_times_newest_first(open_store):
    """`notifications(from_ms=, to_ms=)` keeps only those stamped in the range
    (inclusive), still newest first and limited (chart markers of a past view)."""
    store = (await open_store()).store
    for seq, offset in enumerate((0, 10_000, 20_000, 30_000), start=1):
        store.record(notification(seq, T0_MS + offset, f"n-{seq}"))
    listed = await store.notifications(10, False, from_ms=T0_MS + 10_000, to_ms=T0_MS + 20_000)
    assert [n["id"] for n in listed] == ["n-3", "n-2"]
    assert [n["id"] for n in await store.notifications(1, False, from_ms=T0_MS + 10_000)] == ["n-4"]
    assert [n["id"] for n in await store.notifications(10, False, to_ms=T0_MS)] == ["n-1"]
