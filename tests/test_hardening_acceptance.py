"""Acceptance findings on issue 11 (an independent re-run of its attacks
against a real `twistd dashd`): what did not hold, each over a real socket
or a real `dashd` process.

- `dashd token revoke UNKNOWN` and `dashd user disable NOBODY` printed a
  Python traceback (task.react swallowed the error the command meant to
  report) instead of one clear line.
- `dashd token` run first on a fresh state directory created it 0755 under
  umask 022 (the daemon and `dashd user` made it 0700).
- redirect_http echoed the raw Host header into `Location` (a Host such as
  `localhost:80/x` passed the allowed-hosts check as `localhost` and came
  back as `https://[localhost:80/x]:443/...`), and an absolute-form request
  target was appended after the port.
- A metrics_token_file readable by every local user was read without a word
  (the signing key gets a warning)."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest_twisted
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from conftest import start_daemon
from test_twistd import BIN, run


def dashd(*args: str):
    return run(str(BIN / "dashd"), *args)


def test_a_failed_token_or_user_command_prints_one_clear_line_not_a_traceback(tmp_path):
    state = str(tmp_path / "state")
    unknown = dashd("token", "revoke", "0" * 32, "--state-dir", state)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"dashd: no active token with id '{'0' * 32}' (see `dashd token list`)"
    nobody = dashd("user", "disable", "nobody", "--state-dir", state)
    assert nobody.returncode == 1
    assert nobody.stderr.strip() == "dashd: no user 'nobody'"
    assert "Traceback" not in unknown.stderr + nobody.stderr


def test_dashd_token_on_a_fresh_state_directory_makes_it_private_under_umask_022(tmp_path):
    state = tmp_path / "fresh-state"
    previous = os.umask(0o022)
    try:
        minted = dashd("token", "--role", "viewer", "--ttl", "1h", "--state-dir", str(state))
    finally:
        os.umask(previous)
    assert minted.returncode == 0, minted.stderr
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / "secret.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state / "dashd.db").st_mode) == 0o600


def redirect_of(port: int, target: str, host: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def location_of(answer: bytes) -> str:
    assert answer.startswith(b"HTTP/1.1 308 "), answer[:100]
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.partition(b": ")
        if name.lower() == b"location":
            return value.decode("latin-1")
    raise AssertionError(f"no Location in {answer[:300]!r}")


@pytest_twisted.ensureDeferred
async def test_redirect_http_location_uses_the_checked_host_name_and_the_path_only(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    # The redirect names the configured TLS port, so it must not be 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        tls = probe.getsockname()[1]
    daemon = await start_daemon(
        make_settings(tls_listen=f"ssl:{tls}:privateKey={key}:certKey={cert}:interface=127.0.0.1", redirect_http="true")
    )
    try:
        plain = daemon.service.listeners[1].port.getHost().port
        good = location_of(await deferToThread(redirect_of, plain, "/a/b?c=1", f"localhost:{plain}"))
        assert good == f"https://localhost:{tls}/a/b?c=1"
        # Passes the allowed-hosts check as 'localhost'; must not be echoed whole.
        odd = location_of(await deferToThread(redirect_of, plain, "/a", f"localhost:{plain}/evil"))
        assert odd == f"https://localhost:{tls}/a"
        ipv6 = location_of(await deferToThread(redirect_of, plain, "/a", f"[::1]:{plain}"))
        assert ipv6 == f"https://[::1]:{tls}/a"
        absolute = location_of(await deferToThread(redirect_of, plain, "http://localhost/x?y=2", "localhost"))
        assert absolute == f"https://localhost:{tls}/x?y=2"
    finally:
        await daemon.stop()


def test_a_metrics_token_file_readable_by_others_is_warned_about(tmp_path):
    from dashd.tap import Options

    token_file = tmp_path / "metrics.token"
    token_file.write_text("file-token-123\n")
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        os.chmod(token_file, 0o644)
        Options().parseOptions(["--metrics-token-file", str(token_file), "--state-dir", str(tmp_path)])
        os.chmod(token_file, 0o600)
        Options().parseOptions(["--metrics-token-file", str(token_file), "--state-dir", str(tmp_path)])
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if "metrics_token_file" in formatEvent(e)]
    assert len(warnings) == 1, warnings
    assert "mode 644" in warnings[0] and "file-token-123" not in warnings[0]


def handshake(port: int, host: str, origin: str, token: str) -> bytes:
    head = (
        f"GET /dashboard HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        return sock.recv(65536)


def login_from(port: int, host: str, origin: str) -> bytes:
    body = b'{"username": "nobody", "password": "not-the-password"}'
    head = (
        f"POST /api/login HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return redirect_of_raw(port, head + body)


def redirect_of_raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest_twisted.ensureDeferred
async def test_behind_a_tls_proxy_the_public_url_origin_may_connect_and_log_in(make_settings):
    """TLS at the proxy, plain HTTP to dashd (docs/security.md, reverse proxy):
    the browser's Origin is https://<public name> while dashd's listener is
    plain, so the same-origin default refused every handshake and login."""
    daemon = await start_daemon(make_settings(public_url="https://dash.example.com"))
    try:
        port = daemon.port
        public = await deferToThread(handshake, port, "dash.example.com", "https://dash.example.com", daemon.token())
        assert public.startswith(b"HTTP/1.1 101 "), public[:120]
        foreign = await deferToThread(handshake, port, "dash.example.com", "https://attacker.example", daemon.token())
        assert foreign.startswith(b"HTTP/1.1 403 ")
        # A login from the public origin reaches the password check (401), a foreign one does not (403).
        assert (await deferToThread(login_from, port, "dash.example.com", "https://dash.example.com")).startswith(
            b"HTTP/1.1 401 "
        )
        assert (await deferToThread(login_from, port, "dash.example.com", "https://attacker.example")).startswith(
            b"HTTP/1.1 403 "
        )
    finally:
        await daemon.stop()


def documented_proxy_settings() -> dict[str, str]:
    """The `[dashd]` block docs/operations.md gives for nginx/Caddy with TLS at the proxy."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    block = text.split("With either, on the dashd side:", 1)[1].split("```ini", 1)[1].split("```", 1)[0]
    values = {}
    for line in block.strip().splitlines()[1:]:  # after [dashd]
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values


