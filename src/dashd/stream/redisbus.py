"""The Redis bus (`--bus redis://host:port/db?prefix=NAME`): several dashd
nodes share one stream through Redis pub/sub.

Every publish runs one Lua script that, atomically, takes the next global
`seq` (INCR), appends the message to a capped stream (XADD MAXLEN ~, the
shared replay ring) and PUBLISHes "<seq> <payload>" on the events channel.
Each node's subscriber connection therefore receives every node's messages
in seq order, and its hub takes the seq that comes with the message. Only the
node that produced a message records it in the store (`origin`).

While Redis cannot be reached a node keeps serving its own clients: its
messages get node-local numbers above the last global seq it saw. On
recovery it raises the global counter to at least the highest number it
used (so seq never goes backwards for its clients) and sends each of its
clients one `resume_gap` covering the numbers it may have missed.

Local subscribers (`subscribe`: the alert rules) see only this node's own
messages, so a rule fires once, on the node that collected the sample.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from dashd.collect.collector import Sample
from dashd.settings import ConfigError, redact_url
from dashd.stream.bus import InMemoryBus, Subscriber, Subscription
from dashd.stream.hub import Delivery, GapNotice, Sequence

SECOND = 1.0
REPLY_TIMEOUT = 5 * SECOND
CONNECT_TIMEOUT = 5 * SECOND
RETRY_INITIAL = 0.5 * SECOND
RETRY_MAX = 5 * SECOND
STREAM_MAXLEN = 100_000  # ~ minutes of samples from many nodes; resume reads the store beyond it
RECOVERY_BUFFER = 10_000

# KEYS: counter, stream. ARGV: channel, maxlen, payload. Returns the seq.
PUBLISH_SCRIPT = """
local seq = redis.call('INCR', KEYS[1])
redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. seq, 'm', ARGV[3])
redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[3])
return seq
"""

# KEYS: counter. ARGV: floor. Raises the counter to the floor; returns it.
RAISE_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if floor > current then
  redis.call('SET', KEYS[1], floor)
  return floor
end
return current
"""


@dataclass(frozen=True)
class RedisURL:
    host: str
    port: int
    db: int
    password: str | None
    prefix: str

    @property
    def counter_key(self) -> str:
        return f"dashd:{self.prefix}:seq"

    @property
    def stream_key(self) -> str:
        return f"dashd:{self.prefix}:stream"

    @property
    def channel(self) -> str:
        return f"dashd:{self.prefix}:events"


def parse_redis_url(url: str) -> RedisURL:
    """redis://[:password@]host[:port][/db][?prefix=NAME] (prefix default: "default")."""
    allowed = "redis://[:password@]host[:port][/db][?prefix=NAME]"
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ConfigError("bus", redact_url(url), allowed)
    try:
        port = parts.port or 6379
        path = parts.path.strip("/")
        db = int(path) if path else 0
    except ValueError:
        raise ConfigError("bus", redact_url(url), allowed) from None
    prefix = parse_qs(parts.query).get("prefix", ["default"])[0]
    if not prefix or not all(c.isalnum() or c in "-_." for c in prefix):
        raise ConfigError("bus", redact_url(url), "a prefix of letters, digits, '-', '_', '.'")
    password = unquote(parts.password) if parts.password else None
    return RedisURL(parts.hostname, port, db, password, prefix)


def encode_message(origin: str, topic: str, message: Any) -> str:
    if isinstance(message, Sample):
        body = {
            "o": origin,
            "t": topic,
            "sample": {"host": message.host, "ts": message.timestamp_ms, "m": dict(message.metrics)},
        }
    else:
        body = {"o": origin, "t": topic, "d": message}
    return orjson.dumps(body).decode()


def decode_message(payload: str) -> tuple[str, str, Any]:
    """(origin, topic, message) of an encoded bus message."""
    body = orjson.loads(payload)
    if "sample" in body:
        sample = body["sample"]
        return body["o"], body["t"], Sample(sample["host"], sample["ts"], sample["m"])
    return body["o"], body["t"], body["d"]


def _unwrap(protocol: Any) -> Any:
    """ClientService hands prepareConnection a proxy; connectionLost comes
    from the protocol itself."""
    return getattr(protocol, "_protocol", protocol)


class _CommandProtocol(txredisapi.RedisProtocol):
    def connectionLost(self, why) -> None:
        super().connectionLost(why)
        self.factory.lost(self)


class _SubscriberProtocol(txredisapi.SubscriberProtocol):
    def messageReceived(self, pattern, channel, message) -> None:
        self.factory.bus._on_event(message)

    def connectionLost(self, why) -> None:
        super().connectionLost(why)
        self.factory.lost(self)


