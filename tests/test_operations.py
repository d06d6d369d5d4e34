"""Operating dashd: the Prometheus exposition after real traffic, and the
log of a full session (text and JSON lines) carrying no secret."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.logger import Logger, LogLevel, globalLogPublisher
from twisted.python import log as legacy_log
from twisted.python.failure import Failure
from websockets.sync.client import connect as ws_connect

from conftest import start_daemon
from dashd.ops.logs import event_as_json, json_file_observer, observer_for_twistd
from dashd.ops.telemetry import FrameCounts, Telemetry
from dashd.stream.streams import METRICS_UPDATE, NOTIFICATION, StreamMessage
from fakes import sleep
from httpclient import http
from wsclient import connect

BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0


async def scrape(daemon, headers: dict | None = None) -> dict[str, dict[tuple, float]]:
    """/metrics as {sample name: {sorted label items: value}}."""
    response = await http("GET", daemon.url("/metrics", "http"), headers=headers)
    assert response.status == 200, response.body
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


async def wait_for(predicate, timeout: float = 10.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await sleep(step)


# ----- Prometheus


@pytest_twisted.ensureDeferred
async def test_metrics_exposition_covers_every_family_after_real_traffic(make_settings):
    """Every family the operations issue lists is exported and moves with
    traffic: connections by endpoint and role, messages and bytes by type in
    both directions, queue depth, coalesced and dropped updates, slow-consumer
    closes, auth failures by reason, rate-limit hits, collection, store and
    fan-out timings."""
    daemon = await start_daemon(
        make_settings(messages_per_second="1", message_burst="2", slow_consumer_timeout="2s", metrics_token="scrape-me")
    )
    auth = {"Authorization": "Bearer scrape-me"}
    try:
        viewer = await connect(daemon.url("/dashboard"), token=daemon.token())
        assert (await viewer.recv())["type"] == "connection_ack"
        for _ in range(3):
            await viewer.recv_type("metrics_update")
        assert (await viewer.request("ping"))["type"] == "pong"
        viewer.send_raw(b"not json")
        await viewer.recv_type("error")
        for i in range(4):  # burst of 2, then refused
            viewer.send({"type": "ping", "correlation_id": f"flood-{i}"})
        await viewer.recv_type("error")

        refused = await connect(daemon.url("/dashboard"), token="not-a-token")
        assert (await refused.recv())["data"]["code"] == "unauthorized"
        await refused.closed()
        bad_login = await http(
            "POST", daemon.url("/api/login", "http"), json_body={"username": "admin", "password": "wrong password"}
        )
        assert bad_login.status == 401

        # A client whose socket buffer is full: the transport calls
        # pauseProducing on the flow-control producer dashd registered.
        slow = await connect(daemon.url("/metrics"), token=daemon.token("operator"))
        assert (await slow.recv())["type"] == "connection_ack"
        session = next(s for s in daemon.core.connections if s.endpoint == "metrics")
        session.sink.transport.producer.pauseProducing()
        await wait_for(lambda: session.stream.stats.coalesced >= 1)
        during = await scrape(daemon, auth)
        assert value(during, "dashd_send_queue_depth") >= 1
        assert value(during, "dashd_paused_clients") == 1
        assert value(during, "dashd_connections", endpoint="metrics", role="operator") == 1
        assert value(during, "dashd_connections", endpoint="dashboard", role="viewer") == 1
        assert (await slow.closed())[0] == 1013
        await wait_for(lambda: session.closed)

        after = await scrape(daemon, auth)
    finally:
        await daemon.stop()

    # Connections by endpoint and role.
    assert value(after, "dashd_connections", endpoint="dashboard", role="viewer") == 1
    assert ("endpoint", "metrics") not in {k for labels in after["dashd_connections"] for k in labels}
    # Messages and bytes, by type, both ways.
    sent = lambda kind: value(after, "dashd_messages_sent_total", type=kind)  # noqa: E731
    assert sent("connection_ack") >= 2 and sent("metrics_update") >= 4 and sent("pong") >= 1
    assert sent("error") >= 3  # bad JSON, rate limited, refused token
    assert value(after, "dashd_bytes_sent_total", type="metrics_update") > 100 * sent("metrics_update")
    assert value(after, "dashd_messages_received_total", type="ping") == 5
    assert value(after, "dashd_messages_received_total", type="invalid") == 1
    assert value(after, "dashd_bytes_received_total", type="invalid") == len(b"not json")
    assert value(after, "dashd_bytes_received_total", type="ping") > 5 * len('{"type":"ping"}')
    # Queues, coalescing, slow consumers: counters outlive the connection.
    assert value(after, "dashd_send_queue_depth") == 0
    assert value(after, "dashd_updates_coalesced_total") >= value(during, "dashd_updates_coalesced_total") >= 1
    assert value(after, "dashd_updates_dropped_total") >= 1
    assert value(after, "dashd_slow_consumer_closes_total") == 1
    assert value(after, "dashd_stream_degraded_total") == 1
    # Refusals.
    assert value(after, "dashd_auth_failures_total", reason="invalid_token") == 1
    assert value(after, "dashd_auth_failures_total", reason="password") == 1
    assert value(after, "dashd_rate_limit_hits_total") >= 2
    assert value(after, "dashd_rate_limit_closes_total") == 0
    # Timings: collection, store writes, fan-out (sample taken -> frames written).
    for histogram in (
        "dashd_collection_duration_seconds",
        "dashd_store_write_duration_seconds",
        "dashd_fanout_latency_seconds",
    ):
        count = value(after, f"{histogram}_count")
        assert count >= 3, histogram
        assert 0 < value(after, f"{histogram}_sum") / count < 1.0, histogram
        assert value(after, f"{histogram}_bucket", le="+Inf") == count
    assert value(after, "dashd_store_rows_written_total") >= 3 * 20
    assert value(after, "dashd_store_queue_rows") >= 0
    assert value(after, "dashd_stream_seq") >= 5
    # The publisher's schedule (issue 17): ticks run, periods coalesced.
    assert value(after, "dashd_collector_ticks_total") >= 3
    assert value(after, "dashd_collector_ticks_coalesced_total") >= 0


def test_frame_counts_fold_untyped_frames_into_unknown():
    counts = FrameCounts()
    counts.add("pong", 10)
    counts.add(None, 3)
    counts.add("pong", 5)
    counts.add("unknown", 1)
    assert counts.totals() == {"pong": (2, 15), "unknown": (2, 4)}


def test_fanout_latency_is_monotonic_for_own_samples_and_timestamped_for_others():
    telemetry = Telemetry()
    telemetry.sample_taken(0.002)
    # Wall clock far off: this host's sample is timed on the monotonic clock.
    telemetry.fanout_done(StreamMessage(1, METRICS_UPDATE, 0, "here", {}), "here", wall_clock_ms=10**13)
    telemetry.fanout_done(StreamMessage(2, METRICS_UPDATE, 1_000, "there", {}), "here", wall_clock_ms=1_250)
    telemetry.fanout_done(StreamMessage(3, NOTIFICATION, 0, body={}), "here", wall_clock_ms=10**13)
    samples = {
        s.name: s.value
        for f in text_string_to_metric_families(telemetry.exposition().decode())
        for s in f.samples
        if not s.labels
    }
    assert samples["dashd_fanout_latency_seconds_count"] == 2
    assert 0.25 < samples["dashd_fanout_latency_seconds_sum"] < 0.26
    assert samples["dashd_collection_duration_seconds_sum"] == 0.002


# ----- JSON log lines


def test_json_log_line_has_time_level_message_fields_and_traceback():
    events = []
    log = Logger(namespace="dashd.test", observer=events.append)
    log.info("client {peer} closed: {code}", peer="10.0.0.1", code=1001)
    try:
        1 / 0  # noqa: B018 (the failure to log)
    except ZeroDivisionError:
        log.failure("tick failed on {thing!r}", thing=object())
    info, failure = (json.loads(event_as_json(event)) for event in events)
    assert info["level"] == "info" and info["namespace"] == "dashd.test"
    assert info["message"] == "client 10.0.0.1 closed: 1001"
    assert info["event"] == "client {peer} closed: {code}"
    assert info["fields"] == {"peer": "10.0.0.1", "code": 1001}
    assert info["time"].endswith("Z") and len(info["time"]) == len("2026-01-01T00:00:00.000Z")
    assert failure["level"] == "critical" and "ZeroDivisionError" in failure["traceback"]
    assert failure["fields"]["thing"].startswith("<object object")


def test_json_observer_writes_one_line_per_event_even_for_odd_values(tmp_path):
    path = tmp_path / "log.jsonl"
    with open(path, "w") as out:
        observer = json_file_observer(out)
        observer(
            {
                "log_format": "multi\nline {n}",
                "n": 2**70,
                "log_level": LogLevel.warn,
                "log_time": 0.0,
                "log_namespace": "x",
                "blob": b"\x00\xff",
                "log_failure": Failure(ValueError("boom")),
            }
        )
        # Twisted's own legacy twisted.python.log.msg events, as twistd sees them.
        globalLogPublisher.addObserver(observer)
        try:
            legacy_log.msg("legacy", "text", system="-")
        finally:
            globalLogPublisher.removeObserver(observer)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, legacy = map(json.loads, lines)
    assert first["message"] == "multi\nline 1180591620717411303424" and first["level"] == "warn"
    assert "boom" in first["traceback"]
    assert legacy["message"] == "legacy text" and legacy["system"] == "-"
    assert "fields" not in legacy and "event" not in legacy


def test_json_observer_follows_twistd_logfile_option(tmp_path):
    path = tmp_path / "dashd.log"
    observer = observer_for_twistd({"logfile": str(path), "nodaemon": 1})
    observer(
        {
            "log_format": "hello {who}",
            "who": "ops",
            "log_level": LogLevel.info,
            "log_time": time.time(),
            "log_namespace": "dashd.test",
        }
    )
    record = json.loads(path.read_text().splitlines()[0])
    assert record["message"] == "hello ops"


# ----- a full session in a real twistd, and its log


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Twistd:
    """twistd dashd in a subprocess, stdout and stderr into one log file."""

    def __init__(
        self, tmp_path: Path, *twistd_args: str, dashd_args: tuple[str, ...] = (), env: dict | None = None
    ) -> None:
        self.state = tmp_path / "state"
        self.port = free_port()
        self.log_path = tmp_path / f"twistd-{self.port}.log"
        self.log = open(self.log_path, "w+")
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
        self.process = subprocess.Popen(
            [
                str(BIN / "twistd"),
                "--nodaemon",
                "--pidfile=",
                *twistd_args,
                "dashd",
                "--listen",
                f"tcp:{self.port}:interface=127.0.0.1",
                "--state-dir",
                str(self.state),
                "--interval",
                "0.2",
                "--batch-interval",
                "0.5",
                "--static",
                str(tmp_path / "none"),
                *dashd_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**clean_env, **(env or {})},
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/api/ready"), timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"dashd did not become ready:\n{self.output()}")

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def post(url: str, body: dict | None = None, cookie: str | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body or {}, headers) without raising on 4xx."""
    data = json.dumps(body).encode() if body is not None else b"{}"
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    if cookie:
        request.add_header("Cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}, dict(response.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else {}, dict(e.headers)


def refresh_cookie(headers: dict) -> tuple[str, str]:
    """(the cookie value, 'name=value' to send back) from a login's Set-Cookie."""
    jar = SimpleCookie()
    jar.load(headers["Set-Cookie"])
    morsel = jar["dashd_refresh"]
    return morsel.value, f"dashd_refresh={morsel.value}"


def run_full_session(daemon: Twistd, metrics_token: str) -> list[str]:
    """Log in with the initial admin password, stream over a Bearer socket
    and over an `auth` message, refresh, scrape, log out, fail a login; the
    secrets used along the way are returned."""
    password_file = daemon.state / "initial-admin-password"
    deadline = time.monotonic() + START_TIMEOUT
    while not password_file.exists():  # written just after the store answers, near readiness
        assert time.monotonic() < deadline, daemon.output()
        time.sleep(0.05)
    password = password_file.read_text().strip()
    status, login, headers = post(daemon.url("/api/login"), {"username": "admin", "password": password})
    assert status == 200, login
    access = login["access_token"]
    cookie_value, cookie = refresh_cookie(headers)
    with ws_connect(
        daemon.url("/dashboard", "ws"), additional_headers={"Authorization": f"Bearer {access}"}, open_timeout=10
    ) as client:
        assert json.loads(client.recv(timeout=5))["type"] == "connection_ack"
        assert json.loads(client.recv(timeout=5))["type"] == "metrics_update"
    status, refreshed, _ = post(daemon.url("/api/refresh"), cookie=cookie)
    assert status == 200, refreshed
    second_access = refreshed["access_token"]
    with ws_connect(daemon.url("/notifications", "ws"), open_timeout=10) as client:
        client.send(json.dumps({"type": "auth", "correlation_id": "a", "data": {"token": second_access}}))
        assert json.loads(client.recv(timeout=5))["type"] == "connection_ack"
    scraped = urllib.request.Request(daemon.url("/metrics"), headers={"Authorization": f"Bearer {metrics_token}"})
    with urllib.request.urlopen(scraped, timeout=5) as response:
        assert b"dashd_messages_sent_total" in response.read()
    status, _, _ = post(daemon.url("/api/logout"), cookie=cookie)
    assert status == 204
    status, _, _ = post(daemon.url("/api/refresh"), cookie=cookie)
    assert status == 401  # the logged-out session is revoked
    wrong_password = password[::-1] + "-wrong"
    status, _, _ = post(daemon.url("/api/login"), {"username": "admin", "password": wrong_password})
    assert status == 401
    secret_key = (daemon.state / "secret.key").read_text().strip()
    return [password, wrong_password, access, second_access, cookie_value, secret_key, metrics_token]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_full_session_log_holds_no_secret(tmp_path, log_format):
    """Every line is a JSON object in json mode; in both modes neither the
    password, the access tokens, the refresh cookie, the metrics token nor
    the signing key appears anywhere in the log."""
    metrics_token = "metrics-token-do-not-log-7f3a"
    daemon = Twistd(tmp_path, dashd_args=("--log-format", log_format), env={"DASHD_METRICS_TOKEN": metrics_token})
    try:
        secrets = run_full_session(daemon, metrics_token)
    finally:
        daemon.stop()
    output = daemon.output()
    assert "logged in from" in output and "failed login for admin" in output  # the session was logged
    assert "Traceback" not in output
    for secret in secrets:
        assert secret and secret not in output, f"a secret reached the {log_format} log"
    lines = [line for line in output.splitlines() if line.strip()]
    if log_format == "json":
        records = [json.loads(line) for line in lines]  # every line parses
        assert all(isinstance(r, dict) and {"time", "level", "namespace", "message"} <= set(r) for r in records)
        assert any(
            r.get("event") == "{user} logged in from {address}" and r["fields"]["user"] == "admin" for r in records
        )
        assert any(r["message"] == "dashd stopped" for r in records)
    else:
        assert not any(line.startswith("{") for line in lines)


def test_twistd_logger_option_gives_json_lines(tmp_path):
    """`twistd --logger dashd.ops.logs.json_observer dashd` works as well."""
    daemon = Twistd(tmp_path, "--logger", "dashd.ops.logs.json_observer")
    daemon.stop()
    records = [json.loads(line) for line in daemon.output().splitlines() if line.strip()]
    assert any("dashd" in r["message"] and "starting" in r["message"] for r in records)
