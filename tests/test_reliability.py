"""Issue 18: a database that stalls, shutdown during an outage, quiet
connection loss, repeated signals. The database faults are injected with a
real TCP forwarder on loopback in front of the real MariaDB (tests/forwarder.py)
that stops relaying without closing anything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from conftest import MYSQL_URL, REQUIRE_MYSQL, start_daemon
from dashd.settings import check_db_url
from dashd.store.pool import DeadlineExceeded, DeadlinePool, abort_connection
from dashd.store.spill import SpillFile
from dashd.stream.streams import METRICS_UPDATE, StreamMessage
from fakes import sleep
from forwarder import StallingForwarder
from httpclient import http
from test_store import stored_rows, stored_rows_sync
from wsclient import connect

BIN = Path(sys.executable).parent
QUERY_TIMEOUT = 2.0  # the deadline these tests configure (the default is 5 s)
# Generous bounds on waits that, without deadlines, would last as long as the
# stall does (the test resumes the forwarder only after them): a failure
# here means "hung", not "slow".
HUNG = 20.0


def needs_mysql():
    if not MYSQL_URL:
        if REQUIRE_MYSQL:
            raise RuntimeError("DASHD_REQUIRE_MYSQL=1 but DASHD_TEST_MYSQL_URL is not set")
        pytest.skip("DASHD_TEST_MYSQL_URL is not set (e.g. mysql://root@127.0.0.1:3306/test)")
    return check_db_url(MYSQL_URL)


@pytest.fixture
def mysql_via_forwarder():
    """(forwarder, db URL through it, db URL direct) on a fresh MariaDB database."""
    import pymysql

    base = needs_mysql()
    name = f"dashd_rel_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    forwarder = StallingForwarder((base.host, base.port))
    password = f":{base.password}" if base.password else ""
    via = f"mysql://{base.user}{password}@127.0.0.1:{forwarder.port}/{name}"
    direct = f"mysql://{base.user}{password}@{base.host}:{base.port}/{name}"
    try:
        yield forwarder, via, direct
    finally:
        forwarder.close()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def direct_query(url: str, sql: str) -> list[tuple]:
    import pymysql

    parts = check_db_url(url)
    connection = pymysql.connect(
        host=parts.host, port=parts.port, user=parts.user, password=parts.password, database=parts.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


@pytest.fixture
def store_events():
    """Every log event whose text starts with 'store:', and every failure."""
    events: list[dict] = []

    def observer(event: dict) -> None:
        text = event.get("log_format") or ""
        if text.startswith("store:") or event.get("log_failure") is not None or event.get("isError"):
            events.append(event)

    globalLogPublisher.addObserver(observer)
    yield events
    globalLogPublisher.removeObserver(observer)


def lines(events: list[dict], needle: str) -> list[str]:
    from twisted.logger import formatEvent

    return [formatEvent(e) for e in events if needle in formatEvent(e)]


async def bounded(coroutine) -> object:
    """Await with the HUNG bound, so a test of a missing deadline fails instead of hanging."""
    return await Deferred.fromCoroutine(coroutine).addTimeout(HUNG, reactor)


async def eventually(predicate, what: str, timeout: float = HUNG) -> None:
    deadline = reactor.seconds() + timeout
    while not await predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"never: {what}")
        await sleep(0.1)


# ----- 1. deadlines


@pytest_twisted.ensureDeferred
async def test_stalled_database_gives_not_ready_unavailable_replies_two_log_lines_and_fresh_connections(
    mysql_via_forwarder, make_settings, store_events
):
    """With the link to MariaDB stalled (open, relaying nothing): /api/ready
    answers 503 and history/stats answer `error unavailable` instead of
    hanging for the stall; the store logs one line when it goes down and one
    when it is back, no traceback; the stalled connections are discarded and
    every sample queued during the stall reaches the database."""
    forwarder, via, direct = mysql_via_forwarder
    running = await start_daemon(make_settings(db=via, db_query_timeout=f"{QUERY_TIMEOUT}s"))
    try:
        store = running.core.store
        ready_url = running.url("/api/ready", "http")
        assert (await http("GET", ready_url)).status == 200
        client = await connect(running.url(), running.token())
        assert (await client.request("history", {"metrics": ["cpu_usage"], "from": "-1m"}))["type"] == "history"
        before_stall = {id(conn) for conn in store.pool.connections.values()}
        assert before_stall
        seq_at_stall = running.core.hub.seq

        forwarder.stall()
        ready = await bounded(http("GET", ready_url))  # without a deadline: hangs for the whole stall
        assert ready.status == 503
        assert ready.json()["checks"]["store"]["ok"] is False
        history = await client.request("history", {"metrics": ["cpu_usage"], "from": "-1m"}, timeout=HUNG)
        assert history["type"] == "error" and history["data"]["code"] == "unavailable", history
        stats = await client.request("stats", {"metrics": ["cpu_usage"], "window": "1m"}, timeout=HUNG)
        assert stats["type"] == "error" and stats["data"]["code"] == "unavailable", stats
        await sleep(3 * QUERY_TIMEOUT)  # more failed flushes and probes: still one line
        assert (await bounded(http("GET", ready_url))).status == 503
        down = lines(store_events, "database unavailable")
        assert len(down) == 1, down
        seq_in_stall = running.core.hub.seq
        assert seq_in_stall > seq_at_stall  # samples kept coming, queued

        forwarder.resume()

        async def ready_again() -> bool:
            return (await http("GET", ready_url)).status == 200

        await eventually(ready_again, "ready after the stall")
        # What the batch timer has not written yet (twice: the first may
        # share a write that began before the last rows were queued).
        await store.flush()
        await store.flush()
        assert len(lines(store_events, "database back")) == 1
        assert len(lines(store_events, "database unavailable")) == 1
        after = {id(conn) for conn in store.pool.connections.values()}
        assert after and not (after & before_stall), "a stalled connection was reused"
        failures = [e for e in store_events if e.get("log_failure") is not None]
        assert failures == [], [str(e["log_failure"]) for e in failures]
        seqs = {row[0] for row in stored_rows_sync(direct)}
        assert set(range(seq_at_stall, seq_in_stall + 1)) <= seqs | _notification_seqs(direct)
        client.close()
    finally:
        forwarder.resume()
        await running.stop()


def _notification_seqs(url: str) -> set[int]:
    return {row[0] for row in direct_query(url, "SELECT seq FROM notifications")} | {
        row[0] for row in direct_query(url, "SELECT seq FROM notification_acks")
    }


@pytest_twisted.ensureDeferred
async def test_operation_queued_behind_a_stall_expires_and_never_runs(tmp_path):
    """With the only pool thread busy, a second operation waits in the queue;
    at its deadline it fails with DeadlineExceeded and, when the thread frees
    up, it is skipped rather than run late (a late write would duplicate a
    batch the store has re-queued)."""
    import threading

    pool = DeadlinePool("sqlite3", str(tmp_path / "db.sqlite"), check_same_thread=False, cp_min=1, cp_max=1)
    pool.start()
    release = threading.Event()
    ran: list[str] = []
    clock = Clock()
    try:
        blocker = pool.run(reactor, HUNG, lambda cursor: release.wait(HUNG))
        queued = pool.run(clock, 1.0, lambda cursor: ran.append("late"))
        await sleep(0.1)
        clock.advance(1.0)
        with pytest.raises(DeadlineExceeded):
            await queued
        release.set()
        await blocker
        await pool.run(reactor, HUNG, lambda cursor: ran.append("next"))
        assert ran == ["next"]
        assert clock.getDelayedCalls() == []
    finally:
        release.set()
        pool.close()


@pytest_twisted.ensureDeferred
async def test_running_sqlite_statement_is_interrupted_at_its_deadline(tmp_path):
    """SQLite has no socket to cut: the deadline interrupts the statement
    (sqlite3's thread-safe interrupt), and the connection stays usable."""
    pool = DeadlinePool("sqlite3", str(tmp_path / "db.sqlite"), check_same_thread=False, cp_min=1, cp_max=1)
    pool.start()
    clock = Clock()
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
    try:
        running = pool.run(clock, 1.0, lambda cursor: cursor.execute(endless).fetchall(), settle=True)
        await sleep(0.2)
        clock.advance(1.0)
        with pytest.raises(Exception) as caught:
            await running
        assert "interrupt" in str(caught.value).lower()
        assert await pool.run(reactor, HUNG, lambda cursor: cursor.execute("SELECT 7").fetchall()) == [(7,)]
    finally:
        pool.close()


def test_abort_connection_shuts_the_socket_of_a_pymysql_connection():
    """The borrowed pymysql internal: `_sock` is the connection's socket."""
    import pymysql

    base = needs_mysql()
    connection = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    assert isinstance(connection._sock, socket.socket)
    assert connection._read_timeout is None or connection._read_timeout >= 0  # the attribute we set per operation
    abort_connection(connection)
    with pytest.raises(pymysql.err.OperationalError):
        connection.cursor().execute("SELECT 1")


# ----- 3. a cut is one warning, not tracebacks


@pytest_twisted.ensureDeferred
async def test_mariadb_cut_is_one_warning_line_and_the_next_write_reconnects(mysql_via_forwarder, store_events):
    """Every pooled connection to MariaDB is closed under the store (the
    forwarder drops them): the next write finds them dead, reconnects and
    succeeds; the log holds one warning line and no "Rollback failed"
    traceback (adbapi's default is two per dead connection)."""
    from dashd.store.database import Store

    forwarder, via, direct = mysql_via_forwarder
    store = Store(via, reactor, batch_interval=3600)
    store.startService()
    try:
        await store.ensure_schema()
        for seq in (1, 2, 3):  # use all three pooled connections at once
            store.record(StreamMessage(seq, METRICS_UPDATE, 1000 + seq, "h", {"cpu": float(seq)}))
        await store.flush()
        await DeferredList([Deferred.fromCoroutine(store.check()) for _ in range(3)])
        assert len(store.pool.connections) >= 1
        forwarder.cut()
        store.record(StreamMessage(4, METRICS_UPDATE, 1004, "h", {"cpu": 4.0}))
        assert await store.flush() == 1
        assert [row[0] for row in await stored_rows(direct)] == [1, 2, 3, 4]
        failures = [e for e in store_events if e.get("log_failure") is not None or e.get("isError")]
        assert failures == [], [str(e.get("log_failure")) for e in failures]
        assert len(lines(store_events, "database connection lost")) == 1
        assert lines(store_events, "database unavailable") == []
    finally:
        await store.stopService()


# ----- 2. spill at shutdown


def test_spill_file_round_trips_is_bounded_and_replaced_atomically(tmp_path):
    """write() keeps the newest max_rows samples, replaces the file by rename
    (no .tmp left), read() gives the rows back as tuples, remove() forgets it."""
    spill = SpillFile(str(tmp_path / "state" / "store-spill.json"), max_rows=3)
    samples = [(seq, "h", 1000 + seq, "cpu", float(seq)) for seq in range(1, 6)]
    notifications = [("n-1", 6, 1006, "warning", "t", "m", "rule:x", "firing")]
    acks = [(7, "n-1", "alice", 1007)]
    assert spill.write(samples, notifications, acks) == 5
    assert os.listdir(tmp_path / "state") == ["store-spill.json"]
    assert os.stat(spill.path).st_mode & 0o777 == 0o600
    batch = spill.read()
    assert batch.samples == samples[-3:] and batch.notifications == notifications and batch.acks == acks
    spill.write(samples[:1], [], [])
    assert spill.read().samples == samples[:1]
    spill.remove()
    assert spill.read() is None


def test_spill_file_of_another_kind_is_refused(tmp_path):
    path = tmp_path / "store-spill.json"
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a dashd spill file"):
        SpillFile(str(path), 10).read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """`twistd dashd` in a subprocess (output to a log file)."""

    def __init__(self, tmp_path: Path, state: Path, db: str, name: str, *extra: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"{name}.log"
        self.log = open(self.log_path, "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
        self.process = subprocess.Popen(
            [
                str(BIN / "twistd"),
                "--nodaemon",
                "--pidfile=",
                "dashd",
                "--listen",
                f"tcp:{self.port}:interface=127.0.0.1",
                "--state-dir",
                str(state),
                "--db",
                db,
                "--interval",
                "0.2",
                "--batch-interval",
                "0.5",
                "--static",
                str(tmp_path / "none"),
                "--host-name",
                "spilltest",
                "--db-query-timeout",
                f"{QUERY_TIMEOUT}s",
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/ready", timeout=HUNG) as response:
                return response.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"not ready:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def sample_seqs(url: str) -> set[int]:
    return {row[0] for row in stored_rows_sync(url) if row[1] == "spilltest"}


def test_sigterm_during_a_stall_spills_and_the_next_start_writes_every_sample(tmp_path, mysql_via_forwarder):
    """MariaDB stalls; dashd keeps sampling, then gets SIGTERM: the rows it
    cannot write go to STATE_DIR/store-spill.json. The database comes back,
    dashd starts again and writes the spill first: every sample from the
    first run is in the database, none twice."""
    forwarder, via, direct = mysql_via_forwarder
    state = tmp_path / "state"
    first = Daemon(tmp_path, state, via, "first")
    try:
        first.wait_ready()
        time.sleep(1.0)
        forwarder.stall()
        time.sleep(3.0)  # ~15 samples queue up
        assert first.stop() in (0, -signal.SIGTERM)  # twistd re-raises the signal it stopped on
    finally:
        if first.process.poll() is None:
            first.process.kill()
    output = first.output()
    spill_path = state / "store-spill.json"
    assert spill_path.exists(), output
    assert "spilled" in output and "Traceback" not in output, output
    spilled = json.loads(spill_path.read_text())
    spilled_seqs = {row[0] for row in spilled["samples"]}
    assert spilled_seqs
    last_seq = int((state / "stream.seq").read_text().split()[0]) if (state / "stream.seq").exists() else None

    forwarder.resume()
    written_before = sample_seqs(direct)
    assert not (spilled_seqs & written_before)
    second = Daemon(tmp_path, state, direct, "second")
    try:
        second.wait_ready()
        deadline = time.monotonic() + HUNG
        while spill_path.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        assert second.stop() in (0, -signal.SIGTERM)
    assert not spill_path.exists(), second.output()
    assert "rows spilled at the last shutdown" in second.output()
    seqs = sample_seqs(direct)
    first_run = set(range(min(written_before | spilled_seqs), max(spilled_seqs) + 1))
    missing = first_run - seqs - _notification_seqs(direct)
    assert not missing, f"lost seqs {sorted(missing)[:20]} (last seq file: {last_seq})"
    keys = [(seq, metric) for seq, _host, _ts, metric, _value in stored_rows_sync(direct)]
    assert len(keys) == len(set(keys)), "a sample was written twice"


@pytest_twisted.ensureDeferred
async def test_spilled_rows_are_queued_before_new_samples(tmp_path):
    """A store started with a spill file writes those rows in its first
    flush, ahead of anything recorded since, and removes the file."""
    from dashd.store.database import Store

    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spill_path = str(tmp_path / "store-spill.json")
    SpillFile(spill_path, 100).write([(1, "h", 1000, "cpu", 1.0)], [], [])
    clock = Clock()
    store = Store(db, clock, spill_path=spill_path, wall_clock_ms=lambda: 2000)
    store.startService()
    await store.ensure_schema()
    store.record(StreamMessage(2, METRICS_UPDATE, 1100, "h", {"cpu": 2.0}))
    assert store.pending_rows == 2 and store._sample_rows[0][0] == 1
    assert await store.flush() == 2
    assert not os.path.exists(spill_path)
    assert [row[0] for row in await stored_rows(db)] == [1, 2]
    await store.stopService()


# ----- 4. repeated stop signals


def test_second_sigterm_and_a_sigint_during_shutdown_are_quiet_and_the_shutdown_completes(
    tmp_path, mysql_via_forwarder
):
    """While a shutdown waits on a stalled database (its deadline), SIGTERM
    and SIGINT arrive again: each is one log line, no ReactorNotRunning
    traceback, and the shutdown finishes its work (the spill)."""
    forwarder, via, direct = mysql_via_forwarder
    state = tmp_path / "state"
    daemon = Daemon(tmp_path, state, via, "signals")
    try:
        daemon.wait_ready()
        forwarder.stall()
        time.sleep(0.5)
        daemon.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # shutdown is now waiting on the stalled flush (2 s deadline)
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.send_signal(signal.SIGINT)
        status = daemon.process.wait(timeout=60)
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
        forwarder.resume()
    output = daemon.output()
    assert status in (0, -signal.SIGTERM), output
    assert "Traceback" not in output and "ReactorNotRunning" not in output, output
    assert output.count("already shutting down") == 2, output
    assert "spilled" in output and (state / "store-spill.json").exists(), output


# ----- 5. dev-cert reads the common options


def run_dashd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
    return subprocess.run([str(BIN / "dashd"), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_dev_cert_accepts_the_common_options_and_writes_under_the_state_dir(tmp_path):
    """`dashd dev-cert` takes --state-dir, --config, --db and --secret-file
    like every subcommand; without --out the pair goes to STATE_DIR/tls."""
    state = tmp_path / "custom-state"
    result = run_dashd(
        "dev-cert",
        "--state-dir",
        str(state),
        "--db",
        f"sqlite:///{tmp_path / 'x.db'}",
        "--secret-file",
        str(tmp_path / "secret.key"),
        "--hostname",
        "dash.test",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (state / "tls" / "key.pem").exists() and (state / "tls" / "cert.pem").exists()
    assert str(state / "tls" / "key.pem") in result.stdout

    ini = tmp_path / "dashd.ini"
    ini.write_text(f"[dashd]\nstate_dir = {tmp_path / 'from-ini'}\n")
    result = run_dashd("dev-cert", "--config", str(ini), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-ini" / "tls" / "cert.pem").exists()

    result = run_dashd("dev-cert", "--out", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "elsewhere" / "key.pem").exists()


def test_dev_cert_with_a_bad_common_option_says_which_and_exits_2(tmp_path):
    result = run_dashd("dev-cert", "--db", "postgres://nope", cwd=tmp_path)
    assert result.returncode == 2
    assert "db" in result.stderr and "Traceback" not in result.stderr


# ----- start-up during an outage: one line, not one per retry


@pytest_twisted.ensureDeferred
async def test_start_during_an_outage_logs_one_line_not_one_per_retry(make_settings, monkeypatch, store_events):
    """The database refuses connections from the start: the start-up retries
    (every 0.1 s here) log "store not ready" once, and the store one
    "database unavailable" line, however many retries pass."""
    from twisted.logger import formatEvent

    from dashd import tap

    monkeypatch.setattr(tap, "STARTUP_RETRY", 0.1)
    seen: list[str] = []

    def observer(event: dict) -> None:
        if "store not ready" in (event.get("log_format") or ""):
            seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    service = tap.build_daemon(make_settings(db=f"mysql://root@127.0.0.1:{free_port()}/nothing_here"), reactor)
    service.startService()
    try:
        await sleep(1.5)
        assert not service.is_prepared()
    finally:
        globalLogPublisher.removeObserver(observer)
        await service.stopService()
    assert len(seen) == 1, seen
    assert len(lines(store_events, "database unavailable (")) == 1


# ----- found by the fuzz test while running the suite


@pytest_twisted.ensureDeferred
async def test_resume_with_a_null_after_seq_is_a_bad_message_not_an_internal_error(daemon, logged_failures):
    """{"after_seq": null} once raised TypeError inside the router (an
    `internal` error and a critical log line)."""
    client = await connect(daemon.url(), daemon.token())
    reply = await client.request("resume", {"after_seq": None})
    assert reply["type"] == "error" and reply["data"]["code"] == "bad_message", reply
    assert "after_seq" in reply["data"]["message"]
    assert logged_failures == []
    client.close()
