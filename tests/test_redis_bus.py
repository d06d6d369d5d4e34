"""The Redis bus: URL parsing and message encoding (no I/O), then two buses
in this process against the real Redis (DASHD_TEST_REDIS_URL): one global
seq in one order on every node, record-once, the shared ring, and an outage
through a port forwarder we stop and start."""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.protocols.portforward import ProxyFactory

from dashd.collect.collector import Sample
from dashd.settings import ConfigError
from dashd.stream.hub import MemorySequence, StreamHub
from dashd.stream.redisbus import RedisBus, RedisURL, decode_message, encode_message, parse_redis_url
from dashd.stream.streams import NOTIFICATION

REDIS_URL = os.environ.get("DASHD_TEST_REDIS_URL", "")
REQUIRE_REDIS = os.environ.get("DASHD_REQUIRE_REDIS") == "1" or os.environ.get("DASHD_REQUIRE_MYSQL") == "1"


def redis_base_url() -> str:
    """The test Redis, or skip (fail in CI, where DASHD_REQUIRE_REDIS=1)."""
    if REDIS_URL:
        return REDIS_URL
    if REQUIRE_REDIS:
        pytest.fail("DASHD_REQUIRE_REDIS=1 but DASHD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    pytest.skip("DASHD_TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")


def redis_command(url: str, *args: str | int) -> bytes:
    """One command over a plain socket, for test set-up and clean-up only."""
    parts = urlsplit(url)
    request = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(str(a).encode())}\r\n".encode() + str(a).encode() + b"\r\n" for a in args
    )
    with socket.create_connection((parts.hostname, parts.port or 6379), timeout=5) as s:
        db = parts.path.strip("/")
        if db:
            s.sendall(f"*2\r\n$6\r\nSELECT\r\n${len(db)}\r\n{db}\r\n".encode())
            s.recv(64)
        s.sendall(request)
        return s.recv(65536)


def delete_prefix(url: str, prefix: str) -> None:
    keys = parse_redis_url(f"{url.split('?')[0]}?prefix={prefix}")
    redis_command(url, "DEL", keys.counter_key, keys.stream_key)


@pytest.fixture
def redis_prefix():
    """A fresh key prefix on the test Redis; its keys are deleted afterwards."""
    base = redis_base_url()
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield base, prefix
    delete_prefix(base, prefix)


# ----- no I/O


@pytest.mark.parametrize(
    "url,expected",
    [
        ("redis://127.0.0.1:6379/0", RedisURL("127.0.0.1", 6379, 0, None, "default")),
        (
            "redis://:s3cret@cache.example:6380/2?prefix=prod-eu",
            RedisURL("cache.example", 6380, 2, "s3cret", "prod-eu"),
        ),
        ("redis://localhost", RedisURL("localhost", 6379, 0, None, "default")),
    ],
)
def test_redis_urls_are_parsed_whole(url, expected):
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(
    "url", ["redis://", "redis://host/db0", "redis://host:99999/0", "redis://h/0?prefix=a:b", "http://host/0"]
)
def test_bad_redis_urls_name_the_bus_key(url):
    with pytest.raises(ConfigError) as error:
        parse_redis_url(url)
    assert "bus" in str(error.value)


def test_keys_are_namespaced_by_prefix():
    url = parse_redis_url("redis://h/0?prefix=t1")
    assert (url.counter_key, url.stream_key, url.channel) == ("dashd:t1:seq", "dashd:t1:stream", "dashd:t1:events")


def test_messages_round_trip_with_their_origin():
    sample = Sample("node-a", 1_764_151_200_000, {"cpu_usage": 12.5})
    assert decode_message(encode_message("a/1", "metrics", sample)) == ("a/1", "metrics", sample)
    note = {"type": NOTIFICATION, "timestamp_ms": 5, "data": {"id": "n-1", "title": "hot"}}
    assert decode_message(encode_message("b/2", "notifications", note)) == ("b/2", "notifications", note)


# ----- against the real Redis


class RecordingSink:
    def __init__(self) -> None:
        self.seqs: list[int] = []

    def record(self, message) -> None:
        self.seqs.append(message.seq)


class Node:
    """A RedisBus and a StreamHub, as build_daemon wires them."""

    def __init__(self, url: str, name: str, retry: float = 0.1) -> None:
        self.sink = RecordingSink()
        self.bus = RedisBus.from_url(url, name, reactor, MemorySequence(), retry_policy=lambda attempt: retry)
        self.hub = StreamHub(
            self.bus,
            reactor,
            None,
            300,
            lambda: ("cpu_usage",),
            sink=self.sink,
            sequencing=self.bus,
            shared_ring=self.bus,
        )
        self.seen: list = []
        self.gaps: list = []
        original = self.hub.fan_out
        self.hub.fan_out = lambda message: (self.seen.append(message), original(message))
        original_gap = self.hub.announce_gap
        self.hub.announce_gap = lambda *gap: (self.gaps.append(gap), original_gap(*gap))

    async def start(self) -> Node:
        self.hub.startService()
        self.bus.startService()
        await wait_for(lambda: self.bus.up)
        return self

    async def stop(self) -> None:
        self.hub.stopService()
        await self.bus.stopService()


async def wait_for(condition, timeout: float = 10.0, step: float = 0.05) -> None:
    waited = 0.0
    while not condition():
        if waited > timeout:
            raise AssertionError("condition not met in time")
        await deferLater(reactor, step, lambda: None)
        waited += step


