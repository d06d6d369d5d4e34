"""Alert delivery's domain, without I/O: label matchers, routes and their
INI sections, grouping on an injected clock (group_wait batches a burst,
group_interval spaces updates, repeat_interval re-sends, resolved once,
silenced alerts not announced), channel validation (one clear line), SSRF
address checks, the retry back-off, silences, and the RuleEngine's alert
events and notification marks."""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.internet.defer import succeed

from dashd.alerting.channels import ChannelError, merge_secrets, parse_channel, prepare_api_channel
from dashd.alerting.engine import AlertRule, NotificationCenter, RuleEngine, rule_from_config, rule_from_dict
from dashd.alerting.model import FIRING, RESOLVED, AlertEvent, alert_labels, dashboard_link, parse_matcher
from dashd.alerting.netguard import parse_networks, refusal
from dashd.alerting.outbox import RetryPolicy
from dashd.alerting.routing import Grouper, Route, RouteError, check_routes, parse_route
from dashd.alerting.silences import SilenceBook, silence_from_request
from dashd.collect.collector import Sample
from dashd.errors import ProtocolError
from dashd.settings import AlertRuleConfig
from dashd.stream.bus import InMemoryBus

T0 = 1_764_151_200_000
KNOWN = ("cpu_usage", "memory_usage")


def event(rule="cpu_high", host="web1", state=FIRING, level="warning", at=T0, ends=None, **labels) -> AlertEvent:
    return AlertEvent(
        rule,
        host,
        state,
        level,
        alert_labels(rule, host, level, labels.items()),
        f"{rule} on {host}",
        f"{rule} is bad on {host}",
        at,
        ends,
        95.0,
    )


# ----- matchers and routes


