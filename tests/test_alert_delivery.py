"""Alert delivery over real sockets and a real store: each webhook format
arrives byte for byte as recorded (tests/data/alert_payloads/), custom
headers are sent; the outbox survives a receiver that is down for 30 s
(injected clock) and delivers each notice exactly once, also with two nodes
sharing the database; failures (HTTP 500, a permanent 404, a garbage
answer, an unreachable SMTP server, an SSRF-refused target) end in the
delivery log with their reason, never as an unhandled error."""

from __future__ import annotations

import json
import os

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from alert_receivers import HttpReceiver, free_port, start_garbage_server
from dashd.alerting.channels import HttpTransport, parse_channel, transport_for
from dashd.alerting.model import FIRING, RESOLVED, AlertEvent, alert_labels, build_notice
from dashd.alerting.netguard import NetworkGuard, parse_networks
from dashd.alerting.outbox import Outbox, RetryPolicy
from dashd.store.alerting import AlertingStore
from dashd.store.database import Store

T0 = 1_764_151_200_000
DATA = os.path.join(os.path.dirname(__file__), "data", "alert_payloads")
LOOPBACK = parse_networks(["127.0.0.0/8"])


def sample_notice(channel="ops", key="k1"):
    firing = AlertEvent(
        "cpu_high",
        "web1",
        FIRING,
        "critical",
        alert_labels("cpu_high", "web1", "critical", [("team", "db")]),
        "cpu_usage > 90 on web1",
        "cpu_high: cpu_usage > 90 for 60s (now 97.5)",
        T0,
        None,
        97.5,
    )
    resolved = AlertEvent(
        "cpu_high",
        "web2",
        RESOLVED,
        "critical",
        alert_labels("cpu_high", "web2", "critical", [("team", "db")]),
        "cpu_usage back to normal on web2",
        "cpu_high: cpu_usage is 42 (clears at 80)",
        T0 - 600_000,
        T0 - 60_000,
        42.0,
    )
    return build_notice(
        channel,
        f"default/{channel}/alertname=cpu_high",
        {"alertname": "cpu_high"},
        [firing, resolved],
        "https://dash.example.com",
        key,
        50,
    )


def recorded(name: str) -> bytes:
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read().rstrip(b"\n")


# ----- formats


@pytest.mark.parametrize("fmt", ["generic", "slack", "mattermost", "discord", "teams"])
@pytest_twisted.ensureDeferred
async def test_each_webhook_format_arrives_byte_for_byte_as_recorded(fmt):
    receiver = HttpReceiver().start()
    try:
        config = parse_channel(
            "hook",
            {
                "kind": "webhook",
                "url": receiver.url,
                "format": fmt,
                "header.Authorization": "Bearer t0ken",
                "header.X-Team": "ops",
            },
        )
        result = await HttpTransport(config, NetworkGuard(reactor, LOOPBACK)).send(sample_notice().body)
    finally:
        await receiver.stop()
    assert result.ok and result.detail == "HTTP 200: ok"
    [request] = receiver.requests
    assert request["method"] == "POST" and request["path"] == "/hook"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["authorization"] == "Bearer t0ken" and request["headers"]["x-team"] == "ops"
    assert request["body"] == recorded(f"{fmt}.json")


@pytest_twisted.ensureDeferred
async def test_the_alertmanager_payload_is_a_list_of_postable_alerts_as_recorded():
    receiver = HttpReceiver().start()
    try:
        config = parse_channel(
            "am", {"kind": "alertmanager", "url": f"http://127.0.0.1:{receiver.port}/", "resend_interval": "60s"}
        )
        transport = HttpTransport(config, NetworkGuard(reactor, LOOPBACK), wall_clock_ms=lambda: T0 + 1000)
        result = await transport.send(sample_notice().body)
    finally:
        await receiver.stop()
    assert result.ok
    [request] = receiver.requests
    assert request["path"] == "/api/v2/alerts"
    assert request["body"] == recorded("alertmanager.json")
    alerts = json.loads(request["body"])
    assert alerts[0]["endsAt"] == "2025-11-26T10:04:01.000Z"  # firing: 4 resend periods ahead
    assert alerts[1]["endsAt"] == "2025-11-26T09:59:00.000Z"  # resolved: when it cleared


