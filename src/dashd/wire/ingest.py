"""The hub's side of agents: the `/ingest` WebSocket endpoint.

An agent (`dashd agent`, see dashd.collect.agent) authenticates with an `agent`
token whose subject is its host name and sends batches of samples:

    {"type": "samples", "correlation_id": "b17", "data": {"samples": [
        {"host": "web-2", "timestamp": "2026-11-26T10:00:01.000Z", "metrics": {"cpu_usage": 4.5, ...}}, ...]}}

Each batch is validated as a whole, de-duplicated by (host, timestamp_ms)
(agents resend what the hub did not confirm, so a sample may arrive twice),
published on the bus as dashd.collect.collector.Sample objects (the hub then
sequences, stores and streams them like local samples), and answered with
`{"type": "samples", "data": {"accepted", "duplicates", "last_timestamp"}}`
once the store has written them, so an agent drops exactly what is safe.

Limits per agent host (issue 11 D; docs/security.md, "Limits"): samples per
second (`agent_samples_per_second`, a bucket of MAX_SAMPLES_PER_MESSAGE),
distinct metric names (`agent_max_series`), and the store's queue: a batch
that would fill it past half is refused. Refusals are typed errors the agent
retries after `retry_after` (rate_limited, unavailable) or drops (too_large),
counted in dashd_ingest_refused_total. Nothing is dropped on the hub's side
of an acknowledgement: a batch is confirmed only when the store's write
ticket (Store.when_written) says its rows are on disk.

Split as elsewhere in dashd: `validate_batch` and `RecentTimestamps` are the
domain (no I/O), `IngestService` does the per-host bookkeeping and talks to
the bus and the store, and the Autobahn protocol/factory only parse frames
and turn ProtocolErrors into `error` frames.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

import orjson
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.util import encode_truncate
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger

from dashd.auth.tokens import AGENT_ROLE, AuthError, Principal
from dashd.clients.core import Core
from dashd.clients.limits import TokenBucket
from dashd.clients.queries import CostBucket
from dashd.collect.collector import Sample
from dashd.errors import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_DATA,
    HandshakeRefused,
    ProtocolError,
    decode_object,
)
from dashd.store.database import StoreUnavailable
from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
from dashd.timefmt import iso_ms
from dashd.wire.protocol import client_address, protocol_options

log = Logger()

SECOND = 1.0
MINUTE = 60 * SECOND

INGEST_PROTOCOL_VERSION = 1
MAX_SAMPLES_PER_MESSAGE = 500
MAX_METRICS_PER_SAMPLE = 200
MAX_FUTURE_SKEW_MS = int(5 * MINUTE * 1000)  # agent clocks ahead by more than this are refused
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01: anything older is a broken clock
METRIC_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_HOST_NAME = 128
# Timestamps remembered per host for de-duplication without the store; an
# older resend (or the first batch after a hub restart) is checked against
# the store instead.
DEDUP_WINDOW = 20_000
INGEST_TYPES = ("samples", "ping")


def _bad(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("bad_message", message, details or None)


def parse_timestamp(value: object, index: int) -> int:
    """An ISO-8601 timestamp with a time zone -> Unix ms (ValueError-free:
    raises ProtocolError bad_message)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise _bad(f"samples[{index}].timestamp must be an ISO-8601 string such as 2026-11-26T10:00:01.000Z",
                   index=index)
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"samples[{index}].timestamp is not ISO-8601: {value[:40]!r}", index=index) from None
    if moment.tzinfo is None:
        raise _bad(f"samples[{index}].timestamp needs a time zone (end it with Z)", index=index)
    return round(moment.timestamp() * 1000)


