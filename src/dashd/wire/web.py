"""HTTP side of the daemon: one twisted.web Site serving the browser dashboard
(with cache headers and SPA fallback), the JSON API under /api/, the
Prometheus exposition, and the WebSocket endpoints."""

from __future__ import annotations

import hmac
import os
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

import orjson
from autobahn.twisted.resource import WebSocketResource
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.filepath import FilePath, InsecurePath
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.static import File

from dashd.auth.tokens import AuthError, EndpointForbidden, Principal
from dashd.clients.core import Core
from dashd.errors import CLOSE_UNAUTHORIZED, ProtocolError, decode_object
from dashd.wire.ingest import IngestServerFactory
from dashd.wire.protocol import DashboardServerFactory, client_address, origin_allowed
from dashd.clients.router import schedule_history, validate_history
from dashd.clients.series_query import catalogue_families
from dashd.stream.selection import split_selectors
from dashd.store.database import StoreUnavailable
from dashd.timefmt import iso_ms
from dashd.auth.users import LoginThrottled, UserDirectory
from dashd.ops.ratelog import SummarizedLog
from dashd.wire.httpguard import ConnectionGate, GuardedSite, HostPolicy, SiteGuard, host_name_of

log = Logger()

REFRESH_COOKIE = b"dashd_refresh"
MAX_JSON_BODY = 16 * 1024
HTTP_STATUS_FOR_CODE = {
    "bad_json": 400, "bad_message": 400, "unknown_type": 400, "unauthorized": 401, "forbidden": 403,
    "not_found": 404, "too_large": 413, "rate_limited": 429, "unavailable": 503, "internal": 500,
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
BODY_LIMITS = {b"/api/login": MAX_JSON_BODY, b"/api/refresh": IGNORED_BODY, b"/api/logout": IGNORED_BODY,
               b"/api/alerting/": MAX_JSON_BODY}


def spa_csp(public_url: str) -> bytes:
    """The dashboard page's policy: scripts, styles and sockets from this
    origin only (and the configured public origin, when a proxy's differs).
    The Vite build has no inline styles or scripts."""
    connect = ["'self'"]
    if public_url:
        parts = urlsplit(public_url)
        socket_scheme = "wss" if parts.scheme == "https" else "ws"
        connect += [f"{parts.scheme}://{parts.netloc}", f"{socket_scheme}://{parts.netloc}"]
    return ("default-src 'self'; connect-src " + " ".join(connect) + "; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'").encode("ascii")
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


def request_address(core: Core, request: Request) -> str:
    peer = request.getClientAddress()
    host = getattr(peer, "host", "unknown")
    headers = {k.decode("latin-1").lower(): v[-1].decode("latin-1") for k, v in request.requestHeaders.getAllRawHeaders()}
    return client_address(f"tcp:{host}:0", headers, core.settings.trusted_proxies)


def bearer_principal(core: Core, request: Request) -> Principal:
    header = (request.getHeader(b"authorization") or b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProtocolError("unauthorized", "send 'Authorization: Bearer <token>'")
    try:
        return core.verify_token(token.strip())
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
        names = {name[len("render_"):] for name in dir(self) if name.startswith("render_")} - {"OPTIONS"}
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

    def __init__(self, core: Core) -> None:
        super().__init__()
        self.core = core

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


class HealthResource(AsyncJsonResource):
    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            return 200, {"status": "ok", "time": iso_ms(self.core.wall_clock_ms())}
        return self._respond(request, handle)


class ReadyResource(AsyncJsonResource):
    """Readiness: the store answers and the collector ticked within 2 intervals."""

    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            core = self.core
            store_ok = await core.store.check() if core.store is not None else False
            collector = core.collector
            last_tick = getattr(collector, "last_tick", None)
            now = core.clock.seconds()
            started = getattr(collector, "started_at", None)
            grace = started is not None and now - started <= 2 * core.interval + 1
            ticking = (last_tick is not None and now - last_tick <= 2 * core.interval + 0.5) or (last_tick is None and grace)
            checks = {
                "store": {"ok": store_ok, "pending_rows": getattr(core.store, "pending_rows", 0)},
                "collector": {"ok": ticking, "interval": core.interval,
                              "last_sample_age": None if last_tick is None else round(now - last_tick, 3)},
            }
            checks["startup"] = {"ok": core.prepared}
            ready = store_ok and ticking and core.prepared
            return (200 if ready else 503), {"status": "ready" if ready else "not_ready", "checks": checks}
        return self._respond(request, handle)


class CatalogueResource(AsyncJsonResource):
    def render_GET(self, request: Request) -> Any:
        async def handle(_: Request):
            return 200, {"metrics": [i.as_dict() for i in self.core.catalogue_info], "interval": self.core.interval,
                         "host": self.core.host, "families": catalogue_families(self.core)}
        return self._respond(request, handle)


class HistoryResource(AsyncJsonResource):
    def render_GET(self, request: Request) -> Any:
        async def handle(request: Request):
            principal = bearer_principal(self.core, request)
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
            query = validate_history(self.core, data)
            result = schedule_history(self.core, request, principal.subject, query)
            if self.core.queries is not None:
                request.notifyFinish().addErrback(lambda _: self.core.queries.cancel_owner(request))
            return 200, await result
        return self._respond(request, handle)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class MeResource(AsyncJsonResource):
    def render_GET(self, request: Request) -> Any:
        async def handle(request: Request):
            principal = bearer_principal(self.core, request)
            return 200, {"username": principal.subject, "role": principal.role,
                         "expires_at": iso_ms(principal.expires_at * 1000)}
        return self._respond(request, handle)


class _SessionResource(AsyncJsonResource):
    def __init__(self, core: Core, users: UserDirectory) -> None:
        super().__init__(core)
        self.users = users

    def _check_origin(self, request: Request) -> None:
        origin = request.getHeader(b"origin")
        if origin is None:
            return
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        if not origin_allowed(origin.decode("latin-1"), host, request.isSecure(), self.core.settings.allowed_origins,
                              self.core.settings.public_url):
            raise ProtocolError("forbidden", "origin not allowed")

    def _set_cookie(self, request: Request, value: str, max_age: int) -> None:
        # Written by hand: twisted.web's addCookie lower-cases SameSite.
        parts = [REFRESH_COOKIE + b"=" + value.encode("ascii"), b"Path=/api", b"Max-Age=%d" % max_age,
                 b"HttpOnly", b"SameSite=Strict"]
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
            address = request_address(self.core, request)
            try:
                result = await self.users.login(data.get("username"), data.get("password"), address)
            except LoginThrottled as e:
                request.setHeader(b"Retry-After", str(int(e.retry_after) + 1).encode())
                if self.core.telemetry is not None:
                    self.core.telemetry.auth_failed("password")
                raise ProtocolError("rate_limited", str(e)) from None
            except AuthError as e:
                if self.core.telemetry is not None:
                    self.core.telemetry.auth_failed("password")
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


class ApiResource(Resource):
    def __init__(self, core: Core, users: UserDirectory | None, alerting: Any = None) -> None:
        super().__init__()
        if alerting is not None:  # /api/alerting/... (dashd.wire.alerting_api)
            from dashd.wire.alerting_api import AlertingApiResource

            self.putChild(b"alerting", AlertingApiResource(core, alerting))
        self.putChild(b"health", HealthResource(core))
        self.putChild(b"ready", ReadyResource(core))
        self.putChild(b"catalogue", CatalogueResource(core))
        self.putChild(b"history", HistoryResource(core))
        self.putChild(b"me", MeResource(core))
        from dashd.wire.apidoc import OpenApiResource  # imported here: both modules use this one's helpers
        from dashd.wire.export import ExportResource
        self.putChild(b"export", ExportResource(core, users))
        self.putChild(b"openapi.yaml", OpenApiResource())
        if users is not None:
            self.putChild(b"login", LoginResource(core, users))
            self.putChild(b"refresh", RefreshResource(core, users))
            self.putChild(b"logout", LogoutResource(core, users))

    def getChild(self, path: bytes, request: Request) -> Resource:
        return NotFoundJson()

    def render(self, request: Request) -> bytes:
        return NotFoundJson().render(request)


class PrometheusResource(Resource):
    isLeaf = True

    def __init__(self, core: Core) -> None:
        super().__init__()
        self.core = core

    def render_GET(self, request: Request) -> bytes:
        token = self.core.settings.metrics_token
        if token:
            header = request.getHeader(b"authorization") or b""
            # Constant time: the comparison must not say how much matched.
            if not hmac.compare_digest(header, b"Bearer " + token.encode("utf-8")):
                request.setHeader(b"WWW-Authenticate", b"Bearer")
                return write_json(request, 401, error_body("unauthorized", "the metrics endpoint needs its bearer token"))
        request.setHeader(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        _headers(request)
        return self.core.telemetry.exposition() if self.core.telemetry is not None else b""


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


def revalidate_agents(core: Core, ingest: IngestServerFactory) -> None:
    """After a revocation (`dashd token revoke`): close agents whose token it was."""
    for agent in list(ingest.agents):
        if agent.principal is None:
            continue
        try:
            core.revocations.check(agent.principal)
        except AuthError as e:
            agent.close(CLOSE_UNAUTHORIZED, str(e))


def front_door(core: Core, gate: ConnectionGate, *, secure: bool) -> SiteGuard:
    """The checks every connection and request of a listener passes."""
    settings = core.settings
    refusals = SummarizedLog(log, core.clock)
    core.shutdown_hooks.append(refusals.stop)
    return SiteGuard(gate=gate, hosts=HostPolicy.from_settings(settings), clock=core.clock,
                     request_timeout=settings.request_timeout, secure=secure, hsts_max_age=settings.hsts_max_age,
                     body_limits=BODY_LIMITS, verify_token=core.verify_token, refusals=refusals)


def build_site(core: Core, users: UserDirectory | None, *, secure: bool, gate: ConnectionGate,
               alerting: Any = None) -> Site:
    settings = core.settings
    static = StaticSite(settings.static, follow_symlinks=settings.static_follow_symlinks,
                        csp=spa_csp(settings.public_url))
    root = static
    root.putChild(b"api", ApiResource(core, users, alerting))
    prometheus = PrometheusResource(core)
    for endpoint in ("dashboard", "metrics", "notifications"):
        factory = DashboardServerFactory(core, endpoint, secure=secure)
        fallback = prometheus if endpoint == "metrics" else static
        root.putChild(endpoint.encode(), WebSocketEndpoint(factory, fallback))
    # Agents push their samples here (dashd.wire.ingest); a plain GET is a 404.
    ingest = IngestServerFactory(core, secure=secure)
    core.shutdown_hooks.append(ingest.close_all)
    if users is not None:
        users.on_revoked.append(lambda: revalidate_agents(core, ingest))
    root.putChild(b"ingest", WebSocketEndpoint(ingest, NotFoundJson()))
    site = GuardedSite(root, front_door(core, gate, secure=secure))
    site.displayTracebacks = False
    site.timeout = 60
    site.log = lambda request: None  # access logging off; dashd logs what matters itself
    return site
