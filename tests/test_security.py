"""Security over real loopback connections: login sessions, roles, TLS,
origin checks, connection limits, timeouts, and hostile input."""

from __future__ import annotations

import json
import os
import ssl
import stat

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.threads import deferToThread
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as sync_connect

from conftest import start_daemon
from fakes import RecordingSink, authed, memory_core, sleep
from httpclient import http
from wsclient import connect


def handshake_status(url: str, **kwargs) -> int:
    """HTTP status of a handshake made by an independent client (101 when accepted)."""
    try:
        with sync_connect(url, open_timeout=5, **kwargs):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


async def admin_password(daemon) -> str:
    path = os.path.join(daemon.settings.state_dir, "initial-admin-password")
    return open(path).read().strip()


# ----- users and sessions


@pytest_twisted.ensureDeferred
async def test_first_start_creates_admin_with_a_0600_password_file(daemon):
    path = os.path.join(daemon.settings.state_dir, "initial-admin-password")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    users = await daemon.core.users.list()
    assert [(u["name"], u["role"]) for u in users] == [("admin", "admin")]


@pytest_twisted.ensureDeferred
async def test_login_refresh_logout_and_the_revoked_session_is_closed(daemon, logged_failures):
    password = await admin_password(daemon)
    login = await http("POST", daemon.url("/api/login", "http"), json_body={"username": "admin", "password": password})
    assert login.status == 200, login.body
    body = login.json()
    assert body["token_type"] == "Bearer" and body["role"] == "admin" and body["expires_in"] == 900
    cookie = login.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    cookie_value = cookie.split(";")[0]
    refreshed = await http("POST", daemon.url("/api/refresh", "http"), headers={"Cookie": cookie_value})
    assert refreshed.status == 200 and refreshed.json()["access_token"]
    client = await authed(daemon, token=refreshed.json()["access_token"])
    out = await http("POST", daemon.url("/api/logout", "http"), headers={"Cookie": cookie_value})
    assert out.status == 204
    assert (await client.closed())[0] == 4001  # the revoked session's socket is closed
    again = await http("POST", daemon.url("/api/refresh", "http"), headers={"Cookie": cookie_value})
    assert again.status == 401
    reuse = await connect(daemon.url(), token=body["access_token"])
    assert (await reuse.closed())[0] == 4001
    assert password not in json.dumps([str(e) for e in logged_failures])


