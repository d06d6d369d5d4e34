"""The outbox survives dashd being killed: `twistd dashd` (a real
subprocess) fires an alert while its webhook receiver is down, is killed
with SIGKILL with the delivery pending, and after a restart delivers it
once the receiver is up. Two nodes on one Redis bus and one MySQL database,
each evaluating the rules on both nodes' samples, deliver each alert once,
not once per node. A bad channel section stops `twistd dashd` with one line
on stderr."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from test_redis_bus import redis_prefix  # noqa: F401 (fixture)
from test_scaling import mysql_db, node  # noqa: F401 (fixture)
from test_twistd import BIN, Daemon, free_port, run

WAIT_LIMIT = 30.0


class Recorder(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def wait_for(check, what):
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def outbox(db: str) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(
                "SELECT dedup_key, status, attempts, payload FROM alert_outbox ORDER BY id"
            ).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet


def test_a_pending_delivery_survives_sigkill_and_is_delivered_after_restart(tmp_path):
    state = tmp_path / "state"
    hook_port = free_port()
    ini = tmp_path / "dashd.ini"
    ini.write_text(f"""
[dashd]
alert_allow_networks = 127.0.0.0/8
alert_retry_first = 0.2s
alert_retry_max = 1s

[rules]
always = cpu_usage >= 0 for 0 level=critical

[channel:hook]
kind = webhook
url = http://127.0.0.1:{hook_port}/hook
timeout = 2s

[route:all]
channels = hook
group_wait = 0s
""")
    db = str(state / "dashd.db")
    daemon = Daemon(state, free_port(), "--config", str(ini), "--host-name", "killed-node")
    server = None
    try:
        rows = wait_for(lambda: [r for r in outbox(db) if r[1] == "pending" and r[2] >= 1], "a failed attempt")
        daemon.process.kill()  # SIGKILL: no shutdown, the delivery stays pending
        daemon.process.wait(10)
        pending_key, _, _, payload = rows[0]
        started = json.loads(payload)["alerts"][0]["startsAt"]
        server = start_recorder(hook_port)
        daemon = Daemon(state, daemon.port, "--config", str(ini), "--host-name", "killed-node")
        wait_for(
            lambda: any(m["alerts"][0]["startsAt"] == started for m in Recorder.received),
            "the first run's alert to arrive",
        )
        final = {r[0]: r[1] for r in outbox(db)}
        assert final[pending_key] == "delivered"
        firsts = [m for m in Recorder.received if m["alerts"][0]["startsAt"] == started and m["kind"] == "notify"]
        assert len(firsts) == 1  # delivered once
        assert firsts[0]["alerts"][0]["labels"]["host"] == "killed-node"
        assert daemon.terminate()
        assert "Traceback" not in daemon.output()
    finally:
        daemon.kill()
        if server is not None:
            server.shutdown()
            server.server_close()


def start_recorder(port: int) -> ThreadingHTTPServer:
    Recorder.received = []
    server = ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_two_nodes_on_redis_deliver_each_alert_once(tmp_path, mysql_db, redis_prefix):
    db_url, admin, db_name = mysql_db
    base, prefix = redis_prefix
    bus = f"{base}?prefix={prefix}"
    hook_port = free_port()
    ini = tmp_path / "dashd.ini"
    ini.write_text(f"""
[dashd]
alert_allow_networks = 127.0.0.0/8

[rules]
always = cpu_usage >= 0 for 0 level=warning

[channel:hook]
kind = webhook
url = http://127.0.0.1:{hook_port}/hook

[route:all]
channels = hook
group_by = alertname, host
group_wait = 1s
""")
    server = start_recorder(hook_port)
    a = node(tmp_path, "node-a", bus, "--db", db_url, "--config", str(ini))  # first: it runs the migrations
    b = None
    try:
        b = node(tmp_path, "node-b", bus, "--db", db_url, "--config", str(ini))

        def both_hosts():
            hosts = [m["alerts"][0]["labels"]["host"] for m in Recorder.received if m["kind"] == "notify"]
            return {"node-a", "node-b"} <= set(hosts) and hosts

        wait_for(both_hosts, "an alert for each node's host")
        time.sleep(3)  # any second copy (one per node) would have arrived by now: group_wait is 1 s
        hosts = sorted(m["alerts"][0]["labels"]["host"] for m in Recorder.received if m["kind"] == "notify")
        assert hosts == ["node-a", "node-b"]
        with admin.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*), COUNT(DISTINCT dedup_key) FROM {db_name}.alert_outbox")
            total, distinct = cursor.fetchone()
            assert total == distinct == 2
            cursor.execute(f"SELECT COUNT(*) FROM {db_name}.alert_attempts")
            assert cursor.fetchone()[0] == 2  # one attempt each, by one node
        for daemon in (a, b):
            assert daemon.terminate()
            assert "Traceback" not in daemon.output()
    finally:
        a.kill()
        if b is not None:
            b.kill()
        server.shutdown()
        server.server_close()


def test_twistd_stops_with_one_line_on_a_bad_channel_section(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[channel:pager]\nkind = webhook\nurl = http://x\nformat = irc\n")
    result = run(
        str(BIN / "twistd"), "--nodaemon", "--pidfile=", "dashd", "--state-dir", str(tmp_path), "--config", str(ini)
    )
    assert result.returncode != 0
    lines = [line for line in (result.stderr + result.stdout).splitlines() if "[channel:pager]" in line]
    assert lines == [
        "dashd: invalid configuration: [channel:pager]: format must be one of generic, slack, "
        "mattermost, discord, teams"
    ], result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    checked = run(str(BIN / "dashd"), "check-config", "--config", str(ini), "--state-dir", str(tmp_path))
    assert checked.returncode != 0 and "[channel:pager]: format must be one of" in checked.stderr
