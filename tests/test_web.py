"""The HTTP side: health and readiness, the catalogue, history over HTTP,
the SPA with its cache headers and fallback, JSON errors, Prometheus."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from conftest import start_daemon
from httpclient import http
from wsclient import connect


@pytest_twisted.ensureDeferred
async def test_health_and_ready_answer_json(daemon):
    health = await http("GET", daemon.url("/api/health", "http"))
    assert health.status == 200 and health.json()["status"] == "ok"
    assert health.header("Content-Type") == "application/json"
    ready = await http("GET", daemon.url("/api/ready", "http"))
    body = ready.json()
    assert ready.status == 200 and body["status"] == "ready"
    assert body["checks"]["store"]["ok"] and body["checks"]["collector"]["ok"]


@pytest_twisted.ensureDeferred
async def test_ready_is_503_when_the_collector_stops_ticking(daemon):
    collector = daemon.service.collector
    while collector.last_tick is None:
        await deferLater(reactor, 0.05, lambda: None)
    collector.stopService()
    collector.last_tick -= 10
    ready = await http("GET", daemon.url("/api/ready", "http"))
    assert ready.status == 503 and ready.json()["checks"]["collector"]["ok"] is False


@pytest_twisted.ensureDeferred
async def test_catalogue_lists_units(daemon):
    body = (await http("GET", daemon.url("/api/catalogue", "http"))).json()
    units = {m["name"]: m["unit"] for m in body["metrics"]}
    assert units["cpu_usage"] == "%" and units["network_traffic"] == "B/s" and units["active_connections"] == "count"


@pytest_twisted.ensureDeferred
async def test_http_history_needs_a_bearer_token(daemon):
    url = daemon.url("/api/history?metrics=cpu_usage&from=-1m&max_points=10", "http")
    refused = await http("GET", url)
    assert refused.status == 401 and refused.json()["error"]["code"] == "unauthorized"
    client = await connect(daemon.url(), token=daemon.token())
    for _ in range(4):
        await client.recv()
    answered = await http("GET", url, headers={"Authorization": f"Bearer {daemon.token()}"})
    assert answered.status == 200
    assert answered.json()["series"]["cpu_usage"]
    bad = await http(
        "GET", daemon.url("/api/history?metrics=bogus", "http"), headers={"Authorization": f"Bearer {daemon.token()}"}
    )
    assert bad.status == 400 and bad.json()["error"]["code"] == "bad_message"


@pytest_twisted.ensureDeferred
async def test_unknown_api_path_is_a_json_404(daemon):
    response = await http("GET", daemon.url("/api/nope", "http"))
    assert response.status == 404 and response.json()["error"]["code"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_spa_cache_headers_and_fallback(make_settings, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>dash</title>")
    (dist / "assets" / "app-3f2a1b.js").write_text("console.log(1)")
    daemon = await start_daemon(make_settings(static=str(dist)))
    try:
        index = await http("GET", daemon.url("/", "http"))
        assert index.status == 200 and b"<title>dash</title>" in index.body
        assert index.header("Cache-Control") == "no-cache"
        asset = await http("GET", daemon.url("/assets/app-3f2a1b.js", "http"))
        assert asset.status == 200 and "immutable" in asset.header("Cache-Control")
        assert "max-age=31536000" in asset.header("Cache-Control")
        route = await http("GET", daemon.url("/settings/alerts", "http"))
        assert route.status == 200 and b"<title>dash</title>" in route.body
        page = await http("GET", daemon.url("/dashboard", "http"))  # plain GET on a WebSocket path
        assert page.status == 200 and b"<title>dash</title>" in page.body
        missing = await http("GET", daemon.url("/assets/missing.js", "http"))
        assert missing.status == 404
        escape = await http("GET", daemon.url("/..%2f..%2fetc%2fpasswd", "http"))
        assert b"root:" not in escape.body
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_without_a_frontend_build_a_helpful_page_is_served(daemon):
    page = await http("GET", daemon.url("/", "http"))
    assert page.status == 200 and b"make run" in page.body


@pytest_twisted.ensureDeferred
async def test_prometheus_exposition_on_plain_get_of_metrics(daemon):
    client = await connect(daemon.url("/metrics"), token=daemon.token())
    await client.recv()
    response = await http("GET", daemon.url("/metrics", "http"))
    text = response.body.decode()
    assert response.status == 200 and response.header("Content-Type").startswith("text/plain")
    assert 'dashd_connections{endpoint="metrics",role="viewer"} 1.0' in text
    assert "dashd_collection_duration_seconds_bucket" in text and "dashd_stream_seq" in text


@pytest_twisted.ensureDeferred
async def test_prometheus_token_when_configured(make_settings):
    daemon = await start_daemon(make_settings(metrics_token="s3cret"))
    try:
        assert (await http("GET", daemon.url("/metrics", "http"))).status == 401
        ok = await http("GET", daemon.url("/metrics", "http"), headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200
    finally:
        await daemon.stop()
