"""Issue 11 A, B and D against a real `twistd dashd` (docs/security.md,
"Measured"): a history flood, clients that never read, a flooding agent.

    .venv/bin/python tools/hardening_bench.py [--db mysql://root@127.0.0.1:3306/test] [--seconds 10]

A  one viewer on 5 connections keeps 2 maximal `history` requests in flight
   each (5 metrics, 23 h, 5,000 points, over a store filled with 1.5 M rows);
   meanwhile /api/ready is probed 4 times a second, the admin logs in, and
   the viewer is disabled with `dashd user disable` (time until all 5
   connections are closed).
B  5 connections that never read resume from 0 and send 20 `resume` and 5
   maximal `history` requests a second: the daemon's RSS before and at peak.
D  one agent sends 200-metric samples at the message rate (20 batches of 15
   a second); a viewer counts the updates it is pushed; afterwards every
   acknowledged sample is looked up in the store (lost_acked must be 0).

With --db mysql://... the daemon uses a fresh MariaDB/MySQL database
(dropped afterwards) through its pool of three connections. Ends with one
`RESULT key=value ...` line. The machine's load matters: run it twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import psutil
from websockets.asyncio.client import connect

from dashd.auth.tokens import TokenIssuer, load_or_create_secret
from dashd.settings import check_db_url
from dashd.timefmt import iso_ms

BIN = Path(sys.executable).parent
METRICS = ["cpu_usage", "memory_usage", "disk_usage", "load_1", "load_5"]
ROWS_PER_METRIC = 300_000
# 23 h: within raw retention (24 h), the costliest tier to read. (A range
# reaching past it reads the 1-minute rollup, whose first use rolls up the
# whole day inline: see docs/security.md, "Not covered".)
HISTORY = {"metrics": METRICS, "from": "-23h", "max_points": 5000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, timeout: float = 30) -> tuple[int, float]:
    """(status, seconds); status 0 on a timeout or refused connection."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, time.monotonic() - started
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - started
    except OSError:
        return 0, time.monotonic() - started


class Daemon:
    def __init__(self, state: Path, db: str | None) -> None:
        self.state = state
        self.db = db
        self.port = free_port()
        self.log = open(state.parent / "twistd.log", "w+")
        extra = ["--db", db] if db else []
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
                "--static",
                str(state / "none"),
                "--slow-consumer-timeout",
                "5",
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DASHD_")},
        )
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 30
        while http("GET", self.url("/api/ready"), timeout=1)[0] != 200:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"dashd did not start; see {self.log.name}")
            time.sleep(0.2)
        self.issuer = TokenIssuer(load_or_create_secret(str(state / "secret.key")))

    def cli_args(self) -> list[str]:
        """What `dashd user ...` needs to reach the daemon's database."""
        return ["--state-dir", str(self.state), *(["--db", self.db] if self.db else [])]

    def url(self, path: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def token(self, subject: str, role: str) -> str:
        return self.issuer.mint(subject, role, 3600)[0]

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def fill(db_url: str, state: Path) -> None:
    now = int(time.time() * 1000)
    step = 86_400_000 // ROWS_PER_METRIC
    rows = [
        (0, "bench", now - 1000 - i * step, metric, float(i % 100))
        for metric in METRICS
        for i in range(ROWS_PER_METRIC)
    ]
    url = check_db_url(db_url) if db_url else None
    if url is None or url.dialect == "sqlite":
        with sqlite3.connect(url.path if url else str(state / "dashd.db"), timeout=30) as db:
            db.executemany("INSERT INTO samples (seq, host, ts_ms, metric, value) VALUES (?, ?, ?, ?, ?)", rows)
        with sqlite3.connect(url.path if url else str(state / "dashd.db"), timeout=30) as db:
            # Fold the bulk load into the database now: left in the WAL, the
            # first commit after it (a login's, say) would pay for it.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import pymysql

    db = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password, database=url.database)
    with db.cursor() as cursor:
        for start in range(0, len(rows), 20_000):
            cursor.executemany(
                "INSERT INTO samples (seq, host, ts_ms, metric, value) VALUES (%s, %s, %s, %s, %s)",
                rows[start : start + 20_000],
            )
    db.commit()
    db.close()


async def recv_json(ws) -> dict:
    return orjson.loads(await ws.recv())


async def history_flood(daemon: Daemon, token: str, stop: asyncio.Event, counts: dict, closed: list) -> None:
    async with connect(
        daemon.url("/dashboard", "ws"),
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        ping_interval=None,
    ) as ws:
        await recv_json(ws)
        in_flight, number = 0, 0
        try:
            while True:  # until the daemon closes the connection (the user is disabled mid-phase)
                while in_flight < 2:
                    number += 1
                    await ws.send(
                        orjson.dumps(
                            {"type": "history", "correlation_id": f"h{number}", "data": {**HISTORY, "host": "bench"}}
                        ).decode()
                    )
                    in_flight += 1
                message = await recv_json(ws)
                if str(message.get("correlation_id") or "").startswith("h"):
                    in_flight -= 1
                    kind = message["type"] if message["type"] != "error" else message["data"]["code"]
                    counts[kind] = counts.get(kind, 0) + 1
        except Exception:
            closed.append((time.monotonic(), ws.close_code))


