"""Agents: `dashd agent` pushing samples to a hub's /ingest.

From the bottom up: the agent's buffer and batching with a fake connection
and task.Clock; the hub's /ingest over a real loopback WebSocket (validation,
forbidden, de-duplication, also across a hub restart via the store); an
in-process agent over ws:// and wss://; and real processes — one `twistd
dashd` hub and two `dashd agent`s — across a hub restart.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.internet.task import Clock, deferLater
from websockets.sync.client import connect as ws_connect

from conftest import start_daemon
from dashd.agent import build_agent
from dashd.clients.ingest import (
    IngestService,
    RecentTimestamps,
    StoredTimestamps,
    validate_batch,
)
from dashd.collect.agent import MAX_IN_FLIGHT, SampleBuffer, Uplink
from dashd.collect.collector import Sample
from dashd.errors import ProtocolError
from dashd.timefmt import iso_ms, now_ms
from dashd.wire.agent_client import hub_endpoint
from test_twistd import BIN, Daemon, free_port, run
from wsclient import connect

# ----- helpers


def sample(ts: int, host: str = "agent-a", **metrics: float) -> Sample:
    return Sample(host, ts, metrics or {"cpu_usage": 1.0})


def wire(ts: int, host: str = "agent-a", **metrics: float) -> dict:
    return {"host": host, "timestamp": iso_ms(ts), "metrics": metrics or {"cpu_usage": 1.0, "memory_usage": 2.0}}


class FakeUplinkProtocol:
    """What Uplink calls on a connection: send_bytes and close."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send_bytes(self, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        pass


def connected_uplink(buffer: SampleBuffer, **options) -> tuple[Uplink, FakeUplinkProtocol]:
    uplink = Uplink(buffer, Clock(), **options)
    protocol = FakeUplinkProtocol()
    uplink.opened(protocol)
    uplink.received(protocol, {"type": "connection_ack", "data": {"host": "agent-a", "limits": {}}})
    return uplink, protocol


def batch_timestamps(message: dict) -> list[str]:
    return [s["timestamp"] for s in message["data"]["samples"]]


# ----- the agent's buffer and batching (no I/O)


def test_buffer_is_bounded_and_drops_the_oldest_first():
    buffer = SampleBuffer(capacity=3)
    for ts in range(1000, 1005):
        buffer.add(sample(ts))
    assert len(buffer) == 3 and buffer.dropped == 2 and buffer.added == 5
    batch = buffer.next_batch("b1", max_samples=10, max_bytes=10_000)
    assert batch.timestamps == (1002, 1003, 1004)


def test_batches_respect_the_sample_and_byte_limits():
    buffer = SampleBuffer()
    for ts in range(1_000_000, 1_000_010):
        buffer.add(sample(ts, cpu_usage=12.5))
    assert len(buffer.next_batch("b1", max_samples=4, max_bytes=100_000).timestamps) == 4
    small = buffer.next_batch("b2", max_samples=100, max_bytes=250)
    assert 1 <= len(small.timestamps) < 6 and len(small.payload) <= 250
    assert json.loads(small.payload)["type"] == "samples"


def test_uplink_removes_only_confirmed_samples_and_resends_the_rest_after_a_reconnect():
    buffer = SampleBuffer()
    for ts in range(1000, 1010):
        buffer.add(sample(ts))
    uplink, first = connected_uplink(buffer, batch_size=2)
    assert len(first.sent) == MAX_IN_FLIGHT  # 4 batches of 2 in flight, 2 samples wait
    uplink.received(
        first,
        {
            "type": "samples",
            "correlation_id": first.sent[0]["correlation_id"],
            "data": {"accepted": 2, "duplicates": 0},
        },
    )
    assert len(buffer) == 8
    assert len(first.sent) == 5  # the confirmation made room for the last batch
    uplink.closed(first, 1006, "hub went away")
    second = FakeUplinkProtocol()
    uplink.opened(second)
    assert second.sent == []  # nothing before the hub's connection_ack
    uplink.received(second, {"type": "connection_ack", "data": {"limits": {}}})
    resent = [ts for message in second.sent for ts in batch_timestamps(message)]
    assert resent == [iso_ms(ts) for ts in range(1002, 1010)]


