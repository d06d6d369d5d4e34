"""File systems, disks, interfaces, system counts and sensors: recorded
readings (a /proc and /sys tree in the kernel's formats, see fakehost.py)
give exact values, and the same readers on this machine's real /proc and
/sys give sane ones (a file the test writes shows in disk write bytes)."""

from __future__ import annotations

import os
import time

import pytest

from dashd.collect.disks import DiskSource, parse_diskstats
from dashd.collect.filesystems import FilesystemSource, Mount, parse_mounts, physical_types, select_mounts
from dashd.collect.hostroot import HostPaths
from dashd.collect.netifs import InterfaceSource
from dashd.collect.sensors import SensorSource
from dashd.collect.series_names import parse_series, series
from dashd.collect.system import SystemSource, count_tcp
from fakehost import FakeHost, StepClock

HOST = HostPaths("/")


@pytest.fixture
def fake(tmp_path) -> FakeHost:
    host = FakeHost(str(tmp_path / "host"))
    host.base()
    return host


# ----- file systems


class FakeStatvfs:
    def __init__(self, blocks=1000, bfree=400, bavail=300, files=100, ffree=25, frsize=4096):
        self.f_blocks, self.f_bfree, self.f_bavail = blocks, bfree, bavail
        self.f_files, self.f_ffree, self.f_frsize = files, ffree, frsize


def test_mount_table_escapes_are_decoded():
    (mount,) = parse_mounts("/dev/sdb1 /mnt/my\\040disk ext4 rw 0 0\n")
    assert mount.mountpoint == "/mnt/my disk"


def test_pseudo_and_network_file_systems_are_skipped_and_bind_mounts_reported_once():
    types = physical_types("nodev\tproc\nnodev\ttmpfs\n\text4\nnodev\tnfs4\n")
    mounts = [
        Mount("proc", "/proc", "proc"),
        Mount("/dev/sda1", "/", "ext4"),
        Mount("tmpfs", "/run", "tmpfs"),
        Mount("srv:/x", "/mnt/nfs", "nfs4"),
        Mount("/dev/sda1", "/srv/bind", "ext4"),
        Mount("/dev/sdb1", "/var", "ext4"),
        Mount("pool/data", "/data", "zfs"),
    ]
    assert [m.mountpoint for m in select_mounts(mounts, types, (), ())] == ["/", "/var", "/data"]


def test_include_and_exclude_globs_choose_mount_points():
    types = frozenset({"ext4"})
    mounts = [Mount("/dev/a", "/", "ext4"), Mount("/dev/b", "/var", "ext4"), Mount("/dev/c", "/snap/core", "ext4")]
    assert [m.mountpoint for m in select_mounts(mounts, types, (), ("/snap/*",))] == ["/", "/var"]
    assert [m.mountpoint for m in select_mounts(mounts, types, ("/var*",), ())] == ["/var"]


def test_filesystem_values_are_computed_as_df_does(fake):
    fake.mounts([("/dev/vda", "/", "ext4"), ("tmpfs", "/run", "tmpfs")])
    source = FilesystemSource(HostPaths(fake.root), statvfs=lambda path: FakeStatvfs())
    values = source.read()
    labels = {"mount": "/", "fstype": "ext4"}
    assert values == {
        series("disk_size_bytes", **labels): 4096 * 1000.0,
        series("disk_used_bytes", **labels): 4096 * 600.0,
        series("disk_free_bytes", **labels): 4096 * 300.0,
        series("disk_used_percent", **labels): round(100 * 600 / 900, 2),
        series("disk_inodes_used_percent", **labels): 75.0,
    }


def test_real_root_file_system_is_reported_with_its_usage():
    values = FilesystemSource(HOST).read()
    used = {
        parse_series(name).label("mount"): value
        for name, value in values.items()
        if parse_series(name).family == "disk_used_percent"
    }
    assert "/" in used and 0 < used["/"] < 100
    assert not any(mount.startswith(("/proc", "/sys")) for mount in used)


