"""HTTP API for alert delivery, under /api/alerting/ (docs/alerting.md#api):

    GET    channels                    admin     channels (secrets only as "set") and routes
    PUT    channels/NAME               admin     create or replace an API channel (secrets write-only)
    DELETE channels/NAME               admin
    POST   channels/NAME/test          admin     send a test notice now; answers with the receiver's answer
    GET    deliveries?limit=&status=   operator  the delivery log with each attempt
    GET    silences                    viewer
    POST   silences                    operator  {matchers, starts_at_ms?, ends_at_ms | duration_s, comment}
    DELETE silences/ID                 operator  expire it now
    GET    timeline?from=&to=&limit=   viewer    alert events, newest first

Every change is audited. Agents' tokens are refused (Principal.may)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from dashd.alerting.channels import ChannelError
from dashd.auth.handshake import TokenCheck
from dashd.auth.tokens import Principal
from dashd.clients.seams import AuditTrail
from dashd.errors import ProtocolError
from dashd.wire.web import AsyncJsonResource, bearer_principal, read_json_body, request_address

MAX_LIMIT = 500
STATUSES = ("pending", "delivered", "dead")


class AlertingApiResource(AsyncJsonResource):
    def __init__(self, tokens: TokenCheck, audit: AuditTrail, trusted_proxies: tuple[str, ...], alerting: Any) -> None:
        super().__init__()
        self.tokens = tokens
        self.audit = audit
        self.trusted_proxies = trusted_proxies
        self.alerting = alerting

    def _path(self, request: Request) -> list[str]:
        return [part.decode("utf-8", "replace") for part in request.postpath if part]

    def _principal(self, request: Request, role: str) -> Principal:
        principal = bearer_principal(self.tokens, request)
        if not principal.may(role):
            raise ProtocolError("forbidden", f"this needs the {role} role")
        return principal

    def _audit(self, request: Request, principal: Principal, action: str, detail: dict) -> None:
        self.audit.record(principal.subject, action, detail, request_address(self.trusted_proxies, request))

    def render_GET(self, request: Request) -> Any:
        return self._respond(request, self._get)

    def render_POST(self, request: Request) -> Any:
        return self._respond(request, self._post)

    def render_PUT(self, request: Request) -> Any:
        return self._respond(request, self._put)

    def render_DELETE(self, request: Request) -> Any:
        return self._respond(request, self._delete)

    def _not_found(self, request: Request) -> ProtocolError:
        return ProtocolError("not_found", f"no such API path: {request.path.decode('latin-1')}")

    async def _get(self, request: Request) -> tuple[int, Any]:
        path = self._path(request)
        if path == ["channels"]:
            self._principal(request, "admin")
            return 200, {
                "channels": self.alerting.public_channels(),
                "routes": [r.as_dict() for r in self.alerting.routes],
            }
        if path == ["deliveries"]:
            self._principal(request, "operator")
            status = _arg(request, "status")
            if status is not None and status not in STATUSES:
                raise ProtocolError("bad_message", f"'status' must be one of {', '.join(STATUSES)}")
            items = await self.alerting.deliveries(_int_arg(request, "limit", 100, 1, MAX_LIMIT), status)
            return 200, {"deliveries": items, "counts": await self.alerting.outbox.counts()}
        if path == ["silences"]:
            self._principal(request, "viewer")
            now = self.alerting.wall_clock_ms()
            return 200, {"silences": [s.as_dict(now) for s in self.alerting.silences.all()]}
        if path == ["timeline"]:
            self._principal(request, "viewer")
            now = self.alerting.wall_clock_ms()
            to_ms = _int_arg(request, "to", now, 0, 2**53)
            from_ms = _int_arg(request, "from", to_ms - 24 * 3600 * 1000, 0, 2**53)
            if from_ms > to_ms:
                raise ProtocolError("bad_message", "'from' must not be after 'to'")
            limit = _int_arg(request, "limit", 200, 1, MAX_LIMIT)
            return 200, {"events": await self.alerting.timeline(from_ms, to_ms, limit)}
        raise self._not_found(request)

    async def _put(self, request: Request) -> tuple[int, Any]:
        path = self._path(request)
        if len(path) != 2 or path[0] != "channels":
            raise self._not_found(request)
        principal = self._principal(request, "admin")
        data = read_json_body(request)
        try:
            public = await self.alerting.save_channel(path[1], data, principal.subject)
        except ChannelError as e:
            raise ProtocolError("bad_message", str(e)) from None
        self._audit(request, principal, "alert_channel_set", {"name": path[1], "kind": public["kind"]})
        return 200, {"channel": public}

    async def _delete(self, request: Request) -> tuple[int, Any]:
        path = self._path(request)
        if len(path) == 2 and path[0] == "channels":
            principal = self._principal(request, "admin")
            try:
                deleted = await self.alerting.delete_channel(path[1])
            except ChannelError as e:
                raise ProtocolError("bad_message", str(e)) from None
            if not deleted:
                raise ProtocolError("not_found", f"no API channel {path[1]!r}")
            self._audit(request, principal, "alert_channel_delete", {"name": path[1]})
            return 204, None
        if len(path) == 2 and path[0] == "silences":
            principal = self._principal(request, "operator")
            if not await self.alerting.expire_silence(path[1], principal.subject):
                raise ProtocolError("not_found", f"no active silence {path[1]!r}")
            self._audit(request, principal, "silence_expire", {"id": path[1]})
            return 204, None
        raise self._not_found(request)

    async def _post(self, request: Request) -> tuple[int, Any]:
        path = self._path(request)
        if path == ["silences"]:
            principal = self._principal(request, "operator")
            data = read_json_body(request)
            try:
                silence = await self.alerting.add_silence(data, principal.subject)
            except ValueError as e:
                raise ProtocolError("bad_message", f"silence: {e}") from None
            body = silence.as_dict(self.alerting.wall_clock_ms())
            self._audit(
                request,
                principal,
                "silence_create",
                {
                    "id": silence.id,
                    "matchers": body["matchers"],
                    "ends_at_ms": silence.ends_at_ms,
                    "comment": silence.comment,
                },
            )
            return 201, {"silence": body}
        if len(path) == 3 and path[0] == "channels" and path[2] == "test":
            principal = self._principal(request, "admin")
            try:
                result = await self.alerting.send_test(path[1], principal.subject)
            except KeyError:
                raise ProtocolError("not_found", f"no channel {path[1]!r}") from None
            self._audit(request, principal, "alert_channel_test", {"name": path[1], "ok": result.ok})
            return 200, {"result": result.as_dict()}
        raise self._not_found(request)


def _arg(request: Request, name: str) -> str | None:
    values = request.args.get(name.encode())
    return values[-1].decode("utf-8", "replace") if values else None


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = _arg(request, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProtocolError("bad_message", f"'{name}' must be an integer") from None
    if not low <= value <= high:
        raise ProtocolError("bad_message", f"'{name}' must be from {low} to {high}")
    return value
