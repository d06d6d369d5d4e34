"""Notifications and alert rules.

NotificationCenter raises notifications (from rules, admins or the daemon)
and acknowledgements onto the bus; RuleEngine watches samples and fires and
resolves rules with a hold time (`for`) and hysteresis (`clear`).
"""

from __future__ import annotations

import operator
import re
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from dashd.alerting.model import FIRING, LABEL_NAME, MAX_LABEL_VALUE, RESOLVED, AlertEvent, alert_labels
from dashd.collect.collector import Sample
from dashd.collect.families import is_collector_series
from dashd.errors import ProtocolError
from dashd.settings import AlertRuleConfig, parse_bool, parse_duration
from dashd.stream.bus import METRICS_TOPIC, NOTIFICATIONS_TOPIC, Bus
from dashd.stream.streams import NOTIFICATION, NOTIFICATION_ACK
from dashd.timefmt import iso_ms, now_ms

LEVELS = ("info", "warning", "critical")
COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
MAX_TITLE = 200
MAX_MESSAGE = 2000


class NotificationCenter:
    """Creates notifications and acknowledgements and publishes them."""

    log = Logger()

    def __init__(
        self, bus: Bus, store: Any | None, wall_clock_ms: Callable[[], int] = now_ms, remembered: int = 1000
    ) -> None:
        self._bus = bus
        self._store = store
        self._wall_clock_ms = wall_clock_ms
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._remembered = remembered

    def raise_notification(
        self,
        level: str,
        title: str,
        message: str,
        source: str,
        state: str | None = None,
        alert: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if level not in LEVELS:
            raise ValueError(level)
        timestamp_ms = self._wall_clock_ms()
        body = {
            "id": "n-" + uuid.uuid4().hex[:20],
            "level": level,
            "title": title[:MAX_TITLE],
            "message": message[:MAX_MESSAGE],
            "timestamp": iso_ms(timestamp_ms),
            "source": source,
            "acknowledged_by": None,
            "acknowledged_at": None,
        }
        if state:
            body["state"] = state
        if alert:
            # A rule's alert: its labels, and whether a silence covers it
            # (shown, marked silenced, but not delivered).
            body.update(alert)
        self._remember(body)
        self._publish(NOTIFICATION, timestamp_ms, body)
        return body

    def _remember(self, body: dict[str, Any]) -> None:
        self._recent[body["id"]] = body
        while len(self._recent) > self._remembered:
            self._recent.popitem(last=False)

    def _publish(self, type_: str, timestamp_ms: int, body: dict[str, Any]) -> None:
        self._bus.publish(NOTIFICATIONS_TOPIC, {"type": type_, "timestamp_ms": timestamp_ms, "data": body}).addErrback(
            lambda f: self.log.failure("publishing a notification failed", f)
        )

    async def find(self, notification_id: str) -> dict[str, Any] | None:
        if notification_id in self._recent:
            return self._recent[notification_id]
        if self._store is None:
            return None
        found: dict[str, Any] | None = await self._store.notification(notification_id)
        return found

    async def acknowledge(self, notification_id: str, user: str) -> dict[str, Any]:
        """Mark a notification acknowledged for everyone; idempotent."""
        body = await self.find(notification_id)
        if body is None:
            raise ProtocolError("not_found", f"no notification {notification_id!r}")
        if body.get("acknowledged_by"):
            return {
                "id": notification_id,
                "acknowledged_by": body["acknowledged_by"],
                "acknowledged_at": body["acknowledged_at"],
            }
        timestamp_ms = self._wall_clock_ms()
        ack = {"id": notification_id, "acknowledged_by": user, "acknowledged_at": iso_ms(timestamp_ms)}
        body = dict(body, acknowledged_by=user, acknowledged_at=ack["acknowledged_at"])
        self._remember(body)
        self._publish(NOTIFICATION_ACK, timestamp_ms, ack)
        return ack

    def recent(self, limit: int, unacknowledged: bool) -> list[dict[str, Any]]:
        items = [b for b in reversed(self._recent.values()) if not (unacknowledged and b.get("acknowledged_by"))]
        return items[:limit]


@dataclass(frozen=True)
class AlertRule:
    name: str
    metric: str
    op: str
    threshold: float
    for_seconds: float = 0.0
    level: str = "warning"
    clear: float | None = None
    enabled: bool = True
    labels: tuple[tuple[str, str], ...] = ()  # for routing and silences (docs/alerting.md)

    @property
    def clear_threshold(self) -> float:
        return self.threshold if self.clear is None else self.clear

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["for"] = data.pop("for_seconds")
        labels = data.pop("labels")
        if labels:
            data["labels"] = dict(labels)
        return data

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g} for {self.for_seconds:g}s"


