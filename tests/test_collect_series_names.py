"""Labelled series names: one canonical text form (labels sorted, values
escaped as Prometheus escapes them) that parses back to the same value, and
selectors with family globs and label matchers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashd.collect.series_names import (
    LabelMatcher,
    SeriesName,
    SeriesNameError,
    SeriesSelector,
    parse_series,
    series,
)


def test_labels_are_sorted_in_the_canonical_form():
    assert series("disk_used_percent", mount="/var", fstype="ext4") == 'disk_used_percent{fstype="ext4",mount="/var"}'


def test_a_series_without_labels_is_its_family_so_seed_metric_names_are_series_names():
    assert series("cpu_usage") == "cpu_usage"
    assert parse_series("cpu_usage") == SeriesName("cpu_usage")


def test_label_values_are_escaped_like_prometheus():
    text = series("cgroup_pids", cgroup='/a "b"\\c\nd')
    assert text == 'cgroup_pids{cgroup="/a \\"b\\"\\\\c\\nd"}'
    assert parse_series(text).label("cgroup") == '/a "b"\\c\nd'


def test_parse_accepts_any_label_order_and_spacing_and_gives_the_canonical_form():
    assert (
        str(parse_series('net_rx_bytes_per_second{ iface = "eth0" , host="a"}'))
        == 'net_rx_bytes_per_second{host="a",iface="eth0"}'
    )


@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(max_size=20), max_size=4))
def test_format_then_parse_is_the_identity(labels):
    name = SeriesName.of("family_x", labels)
    assert parse_series(str(name)) == name


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "non-empty"),
        ("9lives", "invalid family"),
        ('disk{mount="/"', "end with"),
        ("disk{mount=/}", "double-quoted"),
        ('disk{mount="/}', "unterminated"),
        ('disk{mount="/" fstype="x"}', "expected ','"),
        ('disk{mount="\\q"}', "invalid escape"),
        ('disk{mount=~"/.*"}', 'label="value" only'),
        ('disk{mount="/",mount="/var"}', "twice"),
        ('disk{1x="a"}', "label name"),
        ("disk_*", "invalid family"),
    ],
)
def test_malformed_names_are_refused_with_the_reason(text, why):
    with pytest.raises(SeriesNameError, match=why):
        parse_series(text)


def test_unsorted_labels_cannot_be_built_directly():
    with pytest.raises(SeriesNameError, match="sorted"):
        SeriesName("x", (("b", "1"), ("a", "2")))


NAMES = [
    series("disk_used_percent", mount="/"),
    series("disk_used_percent", mount="/var"),
    series("disk_used_percent", mount="/boot/efi"),
    series("disk_io_busy_percent", device="sda"),
    series("net_rx_bytes_per_second", iface="lo"),
    series("net_rx_bytes_per_second", iface="eth0"),
    "cpu_usage",
]


@pytest.mark.parametrize(
    "selector, expected",
    [
        ('disk_used_percent{mount="/"}', [NAMES[0]]),
        ("disk_used_percent", NAMES[0:3]),
        ("disk_*", NAMES[0:4]),
        ('net_*{iface!="lo"}', [NAMES[5]]),
        ('disk_used_percent{mount=~"/(var|boot).*"}', NAMES[1:3]),
        ('disk_used_percent{mount!~"/boot.*"}', NAMES[0:2]),
        ('disk_used_percent{mount=*"/b*"}', [NAMES[2]]),
        ('disk_used_percent{mount!*"/b*"}', NAMES[0:2]),
        ('disk_io_busy_percent{mount=""}', [NAMES[3]]),  # an absent label is the empty string
        ("*", NAMES),
        ("cpu_usage", ["cpu_usage"]),
    ],
)
def test_selectors_match_by_family_glob_and_label_matchers(selector, expected):
    assert SeriesSelector.parse(selector).select(NAMES) == expected


def test_a_regex_matcher_is_anchored_at_both_ends_like_prometheus():
    assert not LabelMatcher("mount", "=~", "var").matches("/var")
    assert LabelMatcher("mount", "=~", "/var").matches("/var")


def test_an_invalid_regex_is_a_clear_error():
    with pytest.raises(SeriesNameError, match="invalid regular expression"):
        SeriesSelector.parse('disk{mount=~"("}')


def test_selector_text_round_trips():
    text = 'disk_*{device=*"sd*",mount!="/"}'
    assert str(SeriesSelector.parse(text)) == text
