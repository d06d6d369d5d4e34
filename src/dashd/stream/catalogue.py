"""The series the stream has carried: what clients may subscribe to, the
`families` of the catalogue (connection_ack, `catalogue`, GET /api/catalogue)
with the label values currently known, and the newest value of each series
(the Prometheus exposition).

Fed by the hub with every metrics_update (`observe`). A series not seen for
`forget_after` (an unmounted file system, a stopped container) is forgotten,
so the catalogue follows the host and stays bounded by what it has now."""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

from dashd.collect.families import COLLECTOR_FAMILIES, FAMILY_BY_NAME
from dashd.stream.selection import parsed_series

MINUTE_MS = 60_000
DEFAULT_FORGET_AFTER_MS = 15 * MINUTE_MS
_FAMILY_ORDER = {info.name: index for index, info in enumerate(COLLECTOR_FAMILIES)}


class SeriesCatalogue:
    """Per host, the newest (value, timestamp ms) of every series seen."""

    def __init__(self, forget_after_ms: int = DEFAULT_FORGET_AFTER_MS) -> None:
        self.forget_after_ms = forget_after_ms
        self._latest: dict[str, dict[str, tuple[float, int]]] = {}
        self._names: tuple[str, ...] | None = ()  # None: to be rebuilt
        self._families: tuple[tuple[str, ...], frozenset[str], tuple[str, ...], list[dict]] | None = None
        self._pruned_at = 0

    def observe(self, host: str | None, timestamp_ms: int, metrics: Mapping[str, float]) -> None:
        latest = self._latest.setdefault(host or "", {})
        known = len(latest)
        for name, value in metrics.items():
            latest[name] = (value, timestamp_ms)
        if len(latest) != known:
            self._names = None
        if timestamp_ms - self._pruned_at >= MINUTE_MS:
            self._prune(timestamp_ms - self.forget_after_ms)
            self._pruned_at = timestamp_ms

    def _prune(self, horizon_ms: int) -> None:
        for host, latest in list(self._latest.items()):
            stale = [name for name, (_, ts) in latest.items() if ts < horizon_ms]
            for name in stale:
                del latest[name]
            if stale:
                self._names = None
            if not latest:
                del self._latest[host]

    def names(self) -> tuple[str, ...]:
        """Every series name seen on any host, in first-seen order."""
        if self._names is None:
            names: dict[str, None] = {}
            for latest in self._latest.values():
                names.update(dict.fromkeys(latest))
            self._names = tuple(names)
        return self._names

    def latest(self) -> Iterator[tuple[str, str, float]]:
        """(host, series name, newest value) of every series."""
        for host, latest in self._latest.items():
            for name, (value, _) in latest.items():
                yield host, name, value

    def families(self, exclude: Iterable[str] = (), expected: Iterable[str] = ()) -> list[dict]:
        """The families of the series seen, except the names in `exclude`
        (the seed metrics, listed in `metrics`), plus the `expected` ones
        (collectors that have not read yet) with no label values yet:
        collector families in their documented order, then others by name,
        each with its label values:
        `{"name", "unit", "kind", "description", "labels": {label: [values]}}`."""
        names = self.names()
        excluded = frozenset(exclude)
        awaited = tuple(expected)
        cached = self._families
        if cached is not None and cached[0] is names and cached[1] == excluded and cached[2] == awaited:
            return cached[3]
        labels: dict[str, dict[str, set[str]]] = {family: {} for family in awaited}
        for name in names:
            parsed = parsed_series(name)
            if parsed is None or name in excluded:
                continue
            family = labels.setdefault(parsed.family, {})
            for label, value in parsed.labels:
                family.setdefault(label, set()).add(value)
        ordered = sorted(labels, key=lambda family: (_FAMILY_ORDER.get(family, len(_FAMILY_ORDER)), family))
        result = [_family_dict(family, labels[family]) for family in ordered]
        self._families = (names, excluded, awaited, result)
        return result


def _family_dict(name: str, labels: dict[str, set[str]]) -> dict:
    info = FAMILY_BY_NAME.get(name)
    return {
        "name": name,
        "unit": info.unit if info is not None else "",
        "kind": info.kind if info is not None else "gauge",
        "description": info.description if info is not None else "",
        "labels": {label: sorted(values) for label, values in sorted(labels.items())},
    }
