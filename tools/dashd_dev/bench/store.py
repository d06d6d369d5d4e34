"""`dashd bench store`: the chunk store through its real code (Store.record,
flush, seal, history) on SQLite and on MariaDB, next to the v1 layout (one
row per value) measured in the same run.

Ingest: N series (default 1,000: 10 hosts x 100 psutil-like series) at
1 Hz for a simulated span (default 2 h), flushed every simulated second as
the daemon does; reports bytes per sample on disk (SQLite file size after a
checkpoint; MariaDB data_length + index_length) and the process CPU per
sample (record + flush + seal + rollups; for SQLite the database work runs
in this process too). Queries: 16 series over 30 simulated days, then
`history` at 500 points over 1 h, 24 h and 30 d for one and for 16 series
(p50/p99). Ends with the RESULT line docs/storage.md describes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from typing import Any, Callable

import numpy as np

from dashd.store.tiers import DAY_MS, HOUR_MS

T_END_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: simulated "now" at the end of each run


def _profiles(count: int, rng: np.random.Generator) -> list[Callable[[int], float]]:
    """psutil-like series: percentages (2 decimals, random walk), byte rates
    (1 decimal, bursty), counts (integers), load (2 decimals), and a few
    constant ones, as the collector's catalogue has."""
    makers = []
    for i in range(count):
        kind = i % 5
        state = {"v": float(rng.uniform(5, 60))}
        if kind == 0:

            def step(_s, state=state):
                state["v"] = min(100.0, max(0.0, state["v"] + rng.normal(0, 2)))
                return round(state["v"], 2)
        elif kind == 1:

            def step(_s):
                return round(float(rng.exponential(20_000)) if rng.random() < 0.3 else 0.0, 1)
        elif kind == 2:

            def step(_s, state=state):
                state["v"] = max(0.0, state["v"] + float(rng.integers(-1, 2)))
                return state["v"]
        elif kind == 3:

            def step(_s, state=state):
                state["v"] = max(0.0, state["v"] * 0.98 + rng.normal(0, 0.05) + 0.02)
                return round(state["v"], 2)
        else:

            def step(_s, state=state):
                return round(state["v"], 1)

        makers.append(step)
    return makers


def _values(series: int, seconds: int, seed: int) -> np.ndarray:
    """[second, series] values, generated up front (not charged to ingest)."""
    rng = np.random.default_rng(seed)
    profiles = _profiles(series, rng)
    return np.asarray([[p(s) for p in profiles] for s in range(seconds)])


def _db_url(dialect: str, work: str, mysql_url: str, tag: str) -> tuple[str, Callable[[], None]]:
    if dialect == "sqlite":
        return f"sqlite:///{os.path.join(work, tag + '.db')}", lambda: None
    import pymysql

    from dashd.settings import check_db_url

    base = check_db_url(mysql_url)
    name = f"dashd_bench_{tag}_{uuid.uuid4().hex[:6]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    password = f":{base.password}" if base.password else ""

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()

    return f"mysql://{base.user}{password}@{base.host}:{base.port}/{name}", drop


def _size_bytes(url: str, tables: tuple[str, ...]) -> int:
    from dashd.settings import check_db_url

    parsed = check_db_url(url)
    if parsed.dialect == "sqlite":
        import sqlite3

        connection = sqlite3.connect(parsed.path)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        return os.path.getsize(parsed.path)
    import pymysql

    connection = pymysql.connect(
        host=parsed.host, port=parsed.port, user=parsed.user, password=parsed.password, database=parsed.database
    )
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE TABLE {table}")
            cursor.fetchall()
        marks = ", ".join(["%s"] * len(tables))
        cursor.execute(
            f"SELECT SUM(data_length + index_length) FROM information_schema.tables "
            f"WHERE table_schema = %s AND table_name IN ({marks})",
            (parsed.database, *tables),
        )
        size = int(cursor.fetchone()[0] or 0)
    connection.close()
    return size


class _Wall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


async def _ingest(
    url: str, values: np.ndarray, hosts: int, start_ms: int, step_s: int, flush_every: int, **options: Any
) -> tuple[Any, float, int]:
    """Feed values[second, series] through a real Store; (store, cpu s, samples)."""
    from twisted.internet.task import Clock

    from dashd.store.database import Store
    from dashd.stream.streams import METRICS_UPDATE, StreamMessage

    wall = _Wall(start_ms)
    store = Store(url, Clock(), wall_clock_ms=wall, **options)
    store.startService()
    await store.ready()
    seconds, series = values.shape
    per_host = series // hosts
    names = [f"m{i}" for i in range(per_host)]
    rows = values.tolist()
    seq, samples = 0, 0
    cpu = time.process_time()
    for s in range(seconds):
        ts = start_ms + s * step_s * 1000
        wall.ms = ts
        row = rows[s]
        for h in range(hosts):
            seq += 1
            store.record(
                StreamMessage(
                    seq, METRICS_UPDATE, ts, f"host{h}", dict(zip(names, row[h * per_host : (h + 1) * per_host]))
                )
            )
        samples += series
        if s % flush_every == flush_every - 1:
            await store.flush()
    await store.flush()
    cpu = time.process_time() - cpu
    return store, cpu, samples


