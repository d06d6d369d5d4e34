"""The newest value of every series on the Prometheus endpoint, with its
labels: `dashd_host_cpu_usage{host="web-1"}`,
`dashd_host_disk_used_percent{fstype="ext4",host="web-1",mount="/"}`.

One gauge family per series family, prefixed `dashd_host_` so host values
never clash with the daemon's own `dashd_*` telemetry; the labels are the
series' own plus `host` (a series label named `host` would be overwritten:
none of dashd's collectors has one). Series of one family with different
label sets (a control group without a `unit`) leave the missing labels
empty, which Prometheus reads as absent."""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dashd.stream.selection import parsed_series

PREFIX = "dashd_host_"

Latest = Callable[[], Iterable[tuple[str, str, float]]]  # (host, series name, value)


class SeriesExposition(Collector):
    """Read at scrape time from the stream's series catalogue."""

    def __init__(self, latest: Latest) -> None:
        self._latest = latest

    def collect(self):
        grouped: dict[str, list[tuple[dict[str, str], float]]] = {}
        for host, name, value in self._latest():
            parsed = parsed_series(name)
            if parsed is None or not isinstance(value, (int, float)):
                continue
            labels = dict(parsed.labels)
            labels["host"] = host
            grouped.setdefault(parsed.family, []).append((labels, float(value)))
        for family in sorted(grouped):
            samples = grouped[family]
            label_names = sorted({label for labels, _ in samples for label in labels})
            gauge = GaugeMetricFamily(PREFIX + family, f"dashd series {family} (newest value)", labels=label_names)
            for labels, value in samples:
                gauge.add_metric([labels.get(label, "") for label in label_names], value)
            yield gauge