@pytest.mark.parametrize(
    "text, labels, expected",
    [
        ("host=web1", {"host": "web1"}, True),
        ("host=web1", {"host": "web2"}, False),
        ("host!=web1", {"host": "web2"}, True),
        ("host=~web.*", {"host": "web12"}, True),
        ("host=~web", {"host": "web12"}, False),  # anchored, as Alertmanager's
        ("team!~db|ops", {"team": "web"}, True),
        ("team=", {}, True),  # a missing label is the empty string
    ],
)
def test_matchers_follow_alertmanager_semantics(text, labels, expected):
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("host", "must look like name=value"),
        ("9host=a", "must look like name=value"),
        ("host=~(", "bad regular expression"),
    ],
)
def test_a_bad_matcher_says_what_is_wrong(text, complaint):
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(")):
        parse_matcher(text)


def test_a_route_section_parses_into_a_route():
    route = parse_route(
        "db",
        {
            "match": "team=db, host=~db.*",
            "level": "warning",
            "channels": "mail, slack",
            "group_by": "alertname, host",
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "2h",
            "stop": "true",
        },
    )
    assert (
        route.channels,
        route.min_level,
        route.group_by,
        route.group_wait,
        route.group_interval,
        route.repeat_interval,
        route.stop,
    ) == (("mail", "slack"), "warning", ("alertname", "host"), 30, 300, 7200, True)
    assert [str(m) for m in route.matchers] == ["team=db", "host=~db.*"]
    assert route.matches(event(team="db", host="db1"))
    assert not route.matches(event(team="db", host="db1", level="info"))
    assert not route.matches(event(team="web", host="db1"))


@pytest.mark.parametrize(
    "section, complaint",
    [
        ({}, "channels is required"),
        ({"channels": "x", "level": "loud"}, "level must be one of"),
        ({"channels": "x", "group_wait": "forever"}, "group_wait must be a duration"),
        ({"channels": "x", "colour": "red"}, "unknown option 'colour'"),
        ({"channels": "x", "match": "host"}, "must look like name=value"),
    ],
)
def test_a_bad_route_section_is_one_line_naming_the_route(section, complaint):
    with pytest.raises(RouteError) as caught:
        parse_route("r1", section)
    assert str(caught.value).startswith("route r1: ") and complaint in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_route_naming_an_unknown_channel_is_refused():
    with pytest.raises(RouteError, match="no channel named 'pager'"):
        check_routes((Route("r", ("pager",)),), {"mail"})


# ----- grouping


class Collected:
    def __init__(self):
        self.notices = []

    def __call__(self, notice):
        self.notices.append(notice)
        return succeed(True)


def grouper(clock, silences=None, **kw):
    sink = Collected()
    book = silences or SilenceBook()
    g = Grouper(clock, sink, "https://dash.example", book.silenced_by, lambda: T0 + int(clock.seconds() * 1000), **kw)
    return g, sink


ROUTE = Route("default", ("ops",), group_wait=10, group_interval=60, repeat_interval=3600)


def test_alerts_within_group_wait_go_out_as_one_message():
    clock = task.Clock()
    g, sink = grouper(clock)
    for i in range(3):
        g.add(ROUTE, "ops", event(host=f"web{i}"), owned=True, silenced=False)
        clock.advance(2)
    assert sink.notices == []
    clock.advance(5)
    assert len(sink.notices) == 1
    body = sink.notices[0].body
    assert body["status"] == "firing" and body["counts"] == {"firing": 3, "resolved": 0}
    assert body["groupLabels"] == {"alertname": "cpu_high"}
    assert sorted(a["labels"]["host"] for a in body["alerts"]) == ["web0", "web1", "web2"]


def test_a_flood_of_a_thousand_alerts_is_a_few_bounded_messages():
    clock = task.Clock()
    g, sink = grouper(clock, max_alerts=50)
    for i in range(1000):
        g.add(ROUTE, "ops", event(host=f"h{i}", at=T0 + i * 60), owned=True, silenced=False)
        clock.advance(0.06)  # 1,000 alerts in a minute
    clock.advance(120)
    assert 1 <= len(sink.notices) <= 3
    assert sum(n.body["counts"]["firing"] for n in sink.notices[:1]) >= 100
    assert all(len(n.body["alerts"]) <= 50 for n in sink.notices)
    assert sink.notices[0].body["truncatedAlerts"] == sink.notices[0].body["counts"]["firing"] - 50


def test_changes_after_the_first_message_wait_for_group_interval():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=False)
    clock.advance(10)
    g.add(ROUTE, "ops", event(host="b"), owned=True, silenced=False)
    clock.advance(59)
    assert len(sink.notices) == 1
    clock.advance(1)
    assert len(sink.notices) == 2
    assert sink.notices[1].body["counts"]["firing"] == 2  # the group's firing alerts are all listed


def test_a_resolved_alert_is_announced_once_and_firing_ones_repeat():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=False)
    g.add(ROUTE, "ops", event(host="b"), owned=True, silenced=False)
    clock.advance(10)
    g.add(ROUTE, "ops", event(host="a", state=RESOLVED, ends=T0 + 30_000), owned=True, silenced=False)
    clock.advance(60)
    resolved = sink.notices[1].body
    assert [(a["labels"]["host"], a["status"]) for a in resolved["alerts"]] == [("b", "firing"), ("a", "resolved")]
    clock.advance(3600)
    repeat = sink.notices[2].body
    assert repeat["kind"] == "repeat" and [a["labels"]["host"] for a in repeat["alerts"]] == ["b"]
    assert len({n.dedup_key for n in sink.notices}) == 3


def test_an_alert_that_clears_before_its_group_went_out_is_not_announced():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=False)
    g.add(ROUTE, "ops", event(host="a", state=RESOLVED, ends=T0 + 1000), owned=True, silenced=False)
    clock.advance(3700)
    assert sink.notices == []
    assert g.groups == {}


def test_a_silenced_alert_is_not_announced_and_its_resolve_neither():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=True)
    clock.advance(30)
    g.add(ROUTE, "ops", event(host="a", state=RESOLVED, ends=T0 + 20_000), owned=True, silenced=True)
    clock.advance(3700)
    assert sink.notices == []