# ----- failures end in the result, with the reason


@pytest_twisted.ensureDeferred
async def test_a_webhook_500_is_a_retryable_failure_with_the_answer(logged_failures):
    receiver = HttpReceiver().start()
    receiver.status, receiver.answer = 500, b"database on fire"
    try:
        config = parse_channel("hook", {"kind": "webhook", "url": receiver.url})
        result = await HttpTransport(config, NetworkGuard(reactor, LOOPBACK)).send(sample_notice().body)
    finally:
        await receiver.stop()
    assert (result.ok, result.status, result.permanent) == (False, 500, False)
    assert result.detail == "HTTP 500: database on fire"
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_a_malformed_answer_is_a_failure_with_the_reason(logged_failures):
    garbage = start_garbage_server()
    try:
        config = parse_channel("am", {"kind": "alertmanager", "url": f"http://127.0.0.1:{garbage.getHost().port}"})
        result = await HttpTransport(config, NetworkGuard(reactor, LOOPBACK)).send(sample_notice().body)
    finally:
        await garbage.stopListening()
    assert not result.ok and result.detail.startswith("malformed or cut-off HTTP answer")
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_an_unreachable_smtp_server_is_a_failure_with_the_reason(logged_failures):
    config = parse_channel(
        "mail",
        {
            "kind": "email",
            "host": "127.0.0.1",
            "port": str(free_port()),
            "security": "starttls",
            "from": "dashd@example.com",
            "to": "ops@example.com",
        },
    )
    result = await transport_for(config, NetworkGuard(reactor, LOOPBACK), lambda: T0).send(sample_notice().body)
    assert (result.ok, result.detail) == (False, "connection refused")
    assert logged_failures == []


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a cloud metadata address"),
        ("http://[::1]:9/hook", "::1 is a loopback address"),
        ("http://localhost:9/hook", "is a loopback address"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_an_internal_target_is_refused_unless_allow_listed(url, reason):
    config = parse_channel("hook", {"kind": "webhook", "url": url})
    result = await HttpTransport(config, NetworkGuard(reactor, ())).send(sample_notice().body)
    assert not result.ok and result.permanent
    assert result.detail.startswith("refused target") and reason in result.detail


# ----- the outbox on a real store


class Nodes:
    """Stores and outboxes sharing one database, driven by one task.Clock."""

    def __init__(self, db_url: str, receiver_url: str, count: int = 1) -> None:
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.stores = [Store(db_url, reactor) for _ in range(count)]
        self.channels = {"hook": parse_channel("hook", {"kind": "webhook", "url": receiver_url, "timeout": "2s"})}
        guard = NetworkGuard(reactor, LOOPBACK)
        policy = RetryPolicy(first=5, maximum=20, dead_after=600, lease=60)
        self.outboxes = [
            Outbox(
                AlertingStore(store),
                lambda name: transport_for(self.channels[name], guard, self.now) if name in self.channels else None,
                self.clock,
                f"node{i}",
                policy,
                wall_clock_ms=self.now,
                jitter=lambda: 0.5,
            )
            for i, store in enumerate(self.stores)
        ]

    def now(self) -> int:
        return T0 + int(self.clock.seconds() * 1000)

    async def start(self) -> Nodes:
        for store in self.stores:
            store.startService()
            await store.ensure_schema()
        return self

    async def stop(self) -> None:
        for store in self.stores:
            await store.stopService()

    async def run(self) -> int:
        done = 0
        for outbox in self.outboxes:
            done += await outbox.run_once()
        return done


def keys_received(receiver: HttpReceiver) -> list[str]:
    return [json.loads(r["body"])["groupKey"] for r in receiver.requests]


@pytest_twisted.ensureDeferred
async def test_a_receiver_down_for_30s_gets_every_notice_exactly_once_when_back(db_url, logged_failures):
    receiver = HttpReceiver()
    nodes = await Nodes(db_url, receiver.url).start()
    try:
        outbox = nodes.outboxes[0]
        for i in range(5):
            assert await outbox.enqueue(_notice(i))
        assert await nodes.run() == 5  # all fail: nobody listens
        for _ in range(6):  # 30 s of retries on the clock while the receiver is down
            nodes.clock.advance(5)
            await nodes.run()
        receiver.start()
        for _ in range(10):
            nodes.clock.advance(5)
            await nodes.run()
        log = await outbox.store.deliveries(10, None)
    finally:
        await receiver.stop()
        await nodes.stop()
    assert sorted(keys_received(receiver)) == [f"g{i}" for i in range(5)]
    assert {d["status"] for d in log} == {"delivered"}
    for delivery in log:
        assert delivery["attempts"] >= 3  # failed at 0 s, 5 s, 15 s (back-off 5, 10, 20 s), then delivered
        failed = [a for a in delivery["log"] if not a["ok"]]
        assert failed and {a["detail"] for a in failed} == {"connection refused"}
        assert delivery["log"][0]["ok"] and delivery["log"][0]["detail"] == "HTTP 200: ok"
    assert logged_failures == []


def _notice(i: int):
    notice = sample_notice(channel="hook", key=f"n{i}")
    return type(notice)(notice.channel, f"g{i}", notice.dedup_key, dict(notice.body, groupKey=f"g{i}"))


@pytest_twisted.ensureDeferred
async def test_two_nodes_sharing_the_database_deliver_each_notice_once(db_url):
    receiver = HttpReceiver().start()
    nodes = await Nodes(db_url, receiver.url, count=2).start()
    try:
        for outbox in nodes.outboxes:  # both nodes saw the same alerts
            written = [await outbox.enqueue(_notice(i)) for i in range(4)]
            assert written == ([True] * 4 if outbox is nodes.outboxes[0] else [False] * 4)
        for _ in range(3):
            await nodes.run()
            nodes.clock.advance(1)
        log = await nodes.outboxes[1].store.deliveries(10, None)
    finally:
        await receiver.stop()
        await nodes.stop()
    assert sorted(keys_received(receiver)) == ["g0", "g1", "g2", "g3"]
    assert [d["attempts"] for d in log] == [1, 1, 1, 1]


@pytest_twisted.ensureDeferred
async def test_a_lease_that_ran_out_lets_another_node_deliver(db_url):
    receiver = HttpReceiver().start()
    nodes = await Nodes(db_url, receiver.url, count=2).start()
    try:
        await nodes.outboxes[0].enqueue(_notice(0))
        # node0 claims it and dies before attempting it.
        claimed = await nodes.outboxes[0].store.claim_due("node0", nodes.now(), 60_000, 10)
        assert len(claimed) == 1
        assert await nodes.outboxes[1].run_once() == 0  # leased: not node1's
        nodes.clock.advance(61)
        assert await nodes.outboxes[1].run_once() == 1
        log = await nodes.outboxes[1].store.deliveries(1, None)
    finally:
        await receiver.stop()
        await nodes.stop()
    assert keys_received(receiver) == ["g0"] and log[0]["log"][0]["node"] == "node1"


@pytest_twisted.ensureDeferred
async def test_failures_are_kept_in_the_delivery_log_and_end_dead_or_delivered(db_url, logged_failures):
    receiver = HttpReceiver().start()
    nodes = await Nodes(db_url, receiver.url).start()
    nodes.channels["gone"] = parse_channel("gone", {"kind": "webhook", "url": receiver.url})
    outbox = nodes.outboxes[0]
    try:
        receiver.status, receiver.answer = 500, b"try later"
        await outbox.enqueue(_notice(0))
        await nodes.run()
        receiver.status, receiver.answer = 404, b"no such hook"
        await outbox.enqueue(_notice(1))
        await nodes.run()
        first = {d["group_key"]: d for d in await outbox.store.deliveries(10, None)}
        receiver.status = 500
        nodes.clock.advance(700)  # past dead_after (600 s)
        await nodes.run()
        last = {d["group_key"]: d for d in await outbox.store.deliveries(10, None)}
        counts = await outbox.counts()
    finally:
        await receiver.stop()
        await nodes.stop()
    assert (first["g0"]["status"], first["g0"]["last_error"]) == ("pending", "HTTP 500: try later")
    assert (first["g1"]["status"], first["g1"]["last_error"]) == ("dead", "HTTP 404: no such hook")
    assert (last["g0"]["status"], last["g0"]["attempts"]) == ("dead", 2)
    assert counts == {"dead": 2}
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_a_flood_of_a_thousand_alerts_in_a_minute_is_grouped_and_the_outbox_stays_bounded(db_url):
    from dashd.alerting.delivery import AlertDelivery
    from dashd.alerting.routing import Route

    receiver = HttpReceiver()  # down: everything stays in the outbox
    clock = task.Clock()
    store = Store(db_url, reactor)
    store.startService()
    await store.ensure_schema()
    delivery = AlertDelivery(
        store,
        clock,
        "node0",
        channels=(parse_channel("hook", {"kind": "webhook", "url": receiver.url}),),
        routes=(Route("all", ("hook",), group_wait=10, group_interval=60, repeat_interval=3600),),
        guard=NetworkGuard(reactor, LOOPBACK),
        base_url="https://dash.example.com",
        wall_clock_ms=lambda: T0 + int(clock.seconds() * 1000),
    )
    try:
        for i in range(1000):
            at = T0 + i * 60
            delivery.observe(
                AlertEvent(
                    "cpu_high", f"h{i}", FIRING, "warning", alert_labels("cpu_high", f"h{i}", "warning"), "s", "d", at
                ),
                None,
            )
            clock.advance(0.06)
        await delivery.idle()
        clock.advance(120)
        await delivery.idle()
        counts = await delivery.outbox.counts()
        deliveries = await delivery.deliveries(10, None)  # newest first
        timeline = await delivery.timeline(0, T0 * 2, 500)
    finally:
        delivery.grouper.stop()
        await store.stopService()
    assert 1 <= counts["pending"] <= 3
    assert deliveries[-1]["alerts"] >= 150  # the first group_wait (10 s) gathered ~166 alerts
    assert deliveries[0]["alerts"] == 1000  # the last lists every firing alert (50 in full, the rest counted)
    assert len(timeline) == 500  # every alert is in the timeline


def _delivery(store, clock, node, channels, routes=None):
    from dashd.alerting.delivery import AlertDelivery
    from dashd.alerting.routing import Route

    return AlertDelivery(
        store,
        clock,
        node,
        channels=channels,
        routes=routes or (Route("all", ("*",), group_wait=5, group_interval=30, repeat_interval=3600),),
        guard=NetworkGuard(reactor, LOOPBACK),
        base_url="https://dash.example.com",
        wall_clock_ms=lambda: T0 + int(clock.seconds() * 1000),
        jitter=lambda: 0.5,
    )


@pytest_twisted.ensureDeferred
async def test_two_nodes_seeing_the_same_alerts_deliver_each_once(db_url):
    """Both nodes evaluate the same samples (the Redis bus delivers them to
    all); the first to record an event announces it, the outbox drops copies."""
    receiver = HttpReceiver().start()
    clock = task.Clock()
    stores = [Store(db_url, reactor) for _ in range(2)]
    channel = parse_channel("hook", {"kind": "webhook", "url": receiver.url})
    nodes = []
    try:
        for i, store in enumerate(stores):
            store.startService()
            await store.ensure_schema()
            nodes.append(_delivery(store, clock, f"node{i}", (channel,)))
        events = [
            AlertEvent(
                "cpu_high", f"h{i}", FIRING, "warning", alert_labels("cpu_high", f"h{i}", "warning"), "s", "d", T0 + i
            )
            for i in range(3)
        ]
        for event in events:
            for node in nodes:
                node.observe(event, None)
        for node in nodes:
            await node.idle()
        clock.advance(5)  # group_wait on both nodes
        for node in nodes:
            await node.idle()
            await node.outbox.run_once()
        resolved = AlertEvent("cpu_high", "h0", RESOLVED, "warning", events[0].labels, "s", "d", T0, T0 + 10_000)
        for node in nodes:
            node.observe(resolved, None)
            await node.idle()
        clock.advance(30)
        for node in nodes:
            await node.outbox.run_once()
    finally:
        for node in nodes:
            node.grouper.stop()
        await receiver.stop()
        for store in stores:
            await store.stopService()
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    # Whichever node recorded each event first announced it; the firing
    # messages list each alert once between them, and the resolve once.
    firing_window = [
        (a["labels"]["host"], a["status"])
        for b in bodies
        if b["status"] == "firing" and not any(a["status"] == "resolved" for a in b["alerts"])
        for a in b["alerts"]
    ]
    assert sorted(firing_window) == [("h0", "firing"), ("h1", "firing"), ("h2", "firing")]
    resolves = [a["labels"]["host"] for b in bodies for a in b["alerts"] if a["status"] == "resolved"]
    assert resolves == ["h0"]


@pytest_twisted.ensureDeferred
async def test_an_alertmanager_channel_gets_firing_alerts_re_posted_every_resend_interval(db_url):
    receiver = HttpReceiver().start()
    clock = task.Clock()
    store = Store(db_url, reactor)
    store.startService()
    await store.ensure_schema()
    channel = parse_channel(
        "am", {"kind": "alertmanager", "url": f"http://127.0.0.1:{receiver.port}", "resend_interval": "60s"}
    )
    node = _delivery(store, clock, "node0", (channel,))
    try:
        node.observe(
            AlertEvent("cpu_high", "h0", FIRING, "warning", alert_labels("cpu_high", "h0", "warning"), "s", "d", T0),
            None,
        )
        await node.idle()
        for _ in range(4):  # group_wait, then three resend intervals
            clock.advance(5 if not receiver.requests else 60)
            await node.idle()
            await node.outbox.run_once()
    finally:
        node.grouper.stop()
        await receiver.stop()
        await store.stopService()
    assert len(receiver.requests) == 4  # the first post and three re-posts (not 4 h apart)
    assert {r["path"] for r in receiver.requests} == {"/api/v2/alerts"}
    ends = [json.loads(r["body"])[0]["endsAt"] for r in receiver.requests]
    assert ends == sorted(ends) and len(set(ends)) == 4  # each re-post moves endsAt ahead


@pytest_twisted.ensureDeferred
async def test_an_unreachable_smtp_server_and_a_malformed_answer_end_in_the_delivery_log(db_url, logged_failures):
    garbage = start_garbage_server()
    nodes = await Nodes(db_url, "http://127.0.0.1:9/unused").start()
    nodes.channels["mail"] = parse_channel(
        "mail",
        {
            "kind": "email",
            "host": "127.0.0.1",
            "port": str(free_port()),
            "from": "d@example.com",
            "to": "o@example.com",
        },
    )
    nodes.channels["am"] = parse_channel(
        "am", {"kind": "alertmanager", "url": f"http://127.0.0.1:{garbage.getHost().port}"}
    )
    try:
        for name in ("mail", "am"):
            notice = sample_notice(channel=name, key=f"k-{name}")
            await nodes.outboxes[0].enqueue(type(notice)(name, f"g-{name}", notice.dedup_key, notice.body))
        await nodes.run()
        log = {d["channel"]: d for d in await nodes.outboxes[0].store.deliveries(10, None)}
    finally:
        await garbage.stopListening()
        await nodes.stop()
    assert (log["mail"]["status"], log["mail"]["last_error"]) == ("pending", "connection refused")
    assert log["am"]["status"] == "pending"
    assert log["am"]["last_error"].startswith("malformed or cut-off HTTP answer")
    assert log["am"]["log"][0]["detail"] == log["am"]["last_error"]
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_a_clean_stop_writes_waiting_groups_to_the_outbox(db_url):
    clock = task.Clock()
    store = Store(db_url, reactor)
    store.startService()
    await store.ensure_schema()
    node = _delivery(store, clock, "node0", (parse_channel("hook", {"kind": "webhook", "url": "http://127.0.0.1:9/"}),))
    try:
        node.startService()
        node.observe(
            AlertEvent("cpu_high", "h0", FIRING, "warning", alert_labels("cpu_high", "h0", "warning"), "s", "d", T0),
            None,
        )
        await node.idle()
        assert await node.outbox.counts() == {}  # still in group_wait
        await node.stopService()
        counts = await AlertingStore(store).counts()
    finally:
        await store.stopService()
    assert counts == {"pending": 1}  # the next start delivers it


@pytest_twisted.ensureDeferred
async def test_a_receiver_that_never_answers_times_out_with_the_reason(logged_failures):
    from twisted.internet.protocol import Factory, Protocol

    silent = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
    try:
        config = parse_channel(
            "hook", {"kind": "webhook", "url": f"http://127.0.0.1:{silent.getHost().port}/x", "timeout": "0.5s"}
        )
        result = await HttpTransport(config, NetworkGuard(reactor, LOOPBACK)).send(sample_notice().body)
    finally:
        await silent.stopListening()
    assert (result.ok, result.detail, result.permanent) == (False, "timed out after 0.5s", False)
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_https_webhooks_verify_the_certificate(tmp_path):
    from twisted.internet.endpoints import serverFromString
    from twisted.web.server import Site

    from alert_receivers import _Recorder
    from dashd.auth.devcert import write_self_signed

    key, cert = write_self_signed(str(tmp_path / "tls"), "localhost")
    receiver = HttpReceiver()
    site = Site(_Recorder(receiver))
    port = await serverFromString(reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}").listen(site)
    url = f"https://localhost:{port.getHost().port}/hook"
    guard = NetworkGuard(reactor, parse_networks(["127.0.0.0/8", "::1/128"]))
    try:
        untrusted = await HttpTransport(parse_channel("h", {"kind": "webhook", "url": url}), guard).send(
            sample_notice().body
        )
        trusted = await HttpTransport(parse_channel("h", {"kind": "webhook", "url": url, "ca_file": cert}), guard).send(
            sample_notice().body
        )
        wrong_name = await HttpTransport(
            parse_channel("h", {"kind": "webhook", "ca_file": cert, "url": url.replace("localhost", "127.0.0.2")}),
            guard,
        ).send(sample_notice().body)
    finally:
        await port.stopListening()
    assert not untrusted.ok and "certificate verify failed" in untrusted.detail
    assert trusted.ok and len(receiver.requests) == 1
    assert not wrong_name.ok  # the certificate names localhost and 127.0.0.1, not 127.0.0.2


@pytest_twisted.ensureDeferred
async def test_a_redirect_is_not_followed():
    """A receiver cannot bounce a delivery to another (internal) address."""
    target = HttpReceiver().start()
    bouncer = HttpReceiver().start()
    bouncer.status, bouncer.answer, bouncer.location = 302, b"", target.url
    try:
        config = parse_channel("hook", {"kind": "webhook", "url": bouncer.url})
        result = await HttpTransport(config, NetworkGuard(reactor, LOOPBACK)).send(sample_notice().body)
    finally:
        await target.stop()
        await bouncer.stop()
    assert (result.ok, result.status, result.detail) == (False, 302, "HTTP 302")
    assert target.requests == [] and len(bouncer.requests) == 1
