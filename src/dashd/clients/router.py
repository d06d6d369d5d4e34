"""The message router: parses a client frame, checks it against its schema and
the connection's role, runs the handler, and turns every failure into one
typed `error` reply carrying the request's correlation_id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Union

import orjson
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger

from dashd.alerting.engine import LEVELS, MAX_MESSAGE, MAX_TITLE, rule_from_dict
from dashd.auth.tokens import AuthError
from dashd.clients.fields import number_field, pattern_list, string_field
from dashd.clients.queries import stats_cost
from dashd.clients.seams import RouterContext
from dashd.errors import CLOSE_KICKED, CLOSE_UNAUTHORIZED, ProtocolError, correlation_id_of, decode_object
from dashd.errors import bad_message as bad
from dashd.settings import format_duration, parse_duration
from dashd.store.database import StoreUnavailable
from dashd.stream.selection import select
from dashd.stream.streams import SubscriptionFilter
from dashd.timefmt import iso_ms, parse_time

if TYPE_CHECKING:
    from dashd.alerting.engine import AlertRule
    from dashd.clients.processes import ProcessRequests
    from dashd.clients.session import ClientSession, JsonObject

DEFAULT_STATS_WINDOW = 300.0
RESUME_LIMIT = 20_000
MAX_READ_IDS = 500
MAX_NOTIFICATION_ID = 64

# type -> (role needed, endpoints where it makes sense or None for all)
METRIC_ENDPOINTS = ("dashboard", "metrics")
NOTIFICATION_ENDPOINTS = ("dashboard", "notifications")
REQUESTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "auth": ("viewer", None),
    "ping": ("viewer", None),
    "subscribe": ("viewer", METRIC_ENDPOINTS),
    "unsubscribe": ("viewer", METRIC_ENDPOINTS),
    "set_rate": ("viewer", METRIC_ENDPOINTS),
    "catalogue": ("viewer", METRIC_ENDPOINTS),
    "resume": ("viewer", None),
    "history": ("viewer", None),
    "stats": ("viewer", None),
    "notifications": ("viewer", None),
    "notification_state": ("viewer", None),
    "notification_read": ("viewer", None),
    "alerts": ("viewer", None),
    "rule_list": ("viewer", None),
    "settings_get": ("viewer", None),
    "processes_subscribe": ("viewer", METRIC_ENDPOINTS),
    "processes_unsubscribe": ("viewer", METRIC_ENDPOINTS),
    "processes_at": ("viewer", METRIC_ENDPOINTS),
    "ack": ("operator", None),
    "rule_set": ("admin", None),
    "rule_delete": ("admin", None),
    "broadcast": ("admin", None),
    "settings_set": ("admin", None),
    "clients_list": ("admin", None),
    "client_disconnect": ("admin", None),
}

# What a handler returns (see MessageRouter): the reply, None, or an awaitable of either.
Reply = Union["JsonObject", None, Awaitable[Union["JsonObject", None]]]
Handler = Callable[["JsonObject", Any], Reply]


class MessageRouter:
    """Routes one connection's messages to its handlers."""

    log = Logger()
    __slots__ = ("session", "context")

    def __init__(self, session: ClientSession, context: RouterContext) -> None:
        self.session = session
        self.context = context

    # ----- entry points

    def handle(self, payload: bytes) -> Deferred[None] | None:
        try:
            message = decode_object(payload, "message")
        except ProtocolError as error:
            self._count_received(None, payload)
            self._fail(self._before_auth(error), None)
            return None
        self._count_received(message, payload)
        try:
            correlation_id = correlation_id_of(message)
        except ProtocolError as error:
            self.session.send_error(error, None)
            return None
        try:
            type_, data, handler = self._route(message)
        except ProtocolError as error:
            self._fail(error, correlation_id)
            return None
        try:
            result = handler(data, correlation_id)
        except ProtocolError as error:
            self._fail(error, correlation_id)
            return None
        except Exception:
            self.log.failure("internal error handling {type}", type=type_)
            self._fail(ProtocolError("internal", f"{type_}: internal error"), correlation_id)
            return None
        if isinstance(result, Awaitable):
            d = Deferred.fromCoroutine(self._finish(type_, result, correlation_id))
            d.addErrback(lambda f: self.log.failure("router failed on {type}", f, type=type_))
            return d
        if result is not None:
            self.session.reply(type_, result, correlation_id)
        return None

    def _before_auth(self, error: ProtocolError) -> ProtocolError:
        """Before authentication the only acceptable message is `auth`:
        anything else also ends the connection (4001)."""
        if self.session.principal is None:
            error.close_code = CLOSE_UNAUTHORIZED
        return error

    def reject_rate_limited(self, payload: bytes, retry_after: float) -> None:
        correlation_id = None
        message = None
        try:
            message = orjson.loads(payload)
            if isinstance(message, dict) and isinstance(message.get("correlation_id"), (str, int)):
                correlation_id = message["correlation_id"]
        except orjson.JSONDecodeError:
            pass
        self._count_received(message, payload)
        self.session.send_error(
            ProtocolError("rate_limited", "too many messages; slow down", {"retry_after": round(retry_after, 3)}),
            correlation_id,
        )

    def _count_received(self, message: Any, payload: bytes) -> None:
        """Telemetry: one inbound message by type; types dashd does not
        handle count as "unknown", unparsable ones as "invalid"."""
        telemetry = self.context.telemetry
        if telemetry is not None:
            type_ = message.get("type") if isinstance(message, dict) else None
            if isinstance(type_, str) and type_ in REQUESTS:
                kind = type_
            else:
                kind = "unknown" if isinstance(message, dict) else "invalid"
            telemetry.frame_received(kind, len(payload))

    # ----- plumbing

    @property
    def _subject(self) -> str:
        """Who sent the message being handled."""
        principal = self.session.principal
        assert principal is not None, "_route lets only auth through before authentication"
        return principal.subject

    def _route(self, message: JsonObject) -> tuple[str, JsonObject, Handler]:
        type_ = message.get("type")
        if not isinstance(type_, str):
            raise bad("'type' must be a string")
        data = message.get("data", {})
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise bad(f"{type_}: 'data' must be an object")
        session = self.session
        if session.principal is None and type_ != "auth":
            raise ProtocolError("unauthorized", "authenticate first: send auth {token}", close_code=CLOSE_UNAUTHORIZED)
        if type_ not in REQUESTS:
            raise ProtocolError("unknown_type", f"unknown message type {type_[:64]!r}", {"known": sorted(REQUESTS)})
        role, endpoints = REQUESTS[type_]
        if endpoints is not None and session.endpoint not in endpoints:
            raise bad(f"{type_}: not available on /{session.endpoint}")
        if session.principal is not None and not session.principal.may(role):
            raise ProtocolError("forbidden", f"{type_} needs the {role} role; you are {session.principal.role}")
        return type_, data, getattr(self, "handle_" + type_)

    async def _finish(self, type_: str, result: Awaitable[JsonObject | None], correlation_id: Any) -> None:
        try:
            reply = await result
        except ProtocolError as error:
            self._fail(error, correlation_id)
            return
        except CancelledError:
            return  # the connection went away; nobody to reply to
        except StoreUnavailable:
            self._fail(
                ProtocolError("unavailable", f"{type_}: the store is unavailable; try again shortly"), correlation_id
            )
            return
        except Exception:
            self.log.failure("internal error handling {type}", type=type_)
            self._fail(ProtocolError("internal", f"{type_}: internal error"), correlation_id)
            return
        if reply is not None:
            self.session.reply(type_, reply, correlation_id)

    def _fail(self, error: ProtocolError, correlation_id: Any) -> None:
        if error.code == "unauthorized" and self.context.telemetry is not None:
            self.context.telemetry.auth_failed(error.message)
        self.session.fail(error, correlation_id)

    # Handlers return a dict (sent as the reply), None (they replied
    # themselves), or an awaitable of either. They raise ProtocolError.

    def handle_auth(self, data: JsonObject, correlation_id: Any) -> JsonObject | Awaitable[None] | None:
        session = self.session
        try:
            principal = self.context.tokens.verify(data.get("token"))
        except AuthError as e:
            if session.principal is None:
                raise ProtocolError("unauthorized", str(e), close_code=CLOSE_UNAUTHORIZED) from None
            raise ProtocolError("unauthorized", str(e)) from None
        resume_after = number_field(data, "resume_after_seq", "auth", 0, 2**62, integer=True)
        if session.principal is not None:
            return session.reauthenticate(principal)
        if resume_after is not None:
            self._check_reply_room("auth")
        # A resuming client gets its missed messages in order instead of the
        # latest sample first.
        session.authenticate(principal, correlation_id, send_latest=resume_after is None)
        if resume_after is not None:
            return self._resume_then_report(int(resume_after))
        return None

    async def _resume_then_report(self, after_seq: int) -> None:
        result = await self._resume(after_seq, None)
        self.session.reply("resume", result, None)

    def handle_ping(self, data: JsonObject, correlation_id: Any) -> None:
        self.session.send(
            {
                "type": "pong",
                "correlation_id": correlation_id,
                "data": {"server_time": iso_ms(self.context.wall_clock_ms()), "client_time": data.get("client_time")},
            }
        )

    def _check_metric_patterns(self, patterns: list[str], request: str) -> None:
        self.context.history.check_metric_patterns(patterns, request)

    def _check_subscription_size(self, metrics: list[str], hosts: list[str], request: str) -> None:
        if len(metrics) + len(hosts) > self.context.settings.max_subscriptions:
            raise ProtocolError(
                "too_large",
                f"{request}: at most {self.context.settings.max_subscriptions} metric and host patterns per connection",
            )

    def handle_subscribe(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        subscription = self.session.stream.subscription
        metrics = pattern_list(data, "metrics", "subscribe")
        hosts = pattern_list(data, "hosts", "subscribe")
        if metrics is None and hosts is None:
            raise bad("subscribe: give 'metrics' and/or 'hosts'")
        if metrics is not None:
            self._check_metric_patterns(metrics, "subscribe")
        new_metrics = metrics if metrics is not None else list(subscription.metrics)
        new_hosts = hosts if hosts is not None else list(subscription.hosts)
        self._check_subscription_size(new_metrics, new_hosts, "subscribe")
        return self._apply_subscription(new_metrics, new_hosts)

    def handle_unsubscribe(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        subscription = self.session.stream.subscription
        metrics = pattern_list(data, "metrics", "unsubscribe")
        hosts = pattern_list(data, "hosts", "unsubscribe")
        if metrics is None:
            remaining_metrics: list[str] = [] if hosts is None else list(subscription.metrics)
        else:
            self._check_metric_patterns(metrics, "unsubscribe")
            # Expand the current patterns to names, so a name can be taken out of "*".
            catalogue = self.context.catalogue.names()
            current = subscription.selected(catalogue)
            current_names = list(catalogue if current is None else current)
            removed = set(select(metrics, current_names))
            remaining_metrics = [n for n in current_names if n not in removed]
            if current is None and not removed:
                remaining_metrics = list(subscription.metrics)
        remaining_hosts = list(subscription.hosts)
        if hosts is not None:
            remaining_hosts = [h for h in remaining_hosts if h not in hosts]
        return self._apply_subscription(remaining_metrics, remaining_hosts)

    def _apply_subscription(self, metrics: list[str], hosts: list[str]) -> JsonObject:
        stream = self.session.stream
        stream.subscription = SubscriptionFilter(metrics, hosts)
        return stream.subscription.as_dict()

    def handle_set_rate(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        if data.get("max_hz") is None:  # missing, or null
            raise bad("set_rate: 'max_hz' is required (a number above 0)")
        max_hz = number_field(data, "max_hz", "set_rate", 0.001, 1000)
        assert max_hz is not None  # checked above
        session = self.session
        session.asked_hz = max_hz
        session.stream.set_rate(min(max_hz, self.context.settings.max_rate_hz))
        return session.rate_data()

    def handle_resume(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        if data.get("after_seq") is None:
            raise bad("resume: 'after_seq' is required (the last seq you received, or 0)")
        after_seq = number_field(data, "after_seq", "resume", 0, 2**62, integer=True)
        assert after_seq is not None  # checked above
        self._check_reply_room("resume")
        return self._resume(int(after_seq), correlation_id)

    def _check_reply_room(self, request: str) -> None:
        """One resume or large reply in flight per connection: refused while
        a resume replays, or while earlier output waits unread (the socket's
        buffer is full or frames are queued), so a client that does not read
        cannot make the daemon build reply after reply for it."""
        stream = self.session.stream
        if stream.resuming:
            raise ProtocolError(
                "rate_limited", f"{request}: a resume is already replaying on this connection", {"in_flight": True}
            )
        if stream.backlogged:
            raise ProtocolError(
                "rate_limited",
                f"{request}: earlier replies have not been read yet",
                {"retry_after": 1.0, "queued_bytes": stream.queued_bytes},
            )

    async def _resume(self, after_seq: int, correlation_id: Any) -> JsonObject:
        backfill = self.context.stored.read_stream
        result = await self.context.stream.resume(
            self.session.stream, after_seq, backfill, RESUME_LIMIT, correlation_id=correlation_id
        )
        return result.as_dict()

    def _metric_names(self, data: JsonObject, request: str, host: str | None = None) -> list[str]:
        return self.context.history.metric_names(data, request, host)

    def _host(self, data: JsonObject, request: str) -> str:
        return string_field(data, "host", request, required=False, max_length=128) or self.context.catalogue.host

    def handle_history(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        query = self.context.history.validate(data)
        self._check_reply_room("history")
        return self.context.history.schedule(self.session, self._subject, query)

    def handle_stats(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        settings = self.context.settings
        host = self._host(data, "stats")
        metrics = self._metric_names(data, "stats", host)
        window_raw = data.get("window", DEFAULT_STATS_WINDOW)
        try:
            if isinstance(window_raw, bool):
                raise ValueError
            window = parse_duration(window_raw)
        except (TypeError, ValueError):
            raise bad("stats: 'window' must be seconds or a duration such as '5m'") from None
        if window <= 0:
            raise bad("stats: 'window' must be above 0")
        if window > settings.max_history_span:
            raise ProtocolError(
                "too_large",
                f"stats: 'window' may span at most {format_duration(settings.max_history_span)}",
            )
        host = self._host(data, "stats")
        now = self.context.wall_clock_ms()
        self._check_reply_room("stats")
        run: Callable[[], Deferred[JsonObject]] = lambda: Deferred.fromCoroutine(
            self._stats(host, metrics, now - int(window * 1000), now, window)
        )
        scheduler = self.context.queries
        if scheduler is None:
            return run()
        cost = stats_cost(
            len(metrics),
            int(window * 1000),
            int(self.context.sampling.interval * 1000),
            int(settings.retention_raw * 1000),
            int(settings.retention_rollup * 1000),
        )
        return scheduler.submit(self.session, self._subject, cost, run)

    async def _stats(self, host: str, metrics: list[str], from_ms: int, to_ms: int, window: float) -> JsonObject:
        summary = await self.context.stored.stats(host, metrics, from_ms, to_ms)
        return {"window": window, "from": iso_ms(from_ms), "to": iso_ms(to_ms), "host": host, "metrics": summary}

    def handle_notifications(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        limit = int(number_field(data, "limit", "notifications", 1, 500, default=50, integer=True))
        unacknowledged = data.get("unacknowledged", False)
        if not isinstance(unacknowledged, bool):
            raise bad("notifications: 'unacknowledged' must be true or false")
        span = self._notification_span(data)
        return self._notifications(limit, unacknowledged, span)

    def _notification_span(self, data: JsonObject) -> tuple[int, int] | None:
        """Optional `from`/`to` (as `history` reads them): the dashboard's
        chart markers for a past range. Either alone is open-ended."""
        if "from" not in data and "to" not in data:
            return None
        now = self.context.wall_clock_ms()
        bounds = []
        for field, default in (("from", 0), ("to", now)):
            if field not in data:
                bounds.append(default)
                continue
            try:
                bounds.append(parse_time(data[field], now))
            except (TypeError, ValueError):
                raise bad(f"notifications: '{field}' must be ISO-8601, Unix seconds or '-<duration>'") from None
        if bounds[1] < bounds[0]:
            raise bad("notifications: 'to' is before 'from'")
        return bounds[0], bounds[1]

    async def _notifications(self, limit: int, unacknowledged: bool, span: tuple[int, int] | None) -> JsonObject:
        try:
            if span is None:
                items = await self.context.stored.notifications(limit, unacknowledged)
            else:
                items = await self.context.stored.notifications(limit, unacknowledged, from_ms=span[0], to_ms=span[1])
        except StoreUnavailable:
            items = self.context.notifications.recent(500 if span else limit, unacknowledged)
            if span is not None:
                items = [n for n in items if span[0] <= parse_time(n["timestamp"], 0) <= span[1]][:limit]
        return {"notifications": items}

    def handle_ack(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        notification_id = string_field(data, "notification_id", "ack", max_length=MAX_NOTIFICATION_ID)
        return self._ack(notification_id)

    async def _ack(self, notification_id: str) -> JsonObject:
        user = self._subject
        ack = await self.context.notifications.acknowledge(notification_id, user)
        # Acknowledging implies having read it (for the acknowledger only).
        try:
            await self.context.reads.mark(user, [notification_id], self.context.wall_clock_ms())
        except StoreUnavailable:
            self.log.warn(
                "ack: could not record {user} read {id}; the store is unavailable", user=user, id=notification_id
            )
        return ack

    def handle_notification_state(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        limit = int(number_field(data, "limit", "notification_state", 1, 500, default=50, integer=True))
        return self._notification_state(limit)

    async def _notification_state(self, limit: int) -> JsonObject:
        """The newest notifications with this user's read flag, and the counts
        the bell and the badge show (over everything stored, not only `limit`)."""
        user = self._subject
        reads = self.context.reads
        items = await reads.annotate(user, await self.context.stored.notifications(limit, False))
        counts = await reads.counts(user)
        return {"notifications": items, **counts.as_dict()}

    def handle_notification_read(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        everything = data.get("all", False)
        if not isinstance(everything, bool):
            raise bad("notification_read: 'all' must be true or false")
        ids = data.get("ids")
        if ids is not None and not (
            isinstance(ids, list)
            and 0 < len(ids) <= MAX_READ_IDS
            and all(isinstance(i, str) and 0 < len(i) <= MAX_NOTIFICATION_ID for i in ids)
        ):
            raise bad(f"notification_read: 'ids' must be a list of 1 to {MAX_READ_IDS} notification ids")
        if not everything and ids is None:
            raise bad("notification_read: give 'ids' (a list of notification ids) or 'all': true")
        return self._notification_read(sorted(set(ids or [])), everything)

    async def _notification_read(self, ids: list[str], everything: bool) -> JsonObject:
        user = self._subject
        reads = self.context.reads
        now = self.context.wall_clock_ms()
        if everything:
            await reads.mark_all(user, now)
        else:
            unknown = sorted(set(ids) - await reads.known(ids))
            if unknown:
                raise ProtocolError(
                    "not_found", f"notification_read: no notification {unknown[0]!r}", {"unknown": unknown[:20]}
                )
            await reads.mark(user, ids, now)
        counts = await reads.counts(user)
        return {"ids": ids, "all": everything, **counts.as_dict()}

    def handle_catalogue(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        """The catalogue again, with the label values known now."""
        catalogue = self.context.catalogue
        return {"metrics": [info.as_dict() for info in catalogue.info], "families": catalogue.families()}

    def handle_alerts(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        return self._alerts()

    async def _alerts(self) -> JsonObject:
        """What fires now (from the rule engine), with who acknowledged it."""
        alerts = []
        for alert in self.context.rules.active_alerts():
            item = alert.as_dict()
            body = await self.context.notifications.find(alert.notification_id)
            item["title"] = body["title"] if body else alert.rule
            item["acknowledged_by"] = body.get("acknowledged_by") if body else None
            item["acknowledged_at"] = body.get("acknowledged_at") if body else None
            alerts.append(item)
        return {"alerts": alerts}

    def handle_rule_list(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        rules = []
        engine = self.context.rules
        for rule in sorted(engine.rules.values(), key=lambda r: r.name):
            item = rule.as_dict()
            item["firing"] = engine.firing_hosts(rule.name)
            item["pending"] = engine.pending_hosts(rule.name)
            item["clear_threshold"] = rule.clear_threshold
            item["state"] = (
                "disabled"
                if not rule.enabled
                else "firing"
                if item["firing"]
                else "pending"
                if item["pending"]
                else "ok"
            )
            rules.append(item)
        return {"rules": rules}

    def handle_rule_set(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        rule = rule_from_dict(data, self.context.catalogue.names())
        return self._rule_set(rule)

    async def _rule_set(self, rule: AlertRule) -> JsonObject:
        await self.context.rule_store.save_rule(rule.name, rule.as_dict(), self._subject)
        self.context.rules.set_rule(rule)
        self._audit("rule_set", rule.as_dict())
        return {"rule": rule.as_dict()}

    def handle_rule_delete(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        name = string_field(data, "name", "rule_delete", max_length=64)
        if name not in self.context.rules.rules:
            raise ProtocolError("not_found", f"no rule named {name!r}")
        return self._rule_delete(name)

    async def _rule_delete(self, name: str) -> JsonObject:
        await self.context.rule_store.delete_rule(name)
        self.context.rules.delete_rule(name)
        self._audit("rule_delete", {"name": name})
        return {"name": name}

    def handle_broadcast(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        level = data.get("level", "info")
        if level not in LEVELS:
            raise bad(f"broadcast: 'level' must be one of {', '.join(LEVELS)}")
        title = string_field(data, "title", "broadcast", max_length=MAX_TITLE)
        text = data.get("message", "")
        if not isinstance(text, str) or len(text) > MAX_MESSAGE:
            raise bad(f"broadcast: 'message' must be a string of at most {MAX_MESSAGE} characters")
        subject = self._subject
        body = self.context.notifications.raise_notification(level, title, text, f"admin:{subject}")
        self._audit("broadcast", {"id": body["id"], "level": level, "title": title})
        return {"id": body["id"]}

    def handle_settings_get(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        settings = self.context.settings
        return {
            "interval": self.context.sampling.interval,
            "max_rate_hz": settings.max_rate_hz,
            "retention_raw": settings.retention_raw,
            "retention_rollup": settings.retention_rollup,
            "host": self.context.catalogue.host,
        }

    # Processes (issue 19): dashd.clients.processes holds the logic.

    def _processes(self, request: str) -> ProcessRequests:
        requests = self.context.processes
        if requests is None:
            raise ProtocolError("unavailable", f"{request}: process tables are not served by this node")
        return requests

    def handle_processes_subscribe(self, data: JsonObject, correlation_id: Any) -> None:
        session = self.session
        self._processes("processes_subscribe").subscribe(
            session,
            lambda: session.principal,
            session.stream.send_prepared,
            data,
            lambda reply: session.reply("processes_subscribe", reply, correlation_id),
        )

    def handle_processes_unsubscribe(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        return self._processes("processes_unsubscribe").unsubscribe(self.session)

    def handle_processes_at(self, data: JsonObject, correlation_id: Any) -> Awaitable[JsonObject]:
        requests = self._processes("processes_at")
        query = requests.parse_at(data, "processes_at")
        self._check_reply_room("processes_at")
        return requests.at(query, self.session.principal)

    def handle_settings_set(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        interval = number_field(data, "interval", "settings_set", 0.1, 60)
        if interval is None:
            raise bad("settings_set: 'interval' is required (seconds from 0.1 to 60)")
        self.context.sampling.set_interval(float(interval))
        for session in self.context.registry:
            session.interval_changed(float(interval))
        self._audit("settings_set", {"interval": interval})
        return {"interval": float(interval)}

    def handle_clients_list(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        return {"clients": [session.describe() for session in self.context.registry]}

    def handle_client_disconnect(self, data: JsonObject, correlation_id: Any) -> JsonObject:
        session_id = string_field(data, "session_id", "client_disconnect", max_length=64)
        target = self.context.registry.get(session_id)
        if target is None:
            raise ProtocolError("not_found", f"no client with session_id {session_id!r}")
        self._audit(
            "client_disconnect",
            {"session_id": session_id, "user": target.principal.subject if target.principal else None},
        )
        target.close(CLOSE_KICKED, "disconnected by an administrator")
        return {"session_id": session_id}

    def _audit(self, action: str, detail: JsonObject) -> None:
        self.context.audit.record(self._subject, action, detail, self.session.address)