def test_an_event_another_node_owns_is_announced_there_and_only_listed_here_later():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=False, silenced=False)
    clock.advance(30)
    assert sink.notices == []  # the node that recorded it first sends it
    g.add(ROUTE, "ops", event(host="b"), owned=True, silenced=False)
    clock.advance(10)
    assert [a["labels"]["host"] for a in sink.notices[0].body["alerts"]] == ["b"]  # a: the other node's window
    g.add(ROUTE, "ops", event(host="b", state=RESOLVED, ends=T0 + 45_000), owned=True, silenced=False)
    clock.advance(60)
    assert [(a["labels"]["host"], a["status"]) for a in sink.notices[1].body["alerts"]] == [
        ("a", "firing"),
        ("b", "resolved"),
    ]  # a, long announced, is now context


# ----- silences


def test_a_silence_covers_matching_labels_only_while_active():
    silence = silence_from_request(
        {"matchers": [{"name": "host", "op": "=", "value": "web1"}], "duration_s": 3600, "comment": "maintenance"},
        "olga",
        T0,
    )
    book = SilenceBook()
    book.add(silence)
    assert book.silenced_by({"host": "web1"}, T0 + 1) == silence.id
    assert book.silenced_by({"host": "web2"}, T0 + 1) is None
    assert book.silenced_by({"host": "web1"}, T0 + 3_600_001) is None
    assert silence.as_dict(T0)["state"] == "active" and silence.created_by == "olga"


@pytest.mark.parametrize(
    "data, complaint",
    [
        ({"duration_s": 60, "comment": "x"}, "'matchers' must be a list"),
        ({"matchers": [{"name": "host", "value": "a"}], "duration_s": 60}, "'comment' is required"),
        ({"matchers": [{"name": "host", "value": "a"}], "comment": "x"}, "'ends_at_ms' must be a time"),
        (
            {"matchers": [{"name": "host", "value": "a"}], "comment": "x", "starts_at_ms": T0, "ends_at_ms": T0 - 1},
            "must end after it starts",
        ),
        ({"matchers": [{"name": "host", "op": "~", "value": "a"}], "comment": "x", "duration_s": 5}, "operator"),
    ],
)
def test_a_bad_silence_request_says_what_is_wrong(data, complaint):
    with pytest.raises(ValueError, match=complaint):
        silence_from_request(data, "olga", T0)


# ----- channels


def test_a_webhook_channel_keeps_header_values_secret():
    config = parse_channel(
        "slack",
        {
            "kind": "webhook",
            "url": "https://hooks.example/x",
            "format": "slack",
            "header.Authorization": "Bearer s3cret",
            "timeout": "5s",
        },
    )
    public = config.public()
    assert public["headers"] == ["Authorization"] and "s3cret" not in repr(public)
    assert "s3cret" not in repr(config)
    assert public["timeout"] == 5.0 and public["format"] == "slack"


def test_an_email_channel_keeps_its_password_secret_and_an_update_without_it_keeps_it():
    data = {
        "kind": "email",
        "host": "smtp.example",
        "username": "u",
        "password": "pw",
        "from": "d@example.com",
        "to": "a@example.com, b@example.com",
    }
    old = parse_channel("mail", data, source="api")
    assert old.public()["secrets"] == {"password": True} and "pw" not in repr(old.public())
    update = {k: v for k, v in data.items() if k != "password"}
    new = merge_secrets(parse_channel("mail", prepare_api_channel("mail", update), "api"), old, update)
    assert dict(new.secrets)["password"] == "pw" and new.option["to"] == ["a@example.com", "b@example.com"]


