"""Silences and maintenance windows: label matchers (rule = alertname, host,
severity, any rule label) with a start, an end and a comment. A silenced
alert is recorded and shown (marked silenced) but not delivered.

SilenceBook is the in-memory view every decision reads (no store round trip
on the alert path); it is refreshed from the store after each change and by
a poll, so every node sees the others' silences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Mapping

from dashd.alerting.model import Matcher, all_match, make_matcher, matchers_from_json

MAX_COMMENT = 1000
MAX_SILENCE_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ms: int
    ends_at_ms: int
    comment: str
    created_by: str
    created_at_ms: int = 0
    expired_by: str | None = None

    def active(self, now_ms: int) -> bool:
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def covers(self, labels: Mapping[str, str], now_ms: int) -> bool:
        return self.active(now_ms) and all_match(self.matchers, labels)

    def state(self, now_ms: int) -> str:
        if now_ms < self.starts_at_ms:
            return "pending"
        return "active" if now_ms < self.ends_at_ms else "expired"

    def as_dict(self, now_ms: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.as_dict() for m in self.matchers],
            "starts_at_ms": self.starts_at_ms,
            "ends_at_ms": self.ends_at_ms,
            "comment": self.comment,
            "created_by": self.created_by,
            "created_at_ms": self.created_at_ms,
            "expired_by": self.expired_by,
            "state": self.state(now_ms),
        }


def silence_from_request(data: Mapping[str, Any], user: str, now_ms: int) -> Silence:
    """Validate an API request; ValueError with one line on bad input."""
    matchers = matchers_from_json(data.get("matchers"))
    starts = data.get("starts_at_ms", now_ms)
    ends = data.get("ends_at_ms")
    if "duration_s" in data and ends is None:
        duration = data["duration_s"]
        if (
            isinstance(duration, bool)
            or not isinstance(duration, (int, float))
            or not 0 < duration <= MAX_SILENCE_MS / 1000
        ):
            raise ValueError("'duration_s' must be a number of seconds up to a year")
        ends = int(starts) + int(duration * 1000) if isinstance(starts, int) and not isinstance(starts, bool) else None
    for name, value in (("starts_at_ms", starts), ("ends_at_ms", ends)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"'{name}' must be a time in milliseconds since the epoch (or give 'duration_s')")
    assert isinstance(starts, int) and isinstance(ends, int)  # checked just above
    if ends <= starts or ends <= now_ms:
        raise ValueError("a silence must end after it starts, and in the future")
    if ends - starts > MAX_SILENCE_MS:
        raise ValueError("a silence may last at most a year")
    comment = data.get("comment")
    if not isinstance(comment, str) or not comment.strip() or len(comment) > MAX_COMMENT:
        raise ValueError(f"'comment' is required (why, for whom), at most {MAX_COMMENT} characters")
    return Silence("s-" + uuid.uuid4().hex[:16], matchers, starts, ends, comment.strip(), user, now_ms)


def silence_from_row(row: Mapping[str, Any]) -> Silence:
    matchers = tuple(make_matcher(m["name"], m["op"], m["value"]) for m in row["matchers"])
    return Silence(
        row["id"],
        matchers,
        row["starts_at_ms"],
        row["ends_at_ms"],
        row["comment"],
        row["created_by"],
        row["created_at_ms"],
        row.get("expired_by"),
    )


class SilenceBook:
    def __init__(self) -> None:
        self._silences: dict[str, Silence] = {}

    def replace(self, silences: list[Silence]) -> None:
        self._silences = {s.id: s for s in silences}

    def add(self, silence: Silence) -> None:
        self._silences[silence.id] = silence

    def silenced_by(self, labels: Mapping[str, str], now_ms: int) -> str | None:
        """The id of an active silence covering these labels, or None."""
        for silence in self._silences.values():
            if silence.covers(labels, now_ms):
                return silence.id
        return None

    def all(self) -> list[Silence]:
        return sorted(self._silences.values(), key=lambda s: (s.starts_at_ms, s.id))
