"""The WebSocket protocol over real loopback connections against the real
service tree (in-process)."""

from __future__ import annotations

import pytest_twisted

from wsclient import connect

SEED = ("cpu_usage", "memory_usage", "network_traffic", "active_connections")


@pytest_twisted.ensureDeferred
async def test_bearer_client_gets_ack_then_latest_sample_then_updates(daemon):
    client = await connect(daemon.url("/dashboard"), token=daemon.token("viewer"))
    ack = await client.recv()
    assert ack["type"] == "connection_ack"
    assert ack["data"]["role"] == "viewer" and ack["data"]["protocol_version"] == 1
    names = {m["name"] for m in ack["data"]["metrics"]}
    assert set(SEED) <= names
    updates = [await client.recv_type("metrics_update") for _ in range(3)]
    seqs = [u["seq"] for u in updates]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    for update in updates:
        assert set(SEED) <= set(update["data"]["metrics"])
        assert update["data"]["host"] == "testhost"
        assert update["data"]["timestamp"].endswith("Z")
    assert updates[-1]["data"]["metrics"]["active_connections"] >= 1
    client.close()
    await client.closed()
