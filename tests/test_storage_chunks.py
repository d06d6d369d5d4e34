"""The chunk store (issue 13) against real databases: encoding, labelled
series, tiers, stats approximation, corrupt chunks, disk full, and the v1
migration with every value compared."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import LogLevel

from dashd.store import encoding
from dashd.store.database import Store, load_migrations
from dashd.store.migrate_v1 import V1Migration
from dashd.store.series import parse_series_key, series_key
from test_store import (  # noqa: F401  (open_store and store_log are fixtures)
    DAY,
    DAY_MS,
    HOUR,
    HOUR_MS,
    MINUTE_MS,
    SECOND_MS,
    T0_MS,
    open_store,
    query,
    sample,
    store_log,
    store_messages,
)

# ----- encoding (no I/O)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-10_000, 10_000), st.floats(allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=300,
    )
)
def test_raw_chunks_round_trip_bit_for_bit(points):
    """Any finite values and irregular, repeated or backwards time steps come back exactly."""
    t = np.cumsum(np.asarray([p[0] for p in points], np.int64)) + 1_700_000_000_000
    seq = np.arange(len(points), dtype=np.int64) * 3 + 7
    value = np.asarray([p[1] for p in points], np.float64)
    back = encoding.decode_raw(encoding.encode_raw(t, seq, value))
    assert back.t.tolist() == t.tolist() and back.seq.tolist() == seq.tolist()
    assert back.value.view(np.uint64).tolist() == value.view(np.uint64).tolist()


def test_decimal_values_take_about_a_byte_and_random_floats_stay_exact():
    t = T0_MS + np.arange(600, dtype=np.int64) * 1000
    seq = np.arange(600, dtype=np.int64)
    steady = np.round(20 + np.cumsum(np.random.default_rng(1).normal(0, 0.5, 600)), 2)
    assert len(encoding.encode_raw(t, seq, steady)) / 600 < 2.0
    noise = np.random.default_rng(2).standard_normal(600)
    assert encoding.decode_raw(encoding.encode_raw(t, seq, noise)).value.tolist() == noise.tolist()


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "header"])
def test_damaged_chunk_bytes_raise_chunk_corrupt(damage):
    blob = encoding.encode_raw(np.arange(50, dtype=np.int64), np.arange(50, dtype=np.int64), np.arange(50.0))
    broken = {
        "truncate": blob[:-7],
        "flip": blob[:10] + bytes([blob[10] ^ 0xFF]) + blob[11:],
        "empty": b"",
        "header": b"\x09" + blob[1:],
    }[damage]
    with pytest.raises(encoding.ChunkCorrupt):
        encoding.decode_raw(broken)


def test_open_chunks_seal_overtaken_idle_and_late_windows_and_snapshot_by_series():
    """Columns in, chunks out: a window is due when a newer one of its series
    has samples, when it has been idle past LATE_MS, or (a late sample) at
    once; each chunk comes out in time order; a snapshot holds only the
    series asked for and the head holds every open sample."""
    from dashd.store.chunks import LATE_MS, OpenChunks
    from dashd.store.encoding import HeadColumns
    from dashd.store.tiers import RAW, WINDOW_MS

    window = WINDOW_MS[RAW]
    w0 = T0_MS - T0_MS % window
    chunks = OpenChunks()

    def batch(series, times, first_seq):
        n = len(times)
        return HeadColumns(
            np.asarray(series, np.int64),
            np.asarray(times, np.int64),
            np.arange(first_seq, first_seq + n, dtype=np.int64),
            np.arange(n, dtype=np.float64),
        )

    for k in range(70):  # more flushes than COMPACT_BATCHES: merged runs and loose batches both
        chunks.add_columns(batch([1, 2], [w0 + 2000 * k + 1000, w0 + 2000 * k], 10 * k))
    assert chunks.take_due(w0 + window - 1) == [] and len(chunks) == 140
    assert {s for s, _ in chunks.snapshot({2})} == {2}
    assert sum(len(c.t) for _, c in chunks.snapshot({2})) == 70
    chunks.add_columns(batch([1], [w0 + window], 5000))  # series 1 moves on
    (sealed,) = chunks.take_due(w0 + window)
    assert (sealed.series_id, sealed.start_ms, sealed.count) == (1, w0, 70)
    assert list(sealed.columns.t) == sorted(sealed.columns.t)
    chunks.add_columns(batch([1], [w0 + 5], 6000))  # late for the window just sealed
    (late,) = chunks.take_due(w0 + window + 1)
    assert (late.series_id, late.start_ms, late.count) == (1, w0, 1)
    (idle,) = chunks.take_due(w0 + window + LATE_MS)  # series 2 went quiet
    assert (idle.series_id, idle.count) == (2, 70)
    assert list(chunks.head_columns().series) == [1] and len(chunks) == 1


def test_series_keys_round_trip_with_labels_in_canonical_order():
    key = series_key("disk_used_percent", {"mount": '/var/"x"', "device": "sda1"})
    assert key == 'disk_used_percent{device="sda1",mount="/var/\\"x\\""}'
    assert parse_series_key(key) == ("disk_used_percent", {"device": "sda1", "mount": '/var/"x"'})
    assert parse_series_key("cpu_usage") == ("cpu_usage", {})
    with pytest.raises(ValueError):
        parse_series_key("disk{mount=/var}")


# ----- the store


def _fill(store: Store, start_ms: int, seconds: int, host: str = "h1", first_seq: int = 1) -> None:
    for i in range(seconds):
        store.record(
            sample(
                first_seq + i,
                start_ms + i * SECOND_MS,
                host=host,
                cpu=float(i % 100),
                **{'disk{mount="/var"}': 50.0 + (i % 7)},
            )
        )


@pytest_twisted.ensureDeferred
async def test_labelled_series_are_registered_once_and_served_by_name(open_store, db_url):
    rig = await open_store()
    store = rig.store
    _fill(store, T0_MS - 30 * MINUTE_MS, 1200)
    await store.flush()
    rows = await query(db_url, "SELECT host, name, labels, unit, kind FROM series ORDER BY name")
    assert rows == [("h1", "cpu", "", "", "gauge"), ("h1", "disk", 'mount="/var"', "", "gauge")]
    result = await store.history("h1", ['disk{mount="/var"}'], T0_MS - 30 * MINUTE_MS, T0_MS, 10, SECOND_MS)
    assert sum(p["count"] for p in result.series['disk{mount="/var"}']) == 1200
    replayed = await store.read_stream(5, 5)
    assert replayed[0].metrics == {"cpu": 4.0, 'disk{mount="/var"}': 54.0}


@pytest_twisted.ensureDeferred
async def test_history_picks_the_hour_tier_past_the_minute_retention(open_store):
    """Older than the 1-minute retention: 1-hour buckets, merged min/max."""
    rig = await open_store(retention_raw=1 * HOUR, retention_rollup=1 * DAY, retention_hourly=30 * DAY)
    store = rig.store
    start = T0_MS - 3 * DAY_MS
    for i in range(3 * 60):  # one sample a minute for 3 hours
        store.record(sample(i + 1, start + i * MINUTE_MS, cpu=float(i)))
    await store.flush()
    result = await store.history("h1", ["cpu"], start, start + 3 * HOUR_MS, 100, SECOND_MS)
    assert result.tier == "1h" and result.bucket_ms == HOUR_MS
    assert [(p["min"], p["max"], p["count"]) for p in result.series["cpu"]] == [
        (0, 59, 60),
        (60, 119, 60),
        (120, 179, 60),
    ]


@pytest_twisted.ensureDeferred
async def test_stats_beyond_raw_coverage_are_marked_approximate(open_store):
    rig = await open_store(retention_raw=1 * HOUR)
    store = rig.store
    start = T0_MS - 2 * HOUR_MS
    for i in range(2 * 3600 // 10):  # every 10 s for 2 hours: cpu 1 in the first hour, 3 in the second
        store.record(sample(i + 1, start + i * 10 * SECOND_MS, cpu=1.0 if i < 360 else 3.0))
    await store.flush()
    exact = await store.stats("h1", ["cpu"], T0_MS - 30 * MINUTE_MS, T0_MS)
    assert "approximate" not in exact["cpu"] and exact["cpu"]["avg"] == 3.0
    mixed = await store.stats("h1", ["cpu"], start, T0_MS)
    assert mixed["cpu"]["approximate"] is True
    assert mixed["cpu"]["count"] == 720 and mixed["cpu"]["avg"] == 2.0
    assert (mixed["cpu"]["min"], mixed["cpu"]["max"]) == (1.0, 3.0)


@pytest_twisted.ensureDeferred
async def test_a_year_of_stats_reads_hours_then_minutes_then_raw_samples(open_store, db_url):
    """A window longer than the 1-minute retention: hours before it, minutes
    within it, raw samples within raw retention; each sample counted once,
    even where the pruned tiers' chunks overlap the window's edges."""
    rig = await open_store(retention_raw=1 * HOUR, retention_rollup=1 * DAY, retention_hourly=730 * DAY)
    store = rig.store
    seq = 0
    for start, value in ((T0_MS - 3 * DAY_MS, 1.0), (T0_MS - 12 * HOUR_MS, 2.0), (T0_MS - 30 * MINUTE_MS, 3.0)):
        for i in range(60):  # ten minutes at one sample every 10 s
            seq += 1
            store.record(sample(seq, start + i * 10 * SECOND_MS, cpu=value))
    await store.flush()
    await store.prune()  # rolls up, then drops the minutes and raw samples past their retention
    assert await query(db_url, "SELECT COUNT(*) FROM chunks WHERE tier = 1 AND end_ms < ?", (T0_MS - DAY_MS,)) == [(0,)]
    year = await store.stats("h1", ["cpu"], T0_MS - 365 * DAY_MS, T0_MS)
    assert year["cpu"]["approximate"] is True
    assert (year["cpu"]["count"], year["cpu"]["avg"], year["cpu"]["min"], year["cpu"]["max"]) == (180, 2.0, 1.0, 3.0)
    assert year["cpu"]["last"] == 3.0


@pytest_twisted.ensureDeferred
async def test_history_reads_the_coarsest_tier_finer_than_its_buckets(open_store):
    """30 days at 500 points (86-minute buckets) come from the 1-hour tier,
    24 hours at 500 points from the 1-minute tier, an hour from raw samples;
    the buckets and their min/max/count are the same either way."""
    rig = await open_store(retention_raw=7 * DAY, retention_rollup=90 * DAY)
    store = rig.store
    start = T0_MS - 2 * HOUR_MS
    for i in range(2 * 3600 // 10):  # every 10 s for 2 hours, cpu == i
        store.record(sample(i + 1, start + i * 10 * SECOND_MS, cpu=float(i)))
    await store.flush()
    await store.rollup()
    month = await store.history("h1", ["cpu"], T0_MS - 30 * DAY_MS, T0_MS, 500, SECOND_MS)
    day = await store.history("h1", ["cpu"], T0_MS - DAY_MS, T0_MS, 500, SECOND_MS)
    hour = await store.history("h1", ["cpu"], T0_MS - HOUR_MS, T0_MS, 500, SECOND_MS)
    assert (month.tier, day.tier, hour.tier) == ("1h", "1m", "raw")
    assert month.bucket_ms == math.ceil(30 * DAY_MS / 500) and day.bucket_ms == math.ceil(DAY_MS / 500)
    for result in (month, day):
        points = result.series["cpu"]
        assert sum(p["count"] for p in points) == 720
        assert (min(p["min"] for p in points), max(p["max"] for p in points)) == (0.0, 719.0)
    assert sum(p["count"] for p in hour.series["cpu"]) == 360


@pytest_twisted.ensureDeferred
async def test_a_corrupt_chunk_is_skipped_with_one_log_line_and_the_rest_is_served(open_store, db_url, store_log):
    rig = await open_store()
    store = rig.store
    start = T0_MS - 60 * MINUTE_MS
    _fill(store, start, 3600)
    await store.flush()  # five 10-minute windows sealed, the last one open
    rows = await query(
        db_url,
        "SELECT c.id, c.data FROM chunks c JOIN series s ON s.id = c.series_id "
        "WHERE c.tier = 0 AND s.name = 'cpu' ORDER BY c.start_ms",
    )
    assert len(rows) == 5
    bad_id, data = rows[1]
    damaged = bytes(data[:12]) + bytes(b ^ 0x5A for b in data[12:40]) + bytes(data[40:])
    await store.execute("UPDATE chunks SET data = ? WHERE id = ?", (damaged, bad_id))
    result = await store.history("h1", ["cpu"], start, T0_MS, 60, SECOND_MS)
    minutes = [p["t"] for p in result.series["cpu"]]
    assert len(minutes) == 50  # 60 minutes less the 10 of the corrupt chunk
    assert all(not start + 10 * MINUTE_MS <= t < start + 20 * MINUTE_MS for t in minutes)
    errors = store_messages(store_log, LogLevel.error, "corrupt")
    assert len(errors) == 1 and f"chunk {bad_id} " in errors[0]
    # Truncated bytes too; and stats and resume keep answering.
    await store.execute("UPDATE chunks SET data = ? WHERE id = ?", (bytes(data[:9]), rows[2][0]))
    stats = await store.stats("h1", ["cpu"], start, T0_MS)
    assert stats["cpu"]["count"] == 3600 - 1200
    assert len(await store.read_stream(1, 3600)) == 3600  # the disk series still has every seq


@pytest_twisted.ensureDeferred
async def test_disk_full_on_sqlite_queues_and_writes_when_space_returns(open_store, db_url, store_log):
    """SQLITE_FULL (a size cap standing in for a full disk): flushes fail,
    the store reports not ready, rows stay queued; with space back they are
    written, once."""
    if "sqlite" not in db_url:
        pytest.skip("SQLite's disk full; MariaDB's outage is the outage test in test_store")
    rig = await open_store()
    store = rig.store
    pages = (await store.fetchall("PRAGMA page_count"))[0][0]
    await store.fetchall(f"PRAGMA max_page_count = {pages}")
    noise = np.random.default_rng(3).standard_normal(3000).tolist()  # incompressible: needs new pages
    for i, value in enumerate(noise):
        store.record(sample(i + 1, T0_MS - 50 * MINUTE_MS + i * SECOND_MS, cpu=value, mem=-value))
    assert await store.flush() == 0
    assert store.pending_rows == 6000 and not await store.check()
    assert store_messages(store_log, LogLevel.error, "database or disk is full")
    await store.fetchall("PRAGMA max_page_count = 1000000")
    assert await store.flush() == 6000
    assert await store.check()
    stats = await store.stats("h1", ["cpu"], T0_MS - 50 * MINUTE_MS, T0_MS)
    assert stats["cpu"]["count"] == 3000


# ----- migration from v1


def _build_v1(db_url: str) -> tuple[list[tuple], list[tuple]]:
    """A v1 database as the v1 code wrote it: schema 0001, narrow sample rows
    (two hosts, irregular times, a duplicate) and 1-minute rollups that
    outlived their raw rows. Returns (samples, rollups)."""
    from dashd.settings import check_db_url

    url = check_db_url(db_url)
    v1 = [m for m in load_migrations(url.dialect) if m.version == 1][0]
    rng = np.random.default_rng(7)
    samples, seq = [], 0
    for i in range(2500):
        ts = T0_MS - 2 * HOUR_MS + i * 2000 + int(rng.integers(0, 900))
        for host in ("h1", "h2"):
            seq += 1
            samples.append((seq, host, ts, "cpu_usage", round(float(rng.uniform(0, 100)), 2)))
            samples.append((seq, host, ts, "load_1", float(rng.standard_normal())))
    samples.append(samples[-1])  # v1 had no unique key: a row written twice
    mark = T0_MS - 2 * HOUR_MS
    rollups = [("h1", "cpu_usage", mark - (k + 1) * MINUTE_MS, 10.0 + k, 5.0, 20.0 + k, 60) for k in range(90)]
    statements = list(v1.statements)
    if url.dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(url.path)
        run = connection.execute
        many = connection.executemany
    else:
        import pymysql

        connection = pymysql.connect(
            host=url.host, port=url.port, user=url.user, password=url.password, database=url.database
        )
        cursor = connection.cursor()
        run = lambda q, p=(): cursor.execute(q.replace("?", "%s"), p)  # noqa: E731
        many = lambda q, p: cursor.executemany(q.replace("?", "%s"), p)  # noqa: E731
    run(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
        "applied_at_ms BIGINT NOT NULL)"
    )
    for statement in statements:
        run(statement)
    run("INSERT INTO schema_migrations VALUES (?, ?, ?)", (1, v1.name, T0_MS))
    many("INSERT INTO samples (seq, host, ts_ms, metric, value) VALUES (?, ?, ?, ?, ?)", samples)
    many(
        "INSERT INTO rollup_1m (host, metric, bucket_ms, avg_value, min_value, max_value, sample_count) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        rollups,
    )
    run("INSERT INTO meta (name, value) VALUES (?, ?)", ("rollup_until_ms", str(mark)))
    connection.commit()
    connection.close()
    return samples, rollups


@pytest_twisted.ensureDeferred
async def test_migrate_moves_a_v1_database_with_every_value_kept_and_resumes(open_store, db_url):
    samples, rollups = _build_v1(db_url)
    rig = await open_store(retention_raw=1 * HOUR, retention_rollup=90 * DAY)
    store = rig.store
    # Interrupted after three small batches, then run again to the end.
    first = await V1Migration(store, batch_rows=1000).run(max_batches=3)
    assert first.phase == "rollup" or first.phase == "samples"
    done = await V1Migration(store, batch_rows=1000).run()
    assert done.phase == "done" and done.sample_rows == len(samples) and done.rollup_rows == len(rollups)
    tables = {
        row[0]
        for row in await store.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if "sqlite" in db_url else "SHOW TABLES"
        )
    }
    assert "samples" not in tables and "rollup_1m" not in tables

    # Every raw value, by seq, host and metric, bit for bit.
    replayed = await store.read_stream(1, 10**9)
    got = sorted((m.seq, m.host, m.timestamp_ms, name, value) for m in replayed for name, value in m.metrics.items())
    expected: dict[tuple, tuple] = {}
    for seq, host, ts, metric, value in samples:
        expected[(seq, host, metric)] = (seq, host, ts, metric, value)
    assert got == sorted(expected.values())
    # The v1 rollups that outlived their raw rows are in the 1-minute tier.
    history = await store.history("h1", ["cpu_usage"], rollups[-1][2], rollups[0][2] + MINUTE_MS, 1000, SECOND_MS)
    assert history.tier == "1m"
    old = [p for p in history.series["cpu_usage"] if p["t"] < T0_MS - 2 * HOUR_MS]
    assert sorted((p["t"], p["avg"], p["min"], p["max"], p["count"]) for p in old) == sorted(
        (b, a, lo, hi, c) for _h, _m, b, a, lo, hi, c in rollups
    )
    # A second run finds nothing to do.
    assert (await V1Migration(store).run()).phase == "done"
    assert math.isfinite(await store.max_seq())
