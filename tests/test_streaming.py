"""The streaming engine over real loopback connections: subscriptions,
per-client throttle, slow consumers, gap-free resume (also across a
restart), alert rules and notifications, permessage-deflate."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet.threads import deferToThread

from conftest import start_daemon
from dashd.store.chunks import OpenChunks
from fakes import authed, sleep
from wsclient import connect


def stream_seqs(client) -> list[int]:
    return [m["seq"] for m in client.received if "seq" in m]


@pytest_twisted.ensureDeferred
async def test_subscription_filters_the_payload_on_the_server(daemon):
    client = await authed(daemon)
    full = await client.recv_type("metrics_update")
    assert len(full["data"]["metrics"]) > 10  # default: all metrics
    reply = await client.request("subscribe", {"metrics": ["cpu_*", "memory_usage"]})
    assert reply["type"] == "subscribe" and reply["data"]["metrics"] == ["cpu_*", "memory_usage"]
    update = await client.recv_type("metrics_update")
    assert set(update["data"]["metrics"]) == {"cpu_usage", "cpu_core_0", "cpu_core_1", "memory_usage"} - (
        set() if "cpu_core_1" in full["data"]["metrics"] else {"cpu_core_1"}
    )
    reply = await client.request("unsubscribe", {"metrics": ["cpu_core_*"]})
    assert sorted(reply["data"]["metrics"]) == ["cpu_usage", "memory_usage"]
    update = await client.recv_type("metrics_update")
    assert set(update["data"]["metrics"]) == {"cpu_usage", "memory_usage"}
    other_host = await client.request("subscribe", {"hosts": ["elsewhere"]})
    assert other_host["data"]["hosts"] == ["elsewhere"]
    await sleep(0.6)
    count = len([m for m in client.received if m["type"] == "metrics_update"])
    await sleep(0.6)
    assert len([m for m in client.received if m["type"] == "metrics_update"]) == count  # no samples of testhost
    await client.request("unsubscribe", {})
    await client.request("subscribe", {"metrics": ["*"], "hosts": ["*"]})
    assert (await client.recv_type("metrics_update"))["data"]["host"] == "testhost"


@pytest_twisted.ensureDeferred
async def test_resume_after_a_disconnect_misses_no_sequence_number(daemon):
    client = await authed(daemon)
    for _ in range(3):
        await client.recv_type("metrics_update")
    last = stream_seqs(client)[-1]
    client.abort()
    await sleep(1.0)  # five intervals pass while away
    back = await connect(daemon.url())
    back.send({"type": "auth", "data": {"token": daemon.token(), "resume_after_seq": last}})
    assert (await back.recv())["type"] == "connection_ack"
    summary = await back.recv_type("resume")
    assert summary["data"]["replayed"] >= 4 and summary["data"]["gaps"] == []
    await back.recv_type("metrics_update")
    seqs = stream_seqs(client) + stream_seqs(back)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs


@pytest_twisted.ensureDeferred
async def test_resume_message_after_ack_fills_in_before_the_latest_sample(daemon):
    client = await authed(daemon)
    await client.recv_type("metrics_update")
    client.abort()
    # Read the last seq after the abort: a sample can arrive between the
    # recv above and the abort, and the client did receive it.
    last = stream_seqs(client)[-1]
    await sleep(1.0)
    back = await authed(daemon)  # gets the latest sample at once
    reply = await back.request("resume", {"after_seq": last})
    assert reply["data"]["gaps"] == []
    await back.recv_type("metrics_update")
    seqs = sorted(stream_seqs(client) + stream_seqs(back))
    assert seqs == list(range(seqs[0], seqs[-1] + 1)) and len(seqs) == len(set(seqs))


@pytest_twisted.ensureDeferred
async def test_resume_older_than_the_ring_backfills_from_the_store(daemon):
    client = await authed(daemon)
    for _ in range(3):
        await client.recv_type("metrics_update")
    last = stream_seqs(client)[-1]
    client.abort()
    await sleep(1.0)
    await daemon.core.store.flush()
    daemon.core.hub.ring._messages.clear()  # the ring no longer reaches back
    back = await connect(daemon.url())
    back.send({"type": "auth", "data": {"token": daemon.token(), "resume_after_seq": last}})
    summary = await back.recv_type("resume")
    recovered = [m for m in back.received if m["type"] == "metrics_update" and m["data"].get("recovered")]
    assert summary["data"]["recovered"] == len(recovered) >= 4
    assert summary["data"]["gaps"] == []
    await back.recv_type("metrics_update")
    seqs = stream_seqs(client) + stream_seqs(back)
    assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs


@pytest_twisted.ensureDeferred
async def test_resume_beyond_retention_reports_a_gap(daemon):
    client = await authed(daemon)
    await client.recv_type("metrics_update")
    await daemon.core.store.flush()
    # Past retention: gone from the chunks, the head and the open chunks in memory.
    await daemon.core.store.execute("DELETE FROM chunks")
    await daemon.core.store.execute("DELETE FROM chunk_head")
    daemon.core.store.open_chunks = OpenChunks()
    daemon.core.hub.ring._messages.clear()
    await sleep(0.5)
    reply = await client.request("resume", {"after_seq": 0})
    gaps = reply["data"]["gaps"]
    assert gaps and gaps[0]["from_seq"] == 1
    assert any(m["type"] == "resume_gap" for m in client.received)


@pytest_twisted.ensureDeferred
async def test_seq_keeps_growing_across_a_restart_and_resume_spans_it(make_settings):
    settings = make_settings()
    daemon = await start_daemon(settings)
    client = await authed(daemon)
    for _ in range(3):
        await client.recv_type("metrics_update")
    await daemon.stop()
    assert (await client.closed())[0] == 1001
    last = stream_seqs(client)[-1]
    daemon = await start_daemon(settings)
    try:
        back = await connect(daemon.url())
        back.send({"type": "auth", "data": {"token": daemon.token(), "resume_after_seq": last}})
        ack = await back.recv()
        assert ack["data"]["seq"] >= last
        await back.recv_type("resume")
        update = await back.recv_type("metrics_update")
        assert update["seq"] > last
        seqs = stream_seqs(client) + stream_seqs(back)
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_notifications_are_replayed_by_resume(daemon):
    watcher = await authed(daemon, "/notifications")
    admin = await authed(daemon, role="admin")
    await admin.request("broadcast", {"level": "info", "title": "one", "message": "1"})
    first = await watcher.recv_type("notification")
    watcher.abort()
    await admin.request("broadcast", {"level": "critical", "title": "two", "message": "2"})
    back = await authed(daemon, "/notifications")
    await back.request("resume", {"after_seq": first["seq"]})
    replayed = [m for m in back.received if m["type"] == "notification"]
    assert [m["data"]["title"] for m in replayed] == ["two"]


class NeverReads:
    """A raw client that completes the WebSocket handshake, authenticates,
    and then never reads: its kernel receive buffer is tiny."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                f"GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert b" 101 " in response.split(b"\r\n")[0]

    def close(self) -> None:
        self.sock.close()


