"""Issue 11 A, B and D: viewers cannot jam the store or exhaust the daemon's
memory, and one agent cannot flood the hub or lose acknowledged samples.

From the bottom up: the query scheduler and the send queue's byte bound
with task.Clock and fakes; the store's cancellation and system connection
on a real database (SQLite, and MariaDB when configured); then the whole
daemon over real loopback sockets: a history flood from one viewer while
/api/ready, login and revocation keep working; a client that never reads
while it asks for resumes and history; an agent that floods /ingest.
"""

from __future__ import annotations

import socket
import sqlite3
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread

from conftest import start_daemon
from dashd.agent import build_agent
from dashd.clients.ingest import AgentLimits, IngestService
from dashd.clients.queries import QueryCost, QueryScheduler, history_cost
from dashd.collect.agent import SampleBuffer, Uplink
from dashd.collect.collector import Sample
from dashd.errors import ProtocolError
from dashd.store.database import Store
from dashd.stream.streams import METRICS_UPDATE, ClientStream, StreamMessage
from dashd.timefmt import iso_ms, now_ms
from fakes import RecordingSink, authed, sleep
from httpclient import http
from test_store import stored_rows
from test_twistd import BIN, run
from wsclient import connect

KIB = 1024
MIB = 1024 * KIB


def within(seconds: float, coroutine) -> Deferred:
    """The documented bound for an answer (fails the test past it)."""
    return Deferred.fromCoroutine(coroutine).addTimeout(seconds, reactor)


# ----- the query scheduler (no I/O)


def scheduler(clock: Clock, **overrides) -> QueryScheduler:
    options = dict(concurrency=1, max_waiting=2, max_cost=1000, user_cost_per_second=1000.0)
    options.update(overrides)
    return QueryScheduler(clock, **options)


def refusal(call) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call()
    return info.value


def test_history_cost_grows_with_series_span_and_points():
    """points x series x span: rows read per series follow span/resolution."""
    one = history_cost(1, 3_600_000, 300, 1000)
    assert one == QueryCost(rows=3600, points=300)
    assert history_cost(10, 3_600_000, 300, 1000).total == 10 * one.total
    assert history_cost(1, 7_200_000, 300, 1000).rows == 2 * one.rows
    assert history_cost(1, 60_000, 5000, 1000).points == 60  # never more points than rows


def test_a_query_over_the_maximum_cost_is_refused_too_large():
    queries = scheduler(Clock())
    error = refusal(lambda: queries.submit("c1", "alice", QueryCost(1001, 0), lambda: succeed({})))
    assert error.code == "too_large" and error.details == {"cost": 1001, "max_cost": 1000}


def test_the_global_queue_is_bounded_and_refuses_rather_than_queues():
    queries = scheduler(Clock(), user_cost_per_second=1e9)
    pending = [Deferred() for _ in range(3)]
    for index, d in enumerate(pending):
        queries.submit(f"c{index}", "alice", QueryCost(1, 0), lambda d=d: d)
    assert (queries.running, queries.waiting) == (1, 2)
    error = refusal(lambda: queries.submit("c9", "bob", QueryCost(1, 0), lambda: succeed({})))
    assert error.code == "rate_limited" and error.details == {"retry_after": 1.0}
    pending[0].callback({})
    assert (queries.running, queries.waiting) == (1, 1)  # the next one started in arrival order


def test_one_connection_may_have_two_queries_in_flight_and_no_more():
    queries = scheduler(Clock(), max_waiting=10, user_cost_per_second=1e9)
    for _ in range(2):
        queries.submit("c1", "alice", QueryCost(1, 0), Deferred)
    error = refusal(lambda: queries.submit("c1", "alice", QueryCost(1, 0), Deferred))
    assert error.code == "rate_limited" and error.details == {"in_flight": 2}
    queries.submit("c2", "alice", QueryCost(1, 0), Deferred)  # another connection still may


