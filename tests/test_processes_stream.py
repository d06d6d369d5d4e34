"""The processes stream and its look-back (issue 19 items 2 and 3): the
stream's views and redaction, the snapshot encoding, ProcessHistory on the
real store (SQLite and MariaDB), and the whole daemon on this host: a
spinning child shows in the stream with its name and a rising CPU %, viewers
never receive user names or command lines (asserted on the raw frames), and
processes_at / GET /api/processes answer from what was stored."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task

from dashd.collect.processes import ProcessRow, ProcessSnapshot, ProcessTable
from dashd.store.database import Store
from dashd.store.processes import (
    ProcessHistory,
    SnapshotEncoder,
    decode_table,
    encode_body,
    snapshot_body,
)
from dashd.stream.processes import ProcessStream, ProcessView, TopicRouter
from httpclient import http
from wsclient import connect

BASE_MS = 1_765_000_000_000


def row(pid, cpu=1.0, rss=4096 * 100, name=None, cmdline=None, read=0.0, write=0.0):
    return ProcessRow(
        pid=pid,
        ppid=1,
        name=name or f"p{pid}",
        user="alice",
        state="sleeping",
        cpu_percent=cpu,
        memory_percent=round(rss / 2**33 * 100, 2),
        rss=rss,
        threads=2,
        io_read_bps=read,
        io_write_bps=write,
        start_time=1_764_000_000.25 + pid,
        cmdline=cmdline or f"/usr/bin/p{pid} --password=hunter2 --pid={pid}",
    )


def table(n=120, shift=0.0, total=300):
    return ProcessTable(
        rows=tuple(row(pid, cpu=round((pid * 7 % 13) + shift, 1)) for pid in range(100, 100 + n)),
        total=total,
        started=2,
        exited=1,
        running=3,
    )


# ----- the stream, no I/O


class FakeSubscriber:
    def __init__(self, role_sensitive: bool, sort="cpu", limit=5, host="h1", cmdlines=True):
        self.view = ProcessView(sort, limit, host, role_sensitive, cmdlines)
        self.frames = []

    def deliver(self, frame):
        self.frames.append(frame)


def test_viewers_get_no_user_or_cmdline_keys_operators_do_and_the_setting_removes_cmdline_for_all():
    stream = ProcessStream()
    viewer, viewer2 = FakeSubscriber(False), FakeSubscriber(False)
    operator, no_cmdline = FakeSubscriber(True), FakeSubscriber(True, cmdlines=False)
    for name, sub in {"v": viewer, "v2": viewer2, "o": operator, "n": no_cmdline}.items():
        stream.subscribe(name, lambda sub=sub: sub.view, sub.deliver)
    stream.take(ProcessSnapshot("h1", BASE_MS, table()))
    (viewer_frame,) = viewer.frames
    assert viewer2.frames[0] is viewer_frame  # one encoding per distinct view
    assert b'"user"' not in viewer_frame.payload and b'"cmdline"' not in viewer_frame.payload
    assert b"hunter2" not in viewer_frame.payload and b"alice" not in viewer_frame.payload
    message = orjson.loads(operator.frames[0].payload)
    assert message["type"] == "processes" and "seq" not in message
    data = message["data"]
    assert (data["host"], data["sort"], data["total"], data["running"]) == ("h1", "cpu", 300, 3)
    assert len(data["processes"]) == 5
    first = data["processes"][0]
    assert list(first) == [
        "pid",
        "ppid",
        "name",
        "user",
        "state",
        "cpu_percent",
        "memory_percent",
        "rss",
        "threads",
        "read_bytes_per_second",
        "write_bytes_per_second",
        "started",
        "cmdline",
    ]
    assert first["user"] == "alice" and "hunter2" in first["cmdline"]
    assert first["started"].endswith("Z")
    no_cmdline_row = orjson.loads(no_cmdline.frames[0].payload)["data"]["processes"][0]
    assert "cmdline" not in no_cmdline_row and no_cmdline_row["user"] == "alice"


def test_each_view_is_sorted_and_cut_as_asked_and_other_hosts_tables_are_not_sent():
    stream = ProcessStream()
    by_memory = FakeSubscriber(False, sort="memory", limit=3)
    other_host = FakeSubscriber(False, host="h2")
    stream.subscribe("m", lambda: by_memory.view, by_memory.deliver)
    stream.subscribe("x", lambda: other_host.view, other_host.deliver)
    rows = (
        row(1, cpu=90.0, rss=4096),
        row(2, cpu=1.0, rss=4096 * 9000),
        row(3, cpu=5.0, rss=4096 * 500),
        row(4, cpu=0.0, rss=4096 * 20),
    )
    stream.take(ProcessSnapshot("h1", BASE_MS, ProcessTable(rows=rows, total=4)))
    pids = [r["pid"] for r in orjson.loads(by_memory.frames[0].payload)["data"]["processes"]]
    assert pids == [2, 3, 4]
    assert other_host.frames == []
    assert stream.unsubscribe("m") and not stream.unsubscribe("m")


def test_a_new_subscriber_gets_the_newest_table_at_once():
    stream = ProcessStream()
    stream.take(ProcessSnapshot("h1", BASE_MS, table(10)))
    late = FakeSubscriber(True)
    stream.subscribe("late", lambda: late.view, late.deliver)
    assert len(late.frames) == 1


def test_views_encoded_elsewhere_are_delivered_in_order_and_a_stale_table_is_dropped():
    """With a runner (the daemon's thread pool), a table whose encoding
    finishes after a newer one's is not sent; a client that unsubscribed
    or changed its view meanwhile gets nothing from the old encoding."""
    pending = []

    def runner(work):
        d = defer.Deferred()
        pending.append((d, work))
        return d

    stream = ProcessStream(runner=runner)
    steady, leaving = FakeSubscriber(False), FakeSubscriber(False)
    changing = FakeSubscriber(False)
    stream.subscribe("steady", lambda: steady.view, steady.deliver)
    stream.subscribe("leaving", lambda: leaving.view, leaving.deliver)
    stream.subscribe("changing", lambda: changing.view, changing.deliver)
    stream.take(ProcessSnapshot("h1", BASE_MS, table(5)))
    stream.take(ProcessSnapshot("h1", BASE_MS + 2000, table(5)))
    (old, old_work), (new, new_work) = pending
    stream.unsubscribe("leaving")
    changing.view = ProcessView("memory", 5, "h1", False, True)
    new.callback(new_work())
    old.callback(old_work())
    assert [orjson.loads(f.payload)["data"]["timestamp"] for f in steady.frames] == ["2025-12-06T05:46:42.000Z"]
    assert leaving.frames == [] and changing.frames == []


def test_the_topic_router_sends_process_tables_to_the_stream_and_the_rest_to_the_bus():
    stream = ProcessStream()
    seen = []

    class Bus:
        def publish(self, topic, message):
            seen.append(topic)

    router = TopicRouter(Bus(), {"processes": stream})
    router.publish("processes", ProcessSnapshot("h1", BASE_MS, table(3)))
    router.publish("series", {"x": 1})
    assert seen == ["series"] and stream.latest("h1") is not None


def test_serializing_a_table_for_three_views_is_cheap_on_the_reactor():
    """The reactor's share of a table: building and encoding each view.
    Measured, not asserted on time: the test asserts the work done (one
    frame per view) and prints the cost."""
    stream = ProcessStream()
    subs = [FakeSubscriber(s, sort=o, limit=50) for s in (False, True) for o in ("cpu", "memory", "io")]
    for index, sub in enumerate(subs):
        stream.subscribe(index, lambda sub=sub: sub.view, sub.deliver)
    started = time.perf_counter()
    stream.take(ProcessSnapshot("h1", BASE_MS, table(150)))
    print(f"six views of 150 rows: {1000 * (time.perf_counter() - started):.2f} ms")
    assert all(len(sub.frames) == 1 for sub in subs)


# ----- the encoding


def test_keyframes_and_deltas_round_trip_and_a_delta_is_much_smaller():
    first, second = table(), table(shift=0.3)
    key_body = snapshot_body(first)
    keyframe = encode_body(key_body, None)
    delta = encode_body(snapshot_body(second), key_body)
    assert decode_table(keyframe).rows == tuple(sorted(first.rows, key=lambda r: (r.cpu_percent, r.rss), reverse=True))
    decoded = decode_table(delta, keyframe)
    assert {r.pid: r for r in decoded.rows} == {r.pid: r for r in second.rows}
    assert (decoded.total, decoded.running, decoded.started, decoded.exited) == (300, 3, 2, 1)
    assert len(delta) < len(keyframe) / 3
    with pytest.raises(ValueError, match="needs its keyframe"):
        decode_table(delta)
    with pytest.raises(ValueError, match="unknown process snapshot encoding"):
        decode_table(b"\x09\x00abc")


def test_a_group_ends_after_its_span_or_when_time_goes_backwards():
    encoder = SnapshotEncoder(group_span_ms=300_000)
    _, body, is_key = encoder.encode(ProcessSnapshot("h", BASE_MS, table(5)), None)
    assert is_key
    from dashd.store.processes import Keyframe

    key = Keyframe(1, BASE_MS, body)
    assert not encoder.encode(ProcessSnapshot("h", BASE_MS + 299_000, table(5)), key)[2]
    assert encoder.encode(ProcessSnapshot("h", BASE_MS + 300_000, table(5)), key)[2]
    assert encoder.encode(ProcessSnapshot("h", BASE_MS - 1, table(5)), key)[2]


# ----- ProcessHistory on the real store


def make_store(db_url, now):
    return Store(
        db_url, reactor, batch_interval=60, prune_interval=3600, retention_raw=3600, wall_clock_ms=lambda: now[0]
    )


@pytest_twisted.ensureDeferred
async def test_processes_at_finds_the_nearest_stored_table_and_pruning_drops_old_groups(db_url):
    now = [BASE_MS]
    store = make_store(db_url, now)
    store.startService()
    # The whole 20 minutes are offered at once: room for all of it.
    history = ProcessHistory(
        store, task.Clock(), store_interval=10, prune_interval=3600, wall_clock_ms=lambda: now[0], max_pending=200
    )
    history.startService()
    try:
        # 2 s stream for 20 minutes: one in five is stored (every 10 s).
        for step in range(600):
            history.offer(ProcessSnapshot("h1", BASE_MS + step * 2000, table(60, shift=step / 10)))
        await history.flush()
        assert history.written == 120 and history.dropped == 0
        # Keyframes every 5 minutes: 4 groups of 30.
        rows = await store.fetchall(
            "SELECT COUNT(*), SUM(CASE WHEN key_id IS NULL THEN 1 ELSE 0 END) FROM process_snapshots"
        )
        assert tuple(int(x) for x in rows[0]) == (120, 4)
        found = await history.nearest("h1", BASE_MS + 123_400, 60_000)
        assert found.timestamp_ms == BASE_MS + 120_000
        assert found.table.total == 300 and len(found.table.rows) == 60
        expected = table(60, shift=60 / 10)
        assert {r.pid: r.cpu_percent for r in found.table.rows} == {r.pid: r.cpu_percent for r in expected.rows}
        after = await history.nearest("h1", BASE_MS + 128_000, 60_000)
        assert after.timestamp_ms == BASE_MS + 130_000
        assert await history.nearest("h1", BASE_MS + 3_600_000, 60_000) is None
        assert await history.nearest("other", BASE_MS + 120_000, 60_000) is None
        # An hour of retention, 65 minutes later: the first group (keyframe
        # at 0, deltas to 290 s) is older than the retention and goes whole;
        # the second (keyframe at 300 s, the cutoff) stays whole.
        now[0] = BASE_MS + 65 * 60_000
        deleted = await history.prune(now[0])
        assert deleted == 30
        assert await history.nearest("h1", BASE_MS + 100_000, 60_000) is None
        kept = await history.nearest("h1", BASE_MS + 400_000, 5_000)
        assert kept is not None and kept.timestamp_ms == BASE_MS + 400_000
        print(f"{history.bytes_written / history.written:.0f} bytes per stored table of 60 rows")
    finally:
        await history.stopService()
        await store.stopService()


# ----- the whole daemon on this host


@pytest_twisted.async_yield_fixture
async def process_daemon(make_settings):
    from conftest import start_daemon

    running = await start_daemon(
        make_settings(
            collectors="processes", processes_interval="0.5s", processes_store_interval="1s", processes_top="10"
        )
    )
    yield running
    await running.stop()


async def subscribed(daemon, role, data=None):
    client = await connect(daemon.url(), daemon.token(role))
    await client.recv_type("connection_ack")
    reply = await client.request("processes_subscribe", data or {"sort": "cpu", "limit": 10})
    assert reply["type"] == "processes_subscribe", reply
    # The reply comes before any table.
    assert [m["type"] for m in client.received if m["type"].startswith("processes")][0] == "processes_subscribe"
    return client, reply


async def spinner_row(client, pid, rounds=40):
    """The spinner's row in the next tables (None if it never shows)."""
    for _ in range(rounds):
        message = await client.recv_type("processes", timeout=10)
        for process in message["data"]["processes"]:
            if process["pid"] == pid and (process["cpu_percent"] or 0) > 20:
                return message, process
    return None, None


@pytest_twisted.ensureDeferred
async def test_a_spinning_process_shows_in_the_stream_viewers_never_see_user_or_cmdline(process_daemon):
    child = subprocess.Popen([sys.executable, "-c", "while True: pass", "dashd-spinner-secret-arg"])
    try:
        viewer, reply = await subscribed(process_daemon, "viewer")
        assert reply["data"] == {"sort": "cpu", "limit": 10, "interval": 0.5, "host": "testhost"}
        operator, _ = await subscribed(process_daemon, "operator")
        message, process = await spinner_row(viewer, child.pid)
        assert process is not None, "the spinner never reached the viewer's top 10 by CPU"
        assert process["name"].startswith("python")
        assert "user" not in process and "cmdline" not in process
        assert message["data"]["host"] == "testhost" and message["data"]["total"] > 10
        _, seen_by_operator = await spinner_row(operator, child.pid)
        assert seen_by_operator["cmdline"].endswith("dashd-spinner-secret-arg")
        assert seen_by_operator["user"]
        raw_viewer = b"".join(viewer.raw)
        assert b"dashd-spinner-secret-arg" not in raw_viewer
        assert b'"cmdline"' not in raw_viewer and b'"user":' not in raw_viewer.replace(b'"user":"test-viewer"', b"")
        # Unsubscribed: no more tables (the next reply comes after any in flight).
        await viewer.request("processes_unsubscribe")
        before = len([m for m in viewer.received if m["type"] == "processes"])
        await viewer.request("ping")
        await task.deferLater(reactor, 1.2, lambda: None)
        await viewer.request("ping")
        assert len([m for m in viewer.received if m["type"] == "processes"]) == before
        # The look-back, on the WebSocket and over HTTP, with the same redaction.
        at = await viewer.request("processes_at", {"time": "-1s", "limit": 5})
        assert at["type"] == "processes_at", at
        assert len(at["data"]["processes"]) == 5 and "cmdline" not in at["data"]["processes"][0]
        at_ms = await operator.request("processes_at", {"time": int(time.time() * 1000), "sort": "memory"})
        assert at_ms["data"]["sort"] == "memory" and "cmdline" in at_ms["data"]["processes"][0]
        response = await http(
            "GET",
            process_daemon.url("/api/processes?time=-1s&limit=3", "http"),
            headers={"Authorization": f"Bearer {process_daemon.token('viewer')}"},
        )
        assert response.status == 200, response.body
        assert len(response.json()["processes"]) == 3 and b"cmdline" not in response.body
        # A plain link from the dashboard carries the session cookie (an admin's here).
        password = open(os.path.join(process_daemon.settings.state_dir, "initial-admin-password")).read().strip()
        login = await http(
            "POST", process_daemon.url("/api/login", "http"), json_body={"username": "admin", "password": password}
        )
        cookie = login.header("Set-Cookie").split(";")[0]
        by_cookie = await http(
            "GET", process_daemon.url("/api/processes?time=now&sort=io", "http"), headers={"Cookie": cookie}
        )
        assert by_cookie.status == 200, by_cookie.body
        assert by_cookie.json()["sort"] == "io" and "cmdline" in by_cookie.json()["processes"][0]
        viewer.close()
        operator.close()
    finally:
        child.kill()
        child.wait()


@pytest_twisted.ensureDeferred
async def test_bad_sort_limit_time_and_unknown_hosts_are_typed_errors(process_daemon):
    client = await connect(process_daemon.url(), process_daemon.token("viewer"))
    await client.recv_type("connection_ack")
    for data, field in (
        ({"sort": "name"}, "sort"),
        ({"limit": 201}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"sort": 5}, "sort"),
    ):
        reply = await client.request("processes_subscribe", data)
        assert reply["type"] == "error" and reply["data"]["code"] == "bad_message", reply
        assert field in reply["data"]["details"], reply
    reply = await client.request("processes_subscribe", {"host": "elsewhere"})
    assert reply["data"]["code"] == "not_found"
    reply = await client.request("processes_at", {})
    assert reply["data"]["code"] == "bad_message"
    reply = await client.request("processes_at", {"time": "yesterday-ish"})
    assert reply["data"]["code"] == "bad_message"
    reply = await client.request("processes_at", {"time": "2001-01-01T00:00:00Z"})
    assert reply["data"]["code"] == "not_found"
    token = {"Authorization": f"Bearer {process_daemon.token('viewer')}"}
    for query, status in (
        ("", 400),
        ("?time=-1s&sort=pid", 400),
        ("?time=-1s&limit=x", 400),
        ("?time=2001-01-01T00:00:00Z", 404),
    ):
        response = await http("GET", process_daemon.url(f"/api/processes{query}", "http"), headers=token)
        assert response.status == status, (query, response.body)
        assert response.json()["error"]["code"] in ("bad_message", "not_found")
    response = await http("GET", process_daemon.url("/api/processes?time=-1s", "http"))
    assert response.status == 401
    client.close()


@pytest_twisted.ensureDeferred
async def test_without_the_process_collector_subscribing_is_unavailable(daemon):
    client = await connect(daemon.url(), daemon.token("viewer"))
    await client.recv_type("connection_ack")
    reply = await client.request("processes_subscribe", {})
    assert reply["type"] == "error" and reply["data"]["code"] == "unavailable"
    client.close()


@pytest_twisted.ensureDeferred
async def test_command_lines_off_removes_them_for_operators_too(make_settings):
    from conftest import start_daemon

    running = await start_daemon(
        make_settings(collectors="processes", processes_interval="0.5s", process_cmdlines="false")
    )
    try:
        client, _ = await subscribed(running, "admin")
        message = await client.recv_type("processes", timeout=10)
        assert message["data"]["processes"] and all(
            "cmdline" not in p and "user" in p for p in message["data"]["processes"]
        )
        client.close()
    finally:
        await running.stop()
