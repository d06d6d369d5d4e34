"""Issue 11 over real sockets: login throttling under parallel attempts (1),
agent tokens on every route (3), the static root (2), request bodies (4),
slowloris (C) and the bounded throttle tables (6)."""

from __future__ import annotations

import os
import resource
import socket
import time

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from conftest import start_daemon
from httpclient import http
from wsclient import connect


def admin_password(daemon) -> str:
    return open(os.path.join(daemon.settings.state_dir, "initial-admin-password")).read().strip()


def parallel(*coroutines):
    return defer.gatherResults([defer.Deferred.fromCoroutine(c) for c in coroutines])


def raw_request(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh socket, read until the server closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


# ----- 1. login throttling counts attempts when they start


@pytest_twisted.ensureDeferred
async def test_forty_parallel_logins_for_one_user_check_at_most_five_passwords(daemon):
    url = daemon.url("/api/login", "http")
    bodies = [{"username": "admin", "password": f"wrong-password-{i}"} for i in range(39)]
    bodies.append({"username": "admin", "password": admin_password(daemon)})
    responses = await parallel(*(http("POST", url, json_body=body) for body in bodies))
    statuses = [r.status for r in responses]
    checked = statuses.count(401) + statuses.count(200)
    assert checked <= 5, statuses  # the documented budget, not 40 hashes
    assert statuses.count(429) >= 35
    assert all(int(r.header("Retry-After")) >= 1 for r in responses if r.status == 429)
    assert all(r.json()["error"]["code"] == "rate_limited" for r in responses if r.status == 429)


@pytest_twisted.ensureDeferred
async def test_a_login_flood_from_one_address_leaves_other_addresses_able_to_log_in(make_settings):
    daemon = await start_daemon(make_settings(trusted_proxies="127.0.0.1"))
    try:
        url = daemon.url("/api/login", "http")
        flood = [
            http(
                "POST",
                url,
                headers={"X-Forwarded-For": "203.0.113.9"},
                json_body={"username": f"nobody-{i}", "password": "not-the-password"},
            )
            for i in range(150)
        ]
        responses = await parallel(*flood)
        statuses = [r.status for r in responses]
        assert statuses.count(401) <= 5 and statuses.count(429) >= 145, statuses
        legit = await http(
            "POST",
            url,
            headers={"X-Forwarded-For": "198.51.100.2"},
            json_body={"username": "admin", "password": admin_password(daemon)},
        )
        assert legit.status == 200, legit.body
        assert daemon.core.users.hash_slots.in_flight == 0  # every slot given back
    finally:
        await daemon.stop()


def test_the_throttle_reserves_before_the_verdict_and_backs_off():
    from dashd.auth.throttle import LoginThrottle, LoginThrottled

    throttle = LoginThrottle(threshold=3, max_backoff=60)
    held = [throttle.reserve("alice", "10.0.0.1", 0) for _ in range(3)]
    with pytest.raises(LoginThrottled):
        throttle.reserve("alice", "10.0.0.2", 0)  # the user's budget is in flight
    for reservation in held:
        reservation.failed(1000)
    with pytest.raises(LoginThrottled) as refused:
        throttle.reserve("alice", "10.0.0.3", 1500)
    assert refused.value.retry_after == pytest.approx(0.5)
    after = throttle.reserve("alice", "10.0.0.3", 2001)  # back-off (1 s) over: one more attempt
    after.succeeded()
    throttle.reserve("alice", "10.0.0.3", 2002).cancelled()  # success forgot the failures


def test_hash_slots_are_bounded_per_address_and_in_total():
    from dashd.auth.throttle import HashSlots, LoginThrottled

    slots = HashSlots(per_address=2, total=3)
    slots.acquire("a"), slots.acquire("a")
    with pytest.raises(LoginThrottled):
        slots.acquire("a")
    slots.acquire("b")
    with pytest.raises(LoginThrottled):
        slots.acquire("c")
    slots.release("a")
    slots.acquire("c")
    assert slots.in_flight == 3


# ----- 6. bounded throttle tables, summarised log lines


def test_throttle_tables_are_lru_bounded_and_expire():
    from dashd.auth.throttle import LoginThrottle

    throttle = LoginThrottle(max_entries=100, max_backoff=60)
    for i in range(5000):
        throttle.reserve(f"user-{i}", f"10.0.{i // 250}.{i % 250}", i).failed(i)
    users, addresses = throttle.sizes()
    assert users <= 100 and addresses <= 100
    for i in range(3):  # long after: each insert sweeps up to 64 expired entries
        throttle.reserve(f"late-{i}", f"10.9.9.{i}", 10_000_000).cancelled()
    assert throttle.sizes() == (3, 3)


@pytest_twisted.ensureDeferred
async def test_throttled_login_spray_keeps_tables_bounded_and_logs_a_summary(daemon):
    from dashd.auth.throttle import LoginThrottle

    users = daemon.core.users
    users.throttle = LoginThrottle(max_entries=50)
    lines = []

    def observer(event):
        if event.get("log_namespace") == "dashd.auth.users":
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    try:
        url = daemon.url("/api/login", "http")
        for batch in range(6):
            await parallel(
                *(
                    http("POST", url, json_body={"username": f"spray-{batch}-{i}", "password": "x" * 10})
                    for i in range(50)
                )
            )
        assert max(users.throttle.sizes()) <= 50
        throttled = [line for line in lines if "throttled" in line]
        assert 1 <= len(throttled) <= 10  # not one line per request
        users.close()  # ends the window: the summary is written
        summary = [line for line in lines if "were not logged" in line]
        assert summary and any("login-throttled" in line for line in summary), lines[-3:]
    finally:
        globalLogPublisher.removeObserver(observer)


# ----- 3. agent tokens: refused everywhere but /ingest


def _routes(daemon):
    """Every HTTP route the daemon serves, read from its resource tree (so a
    new route is walked without editing this test), and its WebSocket endpoints."""
    from dashd.wire.web import WebSocketEndpoint

    root = daemon.service.listeners[0].factory.resource
    routes, sockets = [("GET", "/"), ("GET", "/index.html")], []
    for name, child in root.children.items():
        path = "/" + name.decode()
        routes.append(("GET", path))
        if isinstance(child, WebSocketEndpoint):
            sockets.append(path)
        for sub, leaf in getattr(child, "children", {}).items():
            for method in ("GET", "POST"):
                if hasattr(leaf, "render_" + method):
                    routes.append((method, f"{path}/{sub.decode()}"))
    return routes, sockets


@pytest_twisted.ensureDeferred
async def test_every_http_route_refuses_an_agent_token_and_serves_the_other_roles(daemon):
    routes, _ = _routes(daemon)
    assert ("GET", "/api/me") in routes and ("GET", "/api/history") in routes and ("POST", "/api/login") in routes
    tokens = {
        role: daemon.token(role, subject=f"host-{role}" if role == "agent" else None)
        for role in ("viewer", "operator", "admin", "agent")
    }
    tokens[None] = None
    for method, path in routes:
        for role, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await http(
                method, daemon.url(path, "http"), headers=headers, json_body={} if path == "/api/login" else None
            )
            if role == "agent" and path != "/ingest":
                assert response.status == 403, (method, path, response.status)
                assert response.json()["error"]["code"] == "forbidden"
            elif role not in ("agent", None) and path == "/ingest":
                assert response.status == 403, (method, path, role)  # /ingest takes agent tokens only
            else:
                assert response.status != 403, (method, path, role, response.body[:200])


@pytest_twisted.ensureDeferred
async def test_every_websocket_endpoint_admits_agents_only_at_ingest(daemon):
    _, sockets = _routes(daemon)
    assert sorted(sockets) == ["/dashboard", "/ingest", "/metrics", "/notifications"]
    agent = daemon.token("agent", subject="agent-a")
    for path in sockets:
        for role in ("viewer", "operator", "admin", "agent"):
            token = agent if role == "agent" else daemon.token(role)
            client = await connect(daemon.url(path), token=token)
            first = await client.recv()
            if (role == "agent") == (path == "/ingest"):
                assert first["type"] == "connection_ack", (path, role, first)
                client.close()
                await client.closed()
            else:
                assert first["type"] == "error" and first["data"]["code"] == "unauthorized", (path, role)
                assert (await client.closed())[0] == 4001
        if path != "/ingest":
            # ...and by the `auth` message after an unauthenticated handshake.
            client = await connect(daemon.url(path))
            client.send({"type": "auth", "data": {"token": agent}})
            assert (await client.closed())[0] == 4001


# ----- 2. static root containment


@pytest.fixture
def static_tree(tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>dashd</title>")
    (dist / "assets" / "app.js").write_text("console.log('app')")
    (dist / ".env").write_text("SECRET=dotfile-canary")
    for sibling in ("dist-backup", "dist.old", "outside"):
        (tmp_path / sibling).mkdir()
        (tmp_path / sibling / "canary.txt").write_text(f"canary-{sibling}")
    os.symlink(tmp_path / "outside" / "canary.txt", dist / "link.txt")
    return dist


@pytest_twisted.ensureDeferred
async def test_the_static_root_cannot_be_escaped(make_settings, static_tree):
    daemon = await start_daemon(make_settings(static=str(static_tree)))
    try:
        for path in (
            "/../dist-backup/canary.txt",
            "/assets/../../dist.old/canary.txt",
            "/%2e%2e/dist-backup/canary.txt",
            "/assets/%2e%2e/%2e%2e/dist.old/canary.txt",
            "/..%2fdist-backup/canary.txt",
            "/.env",
            "/assets/.%2e/.env",
            "/link.txt",
        ):
            # Raw bytes: an HTTP client library would normalise the dots away.
            response = await deferToThread(
                raw_request,
                daemon.port,
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode(),
            )
            assert status_of(response) == 404, (path, response[:200])
            assert b"canary" not in response
        served = await http("GET", daemon.url("/assets/app.js", "http"))
        assert served.status == 200 and b"console.log" in served.body
        route = await http("GET", daemon.url("/some/client/route", "http"))
        assert route.status == 200 and b"<title>dashd" in route.body
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_symlinks_out_of_the_static_root_are_served_only_when_allowed(make_settings, static_tree):
    daemon = await start_daemon(make_settings(static=str(static_tree), static_follow_symlinks="true"))
    try:
        response = await http("GET", daemon.url("/link.txt", "http"))
        assert response.status == 200 and response.body == b"canary-outside"
        dotfile = await http("GET", daemon.url("/.env", "http"))
        assert dotfile.status == 404  # dotfiles stay refused
    finally:
        await daemon.stop()


# ----- 4. request bodies


@pytest_twisted.ensureDeferred
async def test_request_bodies_are_refused_before_they_are_read(daemon):
    port = daemon.port
    # A 300 MB login announced, nothing sent: 413 at once, connection closed.
    huge = await deferToThread(
        raw_request,
        port,
        b"POST /api/login HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n",
    )
    assert status_of(huge) == 413 and b'"too_large"' in huge
    # Routes that take no body refuse one.
    for method, path, size in (
        ("POST", "/api/refresh", 65),
        ("POST", "/api/logout", 65),
        ("GET", "/api/health", 1),
        ("PUT", "/dashboard", 1),
        ("GET", "/", 1),
    ):
        response = await deferToThread(
            raw_request,
            port,
            f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {size}\r\n\r\n{'x' * size}".encode(),
        )
        assert status_of(response) == 413, (method, path, response[:120])
    # `{}` from clients that always send JSON is ignored where no body is read.
    empty = await http("POST", daemon.url("/api/refresh", "http"), json_body={})
    assert empty.status == 401 and empty.json()["error"]["code"] == "unauthorized"
    # A body without a length is counted as it streams.
    chunk = b"a" * 8192
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    streamed = await deferToThread(
        raw_request,
        port,
        b"POST /api/login HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
    )
    assert status_of(streamed) == 413
    # A login of a normal size still works.
    ok = await http(
        "POST", daemon.url("/api/login", "http"), json_body={"username": "admin", "password": admin_password(daemon)}
    )
    assert ok.status == 200


# ----- C. slowloris


@pytest_twisted.ensureDeferred
async def test_tcp_connections_are_capped_per_address_websockets_included(make_settings):
    daemon = await start_daemon(make_settings(max_tcp_connections_per_ip="4", request_timeout="30s"))
    try:
        sockets = [await connect(daemon.url(), token=daemon.token()) for _ in range(2)]
        idle = [socket.create_connection(("127.0.0.1", daemon.port)) for _ in range(2)]
        refused = await deferToThread(raw_request, daemon.port, b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert status_of(refused) == 429 and b"too many connections" in refused
        sockets[0].close()
        await sockets[0].closed()
        for sock in idle:
            sock.close()
        await deferToThread(time.sleep, 0.2)  # let the reactor see the closes
        health = await http("GET", daemon.url("/api/health", "http"))
        assert health.status == 200
    finally:
        await daemon.stop()


HEALTH_HEAD = b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n"
HANDSHAKE_HEAD = (
    b"GET /dashboard HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


def trickle_headers(port: int, every: float, limit: float, head: bytes = HEALTH_HEAD) -> tuple[bytes, float]:
    """A slowloris client: one header line every `every` seconds for up to
    `limit` seconds; returns what the server answered and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(head)
        n = 0
        while time.monotonic() - started < limit:
            try:
                sock.sendall(b"X-Trickle-%d: x\r\n" % n)
            except OSError:
                break
            n += 1
            sock.settimeout(every)
            try:
                data = sock.recv(65536)
                return data, time.monotonic() - started
            except TimeoutError:
                continue
    return b"", time.monotonic() - started


def keep_alive_then_trickle(port: int) -> tuple[bytes, bytes]:
    """One complete request, then a trickled second one on the same connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n")
        for n in range(60):
            sock.settimeout(0.3)
            try:
                return first, sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"X-Trickle-%d: x\r\n" % n)
    return first, b""


@pytest_twisted.ensureDeferred
async def test_a_trickled_request_is_cut_off_at_the_total_deadline(make_settings):
    daemon = await start_daemon(make_settings(request_timeout="2s"))
    try:
        answer, _ = await deferToThread(trickle_headers, daemon.port, 0.3, 20)
        assert status_of(answer) == 408 and b"did not arrive within 2s" in answer
        # An unfinished WebSocket handshake gets the same deadline.
        handshake = await deferToThread(trickle_headers, daemon.port, 0.3, 20, HANDSHAKE_HEAD)
        assert status_of(handshake[0]) == 408
        # A connection that sends nothing is closed quietly at the deadline.
        silent = await deferToThread(raw_request, daemon.port, b"", timeout=20)
        assert silent == b""
        # On a kept-alive connection the next request gets the same deadline.
        kept = await deferToThread(keep_alive_then_trickle, daemon.port)
        assert status_of(kept[0]) == 200 and status_of(kept[1]) == 408
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_the_open_files_limit_is_raised_at_start(make_settings):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip("the hard open-files limit is too low to test raising the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        daemon = await start_daemon(make_settings())
        try:
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 256
            # The gate keeps headroom below the limit for the store and logs.
            assert daemon.service.listeners[0].factory.guard.gate.total < resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        finally:
            await daemon.stop()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_gate_forgets_closed_connections_and_stays_bounded():
    from dashd.wire.httpguard import ConnectionGate

    class Transport:
        disconnected = False

    gate = ConnectionGate(per_address=3, total=1000, exempt=["10.0.0.9"])
    held = [Transport() for _ in range(3)]
    assert all(gate.admit("10.0.0.1", t) is None for t in held)
    assert gate.admit("10.0.0.1", Transport()).status == 429
    held[0].disconnected = True
    assert gate.admit("10.0.0.1", Transport()) is None  # swept before refusing
    assert all(gate.admit("10.0.0.9", Transport()) is None for _ in range(10))  # a trusted proxy
    churn = []
    for _ in range(5000):  # short-lived connections: dead entries do not pile up
        t = Transport()
        assert gate.admit("10.0.0.2", t) is None
        t.disconnected = True
        churn.append(t)
    assert len(gate._by_address["10.0.0.2"]) <= 64 * 2
    assert gate.count() == 3 + 10
    filler = [Transport() for _ in range(1000)]
    refusals = [gate.admit(f"192.0.{i // 250}.{i % 250}", t) for i, t in enumerate(filler)]
    assert refusals.count(None) == 1000 - 13 and refusals[-1].status == 503  # the total cap


def test_summarized_log_writes_a_few_lines_then_a_count_per_window():
    from twisted.internet.task import Clock
    from twisted.logger import Logger

    from dashd.ops.ratelog import SummarizedLog, printable

    events = []
    clock = Clock()
    summarized = SummarizedLog(Logger(observer=events.append), clock, per_window=3, window=60)
    written = [summarized.warn("flood", "line {n}", n=n) for n in range(10)]
    assert written == [True] * 3 + [False] * 7 and len(events) == 3
    clock.advance(60)
    assert formatEvent(events[-1]) == "7 more 'flood' lines in the last 60s were not logged (rate limit)"
    assert summarized.info("flood", "again") and len(events) == 5  # a new window
    summarized.stop()
    assert not clock.getDelayedCalls()
    assert printable("a\r\nb\x1b[0m\x85") == "a\\r\\nb\\x1b[0m\\x85"


@pytest_twisted.ensureDeferred
async def test_refused_handshakes_are_logged_a_few_times_not_once_each(daemon):
    from test_security import handshake_status

    lines = []
    observer = lambda event: lines.append(formatEvent(event)) if "refused a handshake" in formatEvent(event) else None
    globalLogPublisher.addObserver(observer)
    try:
        for _ in range(15):
            assert await deferToThread(handshake_status, daemon.url(), origin="https://evil.example") == 403
    finally:
        globalLogPublisher.removeObserver(observer)
    assert 1 <= len(lines) <= 10