async def phase_a(daemon: Daemon, seconds: float, result: dict) -> None:
    subprocess.run(
        [str(BIN / "dashd"), "user", "add", "alice", *daemon.cli_args()],
        input="alice-password-1\nalice-password-1\n",
        text=True,
        capture_output=True,
        check=True,
    )
    quiet = [http("GET", daemon.url("/api/ready"))[1] for _ in range(5)]
    token = daemon.token("alice", "viewer")
    stop, counts, closed = asyncio.Event(), {}, []
    floods = [asyncio.create_task(history_flood(daemon, token, stop, counts, closed)) for _ in range(5)]
    probes: list[float] = []
    ready_fail = 0
    started = time.monotonic()
    login = None
    disabled_at = None
    cli_seconds = -1.0
    while time.monotonic() - started < seconds:
        status, elapsed = await asyncio.to_thread(http, "GET", daemon.url("/api/ready"), None, 10)
        probes.append(elapsed)
        ready_fail += status != 200
        if login is None and time.monotonic() - started > seconds / 3:
            password = (daemon.state / "initial-admin-password").read_text().strip()
            login = await asyncio.to_thread(
                http, "POST", daemon.url("/api/login"), {"username": "admin", "password": password}, 30
            )
        if disabled_at is None and time.monotonic() - started > seconds / 2:
            cli_started = time.monotonic()
            await asyncio.to_thread(
                subprocess.run,
                [str(BIN / "dashd"), "user", "disable", "alice", *daemon.cli_args()],
                capture_output=True,
            )
            # The CLI has written the database by the time it exits (its
            # start-up, seconds on a loaded machine, is not the daemon's).
            disabled_at = time.monotonic()
            cli_seconds = disabled_at - cli_started
        await asyncio.sleep(0.25)
    stop.set()
    _, left = await asyncio.wait(floods, timeout=10)
    for task in left:
        task.cancel()
    revoked = [at - disabled_at for at, code in closed if code == 4001] if disabled_at else []
    result.update(
        history_ok=counts.get("history", 0),
        history_refused=counts.get("rate_limited", 0),
        ready_quiet_ms=round(statistics.median(quiet) * 1000, 1),
        ready_p50_ms=round(statistics.median(probes) * 1000, 1),
        ready_max_ms=round(max(probes) * 1000, 1),
        ready_failed=ready_fail,
        login_status=login[0] if login else 0,
        login_ms=round(login[1] * 1000, 1) if login else -1,
        revoked_closed=len(revoked),
        disable_cli_s=round(cli_seconds, 2),
        revoke_close_after_cli_max_s=round(max(revoked), 2) if revoked else -1,
    )


def ws_frame(payload: bytes) -> bytes:
    length = len(payload)
    header = bytes((0x81, 0x80 | length)) if length < 126 else bytes((0x81, 0xFE)) + length.to_bytes(2, "big")
    return header + b"\0\0\0\0" + payload


