"""The series registry: a series is (host, metric name, labels); each gets a
compact integer id in the `series` table, with its unit and kind (gauge, or
rate derived from a counter) from the catalogue.

On the wire a series is named by its key: the metric name alone for an
unlabelled series (`cpu_usage`, exactly as today), or the name followed by
its labels in Prometheus' form, sorted by label name
(`disk_used_percent{mount="/var"}`). `series_key` and `parse_series_key`
are the one place that spelling is defined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

GAUGE = "gauge"
RATE = "rate"  # a per-second rate derived from a monotonic counter
KINDS = (GAUGE, RATE)

_NAME = r"[^{}\s][^{}]*"  # today's names, and whatever an agent sends that is not a label set
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_KEY = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?$", re.S)

Describe = Callable[[str], tuple[str, str]]  # metric name -> (unit, kind)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def format_labels(labels: Mapping[str, str]) -> str:
    """Canonical label text: sorted by name, values quoted and escaped."""
    return ",".join(f'{name}="{_escape(str(labels[name]))}"' for name in sorted(labels))


def series_key(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The wire name of a series: `name` or `name{a="1",b="2"}`."""
    return f"{name}{{{format_labels(labels)}}}" if labels else name


def parse_series_key(key: str) -> tuple[str, dict[str, str]]:
    """(metric name, labels) of a series key; ValueError if malformed."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"not a series name: {key!r}")
    name, body = match.group(1), match.group(2)
    labels: dict[str, str] = {}
    position = 0
    body = (body or "").strip()
    while position < len(body):
        label = _LABEL.match(body, position)
        if not label:
            raise ValueError(f"malformed labels in {key!r}")
        labels[label.group(1)] = _unescape(label.group(2))
        position = label.end()
    return name, labels


def _lenient_parse(key: str) -> tuple[str, dict[str, str]]:
    """A key that is not `name{labels}` is kept whole as an unlabelled name:
    storage never refuses what the stream carried."""
    try:
        return parse_series_key(key)
    except ValueError:
        return key, {}


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    host: str
    key: str  # wire name (name + canonical labels)
    name: str
    labels: str  # canonical label text, '' when unlabelled
    unit: str
    kind: str


def default_describe(name: str) -> tuple[str, str]:
    return "", GAUGE


class SeriesRegistry:
    """(host, key) <-> id, cached in memory and kept in the `series` table.

    Only the store's write path creates series (in its database thread);
    readers look ids up, falling back to the table for series another
    process created."""

    def __init__(self, describe: Describe | None = None) -> None:
        self.describe = describe or default_describe
        self._ids: dict[tuple[str, str], int] = {}
        self._info: dict[int, SeriesInfo] = {}
        self._unconfirmed: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def cached_ids(self) -> dict[tuple[str, str], int]:
        """(host, key) -> id of the series seen so far (read-only use)."""
        return self._ids

    def all(self) -> list[SeriesInfo]:
        return list(self._info.values())

    def info(self, series_id: int) -> SeriesInfo | None:
        return self._info.get(series_id)

    def cached(self, host: str, key: str) -> int | None:
        return self._ids.get((host, key))

    def _remember(self, row: tuple[Any, ...]) -> SeriesInfo:
        series_id, host, name, labels, unit, kind = row
        key = f"{name}{{{labels}}}" if labels else name
        info = SeriesInfo(int(series_id), host, key, name, labels, unit, kind)
        self._ids[(host, key)] = info.id
        self._info[info.id] = info
        return info

    def load(self, cursor: Any) -> None:
        cursor.execute("SELECT id, host, name, labels, unit, kind FROM series")
        for row in cursor.fetchall():
            self._remember(row)

    def lookup(self, cursor: Any, sql: Callable[[str], str], host: str, keys: list[str]) -> dict[str, int]:
        """Ids of the named series of `host` that exist (readers)."""
        found = {}
        for key in keys:
            series_id = self._ids.get((host, key))
            if series_id is None:
                series_id = self._fetch(cursor, sql, host, key)
            if series_id is not None:
                found[key] = series_id
        return found

    def _fetch(self, cursor: Any, sql: Callable[[str], str], host: str, key: str) -> int | None:
        name, labels = _lenient_parse(key)
        cursor.execute(
            sql("SELECT id, host, name, labels, unit, kind FROM series WHERE host = ? AND name = ? AND labels = ?"),
            (host, name, format_labels(labels)),
        )
        row = cursor.fetchone()
        return self._remember(row).id if row else None

    def resolve(self, cursor: Any, sql: Callable[[str], str], host: str, key: str, now_ms: int) -> int:
        """The id of a series, registering it on first sight (writer)."""
        series_id = self._ids.get((host, key))
        if series_id is not None:
            return series_id
        series_id = self._fetch(cursor, sql, host, key)
        if series_id is not None:
            return series_id
        name, labels = _lenient_parse(key)
        unit, kind = self.describe(name)
        cursor.execute(
            sql("INSERT INTO series (host, name, labels, unit, kind, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)"),
            (host, name, format_labels(labels), unit, kind, now_ms),
        )
        series_id = cursor.lastrowid
        self._remember((series_id, host, name, format_labels(labels), unit, kind))
        self._unconfirmed.append((host, key))
        return int(series_id)

    def committed(self) -> None:
        """The transaction that registered the new series committed."""
        self._unconfirmed.clear()

    def rolled_back(self) -> None:
        """It did not: forget the ids it handed out (they were never stored)."""
        for host_key in self._unconfirmed:
            series_id = self._ids.pop(host_key, None)
            if series_id is not None:
                self._info.pop(series_id, None)
        self._unconfirmed.clear()
