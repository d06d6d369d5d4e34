"""The WebSocket protocol over in-memory transports: dashd's real
DashboardServerFactory and protocol, an Autobahn client, and between them
twisted.test.iosim's FakeTransports pumped by hand, with every timer
(dashd's and Autobahn's) on a task.Clock. No socket, no thread, no real
wait: handshake and authentication, bad input and its typed error frames,
subscriptions, history errors and the close codes.

The loopback tests (test_websocket.py and others) keep what only a real
socket and the real service tree prove: the sample path from the collector,
the store's answers, shutdown, TLS, flow control."""

from __future__ import annotations

import json

import pytest
import txaio
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.test import iosim

from dashd.collect.collector import Sample
from dashd.settings import Settings
from dashd.stream.bus import METRICS_TOPIC
from dashd.wire.protocol import DashboardServerFactory
from fakes import FakeStore, memory_core

SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8080)
CLIENT_ADDRESS = IPv4Address("TCP", "198.51.100.7", 40000)


class MemoryClient(WebSocketClientProtocol):
    """Records every message and how the connection closed."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict] = []
        self.close_code: int | None = None
        self.closed = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.received.append(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.closed = True
        self.close_code = code

    def send(self, message: dict) -> None:
        self.sendMessage(json.dumps(message).encode())

    def types(self) -> list[str]:
        return [m["type"] for m in self.received]

    def of_type(self, type_: str) -> list[dict]:
        return [m for m in self.received if m["type"] == type_]

    def reply_to(self, correlation_id: object) -> dict:
        replies = [m for m in self.received if m.get("correlation_id") == correlation_id]
        assert len(replies) == 1, (correlation_id, self.received)
        return replies[0]


class Memory:
    """One server factory per endpoint over a memory core, and clients
    connected to it through pumped in-memory transports."""

    def __init__(self, clock: Clock, settings: Settings | None = None) -> None:
        self.clock = clock
        self.store = FakeStore()
        self.core = memory_core(clock, self.store, settings)
        self.core.hub.startService()
        self.factories: dict[str, DashboardServerFactory] = {}
        self.pumps: list[iosim.IOPump] = []

    def token(self, role: str = "viewer", ttl: float = 3600, subject: str | None = None) -> str:
        return self.core.tokens.mint(subject or f"test-{role}", role, ttl)[0]

    def connect(
        self,
        endpoint: str = "dashboard",
        token: str | None = None,
        headers: dict[str, str] | None = None,
        protocol: type[MemoryClient] | None = None,
    ) -> MemoryClient:
        factory = self.factories.get(endpoint)
        if factory is None:
            factory = self.factories[endpoint] = self.core.server_factory(endpoint)
        server = factory.buildProtocol(CLIENT_ADDRESS)
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        client_factory = WebSocketClientFactory(f"ws://127.0.0.1:8080/{endpoint}", headers=headers)
        client_factory.protocol = protocol or MemoryClient
        client = client_factory.buildProtocol(SERVER_ADDRESS)
        pump = iosim.connect(
            server,
            iosim.FakeTransport(server, isServer=True, hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS),
            client,
            iosim.FakeTransport(client, isServer=False, hostAddress=CLIENT_ADDRESS, peerAddress=SERVER_ADDRESS),
        )
        self.pumps.append(pump)
        return client

    def authed(self, endpoint: str = "dashboard", role: str = "viewer") -> MemoryClient:
        client = self.connect(endpoint, self.token(role))
        assert client.types() == ["connection_ack"], client.received
        return client

    def flush(self) -> None:
        for pump in self.pumps:
            pump.flush()

    def advance(self, seconds: float) -> None:
        """Let `seconds` of the fake clock pass, moving bytes after each step."""
        self.flush()
        self.clock.advance(seconds)
        self.flush()

    def publish(self, **metrics: float) -> None:
        self.core.bus.publish(METRICS_TOPIC, Sample("memory", self.core.wall_clock_ms(), metrics))
        self.advance(0)


@pytest.fixture
def memory():
    """Autobahn's timers (handshake, close and ping timeouts) go through
    txaio's loop: point it at the test's Clock, so they run on it too."""
    clock = Clock()
    previous = txaio.config.loop
    txaio.config.loop = clock
    try:
        yield Memory(clock)
    finally:
        txaio.config.loop = previous


@pytest.fixture
def make_memory():
    clock = Clock()
    previous = txaio.config.loop
    txaio.config.loop = clock
    try:
        yield lambda **settings: Memory(clock, Settings(host_name="memory", **settings))
    finally:
        txaio.config.loop = previous


# ----- handshake and authentication


def test_a_bearer_header_gets_the_ack_with_role_endpoint_and_catalogue(memory):
    client = memory.connect("metrics", memory.token("operator"))
    (ack,) = client.received
    assert ack["type"] == "connection_ack" and ack["correlation_id"] is None
    data = ack["data"]
    assert (data["role"], data["endpoint"], data["protocol_version"]) == ("operator", "metrics", 1)
    assert [m["name"] for m in data["metrics"]] == [info.name for info in memory.core.catalogue_info]
    assert not client.closed


def test_the_auth_message_authenticates_and_replies_with_its_correlation_id(memory):
    client = memory.connect()
    client.send({"type": "auth", "data": {"token": memory.token("admin")}, "correlation_id": "a1"})
    memory.flush()
    (ack,) = client.received
    assert (ack["type"], ack["correlation_id"], ack["data"]["role"]) == ("connection_ack", "a1", "admin")


def test_no_auth_within_the_timeout_gets_unauthorized_and_4001(make_memory):
    memory = make_memory(auth_timeout=2.0)
    client = memory.connect()
    memory.advance(1.9)
    assert client.received == [] and not client.closed
    memory.advance(0.1)
    assert [m["data"]["code"] for m in client.received] == ["unauthorized"]
    assert "authentication required" in client.received[0]["data"]["message"]
    assert client.close_code == 4001


@pytest.mark.parametrize(
    "first_message",
    [
        {"type": "ping"},
        {"type": "subscribe", "data": {"metrics": ["*"]}},
        {"type": "auth", "data": {"token": "not-a-jwt"}},
        {"type": "auth", "data": {}},
        {"type": "auth", "data": {"token": 12}},
    ],
    ids=["ping-first", "subscribe-first", "garbage-token", "missing-token", "number-token"],
)
def test_anything_but_a_valid_auth_first_is_refused_with_4001(memory, first_message):
    client = memory.connect()
    client.send({**first_message, "correlation_id": "x"})
    memory.flush()
    (error,) = client.received
    assert (error["type"], error["data"]["code"], error["correlation_id"]) == ("error", "unauthorized", "x")
    assert client.close_code == 4001


@pytest.mark.parametrize("payload", [b"{nope", b"[1]"])
def test_garbage_before_auth_gets_bad_json_and_4001(memory, payload):
    client = memory.connect()
    client.sendMessage(payload)
    memory.flush()
    assert [m["data"]["code"] for m in client.received] == ["bad_json"]
    assert client.close_code == 4001


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "])
def test_a_bad_authorization_header_gets_unauthorized_and_4001(memory, header):
    client = memory.connect(headers={"Authorization": header})
    assert [m["data"]["code"] for m in client.received] == ["unauthorized"]
    assert client.close_code == 4001


def test_an_expired_token_and_one_signed_with_another_key_are_refused_with_4001(memory):
    from dashd.auth.tokens import TokenIssuer

    expired = memory.connect(token=memory.token(ttl=-10))
    assert "expired" in expired.received[0]["data"]["message"] and expired.close_code == 4001
    forged = memory.connect(token=TokenIssuer(b"x" * 64).mint("mallory", "admin", 3600)[0])
    assert forged.types() == ["error"] and forged.close_code == 4001


def test_a_token_that_expires_while_connected_is_warned_then_closed_with_4001(make_memory):
    memory = make_memory(token_warning=10.0)
    client = memory.connect(token=memory.token(ttl=30))
    memory.advance(15)
    assert client.types() == ["connection_ack"]
    memory.advance(10)  # within token_warning of the expiry
    assert client.types() == ["connection_ack", "token_expiring"] and not client.closed
    memory.advance(10)
    assert client.received[-1]["data"]["message"] == "token expired" and client.close_code == 4001


def test_a_refused_handshake_leaves_no_timer_behind(memory):
    """Autobahn's handshake timeout and dashd's auth timer both end with
    the connection: nothing is left on the clock."""
    client = memory.connect(headers={"Authorization": "Basic x"})
    memory.advance(0)
    assert client.closed
    memory.advance(60)
    assert [call for call in memory.clock.getDelayedCalls() if call.active()] == []


# ----- bad input: typed error frames, the connection stays open

BAD_INPUTS = [
    (b"{not json", "bad_json", None),
    (b"[1, 2, 3]", "bad_json", None),
    (b'"just a string"', "bad_json", None),
    (json.dumps({"data": {}}).encode(), "bad_message", None),
    (json.dumps({"type": 5, "correlation_id": "t"}).encode(), "bad_message", "t"),
    (json.dumps({"type": "history", "data": [], "correlation_id": "d"}).encode(), "bad_message", "d"),
    (json.dumps({"type": "history", "data": {}, "correlation_id": "h"}).encode(), "bad_message", "h"),
    (
        json.dumps({"type": "history", "data": {"metrics": ["nope"]}, "correlation_id": "u"}).encode(),
        "bad_message",
        "u",
    ),
    (
        json.dumps(
            {"type": "history", "data": {"metrics": ["cpu_usage"], "from": "yesterday-ish"}, "correlation_id": "f"}
        ).encode(),
        "bad_message",
        "f",
    ),
    (
        json.dumps(
            {"type": "history", "data": {"metrics": ["cpu_usage"], "max_points": 10**9}, "correlation_id": "big"}
        ).encode(),
        "too_large",
        "big",
    ),
    (
        json.dumps(
            {"type": "history", "data": {"metrics": ["cpu_usage"], "from": 0}, "correlation_id": "span"}
        ).encode(),
        "too_large",
        "span",
    ),
    (json.dumps({"type": "set_rate", "data": {"max_hz": -1}, "correlation_id": "r"}).encode(), "bad_message", "r"),
    (
        json.dumps({"type": "set_rate", "data": {"max_hz": "fast"}, "correlation_id": "r2"}).encode(),
        "bad_message",
        "r2",
    ),
    (json.dumps({"type": "set_rate", "data": {"max_hz": None}, "correlation_id": "r3"}).encode(), "bad_message", "r3"),
    (
        json.dumps(
            {"type": "stats", "data": {"metrics": ["cpu_usage"], "window": "forever"}, "correlation_id": "w"}
        ).encode(),
        "bad_message",
        "w",
    ),
    (json.dumps({"type": "resume", "data": {"after_seq": "x"}, "correlation_id": "rs"}).encode(), "bad_message", "rs"),
    (json.dumps({"type": "launch_missiles", "correlation_id": "m"}).encode(), "unknown_type", "m"),
    (json.dumps({"type": "broadcast", "data": {"title": "hi"}, "correlation_id": "b"}).encode(), "forbidden", "b"),
    (json.dumps({"type": "ack", "data": {"notification_id": "n-x"}, "correlation_id": "k"}).encode(), "forbidden", "k"),
    (json.dumps({"type": "ping", "correlation_id": {"nested": True}}).encode(), "bad_message", None),
    (
        json.dumps({"type": "subscribe", "data": {"metrics": ["cpu_usage"] * 100}, "correlation_id": "s"}).encode(),
        "too_large",
        "s",
    ),
]


def test_each_bad_input_gets_a_typed_error_and_the_connection_stays_open(memory):
    client = memory.authed()
    for payload, code, correlation_id in BAD_INPUTS:
        before = len(client.received)
        client.sendMessage(payload)
        memory.flush()
        (error,) = client.received[before:]
        assert (error["type"], error["data"]["code"], error["correlation_id"]) == ("error", code, correlation_id), (
            payload
        )
        assert error["data"]["message"]
    client.send({"type": "ping", "data": {"client_time": 42}, "correlation_id": "p"})
    memory.flush()
    pong = client.reply_to("p")
    assert pong["type"] == "pong" and pong["data"]["client_time"] == 42 and not client.closed


def test_an_unknown_metric_error_lists_what_exists(memory):
    client = memory.authed()
    client.send({"type": "subscribe", "data": {"metrics": ["cpu_usage", "warp_drive"]}, "correlation_id": 1})
    memory.flush()
    error = client.reply_to(1)
    assert error["data"]["code"] == "bad_message" and "warp_drive" in error["data"]["message"]
    assert "cpu_usage" in error["data"]["details"]["known"]


# ----- subscriptions


def test_a_subscription_filters_the_samples_the_client_gets(memory):
    client = memory.authed()
    memory.publish(cpu_usage=10.0, memory_usage=20.0)
    assert client.of_type("metrics_update")[-1]["data"]["metrics"] == {"cpu_usage": 10.0, "memory_usage": 20.0}
    client.send({"type": "subscribe", "data": {"metrics": ["memory_*"]}, "correlation_id": "s"})
    memory.flush()
    assert client.reply_to("s")["data"]["metrics"] == ["memory_*"]
    memory.advance(1.0)
    memory.publish(cpu_usage=11.0, memory_usage=21.0)
    update = client.of_type("metrics_update")[-1]
    assert update["data"]["metrics"] == {"memory_usage": 21.0}
    assert update["seq"] == memory.core.hub.seq


def test_the_notifications_endpoint_refuses_metric_subscriptions(memory):
    client = memory.authed("notifications")
    client.send({"type": "subscribe", "data": {"metrics": ["cpu_usage"]}, "correlation_id": "s"})
    memory.flush()
    assert client.reply_to("s")["data"]["code"] == "bad_message"
    memory.publish(cpu_usage=1.0)
    assert client.of_type("metrics_update") == []


# ----- history: the store's answers and failures as frames


def test_history_asks_the_store_and_replies_with_its_series(memory):
    client = memory.authed()
    client.send(
        {"type": "history", "data": {"metrics": ["cpu_usage"], "from": "-1m", "max_points": 3}, "correlation_id": "h"}
    )
    memory.flush()
    reply = client.reply_to("h")
    assert reply["type"] == "history" and reply["data"]["series"] == {"cpu_usage": []}
    ((_host, metrics, from_ms, to_ms, max_points),) = memory.store.history_calls
    assert (metrics, to_ms - from_ms, max_points) == (("cpu_usage",), 60_000, 3)


def test_history_when_the_store_is_unavailable_is_an_unavailable_error_frame(memory):
    from dashd.store.database import StoreUnavailable

    memory.store.history_error = StoreUnavailable("database is down")
    client = memory.authed()
    client.send({"type": "history", "data": {"metrics": ["cpu_usage"], "from": "-1m"}, "correlation_id": "h"})
    memory.flush()
    error = client.reply_to("h")
    assert (error["type"], error["data"]["code"]) == ("error", "unavailable") and not client.closed


def test_notifications_of_a_range_come_from_memory_when_the_store_is_down(memory):
    """With the store unavailable, `notifications {from, to}` still answers
    from the recent notifications held in memory, only those in the range."""
    from dashd.store.database import StoreUnavailable
    from dashd.timefmt import parse_time

    memory.store.notifications_error = StoreUnavailable("database is down")
    admin = memory.authed(role="admin")
    admin.send({"type": "broadcast", "data": {"level": "info", "title": "mark", "message": "m"}, "correlation_id": "b"})
    memory.flush()
    note_id = admin.reply_to("b")["data"]["id"]
    admin.send({"type": "notifications", "data": {}, "correlation_id": "all"})
    memory.flush()
    (note,) = admin.reply_to("all")["data"]["notifications"]
    assert note["id"] == note_id
    at_s = parse_time(note["timestamp"], 0) / 1000
    admin.send({"type": "notifications", "data": {"from": at_s - 1, "to": at_s + 1}, "correlation_id": "in"})
    admin.send(
        {"type": "notifications", "data": {"from": at_s - 3 * 3600, "to": at_s - 2 * 3600}, "correlation_id": "out"}
    )
    memory.flush()
    assert [n["id"] for n in admin.reply_to("in")["data"]["notifications"]] == [note_id]
    assert admin.reply_to("out")["data"]["notifications"] == []


def test_history_failing_inside_is_an_internal_error_frame_and_is_logged(memory):
    from twisted.logger import capturedLogs

    memory.store.history_error = RuntimeError("boom")
    client = memory.authed()
    with capturedLogs() as events:
        client.send({"type": "history", "data": {"metrics": ["cpu_usage"], "from": "-1m"}, "correlation_id": "h"})
        memory.flush()
    error = client.reply_to("h")
    assert (error["type"], error["data"]["code"], error["data"]["message"]) == (
        "error",
        "internal",
        "history: internal error",
    )
    assert [e["log_failure"].value.args for e in events if e.get("log_failure")] == [("boom",)]
    assert not client.closed


# ----- close codes


def test_a_binary_frame_closes_with_1003(memory):
    client = memory.authed()
    client.sendMessage(b"\x00\x01", isBinary=True)
    memory.flush()
    assert client.close_code == 1003


def test_an_oversized_message_closes_with_1009_and_others_are_served(make_memory):
    memory = make_memory(max_message_size=2048, max_frame_size=2048)
    client = memory.authed()
    client.send({"type": "ping", "data": {"pad": "x" * 5000}})
    memory.flush()
    assert client.close_code == 1009
    memory.authed()


def test_a_flooding_client_is_rate_limited_then_closed_with_1008(make_memory):
    memory = make_memory(messages_per_second=5.0, message_burst=5.0, abuse_close_after=1.0)
    client = memory.authed()
    for i in range(20):
        client.send({"type": "ping", "correlation_id": i})
    memory.flush()
    replies = [client.reply_to(i) for i in range(20)]
    assert [r["type"] for r in replies[:5]] == ["pong"] * 5
    limited = [r for r in replies if r["type"] == "error"]
    assert len(limited) == 15 and all(r["data"]["code"] == "rate_limited" for r in limited)
    assert "retry_after" in limited[0]["data"]["details"]
    for _ in range(10):  # keep flooding, 0.2 s apart: no quiet second
        for _ in range(5):
            client.send({"type": "ping"})
        memory.advance(0.2)
        if client.closed:
            break
    assert client.close_code == 1008


def test_an_idle_client_is_closed_with_1000(make_memory):
    memory = make_memory(idle_timeout=30.0, ping_interval=0.0)  # a pong is activity too
    client = memory.authed()
    memory.advance(20)
    client.send({"type": "ping", "correlation_id": "p"})  # activity restarts the idle time
    memory.advance(20)
    assert not client.closed
    memory.advance(10)
    assert client.close_code == 1000


def test_every_request_with_a_correlation_id_gets_exactly_one_reply(memory):
    client = memory.authed(role="admin")
    requests = [
        ("ping", {}),
        ("subscribe", {"metrics": ["cpu_*"]}),
        ("unsubscribe", {"metrics": ["cpu_core_*"]}),
        ("set_rate", {"max_hz": 2}),
        ("history", {"metrics": ["cpu_usage"], "from": "-1m"}),
        ("stats", {"metrics": ["cpu_usage"], "window": "1m"}),
        ("notifications", {}),
        ("rule_list", {}),
        ("settings_get", {}),
        ("clients_list", {}),
        ("ack", {"notification_id": "n-missing"}),
        ("rule_delete", {"name": "no_such_rule"}),
        ("nope", {}),
        ("resume", {"after_seq": 0}),
    ]
    for index, (type_, data) in enumerate(requests):
        client.send({"type": type_, "data": data, "correlation_id": f"r{index}"})
    memory.advance(0)
    replies: dict[str, list[str]] = {}
    for message in client.received:
        if message.get("correlation_id") and message["type"] != "resume_gap":
            replies.setdefault(message["correlation_id"], []).append(message["type"])
    assert {f"r{index}": len(replies.get(f"r{index}", [])) for index in range(len(requests))} == {
        f"r{index}": 1 for index in range(len(requests))
    }, replies
    assert replies["r0"] == ["pong"] and replies["r10"] == ["error"] and replies["r12"] == ["error"]
    assert replies["r1"] == ["subscribe"] and replies["r4"] == ["history"]


# ----- timers on the fake clock (tests that waited seconds of real time on loopback)


def test_token_expiring_warning_then_reauth_keeps_the_connection_open(make_memory):
    memory = make_memory(token_warning=5.0)
    client = memory.connect(token=memory.token(ttl=7))
    memory.advance(2)
    assert client.types() == ["connection_ack", "token_expiring"]
    assert client.received[-1]["data"]["expires_at"]
    client.send({"type": "auth", "data": {"token": memory.token(ttl=600)}, "correlation_id": "re"})
    memory.flush()
    renewed = client.reply_to("re")
    assert renewed["type"] == "auth" and renewed["data"]["role"] == "viewer"
    memory.advance(10)  # past the first token's expiry
    assert not client.closed
    client.send({"type": "auth", "data": {"token": memory.token(subject="someone-else")}, "correlation_id": "o"})
    memory.flush()
    assert client.reply_to("o")["data"]["code"] == "forbidden"


class SilentPeer(MemoryClient):
    """A peer that stopped reading: it never answers a ping."""

    def onPing(self, payload: bytes) -> None:
        pass


def test_a_dead_peer_is_dropped_by_websocket_pings(make_memory):
    memory = make_memory(ping_interval=0.5, ping_timeout=1.0)
    alive = memory.authed()
    dead = memory.connect(token=memory.token(), protocol=SilentPeer)
    assert len(memory.core.connections) == 2
    for _ in range(8):
        memory.advance(0.25)
    assert dead.closed and not alive.closed
    assert len(memory.core.connections) == 1


def test_set_rate_throttles_one_client_and_not_the_others(make_memory):
    memory = make_memory(interval=0.1)
    slow, fast = memory.authed(), memory.authed()
    slow.send({"type": "set_rate", "data": {"max_hz": 2}, "correlation_id": "r"})
    memory.flush()
    assert slow.reply_to("r")["data"] == {"max_hz": 2, "effective_hz": 2.0}
    for tick in range(20):  # 2 s of samples at 10 Hz
        memory.publish(cpu_usage=float(tick))
        memory.advance(0.1)
    slow_updates, fast_updates = slow.of_type("metrics_update"), fast.of_type("metrics_update")
    assert len(fast_updates) == 20 and 3 <= len(slow_updates) <= 5
    window = [u for u in slow_updates if "window" in u["data"]][-1]["data"]["window"]
    assert window["samples"] >= 3
    assert window["min"]["cpu_usage"] <= window["avg"]["cpu_usage"] <= window["max"]["cpu_usage"]
    slow.send({"type": "set_rate", "data": {"max_hz": 1000}, "correlation_id": "c"})
    memory.flush()
    assert slow.reply_to("c")["data"]["effective_hz"] == 10.0  # capped by the collection rate