@pytest_twisted.ensureDeferred
async def test_the_documented_reverse_proxy_configuration_serves_the_public_name(make_settings):
    """Following docs/operations.md to the letter: the proxy passes Host
    dash.example.com and the browser's https:// Origin. The example set only
    allowed_origins, so after allowed_hosts every request got 421."""
    documented = documented_proxy_settings()
    assert documented.pop("listen").startswith("tcp:8080")
    daemon = await start_daemon(make_settings(**documented))
    try:
        page = await deferToThread(redirect_of, daemon.port, "/api/health", "dash.example.com")
        assert page.startswith(b"HTTP/1.1 200 "), page[:120]
        upgraded = await deferToThread(
            handshake, daemon.port, "dash.example.com", "https://dash.example.com", daemon.token()
        )
        assert upgraded.startswith(b"HTTP/1.1 101 "), upgraded[:120]
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_an_absolute_form_target_for_a_foreign_host_is_refused(daemon):
    """`GET http://attacker.example/metrics` names its host in the target,
    which wins over the Host header (RFC 9112 3.2.2); it was served."""
    foreign = await deferToThread(redirect_of, daemon.port, "http://attacker.example/metrics", "localhost")
    assert foreign.startswith(b"HTTP/1.1 421 "), foreign[:120]
    own = await deferToThread(redirect_of, daemon.port, f"http://localhost:{daemon.port}/api/health", "localhost")
    assert own.startswith(b"HTTP/1.1 200 "), own[:120]


def login_as(port: int, name: str, password: str, source: str) -> tuple[int, bytes]:
    body = json.dumps({"username": name, "password": password}).encode()
    head = (
        f"POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0)) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


@pytest_twisted.ensureDeferred
async def test_the_per_user_login_budget_holds_for_every_spelling_of_the_name(make_settings, db_url):
    """MySQL/MariaDB compare names case-insensitively: 'ALICE' logs in as
    alice, but each spelling had its own budget of 5 failures, so guessers
    spread over addresses got 5 guesses per spelling (2^n for n letters)."""
    daemon = await start_daemon(make_settings(db=db_url))
    try:
        await daemon.service.users.add("alice", "viewer", "right-password-1")
        port = daemon.port
        for i, spelling in enumerate(["alice", "Alice", "aLice", "ALice", "alIce"]):
            status, _ = await deferToThread(login_as, port, spelling, "wrong-password", f"127.0.5.{i + 1}")
            assert status == 401, spelling
        # A sixth guess, in yet another spelling from yet another address: back-off.
        status, answer = await deferToThread(login_as, port, "ALICE", "wrong-password", "127.0.5.9")
        assert status == 429, answer[:200]
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_login_in_another_spelling_gets_the_stored_name(make_settings, db_url):
    """Where the store matches names case-insensitively (MySQL), the token
    and session carry the stored name, so `user disable alice` and the
    audit log match the session exactly."""
    daemon = await start_daemon(make_settings(db=db_url))
    try:
        await daemon.service.users.add("alice", "viewer", "right-password-1")
        status, answer = await deferToThread(login_as, daemon.port, "ALICE", "right-password-1", "127.0.5.20")
        if db_url.startswith("sqlite"):
            assert status == 401  # SQLite compares names exactly: no such user
            return
        assert status == 200, answer[:200]
        body = answer.split(b"\r\n\r\n", 1)[1]
        assert b'"username":"alice"' in body.replace(b" ", b"")
    finally:
        await daemon.stop()
