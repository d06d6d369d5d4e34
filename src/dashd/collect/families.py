"""The families of labelled series the issue 19 collectors produce: unit,
kind and meaning of each, for the catalogue clients get (`families` in
connection_ack and GET /api/catalogue) and for the store's series registry.

Label values are not listed here: they are whatever the host has (mount
points, devices, interfaces, control groups) and are learnt from the stream
(dashd.stream.catalogue)."""

from __future__ import annotations

from dataclasses import dataclass

from dashd.collect.collector import describe_metric
from dashd.collect.series_names import SeriesName, SeriesNameError


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    unit: str
    description: str
    kind: str = "gauge"  # or "rate": a per-second rate derived from a counter
    collector: str = ""


def _family(collector: str, name: str, unit: str, description: str, kind: str = "gauge") -> FamilyInfo:
    return FamilyInfo(name, unit, description, kind, collector)


COLLECTOR_FAMILIES: tuple[FamilyInfo, ...] = (
    _family("filesystems", "disk_size_bytes", "B", "size of the file system"),
    _family("filesystems", "disk_used_bytes", "B", "space used on the file system"),
    _family("filesystems", "disk_free_bytes", "B", "space available to unprivileged users"),
    _family("filesystems", "disk_used_percent", "%", "space used, as df computes it"),
    _family("filesystems", "disk_inodes_used_percent", "%", "inodes used"),
    _family("disks", "disk_io_read_bytes_per_second", "B/s", "bytes read per second", "rate"),
    _family("disks", "disk_io_write_bytes_per_second", "B/s", "bytes written per second", "rate"),
    _family("disks", "disk_io_reads_per_second", "1/s", "read operations per second", "rate"),
    _family("disks", "disk_io_writes_per_second", "1/s", "write operations per second", "rate"),
    _family("disks", "disk_io_busy_percent", "%", "time the device was busy (iostat %util)", "rate"),
    _family("netifs", "net_rx_bytes_per_second", "B/s", "bytes received per second", "rate"),
    _family("netifs", "net_tx_bytes_per_second", "B/s", "bytes sent per second", "rate"),
    _family("netifs", "net_rx_packets_per_second", "1/s", "packets received per second", "rate"),
    _family("netifs", "net_tx_packets_per_second", "1/s", "packets sent per second", "rate"),
    _family("netifs", "net_rx_errors_per_second", "1/s", "receive errors per second", "rate"),
    _family("netifs", "net_tx_errors_per_second", "1/s", "transmit errors per second", "rate"),
    _family("netifs", "net_rx_drops_per_second", "1/s", "received packets dropped per second", "rate"),
    _family("netifs", "net_tx_drops_per_second", "1/s", "outgoing packets dropped per second", "rate"),
    _family("netifs", "net_link_up", "bool", "1 when the link is up, 0 when down"),
    _family("netifs", "net_speed_mbps", "Mbit/s", "link speed as the driver reports it"),
    _family("system", "tcp_connections", "count", "TCP connections in each state"),
    _family("system", "tcp_listening_ports", "count", "TCP ports listening"),
    _family("system", "open_fds", "count", "file descriptors open, system-wide"),
    _family("system", "open_fds_limit", "count", "system-wide file descriptor limit"),
    _family("system", "context_switches_per_second", "1/s", "context switches per second", "rate"),
    _family("system", "interrupts_per_second", "1/s", "interrupts per second", "rate"),
    _family("sensors", "sensor_temperature_celsius", "°C", "temperature"),
    _family("sensors", "sensor_temperature_high_celsius", "°C", "the sensor's high threshold"),
    _family("sensors", "sensor_temperature_critical_celsius", "°C", "the sensor's critical threshold"),
    _family("sensors", "sensor_fan_rpm", "rpm", "fan speed"),
    _family("sensors", "battery_percent", "%", "battery charge"),
    _family("sensors", "battery_charging", "bool", "1 while the battery charges"),
    _family("cgroups", "cgroup_cpu_percent", "%", "CPU used by the control group (100 = one core)", "rate"),
    _family("cgroups", "cgroup_memory_used_bytes", "B", "memory used by the control group"),
    _family("cgroups", "cgroup_memory_limit_bytes", "B", "memory limit of the control group"),
    _family("cgroups", "cgroup_io_read_bytes_per_second", "B/s", "bytes the control group read per second", "rate"),
    _family("cgroups", "cgroup_io_write_bytes_per_second", "B/s", "bytes the control group wrote per second", "rate"),
    _family("cgroups", "cgroup_pids", "count", "processes and threads in the control group"),
)

FAMILY_BY_NAME: dict[str, FamilyInfo] = {info.name: info for info in COLLECTOR_FAMILIES}


def family_of(series: str) -> str:
    """The family of a series name; a name that is not `family{labels}` is its own family."""
    brace = series.find("{")
    return series if brace < 0 else series[:brace]


def describe_series(name: str) -> tuple[str, str]:
    """(unit, kind) of a family or seed metric, for the store's series registry."""
    info = FAMILY_BY_NAME.get(family_of(name))
    return (info.unit, info.kind) if info is not None else describe_metric(name)


def is_collector_series(name: str) -> bool:
    """A well-formed series of a known collector family (e.g. an alert rule's metric)."""
    try:
        return SeriesName.parse(name).family in FAMILY_BY_NAME
    except SeriesNameError:
        return False