def validate_batch(data: object, host: str, now_ms: int) -> list[Sample]:
    """The samples of one `samples` message, all valid, or a ProtocolError
    (bad_message, too_large, or forbidden for another host's sample). The
    batch is accepted or refused as a whole."""
    if not isinstance(data, dict):
        raise _bad("samples: 'data' must be an object")
    samples = data.get("samples")
    if not isinstance(samples, list) or not samples:
        raise _bad("samples: 'samples' must be a non-empty list")
    if len(samples) > MAX_SAMPLES_PER_MESSAGE:
        raise ProtocolError("too_large", f"samples: at most {MAX_SAMPLES_PER_MESSAGE} samples per message",
                            {"max_samples": MAX_SAMPLES_PER_MESSAGE})
    result: list[Sample] = []
    for index, item in enumerate(samples):
        if not isinstance(item, dict):
            raise _bad(f"samples[{index}] must be an object", index=index)
        sample_host = item.get("host")
        if not isinstance(sample_host, str) or not sample_host:
            raise _bad(f"samples[{index}].host must be a non-empty string", index=index)
        if sample_host != host:
            raise ProtocolError("forbidden", f"samples[{index}]: this agent may publish only for host {host!r}",
                                {"index": index, "host": host})
        timestamp_ms = parse_timestamp(item.get("timestamp"), index)
        if timestamp_ms > now_ms + MAX_FUTURE_SKEW_MS:
            raise _bad(f"samples[{index}].timestamp is more than {MAX_FUTURE_SKEW_MS // 1000}s in the future "
                       f"(check the agent's clock)", index=index)
        if timestamp_ms < MIN_TIMESTAMP_MS:
            raise _bad(f"samples[{index}].timestamp is before the year 2000", index=index)
        metrics = item.get("metrics")
        if not isinstance(metrics, dict):
            raise _bad(f"samples[{index}].metrics must be an object", index=index)
        if len(metrics) > MAX_METRICS_PER_SAMPLE:
            raise ProtocolError("too_large", f"samples[{index}]: at most {MAX_METRICS_PER_SAMPLE} metrics per sample",
                                {"index": index, "max_metrics": MAX_METRICS_PER_SAMPLE})
        for name, value in metrics.items():
            if not METRIC_NAME.match(name):
                raise _bad(f"samples[{index}]: metric names are 1-64 characters of A-Z, a-z, 0-9 and _ "
                           f"(got {name[:70]!r})", index=index)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _bad(f"samples[{index}].metrics.{name} must be a finite number", index=index)
        result.append(Sample(host=host, timestamp_ms=timestamp_ms, metrics={k: v for k, v in metrics.items()}))
    return result


class RecentTimestamps:
    """The timestamps recently accepted for one host (bounded), and the
    newest timestamp known to be stored for it."""

    def __init__(self, newest_stored: int | None, size: int = DEDUP_WINDOW) -> None:
        self.newest: int | None = newest_stored
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self._size = size

    def __contains__(self, timestamp_ms: int) -> bool:
        return timestamp_ms in self._seen

    def is_newer(self, timestamp_ms: int) -> bool:
        """Above everything stored for this host: certainly not a duplicate."""
        return self.newest is None or timestamp_ms > self.newest

    def forget(self, timestamps: Iterable[int]) -> None:
        """Timestamps accepted but not stored after all: a resend is new.
        (`newest` stays: older resends are checked against the store.)"""
        for timestamp_ms in timestamps:
            self._seen.discard(timestamp_ms)

    def add(self, timestamp_ms: int) -> None:
        if timestamp_ms in self._seen:
            return
        self._seen.add(timestamp_ms)
        self._order.append(timestamp_ms)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        if self.newest is None or timestamp_ms > self.newest:
            self.newest = timestamp_ms


STORE_HIGH_WATER = 0.5  # refuse batches while the store's queue is more than half full
STORE_BUSY_RETRY = 1.0  # seconds


@dataclass(frozen=True)
class AgentLimits:
    """What one agent host may publish."""

    samples_per_second: float
    max_series: int
    burst: int = MAX_SAMPLES_PER_MESSAGE  # a full batch must always fit


