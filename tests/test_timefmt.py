"""Wire time formats: ISO-8601 UTC with milliseconds out; ISO, Unix seconds
or relative durations in."""

from __future__ import annotations

import pytest

from dashd.timefmt import iso_ms, parse_time

NOW = 1_795_690_000_000  # 2026-11-26T10:46:40Z


def test_iso_ms_is_utc_with_milliseconds():
    assert iso_ms(NOW + 7) == "2026-11-26T10:46:40.007Z"


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2026-11-26T10:46:40.007Z", NOW + 7),
        ("2026-11-26T11:46:40+01:00", NOW),
        ("2026-11-26T10:46:40", NOW),  # no zone: UTC
        (1_795_690_000, NOW),
        (1_795_690_000.5, NOW + 500),
        ("-15m", NOW - 15 * 60_000),
        ("- 1h", NOW - 3_600_000),
        ("now", NOW),
    ],
)
def test_parse_time_accepts_iso_unix_seconds_and_relative(value, expected):
    assert parse_time(value, NOW) == expected


@pytest.mark.parametrize("value", [True, -1, 1e12, "yesterday", "-forever", None, [1], "2026-13-40T00:00:00Z"])
def test_parse_time_refuses_everything_else(value):
    with pytest.raises(ValueError):
        parse_time(value, NOW)
