"""Builds the issue 19 collectors the settings ask for: the one place that
maps setting keys to Source objects and cadences, used by makeService
(dashd.tap) and by `dashd bench collector`."""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IReactorTime

from dashd.collect.cgroups import CgroupSource
from dashd.collect.disks import DiskSource
from dashd.collect.filesystems import FilesystemSource
from dashd.collect.hostroot import HostPaths, host_paths
from dashd.collect.netifs import InterfaceSource
from dashd.collect.processes import ProcessSource, ProcfsProcessReader
from dashd.collect.sensors import SensorSource
from dashd.collect.sources import Publisher, Source, SourceScheduler
from dashd.collect.system import SystemSource
from dashd.settings import COLLECTOR_NAMES, Settings

EXTRA_COLLECTORS = tuple(name for name in COLLECTOR_NAMES if name != "host")


def enabled_collectors(settings: Settings) -> tuple[str, ...]:
    """The extra collectors to run, in a fixed order ("all" means every one)."""
    wanted = set(settings.collectors)
    if "all" in wanted:
        return EXTRA_COLLECTORS
    return tuple(name for name in EXTRA_COLLECTORS if name in wanted)


def build_sources(settings: Settings, paths: HostPaths | None = None) -> tuple[list[Source], dict[str, float]]:
    """The enabled sources and each one's interval."""
    paths = paths or host_paths(settings.host_root)
    factories: dict[str, Callable[[], Source]] = {
        "filesystems": lambda: FilesystemSource(paths, settings.filesystems_include, settings.filesystems_exclude),
        "disks": lambda: DiskSource(paths, settings.disks_exclude),
        "netifs": lambda: InterfaceSource(paths, settings.netifs_exclude),
        "system": lambda: SystemSource(paths),
        "sensors": lambda: SensorSource(paths),
        "cgroups": lambda: CgroupSource(paths, settings.cgroups_depth, settings.cgroups_max),
        "processes": lambda: ProcessSource(
            ProcfsProcessReader(paths, cmdlines=settings.process_cmdlines), settings.processes_top
        ),
    }
    names = enabled_collectors(settings)
    sources = [factories[name]() for name in names]
    intervals = {name: getattr(settings, f"{name}_interval") for name in names}
    return sources, intervals


def build_scheduler(
    settings: Settings,
    bus: Publisher,
    clock: IReactorTime,
    wall_clock_ms: Callable[[], int],
    on_read: Callable[[str, float, float], None] | None = None,
) -> SourceScheduler | None:
    """The service running the enabled collectors, or None when none is enabled.
    `on_read(name, read seconds, reactor seconds)` follows every read (telemetry)."""
    sources, intervals = build_sources(settings)
    if not sources:
        return None
    if on_read is None:
        return SourceScheduler(sources, intervals, bus, clock, settings.host, wall_clock_ms)
    return SourceScheduler(sources, intervals, bus, clock, settings.host, wall_clock_ms, on_read=on_read)
