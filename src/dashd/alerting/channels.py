"""Channels: where notices go. A channel's configuration (from the INI file's
`[channel:NAME]` sections or from an admin through the API) is validated
into a ChannelConfig; a transport turns a notice into one real delivery over
the network and reports the receiver's answer as a DeliveryResult — it never
raises, so a bad receiver ends up in the delivery log, not as an unhandled
error.

Every network target is checked against SSRF first (dashd.alerting.netguard):
the host name is resolved once, each address is checked, and the connection
goes to the checked address (so a DNS answer cannot change in between),
with TLS verified against the host name."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from dashd.alerting.netguard import NetworkGuard, describe_failure
from dashd.alerting.payloads import WEBHOOK_FORMATS, WEBHOOK_RENDERERS, render_alertmanager, render_email
from dashd.settings import parse_duration

KINDS = ("email", "webhook", "alertmanager")
CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
EMAIL = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")
MAX_TIMEOUT = 120.0
ANSWER_EXCERPT = 300
# Answers that will not get better by retrying: dead-letter at once.
PERMANENT_HTTP = {400, 401, 403, 404, 405, 410, 413, 422}
SECRET_OPTIONS = ("password",)


class ChannelError(ValueError):
    """A channel configuration is invalid; str() is one line naming it."""


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    detail: str  # the receiver's answer or why it failed, never a secret
    status: int | None = None
    permanent: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "status": self.status, "permanent": self.permanent}


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    kind: str
    options: tuple[tuple[str, Any], ...]  # non-secret settings, JSON-ready values
    secrets: tuple[tuple[str, str], ...] = ()  # password, header values
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    source: str = "config"  # "config" (INI, read-only) or "api"

    def __repr__(self) -> str:  # secrets stay out of tracebacks and logs
        return f"ChannelConfig(name={self.name!r}, kind={self.kind!r}, source={self.source!r})"

    @property
    def option(self) -> dict[str, Any]:
        return dict(self.options)

    def public(self) -> dict[str, Any]:
        """What the API and the browser may see: no secret values, only
        whether each is set."""
        public = {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            **self.option,
            "headers": sorted(name for name, _ in self.headers),
            "secrets": {name: bool(value) for name, value in self.secrets},
        }
        if "url" in public:
            # A webhook URL's path is often its token (Slack, Discord, Teams):
            # only the scheme and host are shown.
            public["url"] = redact_url_path(public["url"])
        return public

    def stored(self) -> dict[str, Any]:
        """Everything, for the store (secrets included)."""
        return {"kind": self.kind, **self.option, "headers": dict(self.headers), **dict(self.secrets)}


def redact_url_path(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc
    hidden = (parts.path not in ("", "/")) or bool(parts.query)
    return f"{parts.scheme}://{host}/…" if hidden else f"{parts.scheme}://{host}/"


def _timeout(value: Any, name: str) -> float:
    try:
        seconds = parse_duration(value)
    except (TypeError, ValueError):
        seconds = -1
    if not 0.5 <= seconds <= MAX_TIMEOUT:
        raise ChannelError(f"channel {name}: timeout must be a duration from 0.5s to {MAX_TIMEOUT:g}s")
    return seconds


def _url(value: Any, name: str, what: str = "url") -> str:
    if not isinstance(value, str) or not value:
        raise ChannelError(f"channel {name}: {what} is required (http:// or https://)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ChannelError(f"channel {name}: {what} must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ChannelError(f"channel {name}: put credentials in a header, not in the {what}")
    try:
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ChannelError(f"channel {name}: {what} has a bad port") from None
    return value


def _headers(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > 20:
        raise ChannelError(f"channel {name}: headers must be an object of at most 20 names and values")
    result = []
    for header, content in value.items():
        if not isinstance(header, str) or not HEADER_NAME.match(header):
            raise ChannelError(f"channel {name}: header name {header!r} must be letters, digits and '-'")
        if not isinstance(content, str) or "\n" in content or "\r" in content or len(content) > 4096:
            raise ChannelError(f"channel {name}: header {header} must be one line of text")
        result.append((header, content))
    return tuple(sorted(result))


def _recipients(value: Any, name: str) -> tuple[str, ...]:
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items or len(items) > 50:
        raise ChannelError(f"channel {name}: to must list 1 to 50 e-mail addresses")
    for item in items:
        if not isinstance(item, str) or not EMAIL.match(item):
            raise ChannelError(f"channel {name}: {item!r} is not an e-mail address")
    return tuple(items)


def parse_channel(name: str, data: Mapping[str, Any], source: str = "config") -> ChannelConfig:
    """Validate one channel; ChannelError with one line on bad input.

    `data` is an INI section (all strings; headers as `header.NAME = value`)
    or an API object (headers as an object)."""
    if not isinstance(name, str) or not CHANNEL_NAME.match(name):
        raise ChannelError(f"channel {name!r}: the name must be 1-64 letters, digits, '_', '.' or '-'")
    data = dict(data)
    headers = data.pop("headers", None)
    inline = {k.split(".", 1)[1]: v for k, v in data.items() if k.lower().startswith("header.")}
    data = {k: v for k, v in data.items() if not k.lower().startswith("header.")}
    if inline:
        headers = {**(headers or {}), **inline}
    kind = data.pop("kind", data.pop("type", None))
    if kind not in KINDS:
        raise ChannelError(f"channel {name}: kind must be one of {', '.join(KINDS)}")
    timeout = _timeout(data.pop("timeout", 10), name)
    ca_file = data.pop("ca_file", "") or ""
    if not isinstance(ca_file, str):
        raise ChannelError(f"channel {name}: ca_file must be a file path")
    if source == "api" and ca_file:
        # A path on the server is an operator's choice, not a browser's.
        raise ChannelError(f"channel {name}: ca_file can only be set in the INI file")
    options: dict[str, Any] = {"timeout": timeout, "ca_file": ca_file}
    secrets: dict[str, str] = {}
    if kind == "webhook":
        options["url"] = _url(data.pop("url", None), name)
        fmt = data.pop("format", "generic")
        if fmt not in WEBHOOK_FORMATS:
            raise ChannelError(f"channel {name}: format must be one of {', '.join(WEBHOOK_FORMATS)}")
        options["format"] = fmt
    elif kind == "alertmanager":
        options["url"] = _url(data.pop("url", None), name)
        try:
            resend = parse_duration(data.pop("resend_interval", 60))
        except (TypeError, ValueError):
            resend = -1
        if not 5 <= resend <= 3600:
            raise ChannelError(f"channel {name}: resend_interval must be a duration from 5s to 1h")
        options["resend_interval"] = resend
    else:
        options.update(_email_options(name, data, secrets))
    if data:
        raise ChannelError(f"channel {name}: unknown option {sorted(data)[0]!r} for a {kind} channel")
    return ChannelConfig(
        name,
        kind,
        tuple(options.items()),
        tuple(sorted(secrets.items())),
        _headers(headers, name) if kind != "email" else (),
        source,
    )


def _email_options(name: str, data: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    host = data.pop("host", None)
    if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,253}", host):
        raise ChannelError(f"channel {name}: host must be the SMTP server's name or address")
    security = data.pop("security", "starttls")
    if security not in ("starttls", "tls", "none"):
        raise ChannelError(f"channel {name}: security must be starttls, tls or none")
    try:
        port = int(data.pop("port", 465 if security == "tls" else 587))
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise ChannelError(f"channel {name}: port must be from 1 to 65535")
    username = data.pop("username", "") or ""
    password = data.pop("password", "") or ""
    if not isinstance(username, str) or not isinstance(password, str):
        raise ChannelError(f"channel {name}: username and password must be text")
    if password and not username:
        raise ChannelError(f"channel {name}: a password needs a username")
    if username and security == "none":
        raise ChannelError(f"channel {name}: refusing to send a password without TLS (security = none)")
    sender = data.pop("from", None)
    if not isinstance(sender, str) or not EMAIL.match(sender):
        raise ChannelError(f"channel {name}: from must be an e-mail address")
    secrets["password"] = password
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "from": sender,
        "to": list(_recipients(data.pop("to", None), name)),
    }


def merge_secrets(new: ChannelConfig, old: ChannelConfig | None, given: Mapping[str, Any]) -> ChannelConfig:
    """An update from the API that leaves a secret out keeps the stored one
    (the browser never has it to send back); a header sent as null keeps its
    stored value."""
    if old is None or old.kind != new.kind:
        return new
    secrets = dict(new.secrets)
    for key, value in old.secrets:
        if key not in given:
            secrets[key] = value
    headers = dict(new.headers)
    given_headers = given.get("headers") or {}
    old_headers = dict(old.headers)
    for header, value in given_headers.items() if isinstance(given_headers, Mapping) else ():
        if value is None and header in old_headers:
            headers[header] = old_headers[header]
    if "headers" not in given:
        headers = old_headers
    return ChannelConfig(
        new.name, new.kind, new.options, tuple(sorted(secrets.items())), tuple(sorted(headers.items())), new.source
    )


def prepare_api_channel(name: str, data: Mapping[str, Any], old: ChannelConfig | None = None) -> dict[str, Any]:
    """Null header values mean "keep the stored value"; validate with a
    placeholder so the check does not fail on them. A URL left out keeps
    the stored one (the API never shows it in full)."""
    data = dict(data)
    if old is not None and old.kind == data.get("kind") and not data.get("url") and "url" in old.option:
        data["url"] = old.option["url"]
    if isinstance(data.get("headers"), Mapping):
        data["headers"] = {k: ("kept" if v is None else v) for k, v in data["headers"].items()}
    return data


class Transport(Protocol):
    def send(self, body: dict[str, Any]) -> Deferred[DeliveryResult]:
        """Deliver one notice; fires with a DeliveryResult, never fails."""


class HttpTransport:
    """Webhooks and Alertmanager: one POST per notice."""

    log = Logger()

    def __init__(
        self,
        config: ChannelConfig,
        guard: NetworkGuard,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.config = config
        self.guard = guard
        self.wall_clock_ms = wall_clock_ms

    def _target(self) -> str:
        option = self.config.option
        if self.config.kind == "alertmanager":
            return str(option["url"]).rstrip("/") + "/api/v2/alerts"
        return str(option["url"])

    def render(self, body: dict[str, Any]) -> bytes:
        option = self.config.option
        if self.config.kind == "alertmanager":
            return render_alertmanager(body, self.wall_clock_ms(), int(option["resend_interval"] * 1000))
        return WEBHOOK_RENDERERS[option["format"]](body)

    def send(self, body: dict[str, Any]) -> Deferred[DeliveryResult]:
        return Deferred.fromCoroutine(self._send(body))

    async def _send(self, body: dict[str, Any]) -> DeliveryResult:
        option = self.config.option
        url = self._target()
        headers = {"Content-Type": "application/json", "User-Agent": "dashd-alerts/1", **dict(self.config.headers)}
        try:
            status, answer = await self.guard.post(
                url, self.render(body), headers, option["timeout"], option["ca_file"]
            )
        except Exception as e:  # every failure becomes the delivery log's reason
            return DeliveryResult(
                False, describe_failure(e, option["timeout"]), permanent=getattr(e, "permanent", False)
            )
        excerpt = answer[:ANSWER_EXCERPT].decode("utf-8", "replace").strip()
        ok = 200 <= status < 300
        detail = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
        return DeliveryResult(ok, detail, status, permanent=not ok and status in PERMANENT_HTTP)


class EmailTransport:
    """SMTP through twisted.mail's ESMTP client: STARTTLS (required when
    configured, never downgraded) or implicit TLS, AUTH when a username is
    set."""

    def __init__(
        self,
        config: ChannelConfig,
        guard: NetworkGuard,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.config = config
        self.guard = guard
        self.wall_clock_ms = wall_clock_ms

    def render(self, body: dict[str, Any]) -> bytes:
        option = self.config.option
        return render_email(body, option["from"], tuple(option["to"]), self.wall_clock_ms())

    def send(self, body: dict[str, Any]) -> Deferred[DeliveryResult]:
        return Deferred.fromCoroutine(self._send(body))

    async def _send(self, body: dict[str, Any]) -> DeliveryResult:
        option = self.config.option
        password = dict(self.config.secrets).get("password", "")
        try:
            accepted, total, answer = await self.guard.send_mail(
                option["host"],
                option["port"],
                option["security"],
                option["username"],
                password,
                option["from"],
                tuple(option["to"]),
                BytesIO(self.render(body)),
                option["timeout"],
                option["ca_file"],
            )
        except Exception as e:
            return DeliveryResult(
                False, describe_failure(e, option["timeout"]), permanent=getattr(e, "permanent", False)
            )
        return DeliveryResult(
            accepted == total, f"SMTP accepted {accepted} of {total} recipients: {answer}"[:ANSWER_EXCERPT]
        )


def transport_for(config: ChannelConfig, guard: NetworkGuard, wall_clock_ms: Callable[[], int]) -> Transport:
    if config.kind == "email":
        return EmailTransport(config, guard, wall_clock_ms)
    return HttpTransport(config, guard, wall_clock_ms)