_RULE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RULE_SPEC = re.compile(
    r"^\s*(?P<metric>[A-Za-z0-9_]+)\s*(?P<op>>=|<=|>|<)\s*(?P<threshold>-?[0-9.]+)\s*"
    r"(?:for\s+(?P<for>\S+))?\s*(?P<rest>.*)$"
)


def rule_from_dict(data: Mapping[str, Any], known_metrics: tuple[str, ...]) -> AlertRule:
    """Validate a rule from `rule_set` (JSON); ProtocolError on bad input."""

    def bad(message: str) -> ProtocolError:
        return ProtocolError("bad_message", f"rule_set: {message}")

    name = data.get("name")
    if not isinstance(name, str) or not _RULE_NAME.match(name):
        raise bad("'name' must be 1-64 letters, digits, '_', '.' or '-'")
    metric = data.get("metric")
    if not isinstance(metric, str) or (metric not in known_metrics and not is_collector_series(metric)):
        raise ProtocolError("bad_message", f"rule_set: unknown metric {metric!r}", {"known": list(known_metrics)})
    op = data.get("op")
    if op not in COMPARATORS:
        raise bad(f"'op' must be one of {', '.join(COMPARATORS)}")
    threshold = _finite(data.get("threshold"), "threshold", bad)
    for_raw = data.get("for", 0)
    try:
        for_seconds = parse_duration(for_raw) if not isinstance(for_raw, bool) else -1
    except (TypeError, ValueError):
        for_seconds = -1
    if not 0 <= for_seconds <= 86_400:
        raise bad("'for' must be a duration from 0 to 1d (seconds or e.g. '30s')")
    level = data.get("level", "warning")
    if level not in LEVELS:
        raise bad(f"'level' must be one of {', '.join(LEVELS)}")
    clear = data.get("clear")
    if clear is not None:
        clear = _finite(clear, "clear", bad)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise bad("'enabled' must be true or false")
    labels = data.get("labels") or {}
    if (
        not isinstance(labels, Mapping)
        or len(labels) > 20
        or not all(
            isinstance(k, str)
            and LABEL_NAME.match(k)
            and k not in RESERVED_LABELS
            and isinstance(v, str)
            and len(v) <= MAX_LABEL_VALUE
            for k, v in labels.items()
        )
    ):
        raise bad(
            "'labels' must map up to 20 label names (letters, digits, '_'; not alertname, host or severity) to strings"
        )
    return AlertRule(name, metric, op, threshold, for_seconds, level, clear, enabled, tuple(sorted(labels.items())))


RESERVED_LABELS = ("alertname", "host", "severity")