def never_reads(port: int, token: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        (
            f"GET /dashboard HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    sock.sendall(ws_frame(orjson.dumps({"type": "auth", "data": {"token": token, "resume_after_seq": 0}})))
    return sock


async def phase_b(daemon: Daemon, seconds: float, result: dict) -> None:
    token = daemon.token("sleeper", "viewer")
    before = daemon.rss_mb()
    socks = [never_reads(daemon.port, token) for _ in range(5)]
    resume = ws_frame(b'{"type":"resume","correlation_id":"r","data":{"after_seq":0}}')
    history = ws_frame(orjson.dumps({"type": "history", "correlation_id": "h", "data": {**HISTORY, "host": "bench"}}))
    peak, dropped, started, tick = before, 0, time.monotonic(), 0
    while time.monotonic() - started < seconds:
        for sock in list(socks):
            try:
                sock.sendall(resume + (history if tick % 4 == 0 else b""))
            except OSError:
                socks.remove(sock)
                dropped += 1
        tick += 1
        peak = max(peak, daemon.rss_mb())
        await asyncio.sleep(0.05)
    for sock in socks:
        sock.close()
    result.update(
        rss_before_mb=round(before, 1),
        rss_peak_mb=round(peak, 1),
        rss_growth_mb=round(peak - before, 1),
        never_reading_dropped=dropped,
    )


async def viewer_count(daemon: Daemon, stop: asyncio.Event, counted: list) -> None:
    async with connect(
        daemon.url("/dashboard", "ws"),
        additional_headers={"Authorization": f"Bearer {daemon.token('watcher', 'viewer')}"},
        max_size=None,
        ping_interval=None,
    ) as ws:
        while not stop.is_set():
            try:
                await asyncio.wait_for(ws.recv(), 0.5)
                counted[0] += 1
            except TimeoutError:
                pass


async def phase_d(daemon: Daemon, seconds: float, result: dict) -> None:
    stop, counted = asyncio.Event(), [0]
    viewer = asyncio.create_task(viewer_count(daemon, stop, counted))
    values = {f"m{i}": float(i) for i in range(200)}
    acked: set[int] = set()
    pending: dict[str, list[int]] = {}
    refused: dict[str, int] = {}
    base = int(time.time() * 1000) - 3_600_000
    cpu = daemon.ps.cpu_percent(None)
    async with connect(
        daemon.url("/ingest", "ws"),
        additional_headers={"Authorization": f"Bearer {daemon.token('flood-1', 'agent')}"},
        max_size=None,
        ping_interval=None,
    ) as ws:
        await recv_json(ws)

        async def reader() -> None:
            while True:
                message = await recv_json(ws)
                stamps = pending.pop(str(message.get("correlation_id")), None)
                if stamps is None:
                    continue
                if message["type"] == "samples":
                    acked.update(stamps)
                else:
                    refused[message["data"]["code"]] = refused.get(message["data"]["code"], 0) + 1

        reading = asyncio.create_task(reader())
        started, number = time.monotonic(), 0
        counted[0] = 0
        while time.monotonic() - started < seconds:
            number += 1
            stamps = [base + number * 15 + i for i in range(15)]
            pending[f"b{number}"] = stamps
            await ws.send(
                orjson.dumps(
                    {
                        "type": "samples",
                        "correlation_id": f"b{number}",
                        "data": {
                            "samples": [
                                {"host": "flood-1", "timestamp": iso_ms(ts), "metrics": values} for ts in stamps
                            ]
                        },
                    }
                ).decode()
            )
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        viewer_rate = counted[0] / elapsed
        cpu = daemon.ps.cpu_percent(None)
        await asyncio.sleep(3)  # the last confirmations
        reading.cancel()
    stop.set()
    await asyncio.wait([viewer], timeout=5)
    stored = await asyncio.to_thread(stored_stamps, daemon)
    result.update(
        agent_sent=number * 15,
        agent_acked=len(acked),
        agent_refused=sum(refused.values()),
        agent_refused_codes="/".join(f"{k}:{v}" for k, v in sorted(refused.items())) or "none",
        lost_acked=len(acked - stored),
        viewer_msgs_per_s=round(viewer_rate, 1),
        daemon_cpu_pct=round(cpu),
    )


def stored_stamps(daemon: Daemon) -> set[int]:
    url = check_db_url(daemon.db) if daemon.db else None
    if url is None or url.dialect == "sqlite":
        with sqlite3.connect(url.path if url else str(daemon.state / "dashd.db"), timeout=30) as db:
            return {row[0] for row in db.execute("SELECT DISTINCT ts_ms FROM samples WHERE host = 'flood-1'")}
    import pymysql

    db = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password, database=url.database)
    with db.cursor() as cursor:
        cursor.execute("SELECT DISTINCT ts_ms FROM samples WHERE host = 'flood-1'")
        stamps = {row[0] for row in cursor.fetchall()}
    db.close()
    return stamps


def mysql_database(base_url: str) -> tuple[str, callable]:
    import pymysql

    base = check_db_url(base_url)
    name = f"dashd_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()

    password = f":{base.password}" if base.password else ""
    return f"mysql://{base.user}{password}@{base.host}:{base.port}/{name}", drop


async def main(args: argparse.Namespace) -> None:
    drop = None
    db = None
    if args.db:
        db, drop = mysql_database(args.db)
    with tempfile.TemporaryDirectory(prefix="dashd-hardening-") as tmp:
        state = Path(tmp) / "state"
        daemon = Daemon(state, db)
        result: dict = {"db": "mysql" if db else "sqlite", "seconds": args.seconds}
        try:
            await asyncio.to_thread(fill, db or "", state)
            await phase_a(daemon, args.seconds, result)
            await phase_b(daemon, args.seconds, result)
            await phase_d(daemon, args.seconds, result)
        finally:
            daemon.stop()
            if drop is not None:
                drop()
            if args.log:
                daemon.log.flush()
                Path(args.log).write_text(Path(daemon.log.name).read_text())
    print("RESULT " + " ".join(f"{key}={value}" for key, value in result.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="", help="mysql://... base URL (a fresh database is made); default SQLite")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--log", default="", help="copy the daemon's log here")
    asyncio.run(main(parser.parse_args()))