# ----- disks


def test_diskstats_sectors_are_bytes_and_fields_are_read_by_position():
    stats = parse_diskstats("   8       0 sda 10 0 8 0 20 0 16 0 0 30 0 0 0 0 0 0 0\n")
    assert stats["sda"].read_bytes == 4096 and stats["sda"].write_bytes == 8192 and stats["sda"].busy_ms == 30


def test_disk_rates_iops_and_busy_percent(fake):
    clock = StepClock(0.0)
    fake.diskstats({"sda": (0, 0, 0, 0, 0), "sda1": (0, 0, 0, 0, 0), "loop0": (0, 0, 0, 0, 0)}, partitions=("sda1",))
    os.makedirs(os.path.join(fake.root, "sys/block/loop0"), exist_ok=True)
    source = DiskSource(HostPaths(fake.root), clock=clock)
    assert source.read() == {}  # first reading: no rates yet
    fake.diskstats(
        {"sda": (100, 2048, 50, 4096, 500), "sda1": (100, 2048, 50, 4096, 500), "loop0": (9, 9, 9, 9, 9)},
        partitions=("sda1",),
    )
    clock.now = 2.0
    assert source.read() == {
        series("disk_io_read_bytes_per_second", device="sda"): 2048 * 512 / 2,
        series("disk_io_write_bytes_per_second", device="sda"): 4096 * 512 / 2,
        series("disk_io_reads_per_second", device="sda"): 50.0,
        series("disk_io_writes_per_second", device="sda"): 25.0,
        series("disk_io_busy_percent", device="sda"): 25.0,
    }


def test_a_file_written_by_the_test_shows_in_real_disk_write_bytes(tmp_path):
    source = DiskSource(HOST)
    source.read()
    path = tmp_path / "payload.bin"
    with open(path, "wb") as f:
        for _ in range(16):
            f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    time.sleep(0.2)  # lets the clock move between the two readings; asserts nothing about speed
    values = source.read()
    written = sum(v for name, v in values.items() if parse_series(name).family == "disk_io_write_bytes_per_second")
    assert written > 0


# ----- network interfaces


def test_interface_rates_link_state_and_speed(fake):
    clock = StepClock(0.0)
    fake.net_dev({"lo": (0,) * 8, "eth0": (1000, 10, 0, 0, 500, 5, 0, 0), "veth1": (0,) * 8})
    fake.link("eth0", "up", 1000)
    fake.link("lo", "unknown", None)
    fake.link("veth1", "down", -1)
    source = InterfaceSource(HostPaths(fake.root), exclude=("veth*",), clock=clock)
    first = source.read()
    assert first == {
        series("net_link_up", iface="eth0"): 1.0,
        series("net_speed_mbps", iface="eth0"): 1000.0,
        series("net_link_up", iface="lo"): 1.0,
    }
    fake.net_dev({"lo": (0,) * 8, "eth0": (3000, 30, 2, 4, 1500, 15, 0, 2), "veth1": (0,) * 8})
    clock.now = 2.0
    values = source.read()
    assert values[series("net_rx_bytes_per_second", iface="eth0")] == 1000.0
    assert values[series("net_tx_packets_per_second", iface="eth0")] == 5.0
    assert values[series("net_rx_errors_per_second", iface="eth0")] == 1.0
    assert values[series("net_rx_drops_per_second", iface="eth0")] == 2.0
    assert values[series("net_tx_drops_per_second", iface="eth0")] == 1.0
    assert not any("veth1" in name for name in values)


def test_interface_counter_wrap_gives_the_true_rate(fake):
    clock = StepClock(0.0)
    fake.net_dev({"eth0": (2**32 - 100, 0, 0, 0, 0, 0, 0, 0)})
    source = InterfaceSource(HostPaths(fake.root), clock=clock)
    source.read()
    fake.net_dev({"eth0": (900, 0, 0, 0, 0, 0, 0, 0)})
    clock.now = 1.0
    assert source.read()[series("net_rx_bytes_per_second", iface="eth0")] == 1000.0