def _finite(value: Any, name: str, bad: Callable[[str], ProtocolError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) > 1e15:
        raise bad(f"'{name}' must be a number")
    return float(value)


def rule_from_config(config: AlertRuleConfig, known_metrics: tuple[str, ...]) -> AlertRule:
    """`[rules]` line: `cpu_high = cpu_usage > 90 for 30s level=warning clear=85`."""
    match = _RULE_SPEC.match(config.spec)
    if not match:
        raise ValueError(f"rules.{config.name}: expected 'METRIC OP THRESHOLD [for DURATION] [level=L] [clear=N]'")
    try:
        threshold = float(match.group("threshold"))  # the pattern lets "9.9.9" through
    except ValueError:
        raise ValueError(f"rules.{config.name}: threshold must be a number") from None
    data: dict[str, Any] = {
        "name": config.name,
        "metric": match.group("metric"),
        "op": match.group("op"),
        "threshold": threshold,
        "for": match.group("for") or 0,
    }
    for option in match.group("rest").split():
        key, _, value = option.partition("=")
        if key.startswith("label."):
            data.setdefault("labels", {})[key[len("label.") :]] = value
        elif key == "level":
            data["level"] = value
        elif key == "clear":
            try:
                data["clear"] = float(value)
            except ValueError:
                raise ValueError(f"rules.{config.name}: clear must be a number") from None
        elif key == "enabled":
            try:
                data["enabled"] = parse_bool(value)  # a typo must not silently disable the rule
            except ValueError:
                raise ValueError(f"rules.{config.name}: enabled must be true or false") from None
        else:
            raise ValueError(f"rules.{config.name}: unknown option {option!r} (level=, clear=, enabled=, label.NAME=)")
    try:
        return rule_from_dict(data, known_metrics)
    except ProtocolError as e:
        raise ValueError(f"rules.{config.name}: {e.message.removeprefix('rule_set: ')}") from None


DEFAULT_RULES = (
    AlertRule("cpu_high", "cpu_usage", ">", 90, 60, "warning", 80),
    AlertRule("memory_high", "memory_usage", ">", 90, 60, "warning", 85),
    AlertRule("disk_full", "disk_usage", ">", 95, 60, "critical", 90),
)


class SilenceCheck(Protocol):
    def silenced_by(self, labels: Mapping[str, str], now_ms: int) -> str | None: ...


AlertObserver = Callable[[AlertEvent, "str | None"], None]


@dataclass(frozen=True)
class ActiveAlert:
    """A rule firing now on one host: what the active-alerts view shows."""

    rule: str
    host: str
    metric: str
    level: str
    since_ms: int
    value: float
    notification_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "host": self.host,
            "metric": self.metric,
            "level": self.level,
            "since": iso_ms(self.since_ms),
            "value": self.value,
            "notification_id": self.notification_id,
        }


