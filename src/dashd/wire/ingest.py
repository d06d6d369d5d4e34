"""The hub's side of agents: the `/ingest` WebSocket endpoint.

An agent (`dashd agent`: dashd.agent, dashd.collect.agent) authenticates with an `agent`
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

Split as elsewhere in dashd: the domain is dashd.clients.ingest
(`validate_batch` and `RecentTimestamps`, no I/O; `IngestService`, the
per-host bookkeeping that talks to the bus and the store, built once by
dashd.tap); this module's Autobahn protocol/factory only check the
handshake (dashd.auth.handshake), parse frames and turn ProtocolErrors into
`error` frames (dashd.errors.error_frame).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import orjson
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.util import encode_truncate
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dashd.auth.handshake import TokenCheck, bearer_token
from dashd.auth.tokens import AGENT_ROLE, AuthError, Principal
from dashd.clients.ingest import (
    MAX_HOST_NAME,
    MAX_METRICS_PER_SAMPLE,
    MAX_SAMPLES_PER_MESSAGE,
    IngestService,
    validate_batch,
)
from dashd.clients.limits import TokenBucket
from dashd.clients.seams import ClientTelemetry
from dashd.collect.collector import Sample
from dashd.errors import (
    CLOSE_GOING_AWAY,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_DATA,
    HandshakeRefused,
    ProtocolError,
    bad_message,
    correlation_id_of,
    decode_object,
    error_frame,
)
from dashd.settings import Settings
from dashd.store.database import StoreUnavailable
from dashd.timefmt import iso_ms, now_ms
from dashd.wire.protocol import client_address, protocol_options

log = Logger()

INGEST_PROTOCOL_VERSION = 1
INGEST_TYPES = ("samples", "ping")


class IngestServerProtocol(WebSocketServerProtocol):
    """One agent connection: Bearer agent token on the handshake, then
    `samples` and `ping` requests."""

    principal: Principal | None = None
    address: str = "?"
    _refusal: ProtocolError | None = None
    bucket: TokenBucket | None = None

    def onConnect(self, request) -> Any:
        factory: IngestServerFactory = self.factory
        self.address = client_address(request.peer, request.headers, factory.settings.trusted_proxies)
        if request.headers.get("origin") is not None:
            # Agents are not browsers; a page must not be able to push samples.
            raise ConnectionDeny(403, "browsers may not connect to /ingest")
        try:
            factory.admit(self.address)
        except HandshakeRefused as refused:
            raise ConnectionDeny(refused.status, refused.reason) from None
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            self._refusal = ProtocolError(
                "unauthorized", "send 'Authorization: Bearer <agent token>'", close_code=CLOSE_UNAUTHORIZED
            )
            return None
        try:
            principal = factory.tokens.verify(token, endpoint="ingest")  # agent tokens only
        except AuthError as e:
            self._refusal = ProtocolError("unauthorized", str(e), close_code=CLOSE_UNAUTHORIZED)
            return None
        if len(principal.subject) > MAX_HOST_NAME:
            self._refusal = ProtocolError(
                "unauthorized", "the token's subject is too long for a host name", close_code=CLOSE_UNAUTHORIZED
            )
            return None
        self.principal = principal
        return None

    def onOpen(self) -> None:
        factory: IngestServerFactory = self.factory
        factory.opened(self)
        if self._refusal is not None or self.principal is None:
            refusal = self._refusal or ProtocolError("unauthorized", "not authenticated", close_code=CLOSE_UNAUTHORIZED)
            if factory.telemetry is not None:
                factory.telemetry.auth_failed(refusal.message)
            log.info("refused an agent from {address}: {why}", address=self.address, why=refusal.message)
            self._fail(refusal, None)
            return
        settings = factory.settings
        self.bucket = TokenBucket(settings.messages_per_second, settings.message_burst, factory.clock.seconds())
        log.info("agent {host} connected from {address}", host=self.principal.subject, address=self.address)
        self.send(
            {
                "type": "connection_ack",
                "correlation_id": None,
                "data": {
                    "protocol_version": INGEST_PROTOCOL_VERSION,
                    "endpoint": "ingest",
                    "role": AGENT_ROLE,
                    "host": self.principal.subject,
                    "server_time": iso_ms(factory.wall_clock_ms()),
                    "token_expires_at": iso_ms(self.principal.expires_at * 1000),
                    "limits": {
                        "max_message_bytes": settings.max_message_size,
                        "max_samples_per_message": MAX_SAMPLES_PER_MESSAGE,
                        "max_metrics_per_sample": MAX_METRICS_PER_SAMPLE,
                        "messages_per_second": settings.messages_per_second,
                        "burst": settings.message_burst,
                        "samples_per_second": settings.agent_samples_per_second,
                        "max_series": settings.agent_max_series,
                    },
                },
            }
        )

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.principal is None or self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        if isBinary:
            self.close(CLOSE_UNSUPPORTED_DATA, "text JSON frames only")
            return
        correlation_id = None
        try:
            message = decode_object(payload, "frame")
            correlation_id = correlation_id_of(message)
            _check_type(message)
            self._check_live()
            if not self.bucket.take(self.factory.clock.seconds()):
                raise ProtocolError(
                    "rate_limited", "too many messages; slow down", {"retry_after": round(self.bucket.retry_after(), 3)}
                )
            kind = message["type"]
            if kind == "ping":
                self.send(
                    {
                        "type": "pong",
                        "correlation_id": correlation_id,
                        "data": {
                            "server_time": iso_ms(self.factory.wall_clock_ms()),
                            "client_time": (message.get("data") or {}).get("client_time")
                            if isinstance(message.get("data"), dict)
                            else None,
                        },
                    }
                )
                return
            samples = validate_batch(message.get("data"), self.principal.subject, self.factory.wall_clock_ms())
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
        if not factory.ingest.is_accepting():
            # Shutting down: the hub no longer sequences or stores; samples
            # accepted now would be confirmed and lost. The agent resends.
            raise ProtocolError("unavailable", "the hub is shutting down", close_code=CLOSE_GOING_AWAY)
        if self.principal.expires_at * 1000 <= factory.wall_clock_ms():
            raise ProtocolError("unauthorized", "token expired", close_code=CLOSE_UNAUTHORIZED)

    def _fail(self, error: ProtocolError, correlation_id: Any) -> None:
        self.send(error_frame(error, correlation_id))
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


def _check_type(message: dict) -> None:
    kind = message.get("type")
    if not isinstance(kind, str):
        raise bad_message("'type' must be a string")
    if kind not in INGEST_TYPES:
        raise ProtocolError("unknown_type", f"unknown type {kind[:40]!r} on /ingest", {"known": list(INGEST_TYPES)})


class IngestServerFactory(WebSocketServerFactory):
    """The /ingest endpoint: same Autobahn options (message size limits,
    pings, timeouts) as the dashboard endpoints."""

    protocol = IngestServerProtocol

    def __init__(
        self,
        ingest: IngestService,
        tokens: TokenCheck,
        settings: Settings,
        clock: IReactorTime,
        *,
        wall_clock_ms: Callable[[], int] | None = None,
        secure: bool = False,
        telemetry: ClientTelemetry | None = None,
    ) -> None:
        super().__init__()
        self.ingest = ingest
        self.tokens = tokens
        self.settings = settings
        self.clock = clock
        self.wall_clock_ms = wall_clock_ms or now_ms
        self.telemetry = telemetry
        self.secure = secure
        self.setProtocolOptions(**protocol_options(settings))
        self.server = "dashd"
        self.agents: set[IngestServerProtocol] = set()

    def admit(self, address: str) -> None:
        """Agents count against the same per-address limit as viewers."""
        settings = self.settings
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