async def _v1_bytes(url: str, values: np.ndarray, hosts: int, start_ms: int) -> float:
    """The v1 layout (schema 0001, one row per value) for the same samples."""
    from twisted.internet import threads

    from dashd.settings import check_db_url
    from dashd.store.database import Dialect, load_migrations

    dialect = Dialect(check_db_url(url))
    pool = dialect.connection_pool()
    pool.start()
    v1 = [m for m in load_migrations(dialect.name) if m.version == 1][0]
    seconds, series = values.shape
    per_host = series // hosts

    def build(cursor) -> None:
        for statement in v1.statements:
            cursor.execute(statement)

    def insert(cursor, first: int, last: int) -> None:
        rows = []
        for s in range(first, last):
            for i, value in enumerate(values[s].tolist()):
                h = i // per_host
                rows.append((s * hosts + h + 1, f"host{h}", start_ms + s * 1000, f"m{i % per_host}", value))
        cursor.executemany(
            dialect.sql("INSERT INTO samples (seq, host, ts_ms, metric, value) VALUES (?, ?, ?, ?, ?)"), rows
        )

    try:
        await pool.runInteraction(build)
        for first in range(0, seconds, 60):
            await pool.runInteraction(insert, first, min(seconds, first + 60))
    finally:
        pool.close()
    size = await threads.deferToThread(_size_bytes, url, ("samples",))
    return size / (seconds * series)


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