FLOOD = dict(interval="0.1", send_buffer="16KiB", messages_per_second="10000", message_burst="10000")


def stop_reading(client) -> None:
    """The client stops reading (its kernel receive buffer, ~128 KiB, does
    not grow while the application does not read)."""
    client.protocol.transport.pauseProducing()


def read_again(client) -> None:
    client.protocol.transport.resumeProducing()


async def fill_pipes(admin, count: int) -> None:
    """Broadcast `count` 2 KB notifications (never coalesced) to fill the
    sockets of clients that do not read."""
    for i in range(count):
        admin.send({"type": "broadcast", "data": {"level": "info", "title": f"fill {i}", "message": "x" * 1900}})
        if i % 20 == 19:
            await sleep(0.05)


@pytest_twisted.ensureDeferred
async def test_clients_that_never_read_are_bounded_and_do_not_slow_a_fast_client(make_settings):
    daemon = await start_daemon(make_settings(slow_consumer_timeout="60s", **FLOOD))
    sleepers = []
    try:
        fast = await authed(daemon)
        admin = await authed(daemon, role="admin")
        sleepers = [
            await deferToThread(NeverReads, daemon.port, daemon.token("viewer", subject="sleeper")) for _ in range(10)
        ]
        await fill_pipes(admin, 80)
        await sleep(1.0)
        sessions = [s for s in daemon.core.connections if s.principal and s.principal.subject == "sleeper"]
        assert len(sessions) == 10 and all(s.stream.paused for s in sessions), "the sleepers should be paused"
        # Keep them paused a while: metric updates coalesce instead of piling up.
        fast_start = len(fast.received)
        await sleep(2.0)
        held = []
        for session in sessions:
            transport = session.sink.transport
            held.append(len(transport.dataBuffer) + sum(len(b) for b in transport._tempDataBuffer))
            assert session.stream.queued <= 64 and session.stream.stats.coalesced > 0
        # Bounded: Twisted's 64 KiB high-water mark plus at most one write over
        # it, in user space (the kernel holds send_buffer more).
        assert max(held) < 160 * 1024, held
        metric_seqs = [m["seq"] for m in fast.received[fast_start:] if m["type"] == "metrics_update"]
        assert len(metric_seqs) >= 15  # ~20 samples in 2 s at 10 Hz: all of them delivered
        seqs = sorted(m["seq"] for m in fast.received if "seq" in m)
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # nothing skipped for the fast client
    finally:
        for sleeper in sleepers:
            sleeper.close()
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_client_that_falls_behind_is_degraded_then_recovers_without_losing_notifications(make_settings):
    daemon = await start_daemon(make_settings(slow_consumer_timeout="20s", **FLOOD))
    try:
        admin = await authed(daemon, role="admin")
        slow = await authed(daemon)
        stop_reading(slow)
        await fill_pipes(admin, 150)
        await sleep(1.5)
        read_again(slow)
        notices = []
        while len(notices) < 2:
            message = await slow.recv_type("stream_degraded", timeout=30)
            notices.append(message["data"]["reason"])
        assert notices == ["slow_consumer", "recovered"]
        titles = [m["data"]["title"] for m in slow.received if m["type"] == "notification"]
        assert titles == [f"fill {i}" for i in range(150)]  # notifications are never dropped
        metric_seqs = [m["seq"] for m in slow.received if m["type"] == "metrics_update"]
        assert any(b - a > 1 for a, b in zip(metric_seqs, metric_seqs[1:]))  # metrics were coalesced
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_client_behind_for_longer_than_the_timeout_is_closed_with_1013(make_settings):
    daemon = await start_daemon(make_settings(slow_consumer_timeout="1s", **FLOOD))
    try:
        admin = await authed(daemon, role="admin")
        slow = await authed(daemon)
        stop_reading(slow)
        await fill_pipes(admin, 150)
        await sleep(1.8)
        read_again(slow)  # in time for the close frame
        code, _ = await slow.closed(timeout=10)
        assert code == 1013
        again = await authed(daemon)  # and it can come back and resume
        reply = await again.request("resume", {"after_seq": max(m["seq"] for m in slow.received if "seq" in m)})
        assert reply["type"] == "resume" and reply["data"]["gaps"] == []
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_alert_rules_fire_resolve_persist_and_are_editable_by_admins(make_settings):
    settings = make_settings()
    daemon = await start_daemon(settings)
    try:
        admin = await authed(daemon, role="admin")
        watcher = await authed(daemon, "/notifications")
        rules = await admin.request("rule_list")
        assert {r["name"] for r in rules["data"]["rules"]} == {"cpu_high", "memory_high", "disk_full"}
        reply = await admin.request(
            "rule_set",
            {
                "name": "procs",
                "metric": "process_count",
                "op": ">",
                "threshold": 1,
                "for": 0,
                "level": "critical",
                "clear": 0,
            },
        )
        assert reply["data"]["rule"]["name"] == "procs"
        fired = await watcher.recv_type("notification")
        assert fired["data"]["state"] == "firing" and fired["data"]["level"] == "critical"
        assert fired["data"]["source"] == "rule:procs"
        bad = await admin.request("rule_set", {"name": "x", "metric": "cpu_usage", "op": "~", "threshold": 1})
        assert bad["data"]["code"] == "bad_message"
        deleted = await admin.request("rule_delete", {"name": "cpu_high"})
        assert deleted["type"] == "rule_delete"
        await sleep(0.5)
    finally:
        await daemon.stop()
    daemon = await start_daemon(settings)
    try:
        admin = await authed(daemon, role="admin")
        names = {r["name"] for r in (await admin.request("rule_list"))["data"]["rules"]}
        assert names == {"procs", "memory_high", "disk_full"}  # stored, edits kept across restart
        listed = await admin.request("notifications", {"limit": 10})
        assert any(n["source"] == "rule:procs" for n in listed["data"]["notifications"])
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_rules_from_the_ini_file(make_settings, tmp_path):
    ini = tmp_path / "dashd.ini"
    ini.write_text("[rules]\nlots_of_procs = process_count > 1 for 0s level=warning\n")
    daemon = await start_daemon(make_settings(config=str(ini)))
    try:
        watcher = await authed(daemon, "/notifications")
        fired = await watcher.recv_type("notification")
        assert fired["data"]["source"] == "rule:lots_of_procs" and fired["data"]["level"] == "warning"
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_permessage_deflate_is_negotiated_and_decodes(daemon):
    client = await authed(daemon, compression=True)
    assert client.protocol._perMessageCompress is not None
    update = await client.recv_type("metrics_update")
    assert update["data"]["metrics"]["cpu_usage"] is not None
    reply = await client.request("history", {"metrics": ["cpu_usage"]})
    assert reply["type"] == "history"


