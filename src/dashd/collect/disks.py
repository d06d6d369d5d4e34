"""Disks: per block device read/write bytes/s, reads/writes per second
(IOPS) and busy % from /proc/diskstats (issue 19 item 1).

Busy % is the kernel's "time spent doing I/O" (field 10, `busy_time` in
psutil) over the interval, as iostat's %util. Only whole disks are
reported when /sys/block says which names are disks (partitions would
count the same I/O twice); loop and ram devices, and names matching an
`exclude` glob, are skipped. Sectors in diskstats are always 512 bytes.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Callable, Sequence

from dashd.collect.hostroot import HostPaths, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC, CounterRates

SECTOR_BYTES = 512
DEFAULT_EXCLUDE = ("loop*", "ram*", "zram*")


@dataclass(frozen=True)
class DiskCounters:
    reads: int
    read_bytes: int
    writes: int
    write_bytes: int
    busy_ms: int


def parse_diskstats(text: str) -> dict[str, DiskCounters]:
    disks = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 14:
            continue
        try:
            disks[parts[2]] = DiskCounters(
                reads=int(parts[3]),
                read_bytes=int(parts[5]) * SECTOR_BYTES,
                writes=int(parts[7]),
                write_bytes=int(parts[9]) * SECTOR_BYTES,
                busy_ms=int(parts[12]),
            )
        except ValueError:
            continue
    return disks


class DiskSource:
    """Source `disks`: `disk_io_*{device="sda"}` series."""

    name = "disks"
    topic = SERIES_TOPIC

    def __init__(
        self, paths: HostPaths, exclude: Sequence[str] = DEFAULT_EXCLUDE, clock: Callable[[], float] | None = None
    ) -> None:
        self._paths = paths
        self._exclude = tuple(exclude)
        self._rates = CounterRates() if clock is None else CounterRates(clock=clock)

    def whole_disks(self) -> set[str] | None:
        try:
            return set(os.listdir(self._paths.sys("block")))
        except OSError:
            return None

    def read(self) -> dict[str, float]:
        stats = parse_diskstats(read_text(self._paths.proc("diskstats")) or "")
        disks = self.whole_disks()
        counters: dict[tuple[str, str], float] = {}
        for name, c in stats.items():
            if disks is not None and name not in disks:
                continue
            if any(fnmatch.fnmatchcase(name, g) for g in self._exclude):
                continue
            counters.update(
                {
                    (name, "read_bytes"): c.read_bytes,
                    (name, "write_bytes"): c.write_bytes,
                    (name, "reads"): c.reads,
                    (name, "writes"): c.writes,
                    (name, "busy_ms"): c.busy_ms,
                }
            )
        values: dict[str, float] = {}
        for (device, counter), rate in self._rates.rates(counters).items():
            if counter == "busy_ms":
                # ms of I/O per second of wall time, as a percentage.
                values[series("disk_io_busy_percent", device=device)] = round(min(100.0, rate / 10.0), 2)
            else:
                family = {
                    "read_bytes": "disk_io_read_bytes_per_second",
                    "write_bytes": "disk_io_write_bytes_per_second",
                    "reads": "disk_io_reads_per_second",
                    "writes": "disk_io_writes_per_second",
                }[counter]
                values[series(family, device=device)] = round(rate, 2)
        return values
