"""The WebSocket protocol over real loopback connections against the real
service tree (in-process): authentication, the three endpoints, the store's
answers, shutdown. Bad input, error frames, close codes and timers are
tested over memory transports (test_protocol_memory.py)."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from conftest import start_daemon
from fakes import authed, sleep
from wsclient import connect

SEED = ("cpu_usage", "memory_usage", "network_traffic", "active_connections")


@pytest_twisted.ensureDeferred
async def test_bearer_client_gets_ack_then_latest_sample_then_updates(daemon):
    client = await connect(daemon.url("/dashboard"), token=daemon.token("viewer"))
    ack = await client.recv()
    assert ack["type"] == "connection_ack"
    data = ack["data"]
    assert data["role"] == "viewer" and data["protocol_version"] == 1 and data["endpoint"] == "dashboard"
    assert set(SEED) <= {m["name"] for m in data["metrics"]}
    assert data["interval"] == 0.2 and isinstance(data["seq"], int) and data["session_id"]
    assert {"max_message_bytes", "max_rate_hz", "max_subscriptions"} <= set(data["limits"])
    updates = [await client.recv_type("metrics_update") for _ in range(3)]
    seqs = [u["seq"] for u in updates]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for update in updates:
        assert set(SEED) <= set(update["data"]["metrics"])
        assert update["data"]["host"] == "testhost"
        assert update["data"]["timestamp"].endswith("Z")
    assert updates[-1]["data"]["metrics"]["active_connections"] >= 1
    client.close()
    assert (await client.closed())[0] == 1000


@pytest_twisted.ensureDeferred
async def test_latest_sample_arrives_right_after_ack(make_settings):
    daemon = await start_daemon(make_settings(interval="30"))
    try:
        # With a 30 s interval the only sample a new client can get quickly is
        # the one sent right after connection_ack. Publish one by hand.
        # The psutil read runs in a thread: wait for its publish.
        await defer.maybeDeferred(daemon.service.collector.tick)
        client = await authed(daemon)
        first = await client.recv(timeout=2)
        assert first["type"] == "metrics_update"
        assert set(SEED) <= set(first["data"]["metrics"])
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_auth_message_authenticates_and_replies_with_its_correlation_id(daemon):
    client = await connect(daemon.url("/metrics"))
    client.send({"type": "auth", "data": {"token": daemon.token("operator")}, "correlation_id": "a1"})
    ack = await client.recv()
    assert ack["type"] == "connection_ack" and ack["correlation_id"] == "a1" and ack["data"]["role"] == "operator"
    assert (await client.recv_type("metrics_update"))["seq"] > 0
    client.close()


@pytest_twisted.ensureDeferred
async def test_endpoints_carry_only_their_streams(daemon):
    metrics = await authed(daemon, "/metrics")
    notes = await authed(daemon, "/notifications")
    dash = await authed(daemon, "/dashboard")
    admin = await authed(daemon, "/dashboard", role="admin")
    reply = await admin.request("broadcast", {"level": "warning", "title": "maintenance", "message": "at noon"})
    note_id = reply["data"]["id"]
    got = await notes.recv_type("notification")
    assert got["data"]["id"] == note_id and got["data"]["level"] == "warning" and got["seq"] > 0
    assert got["data"]["source"] == "admin:test-admin"
    assert (await dash.recv_type("notification"))["data"]["id"] == note_id
    await metrics.recv_type("metrics_update")
    await sleep(0.5)
    assert not any(m["type"] == "notification" for m in metrics.received)
    assert not any(m["type"] == "metrics_update" for m in notes.received)
    error = await notes.request("subscribe", {"metrics": ["cpu_usage"]})
    assert error["data"]["code"] == "bad_message"


@pytest_twisted.ensureDeferred
async def test_history_over_the_websocket_returns_downsampled_series(daemon):
    client = await authed(daemon)
    for _ in range(6):
        await client.recv_type("metrics_update")
    reply = await client.request("history", {"metrics": ["cpu_usage", "memory_*"], "from": "-1m", "max_points": 3})
    data = reply["data"]
    assert reply["type"] == "history" and data["tier"] == "raw"
    assert set(data["series"]) == {"cpu_usage", "memory_usage"}
    points = data["series"]["memory_usage"]
    assert 1 <= len(points) <= 3
    assert sum(p["count"] for p in points) >= 5
    assert all(p["min"] <= p["avg"] <= p["max"] for p in points)


@pytest_twisted.ensureDeferred
async def test_stats_gives_avg_min_max_p95(daemon):
    client = await authed(daemon)
    for _ in range(5):
        await client.recv_type("metrics_update")
    reply = await client.request("stats", {"metrics": ["memory_usage"], "window": "1m"})
    summary = reply["data"]["metrics"]["memory_usage"]
    assert summary["count"] >= 4
    assert summary["min"] <= summary["avg"] <= summary["max"] and summary["min"] <= summary["p95"] <= summary["max"]


@pytest_twisted.ensureDeferred
async def test_operator_acknowledges_for_everyone(daemon):
    admin = await authed(daemon, role="admin")
    operator = await authed(daemon, role="operator")
    viewer = await authed(daemon, "/notifications")
    note = await admin.request("broadcast", {"level": "critical", "title": "disk", "message": "full"})
    note_id = note["data"]["id"]
    await operator.recv_type("notification")
    ack = await operator.request("ack", {"notification_id": note_id})
    assert ack["type"] == "ack" and ack["data"]["acknowledged_by"] == "test-operator"
    seen = await viewer.recv_type("notification_ack")
    assert seen["data"]["id"] == note_id and seen["data"]["acknowledged_by"] == "test-operator"
    listed = await viewer.request("notifications", {"limit": 5})
    assert listed["data"]["notifications"][0]["acknowledged_by"] == "test-operator"
    missing = await operator.request("ack", {"notification_id": "n-nope"})
    assert missing["data"]["code"] == "not_found"


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_clients_with_1001_and_flushes_samples(make_settings):
    daemon = await start_daemon(make_settings(batch_interval="30"))
    client = await authed(daemon)
    for _ in range(3):
        last = await client.recv_type("metrics_update")
    store = daemon.service.store
    assert store.pending_rows > 0  # nothing written yet: batch_interval is 30 s
    await daemon.stop()
    assert (await client.closed())[0] == 1001
    # Reopen the database: every sample the client saw is stored.
    from dashd.store.database import Store

    reopened = Store(daemon.settings.db_url, reactor)
    reopened.pool = reopened.dialect.connection_pool()
    reopened.pool.start()
    try:
        stored = await reopened.read_stream(1, last["seq"])
        assert len([m for m in stored if m.type == "metrics_update"]) >= 3
    finally:
        reopened.pool.close()


@pytest_twisted.ensureDeferred
async def test_notifications_in_a_time_range_for_the_chart_markers(daemon):
    """`notifications {from, to}` lists only what was stamped in the range
    (the dashboard's markers for a past view); bad bounds are bad_message."""
    admin = await authed(daemon, role="admin")
    note = await admin.request("broadcast", {"level": "warning", "title": "spike", "message": "look"})
    note_id = note["data"]["id"]
    around = await admin.request("notifications", {"from": "-5m", "to": "now", "limit": 500})
    assert note_id in [n["id"] for n in around["data"]["notifications"]]
    earlier = await admin.request("notifications", {"from": "-3h", "to": "-2h"})
    assert note_id not in [n["id"] for n in earlier["data"]["notifications"]]
    open_ended = await admin.request("notifications", {"from": "-5m"})
    assert note_id in [n["id"] for n in open_ended["data"]["notifications"]]
    for bad_span in ({"from": "yesterday"}, {"from": "-1m", "to": "-2m"}, {"to": True}):
        reply = await admin.request("notifications", bad_span)
        assert reply["type"] == "error" and reply["data"]["code"] == "bad_message", bad_span