def handshake_extensions(port: int, offer: str) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            (
                f"GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                break
            response += chunk
    head = response.split(b"\r\n\r\n")[0].decode()
    assert " 101 " in head.splitlines()[0], head
    for line in head.splitlines():
        if line.lower().startswith("sec-websocket-extensions:"):
            return line.split(":", 1)[1].strip()
    return None


@pytest_twisted.ensureDeferred
async def test_an_offer_the_server_cannot_honour_is_declined_not_refused(daemon):
    declined = await deferToThread(handshake_extensions, daemon.port, "permessage-deflate; server_max_window_bits=8")
    assert declined is None
    accepted = await deferToThread(handshake_extensions, daemon.port, "permessage-deflate; client_max_window_bits")
    assert accepted.startswith("permessage-deflate") and "server_no_context_takeover" in accepted


@pytest_twisted.ensureDeferred
async def test_compression_can_be_switched_off(make_settings):
    daemon = await start_daemon(make_settings(compression="false"))
    try:
        assert await deferToThread(handshake_extensions, daemon.port, "permessage-deflate") is None
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_metrics_only_other_hosts_have_can_be_subscribed_and_streamed(daemon):
    from dashd.collect.collector import Sample
    from dashd.stream.bus import METRICS_TOPIC

    client = await authed(daemon)
    sample = Sample("bighost", daemon.core.wall_clock_ms(), {"cpu_usage": 5.0, "cpu_core_31": 7.5})
    await daemon.core.bus.publish(METRICS_TOPIC, sample)
    reply = await client.request("subscribe", {"metrics": ["cpu_core_31"], "hosts": ["bighost"]})
    assert reply["type"] == "subscribe", reply
    await daemon.core.bus.publish(
        METRICS_TOPIC, Sample("bighost", daemon.core.wall_clock_ms() + 1, {"cpu_usage": 6.0, "cpu_core_31": 8.5})
    )
    update = await client.recv_type("metrics_update")
    assert update["data"]["host"] == "bighost" and update["data"]["metrics"] == {"cpu_core_31": 8.5}