def sample(host: str, i: int) -> Sample:
    return Sample(host, 1_764_151_200_000 + i, {"cpu_usage": float(i)})


@pytest_twisted.ensureDeferred
async def test_two_nodes_see_every_message_in_one_global_order_and_only_the_origin_records(redis_prefix):
    base, prefix = redis_prefix
    url = f"{base}?prefix={prefix}"
    a, b = await Node(url, "node-a").start(), await Node(url, "node-a").start()  # same host name, still two nodes
    try:
        published = []
        for i in range(20):
            published.append(a.bus.publish("metrics", sample("node-a", i)))
            published.append(b.bus.publish("metrics", sample("node-b", i)))
        b.bus.publish("notifications", {"type": NOTIFICATION, "timestamp_ms": 9, "data": {"id": "n-x"}})
        await wait_for(lambda: len(a.seen) == 41 and len(b.seen) == 41)
        seqs_a = [m.seq for m in a.seen]
        assert seqs_a == sorted(seqs_a) and seqs_a == list(range(seqs_a[0], seqs_a[0] + 41))
        assert [(m.seq, m.host, m.type) for m in a.seen] == [(m.seq, m.host, m.type) for m in b.seen]
        # Per host, in publish order.
        assert [m.timestamp_ms for m in a.seen if m.host == "node-b"] == [
            sample("x", i).timestamp_ms for i in range(20)
        ]
        assert sorted(a.sink.seqs + b.sink.seqs) == seqs_a  # each written once, by its origin
        assert set(b.sink.seqs) >= {m.seq for m in b.seen if m.type == NOTIFICATION}
        assert a.hub.seq == b.hub.seq == seqs_a[-1]
    finally:
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_the_shared_ring_serves_what_a_late_node_never_saw(redis_prefix):
    base, prefix = redis_prefix
    url = f"{base}?prefix={prefix}"
    a = await Node(url, "node-a").start()
    try:
        for i in range(10):
            a.bus.publish("metrics", sample("node-a", i))
        await wait_for(lambda: len(a.seen) == 10)
        b = await Node(url, "node-b").start()  # started after those ten
        try:
            entries = await b.bus.read_range(a.seen[2].seq, a.seen[6].seq)
            assert [(topic, seq) for topic, _, seq in entries] == [("metrics", m.seq) for m in a.seen[2:7]]
            assert [m.timestamp_ms for _, m, _ in entries] == [m.timestamp_ms for m in a.seen[2:7]]
            assert b.hub.seq == a.hub.seq  # the counter was read at connect
        finally:
            await b.stop()
    finally:
        await a.stop()


class Forwarder:
    """A TCP forwarder to Redis that the test can cut and restore."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname, parts.port or 6379)
        self.db = parts.path
        self.port = None
        self.number = 0

    def start(self) -> None:
        factory = ProxyFactory(*self.target)
        factory.noisy = False
        factory.protocol = _TrackedProxyServer
        _TrackedProxyServer.live = getattr(_TrackedProxyServer, "live", set())
        self.port = reactor.listenTCP(self.number, factory, interface="127.0.0.1")
        self.number = self.port.getHost().port

    def url(self, prefix: str) -> str:
        return f"redis://127.0.0.1:{self.number}{self.db}?prefix={prefix}"

    async def stop(self) -> None:
        await self.port.stopListening()
        for proxy in list(_TrackedProxyServer.live):
            proxy.transport.abortConnection()


from twisted.protocols.portforward import ProxyServer  # noqa: E402


class _TrackedProxyServer(ProxyServer):
    live: set = set()

    def connectionMade(self) -> None:
        _TrackedProxyServer.live.add(self)
        super().connectionMade()

    def connectionLost(self, reason) -> None:
        _TrackedProxyServer.live.discard(self)
        super().connectionLost(reason)


@pytest_twisted.ensureDeferred
async def test_an_outage_falls_back_to_local_seq_then_recovers_above_it_with_a_gap(redis_prefix):
    base, prefix = redis_prefix
    forwarder = Forwarder(base)
    forwarder.start()
    node = await Node(forwarder.url(prefix), "node-a").start()
    other = await Node(f"{base}?prefix={prefix}", "node-b").start()  # straight to Redis: never cut
    try:
        for i in range(3):
            node.bus.publish("metrics", sample("node-a", i))
        await wait_for(lambda: len(node.seen) == 3)
        last_global = node.hub.seq
        await forwarder.stop()
        await wait_for(lambda: not node.bus.up)
        for i in range(3, 6):
            node.bus.publish("metrics", sample("node-a", i))  # served here, numbered here
            other.bus.publish("metrics", sample("node-b", i))  # this node never sees these
        assert [m.seq for m in node.seen[3:]] == [last_global + 1, last_global + 2, last_global + 3]
        assert node.sink.seqs[-3:] == [last_global + 1, last_global + 2, last_global + 3]
        forwarder.start()
        await wait_for(lambda: node.bus.up)
        ((gap_from, gap_to, from_ms, to_ms),) = node.gaps
        assert gap_from == last_global + 1 and gap_to >= last_global + 3
        assert gap_to >= other.hub.seq  # covers what node-b published meanwhile
        node.bus.publish("metrics", sample("node-a", 6))
        await wait_for(lambda: len(node.seen) == 7)
        assert node.seen[-1].seq > gap_to  # never backwards for this node's clients
        await wait_for(lambda: other.seen and other.seen[-1].seq == node.seen[-1].seq)
    finally:
        await node.stop()
        await other.stop()
        if forwarder.port is not None and forwarder.port.connected:
            await forwarder.stop()