class HostQuota:
    """One host's sample bucket and the metric names it has published."""

    def __init__(self, limits: AgentLimits, now: float) -> None:
        self.bucket = CostBucket(limits.samples_per_second, max(limits.burst, limits.samples_per_second), now)
        self.series: set[str] = set()


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    last_timestamp_ms: int

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "last_timestamp": iso_ms(self.last_timestamp_ms)}


class StoredTimestamps:
    """What the store already holds for a host (the de-duplication fallback
    after a hub restart or for resends older than the window)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def newest(self, host: str) -> int | None:
        return await self._store.newest_timestamp(host)

    async def present(self, host: str, from_ms: int, to_ms: int) -> set[int]:
        return await self._store.sample_times(host, from_ms, to_ms)


class IngestService:
    """Accepts validated batches: de-duplicates per host, publishes, waits
    until the store has the samples. One batch per host at a time (a lock
    per host), so two connections of one agent cannot both accept a sample."""

    def __init__(self, publish: Callable[[Sample], Deferred], stored: StoredTimestamps | None,
                 flush: Callable[[], Deferred] | None, window: int = DEDUP_WINDOW, *,
                 limits: AgentLimits | None = None, clock: Any = None,
                 durable: Callable[[], Deferred] | None = None,
                 store_backlog: Callable[[], tuple[int, int]] | None = None,
                 on_refused: Callable[[str], None] = lambda reason: None) -> None:
        self._publish = publish
        self._stored = stored
        self._flush = flush
        self._window = window
        self._hosts: dict[str, RecentTimestamps] = {}
        self._locks: dict[str, DeferredLock] = {}
        self._limits = limits
        self._clock = clock
        # durable() -> Deferred[bool]: the store's write ticket; True once
        # every row recorded so far is written (Store.when_written).
        self._durable_ticket = durable
        # store_backlog() -> (rows queued, queue capacity)
        self._store_backlog = store_backlog
        self._on_refused = on_refused
        self._quotas: dict[str, HostQuota] = {}

    async def accept(self, host: str, samples: Sequence[Sample]) -> IngestResult:
        lock = self._locks.setdefault(host, DeferredLock())
        await lock.acquire()
        try:
            fresh = await self._fresh(host, samples)
            if fresh:
                self._check_limits(host, fresh)
            recent = self._hosts[host]
            for sample in fresh:
                recent.add(sample.timestamp_ms)
                d = self._publish(sample)
                d.addErrback(lambda f: log.failure("publishing an agent sample failed", f))
            ticket = self._durable_ticket() if fresh and self._durable_ticket is not None else None
        finally:
            lock.release()
        if ticket is not None:
            if not await ticket:
                # Not on disk (the write failed, or rows were dropped before
                # it): not confirmed, and not remembered, so the agent's
                # resend is accepted rather than counted as a duplicate.
                recent.forget(sample.timestamp_ms for sample in fresh)
                self._refused("not_durable")
                raise ProtocolError("unavailable", "the store did not confirm these samples; resend them",
                                    {"retry_after": STORE_BUSY_RETRY})
        elif fresh and self._flush is not None:
            await self._durable()
        return IngestResult(len(fresh), len(samples) - len(fresh), max(s.timestamp_ms for s in samples))

    def _refused(self, reason: str) -> None:
        try:
            self._on_refused(reason)
        except Exception:
            log.failure("counting an ingest refusal failed")

    def _check_limits(self, host: str, fresh: Sequence[Sample]) -> None:
        """Refuse the batch (ProtocolError) when it would take the host over
        its limits or the store's queue past its high-water mark. Checked
        before anything is published, so a refused batch leaves no trace."""
        if self._store_backlog is not None:
            queued, capacity = self._store_backlog()
            rows = sum(len(sample.metrics) for sample in fresh)
            if queued + rows > capacity * STORE_HIGH_WATER:
                self._refused("store_busy")
                raise ProtocolError("rate_limited", "the store is behind; resend these samples shortly",
                                    {"retry_after": STORE_BUSY_RETRY})
        limits = self._limits
        if limits is None:
            return
        now = self._clock.seconds()
        quota = self._quotas.get(host)
        if quota is None:
            quota = self._quotas[host] = HostQuota(limits, now)
        new_series = {name for sample in fresh for name in sample.metrics} - quota.series
        if len(quota.series) + len(new_series) > limits.max_series:
            self._refused("series")
            raise ProtocolError("too_large", f"host {host!r} may publish at most {limits.max_series} distinct "
                                f"metrics ({len(quota.series)} so far)", {"max_series": limits.max_series})
        if not quota.bucket.take(len(fresh), now):
            self._refused("sample_rate")
            raise ProtocolError("rate_limited", f"host {host!r} may publish {limits.samples_per_second:g} samples "
                                "per second; resend later",
                                {"retry_after": round(quota.bucket.retry_after(len(fresh)), 3),
                                 "samples_per_second": limits.samples_per_second})
        quota.series |= new_series

    async def _fresh(self, host: str, samples: Sequence[Sample]) -> list[Sample]:
        recent = self._hosts.get(host)
        if recent is None:
            newest = await self._stored.newest(host) if self._stored is not None else None
            recent = self._hosts[host] = RecentTimestamps(newest, self._window)
        fresh: list[Sample] = []
        seen: set[int] = set()
        unsure: list[Sample] = []
        for sample in sorted(samples, key=lambda s: s.timestamp_ms):
            ts = sample.timestamp_ms
            if ts in seen or ts in recent:
                continue
            seen.add(ts)
            if recent.is_newer(ts):
                fresh.append(sample)
            else:
                unsure.append(sample)
        if unsure:
            stored: set[int] = set()
            if self._stored is not None:
                stored = await self._stored.present(host, unsure[0].timestamp_ms, unsure[-1].timestamp_ms)
            fresh = sorted(fresh + [s for s in unsure if s.timestamp_ms not in stored], key=lambda s: s.timestamp_ms)
        return fresh

    async def _durable(self) -> None:
        # Store.flush shares a write already in flight, which may have started
        # before these rows were queued; the second call covers them.
        await self._flush()
        await self._flush()


def bus_of(core: Core) -> Any:
    """The daemon's bus; cores built by hand in tests may have none set."""
    return core.bus if core.bus is not None else core.hub._bus