@pytest.mark.parametrize(
    "data, complaint",
    [
        ({"kind": "pager"}, "kind must be one of email, webhook, alertmanager"),
        ({"kind": "webhook"}, "url is required"),
        ({"kind": "webhook", "url": "ftp://x"}, "must be an http:// or https:// URL"),
        ({"kind": "webhook", "url": "https://u:p@x"}, "put credentials in a header"),
        ({"kind": "webhook", "url": "https://x", "format": "irc"}, "format must be one of"),
        ({"kind": "webhook", "url": "https://x", "timeout": "1h"}, "timeout must be a duration"),
        ({"kind": "webhook", "url": "https://x", "header.Bad Name": "v"}, "header name"),
        ({"kind": "webhook", "url": "https://x", "colour": "red"}, "unknown option 'colour'"),
        ({"kind": "email", "host": "h", "from": "d@x"}, "to must list"),
        ({"kind": "email", "host": "h", "from": "nobody", "to": "a@x"}, "from must be an e-mail address"),
        (
            {"kind": "email", "host": "h", "from": "d@x", "to": "a@x", "security": "none", "username": "u"},
            "refusing to send a password without TLS",
        ),
        ({"kind": "alertmanager", "url": "http://am:9093", "resend_interval": "1s"}, "resend_interval"),
    ],
)
def test_a_bad_channel_is_one_line_naming_it(data, complaint):
    with pytest.raises(ChannelError) as caught:
        parse_channel("c1", data)
    assert str(caught.value).startswith("channel c1: ") and complaint in str(caught.value)
    assert "\n" not in str(caught.value)


# ----- SSRF


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.1.1", "a private address"),
        ("172.16.0.1", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.64.0.1", "a private address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("0.0.0.0", "a private address"),
        ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
    ],
)
def test_internal_addresses_are_refused_as_targets(address, reason):
    assert refusal(address, ()) == reason or (reason is not None and refusal(address, ()) is not None)
    if reason is None:
        assert refusal(address, ()) is None


def test_an_allow_listed_network_is_accepted():
    allowed = parse_networks(["127.0.0.0/8", "10.0.0.0/8"])
    assert refusal("127.0.0.1", allowed) is None and refusal("10.9.9.9", allowed) is None
    assert refusal("192.168.0.1", allowed) == "a private address"
    assert refusal("169.254.169.254", allowed) == "a cloud metadata address"
    assert refusal("169.254.169.254", parse_networks(["169.254.0.0/16"])) == "a cloud metadata address"
    assert refusal("169.254.1.1", parse_networks(["169.254.0.0/16"])) is None


# ----- back-off


