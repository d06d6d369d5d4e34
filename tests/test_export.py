"""GET /api/export (issue 15 item 5): CSV and JSON of chosen metrics over a
range, over a real socket and a real store; the same buckets and values as
`history` for the same range; authentication by bearer token or session
cookie; a 4xx with a JSON body for each kind of bad input; pages of bounded
size; back-pressure from a slow client pauses the paging."""

from __future__ import annotations

import csv
import io
import os
from urllib.parse import urlencode

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.test.requesthelper import DummyRequest

import dashd.wire.export as export
from conftest import start_daemon
from dashd.store.database import HistorySeries
from dashd.stream.streams import METRICS_UPDATE, StreamMessage
from dashd.wire.export import CSV_HEADER, ExportPlan, ExportResource, PageGate, plan_export
from httpclient import http

HOST = "exporthost"
SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS


def record_samples(daemon, start_ms: int, count: int, step_ms: int = SECOND_MS) -> None:
    """`count` samples of cpu_usage (i * 0.37, so averages are not round)
    and memory_usage (constant with a dip), one every `step_ms`."""
    store = daemon.core.store
    for i in range(count):
        metrics = {"cpu_usage": round(i * 0.37, 2), "memory_usage": 50.0 if i % 97 else 12.5}
        store.record(StreamMessage(10_000_000 + i, METRICS_UPDATE, start_ms + i * step_ms, HOST, metrics))


def export_url(daemon, **params) -> str:
    return daemon.url("/api/export?" + urlencode(params), "http")


def history_url(daemon, **params) -> str:
    return daemon.url("/api/history?" + urlencode(params), "http")


def auth(daemon, role: str = "viewer") -> dict:
    return {"Authorization": f"Bearer {daemon.token(role)}"}