def test_a_users_budget_is_shared_by_their_connections_and_refills_with_time():
    clock = Clock()
    queries = scheduler(clock, max_waiting=10, max_cost=1000, user_cost_per_second=100.0)
    queries.submit("c1", "alice", QueryCost(600, 0), lambda: succeed({}))
    error = refusal(lambda: queries.submit("c2", "alice", QueryCost(600, 0), lambda: succeed({})))
    assert error.code == "rate_limited" and error.details["retry_after"] == pytest.approx(2.0)
    queries.submit("c3", "bob", QueryCost(600, 0), lambda: succeed({}))  # bob has his own budget
    clock.advance(2.0)
    queries.submit("c2", "alice", QueryCost(600, 0), lambda: succeed({}))


def test_a_gone_connection_drops_its_queued_query_and_cancels_its_running_one():
    queries = scheduler(Clock(), user_cost_per_second=1e9)
    cancelled = []
    running = Deferred(lambda d: cancelled.append("running"))
    started = []
    first = queries.submit("c1", "alice", QueryCost(1, 0), lambda: running)
    second = queries.submit("c1", "alice", QueryCost(1, 0), lambda: started.append("queued") or succeed({}))
    outcomes = []
    for d in (first, second):
        d.addErrback(lambda f: outcomes.append(f.check(CancelledError)))
    queries.cancel_owner("c1")
    assert cancelled == ["running"] and started == [] and outcomes == [CancelledError, CancelledError]
    assert (queries.running, queries.waiting) == (0, 0)


# ----- the send queue's byte bound (no I/O)


def test_the_send_queue_is_bounded_in_bytes_not_only_in_frames():
    """Three 1 MiB replies fit the frame bound (64 x 4) but not ~2 MiB of
    bytes: the client is closed with 1013 and the queue is freed."""
    sink = RecordingSink()
    stream = ClientStream(
        sink, Clock(), wants_metrics=True, wants_notifications=True, queue_bound=64, queue_bytes=2 * MIB + 64 * KIB
    )
    stream.live = True
    stream.pause()
    stream.send({"type": "history", "data": {"x": "a" * MIB}})
    stream.send({"type": "history", "data": {"x": "b" * MIB}})
    assert sink.closed == [] and stream.queued_bytes > 2 * MIB
    stream.send({"type": "history", "data": {"x": "c" * MIB}})
    assert sink.closed == [(1013, "slow consumer: reconnect and resume")]
    assert stream.queued_bytes == 0 and sink.frames == []


def test_writable_waits_for_the_queue_to_drain_and_says_false_when_closed():
    sink = RecordingSink()
    stream = ClientStream(sink, Clock(), wants_metrics=True, wants_notifications=True)
    stream.pause()
    stream.send({"type": "x"})
    first = stream.writable()
    assert not first.called
    stream.resume()
    assert first.result is True and len(sink.frames) == 1
    stream.pause()
    stream.send({"type": "y"})
    second = stream.writable()
    stream.close()
    assert second.result is False


# ----- the store: system connection and cancellation (real databases)


def slow_sqlite_query(cursor) -> int:
    # A few seconds of work on any machine, unless interrupted.
    cursor.execute(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT COUNT(*) FROM c"
    )
    return cursor.fetchone()[0]


def slow_mysql_query(cursor) -> int:
    cursor.execute("SELECT SLEEP(20)")
    return cursor.fetchone()[0]


@pytest_twisted.ensureDeferred
async def test_a_cancelled_query_is_interrupted_and_frees_the_connection(db_url):
    """Cancelling the Deferred of a running interaction interrupts it on the
    database (sqlite3 interrupt / KILL QUERY), so the next query on the same
    pool runs at once instead of after the abandoned one."""
    store = Store(db_url, reactor, batch_interval=60)
    store.startService()
    try:
        await store.ensure_schema()
        slow = slow_sqlite_query if db_url.startswith("sqlite") else slow_mysql_query
        if db_url.startswith("mysql"):
            store.pool.max = 1  # one connection: the next query would wait behind the slow one
        running = Deferred.fromCoroutine(store._run(slow))
        outcome = []
        running.addErrback(lambda f: outcome.append(f.check(CancelledError)))
        await sleep(0.3)
        running.cancel()
        assert outcome == [CancelledError]
        started = time.monotonic()
        assert await store.fetchall("SELECT 1") == [(1,)]
        # The slow query would hold the connection for many seconds more.
        assert time.monotonic() - started < 5
    finally:
        await store.stopService()


