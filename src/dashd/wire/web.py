"""HTTP side of the daemon: one twisted.web Site serving the browser dashboard
(with cache headers and SPA fallback), the JSON API under /api/, the
Prometheus exposition, and the WebSocket endpoints."""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol
from urllib.parse import unquote, urlsplit

import orjson
from autobahn.twisted.resource import WebSocketResource
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.filepath import FilePath, InsecurePath
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import File

from dashd.auth.handshake import MissingBearer, TokenCheck, verify_bearer
from dashd.auth.tokens import AuthError, EndpointForbidden, Principal
from dashd.auth.users import LoginThrottled, UserDirectory
from dashd.clients.history import HistoryQueries
from dashd.clients.seams import AuditTrail, ClientTelemetry, MetricCatalogue, SamplingControl
from dashd.clients.session import SessionFactory
from dashd.errors import CLOSE_UNAUTHORIZED, ProtocolError, decode_object
from dashd.ops.ratelog import SummarizedLog
from dashd.ops.shutdown import ShutdownHooks
from dashd.settings import Settings
from dashd.store.database import StoreUnavailable
from dashd.stream.selection import split_selectors
from dashd.timefmt import iso_ms
from dashd.wire.httpguard import ConnectionGate, GuardedSite, HostPolicy, SiteGuard, host_name_of
from dashd.wire.ingest import IngestServerFactory, IngestService
from dashd.wire.protocol import DashboardServerFactory, client_address, origin_allowed

log = Logger()

REFRESH_COOKIE = b"dashd_refresh"
MAX_JSON_BODY = 16 * 1024
HTTP_STATUS_FOR_CODE = {
    "bad_json": 400,
    "bad_message": 400,
    "unknown_type": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "too_large": 413,
    "rate_limited": 429,
    "unavailable": 503,
    "internal": 500,
}
SECURITY_HEADERS = {
    b"X-Content-Type-Options": b"nosniff",
    b"X-Frame-Options": b"DENY",
    b"Referrer-Policy": b"no-referrer",
}
# Body limits by path; every other path takes no request body (dashd.wire.httpguard).
# Refresh and logout read none, but clients that always send JSON send `{}`:
# a few bytes are accepted and ignored there.
IGNORED_BODY = 64
# Routes that take a body, and how large; a key ending in "/" covers every
# path below it (the alerting API's PUT/POST routes take JSON documents).
BODY_LIMITS = {
    b"/api/login": MAX_JSON_BODY,
    b"/api/refresh": IGNORED_BODY,
    b"/api/logout": IGNORED_BODY,
    b"/api/alerting/": MAX_JSON_BODY,
}


def spa_csp(public_url: str) -> bytes:
    """The dashboard page's policy: scripts, styles and sockets from this
    origin only (and the configured public origin, when a proxy's differs).
    The Vite build has no inline styles or scripts."""
    connect = ["'self'"]
    if public_url:
        parts = urlsplit(public_url)
        socket_scheme = "wss" if parts.scheme == "https" else "ws"
        connect += [f"{parts.scheme}://{parts.netloc}", f"{socket_scheme}://{parts.netloc}"]
    return (
        "default-src 'self'; connect-src " + " ".join(connect) + "; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ).encode("ascii")


FALLBACK_PAGE = b"""<!doctype html><meta charset="utf-8"><title>dashd</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>dashd is running</h1><p>The browser dashboard has not been built. Run <code>make run</code>
(or <code>npm ci &amp;&amp; npm run build</code> in <code>frontend/</code>) and reload.</p>
<p>The WebSocket endpoints are <code>/dashboard</code>, <code>/metrics</code> and <code>/notifications</code>;
the API is under <code>/api/</code>.</p></body>"""


def _headers(request: Request) -> None:
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)


