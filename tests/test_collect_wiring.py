"""The collectors in the daemon: all on by default (`collectors = host`
turns them off), chosen by the `collectors` setting with a cadence each, bad
values refused with the key named, `host_root` pointing every reader (and
psutil) at another /proc and /sys, and the real service tree publishing
their readings in the host's metrics samples (dashd.collect.series_feed) and
ProcessSnapshot messages on its bus."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import psutil
import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from conftest import start_daemon
from dashd.collect.assembly import build_scheduler, build_sources, enabled_collectors
from dashd.collect.collector import Sample
from dashd.collect.hostroot import HostPaths, host_paths, point_psutil_at
from dashd.collect.processes import ProcessSnapshot
from dashd.collect.series_names import series
from dashd.collect.sources import PROCESSES_TOPIC, SourceScheduler
from dashd.settings import ConfigError, load_settings
from dashd.store.processes import ProcessHistory
from dashd.stream.bus import METRICS_TOPIC
from fakehost import FakeHost


def test_by_default_every_collector_runs_and_host_turns_them_off():
    settings = load_settings({}, environ={})
    assert settings.collectors == ("all",)
    assert enabled_collectors(settings) == (
        "filesystems",
        "disks",
        "netifs",
        "system",
        "sensors",
        "cgroups",
        "processes",
    )
    only_host = load_settings({"collectors": "host"}, environ={})
    assert enabled_collectors(only_host) == ()
    assert build_scheduler(only_host, None, reactor, lambda: 0) is None


def test_collectors_are_chosen_by_name_or_all_with_their_own_cadence():
    settings = load_settings({"collectors": "disks, processes", "processes_interval": "3s"}, environ={})
    sources, intervals = build_sources(settings)
    assert [s.name for s in sources] == ["disks", "processes"]
    assert intervals == {"disks": 2.0, "processes": 3.0}
    every = load_settings({"collectors": "all"}, environ={})
    assert enabled_collectors(every) == ("filesystems", "disks", "netifs", "system", "sensors", "cgroups", "processes")


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("collectors", "disks,gpus", "collectors = 'disks,gpus'"),
        ("disks_interval", "0.1s", "disks_interval"),
        ("processes_top", "0", "processes_top"),
        ("host_root", "host", "host_root = 'host'"),
        ("process_cmdlines", "maybe", "process_cmdlines"),
    ],
)
def test_bad_collector_settings_are_refused_naming_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message):
        load_settings({key: value}, environ={})


def test_collector_settings_come_from_the_environment_too():
    settings = load_settings(
        {}, environ={"DASHD_COLLECTORS": "cgroups", "DASHD_HOST_ROOT": "/host", "DASHD_PROCESS_CMDLINES": "false"}
    )
    assert (settings.collectors, settings.host_root, settings.process_cmdlines) == (("cgroups",), "/host", False)


# ----- host_root


@pytest.fixture
def other_host(tmp_path) -> FakeHost:
    """A host whose /proc and /sys are not this machine's: every value in it
    is one this machine would not give."""
    host = FakeHost(str(tmp_path / "host"))
    host.base(mem_total_kib=2 * 1024 * 1024)
    host.mounts([("/dev/nvme0n1p2", "/", "ext4"), ("proc", "/proc", "proc")])
    host.diskstats({"nvme0n1": (1, 8, 1, 8, 1)})
    host.net_dev({"enp3s0": (1000, 1, 0, 0, 2000, 2, 0, 0)})
    host.link("enp3s0", "up", 2500)
    host.tcp([(5432, "0A"), (5432, "01"), (5432, "01")])
    host.hwmon(0, "k10temp", {1: ("Tctl", 61000, None, None)})
    host.copy_cgroup_tree("cgroup-v2")
    host.process(31337, "hostonlyd", cpu_ticks=100, cmdline=["/usr/sbin/hostonlyd", "--serve"])
    return host


def test_host_root_points_every_collector_at_the_other_tree(other_host):
    settings = load_settings({"collectors": "all", "host_root": other_host.root}, environ={})
    sources, _ = build_sources(settings)
    values = {}
    tables = []
    for source in sources:
        result = source.read()
        if source.name == "processes":
            tables.append(result)
        else:
            values.update(result)
    assert values[series("disk_used_percent", mount="/", fstype="ext4")] >= 0  # statvfs of <root>/
    assert values[series("net_speed_mbps", iface="enp3s0")] == 2500.0
    assert values[series("tcp_connections", state="established")] == 2.0
    assert values[series("sensor_temperature_celsius", chip="k10temp", sensor="Tctl")] == 61.0
    assert values[series("cgroup_pids", cgroup="/system.slice/nginx.service", unit="nginx.service")] == 5.0
    assert not any('iface="lo"' in name for name in values)  # this machine's interfaces are not read
    (table,) = tables
    assert [(row.pid, row.name, row.cmdline) for row in table.rows] == [
        (31337, "hostonlyd", "/usr/sbin/hostonlyd --serve")
    ]
    assert table.total == 1


def test_host_root_points_psutil_at_the_other_proc(other_host):
    saved = psutil.PROCFS_PATH
    try:
        point_psutil_at(host_paths(other_host.root))
        assert psutil.PROCFS_PATH == other_host.root + "/proc"
        pids = psutil.pids()
        assert 31337 in pids and os.getpid() not in pids
    finally:
        psutil.PROCFS_PATH = saved


def test_per_namespace_files_are_read_through_the_hosts_init_under_a_host_root():
    assert HostPaths("/host").host_proc("net", "dev") == "/host/proc/1/net/dev"
    assert HostPaths("/").host_proc("net", "dev") == "/proc/self/net/dev"
    assert HostPaths("/host").on_host("/var/lib") == "/host/var/lib"


# ----- the real service tree


def first_message(bus, topic: str, wanted) -> defer.Deferred:
    d: defer.Deferred = defer.Deferred()

    def receive(_topic, message):
        if not d.called and wanted(message):
            d.callback(message)

    subscription = bus.subscribe(topic, receive)
    d.addBoth(lambda result: (subscription.cancel(), result)[1])
    return d


async def first_process_table(running) -> ProcessSnapshot | None:
    """The first process table the daemon's look-back stored (waits up to 10 s)."""
    (history,) = [s for s in running.service if isinstance(s, ProcessHistory)]
    for _ in range(100):
        if history.written:
            break
        await deferLater(reactor, 0.1, lambda: None)
    return await history.nearest(running.settings.host, int(time.time() * 1000), 60_000)


