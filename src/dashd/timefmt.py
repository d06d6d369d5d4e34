"""Time formats on the wire: ISO-8601 UTC with milliseconds, and Unix ms."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from dashd.settings import parse_duration


def now_ms() -> int:
    return int(time.time() * 1000)


def iso_ms(timestamp_ms: float) -> str:
    """1764151200123 -> '2025-11-26T10:00:00.123Z'."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_RELATIVE = re.compile(r"^-\s*(.+)$")


def parse_time(value: object, now_ms_value: int) -> int:
    """A request's time: ISO-8601 string, Unix seconds (number), or a
    relative duration such as '-15m'. Returns Unix ms; ValueError if bad."""
    if isinstance(value, bool):
        raise ValueError("a time, not a boolean")
    if isinstance(value, (int, float)):
        if not (0 <= value < 1e11):
            raise ValueError("Unix seconds out of range")
        return int(value * 1000)
    if isinstance(value, str):
        text = value.strip()
        if text == "now":
            return now_ms_value
        relative = _RELATIVE.match(text)
        if relative:
            return now_ms_value - int(parse_duration(relative.group(1)) * 1000)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    raise ValueError("a time must be an ISO-8601 string, Unix seconds, or '-<duration>'")
