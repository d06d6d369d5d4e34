"""Domain tests (no I/O) for labelled series on the stream: selector
matching in subscriptions, the catalogue's families, and the folding of the
collectors' readings into the host sample."""

from __future__ import annotations

import pytest

from dashd.collect.collector import Sample
from dashd.collect.families import describe_series, is_collector_series
from dashd.collect.series_feed import SeriesFolding
from dashd.collect.sources import SeriesSample
from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
from dashd.stream.catalogue import SeriesCatalogue
from dashd.stream.selection import SelectorError, check_selectors, select, split_selectors, unknown_selectors
from dashd.stream.streams import SubscriptionFilter

ROOT = 'disk_used_percent{fstype="ext4",mount="/"}'
VAR = 'disk_used_percent{fstype="xfs",mount="/var"}'
ETH0 = 'net_rx_bytes_per_second{iface="eth0"}'
LO = 'net_rx_bytes_per_second{iface="lo"}'
NGINX = 'cgroup_cpu_percent{cgroup="/system.slice/nginx.service",unit="nginx.service"}'
SSHD = 'cgroup_cpu_percent{cgroup="/system.slice/ssh.service",unit="ssh.service"}'
NAMES = ("cpu_usage", "cpu_core_0", "memory_usage", ROOT, VAR, ETH0, LO, NGINX, SSHD)


@pytest.mark.parametrize(
    "patterns, expected",
    [
        (["*"], list(NAMES)),
        (["cpu_usage"], ["cpu_usage"]),
        (["cpu_*"], ["cpu_usage", "cpu_core_0"]),
        (['disk_used_percent{mount="/"}'], [ROOT]),
        (["disk_used_percent"], [ROOT, VAR]),
        (['net_*{iface!="lo"}'], [ETH0]),
        (['cgroup_cpu_percent{unit=~"nginx.*"}'], [NGINX]),
        (['cgroup_cpu_percent{unit=*"ss*"}'], [SSHD]),
        (['disk_used_percent{mount="/home"}'], []),
        (["memory_usage", 'net_rx_bytes_per_second{iface="lo"}'], ["memory_usage", LO]),
    ],
)
def test_selectors_choose_series_by_family_glob_and_labels(patterns, expected):
    assert select(patterns, NAMES) == expected


def test_subscription_filter_sends_only_the_selected_labelled_series():
    subscription = SubscriptionFilter(['disk_used_percent{mount="/"}', "cpu_usage"])
    assert subscription.selected(NAMES) == ("cpu_usage", ROOT)
    assert SubscriptionFilter(["*"]).selected(NAMES) is None  # everything: the shared frame


@pytest.mark.parametrize(
    "pattern", ['disk{mount="/"', "disk{mount=/}", 'disk{mount~"x"}', "cpu usage", 'x{a=~"("}', ""]
)
def test_malformed_selectors_are_refused_with_the_reason(pattern):
    with pytest.raises(SelectorError) as caught:
        check_selectors(["cpu_usage", pattern])
    assert caught.value.selector == pattern and str(caught.value)


def test_a_known_or_collector_family_is_known_even_if_no_series_matches_yet():
    assert unknown_selectors(
        ['disk_used_percent{mount="/home"}', 'nope{a="b"}', "nope_*", "cpu_usage", "sensor_fan_rpm", 'agent_x{a="b"}'],
        NAMES + ("agent_x",),
    ) == ['nope{a="b"}', "nope_*"]


def test_query_string_selector_lists_split_outside_braces_and_quotes():
    assert split_selectors('cpu_usage,disk_used_percent{mount="/",fstype="ext4"},x{a="b,c\\"}"},') == [
        "cpu_usage",
        'disk_used_percent{mount="/",fstype="ext4"}',
        'x{a="b,c\\"}"}',
    ]


def test_catalogue_families_list_label_values_and_forget_series_not_seen():
    catalogue = SeriesCatalogue(forget_after_ms=600_000)
    catalogue.observe("h", 1_000, {"cpu_usage": 1.0, ROOT: 41.2, ETH0: 5.0, "open_fds": 9.0})
    catalogue.observe("h", 2_000, {VAR: 10.0})
    families = catalogue.families(exclude=["cpu_usage"])
    assert [f["name"] for f in families] == ["disk_used_percent", "net_rx_bytes_per_second", "open_fds"]
    assert families[0] == {
        "name": "disk_used_percent",
        "unit": "%",
        "kind": "gauge",
        "description": "space used, as df computes it",
        "labels": {"fstype": ["ext4", "xfs"], "mount": ["/", "/var"]},
    }
    assert families[2]["labels"] == {}
    catalogue.observe("h", 1_000 + 600_000 + 60_000, {"cpu_usage": 2.0, VAR: 11.0})
    assert set(catalogue.names()) == {"cpu_usage", VAR}
    assert ("h", VAR, 11.0) in set(catalogue.latest())