async def _queries(url: str, days: int, step_s: int, repeats: int, say: Callable[[str], None]) -> dict:
    """16 series over `days`, then history latencies at 500 points."""
    values = _values(16, days * DAY_MS // 1000 // step_s, seed=11)
    start = T_END_MS - days * DAY_MS
    store, _cpu, samples = await _ingest(url, values, 1, start, step_s, flush_every=max(1, 600 // step_s))
    store.wall_clock_ms.ms = T_END_MS
    await store.rollup()  # the daemon's hourly rollup batch: what a long-running store has done
    say(f"  queries: {samples} samples over {days} d ingested (a sample every {step_s} s)")
    results = {}
    try:
        for label, span in (("1h", HOUR_MS), ("24h", DAY_MS), ("30d", days * DAY_MS)):
            for count in (1, 16):
                names = [f"m{i}" for i in range(count)]
                latencies = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    result = await store.history("host0", names, T_END_MS - span, T_END_MS, 500, 1000)
                    latencies.append(time.perf_counter() - began)
                assert result.series[names[0]], f"history {label} returned nothing"
                results[f"{label}_{count}"] = dict(_percentiles(latencies), tier=result.tier)
    finally:
        await store.stopService()
    return results


async def bench_dialect(dialect: str, args: argparse.Namespace, work: str, say: Callable[[str], None]) -> dict:
    seconds = int(args.minutes * 60)
    say(f"{dialect}: ingest {args.series} series x {seconds} s")
    values = _values(args.series, seconds, seed=5)
    url, drop = _db_url(dialect, work, args.mysql_url, "ingest")
    try:
        store, cpu, samples = await _ingest(url, values, args.hosts, T_END_MS - seconds * 1000, 1, flush_every=1)
        await store.stopService()  # a clean stop: every chunk sealed
        from twisted.internet import threads

        size = await threads.deferToThread(_size_bytes, url, ("series", "chunks", "chunk_head"))
    finally:
        drop()
    old_series = min(args.series, args.v1_series)
    url, drop = _db_url(dialect, work, args.mysql_url, "v1")
    try:
        v1 = await _v1_bytes(
            url, values[:, :old_series], max(1, args.hosts * old_series // args.series), T_END_MS - seconds * 1000
        )
    finally:
        drop()
    url, drop = _db_url(dialect, work, args.mysql_url, "query")
    try:
        queries = await _queries(url, args.days, args.query_step, args.repeats, say)
    finally:
        drop()
    result = {
        "dialect": dialect,
        "samples": samples,
        "bytes_per_sample": round(size / samples, 3),
        "v1_bytes_per_sample": round(v1, 1),
        "ingest_us_per_sample": round(cpu / samples * 1e6, 2),
        "history": queries,
    }
    say(json.dumps(result))
    return result


def encoding_cases(psutil_seconds: float, period: float = 0.25) -> dict[str, float]:
    """Bytes per sample of the chunk encoding alone (one chunk per series):
    real psutil readings of this host, and synthetic worst cases."""
    from dashd.collect.collector import MetricsCollector, PsutilReader
    from dashd.store.encoding import encode_raw

    def per_sample(series: dict[str, tuple[list[int], list[float]]]) -> float:
        total = count = 0
        for times, values in series.values():
            t = np.asarray(times, np.int64)
            total += len(encode_raw(t, np.arange(len(t), dtype=np.int64) * 17 + 1000, np.asarray(values)))
            count += len(t)
        return round(total / count, 3)

    collector = MetricsCollector(PsutilReader(), "bench", lambda: 0)
    collector.prime()
    real: dict[str, tuple[list[int], list[float]]] = {}
    for _ in range(max(2, int(psutil_seconds / period))):
        time.sleep(period)
        reading = collector.sample()
        for name, value in reading.metrics.items():
            times, values = real.setdefault(name, ([], []))
            times.append(reading.timestamp_ms)
            values.append(float(value))
    rng = np.random.default_rng(3)
    n, t0 = 600, T_END_MS
    regular = (t0 + np.arange(n) * 1000).tolist()
    walk = np.round(np.clip(50 + np.cumsum(rng.normal(0, 1.5, n)), 0, 100), 2).tolist()
    keep = np.sort(rng.choice(n, int(n * 0.7), replace=False))
    keep = keep[(keep < 200) | (keep >= 500)]  # 30 % missing at random and a 5-minute hole
    cases = {
        "psutil (this host, all catalogue metrics)": per_sample(real),
        "2-decimal random walk, 1 s": per_sample({"a": (regular, walk)}),
        "2-decimal uniform noise 0-100, 1 s": per_sample(
            {"a": (regular, np.round(rng.uniform(0, 100, n), 2).tolist())}
        ),
        "random float64 (no decimals), 1 s": per_sample({"a": (regular, rng.standard_normal(n).tolist())}),
        "irregular times (1 s ± 0-500 ms)": per_sample(
            {"a": ((t0 + np.cumsum(rng.integers(500, 1500, n))).tolist(), walk)}
        ),
        "gaps (30 % missing, a 5 min hole)": per_sample({"a": ([regular[i] for i in keep], [walk[i] for i in keep])}),
        "constant value, 1 s": per_sample({"a": (regular, [42.0] * n)}),
    }
    return cases


def _report(results: list[dict], args: argparse.Namespace) -> None:
    by = {r["dialect"]: r for r in results}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    lines = [
        "| dialect | B/sample (chunks) | B/sample (v1 rows) | ingest µs/sample | history 1 series p50/p99 ms "
        "1h · 24h · 30d | 16 series p50/p99 ms 1h · 24h · 30d |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        h = r["history"]
        one = " · ".join(f"{h[k + '_1']['p50_ms']}/{h[k + '_1']['p99_ms']}" for k in ("1h", "24h", "30d"))
        many = " · ".join(f"{h[k + '_16']['p50_ms']}/{h[k + '_16']['p99_ms']}" for k in ("1h", "24h", "30d"))
        lines.append(
            f"| {r['dialect']} | {r['bytes_per_sample']} | {r['v1_bytes_per_sample']} | "
            f"{r['ingest_us_per_sample']} | {one} | {many} |"
        )
    print("\n".join(lines))
    na = "n/a"
    sqlite, mysql = by.get("sqlite", {}), by.get("mysql", {})
    print(
        "RESULT "
        f"bytes_per_sample_sqlite={sqlite.get('bytes_per_sample', na)} "
        f"bytes_per_sample_mysql={mysql.get('bytes_per_sample', na)} "
        f"ingest_us_per_sample={sqlite.get('ingest_us_per_sample', na)} "
        f"history_30d_p99_ms_sqlite={sqlite['history']['30d_1']['p99_ms'] if sqlite else na} "
        f"history_30d_p99_ms_mysql={mysql['history']['30d_1']['p99_ms'] if mysql else na}",
        flush=True,
    )


def configure(commands: Any) -> None:
    """Add `store` to `dashd bench`'s subcommands."""
    parser = commands.add_parser("store", help="the chunk store on SQLite and MariaDB (docs/storage.md)")
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=120.0, help="simulated ingest span")
    parser.add_argument("--days", type=int, default=30, help="simulated span of the query data")
    parser.add_argument("--query-step", type=int, default=1, help="seconds between query-data samples")
    parser.add_argument("--repeats", type=int, default=50, help="history requests per measurement")
    parser.add_argument("--v1-series", type=int, default=100, help="series written in the v1 layout for comparison")
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("DASHD_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
        help="MariaDB server to measure on ('' to skip)",
    )
    parser.add_argument("--json", default=None, help="also write the measurements to this file")
    parser.add_argument(
        "--psutil-seconds",
        type=float,
        default=150.0,
        help="how long to read this host for the encoding table (quick: 30)",
    )


def main(args: argparse.Namespace) -> int:
    results: list[dict] = []
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    if args.quick:
        args.minutes, args.query_step, args.repeats = min(args.minutes, 20.0), max(args.query_step, 10), 20
    dialects = ["sqlite"] + (["mysql"] if args.mysql_url else [])

    def say(text: str) -> None:
        print(text, flush=True)

    if args.quick:
        args.psutil_seconds = min(args.psutil_seconds, 30.0)
    cases = encoding_cases(args.psutil_seconds)
    say("| data (one 10-minute-class chunk per series) | bytes/sample |\n|---|---|")
    for name, value in cases.items():
        say(f"| {name} | {value} |")

    async def go(_reactor) -> None:
        with tempfile.TemporaryDirectory(prefix="dashd-bench-store-") as work:
            for dialect in dialects:
                results.append(await bench_dialect(dialect, args, work, say))
        _report(results, args)

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(go(reactor)))
    except SystemExit as e:
        return int(e.code or 0)
    return 0