@pytest_twisted.ensureDeferred
async def test_readiness_and_user_queries_use_their_own_connection(db_url):
    """check() and store.system answer while the main pool is busy."""
    store = Store(db_url, reactor, batch_interval=60)
    store.startService()
    try:
        await store.ensure_schema()
        if db_url.startswith("mysql"):
            store.pool.max = 1
        slow = slow_sqlite_query if db_url.startswith("sqlite") else slow_mysql_query
        busy = Deferred.fromCoroutine(store._run(slow))
        busy.addErrback(lambda f: f.trap(CancelledError))
        await sleep(0.3)
        assert not busy.called
        assert await store.check() is True
        assert await store.system.fetchall("SELECT COUNT(*) FROM users") == [(0,)]
        assert not busy.called  # answered while the main connection was still busy
        busy.cancel()
    finally:
        await store.stopService()


# ----- A over real sockets: a history flood


async def fill_history(store, metrics: list[str], samples_per_metric: int, host: str = "testhost") -> None:
    """A day of samples for `metrics`, ending a second ago, written through
    the daemon's own store (its chunks, as it writes them), in batches the
    store's queue bound holds."""
    now = now_ms()
    step = 86_400_000 // samples_per_metric
    for i in range(samples_per_metric):
        ts = now - 1000 - (samples_per_metric - i) * step
        store.record(StreamMessage(0, METRICS_UPDATE, ts, host, {metric: float(i % 100) for metric in metrics}))
        if (i + 1) % 10_000 == 0:
            await store.flush()
    await store.flush()


FLOOD_METRICS = ["cpu_usage", "memory_usage", "disk_usage", "load_1", "load_5"]


async def flood(client, stop: list, counts: dict) -> None:
    """Maximal history requests, one after each reply (two in flight)."""
    request = {"metrics": FLOOD_METRICS, "from": "-23h", "max_points": 5000}  # the raw tier
    number = 0
    in_flight = 0
    while not stop:
        while in_flight < 2 and not stop:
            number += 1
            client.send({"type": "history", "correlation_id": f"h{number}", "data": request})
            in_flight += 1
        try:
            reply = await client.recv(timeout=30)
        except Exception:
            return  # closed
        if reply.get("correlation_id", "") and str(reply["correlation_id"]).startswith("h"):
            in_flight -= 1
            kind = reply["type"] if reply["type"] != "error" else reply["data"]["code"]
            counts[kind] = counts.get(kind, 0) + 1


