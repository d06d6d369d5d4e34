"""Labelled series over real sockets: the collectors' series in
metrics_update next to the seed metrics, subscriptions with label matchers,
history and stats of labelled series, the catalogue's families, a bad
selector's typed error, the HTTP history with selectors and the Prometheus
exposition with labels."""

from __future__ import annotations

import urllib.parse

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from conftest import start_daemon
from dashd.collect.series_names import series
from httpclient import http
from wsclient import connect

LO_RX = series("net_rx_bytes_per_second", iface="lo")
LO_UP = series("net_link_up", iface="lo")
SEED = ("cpu_usage", "memory_usage", "network_traffic", "active_connections")


async def collecting_daemon(make_settings):
    return await start_daemon(
        make_settings(
            collectors="netifs,system,filesystems",
            netifs_interval="0.5s",
            system_interval="0.5s",
            filesystems_interval="1s",
        )
    )


async def authed(daemon, role="viewer"):
    client = await connect(daemon.url("/dashboard"), token=daemon.token(role))
    ack = await client.recv()
    assert ack["type"] == "connection_ack", ack
    return client, ack


async def update_with(client, name: str, limit: int = 60) -> dict:
    for _ in range(limit):
        update = await client.recv_type("metrics_update")
        if name in update["data"]["metrics"]:
            return update
    raise AssertionError(f"no metrics_update carried {name} in {limit} updates")


@pytest_twisted.ensureDeferred
async def test_labelled_series_ride_in_the_host_update_after_the_seed_metrics(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, _ = await authed(daemon)
        update = await update_with(client, LO_RX)
        names = list(update["data"]["metrics"])
        assert set(SEED) <= set(names) and names.index("cpu_usage") < names.index(LO_RX)
        assert isinstance(update["data"]["metrics"][LO_RX], float) and update["seq"] > 0
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_label_matcher_subscription_gets_only_those_series(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, _ = await authed(daemon)
        reply = await client.request("subscribe", {"metrics": ['net_*_bytes_per_second{iface="lo"}']})
        assert reply["type"] == "subscribe", reply
        update = await update_with(client, LO_RX)
        assert set(update["data"]["metrics"]) == {LO_RX, series("net_tx_bytes_per_second", iface="lo")}
        reply = await client.request("subscribe", {"metrics": ['net_link_up{iface!="lo"}', "cpu_usage"]})
        for _ in range(10):
            metrics = (await client.recv_type("metrics_update"))["data"]["metrics"]
            assert "cpu_usage" in metrics and LO_UP not in metrics
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_history_and_stats_of_a_labelled_series_after_the_collectors_ran(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, _ = await authed(daemon)
        for _ in range(3):
            await update_with(client, LO_UP)
        reply = await client.request(
            "history", {"metrics": ['net_link_up{iface="lo"}', "cpu_usage"], "from": "-1m", "max_points": 5}
        )
        assert reply["type"] == "history", reply
        assert set(reply["data"]["series"]) == {LO_UP, "cpu_usage"}
        points = reply["data"]["series"][LO_UP]
        assert sum(p["count"] for p in points) >= 2 and all(p["avg"] == 1.0 for p in points)
        stats = await client.request(
            "stats", {"metrics": ['tcp_connections{state=~"listen|established"}'], "window": 60}
        )
        assert stats["type"] == "stats", stats
        assert set(stats["data"]["metrics"]) <= {
            series("tcp_connections", state="listen"),
            series("tcp_connections", state="established"),
        }
        assert stats["data"]["metrics"][series("tcp_connections", state="listen")]["count"] >= 1
        query = urllib.parse.urlencode({"metrics": f"cpu_usage,{LO_UP}", "from": "-1m", "max_points": "5"})
        answered = await http(
            "GET", daemon.url(f"/api/history?{query}", "http"), headers={"Authorization": f"Bearer {daemon.token()}"}
        )
        assert answered.status == 200, answered.body
        assert set(answered.json()["series"]) == {"cpu_usage", LO_UP}
        query = urllib.parse.urlencode(
            {"metrics": 'net_link_up{iface="lo",iface!="x"}', "from": "-1m", "format": "json"}
        )
        exported = await http(
            "GET", daemon.url(f"/api/export?{query}", "http"), headers={"Authorization": f"Bearer {daemon.token()}"}
        )
        assert exported.status == 200, exported.body
        assert list(exported.json()["series"]) == [LO_UP]
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_the_catalogue_lists_families_with_their_label_values(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, ack = await authed(daemon)
        # Announced from the start (no label values before the first reading).
        assert "net_rx_bytes_per_second" in {f["name"] for f in ack["data"]["families"]}
        assert "cpu_usage" in {m["name"] for m in ack["data"]["metrics"]}
        await update_with(client, LO_RX)
        reply = await client.request("catalogue")
        families = {f["name"]: f for f in reply["data"]["families"]}
        assert families["net_rx_bytes_per_second"]["unit"] == "B/s"
        assert families["net_rx_bytes_per_second"]["kind"] == "rate"
        assert "lo" in families["net_rx_bytes_per_second"]["labels"]["iface"]
        assert "cpu_usage" not in families  # seed metrics stay in `metrics`
        body = (await http("GET", daemon.url("/api/catalogue", "http"))).json()
        assert "lo" in {f["name"]: f for f in body["families"]}["net_link_up"]["labels"]["iface"]
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_a_bad_selector_gets_a_typed_error_with_details(daemon):
    client, _ = await authed(daemon)
    for request, data in (
        ("subscribe", {"metrics": ['disk_used_percent{mount="/"']}),
        ("history", {"metrics": ['net_*{iface=~"("}']}),
        ("stats", {"metrics": ["cpu usage"]}),
    ):
        error = await client.request(request, data)
        assert error["type"] == "error" and error["data"]["code"] == "bad_message", error
        assert error["data"]["details"]["selector"] == data["metrics"][0] and error["data"]["details"]["reason"]
    unknown = await client.request("subscribe", {"metrics": ['nope{a="b"}']})
    assert unknown["data"]["code"] == "bad_message" and "unknown metric" in unknown["data"]["message"]
    client.close()


@pytest_twisted.ensureDeferred
async def test_prometheus_exposition_carries_labelled_series_with_their_labels(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, _ = await authed(daemon)
        await update_with(client, LO_UP)
        text = (await http("GET", daemon.url("/metrics", "http"))).body.decode()
        assert 'dashd_host_net_link_up{host="testhost",iface="lo"} 1.0' in text
        assert any(line.startswith('dashd_host_cpu_usage{host="testhost"} ') for line in text.splitlines())
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_resume_replays_the_labelled_series_in_the_missed_updates(make_settings):
    daemon = await collecting_daemon(make_settings)
    try:
        client, _ = await authed(daemon)
        first = await update_with(client, LO_RX)
        client.close()
        # The daemon goes on collecting while nobody listens (a few netifs reads).
        await deferLater(reactor, 1.5, lambda: None)
        later, _ = await authed(daemon)
        later.send({"type": "resume", "data": {"after_seq": first["seq"]}, "correlation_id": "r"})
        replayed = []
        while True:
            message = await later.recv()
            if message["type"] == "resume":
                break
            if message["type"] == "metrics_update" and message["seq"] > first["seq"]:
                replayed.append(message)
        assert message["data"]["replayed"] + message["data"]["recovered"] >= 1
        assert any(LO_RX in m["data"]["metrics"] for m in replayed)
        later.close()
    finally:
        await daemon.stop()