def write_json(request: Request, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    _headers(request)
    return orjson.dumps(body)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def request_address(trusted_proxies: tuple[str, ...], request: Request) -> str:
    peer = request.getClientAddress()
    host = getattr(peer, "host", "unknown")
    headers = {
        k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()
    }
    return client_address(f"tcp:{host}:0", headers, trusted_proxies)


def bearer_principal(tokens: TokenCheck, request: Request) -> Principal:
    """The principal of the request's Bearer header, or ProtocolError
    (unauthorized: missing or bad token; forbidden: a role not allowed here)."""
    header = (request.getHeader(b"authorization") or b"").decode("latin-1")
    try:
        return verify_bearer(tokens, header)
    except MissingBearer:
        raise ProtocolError("unauthorized", "send 'Authorization: Bearer <token>'") from None
    except EndpointForbidden as e:
        raise ProtocolError("forbidden", str(e)) from None
    except AuthError as e:
        raise ProtocolError("unauthorized", str(e)) from None


class JsonLeaf(Resource):
    """An API leaf: a method it does not implement is a JSON 405 with an
    Allow header (twisted.web would answer 501 and an HTML page for any
    method but GET, HEAD and POST)."""

    isLeaf = True

    def allowed_methods(self) -> list[str]:
        names = {name[len("render_") :] for name in dir(self) if name.startswith("render_")} - {"OPTIONS"}
        if "GET" not in names:
            names.discard("HEAD")  # Resource.render_HEAD is render_GET
        return sorted(names)

    def render(self, request: Request) -> Any:
        method = request.method.decode("ascii", "replace")
        allowed = self.allowed_methods()
        if method not in allowed and not (method == "OPTIONS" and hasattr(self, "render_OPTIONS")):
            request.setHeader(b"Allow", ", ".join(allowed).encode("ascii"))
            return write_json(request, 405, error_body("bad_message", f"method {method[:16]!r} not allowed here"))
        return super().render(request)


class AsyncJsonResource(JsonLeaf):
    """A leaf whose handlers are coroutines returning (status, body)."""

    isLeaf = True

    def _respond(self, request: Request, handler: Callable[[Request], Awaitable[tuple[int, Any]]]) -> Any:
        gone = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        async def run() -> None:
            try:
                status, body = await handler(request)
            except ProtocolError as e:
                status, body = HTTP_STATUS_FOR_CODE[e.code], error_body(e.code, e.message)
            except StoreUnavailable:
                status, body = 503, error_body("unavailable", "the store is unavailable; try again shortly")
            except CancelledError:
                return  # the client hung up and its query was cancelled
            except Exception:
                log.failure("internal error on {method} {path}", method=request.method, path=request.path)
                status, body = 500, error_body("internal", "internal error")
            if gone:
                return
            payload = write_json(request, status, body) if body is not None else b""
            if body is None:
                request.setResponseCode(status)
                _headers(request)
            request.write(payload)
            request.finish()

        Deferred.fromCoroutine(run())
        return NOT_DONE_YET

    def render_OPTIONS(self, request: Request) -> bytes:
        return write_json(request, 405, error_body("bad_message", "method not allowed"))


def read_json_body(request: Request) -> dict:
    content_type = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        raise ProtocolError("bad_message", "send Content-Type: application/json")
    body = request.content.read(MAX_JSON_BODY + 1)
    if len(body) > MAX_JSON_BODY:
        raise ProtocolError("too_large", f"the body may be at most {MAX_JSON_BODY} bytes")
    return decode_object(body, "body")


class StoreHealth(Protocol):
    """What readiness asks of the store (dashd.store.database.Store)."""

    @property
    def pending_rows(self) -> int: ...

    async def check(self) -> bool: ...


class CollectorHealth(Protocol):
    """What readiness asks of the collector (dashd.collect.collector.CollectorService)."""

    interval: float
    last_tick: float | None

    def is_ticking(self, now: float) -> bool: ...


class StartupState(Protocol):
    """Whether start-up finished (users, revocations and rules loaded): dashd.tap.DashdService."""

    def is_prepared(self) -> bool: ...


class HealthResource(AsyncJsonResource):
    def __init__(self, wall_clock_ms: Callable[[], int]) -> None:
        super().__init__()
        self.wall_clock_ms = wall_clock_ms

    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            return 200, {"status": "ok", "time": iso_ms(self.wall_clock_ms())}

        return self._respond(request, handle)


class ReadyResource(AsyncJsonResource):
    """Readiness: the store answers, the collector is ticking
    (CollectorService.is_ticking) and start-up finished."""

    def __init__(
        self, store: StoreHealth, collector: CollectorHealth, startup: StartupState, clock: IReactorTime
    ) -> None:
        super().__init__()
        self.store = store
        self.collector = collector
        self.startup = startup
        self.clock = clock

    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            store_ok = await self.store.check()
            collector = self.collector
            last_tick = collector.last_tick
            now = self.clock.seconds()
            ticking = collector.is_ticking(now)
            checks = {
                "store": {"ok": store_ok, "pending_rows": self.store.pending_rows},
                "collector": {
                    "ok": ticking,
                    "interval": collector.interval,
                    "last_sample_age": None if last_tick is None else round(now - last_tick, 3),
                },
            }
            prepared = self.startup.is_prepared()
            checks["startup"] = {"ok": prepared}
            ready = store_ok and ticking and prepared
            return (200 if ready else 503), {"status": "ready" if ready else "not_ready", "checks": checks}

        return self._respond(request, handle)


class CatalogueResource(AsyncJsonResource):
    def __init__(self, catalogue: MetricCatalogue, sampling: SamplingControl) -> None:
        super().__init__()
        self.catalogue = catalogue
        self.sampling = sampling

    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            return 200, {
                "metrics": [i.as_dict() for i in self.catalogue.info],
                "interval": self.sampling.interval,
                "host": self.catalogue.host,
                "families": self.catalogue.families(),
            }

        return self._respond(request, handle)


class HistoryResource(AsyncJsonResource):
    def __init__(self, tokens: TokenCheck, history: HistoryQueries) -> None:
        super().__init__()
        self.tokens = tokens
        self.history = history

    def render_GET(self, request: Request) -> Any:
        async def handle(request: Request):
            principal = bearer_principal(self.tokens, request)
            args = {k.decode(): v[-1].decode("utf-8", "replace") for k, v in request.args.items()}
            data: dict[str, Any] = {}
            if "metrics" in args:
                data["metrics"] = split_selectors(args["metrics"])
            for key in ("from", "to", "host"):
                if key in args:
                    value = args[key]
                    data[key] = float(value) if _is_number(value) else value
            if "max_points" in args:
                try:
                    data["max_points"] = int(args["max_points"])
                except ValueError:
                    raise ProtocolError("bad_message", "history: 'max_points' must be an integer") from None
            # Through the query scheduler (issue 11 A); dropped if the client hangs up.
            query = self.history.validate(data)
            result = self.history.schedule(request, principal.subject, query)
            request.notifyFinish().addErrback(lambda _: self.history.cancel(request))
            return 200, await result

        return self._respond(request, handle)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class MeResource(AsyncJsonResource):
    def __init__(self, tokens: TokenCheck) -> None:
        super().__init__()
        self.tokens = tokens

    def render_GET(self, request: Request) -> Any:
        async def handle(request: Request):
            principal = bearer_principal(self.tokens, request)
            return 200, {
                "username": principal.subject,
                "role": principal.role,
                "expires_at": iso_ms(principal.expires_at * 1000),
            }

        return self._respond(request, handle)


class _SessionResource(AsyncJsonResource):
    def __init__(self, users: UserDirectory, settings: Settings, telemetry: ClientTelemetry | None) -> None:
        super().__init__()
        self.users = users
        self.settings = settings
        self.telemetry = telemetry

    def _check_origin(self, request: Request) -> None:
        origin = request.getHeader(b"origin")
        if origin is None:
            return
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        if not origin_allowed(
            origin.decode("latin-1"), host, request.isSecure(), self.settings.allowed_origins, self.settings.public_url
        ):
            raise ProtocolError("forbidden", "origin not allowed")

    def _set_cookie(self, request: Request, value: str, max_age: int) -> None:
        # Written by hand: twisted.web's addCookie lower-cases SameSite.
        parts = [
            REFRESH_COOKIE + b"=" + value.encode("ascii"),
            b"Path=/api",
            b"Max-Age=%d" % max_age,
            b"HttpOnly",
            b"SameSite=Strict",
        ]
        if request.isSecure():
            parts.append(b"Secure")
        request.responseHeaders.addRawHeader(b"Set-Cookie", b"; ".join(parts))

    def _cookie(self, request: Request) -> str:
        value = request.getCookie(REFRESH_COOKIE)
        if not value:
            raise ProtocolError("unauthorized", "no session cookie; log in")
        return value.decode("latin-1")


class LoginResource(_SessionResource):
    def render_POST(self, request: Request) -> Any:
        async def handle(request: Request):
            self._check_origin(request)
            data = read_json_body(request)
            address = request_address(self.settings.trusted_proxies, request)
            try:
                result = await self.users.login(data.get("username"), data.get("password"), address)
            except LoginThrottled as e:
                request.setHeader(b"Retry-After", str(int(e.retry_after) + 1).encode())
                if self.telemetry is not None:
                    self.telemetry.auth_failed("password")
                raise ProtocolError("rate_limited", str(e)) from None
            except AuthError as e:
                if self.telemetry is not None:
                    self.telemetry.auth_failed("password")
                raise ProtocolError("unauthorized", str(e)) from None
            self._set_cookie(request, result.refresh_token, result.refresh_max_age)
            return 200, result.body()

        return self._respond(request, handle)


class RefreshResource(_SessionResource):
    def render_POST(self, request: Request) -> Any:
        async def handle(request: Request):
            self._check_origin(request)
            try:
                result = await self.users.refresh(self._cookie(request))
            except AuthError as e:
                raise ProtocolError("unauthorized", str(e)) from None
            if result.refresh_token:
                self._set_cookie(request, result.refresh_token, result.refresh_max_age)  # rotated
            return 200, result.body()

        return self._respond(request, handle)


class LogoutResource(_SessionResource):
    def render_POST(self, request: Request) -> Any:
        async def handle(request: Request):
            self._check_origin(request)
            try:
                await self.users.logout(self._cookie(request))
            except AuthError:
                pass  # an expired or forged cookie: nothing to revoke, clear it anyway
            self._set_cookie(request, "", 0)
            return 204, None

        return self._respond(request, handle)


class NotFoundJson(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        return write_json(request, 404, error_body("not_found", f"no such API path: {request.path.decode('latin-1')}"))


@dataclass(frozen=True)
class WebContext:
    """The parts the HTTP side serves, built by dashd.tap.build_daemon; each
    resource below is handed only the fields it uses."""

    settings: Settings
    clock: IReactorTime
    wall_clock_ms: Callable[[], int]
    tokens: TokenCheck
    catalogue: MetricCatalogue
    collector: CollectorHealth
    history: HistoryQueries
    store: StoreHealth
    startup: StartupState
    sessions: SessionFactory
    ingest: IngestService
    shutdown: ShutdownHooks
    audit: AuditTrail
    users: UserDirectory | None = None
    alerting: Any = None  # dashd.alerting.delivery.AlertDelivery, for /api/alerting
    telemetry: Any = None  # dashd.ops.telemetry.Telemetry: /metrics and the counters
    processes: Any = None  # dashd.clients.processes.ProcessRequests: GET /api/processes


class ApiResource(Resource):
    def __init__(self, web: WebContext) -> None:
        super().__init__()
        users = web.users
        if web.alerting is not None:  # /api/alerting/... (dashd.wire.alerting_api)
            from dashd.wire.alerting_api import AlertingApiResource

            self.putChild(
                b"alerting", AlertingApiResource(web.tokens, web.audit, web.settings.trusted_proxies, web.alerting)
            )
        self.putChild(b"health", HealthResource(web.wall_clock_ms))
        self.putChild(b"ready", ReadyResource(web.store, web.collector, web.startup, web.clock))
        self.putChild(b"catalogue", CatalogueResource(web.catalogue, web.collector))
        self.putChild(b"history", HistoryResource(web.tokens, web.history))
        if web.processes is not None:
            from dashd.wire.processes_api import ProcessesResource  # imports this module's helpers

            self.putChild(b"processes", ProcessesResource(web.tokens, users, web.processes))
        self.putChild(b"me", MeResource(web.tokens))
        from dashd.wire.apidoc import OpenApiResource  # imported here: both modules use this one's helpers
        from dashd.wire.export import ExportResource

        self.putChild(b"export", ExportResource(web.tokens, web.history, users))
        self.putChild(b"openapi.yaml", OpenApiResource())
        if users is not None:
            for path, resource in (
                (b"login", LoginResource),
                (b"refresh", RefreshResource),
                (b"logout", LogoutResource),
            ):
                self.putChild(path, resource(users, web.settings, web.telemetry))

    def getChild(self, path: bytes, request: Request) -> Resource:
        return NotFoundJson()

    def render(self, request: Request) -> bytes:
        return NotFoundJson().render(request)


class PrometheusResource(Resource):
    isLeaf = True

    def __init__(self, metrics_token: str, telemetry: Any) -> None:
        super().__init__()
        self.metrics_token = metrics_token
        self.telemetry = telemetry  # dashd.ops.telemetry.Telemetry or None

    def render_GET(self, request: Request) -> bytes:
        token = self.metrics_token
        if token:
            header = request.getHeader(b"authorization") or b""
            # Constant time: the comparison must not say how much matched.
            if not hmac.compare_digest(header, b"Bearer " + token.encode("utf-8")):
                request.setHeader(b"WWW-Authenticate", b"Bearer")
                return write_json(
                    request, 401, error_body("unauthorized", "the metrics endpoint needs its bearer token")
                )
        request.setHeader(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        _headers(request)
        return self.telemetry.exposition() if self.telemetry is not None else b""


class StaticSite(Resource):
    """The frontend build: hashed assets cached for a year, index.html never
    cached, and unknown paths without a file extension answered with
    index.html so client-side routes survive a reload.

    Containment is by path components: each URL segment is one child of the
    root (FilePath.child refuses '..' and separators), dotfiles are refused,
    and a file whose real path leaves the root (a symbolic link) is served
    only when static_follow_symlinks is on."""

    def __init__(self, directory: str, *, follow_symlinks: bool = False, csp: bytes = spa_csp("")) -> None:
        super().__init__()
        self.root = FilePath(os.path.abspath(directory))
        self.follow_symlinks = follow_symlinks
        self.csp = csp

    def getChild(self, path: bytes, request: Request) -> Resource:
        return self

    def render_HEAD(self, request: Request) -> Any:
        return self.render_GET(request)

    def render_GET(self, request: Request) -> Any:
        _headers(request)
        index = self.root.child("index.html")
        if not index.isfile():
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            request.setHeader(b"Cache-Control", b"no-cache")
            return FALLBACK_PAGE
        segments = [unquote(part.decode("utf-8", "replace")) for part in request.path.split(b"/") if part]
        target = index
        if segments:
            candidate = self.resolve(segments)
            if candidate is not None and candidate.isfile():
                target = candidate
            elif candidate is None or "." in segments[-1]:
                return write_json(request, 404, error_body("not_found", "no such file"))
        if target == index:
            request.setHeader(b"Cache-Control", b"no-cache")
            request.setHeader(b"Content-Security-Policy", self.csp)
        elif segments[0] == "assets":
            request.setHeader(b"Cache-Control", b"public, max-age=31536000, immutable")
        else:
            request.setHeader(b"Cache-Control", b"public, max-age=3600")
        leaf = File(target.path)
        leaf.isLeaf = True
        return leaf.render(request)

    def resolve(self, segments: list[str]) -> FilePath | None:
        """The file for these URL segments inside the root, or None when a
        segment is '..', '.', a dotfile or holds a separator, or the real
        path leaves the root and symbolic links are not followed."""
        target = self.root
        for segment in segments:
            if segment.startswith(".") or "\x00" in segment:
                return None
            try:
                target = target.child(segment)
            except InsecurePath:
                return None
        if not self.follow_symlinks:
            real_root = os.path.realpath(self.root.path)
            real = os.path.realpath(target.path)
            if os.path.commonpath([real_root, real]) != real_root:
                return None
        return target


class WebSocketEndpoint(Resource):
    """A WebSocket upgrade goes to Autobahn; a plain GET to `fallback`."""

    isLeaf = True

    def __init__(self, factory: DashboardServerFactory, fallback: Resource) -> None:
        super().__init__()
        self._websocket = WebSocketResource(factory)
        self._fallback = fallback

    def render(self, request: Request) -> Any:
        upgrade = (request.getHeader(b"upgrade") or b"").lower()
        if upgrade == b"websocket":
            # The HTTP channel's idle timeout must not cut a long-lived socket.
            request.channel.setTimeout(None)
            return self._websocket.render(request)
        return self._fallback.render(request)


class RedirectToTLS(Resource):
    """Plain-HTTP listener when redirect_http is on: everything goes to HTTPS.
    The target comes from configuration (public_url), else from the Host the
    front door already checked against allowed_hosts."""

    isLeaf = True

    def __init__(self, tls_port: int | None, public_url: str = "") -> None:
        super().__init__()
        self._tls_port = tls_port
        self._public = urlsplit(public_url) if public_url.startswith("https://") else None

    def render(self, request: Request) -> bytes:
        if self._public is not None:
            base = f"https://{self._public.netloc}"
        else:
            # The name the front door checked (the same parser), never the
            # raw header: 'localhost:80/x' passed as 'localhost' but was
            # echoed whole into the Location.
            host = host_name_of((request.getHeader(b"host") or b"").decode("latin-1")) or "localhost"
            if ":" in host:
                host = f"[{host}]"  # an IPv6 literal
            port = "" if self._tls_port in (None, 443) else f":{self._tls_port}"
            base = f"https://{host}{port}"
        request.setResponseCode(308)
        request.setHeader(b"Location", (base + _origin_form(request.uri.decode("latin-1"))).encode("latin-1"))
        return b""


def _origin_form(uri: str) -> str:
    """The path and query of a request target; an absolute-form target
    ('http://name/x', RFC 9112 3.2.2) contributes only its path and query."""
    if uri.startswith("/"):
        return uri
    parts = urlsplit(uri)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def revalidate_agents(tokens: TokenCheck, ingest: IngestServerFactory) -> None:
    """After a revocation (`dashd token revoke`): close agents whose token it was."""
    for agent in list(ingest.agents):
        if agent.principal is None:
            continue
        try:
            tokens.check(agent.principal)
        except AuthError as e:
            agent.close(CLOSE_UNAUTHORIZED, str(e))


def front_door(
    settings: Settings,
    tokens: TokenCheck,
    clock: IReactorTime,
    shutdown: ShutdownHooks,
    gate: ConnectionGate,
    *,
    secure: bool,
) -> SiteGuard:
    """The checks every connection and request of a listener passes."""
    refusals = SummarizedLog(log, clock)
    shutdown.add(refusals.stop)
    return SiteGuard(
        gate=gate,
        hosts=HostPolicy.from_settings(settings),
        clock=clock,
        request_timeout=settings.request_timeout,
        secure=secure,
        hsts_max_age=settings.hsts_max_age,
        body_limits=BODY_LIMITS,
        verify_token=tokens.verify,
        refusals=refusals,
    )


def build_site(web: WebContext, *, secure: bool, gate: ConnectionGate) -> Site:
    settings = web.settings
    static = StaticSite(
        settings.static, follow_symlinks=settings.static_follow_symlinks, csp=spa_csp(settings.public_url)
    )
    root = static
    root.putChild(b"api", ApiResource(web))
    prometheus = PrometheusResource(settings.metrics_token, web.telemetry)
    for endpoint in ("dashboard", "metrics", "notifications"):
        factory = DashboardServerFactory(
            web.sessions,
            web.tokens,
            settings,
            web.clock,
            web.shutdown,
            endpoint,
            secure=secure,
            telemetry=web.telemetry,
        )
        fallback = prometheus if endpoint == "metrics" else static
        root.putChild(endpoint.encode(), WebSocketEndpoint(factory, fallback))
    # Agents push their samples here (dashd.wire.ingest); a plain GET is a 404.
    ingest = IngestServerFactory(
        web.ingest,
        web.tokens,
        settings,
        web.clock,
        wall_clock_ms=web.wall_clock_ms,
        secure=secure,
        telemetry=web.telemetry,
    )
    web.shutdown.add(ingest.close_all)
    if web.users is not None:
        web.users.add_revocation_observer(lambda: revalidate_agents(web.tokens, ingest))
    root.putChild(b"ingest", WebSocketEndpoint(ingest, NotFoundJson()))
    site = GuardedSite(root, front_door(settings, web.tokens, web.clock, web.shutdown, gate, secure=secure))
    site.displayTracebacks = False
    site.timeout = 60
    site.log = lambda request: None  # access logging off; dashd logs what matters itself
    return site
