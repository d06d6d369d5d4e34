"""One client connection's state, independent of the network: authentication
and its timers, the inbound rate limit, and its ClientStream. The
protocol feeds it frames; it answers through a ClientSink."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from dashd.auth.tokens import AuthError, Principal
from dashd.clients.limits import TokenBucket
from dashd.clients.seams import SessionContext
from dashd.errors import CLOSE_POLICY, CLOSE_UNAUTHORIZED, ProtocolError, error_frame
from dashd.stream.streams import ClientSink, ClientStream
from dashd.timefmt import iso_ms

if TYPE_CHECKING:
    from dashd.clients.router import MessageRouter

PROTOCOL_VERSION = 1
ENDPOINTS = ("dashboard", "metrics", "notifications")
ABUSE_QUIET_SECONDS = 1.0

# Frames and their `data` are JSON objects: any JSON value under a string key.
JsonObject = dict[str, Any]


class ClientSession:
    log = Logger()
    # One per connection: slots keep thousands of idle clients small.
    __slots__ = (
        "context",
        "sink",
        "endpoint",
        "address",
        "session_id",
        "connected_at_ms",
        "principal",
        "closed",
        "stream",
        "asked_hz",
        "bucket",
        "_abuse_since",
        "_last_refusal",
        "_timers",
        "_last_activity",
        "router",
    )

    def __init__(self, context: SessionContext, sink: ClientSink, endpoint: str, address: str) -> None:
        assert endpoint in ENDPOINTS, endpoint
        settings = context.settings
        self.context = context
        self.sink = sink
        self.endpoint = endpoint
        self.address = address
        self.session_id = uuid.uuid4().hex
        self.connected_at_ms = context.wall_clock_ms()
        self.principal: Principal | None = None
        self.closed = False
        clock = context.clock
        self.stream = ClientStream(
            sink,
            clock,
            wants_metrics=endpoint in ("dashboard", "metrics"),
            wants_notifications=endpoint in ("dashboard", "notifications"),
            queue_bound=settings.send_queue,
            slow_timeout=settings.slow_consumer_timeout,
            collection_hz=1.0 / context.sampling.interval,
            queue_bytes=settings.send_queue_bytes,
        )
        self.stream.set_rate(settings.max_rate_hz)
        self.asked_hz: float | None = None
        self.bucket = TokenBucket(settings.messages_per_second, settings.message_burst, clock.seconds())
        self._abuse_since: float | None = None
        self._last_refusal = 0.0
        self._timers: dict[str, IDelayedCall] = {}
        self._last_activity = clock.seconds()
        self.router: MessageRouter | None = None  # set by open(); see dashd.clients.router

    # ----- lifecycle

    def open(self, principal: Principal | None) -> None:
        from dashd.clients.router import MessageRouter  # the router imports this module

        self.router = MessageRouter(self, self.context.router)
        self.context.registry.add(self)
        if principal is not None:
            self.authenticate(principal, correlation_id=None)
        else:
            self._schedule("auth", self.context.settings.auth_timeout, self._auth_timed_out)
        if self.context.settings.idle_timeout > 0:
            self._schedule("idle", self.context.settings.idle_timeout, self._check_idle)

    def lost(self) -> None:
        """The connection is gone (closed cleanly or not)."""
        if self.closed:
            return
        self.closed = True
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
        self.stream.close()
        self.context.hub.detach(self.stream)
        if self.context.queries is not None:
            self.context.queries.cancel_owner(self)  # its query, queued or running, is no longer wanted
        self.context.registry.remove(self)
        for observer in self.context.closed_observers:
            observer(self)

    def close(self, code: int, reason: str) -> None:
        self.stream.close()
        self.sink.close(code, reason)

    # ----- inbound

    def touch(self) -> None:
        """Any traffic from the peer (a message or a pong)."""
        self._last_activity = self.context.clock.seconds()

    def receive(self, payload: bytes) -> Deferred[None] | None:
        self.touch()
        assert self.router is not None, "receive() before open()"
        now = self.context.clock.seconds()
        if not self.bucket.take(now):
            # Abuse = refusals with no quiet second between them; the odd
            # message the bucket lets through does not reset it.
            if self._abuse_since is None or now - self._last_refusal > ABUSE_QUIET_SECONDS:
                self._abuse_since = now
            self._last_refusal = now
            if now - self._abuse_since >= self.context.settings.abuse_close_after:
                self.log.warn(
                    "closing {peer}: over the message rate for {seconds:.0f}s",
                    peer=self.address,
                    seconds=now - self._abuse_since,
                )
                if self.context.telemetry is not None:
                    self.context.telemetry.rate_limited(abuse_close=True)
                self.close(CLOSE_POLICY, "message rate limit exceeded")
                return None
            if self.context.telemetry is not None:
                self.context.telemetry.rate_limited(abuse_close=False)
            self.router.reject_rate_limited(payload, self.bucket.retry_after())
            return None
        return self.router.handle(payload)

    # ----- authentication

    def authenticate(self, principal: Principal, correlation_id: Any, send_latest: bool = True) -> None:
        self._cancel("auth")
        self.principal = principal
        self.send({"type": "connection_ack", "correlation_id": correlation_id, "data": self.ack_data()})
        self._schedule_expiry(principal)
        self.stream.live = True
        self.context.hub.attach(self.stream)
        if send_latest:
            self.context.hub.send_latest(self.stream)

    def reauthenticate(self, principal: Principal) -> JsonObject:
        if self.principal is not None and principal.subject != self.principal.subject:
            raise ProtocolError("forbidden", "a new token must be for the same user")
        self.principal = principal
        self._schedule_expiry(principal)
        return {"role": principal.role, "expires_at": iso_ms(principal.expires_at * 1000)}

    def ack_data(self) -> JsonObject:
        settings = self.context.settings
        principal = self.principal
        assert principal is not None, "ack_data() before authenticate()"
        return {
            "session_id": self.session_id,
            "user": principal.subject,
            "role": principal.role,
            "protocol_version": PROTOCOL_VERSION,
            "endpoint": self.endpoint,
            "server_time": iso_ms(self.context.wall_clock_ms()),
            "host": self.context.catalogue.host,
            "interval": self.context.sampling.interval,
            "seq": self.context.hub.seq,
            "token_expires_at": iso_ms(principal.expires_at * 1000),
            "metrics": [info.as_dict() for info in self.context.catalogue.info] if self.stream.wants_metrics else [],
            "families": self.context.catalogue.families() if self.stream.wants_metrics else [],
            "subscription": self.stream.subscription.as_dict(),
            "rate": self.rate_data(),
            "limits": {
                "max_message_bytes": settings.max_message_size,
                "max_rate_hz": settings.max_rate_hz,
                "messages_per_second": settings.messages_per_second,
                "burst": settings.message_burst,
                "max_subscriptions": settings.max_subscriptions,
                "max_history_points": settings.max_history_points,
                "max_history_span": settings.max_history_span,
                "max_query_cost": settings.query_max_cost,
                "send_queue_bytes": settings.send_queue_bytes,
            },
        }

    def interval_changed(self, interval: float) -> None:
        """The collector's period changed: the stream paces against it."""
        self.stream.collection_hz = 1.0 / interval

    def rate_data(self) -> JsonObject:
        return {"max_hz": self.asked_hz, "effective_hz": round(self.stream.effective_hz, 4)}

    def _schedule_expiry(self, principal: Principal) -> None:
        """One timer per connection for the token: first the warning, then
        (rescheduled) the expiry itself."""
        now_s = self.context.wall_clock_ms() / 1000.0
        remaining = principal.expires_at - now_s
        warning = remaining - self.context.settings.token_warning
        if warning > 0:
            self._schedule("expiry", warning, self._warn_then_wait)
        else:
            if remaining > 0:
                self._warn_expiry()
            self._schedule("expiry", max(0.0, remaining), self._expired)

    def _warn_then_wait(self) -> None:
        self._warn_expiry()
        assert self.principal is not None, "the expiry timer runs only once authenticated"
        remaining = self.principal.expires_at - self.context.wall_clock_ms() / 1000.0
        self._schedule("expiry", max(0.0, remaining), self._expired)

    def _warn_expiry(self) -> None:
        assert self.principal is not None, "the expiry timer runs only once authenticated"
        self.send(
            {
                "type": "token_expiring",
                "correlation_id": None,
                "data": {"expires_at": iso_ms(self.principal.expires_at * 1000)},
            }
        )

    def _expired(self) -> None:
        self.send_error(ProtocolError("unauthorized", "token expired"), None)
        self.close(CLOSE_UNAUTHORIZED, "token expired")

    def _auth_timed_out(self) -> None:
        if self.principal is None and not self.closed:
            self.send_error(
                ProtocolError(
                    "unauthorized", f"authentication required: send auth within {self.context.settings.auth_timeout:g}s"
                ),
                None,
            )
            self.close(CLOSE_UNAUTHORIZED, "authentication timeout")

    def revalidate(self) -> None:
        """Called when sessions are revoked or users disabled."""
        if self.principal is None:
            return
        try:
            self.context.tokens.check(self.principal)
        except AuthError as e:
            self.send_error(ProtocolError("unauthorized", str(e)), None)
            self.close(CLOSE_UNAUTHORIZED, str(e))

    def _check_idle(self) -> None:
        idle_timeout = self.context.settings.idle_timeout
        idle = self.context.clock.seconds() - self._last_activity
        if idle >= idle_timeout:
            self.close(1000, "idle timeout")
        else:
            self._schedule("idle", idle_timeout - idle, self._check_idle)

    # ----- timers

    def _schedule(self, name: str, delay: float, call: Callable[[], None]) -> None:
        self._cancel(name)
        self._timers[name] = self.context.clock.callLater(delay, self._fire, name, call)

    def _fire(self, name: str, call: Callable[[], None]) -> None:
        self._timers.pop(name, None)
        if not self.closed:
            call()

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    # ----- outbound

    def send(self, message: JsonObject) -> None:
        if not self.closed:
            self.stream.send(message)

    def reply(self, type_: str, data: JsonObject, correlation_id: Any) -> None:
        self.send({"type": type_, "correlation_id": correlation_id, "data": data})

    def send_error(self, error: ProtocolError, correlation_id: Any) -> None:
        self.send(error_frame(error, correlation_id))

    def fail(self, error: ProtocolError, correlation_id: Any) -> None:
        """The one way a session answers a failed request: the `error` frame,
        then the close the error asks for (if any)."""
        self.send_error(error, correlation_id)
        if error.close_code is not None:
            self.close(error.close_code, error.message[:100])

    def describe(self) -> JsonObject:
        principal = self.principal
        return {
            "session_id": self.session_id,
            "user": principal.subject if principal else None,
            "role": principal.role if principal else None,
            "endpoint": self.endpoint,
            "peer": self.address,
            "connected_at": iso_ms(self.connected_at_ms),
            "subscription": self.stream.subscription.as_dict(),
            "rate": self.rate_data(),
            "queued": self.stream.queued,
        }


class SessionFactory:
    """What a WebSocket protocol gets: admission against the connection
    limits, and a new ClientSession for an accepted handshake."""

    def __init__(self, context: SessionContext) -> None:
        self.context = context

    def admit(self, address: str) -> None:
        """Raises HandshakeRefused when the connection limits are reached."""
        self.context.registry.admit(address)

    def __call__(self, sink: ClientSink, endpoint: str, address: str) -> ClientSession:
        return ClientSession(self.context, sink, endpoint, address)
