"""The WebSocket protocol over real loopback connections against the real
service tree (in-process): authentication, every kind of bad input, the
three endpoints, requests and replies, resume, shutdown."""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from conftest import start_daemon
from wsclient import connect

SEED = ("cpu_usage", "memory_usage", "network_traffic", "active_connections")


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


async def authed(daemon, path="/dashboard", role="viewer", **kwargs):
    client = await connect(daemon.url(path), token=daemon.token(role), **kwargs)
    ack = await client.recv()
    assert ack["type"] == "connection_ack", ack
    return client


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
async def test_no_token_gets_unauthorized_and_4001_and_no_metrics(make_settings):
    daemon = await start_daemon(make_settings(auth_timeout="1"))
    try:
        client = await connect(daemon.url("/dashboard"))
        code, _ = await client.closed(timeout=5)
        assert code == 4001
        assert [m["type"] for m in client.received] == ["error"]
        assert client.received[0]["data"]["code"] == "unauthorized"
    finally:
        await daemon.stop()


@pytest.mark.parametrize("first_message", [
    {"type": "ping"},
    {"type": "subscribe", "data": {"metrics": ["*"]}},
    {"type": "auth", "data": {"token": "not-a-jwt"}},
    {"type": "auth", "data": {}},
    {"type": "auth", "data": {"token": 12}},
], ids=["ping-first", "subscribe-first", "garbage-token", "missing-token", "number-token"])
@pytest_twisted.ensureDeferred
async def test_anything_but_a_valid_auth_first_is_refused_with_4001(daemon, first_message, logged_failures):
    client = await connect(daemon.url("/dashboard"))
    client.send({**first_message, "correlation_id": "x"})
    code, _ = await client.closed()
    assert code == 4001
    assert [m["type"] for m in client.received] == ["error"]
    assert client.received[0]["data"]["code"] == "unauthorized"
    assert client.received[0]["correlation_id"] == "x"
    assert logged_failures == []


@pytest.mark.parametrize("payload", [b"{nope", b"[1]"])
@pytest_twisted.ensureDeferred
async def test_garbage_before_auth_gets_bad_json_and_4001(daemon, payload):
    client = await connect(daemon.url("/dashboard"))
    client.send_raw(payload)
    assert (await client.closed())[0] == 4001
    assert [m["data"]["code"] for m in client.received] == ["bad_json"]


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "])
@pytest_twisted.ensureDeferred
async def test_bad_authorization_header_gets_unauthorized_and_4001(daemon, header):
    client = await connect(daemon.url("/dashboard"), headers={"Authorization": header})
    code, _ = await client.closed()
    assert code == 4001
    assert [m["data"]["code"] for m in client.received] == ["unauthorized"]


@pytest_twisted.ensureDeferred
async def test_expired_token_is_refused(daemon):
    token, _ = daemon.issuer.mint("old", "viewer", -10)
    client = await connect(daemon.url("/dashboard"), token=token)
    assert (await client.closed())[0] == 4001
    assert "expired" in client.received[0]["data"]["message"]


@pytest_twisted.ensureDeferred
async def test_token_signed_with_another_key_is_refused(daemon):
    from dashd.auth.tokens import TokenIssuer

    forged, _ = TokenIssuer(b"x" * 64).mint("mallory", "admin", 3600)
    client = await connect(daemon.url("/dashboard"), token=forged)
    assert (await client.closed())[0] == 4001


BAD_INPUTS = [
    (b"{not json", "bad_json", None),
    (b"[1, 2, 3]", "bad_json", None),
    (b'"just a string"', "bad_json", None),
    (json.dumps({"data": {}}).encode(), "bad_message", None),
    (json.dumps({"type": 5, "correlation_id": "t"}).encode(), "bad_message", "t"),
    (json.dumps({"type": "history", "data": [], "correlation_id": "d"}).encode(), "bad_message", "d"),
    (json.dumps({"type": "history", "data": {}, "correlation_id": "h"}).encode(), "bad_message", "h"),
    (json.dumps({"type": "history", "data": {"metrics": ["nope"]}, "correlation_id": "u"}).encode(), "bad_message", "u"),
    (json.dumps({"type": "history", "data": {"metrics": ["cpu_usage"], "from": "yesterday-ish"},
                 "correlation_id": "f"}).encode(), "bad_message", "f"),
    (json.dumps({"type": "history", "data": {"metrics": ["cpu_usage"], "max_points": 10**9},
                 "correlation_id": "big"}).encode(), "too_large", "big"),
    (json.dumps({"type": "history", "data": {"metrics": ["cpu_usage"], "from": 0},
                 "correlation_id": "span"}).encode(), "too_large", "span"),
    (json.dumps({"type": "set_rate", "data": {"max_hz": -1}, "correlation_id": "r"}).encode(), "bad_message", "r"),
    (json.dumps({"type": "set_rate", "data": {"max_hz": "fast"}, "correlation_id": "r2"}).encode(), "bad_message", "r2"),
    (json.dumps({"type": "stats", "data": {"metrics": ["cpu_usage"], "window": "forever"},
                 "correlation_id": "w"}).encode(), "bad_message", "w"),
    (json.dumps({"type": "resume", "data": {"after_seq": "x"}, "correlation_id": "rs"}).encode(), "bad_message", "rs"),
    (json.dumps({"type": "launch_missiles", "correlation_id": "m"}).encode(), "unknown_type", "m"),
    (json.dumps({"type": "broadcast", "data": {"title": "hi"}, "correlation_id": "b"}).encode(), "forbidden", "b"),
    (json.dumps({"type": "ack", "data": {"notification_id": "n-x"}, "correlation_id": "k"}).encode(), "forbidden", "k"),
    (json.dumps({"type": "ping", "correlation_id": {"nested": True}}).encode(), "bad_message", None),
    (json.dumps({"type": "subscribe", "data": {"metrics": ["cpu_usage"] * 100}, "correlation_id": "s"}).encode(),
     "too_large", "s"),
]


