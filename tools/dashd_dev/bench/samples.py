"""The synthetic sample `serve` publishes and bench/server.js mirrors."""

from __future__ import annotations

from typing import Callable, Mapping

# The synthetic sample: real catalogue names, values that wander a little
# each tick; with the envelope it is ~300 bytes of JSON, like a small host.
BENCH_METRICS: dict[str, float] = {
    "cpu_usage": 12.5,
    "cpu_core_0": 11.25,
    "cpu_core_1": 13.75,
    "memory_usage": 41.3,
    "network_traffic": 15234.5,
    "disk_usage": 57.12,
    "network_rx": 7617.2,
    "network_tx": 7617.3,
}
BENCH_HOST = "bench-0"
IDLE_HZ = 1.0  # what both servers publish while clients connect and between windows


def synthetic_metrics(n: int, base: Mapping[str, float] = BENCH_METRICS) -> dict[str, float]:
    """Sample number `n`: the same formula bench/server.js uses."""
    return {name: round(value + ((n * (i + 3)) % 97) / 10, 2) for i, (name, value) in enumerate(base.items())}


class SyntheticSampler:
    """Stands in for MetricsCollector inside the real CollectorService, so the
    bench's samples travel the daemon's own path: collector tick, bus, rule
    engine, hub (sequence, ring, store), fan-out."""

    def __init__(self, host: str, wall_clock_ms: Callable[[], int]) -> None:
        self.host = host
        self.count = 0
        self._wall_clock_ms = wall_clock_ms

    def prime(self) -> None:
        pass

    def sample(self):
        from dashd.collect.collector import Sample

        self.count += 1
        return Sample(host=self.host, timestamp_ms=self._wall_clock_ms(), metrics=synthetic_metrics(self.count))
