"""Several dashd nodes on one Redis, as an operator runs them: two `twistd
dashd` processes with different --host-name and --state-dir, one --bus,
real sockets. A client on either node gets every sample of both in one seq
order, resume works on the other node, and a Redis outage (a port forwarder
we kill and restart) is survived by both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.sync.client import connect as ws_connect

from test_redis_bus import redis_prefix  # noqa: F401 (fixture)
from test_store import stored_rows_sync
from test_twistd import BIN, Daemon, free_port, run

MYSQL_URL = os.environ.get("DASHD_TEST_MYSQL_URL", "")
REQUIRE_MYSQL = os.environ.get("DASHD_REQUIRE_MYSQL") == "1"

FORWARDER = r"""
import asyncio, sys
LISTEN, HOST, PORT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()

async def handle(reader, writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(HOST, PORT)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN, reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


class Forwarder:
    """127.0.0.1:port -> Redis, in a subprocess we can kill (the machine's
    Redis itself is never touched)."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.target = (parts.hostname, parts.port or 6379)
        self.path = parts.path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORWARDER, str(self.port), self.target[0], str(self.target[1])],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def url(self, prefix: str) -> str:
        return f"redis://127.0.0.1:{self.port}{self.path}?prefix={prefix}"


@pytest.fixture
def mysql_db():
    """A fresh MariaDB/MySQL database both nodes share."""
    if not MYSQL_URL:
        if REQUIRE_MYSQL:
            pytest.fail("DASHD_REQUIRE_MYSQL=1 but DASHD_TEST_MYSQL_URL is not set")
        pytest.skip("DASHD_TEST_MYSQL_URL is not set (e.g. mysql://root@127.0.0.1:3306/test)")
    import pymysql

    from dashd.settings import check_db_url

    base = check_db_url(MYSQL_URL)
    name = f"dashd_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password, autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        password = f":{base.password}" if base.password else ""
        yield f"mysql://{base.user}{password}@{base.host}:{base.port}/{name}", admin, name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def node(tmp_path: Path, name: str, bus: str, *extra: str) -> Daemon:
    state = tmp_path / name
    state.mkdir(exist_ok=True)
    # The seed's metrics only (`--collectors host`): the final check counts
    # every metric of every sample, and labelled series ride only in the
    # samples that follow a collector's read.
    return Daemon(
        state,
        free_port(),
        "--host-name",
        name,
        "--bus",
        bus,
        "--secret-file",
        str(tmp_path / "secret.key"),
        "--collectors",
        "host",
        *extra,
    )


def viewer_token(tmp_path: Path) -> str:
    result = run(
        str(BIN / "dashd"),
        "token",
        "--role",
        "viewer",
        "--ttl",
        "10m",
        "--state-dir",
        str(tmp_path / "tok"),
        "--secret-file",
        str(tmp_path / "secret.key"),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def open_client(daemon: Daemon, token: str, resume_after: int | None = None):
    headers = {"Authorization": f"Bearer {token}"} if resume_after is None else {}
    client = ws_connect(f"ws://127.0.0.1:{daemon.port}/dashboard", additional_headers=headers, open_timeout=10)
    if resume_after is not None:
        client.send(
            json.dumps(
                {"type": "auth", "correlation_id": "r", "data": {"token": token, "resume_after_seq": resume_after}}
            )
        )
    ack = json.loads(client.recv(timeout=10))
    assert ack["type"] == "connection_ack", ack
    return client


def read_for(client, seconds: float, until=None) -> list[dict]:
    """Messages for `seconds`, or until `until(messages)` is true."""
    messages: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            messages.append(json.loads(client.recv(timeout=max(0.01, deadline - time.monotonic()))))
        except TimeoutError:
            break
        if until is not None and until(messages):
            break
    return messages


def samples(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "metrics_update"]


def hosts_each(count: int):
    return lambda messages: all(
        sum(1 for m in samples(messages) if m["data"]["host"] == host) >= count for host in ("node-a", "node-b")
    )


def assert_consecutive(messages: list[dict]) -> None:
    seqs = [m["seq"] for m in messages if "seq" in m]
    # The first one or two are the latest sample of each host (sent right
    # after connection_ack); from then on every seq, in order.
    live = seqs[2:]
    assert live == list(range(live[0], live[0] + len(live))), seqs


def test_two_nodes_serve_every_sample_of_both_in_order_and_resume_on_either(tmp_path, mysql_db, redis_prefix):
    db_url, admin, db_name = mysql_db
    base, prefix = redis_prefix
    bus = f"{base}?prefix={prefix}"
    a = node(tmp_path, "node-a", bus, "--db", db_url)  # first: it runs the migrations
    b = None
    try:
        b = node(tmp_path, "node-b", bus, "--db", db_url)
        token = viewer_token(tmp_path)
        with open_client(a, token) as on_a, open_client(b, token) as on_b:
            got_a = read_for(on_a, 10, hosts_each(8))
            got_b = read_for(on_b, 10, hosts_each(8))
            assert hosts_each(8)(got_a) and hosts_each(8)(got_b)
            assert_consecutive(got_a)
            assert_consecutive(got_b)
            seen_a = {m["seq"]: m["data"]["host"] for m in samples(got_a)}
            seen_b = {m["seq"]: m["data"]["host"] for m in samples(got_b)}
            common = set(seen_a) & set(seen_b)
            assert len(common) >= 8 and all(seen_a[s] == seen_b[s] for s in common)
            last = max(m["seq"] for m in got_a if "seq" in m)
        # Disconnected from A; a while later the dashboard reconnects to B.
        time.sleep(1.5)
        with open_client(b, token, resume_after=last) as back:
            resumed = read_for(back, 10, lambda ms: any(m["type"] == "resume" for m in ms))
            summary = next(m for m in resumed if m["type"] == "resume")
            assert summary["data"]["gaps"] == [], summary
            replayed = [m for m in resumed[: resumed.index(summary)] if "seq" in m]
            seqs = sorted(m["seq"] for m in replayed)
            assert seqs and seqs[0] == last + 1 and seqs == list(range(last + 1, last + 1 + len(seqs)))
            assert {m["data"]["host"] for m in samples(replayed)} == {"node-a", "node-b"}
            # History of either host, on either node (one shared database).
            for host in ("node-a", "node-b"):
                back.send(
                    json.dumps(
                        {
                            "type": "history",
                            "correlation_id": host,
                            "data": {"metrics": ["cpu_usage"], "from": "-5m", "max_points": 1000, "host": host},
                        }
                    )
                )
                reply = read_for(back, 10, lambda ms, host=host: any(m.get("correlation_id") == host for m in ms))[-1]
                assert reply["type"] == "history", reply
                assert sum(p["count"] for p in reply["data"]["series"]["cpu_usage"]) >= 8
        # Each sample written once, by the node that collected it: decoded
        # from the raw chunks and both nodes' head rows.
        rows = stored_rows_sync(db_url)
        per_host: dict[str, list[tuple]] = {}
        for seq, host, _ts, metric, _value in rows:
            per_host.setdefault(host, []).append((seq, metric))
        assert sorted(per_host) == ["node-a", "node-b"]
        for host, keys in per_host.items():
            assert len(keys) == len(set(keys)), f"{host}: a sample stored twice"
            metrics = {metric for _seq, metric in keys}
            assert len(keys) == len({seq for seq, _metric in keys}) * len(metrics), host
        hosts_of_seq: dict[int, set[str]] = {}
        for seq, host, *_ in rows:
            hosts_of_seq.setdefault(seq, set()).add(host)
        assert all(len(hosts) == 1 for hosts in hosts_of_seq.values())
        with admin.cursor() as cursor:  # each node wrote its head rows under its own node id
            cursor.execute(f"SELECT COUNT(DISTINCT owner) FROM {db_name}.chunk_head")
            assert cursor.fetchone()[0] == 2
        for daemon in (a, b):
            assert daemon.terminate()
            assert "Traceback" not in daemon.output()
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_both_nodes_keep_serving_through_a_redis_outage_and_recover(tmp_path, redis_prefix):
    base, prefix = redis_prefix
    forwarder = Forwarder(base)
    forwarder.start()
    a = b = None
    try:
        # Each node its own SQLite: this test is about the bus.
        a = node(tmp_path, "node-a", forwarder.url(prefix))
        b = node(tmp_path, "node-b", forwarder.url(prefix))
        token = viewer_token(tmp_path)
        with open_client(a, token) as on_a, open_client(b, token) as on_b:
            before = {"a": read_for(on_a, 10, hosts_each(3)), "b": read_for(on_b, 10, hosts_each(3))}
            assert hosts_each(3)(before["a"]) and hosts_each(3)(before["b"])
            forwarder.kill()  # Redis "goes away" for both nodes
            time.sleep(0.5)
            during = {"a": read_for(on_a, 2.5), "b": read_for(on_b, 2.5)}
            # Each node keeps serving its own samples to its own clients.
            assert len([m for m in samples(during["a"]) if m["data"]["host"] == "node-a"]) >= 5
            assert len([m for m in samples(during["b"]) if m["data"]["host"] == "node-b"]) >= 5
            forwarder.start()
            after = {}
            for key, client in (("a", on_a), ("b", on_b)):
                # A resume_gap for what the node may have missed, then both hosts again.
                after[key] = read_for(
                    client,
                    20,
                    lambda ms: (
                        any(m["type"] == "resume_gap" for m in ms)
                        and hosts_each(3)(ms[next(i for i, m in enumerate(ms) if m["type"] == "resume_gap") :])
                    ),
                )
            for key in ("a", "b"):
                stream = before[key] + during[key] + after[key]
                gap = next((m for m in stream if m["type"] == "resume_gap"), None)
                assert gap is not None, [m["type"] for m in after[key]]
                assert gap["correlation_id"] is None and gap["data"]["from_seq"] <= gap["data"]["to_seq"]
                seqs = [m["seq"] for m in stream if "seq" in m]
                assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # never backwards, never twice
                following = [m["seq"] for m in after[key][after[key].index(gap) :] if "seq" in m]
                assert following and following[0] > gap["data"]["to_seq"]
        for daemon in (a, b):
            log = daemon.output()
            assert log.count("redis bus: lost the connection") == 1, log[-3000:]
            assert log.count("redis bus: connected again") == 1, log[-3000:]
            assert daemon.terminate()
            assert "Traceback" not in daemon.output()
    finally:
        forwarder.kill()
        for daemon in (a, b):
            if daemon is not None:
                daemon.kill()