class _RedisClientFactory(Factory):
    """Builds txredisapi protocols for a ClientService (which owns the
    reconnecting), with the injected clock for reply timeouts."""

    isLazy = False  # read by txredisapi when AUTH or SELECT fails
    noisy = False

    def __init__(self, protocol_class: type, bus: RedisBus) -> None:
        self.protocol_class = protocol_class
        self.bus = bus

    def buildProtocol(self, addr) -> txredisapi.BaseRedisProtocol:
        url = self.bus.url
        p = self.protocol_class(
            charset="utf-8",
            replyTimeout=REPLY_TIMEOUT,
            password=url.password,
            dbid=url.db or None,
            convertNumbers=False,
        )
        p.factory = self
        p.callLater = self.bus.clock.callLater
        return p

    def lost(self, protocol) -> None:
        self.bus._connection_lost(protocol)

    def stopTrying(self) -> None:
        pass  # AUTH/SELECT failed: the ClientService keeps retrying; the error is logged

    def connectionError(self, message: str) -> None:
        self.bus.log.error("redis bus: {message}", message=message)


class RedisBus(Service):
    """Bus (publish/subscribe), Sequencing (the hub's feed, seq from Redis)
    and SharedRing (XRANGE for resume) in one: they share the connections."""

    log = Logger()

    def __init__(
        self,
        url: RedisURL,
        node: str,
        clock: IReactorTime,
        reactor: Any,
        sequence: Sequence,
        *,
        maxlen: int = STREAM_MAXLEN,
        retry_policy: Callable[[int], float] | None = None,
        wall_clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.url = url
        self.node = f"{node}/{uuid.uuid4().hex[:8]}"  # unique even for two nodes with one host name
        self.clock = clock
        self._reactor = reactor
        self._sequence = sequence
        self._maxlen = maxlen
        policy = retry_policy or backoffPolicy(initialDelay=RETRY_INITIAL, maxDelay=RETRY_MAX, factor=2.0)
        self._retry_policy = policy
        self._wall_clock_ms = wall_clock_ms or (lambda: int(clock.seconds() * 1000))
        self._local = InMemoryBus()  # this node's own subscribers
        self._deliver: Delivery | None = None
        self._gap: GapNotice | None = None
        self._services: list[ClientService] = []
        self._command: Any = None
        self._subscriber: Any = None
        self._recovering = False
        self._buffer: deque[str] = deque(maxlen=RECOVERY_BUFFER)
        # Outage bookkeeping: up is True while both connections are ready.
        self.up = False
        self._ever_up = False
        self._outage_logged = False
        self._outage_from_seq = sequence.last + 1
        self._outage_from_ms: int | None = None
        self._local_while_down = 0
        self.gaps_announced = 0

    @classmethod
    def from_url(cls, url: str, node: str, reactor: Any, sequence: Sequence, **kwargs: Any) -> RedisBus:
        return cls(parse_redis_url(url), node, reactor, reactor, sequence, **kwargs)

    # ----- lifecycle

    def startService(self) -> None:
        super().startService()
        self.log.info(
            "redis bus: {host}:{port}/{db} prefix {prefix}, node {node}",
            host=self.url.host,
            port=self.url.port,
            db=self.url.db,
            prefix=self.url.prefix,
            node=self.node,
        )
        self._outage_from_ms = self._wall_clock_ms()
        for protocol_class, prepare in (
            (_CommandProtocol, self._prepare_command),
            (_SubscriberProtocol, self._prepare_subscriber),
        ):
            endpoint = HostnameEndpoint(self._reactor, self.url.host, self.url.port, timeout=CONNECT_TIMEOUT)
            service = ClientService(
                endpoint,
                _RedisClientFactory(protocol_class, self),
                retryPolicy=self._retry,
                clock=self.clock,
                prepareConnection=prepare,
            )
            service.startService()
            self._services.append(service)

    def stopService(self) -> Deferred:
        super().stopService()
        from twisted.internet.defer import DeferredList

        services, self._services = self._services, []
        self.up = False
        return DeferredList([service.stopService() for service in services], consumeErrors=True)

    def _retry(self, failed_attempts: int) -> float:
        if not self._outage_logged and self.running:
            self._outage_logged = True
            self.log.error(
                "redis bus: cannot reach {host}:{port}; serving this node's clients only, retrying",
                host=self.url.host,
                port=self.url.port,
            )
        return self._retry_policy(failed_attempts)

    # ----- connections

    def _prepare_command(self, protocol) -> Deferred:
        protocol = _unwrap(protocol)

        def ready(_: Any) -> None:
            self._command = protocol
            self._maybe_recover()

        return protocol.whenConnected().addCallback(ready)

    def _prepare_subscriber(self, protocol) -> Deferred:
        protocol = _unwrap(protocol)

        def ready(_: Any) -> None:
            self._subscriber = protocol
            self._maybe_recover()

        d = protocol.whenConnected()
        d.addCallback(lambda _: protocol.subscribe(self.url.channel))
        return d.addCallback(ready)

    def _connection_lost(self, protocol) -> None:
        if protocol is self._command:
            self._command = None
        elif protocol is self._subscriber:
            self._subscriber = None
        else:
            return
        if self.up:
            self.up = False
            self._outage_from_seq = self._sequence.last + 1
            self._outage_from_ms = self._wall_clock_ms()
            self._local_while_down = 0
            if self.running and not self._outage_logged:
                self._outage_logged = True
                self.log.error(
                    "redis bus: lost the connection to {host}:{port} after seq {seq}; serving this "
                    "node's clients only, reconnecting",
                    host=self.url.host,
                    port=self.url.port,
                    seq=self._sequence.last,
                )
        if self._command is not None and protocol is not self._command:
            # Drop the other connection too, so recovery starts from a clean pair.
            self._command.transport.loseConnection()
        if self._subscriber is not None and protocol is not self._subscriber:
            self._subscriber.transport.loseConnection()

    def _maybe_recover(self) -> None:
        if self.up or self._recovering or self._command is None or self._subscriber is None or not self.running:
            return
        self._recovering = True
        d = Deferred.fromCoroutine(self._recover())
        d.addErrback(lambda f: self.log.failure("redis bus: recovery failed; will retry on reconnect", f))

    async def _recover(self) -> None:
        try:
            command = self._command
            # Events arriving meanwhile are buffered by _on_event until the
            # counter is above every number this node used while down (which
            # may still grow while the script runs: hence the loop).
            while True:
                floor = self._sequence.last
                counter = int(await command.eval(RAISE_SCRIPT, [self.url.counter_key], [floor]))
                if command is not self._command or self._subscriber is None:
                    return  # lost again meanwhile; the next connection retries
                if self._sequence.last <= counter:
                    break
            gap_from = self._outage_from_seq
            announce = self._ever_up or self._local_while_down > 0
            self._sequence.advance_to(counter)
            self.up = True
            self._ever_up = True
            if self._outage_logged:
                self._outage_logged = False
                self.log.info("redis bus: connected again; global seq continues after {seq}", seq=counter)
            else:
                self.log.info("redis bus: connected; global seq at {seq}", seq=counter)
            if announce and gap_from <= counter and self._gap is not None:
                self.gaps_announced += 1
                self._gap(gap_from, counter, self._outage_from_ms, self._wall_clock_ms())
            buffered, self._buffer = list(self._buffer), deque(maxlen=RECOVERY_BUFFER)
            for event in buffered:
                self._on_event(event)
        finally:
            self._recovering = False

    # ----- Bus

    def subscribe(self, topic: str, subscriber: Subscriber) -> Subscription:
        """Local subscribers see this node's own messages only."""
        return self._local.subscribe(topic, subscriber)

    def publish(self, topic: str, message: Any) -> Deferred:
        self._local.publish(topic, message)
        if not self.up:
            self._deliver_here(topic, message)
            return succeed(None)
        payload = encode_message(self.node, topic, message)
        d = self._command.eval(
            PUBLISH_SCRIPT, [self.url.counter_key, self.url.stream_key], [self.url.channel, self._maxlen, payload]
        )
        d.addErrback(self._publish_failed, topic, message)
        return d

    def _publish_failed(self, failure, topic: str, message: Any) -> None:
        if not self.up:
            # The connection went while the script was in flight: serve it here.
            self._deliver_here(topic, message)
            return None
        return failure

    def _deliver_here(self, topic: str, message: Any) -> None:
        self._local_while_down += 1
        if self._deliver is not None:
            self._deliver(topic, message, self._sequence.next(), True)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, bytes):
            event = event.decode()
        if not self.up:
            self._buffer.append(event)
            return
        seq_text, _, payload = event.partition(" ")
        try:
            seq = int(seq_text)
            origin, topic, message = decode_message(payload)
        except (ValueError, KeyError, TypeError):
            self.log.warn("redis bus: ignoring a malformed event ({size} bytes)", size=len(event))
            return
        if seq <= self._sequence.last:
            return  # covered by a gap already announced, or a duplicate
        self._sequence.advance_to(seq)
        if self._deliver is not None:
            try:
                self._deliver(topic, message, seq, origin == self.node)
            except Exception:
                self.log.failure("delivering seq {seq} failed", seq=seq)

    # ----- Sequencing (the hub's feed)

    @property
    def last(self) -> int:
        return self._sequence.last

    def next(self) -> int:
        return self._sequence.next()

    def start(self, deliver: Delivery, gap: GapNotice) -> None:
        self._deliver = deliver
        self._gap = gap

    def stop(self) -> None:
        self._deliver = None
        self._gap = None
        self._sequence.close()

    # ----- SharedRing

    def read_range(self, from_seq: int, to_seq: int) -> Deferred:
        if not self.up or self._command is None:
            return fail(txredisapi.ConnectionError("redis bus is down"))
        d = self._command.execute_command(
            "XRANGE", self.url.stream_key, f"0-{from_seq}", f"0-{to_seq}", "COUNT", to_seq - from_seq + 1
        )
        return d.addCallback(self._entries)

    def _entries(self, reply: list) -> list[tuple[str, Any, int]]:
        entries = []
        for entry_id, fields in reply or ():
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            values = dict(zip(fields[::2], fields[1::2]))
            payload = values.get("m")
            if payload is None:
                continue
            _, topic, message = decode_message(payload)
            entries.append((topic, message, int(entry_id.split("-")[1])))
        return entries