def ingest_service_for(core: Core) -> IngestService:
    """The daemon's one IngestService: every listener's /ingest (plain and
    TLS) shares it, so de-duplication and the per-host locks are global."""
    existing = getattr(core, "_ingest_service", None)
    if existing is not None:
        return existing
    store = core.store
    flush = getattr(store, "flush", None)
    stored = StoredTimestamps(store) if hasattr(store, "fetchall") else None
    settings = core.settings
    telemetry = core.telemetry
    limits = AgentLimits(settings.agent_samples_per_second, settings.agent_max_series)
    # The ticket covers what the store has recorded when it is taken: with
    # the in-process bus that includes the batch just published (delivery
    # is synchronous); with the Redis bus it may not yet, so there the
    # confirmation waits for flushes as before.
    durable = getattr(store, "when_written", None) if isinstance(bus_of(core), InMemoryBus) else None
    backlog = (lambda: (store.pending_rows, store.max_queue_rows)) if hasattr(store, "max_queue_rows") else None
    service = IngestService(lambda sample: bus_of(core).publish(METRICS_TOPIC, sample), stored, flush,
                            limits=limits, clock=core.clock, durable=durable, store_backlog=backlog,
                            on_refused=telemetry.ingest_refused if telemetry is not None else lambda reason: None)
    core._ingest_service = service  # type: ignore[attr-defined]
    return service