def test_collector_readings_ride_in_the_next_host_sample_after_the_seed_metrics():
    bus = InMemoryBus()
    seen: list[Sample] = []
    bus.subscribe(METRICS_TOPIC, lambda topic, sample: seen.append(sample))
    feed = SeriesFolding(bus, "h")
    feed.publish("series", SeriesSample("h", 900, "filesystems", {ROOT: 41.0}))
    feed.publish("series", SeriesSample("h", 950, "filesystems", {ROOT: 41.2}))  # the newest reading wins
    feed.publish(METRICS_TOPIC, Sample("h", 1_000, {"cpu_usage": 3.0, "memory_usage": 50.0}))
    feed.publish(METRICS_TOPIC, Sample("h", 2_000, {"cpu_usage": 4.0}))
    assert [list(s.metrics.items()) for s in seen] == [
        [("cpu_usage", 3.0), ("memory_usage", 50.0), (ROOT, 41.2)],
        [("cpu_usage", 4.0)],
    ]
    assert seen[0].timestamp_ms == 1_000 and feed.pending == 0


def test_families_describe_the_store_registry_and_labelled_rule_metrics():
    assert describe_series(ETH0) == ("B/s", "rate")
    assert describe_series("cpu_usage") == ("%", "gauge")
    assert is_collector_series(ROOT) and not is_collector_series('nope{a="b"}') and not is_collector_series(3)


def test_an_alert_rule_watches_a_labelled_series_and_fires_on_it():
    from dashd.alerting.engine import NotificationCenter, RuleEngine, rule_from_dict
    from dashd.errors import ProtocolError
    from dashd.stream.bus import NOTIFICATIONS_TOPIC

    rule = rule_from_dict(
        {"name": "root-full", "metric": ROOT, "op": ">", "threshold": 90, "for": 0, "level": "critical"}, ("cpu_usage",)
    )
    with pytest.raises(ProtocolError):
        rule_from_dict(
            {
                "name": "x",
                "metric": 'disk_used_percent{mount=~"/"}',
                "op": ">",
                "threshold": 1,
                "for": 0,
                "level": "info",
            },
            ("cpu_usage",),
        )  # a selector is not a series name
    bus = InMemoryBus()
    published: list[dict] = []
    bus.subscribe(NOTIFICATIONS_TOPIC, lambda topic, message: published.append(message))
    engine = RuleEngine(NotificationCenter(bus, None, wall_clock_ms=lambda: 1_000))
    engine.replace_rules([rule])
    engine.evaluate(Sample("h", 1_000, {"cpu_usage": 1.0, VAR: 99.0}))
    assert not published
    engine.evaluate(Sample("h", 2_000, {"cpu_usage": 1.0, ROOT: 95.0}))
    assert engine.is_firing("root-full", "h") and published[-1]["data"]["level"] == "critical"


def test_families_of_collectors_that_have_not_read_yet_are_announced_without_labels():
    catalogue = SeriesCatalogue()
    feed = SeriesFolding(InMemoryBus(), "h")
    expected = lambda: [
        f for f, c in (("sensor_fan_rpm", "sensors"), ("disk_used_percent", "filesystems")) if not feed.has_read(c)
    ]
    assert [f["labels"] for f in catalogue.families(expected=expected())] == [{}, {}]
    feed.publish("series", SeriesSample("h", 1, "sensors", {}))  # a host without fans: nothing to show
    feed.publish("series", SeriesSample("h", 1, "filesystems", {ROOT: 41.0}))
    feed.publish(METRICS_TOPIC, Sample("h", 2, {"cpu_usage": 1.0}))
    catalogue.observe("h", 2, {"cpu_usage": 1.0, ROOT: 41.0})
    families = catalogue.families(exclude=["cpu_usage"], expected=expected())
    assert [(f["name"], f["labels"]) for f in families] == [("disk_used_percent", {"fstype": ["ext4"], "mount": ["/"]})]