@pytest_twisted.ensureDeferred
async def test_the_daemon_runs_enabled_collectors_and_publishes_on_its_bus(make_settings):
    running = await start_daemon(make_settings(collectors="filesystems,processes", processes_interval="1s"))
    try:
        schedulers = [s for s in running.service if isinstance(s, SourceScheduler)]
        assert len(schedulers) == 1 and schedulers[0].running
        bus = running.core.bus
        # Folded into the next host sample, after the seed metrics.
        sample = await first_message(
            bus, METRICS_TOPIC, lambda m: any(k.startswith("disk_size_bytes{") for k in m.metrics)
        )
        assert isinstance(sample, Sample) and sample.host == "testhost" and "cpu_usage" in sample.metrics
        # Process tables go to the processes stream and its look-back, not
        # through the bus (they take no seq): the in-memory bus would have
        # delivered one at the moment the stream took it.
        on_bus = []
        bus.subscribe(PROCESSES_TOPIC, lambda topic, message: on_bus.append(message))
        snapshot = await first_process_table(running)
        assert isinstance(snapshot, ProcessSnapshot) and snapshot.table.total > 1
        assert on_bus == []
    finally:
        await running.stop()
    assert not schedulers[0].running


@pytest_twisted.ensureDeferred
async def test_the_default_daemon_runs_every_collector(make_settings):
    settings = make_settings()
    running = await start_daemon(replace(settings, collectors=load_settings({}, environ={}).collectors))
    try:
        schedulers = [s for s in running.service if isinstance(s, SourceScheduler)]
        assert len(schedulers) == 1 and {source.name for source in schedulers[0].sources} == {
            "filesystems",
            "disks",
            "netifs",
            "system",
            "sensors",
            "cgroups",
            "processes",
        }
    finally:
        await running.stop()


def test_bench_collector_runs_every_collector_and_ends_with_the_result_line():
    """`dashd bench collector` (short run): the RESULT line carries the four
    figures of the issue's budget (their values are the benchmark's job)."""
    import re
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "dashd_dev.bench", "collector", "--seconds", "4.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"RESULT collector_cpu_percent=([\d.]+) max_tick_block_ms=([\d.]+) "
        r"process_snapshot_ms=([\d.]+) series=(\d+)",
        last,
    )
    assert match, last
    assert float(match.group(3)) > 0 and int(match.group(4)) > 10
    assert "processes" in done.stdout and "bytes per snapshot" in done.stdout


@pytest_twisted.ensureDeferred
async def test_the_whole_daemon_reads_the_host_through_a_host_root(make_settings, tmp_path):
    """A symlink farm (root/proc -> /proc, root/sys -> /sys, root/etc ...) is
    a host root without bind mounts: the real daemon with host_root pointing
    at it reads this machine through it — psutil included."""
    root = tmp_path / "hostroot"
    root.mkdir()
    for name in ("proc", "sys"):
        (root / name).symlink_to("/" + name)
    saved = psutil.PROCFS_PATH
    try:
        running = await start_daemon(
            make_settings(
                host_root=str(root), collectors="netifs,processes", netifs_interval="1s", processes_interval="1s"
            )
        )
        try:
            assert psutil.PROCFS_PATH == str(root / "proc")
            bus = running.core.bus
            sample = await first_message(bus, METRICS_TOPIC, lambda m: series("net_link_up", iface="lo") in m.metrics)
            assert sample.metrics[series("net_link_up", iface="lo")] == 1.0
            snapshot = await first_process_table(running)
            assert snapshot.table.total > 1 and all(row.name for row in snapshot.table.rows)
        finally:
            await running.stop()
    finally:
        psutil.PROCFS_PATH = saved
