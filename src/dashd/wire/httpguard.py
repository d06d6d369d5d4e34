"""The HTTP front door: every TCP connection and request passes here before
any resource runs (docs/security.md, "Limits").

- ConnectionGate: at most N TCP connections per client address (HTTP and
  WebSocket alike; trusted proxies exempt) and a total kept below the
  file-descriptor budget, refused with a short 429/503 before any parsing.
- A request deadline: the request line, headers and body (and with them
  the WebSocket handshake, which completes as the headers are processed)
  must arrive within `request_timeout` of the connection opening or of the
  previous response. Twisted's idle timeout restarts on every byte, so a
  header line trickled every few seconds kept a socket forever.
- The request head is checked once it is complete, before a byte of body is
  read: the Host must be allowed (DNS rebinding), a body is refused by its
  Content-Length above the route's limit (413) and routes that take none get
  none; bodies without a length are counted while they stream. twisted.web's
  Request would otherwise spool any body to a temp file before rendering.
- Agent tokens are refused here on every path but /ingest (dashd.auth.tokens
  holds the rule; WebSocket upgrades are refused by the same rule in the
  handshake, with a typed error frame).
- Responses carry no Twisted version in `Server`, and HSTS over HTTPS.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import orjson
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from dashd.auth.handshake import bearer_token
from dashd.auth.tokens import INGEST_ENDPOINT, AuthError, EndpointForbidden, Principal
from dashd.ops.ratelog import SummarizedLog, printable

log = Logger()

SERVER_NAME = b"dashd"
# Kept free below the open-files limit for the store, logs, static files,
# Redis, /proc reads and the listening sockets.
FD_HEADROOM = 256
SECURITY_HEADERS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"X-Frame-Options", b"DENY"),
    (b"Referrer-Policy", b"no-referrer"),
)
_REASONS = {
    400: b"Bad Request",
    403: b"Forbidden",
    408: b"Request Timeout",
    413: b"Content Too Large",
    421: b"Misdirected Request",
    429: b"Too Many Requests",
    503: b"Service Unavailable",
}


@dataclass(frozen=True)
class Refusal:
    """An HTTP error answered by the front door, before any resource."""

    status: int
    code: str
    message: str

    def response(self, extra: Iterable[tuple[bytes, bytes]] = ()) -> bytes:
        body = orjson.dumps({"error": {"code": self.code, "message": self.message}})
        lines = [
            b"HTTP/1.1 %d %s" % (self.status, _REASONS.get(self.status, b"Error")),
            b"Server: " + SERVER_NAME,
            b"Content-Type: application/json",
            b"Cache-Control: no-store",
            b"Content-Length: %d" % len(body),
            b"Connection: close",
        ]
        lines += [name + b": " + value for name, value in (*SECURITY_HEADERS, *extra)]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


# ----- connection caps


class ConnectionGate:
    """Counts open TCP connections per client address and in total.

    A connection is tracked by its transport and counted until the
    transport is disconnected, whichever protocol owns it by then (a
    WebSocket upgrade hands the socket from the HTTP channel to Autobahn, so
    the channel never hears of its end). Closed ones are swept lazily: before
    refusing, and whenever a list has doubled since its last sweep, so the
    cost per connection stays constant and dead entries stay bounded."""

    def __init__(self, per_address: int, total: int, exempt: Iterable[str] = ()) -> None:
        self.per_address = per_address
        self.total = total
        self.exempt = frozenset(exempt)
        self._by_address: dict[str, list[Any]] = {}
        self._swept_size: dict[str, int] = {}
        self._count = 0
        self._total_swept_size = 0

    def admit(self, address: str, transport: Any) -> Refusal | None:
        if self._count >= self.total or self._count >= 2 * self._total_swept_size + 64:
            self._sweep_all()
            if self._count >= self.total:
                return Refusal(503, "unavailable", "server at its connection limit")
        if address not in self.exempt:
            tracked = self._by_address.get(address, ())
            if len(tracked) >= self.per_address or len(tracked) >= 2 * self._swept_size.get(address, 0) + 64:
                tracked = self._sweep(address)
            if len(tracked) >= self.per_address:
                return Refusal(429, "rate_limited", "too many connections from this address")
        self._by_address.setdefault(address, []).append(transport)
        self._count += 1
        return None

    def count(self, address: str | None = None) -> int:
        """Open connections (from `address`, or in total), swept now."""
        if address is None:
            self._sweep_all()
            return self._count
        return len(self._sweep(address))

    def _sweep(self, address: str) -> list[Any]:
        transports = self._by_address.get(address)
        if not transports:
            return []
        alive = [t for t in transports if not getattr(t, "disconnected", False)]
        self._count -= len(transports) - len(alive)
        if alive:
            self._by_address[address] = alive
            self._swept_size[address] = len(alive)
        else:
            del self._by_address[address]
            self._swept_size.pop(address, None)
        return alive

    def _sweep_all(self) -> None:
        for address in list(self._by_address):
            self._sweep(address)
        self._total_swept_size = self._count


# ----- allowed hosts


class HostPolicy:
    """Which Host headers are served. IP addresses always are (DNS rebinding
    needs a name); names must be listed."""

    def __init__(self, names: Iterable[str], allow_any: bool = False) -> None:
        self.names = frozenset(name.lower().rstrip(".") for name in names if name)
        self.allow_any = allow_any

    @classmethod
    def from_settings(cls, settings: Any) -> HostPolicy:
        if "*" in settings.allowed_hosts:
            return cls((), allow_any=True)
        if settings.allowed_hosts:
            names = set(settings.allowed_hosts)
        else:
            names = {"localhost", settings.host, socket.gethostname()}
            names.update(_listen_names(settings.listen + settings.tls_listen))
        if settings.public_url:
            names.add(urlsplit(settings.public_url).hostname or "")
        return cls(names)

    def allows(self, host_header: str) -> bool:
        host = host_name_of(host_header)
        if host is None:
            return False
        if self.allow_any:
            return True
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host in self.names


def host_name_of(host_header: str) -> str | None:
    """'Example.com:8080' -> 'example.com', '[::1]:80' -> '::1'; None if malformed."""
    try:
        parts = urlsplit("//" + host_header.strip())
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    if not host:
        return None
    return host.rstrip(".")


def _listen_names(endpoints: Iterable[str]) -> set[str]:
    names = set()
    for endpoint in endpoints:
        for part in endpoint.split(":"):
            if part.startswith("interface="):
                names.add(part.split("=", 1)[1].strip("[]"))
    return names


# ----- the front door


@dataclass
class SiteGuard:
    """Everything the front door decides, for one listener."""

    gate: ConnectionGate
    hosts: HostPolicy
    clock: IReactorTime
    request_timeout: float
    secure: bool
    hsts_max_age: float = 0.0
    # Path -> largest body accepted; every other path takes no body.
    body_limits: dict[bytes, int] = field(default_factory=dict)
    # Verifies a bearer token for an endpoint (TokenVerifier.verify); raises
    # EndpointForbidden for an agent token outside /ingest.
    verify_token: Callable[[str, str], Principal] | None = None
    refusals: SummarizedLog | None = None

    def body_limit(self, path: bytes) -> int:
        """Largest body the route takes (0: none). Exact paths, or a prefix
        given as a key ending in "/"."""
        route = path.split(b"?", 1)[0]
        if route in self.body_limits:
            return self.body_limits[route]
        for prefix, limit in self.body_limits.items():
            if prefix.endswith(b"/") and route.startswith(prefix):
                return limit
        return 0

    def check_head(self, path: bytes, request: Request, length: int | None) -> Refusal | None:
        """A complete request head (line and headers), before its body."""
        headers = request.requestHeaders
        hosts = headers.getRawHeaders(b"host") or []
        if len(hosts) != 1:
            return Refusal(400, "bad_message", "send exactly one Host header")
        host = hosts[0].decode("latin-1")
        # Agents dial the hub by whatever name the fleet uses; /ingest is no
        # target for DNS rebinding (browsers are refused there by Origin, and
        # it takes only agent tokens).
        if not self.hosts.allows(host) and _endpoint_of(path) != INGEST_ENDPOINT:
            return Refusal(421, "bad_message", "this server does not serve that host name (see allowed_hosts)")
        if not path.startswith(b"/") and path != b"*":
            # An absolute-form target names the host itself, and it wins over
            # the Host header (RFC 9112 3.2.2): check that name too.
            authority = urlsplit(path.decode("latin-1")).netloc
            if not authority or not self.hosts.allows(authority):
                return Refusal(421, "bad_message", "this server does not serve that host name (see allowed_hosts)")
        limit = self.body_limit(path)
        if length is not None and length > limit:
            if limit == 0:
                return Refusal(413, "too_large", "this path takes no request body")
            return Refusal(413, "too_large", f"the body may be at most {limit} bytes")
        return self._check_token(path, headers)

    def _check_token(self, path: bytes, headers: Any) -> Refusal | None:
        if self.verify_token is None:
            return None
        token = bearer_token((headers.getRawHeaders(b"authorization") or [b""])[-1].decode("latin-1"))
        if token is None:
            return None
        if (headers.getRawHeaders(b"upgrade") or [b""])[-1].lower() == b"websocket":
            # A WebSocket handshake is refused by the same rule in the
            # protocol (one verification), with a typed error frame and 4001.
            return None
        try:
            self.verify_token(token, _endpoint_of(path))
        except EndpointForbidden as e:
            return Refusal(403, "forbidden", str(e))
        except AuthError:
            return None  # not our concern here: the resource answers 401 where a token is needed
        return None

    def note(self, address: str, refusal: Refusal) -> None:
        if self.refusals is not None:
            self.refusals.warn(
                f"http-{refusal.status}",
                "refused a request from {address}: {status} {why}",
                address=printable(address),
                status=refusal.status,
                why=refusal.message,
            )


def _endpoint_of(path: bytes) -> str:
    """b'/ingest?x' -> 'ingest', b'/api/me' -> 'api'."""
    return path.split(b"?", 1)[0].strip(b"/").split(b"/", 1)[0].decode("latin-1")


class GuardedChannel(HTTPChannel):
    """HTTPChannel with the connection cap, the request deadline and the
    head checks. Site.buildProtocol sets `site` before the connection is made."""

    site: GuardedSite
    _refused = False
    _deadline: IDelayedCall | None = None
    _address = "unknown"
    _heard = False  # bytes arrived since the deadline started

    def connectionMade(self) -> None:
        super().connectionMade()
        guard = self.site.guard
        self._address = getattr(self.transport.getPeer(), "host", "unknown")
        refusal = guard.gate.admit(self._address, self.transport)
        if refusal is not None:
            self.refuse(refusal)
            return
        self._start_deadline()

    def _start_deadline(self) -> None:
        self._cancel_deadline()
        self._heard = False
        guard = self.site.guard
        self._deadline = guard.clock.callLater(guard.request_timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport is None or self._refused:
            return
        if not self._heard:
            # Idle (a fresh or kept-alive connection that sent nothing): close
            # quietly; an unasked-for 408 could be taken as the answer to a
            # request the client is sending at this very moment.
            self._refused = True
            self.transport.loseConnection()
            return
        self.refuse(
            Refusal(408, "bad_message", f"the request did not arrive within {self.site.guard.request_timeout:g}s")
        )

    def dataReceived(self, data: bytes) -> None:
        self._heard = True
        super().dataReceived(data)

    def refuse(self, refusal: Refusal) -> None:
        """Answer `refusal` and close, reading nothing more."""
        if self._refused:
            return
        self._refused = True
        self._cancel_deadline()
        self.site.guard.note(self._address, refusal)
        self.transport.write(refusal.response())
        self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        if not self._refused:
            super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if not self._refused:
            super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        request = self.requests[-1]
        request.body_limit = self.site.guard.body_limit(self._path)
        refusal = self.site.guard.check_head(self._path, request, self.length)
        if refusal is not None:
            self.refuse(refusal)
            return
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if self._refused:
            return
        self._cancel_deadline()
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        super().requestDone(request)
        # The next request has the same time, unless a pipelined one was
        # already complete and is being handled now.
        if self.persistent and self.transport is not None and not self._refused and not self._handlingRequest:
            self._start_deadline()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)


class GuardedRequest(Request):
    """A Request whose body is bounded as it streams and kept in memory
    (the limits are small), with dashd's own Server header and HSTS."""

    body_limit = 0
    _body_bytes = 0

    def gotLength(self, length: int | None) -> None:
        self.content = BytesIO()

    def handleContentChunk(self, data: bytes) -> None:
        self._body_bytes += len(data)
        if self._body_bytes > self.body_limit:
            limit = self.body_limit
            self.channel.refuse(
                Refusal(
                    413,
                    "too_large",
                    f"the body may be at most {limit} bytes" if limit else "this path takes no request body",
                )
            )
            return
        self.content.write(data)

    def setHeader(self, name: bytes | str, value: bytes | str) -> None:
        if (name.lower() if isinstance(name, bytes) else name.lower().encode()) == b"server":
            value = SERVER_NAME  # no Twisted version for scanners
        super().setHeader(name, value)

    def process(self) -> None:
        guard = self.channel.site.guard
        if guard.secure and guard.hsts_max_age > 0:
            self.setHeader(b"Strict-Transport-Security", b"max-age=%d" % int(guard.hsts_max_age))
        super().process()


class GuardedSite(Site):
    """A Site whose connections and requests pass the front door."""

    protocol = GuardedChannel
    requestFactory = GuardedRequest

    def __init__(self, resource: Any, guard: SiteGuard, **kwargs: Any) -> None:
        super().__init__(resource, requestFactory=GuardedRequest, **kwargs)
        self.guard = guard