@pytest_twisted.ensureDeferred
async def test_a_history_flood_is_refused_while_ready_login_and_revocation_keep_working(make_settings, tmp_path):
    """One viewer, five connections, maximal history requests as fast as the
    replies come: the queue stays bounded (rate_limited instead of waiting),
    /api/ready and a login answer during the flood, and disabling the
    viewer with `dashd user disable` closes all five connections within the
    documented 5 s revocation bound."""
    settings = make_settings(
        messages_per_second="1000",
        message_burst="1000",
        query_concurrency="1",
        query_queue="2",
        query_max_cost="1000000000",
        query_user_cost_per_second="1000000000",
        # SQLite also under DASHD_TEST_DB=mysql: `dashd user disable --state-dir` below
        # opens the state directory's database.
        db=f"sqlite:///{tmp_path / 'state' / 'dashd.db'}",
    )
    daemon = await start_daemon(settings)
    clients = []
    stop: list = []
    try:
        await fill_history(daemon.core.store, FLOOD_METRICS, 60_000)
        await daemon.core.users.add("alice", "viewer", "alice-password-1")
        clients = [await authed(daemon, subject="alice") for _ in range(5)]
        counts: dict = {}
        floods = [Deferred.fromCoroutine(flood(client, stop, counts)) for client in clients]
        await sleep(1.5)
        queries = daemon.core.queries
        assert queries.waiting <= 2 and queries.running <= 1

        ready = await within(5, http("GET", daemon.url("/api/ready", "http")))
        assert ready.status == 200, ready.body
        password = (tmp_path / "state" / "initial-admin-password").read_text().strip()
        login = await within(
            5, http("POST", daemon.url("/api/login", "http"), json_body={"username": "admin", "password": password})
        )
        assert login.status == 200, login.body

        disabled = await deferToThread(
            run, str(BIN / "dashd"), "user", "disable", "alice", "--state-dir", str(tmp_path / "state")
        )
        assert disabled.returncode == 0, disabled.stderr
        codes = [(await client.closed(timeout=5 + 1))[0] for client in clients]
        assert codes == [4001] * 5
        # Their queries went with them: dropped from the queue or interrupted.
        assert queries.stats.cancelled > 0
        for _ in range(50):
            if queries.running == 0 and queries.waiting == 0:
                break
            await sleep(0.1)
        assert (queries.running, queries.waiting) == (0, 0)
        stop.append(True)
        for d in floods:
            d.cancel()  # they wait for replies that will not come on closed connections
        # The flood was refused. Whether any of its own maximal requests was
        # served in between depends on the machine's speed, so it is not asserted;
        # that the daemon kept serving is (ready, login, revocation above).
        assert counts.get("rate_limited", 0) > 0, counts
    finally:
        stop.append(True)
        for client in clients:
            client.abort()
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_history_and_stats_over_the_cost_limit_are_too_large_over_websocket_and_http(make_settings):
    daemon = await start_daemon(make_settings(query_max_cost="1000"))
    try:
        client = await authed(daemon)
        reply = await client.request("history", {"metrics": ["cpu_usage"], "from": "-1h"})
        assert reply["type"] == "error" and reply["data"]["code"] == "too_large"
        assert reply["data"]["details"]["max_cost"] == 1000
        response = await http(
            "GET",
            daemon.url("/api/history?metrics=cpu_usage&from=-1h", "http"),
            headers={"Authorization": f"Bearer {daemon.token('viewer')}"},
        )
        assert response.status == 413 and response.json()["error"]["code"] == "too_large"
        small = await client.request("history", {"metrics": ["cpu_usage"], "from": "-10s", "max_points": 10})
        assert small["type"] == "history"
        stats = await client.request("stats", {"metrics": ["cpu_usage"], "window": "1h"})
        assert stats["type"] == "error" and stats["data"]["code"] == "too_large"
        metrics = await http("GET", daemon.url("/metrics", "http"))
        assert 'dashd_query_refused_total{reason="too_large"} 3.0' in metrics.body.decode()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_users_query_budget_is_refused_with_rate_limited_and_retry_after(make_settings):
    daemon = await start_daemon(make_settings(query_max_cost="20000", query_user_cost_per_second="100"))
    try:
        first, second = await authed(daemon, subject="carol"), await authed(daemon, subject="carol")
        # 60-second buckets: read from raw samples, 15,000 rows at 0.2 s (wider
        # buckets would read the 1-minute tier and cost 50 rows).
        request = {"metrics": ["cpu_usage"], "from": "-50m", "max_points": 50}
        assert (await first.request("history", request))["type"] == "history"
        reply = await second.request("history", request)
        assert reply["type"] == "error" and reply["data"]["code"] == "rate_limited"
        assert reply["data"]["details"]["retry_after"] > 1
    finally:
        await daemon.stop()


# ----- B over real sockets: a client that never reads


