"""Services and containers from /sys/fs/cgroup in all three layouts: a
recorded cgroup v2 tree (tests/data/cgroup-v2), a v1 tree written by the
test, and this machine's real v1/hybrid tree, where the test creates a
child group, puts a spinning process in it and sees its CPU."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from dashd.collect.cgroups import CgroupSource, detect_layout, list_groups, names_from_path
from dashd.collect.hostroot import HostPaths
from dashd.collect.series_names import parse_series, series
from fakehost import FakeHost, StepClock

NGINX = "/system.slice/nginx.service"
DOCKER = "/system.slice/docker-3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e.scope"
POD_CONTAINER = (
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f6a_7b8c_9d0e_1f2a3b4c5d6e"
    ".slice/cri-containerd-aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899.scope"
)


def by_family(values: dict[str, float], family: str) -> dict[str, float]:
    return {parse_series(n).label("cgroup"): v for n, v in values.items() if parse_series(n).family == family}


# ----- names


@pytest.mark.parametrize(
    "path, labels",
    [
        (NGINX, {"unit": "nginx.service"}),
        (DOCKER, {"container": "3f4e5d6c7b8a"}),
        ("/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", {"container": "0123456789ab"}),
        (POD_CONTAINER, {"container": "aabbccddeeff", "pod": "1b2c3d4e-5f6a-7b8c-9d0e-1f2a3b4c5d6e"}),
        ("/user.slice/user-1000.slice/session-3.scope", {"unit": "session-3.scope"}),
        ("/process_api/92feeb02", {}),
    ],
)
def test_unit_container_and_pod_names_come_from_the_path(path, labels):
    assert names_from_path(path) == labels


# ----- v2, recorded


@pytest.fixture
def v2_host(tmp_path) -> FakeHost:
    host = FakeHost(str(tmp_path / "host"))
    host.copy_cgroup_tree("cgroup-v2")
    return host


def test_a_cgroup_v2_tree_is_detected_as_unified(v2_host):
    layout = detect_layout(HostPaths(v2_host.root).cgroup_root)
    assert layout.kind == "v2" and set(layout.controllers) == {"cpu", "memory", "io", "pids"}


def test_v2_groups_are_listed_shallow_first_to_the_depth_limit(v2_host):
    layout = detect_layout(HostPaths(v2_host.root).cgroup_root)
    assert list_groups(layout, max_depth=2, max_groups=100) == [
        "/kubepods.slice",
        "/system.slice",
        "/user.slice",
        "/kubepods.slice/kubepods-burstable.slice",
        DOCKER,
        NGINX,
    ]
    assert POD_CONTAINER in list_groups(layout, max_depth=4, max_groups=100)
    assert len(list_groups(layout, max_depth=4, max_groups=3)) == 3


def test_v2_memory_limit_pids_and_rates_from_two_readings(v2_host):
    clock = StepClock(0.0)
    source = CgroupSource(HostPaths(v2_host.root), clock=clock)
    first = source.read()
    assert by_family(first, "cgroup_memory_used_bytes")[NGINX] == 52_428_800 - 2_428_800  # less inactive file cache
    assert by_family(first, "cgroup_memory_limit_bytes")[NGINX] == 268435456.0
    assert "/system.slice" not in by_family(first, "cgroup_memory_limit_bytes")  # memory.max is "max"
    assert by_family(first, "cgroup_pids")[DOCKER] == 12.0
    assert by_family(first, "cgroup_cpu_percent") == {}  # a rate needs two readings
    nginx_dir = os.path.join(v2_host.root, "sys/fs/cgroup", NGINX.lstrip("/"))
    v2_host.write(os.path.join(nginx_dir, "cpu.stat"), "usage_usec 121500000\nuser_usec 1\nsystem_usec 1\n")
    v2_host.write(
        os.path.join(nginx_dir, "io.stat"),
        "8:0 rbytes=3145728 wbytes=2097152 rios=1 wios=1\n253:0 rbytes=0 wbytes=8192 rios=0 wios=0\n",
    )
    clock.now = 2.0
    second = source.read()
    assert by_family(second, "cgroup_cpu_percent")[NGINX] == 75.0  # 1.5 s of CPU in 2 s
    assert by_family(second, "cgroup_cpu_percent")[DOCKER] == 0.0
    assert by_family(second, "cgroup_io_read_bytes_per_second")[NGINX] == 1048576.0
    assert by_family(second, "cgroup_io_write_bytes_per_second")[NGINX] == 2048.0
    labels = {"cgroup": NGINX, "unit": "nginx.service"}
    assert series("cgroup_cpu_percent", **labels) in second
    container = series("cgroup_pids", cgroup=DOCKER, container="3f4e5d6c7b8a")
    assert second[container] == 12.0


def test_a_host_without_cgroups_has_no_cgroup_series(tmp_path):
    source = CgroupSource(HostPaths(str(tmp_path)))
    assert source.layout.kind == "none" and source.read() == {}


# ----- v1, written by the test


@pytest.fixture
def v1_host(tmp_path) -> FakeHost:
    host = FakeHost(str(tmp_path / "host"))
    base = "sys/fs/cgroup"
    for controller in ("cpu,cpuacct", "memory", "blkio", "pids", "freezer"):
        os.makedirs(os.path.join(host.root, base, controller), exist_ok=True)
    group = "/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    host.write(f"{base}/cpu,cpuacct{group}/cpuacct.usage", "5000000000\n")
    host.write(f"{base}/memory{group}/memory.usage_in_bytes", "300000000\n")
    host.write(f"{base}/memory{group}/memory.stat", "cache 1000\ntotal_inactive_file 100000000\n")
    host.write(f"{base}/memory{group}/memory.limit_in_bytes", "9223372036854771712\n")
    host.write(
        f"{base}/blkio{group}/blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 1000\n8:0 Write 2000\n8:0 Sync 3000\n8:0 Total 3000\nTotal 3000\n",
    )
    host.write(f"{base}/pids{group}/pids.current", "7\n")
    host.group = group  # type: ignore[attr-defined]
    return host


def test_v1_hierarchies_are_found_even_when_cpu_and_cpuacct_share_a_mount(v1_host):
    layout = detect_layout(HostPaths(v1_host.root).cgroup_root)
    assert layout.kind == "v1"
    assert {name: version for name, (_, version) in layout.controllers.items()} == {
        "cpuacct": 1,
        "memory": 1,
        "blkio": 1,
        "pids": 1,
    }
    assert layout.controllers["cpuacct"][0].endswith("cpu,cpuacct")


def test_v1_values_and_an_unlimited_memory_limit(v1_host):
    clock = StepClock(0.0)
    source = CgroupSource(HostPaths(v1_host.root), clock=clock)
    group = v1_host.group
    first = source.read()
    assert by_family(first, "cgroup_memory_used_bytes")[group] == 200_000_000.0
    assert group not in by_family(first, "cgroup_memory_limit_bytes")
    assert by_family(first, "cgroup_pids")[group] == 7.0
    v1_host.write(f"sys/fs/cgroup/cpu,cpuacct{group}/cpuacct.usage", "7000000000\n")
    v1_host.write(
        f"sys/fs/cgroup/blkio{group}/blkio.throttle.io_service_bytes_recursive", "8:0 Read 5000\n8:0 Write 2000\n"
    )
    clock.now = 4.0
    second = source.read()
    assert by_family(second, "cgroup_cpu_percent")[group] == 50.0
    assert by_family(second, "cgroup_io_read_bytes_per_second")[group] == 1000.0
    assert by_family(second, "cgroup_io_write_bytes_per_second")[group] == 0.0


def test_hybrid_reads_v1_controllers_and_a_controller_only_unified_offers(v1_host):
    root = os.path.join(v1_host.root, "sys/fs/cgroup")
    shutil.rmtree(os.path.join(root, "pids"))
    v1_host.write("sys/fs/cgroup/unified/cgroup.controllers", "pids\n")
    v1_host.write("sys/fs/cgroup/unified/system.slice/cron.service/pids.current", "3\n")
    layout = detect_layout(root)
    assert layout.kind == "hybrid"
    assert layout.controllers["pids"] == (os.path.join(root, "unified"), 2)
    values = CgroupSource(HostPaths(v1_host.root)).read()
    assert values[series("cgroup_pids", cgroup="/system.slice/cron.service", unit="cron.service")] == 3.0


# ----- this machine, for real


def test_this_machine_layout_is_detected():
    layout = detect_layout("/sys/fs/cgroup")
    assert layout.kind in ("v1", "hybrid", "v2")
    assert "memory" in layout.controllers


def _cpu_hierarchy() -> str | None:
    layout = detect_layout("/sys/fs/cgroup")
    entry = layout.controllers.get("cpuacct") or layout.controllers.get("cpu")
    return entry[0] if entry else None


def test_a_child_cgroup_with_a_spinning_process_shows_its_cpu(tmp_path):
    """Creates /dashd-test-PID in the real cpuacct (or v2) hierarchy, moves a
    busy process into it and reads its CPU; where the machine does not allow
    creating a group, reads the group this test runs in instead."""
    hierarchy = _cpu_hierarchy()
    assert hierarchy is not None
    name = f"/dashd-test-{os.getpid()}"
    directory = hierarchy + name
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        try:
            os.mkdir(directory)
            with open(os.path.join(directory, "cgroup.procs"), "w") as f:
                f.write(str(spinner.pid))
            group = name
        except OSError:
            pytest.skip("cannot create a cgroup here; test_the_tests_own_group_is_read covers reading")
        source = CgroupSource(HostPaths("/"), max_depth=1, max_groups=10_000)
        source.read()
        # The spinner runs; on a loaded machine it gets what it gets, so
        # read once a second until its group shows CPU (at most 15 tries).
        for _ in range(15):
            time.sleep(1.0)
            values = source.read()
            cpu = by_family(values, "cgroup_cpu_percent")
            if cpu.get(group, 0.0) > 5.0:
                break
        assert cpu[group] > 5.0, cpu.get(group)
        if "pids" in source.layout.controllers and source.layout.controllers["pids"][0] == hierarchy:
            assert by_family(values, "cgroup_pids")[group] == 1.0
    finally:
        spinner.kill()
        spinner.wait()
        if os.path.isdir(directory):
            os.rmdir(directory)


def test_the_tests_own_group_is_read():
    """The memory group this process is in (the real v1/hybrid tree) reports
    at least this process's memory."""
    own = None
    for line in open("/proc/self/cgroup"):
        _, controllers, path = line.strip().split(":", 2)
        if "memory" in controllers.split(",") or (controllers == "" and path != "/"):
            own = path
    if own in (None, "/"):
        pytest.skip("this process is in the root memory group")
    depth = own.count("/")
    values = CgroupSource(HostPaths("/"), max_depth=depth, max_groups=10_000).read()
    used = by_family(values, "cgroup_memory_used_bytes")
    import resource

    assert used[own] >= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 4
