"""Alert rules and notifications: `[rules]` lines and `rule_set` dicts are
validated (ValueError naming the rule / ProtocolError bad_message), the
engine fires only after a condition held for `for` seconds of sample time,
resolves with hysteresis at `clear` and does not flap, and the notification
center publishes raises and idempotent acknowledgements on an InMemoryBus."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred

from dashd.alerting.engine import AlertRule, NotificationCenter, RuleEngine, rule_from_config, rule_from_dict
from dashd.collect.collector import Sample
from dashd.errors import ProtocolError
from dashd.settings import AlertRuleConfig, ConfigError
from dashd.stream.bus import METRICS_TOPIC, NOTIFICATIONS_TOPIC, InMemoryBus
from dashd.tap import rule_from_config_or_exit
from fakes import FakeStore

KNOWN = ("cpu_usage", "memory_usage", "disk_usage", "load_1")
NOW_MS = 1_764_151_200_000  # 2025-11-26T10:00:00Z


def result_of(d: Deferred):
    """The result of a Deferred that has already fired (no reactor needed)."""
    results, failures = [], []
    d.addCallbacks(results.append, failures.append)
    if failures:
        failures[0].raiseException()
    assert results, "the Deferred has not fired"
    return results[0]


# ----- [rules] lines


def test_a_full_rules_line_parses():
    rule = rule_from_config(AlertRuleConfig("cpu_high", "cpu_usage > 90 for 30s level=critical clear=85"), KNOWN)
    assert rule == AlertRule("cpu_high", "cpu_usage", ">", 90.0, 30.0, "critical", 85.0, True)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("memory_usage >= 95", AlertRule("r", "memory_usage", ">=", 95.0)),
        ("load_1<0.5 for 2m", AlertRule("r", "load_1", "<", 0.5, 120.0)),
        ("disk_usage <= -1 for 10 enabled=off", AlertRule("r", "disk_usage", "<=", -1.0, 10.0, enabled=False)),
    ],
)
def test_optional_parts_of_a_rules_line_take_their_defaults(spec, expected):
    assert rule_from_config(AlertRuleConfig("r", spec), KNOWN) == expected


@pytest.mark.parametrize(
    "spec, complaint",
    [
        ("cpu_usage is high", "expected 'METRIC OP THRESHOLD"),
        ("cpu_usage = 90", "expected 'METRIC OP THRESHOLD"),
        ("gpu_usage > 90", "unknown metric 'gpu_usage'"),
        ("cpu_usage > 90 level=panic", "'level' must be one of info, warning, critical"),
        ("cpu_usage > 90 clear=lots", "clear must be a number"),
        ("cpu_usage > 90 colour=red", "unknown option 'colour=red'"),
        ("cpu_usage > 90 for 2d", "'for' must be a duration from 0 to 1d"),
        ("cpu_usage > 90 for soon", "'for' must be a duration from 0 to 1d"),
        ("cpu_usage > 9.9.9", "threshold must be a number"),
        ("cpu_usage > 90 enabled=ture", "enabled must be true or false"),
    ],
)
def test_a_bad_rules_line_is_a_value_error_naming_the_rule(spec, complaint):
    with pytest.raises(ValueError) as caught:
        rule_from_config(AlertRuleConfig("cpu_high", spec), KNOWN)
    text = str(caught.value)
    assert text.startswith("rules.cpu_high: ")
    assert complaint in text
    assert "\n" not in text


def test_a_bad_rules_line_stops_the_daemon_with_a_config_error_for_that_rule():
    with pytest.raises(ConfigError) as caught:
        rule_from_config_or_exit(AlertRuleConfig("cpu_high", "gpu_usage > 90"), KNOWN)
    assert caught.value.key == "rules.cpu_high"
    assert "unknown metric 'gpu_usage'" in str(caught.value)


# ----- rule_set dicts


VALID_RULE = {
    "name": "cpu_high",
    "metric": "cpu_usage",
    "op": ">",
    "threshold": 90,
    "for": 30,
    "level": "warning",
    "clear": 85,
    "enabled": True,
}


def test_a_valid_rule_dict_round_trips_through_as_dict():
    rule = rule_from_dict(VALID_RULE, KNOWN)
    assert rule == AlertRule("cpu_high", "cpu_usage", ">", 90.0, 30.0, "warning", 85.0, True)
    assert rule_from_dict(rule.as_dict(), KNOWN) == rule


def test_for_may_be_a_duration_string():
    assert rule_from_dict(dict(VALID_RULE, **{"for": "1m"}), KNOWN).for_seconds == 60.0


@pytest.mark.parametrize(
    "change",
    [
        {"name": ""},
        {"name": "has space"},
        {"name": "x" * 65},
        {"name": 7},
        {"metric": "gpu_usage"},
        {"metric": None},
        {"op": "=="},
        {"op": None},
        {"threshold": "90"},
        {"threshold": True},
        {"threshold": float("nan")},
        {"threshold": float("inf")},
        {"threshold": None},
        {"for": -1},
        {"for": 86_401},
        {"for": "forever"},
        {"for": True},
        {"for": [30]},
        {"level": "panic"},
        {"clear": "85"},
        {"clear": False},
        {"enabled": "yes"},
    ],
)
def test_an_invalid_rule_dict_is_a_bad_message(change):
    with pytest.raises(ProtocolError) as caught:
        rule_from_dict(dict(VALID_RULE, **change), KNOWN)
    assert caught.value.code == "bad_message"
    assert caught.value.message.startswith("rule_set: ")
    assert caught.value.close_code is None


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(ProtocolError) as caught:
        rule_from_dict(dict(VALID_RULE, metric="gpu_usage"), KNOWN)
    assert caught.value.data() == {
        "code": "bad_message",
        "message": "rule_set: unknown metric 'gpu_usage'",
        "details": {"known": list(KNOWN)},
    }


# ----- the engine


class Harness:
    """A RuleEngine with a real NotificationCenter on an InMemoryBus; the
    published notification bodies are collected."""

    def __init__(self, *rules: AlertRule) -> None:
        self.bus = InMemoryBus()
        self.published: list[dict] = []
        self.bus.subscribe(NOTIFICATIONS_TOPIC, lambda topic, message: self.published.append(message))
        self.center = NotificationCenter(self.bus, None, wall_clock_ms=lambda: NOW_MS)
        self.engine = RuleEngine(self.center)
        self.engine.replace_rules(rules)

    def feed(self, seconds: float, value: float, host: str = "web-1", metric: str = "cpu_usage") -> None:
        self.engine.evaluate(Sample(host, NOW_MS + int(seconds * 1000), {metric: value}))

    def states(self) -> list[tuple[str, str, str]]:
        return [(m["data"]["state"], m["data"]["level"], m["data"]["source"]) for m in self.published]


CPU_HIGH = AlertRule("cpu_high", "cpu_usage", ">", 90, 30, "critical", 85)


def test_a_rule_fires_only_after_the_condition_held_for_its_for_time():
    harness = Harness(CPU_HIGH)
    for seconds in (0, 10, 20, 29.999):
        harness.feed(seconds, 95)
    assert harness.published == []
    harness.feed(30, 95)
    assert harness.states() == [("firing", "critical", "rule:cpu_high")]
    assert harness.engine.is_firing("cpu_high", "web-1")
    body = harness.published[0]["data"]
    assert body["title"] == "cpu_usage > 90 on web-1"
    assert body["message"] == "cpu_high: cpu_usage > 90 for 30s (now 95)"


def test_dipping_below_the_threshold_restarts_the_hold_time():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.feed(20, 80)
    harness.feed(25, 95)
    harness.feed(50, 95)
    assert harness.published == []
    harness.feed(55, 95)
    assert harness.states() == [("firing", "critical", "rule:cpu_high")]


def test_a_firing_rule_resolves_only_below_its_clear_threshold():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.feed(30, 95)
    for seconds, value in ((31, 89), (32, 86), (33, 85.5)):  # under the threshold, over clear
        harness.feed(seconds, value)
    assert len(harness.published) == 1
    harness.feed(34, 85)  # not > 85: cleared
    assert harness.states() == [("firing", "critical", "rule:cpu_high"), ("resolved", "info", "rule:cpu_high")]
    assert not harness.engine.is_firing("cpu_high", "web-1")


def test_a_value_hovering_around_the_threshold_does_not_flap():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.feed(30, 95)
    for second in range(31, 120):
        harness.feed(second, 91 if second % 2 else 89)
    assert harness.states() == [("firing", "critical", "rule:cpu_high")]


def test_after_resolving_the_rule_needs_the_full_hold_time_again():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.feed(30, 95)
    harness.feed(31, 50)
    harness.feed(32, 95)
    harness.feed(61, 95)
    assert [state for state, _, _ in harness.states()] == ["firing", "resolved"]
    harness.feed(62, 95)
    assert [state for state, _, _ in harness.states()] == ["firing", "resolved", "firing"]


def test_a_below_rule_clears_above_its_clear_threshold():
    harness = Harness(AlertRule("load_low", "load_1", "<", 1.0, 0, "info", 2.0))
    harness.feed(0, 0.5, metric="load_1")
    harness.feed(1, 1.5, metric="load_1")
    assert [state for state, _, _ in harness.states()] == ["firing"]
    harness.feed(2, 2.0, metric="load_1")
    assert [state for state, _, _ in harness.states()] == ["firing", "resolved"]


def test_without_clear_a_rule_resolves_when_the_condition_stops():
    harness = Harness(AlertRule("cpu_high", "cpu_usage", ">", 90, 0))
    harness.feed(0, 91)
    harness.feed(1, 90)
    assert [state for state, _, _ in harness.states()] == ["firing", "resolved"]


def test_hosts_are_tracked_separately():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95, host="a")
    harness.feed(15, 95, host="b")
    harness.feed(30, 95, host="a")
    harness.feed(30, 95, host="b")
    assert [m["data"]["title"] for m in harness.published] == ["cpu_usage > 90 on a"]


def test_disabled_rules_and_samples_without_the_metric_are_ignored():
    harness = Harness(
        AlertRule("off", "cpu_usage", ">", 0, 0, enabled=False), AlertRule("mem", "memory_usage", ">", 0, 0)
    )
    harness.feed(0, 50)
    assert harness.published == []


def test_replacing_a_rule_forgets_its_pending_hold_time():
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.engine.set_rule(CPU_HIGH)
    harness.feed(30, 95)
    assert harness.published == []
    harness.engine.delete_rule("cpu_high")
    harness.feed(100, 95)
    assert harness.published == [] and harness.engine.rules == {}


def test_an_attached_engine_evaluates_samples_from_the_bus():
    harness = Harness(AlertRule("cpu_high", "cpu_usage", ">", 90, 0))
    harness.engine.attach(harness.bus)
    harness.bus.publish(METRICS_TOPIC, Sample("web-1", NOW_MS, {"cpu_usage": 99.0}))
    assert [state for state, _, _ in harness.states()] == ["firing"]


# ----- notifications


def make_center(store=None) -> tuple[NotificationCenter, list[dict]]:
    bus = InMemoryBus()
    published: list[dict] = []
    bus.subscribe(NOTIFICATIONS_TOPIC, lambda topic, message: published.append(message))
    return NotificationCenter(bus, store, wall_clock_ms=lambda: NOW_MS), published


def test_raising_publishes_the_notification_on_the_bus():
    center, published = make_center()
    body = center.raise_notification("warning", "Disk nearly full", "95% used", "admin:alice")
    assert body["id"].startswith("n-")
    assert published == [
        {
            "type": "notification",
            "timestamp_ms": NOW_MS,
            "data": {
                "id": body["id"],
                "level": "warning",
                "title": "Disk nearly full",
                "message": "95% used",
                "timestamp": "2025-11-26T10:00:00.000Z",
                "source": "admin:alice",
                "acknowledged_by": None,
                "acknowledged_at": None,
            },
        }
    ]


def test_notifications_have_unique_ids_and_bounded_text():
    center, _ = make_center()
    first = center.raise_notification("info", "t" * 500, "m" * 5000, "system")
    second = center.raise_notification("info", "t", "m", "system")
    assert first["id"] != second["id"]
    assert (len(first["title"]), len(first["message"])) == (200, 2000)


def test_an_unknown_level_is_refused():
    center, published = make_center()
    with pytest.raises(ValueError):
        center.raise_notification("fatal", "t", "m", "system")
    assert published == []


def test_acknowledging_publishes_once_and_is_idempotent():
    center, published = make_center()
    body = center.raise_notification("critical", "t", "m", "system")
    ack = result_of(Deferred.fromCoroutine(center.acknowledge(body["id"], "alice")))
    assert ack == {"id": body["id"], "acknowledged_by": "alice", "acknowledged_at": "2025-11-26T10:00:00.000Z"}
    again = result_of(Deferred.fromCoroutine(center.acknowledge(body["id"], "bob")))
    assert again == ack  # the first acknowledgement stands
    assert [m["type"] for m in published] == ["notification", "notification_ack"]
    assert published[1]["data"] == ack


def test_acknowledging_an_unknown_id_is_not_found():
    center, published = make_center(FakeStore({}))
    with pytest.raises(ProtocolError) as caught:
        result_of(Deferred.fromCoroutine(center.acknowledge("n-missing", "alice")))
    assert caught.value.code == "not_found"
    assert published == []


def test_an_older_notification_is_found_in_the_store_and_acknowledged():
    stored = {
        "id": "n-old",
        "level": "info",
        "title": "t",
        "message": "m",
        "timestamp": "…",
        "source": "system",
        "acknowledged_by": None,
        "acknowledged_at": None,
    }
    center, published = make_center(FakeStore({"n-old": stored}))
    ack = result_of(Deferred.fromCoroutine(center.acknowledge("n-old", "alice")))
    assert ack["acknowledged_by"] == "alice"
    assert [(m["type"], m["data"]["id"]) for m in published] == [("notification_ack", "n-old")]


def test_recent_lists_newest_first_and_can_skip_acknowledged():
    center, _ = make_center()
    ids = [center.raise_notification("info", f"t{i}", "m", "system")["id"] for i in range(3)]
    result_of(Deferred.fromCoroutine(center.acknowledge(ids[2], "alice")))
    assert [b["id"] for b in center.recent(10, unacknowledged=False)] == [ids[2], ids[1], ids[0]]
    assert [b["id"] for b in center.recent(10, unacknowledged=True)] == [ids[1], ids[0]]
    assert [b["id"] for b in center.recent(1, unacknowledged=False)] == [ids[2]]


def test_active_alerts_list_what_fires_now_since_when_and_forget_resolved_ones():
    """The active-alerts view reads the engine's public state, not a feed."""
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95, host="web-2")
    harness.feed(30, 95, host="web-2")
    harness.feed(5, 95)
    assert harness.engine.pending_hosts("cpu_high") == ["web-1"]
    harness.feed(40, 97)
    alerts = harness.engine.active_alerts()
    assert [(a.rule, a.host, a.level, a.since_ms - NOW_MS, a.value) for a in alerts] == [
        ("cpu_high", "web-2", "critical", 30_000, 95),
        ("cpu_high", "web-1", "critical", 40_000, 97),
    ]
    assert alerts[0].notification_id == harness.published[0]["data"]["id"]
    assert harness.engine.firing_hosts("cpu_high") == ["web-1", "web-2"]
    assert harness.engine.pending_hosts("cpu_high") == []
    harness.feed(41, 50, host="web-2")
    assert [a.host for a in harness.engine.active_alerts()] == ["web-1"]
    assert alerts[1].as_dict()["since"].endswith("Z")
    harness.engine.delete_rule("cpu_high")
    assert harness.engine.active_alerts() == []


def test_deleting_or_changing_a_firing_rule_closes_its_alert_with_a_resolved_notification():
    """Otherwise every active-alerts view would keep showing an alert nothing watches any more."""
    harness = Harness(CPU_HIGH)
    harness.feed(0, 95)
    harness.feed(30, 95)
    harness.engine.set_rule(CPU_HIGH)
    assert harness.states()[-1] == ("resolved", "info", "rule:cpu_high")
    assert "rule changed" in harness.published[-1]["data"]["message"]
    harness.feed(31, 95)
    harness.feed(61, 95)
    harness.engine.delete_rule("cpu_high")
    assert [s for s, _, _ in harness.states()] == ["firing", "resolved", "firing", "resolved"]
    assert "rule deleted" in harness.published[-1]["data"]["message"]
    harness.engine.delete_rule("cpu_high")  # nothing fires: nothing to say
    assert len(harness.published) == 4
