"""Issue 11 items 7, 8 and 9 over real sockets: allowed hosts and redirects
from configuration; CSP, HSTS, the Server header, TLS 1.2 ciphers and the
dev certificate; private state files, the metrics token kept out of `ps`,
control characters escaped in log lines, a constant-time token check."""

from __future__ import annotations

import hmac
import json
import os
import socket
import ssl
import stat

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from conftest import start_daemon
from httpclient import http
from test_hardening_http import raw_request, status_of


def get(port: int, path: str, host: str | None) -> bytes:
    head = f"GET {path} HTTP/1.1\r\n" + (f"Host: {host}\r\n" if host is not None else "") + "Connection: close\r\n\r\n"
    return raw_request(port, head.encode())


# ----- 7. allowed hosts, redirects from configuration


@pytest_twisted.ensureDeferred
async def test_foreign_host_names_are_refused_with_421(daemon):
    port = daemon.port
    for path in ("/metrics", "/api/health", "/api/login"):
        rebound = await deferToThread(get, port, path, f"attacker.example:{port}")
        assert status_of(rebound) == 421, (path, rebound[:100])
        assert json.loads(rebound.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "bad_message"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "testhost"):
        assert status_of(await deferToThread(get, port, "/api/health", host)) == 200, host
    missing = await deferToThread(raw_request, port, b"GET /api/health HTTP/1.0\r\n\r\n")
    assert status_of(missing) == 400
    # Agents reach /ingest by the fleet's name for the hub (404: a plain GET there).
    assert status_of(await deferToThread(get, port, "/ingest", "hub.fleet.example")) == 404


def upgrade_status(port: int, path: str, host: str, token: str) -> bytes:
    head = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        return sock.recv(65536)


@pytest_twisted.ensureDeferred
async def test_an_agent_dials_the_hub_by_any_name_but_a_dashboard_needs_an_allowed_one(daemon):
    agent = await deferToThread(
        upgrade_status, daemon.port, "/ingest", "hub.fleet.example", daemon.token("agent", subject="agent-x")
    )
    assert agent.startswith(b"HTTP/1.1 101 ")
    viewer = await deferToThread(upgrade_status, daemon.port, "/dashboard", "hub.fleet.example", daemon.token())
    assert status_of(viewer) == 421


