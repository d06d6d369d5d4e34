"""Routing and grouping: routes match alert labels and a minimum level to
channels; alerts of one route, channel and group (the values of the
route's `group_by` labels) go out together.

A group's first notice waits `group_wait` (so a burst becomes one message),
later changes wait until `group_interval` after the previous notice, still
firing alerts are repeated every `repeat_interval`, and an alert that clears
is announced once as resolved. Timers run on an injected IReactorTime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from dashd.alerting.model import (
    FIRING,
    LEVEL_RANK,
    LEVELS,
    AlertEvent,
    Matcher,
    Notice,
    all_match,
    build_notice,
    dedup_key,
    parse_matchers,
)
from dashd.settings import parse_bool, parse_duration

SECOND = 1.0
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
ALL_CHANNELS = "*"


class RouteError(ValueError):
    """A route is invalid; str() is one line naming it."""


@dataclass(frozen=True)
class Route:
    name: str
    channels: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()
    min_level: str = "info"
    group_by: tuple[str, ...] = ("alertname",)
    group_wait: float = 10 * SECOND
    group_interval: float = 1 * MINUTE
    repeat_interval: float = 4 * HOUR
    stop: bool = False

    def matches(self, event: AlertEvent) -> bool:
        return LEVEL_RANK[event.level] >= LEVEL_RANK[self.min_level] and all_match(self.matchers, event.label_map)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channels": list(self.channels),
            "matchers": [str(m) for m in self.matchers],
            "level": self.min_level,
            "group_by": list(self.group_by),
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
            "stop": self.stop,
        }


DEFAULT_ROUTE = Route("default", (ALL_CHANNELS,))


def _duration(name: str, key: str, raw: Any, low: float, high: float) -> float:
    try:
        value = parse_duration(raw)
    except (TypeError, ValueError):
        value = -1
    if not low <= value <= high:
        raise RouteError(f"route {name}: {key} must be a duration from {low:g}s to {high:g}s")
    return value


def parse_route(name: str, data: Mapping[str, str]) -> Route:
    """An INI `[route:NAME]` section."""
    data = dict(data)
    channels = tuple(c.strip() for c in data.pop("channels", "").split(",") if c.strip())
    if not channels:
        raise RouteError(f"route {name}: channels is required (channel names, or *)")
    try:
        matchers = parse_matchers(data.pop("match", ""))
    except ValueError as e:
        raise RouteError(f"route {name}: {e}") from None
    level = data.pop("level", "info")
    if level not in LEVELS:
        raise RouteError(f"route {name}: level must be one of {', '.join(LEVELS)}")
    group_by = tuple(g.strip() for g in data.pop("group_by", "alertname").split(",") if g.strip())
    try:
        stop = parse_bool(data.pop("stop", "false"))
    except ValueError:
        raise RouteError(f"route {name}: stop must be true or false") from None
    route = Route(
        name,
        channels,
        matchers,
        level,
        group_by,
        _duration(name, "group_wait", data.pop("group_wait", "10s"), 0, HOUR),
        _duration(name, "group_interval", data.pop("group_interval", "1m"), 1, 24 * HOUR),
        _duration(name, "repeat_interval", data.pop("repeat_interval", "4h"), 10, 7 * 24 * HOUR),
        stop,
    )
    if data:
        raise RouteError(f"route {name}: unknown option {sorted(data)[0]!r}")
    return route


def check_routes(routes: tuple[Route, ...], channels: set[str]) -> None:
    for route in routes:
        for channel in route.channels:
            if channel != ALL_CHANNELS and channel not in channels:
                raise RouteError(f"route {route.name}: no channel named {channel!r}")


@dataclass
class _Group:
    key: str
    route: Route
    channel: str
    labels: dict[str, str]
    alerts: dict[str, AlertEvent] = field(default_factory=dict)
    new: dict[str, AlertEvent] = field(default_factory=dict)  # to announce (owned by this node, not silenced)
    eligible: set[str] = field(default_factory=set)  # firing, not silenced: its resolve is announced
    # Firing alerts another node announces (it recorded them first), with when
    # they arrived: left out of this node's notices until that node has sent.
    foreign: dict[str, float] = field(default_factory=dict)
    last_sent: float | None = None
    flush_call: IDelayedCall | None = None
    repeat_call: IDelayedCall | None = None


class Grouper:
    """Turns routed alert events into notices, handed to `enqueue`."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        enqueue: Callable[[Notice], Deferred[Any]],
        base_url: str,
        silenced: Callable[[Mapping[str, str], int], str | None],
        wall_clock_ms: Callable[[], int],
        repeat_for: Callable[[str, Route], float] = lambda channel, route: route.repeat_interval,
        max_alerts: int = 50,
    ) -> None:
        self.clock = clock
        self.enqueue = enqueue
        self.base_url = base_url
        self.silenced = silenced
        self.wall_clock_ms = wall_clock_ms
        self.repeat_for = repeat_for
        self.max_alerts = max_alerts
        self.groups: dict[str, _Group] = {}

    def add(self, route: Route, channel: str, event: AlertEvent, owned: bool, silenced: bool) -> None:
        """Put an event in its group. `owned`: this node recorded the event
        first, so it is the one to announce it; `silenced`: a silence covered
        it when it happened."""
        labels = event.label_map
        group_labels = {name: labels.get(name, "") for name in route.group_by}
        key = f"{route.name}/{channel}/" + ",".join(f"{k}={v}" for k, v in sorted(group_labels.items()))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key, route, channel, group_labels)
        fp = event.fingerprint
        if event.state == FIRING:
            group.alerts[fp] = event
            if not silenced:
                group.eligible.add(fp)
                if owned:
                    group.new[fp] = event
                else:
                    group.foreign[fp] = self.clock.seconds()
        else:
            group.alerts.pop(fp, None)
            group.foreign.pop(fp, None)
            unsent = group.new.pop(fp, None) is not None
            # A resolved message only for an alert whose firing was announced
            # (by this node or another); one that clears before its group
            # went out is simply dropped.
            if owned and fp in group.eligible and not unsent:
                group.new[fp] = event
            group.eligible.discard(fp)
        if owned and silenced and event.state == FIRING and group.repeat_call is None and group.flush_call is None:
            # Nothing to send now; the repeat timer delivers it if its silence
            # ends while it still fires.
            self._schedule_repeat(group)
        if group.new and group.flush_call is None:
            now = self.clock.seconds()
            if group.last_sent is None:
                delay = route.group_wait
            else:
                delay = max(0.0, group.last_sent + route.group_interval - now)
            group.flush_call = self.clock.callLater(delay, self._flush, group)
        self._forget_if_empty(group)

    def _forget_if_empty(self, group: _Group) -> None:
        if not group.alerts and not group.new and group.flush_call is None and not group.eligible:
            if group.repeat_call is not None and group.repeat_call.active():
                group.repeat_call.cancel()
            self.groups.pop(group.key, None)

    def _firing_now(self, group: _Group) -> list[AlertEvent]:
        now_ms = self.wall_clock_ms()
        return [a for a in group.alerts.values() if self.silenced(a.label_map, now_ms) is None]

    def _listed_context(self, group: _Group) -> list[AlertEvent]:
        """Firing alerts to list beside the new ones: not those another node
        is about to announce (it waits group_wait or group_interval)."""
        now = self.clock.seconds()
        settle = max(group.route.group_wait, group.route.group_interval)
        for fp, since in list(group.foreign.items()):
            if now - since > settle:
                del group.foreign[fp]
        return [a for a in self._firing_now(group) if a.fingerprint not in group.foreign]

    def _flush(self, group: _Group) -> None:
        group.flush_call = None
        new, group.new = group.new, {}
        if new:
            alerts = {a.fingerprint: a for a in self._listed_context(group)}
            alerts.update(new)
            ordered = sorted(alerts.values(), key=lambda a: (a.state != FIRING, a.starts_at_ms, a.fingerprint))
            key = dedup_key(group.channel, group.key, *sorted(e.event_key for e in new.values()))
            self._send(
                build_notice(group.channel, group.key, group.labels, ordered, self.base_url, key, self.max_alerts)
            )
            group.last_sent = self.clock.seconds()
        self._schedule_repeat(group)
        self._forget_if_empty(group)

    def _schedule_repeat(self, group: _Group) -> None:
        if group.repeat_call is not None and group.repeat_call.active():
            group.repeat_call.cancel()
        group.repeat_call = None
        if group.alerts:
            group.repeat_call = self.clock.callLater(self.repeat_for(group.channel, group.route), self._repeat, group)

    def _repeat(self, group: _Group) -> None:
        group.repeat_call = None
        firing = sorted(self._firing_now(group), key=lambda a: (a.starts_at_ms, a.fingerprint))
        if firing:
            # Nodes agree on the key within one repeat period (wall clock).
            period_ms = int(self.repeat_for(group.channel, group.route) * 1000)
            slot = str(self.wall_clock_ms() // max(1, period_ms))
            key = dedup_key(group.channel, group.key, "repeat", slot, *sorted(a.event_key for a in firing))
            self._send(
                build_notice(
                    group.channel, group.key, group.labels, firing, self.base_url, key, self.max_alerts, kind="repeat"
                )
            )
            group.eligible.update(a.fingerprint for a in firing)  # announced now (e.g. after its silence ended)
        self._schedule_repeat(group)
        self._forget_if_empty(group)

    def _send(self, notice: Notice) -> None:
        self.enqueue(notice).addErrback(
            lambda f: self.log.failure(
                "could not write a notice for {channel} to the outbox", f, channel=notice.channel
            )
        )

    def flush_waiting(self) -> None:
        """Send every group that is waiting (group_wait/group_interval) now."""
        for group in list(self.groups.values()):
            if group.flush_call is not None and group.flush_call.active():
                group.flush_call.cancel()
                self._flush(group)

    def stop(self) -> None:
        for group in list(self.groups.values()):
            for call in (group.flush_call, group.repeat_call):
                if call is not None and call.active():
                    call.cancel()
        self.groups.clear()
