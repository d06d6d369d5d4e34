"""Services and containers: per control group CPU %, memory used and limit,
I/O bytes/s and pids, read directly from /sys/fs/cgroup (issue 19 item 1).
No Docker socket: names come from the cgroup path.

Three layouts exist on real hosts, and all are read:
- unified (cgroup v2): one tree; `cgroup.controllers` at its root;
  cpu.stat usage_usec, memory.current / memory.max, io.stat, pids.current;
- legacy (v1): one hierarchy per controller (`cpuacct` — often mounted as
  `cpu,cpuacct` —, `memory`, `blkio`, `pids`); cpuacct.usage,
  memory.usage_in_bytes / memory.limit_in_bytes,
  blkio.throttle.io_service_bytes_recursive, pids.current;
- hybrid: v1 controllers plus a v2 tree at `unified/` (systemd's default
  for years). A controller mounted in v1 is read there; one only enabled in
  `unified/` is read from it.

Every value is hierarchical (a group includes its children), as systemd-cgtop
shows. CPU % is of one core (200 % is two busy cores), as `docker stats`
shows it. Memory used leaves out the inactive page cache, as `docker stats`
and the kernel's own OOM accounting do. The root group is left out: the host
metrics already cover it.

Groups are found by walking every hierarchy to `max_depth` levels; at most
`max_groups` are reported, shallow ones first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable

from dashd.collect.hostroot import HostPaths, read_int, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC, CounterRates

NANOSECOND = 1e-9
V1_CONTROLLERS = ("cpuacct", "memory", "blkio", "pids")
# memory.limit_in_bytes of an unlimited v1 group is PAGE_COUNTER_MAX pages,
# about 2**63; anything this large means "no limit".
UNLIMITED = 2**60
_CONTAINER = re.compile(
    r"(?:^|/)(?:docker|crio|cri-containerd|libpod|containerd)[-/]([0-9a-f]{12,64})(?:\.scope)?(?:/|$)"
)
_POD = re.compile(r"pod([0-9a-f_-]{36})(?:\.slice)?")
_UNIT = re.compile(r"[^/]+\.(service|scope|slice|socket|mount|swap)\Z")


@dataclass(frozen=True)
class CgroupLayout:
    """Where each controller's files are: controller -> (directory, version)."""

    kind: str  # "v2", "v1", "hybrid" or "none"
    controllers: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def roots(self) -> list[str]:
        return sorted({directory for directory, _ in self.controllers.values()})


def detect_layout(cgroup_root: str) -> CgroupLayout:
    """Which layout this host has, from the mounted tree alone."""
    if os.path.exists(os.path.join(cgroup_root, "cgroup.controllers")):
        return CgroupLayout("v2", {c: (cgroup_root, 2) for c in ("cpu", "memory", "io", "pids")})
    controllers: dict[str, tuple[str, int]] = {}
    try:
        entries = sorted(os.listdir(cgroup_root))
    except OSError:
        return CgroupLayout("none")
    for entry in entries:
        directory = os.path.join(cgroup_root, entry)
        if not os.path.isdir(directory) or entry == "unified":
            continue
        for name in entry.split(","):
            if name in V1_CONTROLLERS and name not in controllers:
                controllers[name] = (directory, 1)
    unified = os.path.join(cgroup_root, "unified")
    hybrid = os.path.exists(os.path.join(unified, "cgroup.controllers"))
    if hybrid:
        enabled = (read_text(os.path.join(unified, "cgroup.controllers")) or "").split()
        for v1_name, v2_name in (("cpuacct", "cpu"), ("memory", "memory"), ("blkio", "io"), ("pids", "pids")):
            if v1_name not in controllers and v2_name in enabled:
                controllers[v2_name] = (unified, 2)
    if not controllers:
        return CgroupLayout("none")
    return CgroupLayout("hybrid" if hybrid else "v1", controllers)


def names_from_path(path: str) -> dict[str, str]:
    """Labels the path gives: the systemd unit, the container id (12 hex, as
    `docker ps` shows it), the Kubernetes pod uid."""
    labels: dict[str, str] = {}
    container = _CONTAINER.search(path)
    if container:
        labels["container"] = container.group(1)[:12]
    pod = _POD.search(path)
    if pod:
        labels["pod"] = pod.group(1).replace("_", "-")
    unit = _UNIT.search(path)
    if unit and "container" not in labels:
        labels["unit"] = unit.group(0)
    return labels


@dataclass(frozen=True)
class CgroupReading:
    cpu_ns: int | None = None
    memory_used: int | None = None
    memory_limit: int | None = None
    io_read_bytes: int | None = None
    io_write_bytes: int | None = None
    pids: int | None = None