def test_uplink_drops_a_batch_the_hub_refuses_for_good_and_resends_one_it_could_not_take():
    buffer = SampleBuffer()
    for ts in range(1000, 1004):
        buffer.add(sample(ts))
    uplink, protocol = connected_uplink(buffer, batch_size=2)
    refused, busy = protocol.sent[0], protocol.sent[1]
    uplink.received(
        protocol,
        {
            "type": "error",
            "correlation_id": refused["correlation_id"],
            "data": {"code": "forbidden", "message": "other host"},
        },
    )
    uplink.received(
        protocol,
        {
            "type": "error",
            "correlation_id": busy["correlation_id"],
            "data": {"code": "unavailable", "message": "store down"},
        },
    )
    assert len(buffer) == 2
    uplink.pump()
    assert batch_timestamps(protocol.sent[-1]) == batch_timestamps(busy)


def test_uplink_adopts_the_hubs_limits_from_connection_ack():
    uplink, _ = connected_uplink(SampleBuffer())
    uplink.received(
        None,
        {"type": "connection_ack", "data": {"limits": {"max_message_bytes": 16384, "max_samples_per_message": 50}}},
    )
    assert uplink.batch_size == 50 and uplink.max_batch_bytes == 16384 - 1024


def test_hub_endpoint_accepts_only_websocket_urls():
    with pytest.raises(ValueError):
        hub_endpoint(reactor, "http://hub/ingest")
    with pytest.raises(ValueError):
        hub_endpoint(reactor, "ws://hub/ingest", ca_file="/nonexistent.pem")
    assert hub_endpoint(reactor, "ws://127.0.0.1:8080/ingest") is not None


# ----- the hub's validation and de-duplication (no I/O)


@pytest.mark.parametrize(
    "data,code,fragment",
    [
        ({}, "bad_message", "'samples'"),
        ({"samples": []}, "bad_message", "non-empty"),
        ({"samples": [wire(1_800_000_000_000)] * 501}, "too_large", "500"),
        ({"samples": [wire(1_800_000_000_000, host="other")]}, "forbidden", "agent-a"),
        ({"samples": [{**wire(1_800_000_000_000), "timestamp": "yesterday"}]}, "bad_message", "ISO-8601"),
        ({"samples": [{**wire(1_800_000_000_000), "timestamp": "2027-01-15T08:00:00"}]}, "bad_message", "time zone"),
        ({"samples": [wire(1_800_000_000_000 + 3_600_000)]}, "bad_message", "future"),
        ({"samples": [wire(1_800_000_000_000, **{"bad-name": 1.0})]}, "bad_message", "metric names"),
        ({"samples": [wire(1_800_000_000_000, **{"x" * 65: 1.0})]}, "bad_message", "metric names"),
        ({"samples": [{**wire(1_800_000_000_000), "metrics": {"cpu_usage": "high"}}]}, "bad_message", "finite"),
        ({"samples": [{**wire(1_800_000_000_000), "metrics": {"cpu_usage": True}}]}, "bad_message", "finite"),
        ({"samples": [{**wire(1_800_000_000_000), "metrics": {"cpu_usage": float("inf")}}]}, "bad_message", "finite"),
        ({"samples": [{**wire(1_800_000_000_000), "metrics": {f"m{i}": 1 for i in range(201)}}]}, "too_large", "200"),
    ],
)
def test_validate_batch_refuses_with_a_typed_error(data, code, fragment):
    with pytest.raises(ProtocolError) as refused:
        validate_batch(data, "agent-a", now_ms=1_800_000_000_000)
    assert refused.value.code == code and fragment in refused.value.message


def test_validate_batch_returns_samples_in_unix_ms():
    samples = validate_batch({"samples": [wire(1_800_000_000_123, cpu_core_63=5.0)]}, "agent-a", 1_800_000_000_000)
    assert samples == [Sample("agent-a", 1_800_000_000_123, {"cpu_core_63": 5.0})]


def test_recent_timestamps_are_bounded_and_keep_the_newest():
    recent = RecentTimestamps(newest_stored=None, size=3)
    for ts in (10, 20, 30, 40):
        recent.add(ts)
    assert 10 not in recent and 40 in recent and recent.newest == 40
    assert recent.is_newer(41) and not recent.is_newer(15)