@pytest_twisted.ensureDeferred
async def test_bad_login_inputs_get_json_errors(daemon):
    url = daemon.url("/api/login", "http")
    wrong = await http("POST", url, json_body={"username": "admin", "password": "wrong-password"})
    assert wrong.status == 401 and wrong.json()["error"]["code"] == "unauthorized"
    not_json = await http("POST", url, body=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status == 400 and not_json.json()["error"]["code"] == "bad_json"
    form = await http(
        "POST", url, body=b"username=admin", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status == 400
    huge = await http(
        "POST", url, body=b'{"username": "' + b"a" * 20000 + b'"}', headers={"Content-Type": "application/json"}
    )
    assert huge.status == 413
    typed = await http("POST", url, json_body={"username": ["admin"], "password": 5})
    assert typed.status == 401
    no_cookie = await http("POST", daemon.url("/api/refresh", "http"))
    assert no_cookie.status == 401


@pytest_twisted.ensureDeferred
async def test_repeated_failed_logins_are_throttled(daemon):
    url = daemon.url("/api/login", "http")
    statuses = []
    for _ in range(7):
        response = await http("POST", url, json_body={"username": "admin", "password": "wrong-password"})
        statuses.append(response.status)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    assert int(response.header("Retry-After")) >= 1
    # even the right password waits out the back-off
    right = await http("POST", url, json_body={"username": "admin", "password": await admin_password(daemon)})
    assert right.status == 429


@pytest_twisted.ensureDeferred
async def test_cross_site_login_is_refused(daemon):
    response = await http(
        "POST",
        daemon.url("/api/login", "http"),
        headers={"Origin": "https://evil.example"},
        json_body={"username": "admin", "password": "x" * 10},
    )
    assert response.status == 403


@pytest_twisted.ensureDeferred
async def test_connection_is_closed_with_4001_when_its_token_expires(daemon):
    client = await authed(daemon, token=daemon.token("viewer", ttl=2))
    code, _ = await client.closed(timeout=6)
    assert code == 4001
    assert any(m["type"] == "error" and m["data"]["code"] == "unauthorized" for m in client.received)


@pytest_twisted.ensureDeferred
async def test_disabling_a_user_from_the_cli_closes_their_sockets(make_settings):
    daemon = await start_daemon(make_settings())
    try:
        users = daemon.core.users
        await users.add("carol", "viewer", "carols-password")
        result = await users.login("carol", "carols-password", "127.0.0.1")
        client = await authed(daemon, token=result.access_token)
        # Another process (dashd user disable) writes the database only:
        await daemon.core.store.execute("UPDATE users SET disabled = 1 WHERE name = ?", ("carol",))
        code, _ = await client.closed(timeout=10)  # the revocation poll runs every 5 s
        assert code == 4001
    finally:
        await daemon.stop()


# ----- roles


@pytest_twisted.ensureDeferred
async def test_roles_are_checked_per_message_and_the_connection_stays_open(daemon):
    viewer = await authed(daemon, role="viewer")
    operator = await authed(daemon, role="operator")
    admin = await authed(daemon, role="admin")
    for client, type_, data in [
        (viewer, "ack", {"notification_id": "n-1"}),
        (viewer, "broadcast", {"title": "x"}),
        (operator, "broadcast", {"title": "x"}),
        (operator, "settings_set", {"interval": 2}),
        (operator, "rule_set", {"name": "r", "metric": "cpu_usage", "op": ">", "threshold": 1}),
        (viewer, "clients_list", {}),
        (operator, "client_disconnect", {"session_id": "x"}),
    ]:
        reply = await client.request(type_, data)
        assert reply["type"] == "error" and reply["data"]["code"] == "forbidden", (type_, reply)
    assert (await viewer.request("ping"))["type"] == "pong"
    assert (await viewer.request("history", {"metrics": ["cpu_usage"]}))["type"] == "history"
    assert (await admin.request("settings_set", {"interval": 0.5}))["data"]["interval"] == 0.5
    assert daemon.service.collector.interval == 0.5


@pytest_twisted.ensureDeferred
async def test_admin_lists_and_disconnects_clients_and_it_is_audited(daemon):
    admin = await authed(daemon, role="admin")
    victim = await authed(daemon, "/metrics")
    listed = await admin.request("clients_list")
    sessions = {c["endpoint"]: c for c in listed["data"]["clients"]}
    assert sessions["metrics"]["role"] == "viewer" and sessions["metrics"]["peer"] == "127.0.0.1"
    reply = await admin.request("client_disconnect", {"session_id": sessions["metrics"]["session_id"]})
    assert reply["type"] == "client_disconnect"
    assert (await victim.closed())[0] == 4002
    await admin.request("broadcast", {"level": "info", "title": "hello", "message": "all"})
    await sleep(0.3)
    rows = await daemon.core.store.fetchall("SELECT actor, action, peer FROM audit_log ORDER BY id")
    assert ("test-admin", "client_disconnect", "127.0.0.1") in rows and ("test-admin", "broadcast", "127.0.0.1") in rows


# ----- TLS


@pytest.fixture
def tls_settings(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    return make_settings(tls_listen=f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"), cert


@pytest_twisted.ensureDeferred
async def test_wss_serves_the_same_site_and_refuses_old_tls(tls_settings):
    settings, cert = tls_settings
    daemon = await start_daemon(settings)
    try:
        tls_port = daemon.service.listeners[0].port.getHost().port
        token = daemon.token()

        def wss_round_trip():
            context = ssl.create_default_context(cafile=cert)
            with sync_connect(
                f"wss://localhost:{tls_port}/dashboard",
                ssl=context,
                open_timeout=20,
                additional_headers={"Authorization": f"Bearer {token}"},
            ) as ws:
                ack = json.loads(ws.recv(timeout=20))
                update = json.loads(ws.recv(timeout=20))
                return ack["type"], update["type"], ws.transport if hasattr(ws, "transport") else None

        ack_type, update_type, _ = await deferToThread(wss_round_trip)
        assert (ack_type, update_type) == ("connection_ack", "metrics_update")

        def old_tls(version):
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = version
            context.maximum_version = version
            import socket

            with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
                try:
                    with context.wrap_socket(raw, server_hostname="localhost") as tls:
                        return tls.version()
                except (ssl.SSLError, OSError) as e:
                    return f"refused: {type(e).__name__}"

        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            assert (await deferToThread(old_tls, version)).startswith("refused"), version
        assert await deferToThread(old_tls, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"

        def login_cookie():
            import http.client

            context = ssl.create_default_context(cafile=cert)
            connection = http.client.HTTPSConnection("localhost", tls_port, context=context, timeout=5)
            connection.request(
                "POST",
                "/api/login",
                body=json.dumps({"username": "admin", "password": "wrong-pass"}),
                headers={"Content-Type": "application/json"},
            )
            return connection.getresponse().status

        assert await deferToThread(login_cookie) == 401
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_login_cookie_is_secure_over_tls(tls_settings):
    settings, cert = tls_settings
    daemon = await start_daemon(settings)
    try:
        tls_port = daemon.service.listeners[0].port.getHost().port
        password = await admin_password(daemon)

        def login():
            import http.client

            connection = http.client.HTTPSConnection(
                "localhost", tls_port, timeout=5, context=ssl.create_default_context(cafile=cert)
            )
            connection.request(
                "POST",
                "/api/login",
                body=json.dumps({"username": "admin", "password": password}),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            return response.status, response.getheader("Set-Cookie")

        status, cookie = await deferToThread(login)
        assert status == 200 and "Secure" in cookie and "HttpOnly" in cookie
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_plain_http_redirects_to_https_when_asked(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    daemon = await start_daemon(
        make_settings(tls_listen=f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1", redirect_http="true")
    )
    try:
        plain = daemon.service.listeners[1].port.getHost().port
        response = await http("GET", f"http://127.0.0.1:{plain}/api/health")
        assert response.status == 308 and response.header("Location").startswith("https://127.0.0.1")
    finally:
        await daemon.stop()


def test_dev_cert_writes_a_private_key_only_we_can_read(tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path))
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert open(cert).read().startswith("-----BEGIN CERTIFICATE-----")


# ----- origin checks and connection limits


@pytest_twisted.ensureDeferred
async def test_browser_handshake_from_a_foreign_origin_is_refused_with_403(daemon):
    url = daemon.url("/dashboard")
    port = daemon.port
    assert await deferToThread(handshake_status, url, origin="https://evil.example") == 403
    assert await deferToThread(handshake_status, url, origin=f"http://127.0.0.1:{port}") == 101
    assert await deferToThread(handshake_status, url) == 101  # no Origin: not a browser


@pytest_twisted.ensureDeferred
async def test_allowed_origins_setting(make_settings):
    daemon = await start_daemon(make_settings(allowed_origins="https://dash.example.com"))
    try:
        url = daemon.url("/dashboard")
        assert await deferToThread(handshake_status, url, origin="https://dash.example.com") == 101
        assert await deferToThread(handshake_status, url, origin="https://other.example.com") == 403
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_connection_limits_refuse_with_429_per_address_and_503_in_total(make_settings):
    daemon = await start_daemon(make_settings(max_connections_per_ip="2", max_connections="3"))
    try:
        clients = [await connect(daemon.url(), token=daemon.token()) for _ in range(2)]
        assert await deferToThread(handshake_status, daemon.url()) == 429
        daemon.core.connections.max_per_address = 10
        clients.append(await connect(daemon.url(), token=daemon.token()))
        assert await deferToThread(handshake_status, daemon.url()) == 503
        clients[0].close()
        await clients[0].closed()
        assert await deferToThread(handshake_status, daemon.url()) == 101
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_idle_connection_is_closed(make_settings):
    daemon = await start_daemon(make_settings(idle_timeout="1s", auth_timeout="5s"))
    try:
        client = await authed(daemon)
        code, reason = await client.closed(timeout=5)
        assert code == 1000 and "idle" in reason
    finally:
        await daemon.stop()


# ----- hostile input

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
MESSAGE_TYPES = st.sampled_from(
    [
        "auth",
        "ping",
        "subscribe",
        "unsubscribe",
        "set_rate",
        "resume",
        "history",
        "stats",
        "notifications",
        "ack",
        "rule_list",
        "rule_set",
        "rule_delete",
        "broadcast",
        "settings_get",
        "settings_set",
        "clients_list",
        "client_disconnect",
        "nope",
        "",
    ]
)
FIELDS = st.sampled_from(
    [
        "metrics",
        "hosts",
        "max_hz",
        "after_seq",
        "from",
        "to",
        "max_points",
        "window",
        "token",
        "notification_id",
        "name",
        "metric",
        "op",
        "threshold",
        "level",
        "title",
        "message",
        "interval",
        "session_id",
        "limit",
        "for",
        "clear",
    ]
)
MESSAGES = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda t: t.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"type": MESSAGE_TYPES},
        optional={
            "data": st.dictionaries(FIELDS, JSON_VALUES, max_size=5) | JSON_VALUES,
            "correlation_id": JSON_VALUES,
        },
    ).map(lambda m: json.dumps(m).encode()),
    st.integers(min_value=1, max_value=200).map(lambda depth: ("[" * depth + "]" * depth).encode()),
)


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    messages=st.lists(MESSAGES, min_size=1, max_size=6),
    role=st.sampled_from(["viewer", "operator", "admin"]),
    authenticated=st.booleans(),
)
def test_random_and_malformed_messages_get_typed_errors_and_never_crash(messages, role, authenticated):
    """Hypothesis throws garbage at the router of a session: every message is
    handled or answered with a typed error, the session closes only with a
    documented code, and nothing unhandled is logged."""
    from twisted.logger import globalLogPublisher

    from dashd.clients.session import ClientSession
    from dashd.errors import ERROR_CODES

    failures = []
    observer = lambda event: failures.append(event) if event.get("log_failure") is not None else None
    globalLogPublisher.addObserver(observer)
    core = memory_core()
    sink = RecordingSink()
    session = ClientSession(core.context, sink, "dashboard", "198.51.100.7")
    try:
        session.open(core.verifier.verify(core.tokens.mint("fuzzer", role, 60)[0]) if authenticated else None)
        for payload in messages:
            before = len(sink.frames)
            session.receive(payload)
            for frame in sink.messages[before:]:
                assert isinstance(frame, dict) and "type" in frame and "data" in frame
                if frame["type"] == "error":
                    assert frame["data"]["code"] in ERROR_CODES and frame["data"]["message"]
            if sink.close_code is not None:
                assert sink.close_code in (1000, 1003, 1008, 1009, 4001, 4002)
                break
    finally:
        session.lost()
        globalLogPublisher.removeObserver(observer)
    assert failures == [], failures[:1]


HOSTILE = [
    b"[" * 5000 + b"]" * 5000,
    b'{"type": "ping", "data": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}",
    b'{"type": "history", "data": {"metrics": ["cpu_usage"], "max_points": 1e309}}',
    b'{"type": "history", "data": {"metrics": ["cpu_usage"], "from": 1e300}}',
    b'{"type": "history", "data": {"metrics": ["cpu_usage"], "from": "-999999999d"}}',
    b'{"type": "set_rate", "data": {"max_hz": NaN}}',
    b'{"type": "set_rate", "data": {"max_hz": 1e-300}}',
    b'{"type": "resume", "data": {"after_seq": 99999999999999999999999}}',
    b'{"type": "subscribe", "data": {"metrics": ["\ud800"]}}',
    rb'{"type": "subscribe", "data": {"metrics": ["cpu_usage\u0000", "\u202e"]}}',
    rb'{"type": "\u00e9\u00e9\u00e9", "correlation_id": "\ud83d\ude00"}',
    b'{"type": "stats", "data": {"metrics": "*", "window": -5}}',
    b'{"type": "ack", "data": {"notification_id": null}}',
    b'{"type": "ping", "type": "broadcast"}',
    b'{"type": "rule_set", "data": {"name": "../../etc", "metric": "cpu_usage", "op": ">", "threshold": 1}}',
    b"\x00\x01\x02",
    b"null",
    b"",
]


@pytest_twisted.ensureDeferred
async def test_hostile_payloads_over_a_real_socket_never_hurt_the_daemon(daemon, logged_failures):
    bystander = await authed(daemon)
    attacker = await authed(daemon, role="admin")
    for payload in HOSTILE:
        attacker.send_raw(payload)
    await attacker.request("ping")  # everything before it has been handled
    assert attacker.close_info is None
    errors = [m for m in attacker.received if m["type"] == "error"]
    assert len(errors) >= len(HOSTILE) - 2
    assert all(
        e["data"]["code"] in ("bad_json", "bad_message", "unknown_type", "too_large", "forbidden") for e in errors
    ), errors
    first = await bystander.recv_type("metrics_update")
    second = await bystander.recv_type("metrics_update")
    assert second["seq"] > first["seq"]
    attacker.send_raw(b"\xff\xfe not utf-8")  # invalid UTF-8 in a text frame
    assert (await attacker.closed())[0] == 1007
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_a_flooding_client_does_not_delay_another_clients_updates(make_settings):
    daemon = await start_daemon(
        make_settings(interval="0.2", messages_per_second="10000", message_burst="10000", abuse_close_after="1h")
    )
    try:
        calm = await authed(daemon)
        flood = await authed(daemon)
        await calm.recv_type("metrics_update")
        stop = []

        def pump():
            for _ in range(50):
                flood.send({"type": "history", "data": {"metrics": ["*"], "from": "-1m", "max_points": 50}})
            if not stop:
                reactor.callLater(0, pump)

        pump()
        gaps = []
        previous = await calm.recv_type("metrics_update")
        import time

        last_arrival = time.monotonic()
        for _ in range(15):
            update = await calm.recv_type("metrics_update", timeout=2)
            now = time.monotonic()
            gaps.append(now - last_arrival)
            last_arrival = now
            assert update["seq"] > previous["seq"]
            previous = update
        stop.append(True)
        # Functional, not a timing assertion: every interval's update arrived
        # (no 2 s timeout above), in order, while the flood ran.
        assert len(gaps) == 15
    finally:
        await daemon.stop()