class RuleEngine:
    """Evaluates rules against each sample, per host. Each firing and
    resolve becomes a notification (marked silenced when a silence covers
    it) and an AlertEvent for the observers (alert delivery)."""

    log = Logger()

    def __init__(self, notifications: NotificationCenter, silences: SilenceCheck | None = None) -> None:
        self._notifications = notifications
        self._silences = silences
        self._observers: list[AlertObserver] = []
        self.rules: dict[str, AlertRule] = {}
        self._pending_since: dict[tuple[str, str], int] = {}
        self._firing: dict[tuple[str, str], ActiveAlert] = {}

    def add_observer(self, observer: AlertObserver) -> None:
        """`observer(event, silence_id)` for every firing and resolve."""
        self._observers.append(observer)

    def _alert(
        self,
        rule: AlertRule,
        host: str,
        state: str,
        level: str,
        value: float,
        ts_ms: int,
        summary: str,
        description: str,
    ) -> dict[str, Any]:
        labels = alert_labels(rule.name, host, level, rule.labels)
        if state == FIRING:
            event = AlertEvent(rule.name, host, state, level, labels, summary, description, ts_ms, None, value)
        else:
            active = self._firing.get((rule.name, host))
            started, level = (active.since_ms, active.level) if active else (ts_ms, level)
            labels = alert_labels(rule.name, host, level, rule.labels)
            event = AlertEvent(rule.name, host, state, level, labels, summary, description, started, ts_ms, value)
        silence = self._silences.silenced_by(event.label_map, ts_ms) if self._silences is not None else None
        for observer in self._observers:
            try:
                observer(event, silence)
            except Exception:
                self.log.failure("alert observer failed for {rule} on {host}", rule=rule.name, host=host)
        return {"labels": event.label_map, "silenced": silence is not None}

    def attach(self, bus: Bus) -> None:
        bus.subscribe(METRICS_TOPIC, lambda topic, sample: self.evaluate(sample))

    def set_rule(self, rule: AlertRule) -> None:
        self.rules[rule.name] = rule
        self._forget(rule.name, "changed")

    def replace_rules(self, rules: Iterable[AlertRule]) -> None:
        self.rules = {}
        self._pending_since.clear()
        self._firing.clear()
        for rule in rules:
            self.rules[rule.name] = rule

    def delete_rule(self, name: str) -> None:
        self.rules.pop(name, None)
        self._forget(name, "deleted")

    def _forget(self, name: str, reason: str) -> None:
        for key in [k for k in self._pending_since if k[0] == name]:
            del self._pending_since[key]
        # An alert that stops because its rule went away is over: say so, so
        # every active-alerts view (and the feed) stops showing it as firing.
        for alert in [a for k, a in self._firing.items() if k[0] == name]:
            self._notifications.raise_notification(
                "info",
                f"{alert.metric} no longer watched on {alert.host}",
                f"{name}: rule {reason}; the alert that fired at {iso_ms(alert.since_ms)} is closed",
                f"rule:{name}",
                state="resolved",
            )
        self._firing = {k: v for k, v in self._firing.items() if k[0] != name}

    def is_firing(self, name: str, host: str) -> bool:
        return (name, host) in self._firing

    def active_alerts(self) -> list[ActiveAlert]:
        """Every (rule, host) firing now, oldest first."""
        return sorted(self._firing.values(), key=lambda a: (a.since_ms, a.rule, a.host))

    def firing_hosts(self, name: str) -> list[str]:
        return sorted(host for (rule, host) in self._firing if rule == name)

    def pending_hosts(self, name: str) -> list[str]:
        """Hosts where the condition holds but not yet for the rule's `for` time."""
        return sorted(host for (rule, host) in self._pending_since if rule == name)

    def evaluate(self, sample: Sample) -> None:
        if not isinstance(sample, Sample):
            return
        for rule in list(self.rules.values()):
            value = sample.metrics.get(rule.metric)
            if not rule.enabled or value is None:
                continue
            key = (rule.name, sample.host)
            compare = COMPARATORS[rule.op]
            if key in self._firing:
                if not compare(value, rule.clear_threshold):
                    title = f"{rule.metric} back to normal on {sample.host}"
                    text = f"{rule.name}: {rule.metric} is {value:g} (clears at {rule.clear_threshold:g})"
                    alert = self._alert(
                        rule, sample.host, RESOLVED, rule.level, value, sample.timestamp_ms, title, text
                    )
                    del self._firing[key]
                    self._notifications.raise_notification(
                        "info", title, text, f"rule:{rule.name}", state="resolved", alert=alert
                    )
                continue
            if not compare(value, rule.threshold):
                self._pending_since.pop(key, None)
                continue
            since = self._pending_since.setdefault(key, sample.timestamp_ms)
            if sample.timestamp_ms - since >= rule.for_seconds * 1000:
                self._pending_since.pop(key, None)
                title = f"{rule.metric} {rule.op} {rule.threshold:g} on {sample.host}"
                text = f"{rule.name}: {rule.describe()} (now {value:g})"
                alert = self._alert(rule, sample.host, FIRING, rule.level, value, sample.timestamp_ms, title, text)
                body = self._notifications.raise_notification(
                    rule.level, title, text, f"rule:{rule.name}", state="firing", alert=alert
                )
                self._firing[key] = ActiveAlert(
                    rule.name, sample.host, rule.metric, rule.level, sample.timestamp_ms, value, body["id"]
                )


async def load_rules(engine: RuleEngine, store: Any, configured: tuple[AlertRule, ...]) -> None:
    """Stored rules, overridden by the INI's rules of the same name; on the
    very first start (no stored rules, none configured) the built-in defaults."""
    stored = await store.rules()
    merged: dict[str, AlertRule] = {}
    for name, spec in stored.items():
        try:
            merged[name] = AlertRule(
                name=name,
                metric=spec["metric"],
                op=spec["op"],
                threshold=float(spec["threshold"]),
                for_seconds=float(spec["for"]),
                level=spec["level"],
                clear=spec.get("clear"),
                enabled=spec.get("enabled", True),
                labels=tuple(sorted((spec.get("labels") or {}).items())),
            )
        except (KeyError, TypeError, ValueError):
            engine.log.warn("ignoring stored rule {name}: unreadable", name=name)
    seeds = configured if configured or stored else DEFAULT_RULES
    for rule in seeds:
        merged[rule.name] = rule
        await store.save_rule(rule.name, rule.as_dict(), "config")
    engine.replace_rules(merged.values())


def deferred_load_rules(engine: RuleEngine, store: Any, configured: tuple[AlertRule, ...]) -> Deferred[None]:
    return Deferred.fromCoroutine(load_rules(engine, store, configured))