# ----- /ingest over a real loopback WebSocket


async def ingest_client(daemon, subject: str = "agent-a"):
    client = await connect(daemon.url("/ingest"), token=daemon.token("agent", subject=subject))
    ack = await client.recv()
    assert ack["type"] == "connection_ack" and ack["data"]["host"] == subject, ack
    return client


async def push(client, samples: list[dict], cid: str = "b1") -> dict:
    client.send({"type": "samples", "correlation_id": cid, "data": {"samples": samples}})
    return await client.reply_to(cid)


@pytest_twisted.ensureDeferred
async def test_ingested_samples_are_streamed_stored_and_deduplicated(daemon):
    viewer = await connect(daemon.url("/dashboard"), token=daemon.token())
    await viewer.recv_type("connection_ack")
    agent = await ingest_client(daemon)
    try:
        start = now_ms() - 10_000
        first = [wire(start + i * 200, cpu_usage=float(i), cpu_core_99=50.0) for i in range(5)]
        reply = await push(agent, first)
        assert reply["type"] == "samples"
        assert reply["data"] == {"accepted": 5, "duplicates": 0, "last_timestamp": iso_ms(start + 800)}
        # A resend of two of them plus one new sample: only the new one is taken.
        again = await push(agent, first[3:] + [wire(start + 1000, cpu_usage=5.0)], "b2")
        assert again["data"]["accepted"] == 1 and again["data"]["duplicates"] == 2
        updates = []
        while len(updates) < 6:
            message = await viewer.recv_type("metrics_update")
            if message["data"]["host"] == "agent-a":
                updates.append(message)
        assert [u["data"]["metrics"]["cpu_usage"] for u in updates] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        # A metric the hub's own catalogue lacks (a bigger host) reaches "*" subscribers.
        assert updates[0]["data"]["metrics"]["cpu_core_99"] == 50.0
        history = await viewer.request(
            "history", {"metrics": ["cpu_usage"], "host": "agent-a", "from": "-1m", "max_points": 5000}
        )
        assert sum(p["count"] for p in history["data"]["series"]["cpu_usage"]) == 6
    finally:
        agent.close()
        viewer.close()


@pytest_twisted.ensureDeferred
async def test_subscribe_hosts_filters_agent_samples(daemon):
    viewer = await connect(daemon.url("/dashboard"), token=daemon.token())
    await viewer.recv_type("connection_ack")
    agent = await ingest_client(daemon, "agent-b")
    try:
        reply = await viewer.request("subscribe", {"hosts": ["agent-b"]})
        assert reply["data"]["hosts"] == ["agent-b"]
        await push(agent, [wire(now_ms() - 1000, host="agent-b")])
        await deferLater(reactor, 0.5, lambda: None)  # the hub's own samples (testhost) keep coming meanwhile
        hosts = {
            m["data"]["host"]
            for m in viewer.received[viewer.received.index(reply) + 1 :]
            if m["type"] == "metrics_update"
        }
        assert hosts == {"agent-b"}
    finally:
        agent.close()
        viewer.close()


@pytest_twisted.ensureDeferred
async def test_an_agent_may_publish_only_for_its_own_host_and_stays_connected(daemon):
    agent = await ingest_client(daemon, "agent-a")
    try:
        refused = await push(agent, [wire(now_ms(), host="agent-b")])
        assert refused["type"] == "error" and refused["data"]["code"] == "forbidden"
        accepted = await push(agent, [wire(now_ms())], "b2")
        assert accepted["type"] == "samples" and accepted["data"]["accepted"] == 1
        assert "agent-b" not in daemon.core.hub.latest_sample
    finally:
        agent.close()


@pytest_twisted.ensureDeferred
async def test_ingest_reports_bad_frames_with_typed_errors(daemon):
    agent = await ingest_client(daemon)
    try:
        agent.send_raw(b"{not json")
        assert (await agent.recv())["data"]["code"] == "bad_json"
        agent.send({"type": "subscribe", "correlation_id": "u"})
        unknown = await agent.reply_to("u")
        assert unknown["data"]["code"] == "unknown_type" and "samples" in unknown["data"]["details"]["known"]
        too_many = await push(agent, [wire(now_ms() - i) for i in range(501)], "big")
        assert too_many["data"]["code"] == "too_large"
        agent.send({"type": "ping", "correlation_id": "p", "data": {"client_time": 7}})
        pong = await agent.reply_to("p")
        assert pong["type"] == "pong" and pong["data"]["client_time"] == 7
    finally:
        agent.close()