def parse_csv(body: bytes) -> dict[str, list[dict]]:
    """CSV rows back into history's shape: metric -> [{t, avg, min, max, count}]."""
    assert body.startswith(CSV_HEADER)
    series: dict[str, list[dict]] = {}
    for row in csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")):
        assert row["host"] == HOST
        series.setdefault(row["metric"], []).append(
            {
                "t": int(row["timestamp_ms"]),
                "avg": float(row["avg"]),
                "min": float(row["min"]),
                "max": float(row["max"]),
                "count": int(row["count"]),
            }
        )
        assert row["time"].endswith("Z")
    return series


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 5 buckets, so a short test range crosses many pages."""
    monkeypatch.setattr(export, "DEFAULT_PAGE_POINTS", 5)


@pytest_twisted.async_yield_fixture
async def filled(make_settings, small_pages):
    """A daemon whose store holds 40 minutes of 1 s samples for HOST, ending a minute ago."""
    running = await start_daemon(make_settings())
    now_ms = running.core.wall_clock_ms()
    start_ms = (now_ms // MINUTE_MS - 41) * MINUTE_MS + 250  # not aligned to anything
    record_samples(running, start_ms, 40 * 60)
    await running.core.store.flush()
    running.start_ms = start_ms
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_csv_export_of_a_range_matches_history_value_by_value(filled):
    """The same buckets (including a shorter last one) and the same avg/min/
    max/count as `history` for the same range and max_points, over 5-bucket pages."""
    start_s = filled.start_ms / 1000
    params = {
        "metrics": "cpu_usage,memory_usage",
        "host": HOST,
        "from": start_s + 13.3,
        "to": start_s + 40 * 60 - 7.9,
        "max_points": 37,
    }
    history = await http("GET", history_url(filled, **params), headers=auth(filled))
    assert history.status == 200, history.body
    expected = history.json()["series"]
    assert len(expected["cpu_usage"]) == 37  # the range is full: every bucket has samples

    exported = await http("GET", export_url(filled, **params), headers=auth(filled))
    assert exported.status == 200, exported.body
    assert exported.header("Content-Type") == "text/csv; charset=utf-8"
    assert exported.header("Content-Disposition").startswith('attachment; filename="dashd-exporthost-')
    assert parse_csv(exported.body) == expected


@pytest_twisted.ensureDeferred
async def test_any_host_name_gives_an_ascii_file_name(filled):
    """The host goes into the download's file name: letters outside ASCII
    and separators become '_' (a non-ASCII host once failed the header)."""
    response = await http("GET", export_url(filled, metrics="cpu_usage", host='hôst/"x"'), headers=auth(filled))
    assert response.status == 200 and response.body == CSV_HEADER  # no samples for that host
    assert response.header("Content-Disposition").startswith('attachment; filename="dashd-h_st__x_-')


@pytest_twisted.ensureDeferred
async def test_json_export_has_history_shape_and_values(filled):
    start_s = filled.start_ms / 1000
    params = {"metrics": "memory_*", "host": HOST, "from": start_s, "to": start_s + 600, "max_points": 23}
    history = (await http("GET", history_url(filled, **params), headers=auth(filled))).json()
    exported = await http("GET", export_url(filled, format="json", **params), headers=auth(filled))
    assert exported.status == 200 and exported.header("Content-Type") == "application/json"
    body = exported.json()
    assert body["series"] == history["series"] and list(body["series"]) == ["memory_usage"]
    assert (body["host"], body["from"], body["to"], body["bucket_ms"]) == (
        HOST,
        history["from"],
        history["to"],
        history["bucket_ms"],
    )


@pytest_twisted.ensureDeferred
async def test_export_defaults_to_the_finest_buckets_within_max_history_points(filled):
    """Without max_points or resolution: one bucket per sample interval when
    that fits (0.2 s here, so the 1 s samples are one per bucket), and
    `resolution` asks for a bucket width directly."""
    start_s = filled.start_ms / 1000
    rows = await http(
        "GET",
        export_url(filled, metrics="cpu_usage", host=HOST, **{"from": start_s, "to": start_s + 60}),
        headers=auth(filled),
    )
    series = parse_csv(rows.body)["cpu_usage"]
    assert len(series) == 60 and all(p["count"] == 1 for p in series)
    coarse = await http(
        "GET",
        export_url(filled, metrics="cpu_usage", host=HOST, resolution="10s", **{"from": start_s, "to": start_s + 60}),
        headers=auth(filled),
    )
    points = parse_csv(coarse.body)["cpu_usage"]
    assert [p["count"] for p in points] == [10] * 6
    assert [p["t"] for p in points] == [filled.start_ms + k * 10_000 for k in range(6)]


@pytest_twisted.ensureDeferred
async def test_export_beyond_raw_retention_reads_minutes_like_history(make_settings, small_pages):
    """A range older than raw retention comes from the 1-minute rollup: the
    export takes history's bucket (never under a minute) on every page."""
    running = await start_daemon(make_settings(retention_raw="1m"))
    try:
        now_ms = running.core.wall_clock_ms()
        start_ms = (now_ms // MINUTE_MS - 180) * MINUTE_MS
        record_samples(running, start_ms, 90, step_ms=20 * SECOND_MS)  # 30 minutes, 3 a minute
        await running.core.store.flush()
        for max_points in (500, 7):  # a bucket under a minute (raised to one), and over
            params = {
                "metrics": "cpu_usage",
                "host": HOST,
                "from": start_ms / 1000,
                "to": start_ms / 1000 + 1800,
                "max_points": max_points,
            }
            history = (await http("GET", history_url(running, **params), headers=auth(running))).json()
            assert history["tier"] == "1m"
            exported = await http("GET", export_url(running, format="json", **params), headers=auth(running))
            body = exported.json()
            assert body["bucket_ms"] == history["bucket_ms"] and body["series"] == history["series"]
            assert len(body["series"]["cpu_usage"]) in (30, 7)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_large_export_is_fetched_in_bounded_pages(make_settings, monkeypatch):
    """A 2-day export at full resolution (172,800 buckets per metric) is asked
    of the store in pages of at most DEFAULT_PAGE_POINTS buckets, one metric
    at a time: no query returns more, and every bucket is written."""
    monkeypatch.setattr(export, "DEFAULT_PAGE_POINTS", 2_000)
    running = await start_daemon(
        make_settings(max_history_points="200000", max_history_span="3d", retention_raw="3d", interval="1")
    )
    try:
        now_ms = running.core.wall_clock_ms()
        start_ms = (now_ms // SECOND_MS) * SECOND_MS - 2 * 86_400_000
        filled_buckets = 20_000
        record_samples(running, start_ms, filled_buckets)  # the first 20,000 seconds hold samples
        await running.core.store.flush()
        store = running.core.store
        returned = []
        real_history = store.history

        async def counting_history(host, metrics, from_ms, to_ms, max_points, raw_resolution_ms):
            result = await real_history(host, metrics, from_ms, to_ms, max_points, raw_resolution_ms)
            returned.append((len(metrics), max_points, sum(len(s) for s in result.series.values())))
            return result

        monkeypatch.setattr(store, "history", counting_history)
        exported = await http(
            "GET",
            export_url(
                running,
                metrics="cpu_usage,memory_usage",
                host=HOST,
                **{"from": start_ms / 1000, "to": start_ms / 1000 + 2 * 86_400},
            ),
            headers=auth(running),
        )
        assert exported.status == 200, exported.body[:300]
        assert exported.body.count(b"\r\n") == 1 + 2 * filled_buckets
        assert all(metrics == 1 and points <= 2_000 and rows <= 2_000 for metrics, points, rows in returned)
        assert len(returned) == 2 * (2 * 86_400 // 2_000 + 1)  # 87 pages per metric (86 whole, one shorter)
    finally:
        await running.stop()


# ----- authentication


@pytest_twisted.ensureDeferred
async def test_export_accepts_the_session_cookie_until_logout(filled):
    """A download link carries no Authorization header: the dashboard's
    session cookie is enough, and no longer once the session is logged out."""
    password = open(os.path.join(filled.settings.state_dir, "initial-admin-password")).read().strip()
    login = await http("POST", filled.url("/api/login", "http"), json_body={"username": "admin", "password": password})
    cookie = login.header("Set-Cookie").split(";")[0]
    start_s = filled.start_ms / 1000
    url = export_url(filled, metrics="cpu_usage", host=HOST, max_points=10, **{"from": start_s, "to": start_s + 100})
    ok = await http("GET", url, headers={"Cookie": cookie})
    assert ok.status == 200 and len(parse_csv(ok.body)["cpu_usage"]) == 10
    # A refresh rotates the cookie: the replaced one no longer exports.
    refreshed = await http("POST", filled.url("/api/refresh", "http"), headers={"Cookie": cookie})
    rotated = refreshed.header("Set-Cookie").split(";")[0]
    stale = await http("GET", url, headers={"Cookie": cookie})
    assert stale.status == 401 and "replaced by a newer one" in stale.json()["error"]["message"]
    cookie = rotated
    assert (await http("GET", url, headers={"Cookie": cookie})).status == 200
    assert (await http("POST", filled.url("/api/logout", "http"), headers={"Cookie": cookie})).status == 204
    refused = await http("GET", url, headers={"Cookie": cookie})
    assert refused.status == 401 and refused.json()["error"]["code"] == "unauthorized"
    forged = await http("GET", url, headers={"Cookie": "dashd_refresh=not-a-token"})
    assert forged.status == 401 and forged.json()["error"]["code"] == "unauthorized"


@pytest_twisted.ensureDeferred
async def test_export_refuses_missing_bad_and_agent_credentials(filled):
    url = export_url(filled, metrics="cpu_usage", host=HOST)
    cases = [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer nonsense"}, 401, "unauthorized"),
        ({"Authorization": "Basic YTpi"}, 401, "unauthorized"),
        (auth(filled, "agent"), 403, "forbidden"),
    ]
    for headers, status, code in cases:
        response = await http("GET", url, headers=headers)
        assert (response.status, response.json()["error"]["code"]) == (status, code), headers
        assert response.header("Content-Type") == "application/json"


# ----- bad input: each kind is a 4xx with a JSON body naming the problem

BAD_INPUT = [
    ({}, 400, "bad_message", "'metrics' is required"),
    ({"metrics": "no_such_metric"}, 400, "bad_message", "unknown metric"),
    ({"metrics": "cpu_usage", "from": "yesterday-ish"}, 400, "bad_message", "ISO-8601"),
    ({"metrics": "cpu_usage", "from": "-1m", "to": "-2m"}, 400, "bad_message", "'from' must be before 'to'"),
    ({"metrics": "cpu_usage", "from": "-800d"}, 413, "too_large", "may span at most"),
    ({"metrics": "cpu_usage", "max_points": "999999"}, 413, "too_large", "at most 5000 points"),
    ({"metrics": "cpu_usage", "max_points": "ten"}, 400, "bad_message", "'max_points' must be an integer"),
    ({"metrics": "cpu_usage", "max_points": "0"}, 400, "bad_message", "max_points"),
    ({"metrics": "cpu_usage", "max_points": "10", "resolution": "1m"}, 400, "bad_message", "not both"),
    ({"metrics": "cpu_usage", "resolution": "soon"}, 400, "bad_message", "'resolution' must be a duration"),
    ({"metrics": "cpu_usage", "resolution": "-5s"}, 400, "bad_message", "'resolution' must be a duration"),
    ({"metrics": "cpu_usage", "from": "-30d", "resolution": "1s"}, 413, "too_large", "coarser 'resolution'"),
    ({"metrics": "cpu_usage", "format": "xlsx"}, 400, "bad_message", "'csv' or 'json'"),
    ({"metrics": "cpu_usage", "colour": "blue"}, 400, "bad_message", "unknown parameter 'colour'"),
    ({"metrics": "cpu_usage", "host": "h" * 200}, 400, "bad_message", "host"),
]


@pytest_twisted.ensureDeferred
async def test_each_kind_of_bad_input_is_a_4xx_with_a_json_error(daemon):
    for params, status, code, fragment in BAD_INPUT:
        response = await http("GET", export_url(daemon, **params), headers=auth(daemon))
        assert response.status == status, (params, response.body)
        assert response.header("Content-Type") == "application/json"
        error = response.json()["error"]
        assert error["code"] == code and fragment in error["message"], (params, error)
        assert "history" not in error["message"]  # the message names the request the user sent


# ----- back-pressure, with an in-memory request


class PagedStore:
    """A store whose history answers one point per bucket; counts the queries."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []

    async def history(self, host, metrics, from_ms, to_ms, max_points, raw_resolution_ms):
        self.calls.append((from_ms, to_ms, max_points))
        bucket = max(raw_resolution_ms, -(-(to_ms - from_ms) // max_points))
        points = [{"t": from_ms + k * bucket, "avg": 1.5, "min": 1, "max": 2, "count": 3} for k in range(max_points)]
        return HistorySeries("raw", bucket, {name: points for name in metrics})


class FakeSettings:
    max_history_points = 5_000
    max_history_span = 86_400.0
    trusted_proxies = ()


class FakeTokens:
    def verify(self, token, endpoint=""):
        from dashd.auth.tokens import Principal

        return Principal("tester", "viewer", 1_800_000_100.0)


def fake_history():
    """HistoryQueries over PagedStore: only what ExportResource and plan_export read."""
    from dashd.clients.history import HistoryQueries
    from dashd.clients.seams import FixedSampling, MetricCatalogue

    catalogue = MetricCatalogue((), HOST, lambda: ("cpu_usage", "memory_usage"))
    return HistoryQueries(FakeSettings(), catalogue, FixedSampling(1.0), PagedStore(), lambda: 1_800_000_000_000)


def test_a_paused_transport_stops_the_paging_until_it_resumes():
    """While the request's producer is paused (the socket's buffer is full)
    no further page is fetched; resuming fetches the next; stopping (the
    client went away) ends the export without finishing the response."""
    history = fake_history()
    resource = ExportResource(FakeTokens(), history, None, page_points=10)
    request = DummyRequest([b""])
    request.requestHeaders.setRawHeaders(b"authorization", [b"Bearer x"])
    for key, value in {"metrics": "cpu_usage", "from": "1799999900", "to": "1800000000", "resolution": "1s"}.items():
        request.addArg(key.encode(), value.encode())
    request.getCookie = lambda name: None
    request.producer = None
    request.registerProducer = lambda producer, streaming: setattr(request, "producer", producer)
    request.unregisterProducer = lambda: setattr(request, "producer", None)
    write = request.write

    def write_then_fill(data: bytes) -> None:
        write(data)
        if request.producer is not None:
            request.producer.pauseProducing()  # as a transport whose buffer is full would

    request.write = write_then_fill

    def rows() -> int:
        return b"".join(request.written).count(b"\r\n")

    resource.render_GET(request)
    gate = request.producer
    assert isinstance(gate, PageGate) and gate.paused
    assert (
        request.responseCode == 200 and len(history.stored.calls) == 1 and rows() == 1
    )  # first page fetched, header out
    gate.resumeProducing()
    assert (len(history.stored.calls), rows()) == (1, 11)  # the first page written, then paused again
    gate.resumeProducing()
    assert (len(history.stored.calls), rows()) == (2, 21)  # exactly one more page per resume
    gate.stopProducing()
    assert len(history.stored.calls) == 2 and request.finished == 0


def test_pages_are_whole_buckets_then_the_short_last_one():
    """Every page but a short last bucket is a whole number of buckets, so
    each query's bucket equals the export's and starts where history's does."""
    plan = plan_export(
        fake_history(), {"metrics": "cpu_usage", "from": "1799999000", "to": "1800000000", "max_points": "7"}
    )
    assert plan.bucket_ms == 142_858
    pages = plan.pages(3)
    assert pages == [
        (1_799_999_000_000, 1_799_999_428_574, 3),
        (1_799_999_428_574, 1_799_999_857_148, 3),
        (1_799_999_857_148, 1_800_000_000_000, 1),
    ]
    assert isinstance(plan, ExportPlan) and plan.format == "csv"


@pytest_twisted.ensureDeferred
async def test_a_client_that_hangs_up_mid_export_stops_the_paging_quietly(filled, logged_failures):
    """Closing the connection part-way through a long export stops the
    paging (no further history queries once it has noticed) and logs no
    failure (twisted.web has dropped the request's channel by then)."""
    from twisted.internet.protocol import ClientCreator, Protocol
    from twisted.internet.task import deferLater

    store = filled.core.store
    calls = []
    real_history = store.history

    async def counting_history(*args, **kwargs):
        calls.append(args[2])
        return await real_history(*args, **kwargs)

    store.history = counting_history
    export_resource = filled.service.listeners[0].factory.resource.children[b"api"].children[b"export"]
    start_s = filled.start_ms / 1000
    path = "/api/export?" + urlencode(
        {"metrics": "cpu_usage,memory_usage", "host": HOST, "resolution": "1s", "from": start_s, "to": start_s + 2400}
    )
    received = Deferred()

    class HangUpAfterFirstBytes(Protocol):
        def dataReceived(self, data: bytes) -> None:
            if not received.called:
                received.callback(data)
                self.transport.abortConnection()

    client = await ClientCreator(reactor, HangUpAfterFirstBytes).connectTCP("127.0.0.1", filled.port)
    client.transport.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {filled.token()}\r\n\r\n".encode()
    )
    assert (await received).startswith(b"HTTP/1.1 200")
    for _ in range(200):  # until the export notices; it checks between pages
        if export_resource.running == 0:
            break
        await deferLater(reactor, 0.05, lambda: None)
    assert export_resource.running == 0
    pages_per_metric = 2400 // 5 + 1
    assert len(calls) < 2 * pages_per_metric  # it stopped early
    settled = len(calls)
    await deferLater(reactor, 0.3, lambda: None)
    assert len(calls) == settled and logged_failures == []


@pytest_twisted.ensureDeferred
async def test_export_matches_history_on_each_database(db_url, make_settings, small_pages):
    """The same check on SQLite and MariaDB/MySQL (their bucket arithmetic
    is written per dialect), JSON this time, with a shorter last bucket."""
    running = await start_daemon(make_settings(db=db_url))
    try:
        now_ms = running.core.wall_clock_ms()
        start_ms = (now_ms // MINUTE_MS - 20) * MINUTE_MS + 730
        record_samples(running, start_ms, 15 * 60)
        await running.core.store.flush()
        params = {
            "metrics": "cpu_usage,memory_usage",
            "host": HOST,
            "from": start_ms / 1000 + 3.1,
            "to": start_ms / 1000 + 900 - 2.2,
            "max_points": 41,
        }
        history = (await http("GET", history_url(running, **params), headers=auth(running))).json()
        exported = (await http("GET", export_url(running, format="json", **params), headers=auth(running))).json()
        assert len(history["series"]["cpu_usage"]) == 41
        assert exported["series"] == history["series"] and exported["bucket_ms"] == history["bucket_ms"]
    finally:
        await running.stop()
