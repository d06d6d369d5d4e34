"""Fill a dashd database with days of synthetic samples through dashd's own
Store (the same batches, chunks, seals and rollups the daemon writes), for
the explorer end-to-end test and its profiler: a 30-day view needs 30 days
of real tiers behind it.

    .venv/bin/python frontend/e2e/lib/prefill_store.py sqlite:///STATE/dashd.db HOST --days 30

Samples are one every --step seconds ending now, with seqs 1..N (the daemon
then continues after N). A daily wave plus a spike every 6 hours, so a zoom
has something to find. Prints `PREFILL samples=… seconds=…`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from twisted.internet import defer, task

from dashd.store.database import Store
from dashd.stream.streams import METRICS_UPDATE, StreamMessage

DAY_S = 86_400
# Rows queue until a flush; stay well under the store's max_queue_rows (100 000 rows = 12 500 samples of 8 metrics).
FLUSH_EVERY = 5_000


def metrics_at(t_ms: int) -> dict[str, float]:
    day = (t_ms / 1000 % DAY_S) / DAY_S
    spike = 35.0 if (t_ms // 1000) % (6 * 3600) < 600 else 0.0
    cpu = 20 + 15 * math.sin(2 * math.pi * day) + spike
    return {
        "cpu_usage": round(max(0.0, min(100.0, cpu)), 2),
        "memory_usage": round(50 + 10 * math.cos(2 * math.pi * day), 2),
        "swap_usage": 3.0,
        "network_rx": round(1e5 * (1.5 + math.sin(4 * math.pi * day)), 1),
        "network_tx": round(4e4 * (1.5 + math.cos(4 * math.pi * day)), 1),
        "disk_read": round(2e4 * (1 + day), 1),
        "disk_write": round(3e4 * (2 - day), 1),
        "active_connections": 1.0,
    }


async def fill(reactor, url: str, host: str, days: float, step_s: float) -> int:
    end_ms = int(time.time() * 1000)
    store = Store(url, reactor, batch_interval=3600.0, prune_interval=3600.0, wall_clock_ms=lambda: end_ms)
    store.startService()
    await store.ready()
    count = int(days * DAY_S / step_s)
    for i in range(count):
        t_ms = end_ms - int((count - i) * step_s * 1000)
        store.record(StreamMessage(i + 1, METRICS_UPDATE, t_ms, host, metrics_at(t_ms)))
        if (i + 1) % FLUSH_EVERY == 0:
            await store.flush()
    await store.stopService()  # flushes, seals every open chunk and rolls them up
    return count


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("host")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=60.0, help="seconds between samples")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def run(reactor):
        return defer.Deferred.fromCoroutine(fill(reactor, args.url, args.host, args.days, args.step)).addCallback(
            lambda n: print(f"PREFILL samples={n} seconds={time.monotonic() - started:.1f}", flush=True)
        )

    task.react(run)


if __name__ == "__main__":
    main(sys.argv[1:])
