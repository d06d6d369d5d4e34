"""Alert delivery's value objects: an alert event (a rule firing or resolving
on a host, with its labels), label matchers (shared by routes and silences),
and the notice (one message for one channel) that the outbox stores.

Pure data and pure functions: no I/O, no clock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

LEVELS = ("info", "warning", "critical")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}
FIRING = "firing"
RESOLVED = "resolved"
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_LABEL_VALUE = 256
PAYLOAD_VERSION = "1"
# How much of the dashboard a link shows around an alert's time.
LINK_BEFORE_MS = 30 * 60_000
LINK_AFTER_MS = 5 * 60_000


@dataclass(frozen=True)
class AlertEvent:
    """A rule changed state on a host. `event_key` is the same on every
    node that saw the same sample, so nodes can agree who delivers it."""

    rule: str
    host: str
    state: str  # firing or resolved
    level: str
    labels: tuple[tuple[str, str], ...]
    summary: str
    description: str
    starts_at_ms: int
    ends_at_ms: int | None = None
    value: float | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(dict(self.labels))

    @property
    def event_key(self) -> str:
        at = self.starts_at_ms if self.state == FIRING else self.ends_at_ms
        return f"{self.fingerprint}:{self.state}:{at}"

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def ts_ms(self) -> int:
        return self.starts_at_ms if self.state == FIRING or self.ends_at_ms is None else self.ends_at_ms


def fingerprint_of(labels: Mapping[str, str]) -> str:
    text = "\x00".join(f"{k}\x01{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def alert_labels(
    rule: str, host: str, level: str, extra: Iterable[tuple[str, str]] = ()
) -> tuple[tuple[str, str], ...]:
    """The labels of an alert: the rule's own, then alertname, host and
    severity (which a rule cannot override, so routing on them is reliable)."""
    labels = dict(extra)
    labels.update({"alertname": rule, "host": host, "severity": level})
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Matcher:
    """`name=value`, `name!=value`, `name=~regex` or `name!~regex`
    (regexes anchored, as Alertmanager's)."""

    name: str
    op: str
    value: str
    _pattern: Any = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._pattern.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def make_matcher(name: Any, op: Any, value: Any) -> Matcher:
    if not isinstance(name, str) or not LABEL_NAME.match(name):
        raise ValueError(f"matcher label name {name!r} must be letters, digits and '_'")
    if op not in ("=", "!=", "=~", "!~"):
        raise ValueError(f"matcher operator {op!r} must be one of =, !=, =~, !~")
    if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
        raise ValueError(f"matcher value for {name} must be a string of at most {MAX_LABEL_VALUE} characters")
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as e:
            raise ValueError(f"matcher {name}{op}{value}: bad regular expression ({e})") from None
    value = value.strip('"') if op in ("=", "!=") else value
    return Matcher(name, op, value, pattern)


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if not match:
        raise ValueError(f"matcher {text!r} must look like name=value, name!=value, name=~regex or name!~regex")
    return make_matcher(*match.groups())


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Comma-separated matchers (a regex containing a comma cannot be written
    this way; use the API's list form)."""
    return tuple(parse_matcher(part) for part in text.split(",") if part.strip())


def matchers_from_json(data: Any) -> tuple[Matcher, ...]:
    if not isinstance(data, list) or not data or len(data) > 20:
        raise ValueError("'matchers' must be a list of 1 to 20 {name, op, value} objects")
    result = []
    for item in data:
        if not isinstance(item, dict):
            raise ValueError("each matcher must be an object {name, op, value}")
        result.append(make_matcher(item.get("name"), item.get("op", "="), item.get("value")))
    return tuple(result)


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def dashboard_link(base_url: str, host: str, at_ms: int, until_ms: int | None = None) -> str:
    """`/?from=<ms>&to=<ms>&host=<h>` on the dashboard, around the alert."""
    params: dict[str, int | str] = {"from": at_ms - LINK_BEFORE_MS, "to": (until_ms or at_ms) + LINK_AFTER_MS}
    if host:  # a group across hosts links to the range only
        params["host"] = host
    query = urlencode(params)
    return f"{base_url.rstrip('/')}/?{query}"


def alert_json(event: AlertEvent, base_url: str) -> dict[str, Any]:
    """One alert inside a stored notice (and the generic webhook payload)."""
    return {
        "status": event.state,
        "labels": event.label_map,
        "annotations": {"summary": event.summary, "description": event.description},
        "startsAt": event.starts_at_ms,
        "endsAt": event.ends_at_ms,
        "fingerprint": event.fingerprint,
        "dashboardURL": dashboard_link(base_url, event.host, event.starts_at_ms, event.ends_at_ms),
    }


@dataclass(frozen=True)
class Notice:
    """One message to one channel: what the outbox stores and a channel
    renders in its own format."""

    channel: str
    group_key: str
    dedup_key: str
    body: dict[str, Any]  # the generic payload (docs/alerting.md#generic), JSON-ready

    @property
    def status(self) -> str:
        return str(self.body["status"])


def build_notice(
    channel: str,
    group_key: str,
    group_labels: Mapping[str, str],
    alerts: list[AlertEvent],
    base_url: str,
    dedup_key: str,
    max_alerts: int,
    kind: str = "notify",
) -> Notice:
    firing = [a for a in alerts if a.state == FIRING]
    common = dict(alerts[0].labels) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert.label_map.get(k) == v}
    listed = alerts[:max_alerts]
    hosts = sorted({a.host for a in alerts})
    starts = min((a.starts_at_ms for a in alerts), default=0)
    ends = max((a.ends_at_ms or a.starts_at_ms for a in alerts), default=0)
    body = {
        "version": PAYLOAD_VERSION,
        "kind": kind,
        "receiver": channel,
        "status": FIRING if firing else RESOLVED,
        "groupKey": group_key,
        "groupLabels": dict(group_labels),
        "commonLabels": common,
        "alerts": [alert_json(a, base_url) for a in listed],
        "truncatedAlerts": len(alerts) - len(listed),
        "counts": {"firing": len(firing), "resolved": len(alerts) - len(firing)},
        "dashboardURL": dashboard_link(base_url, hosts[0] if len(hosts) == 1 else "", starts, ends),
    }
    return Notice(channel, group_key, dedup_key, body)


def dedup_key(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()