@pytest.mark.parametrize("role", ["viewer", "admin", None])
@pytest_twisted.ensureDeferred
async def test_ingest_needs_an_agent_token(daemon, role):
    client = await connect(daemon.url("/ingest"), token=daemon.token(role) if role else None)
    error = await client.recv()
    assert error["type"] == "error" and error["data"]["code"] == "unauthorized"
    code, _ = await client.closed()
    assert code == 4001


@pytest_twisted.ensureDeferred
async def test_agent_tokens_cannot_use_the_dashboard(daemon):
    client = await connect(daemon.url("/dashboard"), token=daemon.token("agent", subject="agent-a"))
    error = await client.recv()
    assert error["type"] == "error" and error["data"]["code"] == "unauthorized"
    assert (await client.closed())[0] == 4001


@pytest_twisted.ensureDeferred
async def test_deduplication_survives_a_hub_restart_through_the_store(daemon):
    """A fresh IngestService (a restarted hub: empty memory) still refuses
    samples the store already holds, and takes older samples it lacks."""
    agent = await ingest_client(daemon)
    start = now_ms() - 60_000
    try:
        await push(agent, [wire(start + i * 1000) for i in range(10)])
    finally:
        agent.close()
    published: list[Sample] = []
    restarted = IngestService(
        lambda s: (published.append(s), succeed(None))[1], StoredTimestamps(daemon.core.store), daemon.core.store.flush
    )
    resend = [sample(start + i * 1000) for i in range(5, 12)] + [sample(start + 500)]
    result = await restarted.accept("agent-a", resend)
    assert (result.accepted, result.duplicates) == (3, 5)
    assert sorted(s.timestamp_ms for s in published) == [start + 500, start + 10_000, start + 11_000]


# ----- a real agent, in process


@pytest_twisted.ensureDeferred
async def test_agent_pushes_its_samples_and_flushes_on_stop(daemon):
    agent = build_agent(
        reactor,
        hub=daemon.url("/ingest"),
        token=daemon.token("agent", subject="agent-x"),
        host="agent-x",
        interval=0.2,
        batch_interval=0.1,
    )
    agent.startService()
    try:
        deadline = reactor.seconds() + 10
        while "agent-x" not in daemon.core.hub.latest_sample and reactor.seconds() < deadline:
            await deferLater(reactor, 0.1, lambda: None)
        assert "agent-x" in daemon.core.hub.latest_sample
        assert "active_connections" not in daemon.core.hub.latest_sample["agent-x"].metrics
    finally:
        await agent.stopService()
    assert len(agent.buffer) == 0 and agent.uplink.confirmed == agent.buffer.added >= 1
    assert len(await daemon.core.store.sample_times("agent-x", 0, 2**62)) == agent.buffer.added