def _stat_file(path: str) -> dict[str, int]:
    out = {}
    for line in (read_text(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def read_v2_io(path: str) -> tuple[int, int] | None:
    text = read_text(path)
    if text is None:
        return None
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def read_v1_blkio(directory: str) -> tuple[int, int] | None:
    for name in (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes",
    ):
        text = read_text(os.path.join(directory, name))
        if text is None:
            continue
        read = write = 0
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                read += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                write += int(parts[2])
        return read, write
    return None


def read_group(layout: CgroupLayout, relative: str) -> CgroupReading:
    """One group's raw values, each from wherever its controller lives."""
    values: dict[str, int | None] = {}

    def where(*names: str) -> tuple[str, int] | None:
        for name in names:
            if name in layout.controllers:
                root, version = layout.controllers[name]
                directory = os.path.join(root, relative.lstrip("/"))
                if os.path.isdir(directory):
                    return directory, version
        return None

    cpu = where("cpuacct", "cpu")
    if cpu:
        directory, version = cpu
        if version == 1:
            values["cpu_ns"] = read_int(os.path.join(directory, "cpuacct.usage"))
        else:
            usec = _stat_file(os.path.join(directory, "cpu.stat")).get("usage_usec")
            values["cpu_ns"] = None if usec is None else usec * 1000
    memory = where("memory")
    if memory:
        directory, version = memory
        stat = _stat_file(os.path.join(directory, "memory.stat"))
        if version == 1:
            usage = read_int(os.path.join(directory, "memory.usage_in_bytes"))
            inactive = stat.get("total_inactive_file", 0)
            limit = read_int(os.path.join(directory, "memory.limit_in_bytes"))
        else:
            usage = read_int(os.path.join(directory, "memory.current"))
            inactive = stat.get("inactive_file", 0)
            limit = read_int(os.path.join(directory, "memory.max"))  # "max" reads as None
        values["memory_used"] = None if usage is None else max(0, usage - inactive)
        values["memory_limit"] = limit if limit is not None and limit < UNLIMITED else None
    io = where("blkio", "io")
    if io:
        directory, version = io
        pair = read_v1_blkio(directory) if version == 1 else read_v2_io(os.path.join(directory, "io.stat"))
        if pair is not None:
            values["io_read_bytes"], values["io_write_bytes"] = pair
    pids = where("pids")
    if pids:
        values["pids"] = read_int(os.path.join(pids[0], "pids.current"))
    return CgroupReading(**values)


def list_groups(layout: CgroupLayout, max_depth: int, max_groups: int) -> list[str]:
    """Relative paths ("/system.slice/nginx.service") of the groups under
    every hierarchy a controller is read from, shallowest first, without
    the root."""
    found: set[str] = set()
    for root in layout.roots:
        for directory, subdirs, _ in os.walk(root):
            relative = os.path.relpath(directory, root).replace(os.sep, "/")
            if relative == ".":
                continue
            if relative.count("/") + 1 >= max_depth:
                subdirs[:] = []
            found.add("/" + relative)
    return sorted(found, key=lambda path: (path.count("/"), path))[:max_groups]


class CgroupSource:
    """Source `cgroups`: cgroup_cpu_percent, cgroup_memory_used_bytes,
    cgroup_memory_limit_bytes, cgroup_io_read_bytes_per_second,
    cgroup_io_write_bytes_per_second, cgroup_pids — each labelled with
    `cgroup` (the path) and, where the path gives them, `unit`,
    `container` and `pod`."""

    name = "cgroups"
    topic = SERIES_TOPIC

    def __init__(
        self, paths: HostPaths, max_depth: int = 4, max_groups: int = 200, clock: Callable[[], float] | None = None
    ) -> None:
        self._paths = paths
        self.max_depth = max_depth
        self.max_groups = max_groups
        self._rates = CounterRates(wrap32=False) if clock is None else CounterRates(clock=clock, wrap32=False)
        self.layout = detect_layout(paths.cgroup_root)

    def read(self) -> dict[str, float]:
        groups = list_groups(self.layout, self.max_depth, self.max_groups)
        readings = {path: read_group(self.layout, path) for path in groups}
        counters: dict[tuple[str, str], float] = {}
        for path, r in readings.items():
            for key in ("cpu_ns", "io_read_bytes", "io_write_bytes"):
                value = getattr(r, key)
                if value is not None:
                    counters[(path, key)] = value
        rates = self._rates.rates(counters)
        values: dict[str, float] = {}
        for path, r in readings.items():
            labels = dict(names_from_path(path), cgroup=path)
            if (path, "cpu_ns") in rates:
                values[series("cgroup_cpu_percent", **labels)] = round(100.0 * rates[(path, "cpu_ns")] * NANOSECOND, 2)
            if (path, "io_read_bytes") in rates:
                values[series("cgroup_io_read_bytes_per_second", **labels)] = round(rates[(path, "io_read_bytes")], 1)
            if (path, "io_write_bytes") in rates:
                values[series("cgroup_io_write_bytes_per_second", **labels)] = round(rates[(path, "io_write_bytes")], 1)
            if r.memory_used is not None:
                values[series("cgroup_memory_used_bytes", **labels)] = float(r.memory_used)
            if r.memory_limit is not None:
                values[series("cgroup_memory_limit_bytes", **labels)] = float(r.memory_limit)
            if r.pids is not None:
                values[series("cgroup_pids", **labels)] = float(r.pids)
        return values