def test_real_loopback_is_reported_up():
    values = InterfaceSource(HOST).read()
    assert values.get(series("net_link_up", iface="lo")) == 1.0


# ----- system


def test_tcp_states_and_distinct_listening_ports_over_v4_and_v6():
    header = "  sl  local_address rem_address   st\n"
    v4 = (
        header + "0: 0100007F:1F90 00000000:0000 0A x\n1: 0100007F:1F90 0100007F:D431 01 x\n"
        "2: 0100007F:0016 00000000:0000 0A x\n3: 0100007F:1F90 0100007F:D432 06 x\n"
    )
    v6 = header + "0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A x\n"
    states, listening = count_tcp([v4, v6])
    assert (states["listen"], states["established"], states["time_wait"]) == (3, 1, 1)
    assert listening == 2  # 8080 (v4 and v6) and 22


def test_system_values_from_recorded_files(fake):
    clock = StepClock(0.0)
    fake.tcp([(8080, "0A"), (8080, "01"), (22, "0A")])
    source = SystemSource(HostPaths(fake.root), clock=clock)
    first = source.read()
    assert first[series("tcp_connections", state="established")] == 1.0
    assert first["tcp_listening_ports"] == 2.0
    assert (first["open_fds"], first["open_fds_limit"]) == (4000.0, 9223372036854775807.0)
    assert "context_switches_per_second" not in first
    fake.base(ctxt=3000, intr=1500)
    clock.now = 2.0
    second = source.read()
    assert (second["context_switches_per_second"], second["interrupts_per_second"]) == (1000.0, 500.0)


def test_real_system_counts_see_a_socket_the_test_listens_on():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        source = SystemSource(HOST)
        values = source.read()
        assert values[series("tcp_connections", state="listen")] >= 1
        assert values["tcp_listening_ports"] >= 1
        assert 0 < values["open_fds"] <= values["open_fds_limit"]
        time.sleep(0.05)
        assert source.read()["context_switches_per_second"] > 0
    finally:
        server.close()


# ----- sensors


def test_temperatures_thresholds_fans_and_batteries(fake):
    fake.hwmon(0, "coretemp", {1: ("Package id 0", 45000, 80000, 100000), 2: (None, 41500, None, None)}, fans={1: 1200})
    fake.battery("BAT0", 87, "Charging")
    fake.write("sys/class/power_supply/AC/type", "Mains\n")
    assert SensorSource(HostPaths(fake.root)).read() == {
        series("sensor_temperature_celsius", chip="coretemp", sensor="Package id 0"): 45.0,
        series("sensor_temperature_high_celsius", chip="coretemp", sensor="Package id 0"): 80.0,
        series("sensor_temperature_critical_celsius", chip="coretemp", sensor="Package id 0"): 100.0,
        series("sensor_temperature_celsius", chip="coretemp", sensor="temp2"): 41.5,
        series("sensor_fan_rpm", chip="coretemp", sensor="fan1"): 1200.0,
        series("battery_percent", battery="BAT0"): 87.0,
        series("battery_charging", battery="BAT0"): 1.0,
    }


def test_a_host_without_sensors_has_no_sensor_series_and_no_error(fake):
    assert SensorSource(HostPaths(fake.root)).read() == {}


def test_a_listed_sensor_that_cannot_be_read_is_left_out(fake):
    fake.hwmon(0, "acpitz", {1: (None, 30000, None, None)})
    fake.write("sys/class/hwmon/hwmon0/temp2_input", "")  # the driver answers ENODATA: empty read
    assert list(SensorSource(HostPaths(fake.root)).read()) == [
        series("sensor_temperature_celsius", chip="acpitz", sensor="temp1")
    ]


def test_real_host_sensors_read_without_error():
    # This machine (a VM) has no hwmon: the collector returns nothing, not an error.
    values = SensorSource(HOST).read()
    assert all(parse_series(name).family.startswith(("sensor_", "battery_")) for name in values)