@pytest_twisted.ensureDeferred
async def test_agent_connects_over_wss_trusting_a_ca_file(make_settings, tmp_path):
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"))
    daemon = await start_daemon(make_settings(tls_listen=f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"))
    agent = build_agent(
        reactor,
        hub=f"wss://localhost:{daemon.port}/ingest",
        token=daemon.token("agent", subject="agent-tls"),
        host="agent-tls",
        interval=0.2,
        batch_interval=0.1,
        ca_file=cert,
    )
    agent.startService()
    try:
        deadline = reactor.seconds() + 10
        while agent.uplink.confirmed == 0 and reactor.seconds() < deadline:
            await deferLater(reactor, 0.1, lambda: None)
        assert agent.uplink.confirmed >= 1 and "agent-tls" in daemon.core.hub.latest_sample
    finally:
        await agent.stopService()
        await daemon.stop()


# ----- real processes: one hub, two agents, a hub restart


class AgentProcess:
    def __init__(self, directory: Path, port: int, token: str, name: str) -> None:
        self.name = name
        self.log_path = directory / f"agent-{name}.log"
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [
                str(BIN / "dashd"),
                "agent",
                "--hub",
                f"ws://127.0.0.1:{port}/ingest",
                "--token",
                token,
                "--host-name",
                name,
                "--interval",
                "0.2",
                "--batch-interval",
                "0.2",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM, then the number of samples the agent says it took (all confirmed)."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)
        found = re.search(r"agent stopped: (\d+) samples taken, all confirmed", self.output())
        assert found, self.output()
        return int(found.group(1))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def agent_token(state: Path, name: str) -> str:
    result = run(
        str(BIN / "dashd"), "token", "--role", "agent", "--subject", name, "--ttl", "10m", "--state-dir", str(state)
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def recv_until(client, predicate, timeout: float = 10.0) -> list[dict]:
    """Messages up to and including the first that satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        message = json.loads(client.recv(timeout=max(0.01, deadline - time.monotonic())))
        seen.append(message)
        if predicate(message, seen):
            return seen


def test_one_hub_two_agents_and_a_hub_restart_loses_no_sample(tmp_path):
    state = tmp_path / "hub"
    port = free_port()
    hub = Daemon(state, port)
    agents: list[AgentProcess] = []
    try:
        agents = [AgentProcess(tmp_path, port, agent_token(state, name), name) for name in ("agent-a", "agent-b")]
        viewer_token = run(str(BIN / "dashd"), "token", "--state-dir", str(state)).stdout.strip()
        with ws_connect(
            f"ws://127.0.0.1:{port}/dashboard",
            open_timeout=10,
            additional_headers={"Authorization": f"Bearer {viewer_token}"},
        ) as viewer:
            # Both agents' samples are streamed, told apart by host.
            seen = recv_until(
                viewer,
                lambda m, seen: (
                    {"agent-a", "agent-b"} <= {x["data"]["host"] for x in seen if x["type"] == "metrics_update"}
                ),
                timeout=15,
            )
            assert seen[0]["type"] == "connection_ack"
            # subscribe {hosts: [one]} filters.
            viewer.send(json.dumps({"type": "subscribe", "correlation_id": "s", "data": {"hosts": ["agent-b"]}}))
            recv_until(viewer, lambda m, _: m.get("correlation_id") == "s")
            after = recv_until(viewer, lambda m, seen: sum(x["type"] == "metrics_update" for x in seen) >= 5)
            assert {m["data"]["host"] for m in after if m["type"] == "metrics_update"} == {"agent-b"}
            # Each host's history comes from the store.
            for name in ("agent-a", "agent-b"):
                viewer.send(
                    json.dumps(
                        {
                            "type": "history",
                            "correlation_id": name,
                            "data": {"metrics": ["cpu_usage"], "host": name, "from": "-5m", "max_points": 5000},
                        }
                    )
                )
                reply = recv_until(viewer, lambda m, _, cid=name: m.get("correlation_id") == cid)[-1]
                assert reply["type"] == "history" and sum(p["count"] for p in reply["data"]["series"]["cpu_usage"]) > 0
        # The hub goes away mid-stream and comes back on the same port and state.
        down_from = int(time.time() * 1000)
        assert hub.terminate()
        time.sleep(2.0)  # the agents keep sampling into their buffers
        down_to = int(time.time() * 1000)
        hub = Daemon(state, port)
        time.sleep(3.0)  # reconnect (back-off), resend, and a little live streaming
        taken = {agent.name: agent.stop() for agent in agents}
        assert hub.terminate()
    finally:
        for agent in agents:
            agent.kill()
        hub.kill()
    from collections import Counter

    from test_store import stored_rows_sync

    stored = stored_rows_sync(f"sqlite:///{state / 'dashd.db'}")  # decoded from the chunks and the head
    for name, count in taken.items():
        rows = [row for row in stored if row[1] == name]
        timestamps = sorted({row[2] for row in rows})
        # Every sample the agent took is stored, once.
        assert len(timestamps) == count, (name, len(timestamps), count)
        duplicates = [key for key, n in Counter((row[2], row[3]) for row in rows).items() if n > 1]
        assert duplicates == []
        # ...including those taken while the hub was down, and no gap anywhere.
        assert sum(down_from + 300 <= ts <= down_to - 300 for ts in timestamps) >= 5
        gaps = [b - a for a, b in zip(timestamps, timestamps[1:])]
        assert max(gaps) < 1000, (name, max(gaps))