@pytest_twisted.ensureDeferred
async def test_each_bad_input_gets_a_typed_error_and_the_connection_stays_open(daemon, logged_failures):
    client = await authed(daemon)
    for payload, code, correlation_id in BAD_INPUTS:
        client.send_raw(payload)
        error = await client.recv_type("error")
        assert (error["data"]["code"], error["correlation_id"]) == (code, correlation_id), payload
        assert error["data"]["message"]
    pong = await client.request("ping", {"client_time": 42})
    assert pong["type"] == "pong" and pong["data"]["client_time"] == 42
    assert logged_failures == []
    client.close()


@pytest_twisted.ensureDeferred
async def test_unknown_metric_error_lists_what_exists(daemon):
    client = await authed(daemon)
    error = await client.request("subscribe", {"metrics": ["cpu_usage", "warp_drive"]})
    assert error["data"]["code"] == "bad_message" and "warp_drive" in error["data"]["message"]
    assert "cpu_usage" in error["data"]["details"]["known"]


@pytest_twisted.ensureDeferred
async def test_binary_frame_closes_with_1003(daemon):
    client = await authed(daemon)
    client.send_raw(b"\x00\x01", binary=True)
    assert (await client.closed())[0] == 1003


@pytest_twisted.ensureDeferred
async def test_oversized_message_closes_with_1009(make_settings):
    daemon = await start_daemon(make_settings(max_message_size="2KiB", max_frame_size="2KiB"))
    try:
        client = await authed(daemon)
        client.send_raw(json.dumps({"type": "ping", "data": {"pad": "x" * 5000}}).encode())
        assert (await client.closed())[0] == 1009
        other = await authed(daemon)  # the daemon keeps serving
        other.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_flooding_client_is_rate_limited_then_closed_with_1008(make_settings):
    daemon = await start_daemon(make_settings(messages_per_second="5", message_burst="5", abuse_close_after="1s"))
    try:
        client = await authed(daemon)
        for i in range(20):
            client.send({"type": "ping", "correlation_id": i})
        replies = [await client.reply_to(i) for i in range(20)]
        assert [r["type"] for r in replies[:5]] == ["pong"] * 5
        limited = [r for r in replies if r["type"] == "error"]
        assert limited and all(r["data"]["code"] == "rate_limited" for r in limited)
        assert "retry_after" in limited[0]["data"]["details"]
        # keep flooding past abuse_close_after
        for _ in range(200):
            if client.close_info:
                break
            client.send({"type": "ping"})
            await sleep(0.02)
        assert (await client.closed())[0] == 1008
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_every_request_with_a_correlation_id_gets_exactly_one_reply(daemon):
    client = await authed(daemon, role="admin")
    requests = [
        ("ping", {}), ("subscribe", {"metrics": ["cpu_*"]}), ("unsubscribe", {"metrics": ["cpu_core_*"]}),
        ("set_rate", {"max_hz": 2}), ("history", {"metrics": ["cpu_usage"], "from": "-1m"}),
        ("stats", {"metrics": ["cpu_usage"], "window": "1m"}), ("notifications", {}), ("rule_list", {}),
        ("settings_get", {}), ("clients_list", {}), ("ack", {"notification_id": "n-missing"}),
        ("rule_delete", {"name": "no_such_rule"}), ("nope", {}), ("resume", {"after_seq": 0}),
    ]
    for index, (type_, data) in enumerate(requests):
        client.send({"type": type_, "data": data, "correlation_id": f"r{index}"})
    await sleep(1.0)
    replies: dict[str, list[str]] = {}
    for message in client.received:
        if message.get("correlation_id") and message["type"] != "resume_gap":
            replies.setdefault(message["correlation_id"], []).append(message["type"])
    for index, (type_, _) in enumerate(requests):
        assert len(replies.get(f"r{index}", [])) == 1, (type_, replies.get(f"r{index}"))
    assert replies["r0"] == ["pong"] and replies["r10"] == ["error"] and replies["r12"] == ["error"]
    assert replies["r1"] == ["subscribe"] and replies["r4"] == ["history"]


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