@pytest_twisted.ensureDeferred
async def test_allowed_hosts_and_public_url_settings(make_settings):
    daemon = await start_daemon(make_settings(allowed_hosts="dash.internal", public_url="https://dash.example.com"))
    try:
        port = daemon.port
        assert status_of(await deferToThread(get, port, "/api/health", "dash.internal")) == 200
        assert status_of(await deferToThread(get, port, "/api/health", "dash.example.com")) == 200
        assert status_of(await deferToThread(get, port, "/api/health", f"localhost:{port}")) == 421
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_https_redirects_are_built_from_configuration(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    tls = f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"
    daemon = await start_daemon(
        make_settings(tls_listen=tls, redirect_http="true", public_url="https://dash.example.com")
    )
    try:
        plain = daemon.service.listeners[1].port.getHost().port
        moved = await deferToThread(get, plain, "/x?y=1", "dash.example.com")
        assert status_of(moved) == 308 and b"Location: https://dash.example.com/x?y=1\r\n" in moved
        forged = await deferToThread(get, plain, "/x", "attacker.example")
        assert status_of(forged) == 421 and b"Location" not in forged
    finally:
        await daemon.stop()


# ----- 8. headers and TLS


@pytest.fixture
def built_site(tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>dashd</title>")
    return dist


@pytest_twisted.ensureDeferred
async def test_the_page_policy_restricts_sockets_bases_forms_and_styles(make_settings, built_site):
    daemon = await start_daemon(make_settings(static=str(built_site)))
    try:
        csp = (await http("GET", daemon.url("/", "http"))).header("Content-Security-Policy")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
        assert directives["connect-src"] == ["'self'"]  # not any ws:/wss: host
        assert directives["base-uri"] == ["'none'"] and directives["form-action"] == ["'self'"]
        assert directives["style-src"] == ["'self'"] and directives["script-src"] == ["'self'"]
    finally:
        await daemon.stop()
    proxied = await start_daemon(make_settings(static=str(built_site), public_url="https://dash.example.com"))
    try:
        csp = (await http("GET", proxied.url("/", "http"))).header("Content-Security-Policy")
        assert "connect-src 'self' https://dash.example.com wss://dash.example.com;" in csp
    finally:
        await proxied.stop()


@pytest_twisted.ensureDeferred
async def test_the_server_header_names_no_twisted_version(daemon):
    for path in ("/api/health", "/api/nope", "/", "/metrics"):
        response = await http("GET", daemon.url(path, "http"))
        assert response.all("Server") == ["dashd"], (path, response.all("Server"))
    refused = await deferToThread(get, daemon.port, "/", "attacker.example")
    assert b"Server: dashd\r\n" in refused and b"Twisted" not in refused


def https_get(port: int, cafile: str, path: str = "/api/health") -> tuple[int, str | None]:
    import http.client

    connection = http.client.HTTPSConnection(
        "localhost", port, timeout=5, context=ssl.create_default_context(cafile=cafile)
    )
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.getheader("Strict-Transport-Security")


def handshake_with(port: int, cipher: str) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher + ":@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]
        except (ssl.SSLError, OSError) as e:
            return f"refused: {type(e).__name__}"


@pytest_twisted.ensureDeferred
async def test_hsts_and_tls12_ciphers_on_the_https_listener(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    tls = f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"
    daemon = await start_daemon(make_settings(tls_listen=tls, listen="tcp:0:interface=127.0.0.1"))
    try:
        tls_port = daemon.service.listeners[0].port.getHost().port
        status, hsts = await deferToThread(https_get, tls_port, cert)
        assert status == 200 and hsts == "max-age=15552000"
        plain = await http("GET", f"http://127.0.0.1:{daemon.service.listeners[1].port.getHost().port}/api/health")
        assert plain.header("Strict-Transport-Security") is None  # only over HTTPS
        for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-SHA", "AES128-GCM-SHA256"):
            assert (await deferToThread(handshake_with, tls_port, weak)).startswith("refused"), weak
        for strong in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
            assert await deferToThread(handshake_with, tls_port, strong) == strong
    finally:
        await daemon.stop()
    no_hsts = await start_daemon(make_settings(tls_listen=tls, hsts_max_age="0"))
    try:
        tls_port = no_hsts.service.listeners[0].port.getHost().port
        assert (await deferToThread(https_get, tls_port, cert))[1] is None
    finally:
        await no_hsts.stop()


def test_dev_cert_is_a_server_leaf_not_a_ca(tmp_path):
    from dashd.auth.devcert import write_self_signed

    _, cert_path = write_self_signed(str(tmp_path), "dash.lan")
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"dash.lan", "localhost"}
    assert {str(a) for a in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


# ----- 9. secrets and files


@pytest_twisted.ensureDeferred
async def test_state_directory_and_database_are_private_whatever_the_umask(make_settings, tmp_path):
    previous = os.umask(0o022)
    try:
        daemon = await start_daemon(make_settings(state_dir=str(tmp_path / "fresh-state")))
    finally:
        os.umask(previous)
    try:
        state = daemon.settings.state_dir
        assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
        database = os.path.join(state, "dashd.db")
        for path in (database, database + "-wal", database + "-shm"):
            if os.path.exists(path):
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        assert os.path.exists(database + "-wal")  # WAL mode: checked above
    finally:
        await daemon.stop()


def test_an_existing_loose_state_directory_is_tightened(tmp_path):
    from dashd.ops.private import private_directory, private_file

    state = tmp_path / "old-state"
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    (state / "dashd.db").write_bytes(b"")
    os.chmod(state / "dashd.db", 0o644)
    private_directory(str(state))
    private_file(str(state / "dashd.db"))
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / "dashd.db").st_mode) == 0o600


def test_metrics_token_on_the_command_line_warns(tmp_path):
    from dashd.tap import Options

    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        Options().parseOptions(["--metrics-token", "s3cret-token", "--state-dir", str(tmp_path)])
        Options().parseOptions(["--state-dir", str(tmp_path)])
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if "visible in `ps`" in formatEvent(e)]
    assert len(warnings) == 1 and "s3cret-token" not in warnings[0] and "metrics_token_file" in warnings[0]


@pytest_twisted.ensureDeferred
async def test_metrics_token_file_protects_the_prometheus_endpoint(make_settings, tmp_path):
    token_file = tmp_path / "metrics.token"
    token_file.write_text("file-token-123\n")
    daemon = await start_daemon(make_settings(metrics_token_file=str(token_file)))
    try:
        url = daemon.url("/metrics", "http")
        assert (await http("GET", url)).status == 401
        assert (await http("GET", url, headers={"Authorization": "Bearer file-token-12"})).status == 401
        assert (await http("GET", url, headers={"Authorization": "Bearer file-token-123"})).status == 200
    finally:
        await daemon.stop()


def test_metrics_token_file_errors_are_clear(make_settings, tmp_path):
    from dashd.settings import ConfigError

    with pytest.raises(ConfigError, match="cannot read the file"):
        make_settings(metrics_token_file=str(tmp_path / "missing"))
    (tmp_path / "t").write_text("x")
    with pytest.raises(ConfigError, match="not both"):
        make_settings(metrics_token_file=str(tmp_path / "t"), metrics_token="y")


@pytest_twisted.ensureDeferred
async def test_the_metrics_token_is_compared_in_constant_time(make_settings, monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    daemon = await start_daemon(make_settings(metrics_token="tok-abc"))
    try:
        response = await http("GET", daemon.url("/metrics", "http"), headers={"Authorization": "Bearer tok-abd"})
        assert response.status == 401
        assert (b"Bearer tok-abd", b"Bearer tok-abc") in calls
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_control_characters_from_clients_are_escaped_in_log_lines(daemon):
    lines = []

    def observer(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    try:
        forged = "bob\r\n2026-01-01 [dashd] admin logged in\x1b[2J\u2028"
        response = await http(
            "POST", daemon.url("/api/login", "http"), json_body={"username": forged, "password": "wrong-password"}
        )
        assert response.status == 401
    finally:
        globalLogPublisher.removeObserver(observer)
    failed = [line for line in lines if "failed login" in line]
    assert failed and all(not any(c in line for c in "\r\n\x1b\u2028") for line in failed)
    assert "bob\\r\\n2026" in failed[0] and "\\x1b[2J" in failed[0]