def ws_frame(payload: bytes) -> bytes:
    """A masked client text frame (mask of zeros: the payload as is)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, 0x80 | length))
    elif length > 0xFFFF:
        raise ValueError(length)
    else:
        header = bytes((0x81, 0x80 | 126)) + length.to_bytes(2, "big")
    return header + b"\0\0\0\0" + payload


class RawClient:
    """A WebSocket client on a plain socket that never reads after the
    handshake (its kernel receive buffer is tiny) and authenticates by
    message."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(
            (
                f"GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert b" 101 " in response.split(b"\r\n")[0]

    def close(self) -> None:
        self.sock.close()


def held_bytes(session) -> int:
    """What the daemon holds in user space for one client: its send queue
    and Twisted's write buffer."""
    transport = session.sink.transport
    queued = sum(len(frame.payload) for frame in session.stream._queue)
    return queued + len(transport.dataBuffer) + sum(len(chunk) for chunk in transport._tempDataBuffer)


@pytest_twisted.ensureDeferred
async def test_a_client_that_never_reads_and_spams_resume_and_history_stays_bounded(make_settings):
    """20 resume {after_seq: 0} and 5 history requests a second from a
    client that never reads: the replay waits for the client instead of
    filling memory, further resumes and history requests are refused, the
    daemon never holds more than the byte bound (plus Twisted's buffer and
    one frame) for it, and it is closed (1013) after the slow-consumer
    timeout."""
    daemon = await start_daemon(
        make_settings(
            messages_per_second="1000",
            message_burst="1000",
            slow_consumer_timeout="3s",
            send_buffer="16KiB",
            send_queue_bytes="256KiB",
        )
    )
    sleeper = None
    try:
        hub = daemon.core.hub
        for index in range(6000):  # ~2 MB of replay in the ring
            hub.publish(
                "notification",
                now_ms(),
                body={"id": f"n{index}", "level": "info", "title": "t", "message": "x" * 300, "source": "test"},
            )
        sleeper = await deferToThread(RawClient, daemon.port)
        token = daemon.token("viewer", subject="sleeper").encode()
        # Authenticated by message and resuming from 0: nothing was sent live
        # before, so the whole ring is due.
        await deferToThread(
            sleeper.sock.sendall, ws_frame(b'{"type":"auth","data":{"resume_after_seq":0,"token":"' + token + b'"}}')
        )
        await sleep(0.2)
        session = next(s for s in daemon.core.connections if s.principal and s.principal.subject == "sleeper")
        resume = ws_frame(b'{"type":"resume","correlation_id":"r","data":{"after_seq":0}}')
        history = ws_frame(
            b'{"type":"history","correlation_id":"h","data":{"metrics":["cpu_usage"],"from":"-1h","max_points":5000}}'
        )
        peak = 0
        for tick in range(60):  # 3 s
            if session.closed:
                break
            await deferToThread(sleeper.sock.sendall, resume)
            if tick % 4 == 0:
                await deferToThread(sleeper.sock.sendall, history)
            peak = max(peak, held_bytes(session))
            await sleep(0.05)
        while not session.closed and peak >= 0:
            peak = max(peak, held_bytes(session))
            await sleep(0.1)
        # 256 KiB queue + Twisted's 64 KiB high-water mark + one history reply (~200 KiB).
        assert peak < 256 * KIB + 64 * KIB + 300 * KIB, peak
        assert session.stream.stats.slow_closes == 1
        sent = session.stream.stats.sent
        assert sent < 6000  # the replay stopped when the client stopped reading
    finally:
        if sleeper is not None:
            sleeper.close()
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_second_resume_while_one_replays_is_refused(make_settings):
    daemon = await start_daemon(make_settings(messages_per_second="1000", message_burst="1000"))
    try:
        hub = daemon.core.hub
        for index in range(3000):
            hub.publish(
                "notification",
                now_ms(),
                body={"id": f"n{index}", "level": "info", "title": "t", "message": "x" * 300, "source": "test"},
            )
        client = await authed(daemon)
        client.send({"type": "resume", "correlation_id": "r1", "data": {"after_seq": 0}})
        client.send({"type": "resume", "correlation_id": "r2", "data": {"after_seq": 0}})
        second = await client.reply_to("r2")
        first = await client.reply_to("r1", timeout=30)
        assert second["type"] == "error" and second["data"]["code"] == "rate_limited"
        assert first["type"] == "resume" and first["data"]["replayed"] >= 3000
    finally:
        await daemon.stop()


# ----- D over real sockets: a flooding agent


def batch(start_ms: int, count: int, metrics: int = 200, host: str = "agent-a") -> list[dict]:
    values = {f"m{index}": float(index) for index in range(metrics)}
    return [{"host": host, "timestamp": iso_ms(start_ms + i), "metrics": values} for i in range(count)]


async def ingest_client(daemon, subject: str = "agent-a"):
    client = await connect(daemon.url("/ingest"), token=daemon.token("agent", subject=subject))
    assert (await client.recv())["type"] == "connection_ack"
    return client


def refused_count(body: bytes, reason: str) -> float:
    for line in body.decode().splitlines():
        if line.startswith(f'dashd_ingest_refused_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest_twisted.ensureDeferred
async def test_a_flooding_agent_is_slowed_with_rate_limited_and_counted(make_settings):
    """200-metric samples at the message rate: past the per-host sample
    rate the batches are refused (rate_limited with retry_after), nothing
    of a refused batch reaches the store or the viewers, and the refusals
    are counted for Prometheus."""
    daemon = await start_daemon(
        make_settings(
            agent_samples_per_second="100",
            store_queue="1000000",
            messages_per_second="1000",
            message_burst="1000",
            max_message_size="16MiB",
            max_frame_size="16MiB",
        )
    )
    try:
        agent = await ingest_client(daemon)
        start = now_ms() - 60_000
        replies = []
        for number in range(6):
            agent.send(
                {
                    "type": "samples",
                    "correlation_id": f"b{number}",
                    "data": {"samples": batch(start + number * 1000, 200)},
                }
            )
        while len(replies) < 6:  # refusals come back before the accepted batch's confirmation
            message = await agent.recv(timeout=30)
            if str(message.get("correlation_id", "")).startswith("b"):
                replies.append(message)
        accepted = [r for r in replies if r["type"] == "samples"]
        refused = [r for r in replies if r["type"] == "error"]
        assert accepted and refused
        assert {r["data"]["code"] for r in refused} == {"rate_limited"}
        assert all(r["data"]["details"]["retry_after"] > 0 for r in refused)
        stored = await daemon.core.store.sample_times("agent-a", 0, 2**62)
        assert len(stored) == sum(r["data"]["accepted"] for r in accepted)
        metrics = await http("GET", daemon.url("/metrics", "http"))
        assert refused_count(metrics.body, "sample_rate") == len(refused)
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_an_agent_over_its_series_limit_is_refused_too_large(make_settings):
    daemon = await start_daemon(make_settings(agent_max_series="10"))
    try:
        agent = await ingest_client(daemon)
        agent.send({"type": "samples", "correlation_id": "b1", "data": {"samples": batch(now_ms() - 5000, 1, 10)}})
        assert (await agent.reply_to("b1"))["type"] == "samples"
        agent.send({"type": "samples", "correlation_id": "b2", "data": {"samples": batch(now_ms() - 4000, 1, 11)}})
        reply = await agent.reply_to("b2")
        assert reply["type"] == "error" and reply["data"]["code"] == "too_large"
        assert reply["data"]["details"] == {"max_series": 10}
        metrics = await http("GET", daemon.url("/metrics", "http"))
        assert refused_count(metrics.body, "series") == 1
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_samples_the_store_could_not_write_are_not_acknowledged(make_settings, monkeypatch):
    """The write fails: the agent gets `unavailable`, not a confirmation,
    and its resend after the store recovers is accepted (not a duplicate)."""
    daemon = await start_daemon(make_settings())
    try:
        store = daemon.core.store
        original = store._write_batch

        def failing(cursor, *args):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(store, "_write_batch", failing)
        agent = await ingest_client(daemon)
        samples = batch(now_ms() - 5000, 3, 5)
        agent.send({"type": "samples", "correlation_id": "b1", "data": {"samples": samples}})
        reply = await agent.reply_to("b1")
        assert reply["type"] == "error" and reply["data"]["code"] == "unavailable"
        monkeypatch.setattr(store, "_write_batch", original)
        agent.send({"type": "samples", "correlation_id": "b2", "data": {"samples": samples}})
        again = await agent.reply_to("b2")
        assert again["type"] == "samples" and again["data"]["accepted"] + again["data"]["duplicates"] == 3
        stored = await store.sample_times("agent-a", 0, 2**62)
        assert len(stored) == 3
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_durability_ticket_is_false_when_rows_were_dropped_before_the_write(tmp_path):
    """Store.when_written: a queue overflow before the write makes the
    ticket False even though the write itself succeeded."""
    from dashd.stream.streams import METRICS_UPDATE, StreamMessage

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", reactor, batch_interval=60, max_queue_rows=100)
    store.startService()
    try:
        await store.ensure_schema()
        store.record(StreamMessage(1, METRICS_UPDATE, now_ms(), "h", {"m": 1.0}))
        in_flight = store.flush()  # takes message 1; what follows waits for the next write
        store.record(StreamMessage(2, METRICS_UPDATE, now_ms(), "h", {f"m{i}": 1.0 for i in range(60)}))
        ticket = store.when_written()
        store.record(StreamMessage(3, METRICS_UPDATE, now_ms(), "h", {f"m{i}": 1.0 for i in range(60)}))
        assert store._dropped == 20  # the oldest rows of message 2
        assert await in_flight == 1
        assert await ticket is False
        store.record(StreamMessage(4, METRICS_UPDATE, now_ms(), "h", {"m": 1.0}))
        assert await store.when_written() is True
    finally:
        await store.stopService()


def test_the_ingest_service_checks_limits_before_publishing():
    clock = Clock()
    published = []
    service = IngestService(
        lambda s: published.append(s) or succeed(None),
        None,
        None,
        limits=AgentLimits(samples_per_second=1.0, max_series=5),
        clock=clock,
        durable=lambda: succeed(True),
    )
    first = [Sample("h", 1_800_000_000_000 + i, {"a": 1.0}) for i in range(500)]
    assert Deferred.fromCoroutine(service.accept("h", first)).result.accepted == 500
    refused = Deferred.fromCoroutine(service.accept("h", [Sample("h", 1_800_000_001_000, {"a": 1.0})]))
    error = refused.result.value
    refused.addErrback(lambda f: None)
    assert isinstance(error, ProtocolError) and error.code == "rate_limited"
    assert error.details["retry_after"] == pytest.approx(1.0)
    assert len(published) == 500


@pytest_twisted.ensureDeferred
async def test_the_agent_backs_off_on_rate_limited_and_delivers_everything(make_settings):
    """A real agent with a backlog against a hub that allows 200 samples/s:
    it is told to slow down, waits retry_after, and in the end every sample
    is confirmed and stored exactly once."""
    daemon = await start_daemon(make_settings(agent_samples_per_second="200"))
    agent = build_agent(
        reactor,
        hub=daemon.url("/ingest"),
        token=daemon.token("agent", subject="agent-b"),
        host="agent-b",
        interval=60,
        batch_interval=0.05,
    )
    start = now_ms() - 600_000
    for index in range(2000):
        agent.buffer.add(Sample("agent-b", start + index * 10, {"cpu_usage": float(index % 100)}))
    agent.startService()
    try:
        for _ in range(400):
            if agent.uplink.confirmed >= 2000:
                break
            await sleep(0.05)
        assert agent.uplink.confirmed >= 2000 and agent.uplink.held_off > 0
    finally:
        await agent.stopService()
        await daemon.core.store.flush()
        times = [
            ts
            for _seq, host, ts, _metric, _value in await stored_rows(daemon.core.store.db_url)
            if host == "agent-b" and ts < start + 20_000
        ]
        stored = (len(times), len(set(times)))
        await daemon.stop()
    assert stored == (2000, 2000)


def test_the_uplink_holds_off_for_the_hubs_retry_after():
    clock = Clock()
    buffer = SampleBuffer()
    for index in range(10):
        buffer.add(Sample("h", 1_800_000_000_000 + index, {"a": 1.0}))
    uplink = Uplink(buffer, clock, batch_size=5)
    sent = []

    class Protocol:
        def send_bytes(self, payload: bytes) -> None:
            sent.append(payload)

    protocol = Protocol()
    uplink.opened(protocol)
    uplink.received(protocol, {"type": "connection_ack", "data": {"limits": {}}})
    assert len(sent) == 2
    uplink.received(
        protocol,
        {"type": "error", "correlation_id": "b1", "data": {"code": "rate_limited", "details": {"retry_after": 2.5}}},
    )
    uplink.pump()
    assert len(sent) == 2  # held off
    clock.advance(2.5)
    assert len(sent) == 3  # resent after retry_after