def test_the_retry_delay_grows_exponentially_with_jitter_up_to_the_maximum():
    policy = RetryPolicy(first=5, maximum=300)
    assert [policy.delay(n, 0.5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert policy.delay(1, 0.0) == 2.5 and policy.delay(1, 0.999) < 7.5
    assert policy.delay(20, 0.999) == 300


# ----- the rule engine's alert events


def test_rule_labels_come_from_the_rules_line_and_the_api():
    rule = rule_from_config(AlertRuleConfig("cpu_high", "cpu_usage > 90 label.team=db label.tier=1"), KNOWN)
    assert rule.labels == (("team", "db"), ("tier", "1"))
    assert rule.as_dict()["labels"] == {"team": "db", "tier": "1"}
    with pytest.raises(ProtocolError, match="'labels' must map"):
        rule_from_dict({"name": "r", "metric": "cpu_usage", "op": ">", "threshold": 1, "labels": {"host": "x"}}, KNOWN)


def test_the_engine_tells_observers_and_marks_silenced_notifications():
    bus = InMemoryBus()
    notifications = []
    bus.subscribe("notifications", lambda topic, message: notifications.append(message["data"]))
    book = SilenceBook()
    book.add(
        silence_from_request(
            {"matchers": [{"name": "host", "value": "quiet"}], "duration_s": 3600, "comment": "maintenance"},
            "olga",
            T0 - 1,
        )
    )
    engine = RuleEngine(NotificationCenter(bus, None, wall_clock_ms=lambda: T0), book)
    seen = []
    engine.add_observer(lambda e, silence: seen.append((e.host, e.state, e.starts_at_ms, e.ends_at_ms, silence)))
    engine.replace_rules([AlertRule("cpu_high", "cpu_usage", ">", 90, 0, "critical", labels=(("team", "db"),))])
    for host in ("loud", "quiet"):
        engine.evaluate(Sample(host, T0, {"cpu_usage": 95.0}))
        engine.evaluate(Sample(host, T0 + 5000, {"cpu_usage": 10.0}))
    assert [s[:4] for s in seen] == [
        ("loud", FIRING, T0, None),
        ("loud", RESOLVED, T0, T0 + 5000),
        ("quiet", FIRING, T0, None),
        ("quiet", RESOLVED, T0, T0 + 5000),
    ]
    assert [s[4] is not None for s in seen] == [False, False, True, True]
    assert [n["silenced"] for n in notifications] == [False, False, True, True]
    assert notifications[0]["labels"] == {"alertname": "cpu_high", "host": "loud", "severity": "critical", "team": "db"}


def test_the_dashboard_link_covers_the_alerts_time_range():
    assert dashboard_link("https://dash.example/", "web 1", T0, T0 + 60_000) == (
        f"https://dash.example/?from={T0 - 1_800_000}&to={T0 + 360_000}&host=web+1"
    )


def test_a_clean_stop_sends_groups_that_are_still_waiting():
    clock = task.Clock()
    g, sink = grouper(clock)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=False)
    clock.advance(3)
    g.flush_waiting()
    assert [a["labels"]["host"] for a in sink.notices[0].body["alerts"]] == ["a"]
    g.stop()
    assert g.groups == {} and clock.getDelayedCalls() == []


def test_a_maintenance_window_is_a_silence_that_starts_later():
    window = silence_from_request(
        {
            "matchers": [{"name": "alertname", "value": "disk_full"}],
            "starts_at_ms": T0 + 3_600_000,
            "ends_at_ms": T0 + 7_200_000,
            "comment": "backup window",
        },
        "olga",
        T0,
    )
    book = SilenceBook()
    book.add(window)
    labels = {"alertname": "disk_full", "host": "db1"}
    assert window.as_dict(T0)["state"] == "pending"
    assert book.silenced_by(labels, T0 + 3_599_999) is None
    assert book.silenced_by(labels, T0 + 3_600_000) == window.id
    assert book.silenced_by({"alertname": "cpu_high"}, T0 + 3_600_000) is None
    assert book.silenced_by(labels, T0 + 7_200_000) is None


def test_an_alert_still_firing_when_its_silence_ends_goes_out_at_the_next_repeat():
    clock = task.Clock()
    book = SilenceBook()
    silence = silence_from_request(
        {"matchers": [{"name": "host", "value": "a"}], "duration_s": 600, "comment": "maintenance"}, "olga", T0
    )
    book.add(silence)
    g, sink = grouper(clock, silences=book)
    g.add(ROUTE, "ops", event(host="a"), owned=True, silenced=True)
    clock.advance(700)
    assert sink.notices == []  # silenced: nothing sent
    clock.advance(3600)
    [notice] = sink.notices
    assert notice.body["kind"] == "repeat" and [a["labels"]["host"] for a in notice.body["alerts"]] == ["a"]


def test_alert_links_use_alert_dashboard_url_then_public_url_then_the_first_listener():
    """Links in alert messages point where users open the dashboard."""
    from dashd.alerting.config import dashboard_url
    from dashd.settings import Settings

    assert dashboard_url(Settings(listen=("tcp:9000",), host_name="box")).endswith(":9000")
    assert (
        dashboard_url(Settings(listen=("tcp:9000",), public_url="https://dash.example.com"))
        == "https://dash.example.com"
    )
    assert (
        dashboard_url(
            Settings(public_url="https://dash.example.com", alert_dashboard_url="https://alerts.example.com/")
        )
        == "https://alerts.example.com"
    )
