"""Long ranges (issue 13): with the default `max_history_span` (the hourly
tier's 730 days) a year of history, stats and export is accepted through the
real daemon on both dialects and answered from the 1-hour tier, and the
query budget prices tier reads by the tier's resolution."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest_twisted

from conftest import start_daemon
from dashd.clients.queries import history_cost, stats_cost
from dashd.stream.streams import METRICS_UPDATE, StreamMessage
from httpclient import http
from wsclient import connect

HOST = "rangehost"
SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
YEAR_MS = 365 * DAY_MS


# ----- pricing (no I/O)


def test_a_year_of_history_is_priced_by_the_hourly_tier():
    """A year at 500 points reads about 8,760 hourly buckets per series, not
    525,600 minutes: 16 series stay far under the default budget (2,000,000)."""
    year = history_cost(16, YEAR_MS, 500, MINUTE_MS)
    assert year.rows == 16 * 8760 and year.total < 200_000
    month = history_cost(1, 30 * DAY_MS, 500, MINUTE_MS)
    assert month.rows == 30 * 24  # 86-minute buckets: the 1-hour tier
    day = history_cost(1, DAY_MS, 500, SECOND_MS)
    assert day.rows == 24 * 60  # 173-second buckets: the 1-minute tier
    assert history_cost(1, HOUR_MS, 500, SECOND_MS).rows == 3600  # 7-second buckets: raw samples


def test_a_year_of_stats_is_priced_raw_then_minutes_then_hours():
    cost = stats_cost(1, YEAR_MS, SECOND_MS, raw_ms=7 * DAY_MS, rollup_ms=90 * DAY_MS)
    assert cost.rows == 7 * 86_400 + 83 * 24 * 60 + 275 * 24
    assert cost.total < 2_000_000
    assert stats_cost(1, 5 * MINUTE_MS, SECOND_MS, raw_ms=7 * DAY_MS, rollup_ms=90 * DAY_MS).rows == 300


# ----- through the daemon


def _record_old_samples(daemon, now_ms: int) -> int:
    """Ten minutes of cpu_usage 200 days ago (only the 1-hour tier keeps
    that) and ten minutes an hour ago; returns the first sample's time."""
    store = daemon.core.store
    seq = 20_000_000
    first = (now_ms - 200 * DAY_MS) // HOUR_MS * HOUR_MS
    for start, value in ((first, 10.0), (now_ms - HOUR_MS, 30.0)):
        for i in range(60):
            seq += 1
            store.record(StreamMessage(seq, METRICS_UPDATE, start + i * 10 * SECOND_MS, HOST, {"cpu_usage": value}))
    return first


@pytest_twisted.ensureDeferred
async def test_a_year_of_history_stats_and_export_is_served_from_the_hourly_tier(db_url, make_settings):
    # At one sample a second a year of stats costs 7 days of raw rows plus
    # the buckets: about 730,000 of the 2,000,000 budget per metric.
    running = await start_daemon(make_settings(db=db_url, interval="1"))
    try:
        now_ms = running.core.wall_clock_ms()
        first = _record_old_samples(running, now_ms)
        await running.core.store.flush()
        await running.core.store.rollup()
        headers = {"Authorization": f"Bearer {running.token('viewer')}"}
        params = {"metrics": "cpu_usage", "host": HOST, "from": "-365d", "max_points": 500}
        history = await http("GET", running.url("/api/history?" + urlencode(params), "http"), headers=headers)
        assert history.status == 200, history.body
        body = history.json()
        assert body["tier"] == "1h"
        points = body["series"]["cpu_usage"]
        assert sum(p["count"] for p in points) == 120
        assert points[0]["t"] <= first and (points[0]["min"], points[0]["max"]) == (10.0, 10.0)

        exported = await http(
            "GET", running.url("/api/export?" + urlencode(dict(params, format="json")), "http"), headers=headers
        )
        assert exported.status == 200, exported.body
        assert sum(p["count"] for p in exported.json()["series"]["cpu_usage"]) == 120

        client = await connect(running.url("/dashboard"), token=running.token("viewer"))
        assert (await client.recv())["type"] == "connection_ack"
        reply = await client.request("stats", {"metrics": ["cpu_usage"], "host": HOST, "window": "365d"})
        assert reply["type"] == "stats", reply
        summary = reply["data"]["metrics"]["cpu_usage"]
        assert (summary["count"], summary["avg"], summary["min"], summary["max"]) == (120, 20.0, 10.0, 30.0)
        assert summary["approximate"] is True
        too_long = await client.request("stats", {"metrics": ["cpu_usage"], "host": HOST, "window": "800d"})
        assert too_long["type"] == "error" and too_long["data"]["code"] == "too_large"
        client.close()
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_an_export_past_the_minute_retention_takes_the_hourly_bucket(make_settings):
    """Ten days 200 days ago at 5,000 points would be 173-second buckets; only
    hours are kept that far back, so the export, like history, uses hours."""
    running = await start_daemon(make_settings(interval="1"))
    try:
        now_ms = running.core.wall_clock_ms()
        first = _record_old_samples(running, now_ms)
        await running.core.store.flush()
        await running.core.store.rollup()
        headers = {"Authorization": f"Bearer {running.token('viewer')}"}
        params = {
            "metrics": "cpu_usage",
            "host": HOST,
            "from": (first - 5 * DAY_MS) / 1000,
            "to": (first + 5 * DAY_MS) / 1000,
            "max_points": 5000,
            "format": "json",
        }
        history = (await http("GET", running.url("/api/history?" + urlencode(params), "http"), headers=headers)).json()
        exported = await http("GET", running.url("/api/export?" + urlencode(params), "http"), headers=headers)
        assert exported.status == 200, exported.body
        body = exported.json()
        assert history["tier"] == "1h" and body["bucket_ms"] == history["bucket_ms"] == HOUR_MS
        assert body["series"] == history["series"] and sum(p["count"] for p in body["series"]["cpu_usage"]) == 60
    finally:
        await running.stop()