class IngestServerProtocol(WebSocketServerProtocol):
    """One agent connection: Bearer agent token on the handshake, then
    `samples` and `ping` requests."""

    principal: Principal | None = None
    address: str = "?"
    _refusal: ProtocolError | None = None
    bucket: TokenBucket | None = None

    def onConnect(self, request) -> Any:
        factory: IngestServerFactory = self.factory
        core = factory.core
        self.address = client_address(request.peer, request.headers, core.settings.trusted_proxies)
        if request.headers.get("origin") is not None:
            # Agents are not browsers; a page must not be able to push samples.
            raise ConnectionDeny(403, "browsers may not connect to /ingest")
        try:
            factory.admit(self.address)
        except HandshakeRefused as refused:
            raise ConnectionDeny(refused.status, refused.reason) from None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self._refusal = ProtocolError("unauthorized", "send 'Authorization: Bearer <agent token>'",
                                          close_code=CLOSE_UNAUTHORIZED)
            return None
        try:
            principal = core.verify_token(token.strip(), endpoint="ingest")  # agent tokens only
        except AuthError as e:
            self._refusal = ProtocolError("unauthorized", str(e), close_code=CLOSE_UNAUTHORIZED)
            return None
        if len(principal.subject) > MAX_HOST_NAME:
            self._refusal = ProtocolError("unauthorized", "the token's subject is too long for a host name",
                                          close_code=CLOSE_UNAUTHORIZED)
            return None
        self.principal = principal
        return None

    def onOpen(self) -> None:
        factory: IngestServerFactory = self.factory
        factory.opened(self)
        if self._refusal is not None or self.principal is None:
            refusal = self._refusal or ProtocolError("unauthorized", "not authenticated", close_code=CLOSE_UNAUTHORIZED)
            if factory.core.telemetry is not None:
                factory.core.telemetry.auth_failed(refusal.message)
            log.info("refused an agent from {address}: {why}", address=self.address, why=refusal.message)
            self._fail(refusal, None)
            return
        core = factory.core
        settings = core.settings
        self.bucket = TokenBucket(settings.messages_per_second, settings.message_burst, core.clock.seconds())
        log.info("agent {host} connected from {address}", host=self.principal.subject, address=self.address)
        self.send({"type": "connection_ack", "correlation_id": None, "data": {
            "protocol_version": INGEST_PROTOCOL_VERSION, "endpoint": "ingest", "role": AGENT_ROLE,
            "host": self.principal.subject, "server_time": iso_ms(core.wall_clock_ms()),
            "token_expires_at": iso_ms(self.principal.expires_at * 1000),
            "limits": {"max_message_bytes": settings.max_message_size,
                       "max_samples_per_message": MAX_SAMPLES_PER_MESSAGE,
                       "max_metrics_per_sample": MAX_METRICS_PER_SAMPLE,
                       "messages_per_second": settings.messages_per_second, "burst": settings.message_burst,
                       "samples_per_second": settings.agent_samples_per_second,
                       "max_series": settings.agent_max_series},
        }})

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.principal is None or self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        if isBinary:
            self.close(CLOSE_UNSUPPORTED_DATA, "text JSON frames only")
            return
        correlation_id = None
        try:
            message = decode_object(payload, "frame")
            correlation_id = _correlation_id(message)
            _check_type(message)
            self._check_live()
            if not self.bucket.take(self.factory.core.clock.seconds()):
                raise ProtocolError("rate_limited", "too many messages; slow down",
                                    {"retry_after": round(self.bucket.retry_after(), 3)})
            kind = message["type"]
            if kind == "ping":
                self.send({"type": "pong", "correlation_id": correlation_id,
                           "data": {"server_time": iso_ms(self.factory.core.wall_clock_ms()),
                                    "client_time": (message.get("data") or {}).get("client_time")
                                    if isinstance(message.get("data"), dict) else None}})
                return
            samples = validate_batch(message.get("data"), self.principal.subject, self.factory.core.wall_clock_ms())
        except ProtocolError as error:
            self._fail(error, correlation_id)
            return
        d = Deferred.fromCoroutine(self._accept(samples, correlation_id))
        d.addErrback(lambda f: log.failure("ingest from {host} failed", f, host=self.principal.subject))

    async def _accept(self, samples: list[Sample], correlation_id: Any) -> None:
        try:
            result = await self.factory.ingest.accept(self.principal.subject, samples)
        except ProtocolError as error:
            self._fail(error, correlation_id)
            return
        except StoreUnavailable:
            self._fail(ProtocolError("unavailable", "the store is unavailable; resend later"), correlation_id)
            return
        except Exception:
            log.failure("internal error on samples from {host}", host=self.principal.subject)
            self._fail(ProtocolError("internal", "internal error"), correlation_id)
            return
        self.send({"type": "samples", "correlation_id": correlation_id, "data": result.as_dict()})

    def _check_live(self) -> None:
        factory: IngestServerFactory = self.factory
        if not factory.core.hub.running:
            # Shutting down: the hub no longer sequences or stores; samples
            # accepted now would be confirmed and lost. The agent resends.
            raise ProtocolError("unavailable", "the hub is shutting down", close_code=CLOSE_GOING_AWAY)
        if self.principal.expires_at * 1000 <= factory.core.wall_clock_ms():
            raise ProtocolError("unauthorized", "token expired", close_code=CLOSE_UNAUTHORIZED)

    def _fail(self, error: ProtocolError, correlation_id: Any) -> None:
        self.send({"type": "error", "correlation_id": correlation_id, "data": error.data()})
        if error.close_code is not None:
            self.close(error.close_code, error.message[:100])

    def send(self, message: Mapping[str, Any]) -> None:
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            self.sendMessage(orjson.dumps(message))

    def close(self, code: int, reason: str) -> None:
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            self.sendCloseFrame(code, encode_truncate(reason, 123), isReply=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.closed(self)
        if self.principal is not None and self._refusal is None:
            log.info("agent {host} disconnected ({code})", host=self.principal.subject, code=code)


def _correlation_id(message: dict) -> Any:
    correlation_id = message.get("correlation_id")
    if correlation_id is not None and (not isinstance(correlation_id, str) or len(correlation_id) > 128):
        raise _bad("'correlation_id' must be a string of at most 128 characters")
    return correlation_id


def _check_type(message: dict) -> None:
    kind = message.get("type")
    if not isinstance(kind, str):
        raise _bad("'type' must be a string")
    if kind not in INGEST_TYPES:
        raise ProtocolError("unknown_type", f"unknown type {kind[:40]!r} on /ingest", {"known": list(INGEST_TYPES)})


class IngestServerFactory(WebSocketServerFactory):
    """The /ingest endpoint: same Autobahn options (message size limits,
    pings, timeouts) as the dashboard endpoints."""

    protocol = IngestServerProtocol

    def __init__(self, core: Core, secure: bool = False, ingest: IngestService | None = None) -> None:
        super().__init__()
        self.core = core
        self.secure = secure
        self.ingest = ingest if ingest is not None else ingest_service_for(core)
        self.setProtocolOptions(**protocol_options(core.settings))
        self.server = "dashd"
        self.agents: set[IngestServerProtocol] = set()

    def admit(self, address: str) -> None:
        """Agents count against the same per-address limit as viewers."""
        settings = self.core.settings
        same = sum(1 for agent in self.agents if agent.address == address)
        if same >= settings.max_connections_per_ip:
            raise HandshakeRefused(429, "too many connections from this address")

    def opened(self, protocol: IngestServerProtocol) -> None:
        self.agents.add(protocol)

    def closed(self, protocol: IngestServerProtocol) -> None:
        self.agents.discard(protocol)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        for agent in list(self.agents):
            agent.close(code, reason)
