"""The process table: CPU % and I/O from two readings with churn (new,
exited, pid reuse) handled, top N by CPU, memory or I/O, redaction for
viewers (the look-back encoding is tested in test_processes_stream.py), and on the real host a process the
test starts shows up with its name and a CPU % that rises when it spins."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from dashd.collect.hostroot import HostPaths
from dashd.collect.processes import (
    ProcessReading,
    ProcessSampler,
    ProcessSource,
    ProcessTable,
    ProcessTableReading,
    ProcfsProcessReader,
    parse_proc_stat,
)
from fakehost import BOOT_TIME, CLK_TCK, PAGE, FakeHost

GIB = 1 << 30


def proc(pid, cpu=0.0, rss=100 << 20, created=1000.0, io=(0, 0), name=None, user="alice", cmdline=None):
    return ProcessReading(
        pid=pid,
        ppid=1,
        name=name or f"p{pid}",
        user=user,
        state="running",
        cpu_seconds=cpu,
        rss=rss,
        threads=1,
        io_read_bytes=io[0],
        io_write_bytes=io[1],
        create_time=created,
        cmdline=cmdline if cmdline is not None else f"/usr/bin/p{pid} --token=s3cret",
    )


def reading(at, *processes, wall=None):
    return ProcessTableReading(
        wall=wall if wall is not None else 2000.0 + at, monotonic=at, total_memory=8 * GIB, processes=tuple(processes)
    )


def rows_by_pid(table: ProcessTable) -> dict:
    return {row.pid: row for row in table.rows}


def test_the_first_table_has_no_cpu_or_io_rates_yet():
    table = ProcessSampler().table(reading(0.0, proc(1, cpu=5.0)))
    (row,) = table.rows
    assert (row.cpu_percent, row.io_read_bps, row.io_write_bps) == (None, None, None)
    assert row.memory_percent == round(100 * (100 << 20) / (8 * GIB), 2)
    assert table.total == 1


def test_cpu_and_io_come_from_the_difference_of_two_readings():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(1, cpu=5.0, io=(1000, 0))))
    row = sampler.table(reading(2.0, proc(1, cpu=6.5, io=(5000, 2048)))).rows[0]
    assert (row.cpu_percent, row.io_read_bps, row.io_write_bps) == (75.0, 2000.0, 1024.0)


def test_a_multithreaded_process_can_exceed_100_percent_of_one_core():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(1, cpu=0.0)))
    assert sampler.table(reading(1.0, proc(1, cpu=1.8))).rows[0].cpu_percent == 180.0


def test_a_new_process_is_measured_over_its_own_life_and_counted_as_started():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(1), wall=2000.0))
    # p2 started 0.5 s before the second reading and has used 0.25 s of CPU.
    table = sampler.table(reading(2.0, proc(1), proc(2, cpu=0.25, created=2001.5, io=(4096, 0)), wall=2002.0))
    assert rows_by_pid(table)[2].cpu_percent == 50.0
    assert rows_by_pid(table)[2].io_read_bps == 8192.0
    assert (table.started, table.exited, table.total) == (1, 0, 2)


def test_running_counts_every_process_in_state_r_not_only_the_rows_kept():
    sleeping = [proc(pid)._replace(state="sleeping") for pid in range(10, 20)]
    table = ProcessSampler(top_n=2).table(reading(0.0, proc(1), proc(2), proc(3), *sleeping))
    assert (table.running, table.total, len(table.rows)) == (3, 13, 2)


def test_an_exited_process_is_dropped_and_counted():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(1), proc(2)))
    table = sampler.table(reading(1.0, proc(1)))
    assert set(rows_by_pid(table)) == {1} and table.exited == 1


def test_a_reused_pid_is_a_new_process_not_a_negative_or_huge_delta():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(7, cpu=500.0, created=1000.0, io=(10 << 30, 0)), wall=2000.0))
    # pid 7 exited; the kernel gave 7 to a new process 0.5 s ago.
    table = sampler.table(reading(1.0, proc(7, cpu=0.1, created=2000.5, io=(0, 0)), wall=2001.0))
    row = table.rows[0]
    assert row.cpu_percent == 20.0 and row.io_read_bps == 0.0
    assert row.start_time == 2000.5
    assert (table.started, table.exited) == (1, 1)


def test_io_that_cannot_be_read_stays_unknown_rather_than_zero():
    sampler = ProcessSampler()
    sampler.table(reading(0.0, proc(1, io=(None, None))))  # type: ignore[arg-type]
    row = sampler.table(reading(1.0, proc(1, io=(None, None)))).rows[0]  # type: ignore[arg-type]
    assert row.io_read_bps is None and row.io_write_bps is None


def test_the_table_keeps_the_top_n_by_cpu_memory_and_io_and_sorts_by_each():
    sampler = ProcessSampler(top_n=1)
    processes = [proc(1, cpu=0.0), proc(2, cpu=0.0, rss=4 * GIB), proc(3, cpu=0.0, io=(0, 0)), proc(4)]
    sampler.table(reading(0.0, *processes))
    table = sampler.table(
        reading(1.0, proc(1, cpu=0.9), proc(2, cpu=0.1, rss=4 * GIB), proc(3, io=(0, 1 << 20)), proc(4))
    )
    assert set(rows_by_pid(table)) == {1, 2, 3}  # pid 4 is top in nothing
    assert [r.pid for r in table.top("cpu", 3)] == [1, 2, 3]
    assert table.top("memory", 1)[0].pid == 2
    assert table.top("io", 1)[0].pid == 3
    assert table.total == 4
    with pytest.raises(ValueError, match="order must be one of"):
        table.top("name")


def test_viewers_get_no_command_lines_or_user_names():
    table = ProcessSampler().table(reading(0.0, proc(1)))
    for role in ("viewer", "", "nobody"):
        redacted = table.redacted_for(role)
        assert all(row.cmdline is None and row.user is None for row in redacted.rows)
        assert redacted.rows[0].name == "p1"
    for role in ("operator", "admin"):
        assert table.redacted_for(role).rows[0].cmdline == "/usr/bin/p1 --token=s3cret"
        assert table.redacted_for(role).rows[0].user == "alice"


# ----- /proc reader, recorded


def test_proc_stat_with_spaces_and_parentheses_in_the_name():
    line = parse_proc_stat(42, "42 (tmux: server (1)) S 1 42 42 0 -1 0 0 0 0 0 30 12 0 0 20 0 3 0 555 0 77 0 0\n")
    assert (line.comm, line.state, line.ppid, line.ticks, line.threads, line.start_ticks, line.rss_pages) == (
        "tmux: server (1)",
        "S",
        1,
        42,
        3,
        555,
        77,
    )


def test_the_proc_reader_under_a_host_root_reads_that_hosts_processes(tmp_path):
    host = FakeHost(str(tmp_path / "host"))
    host.base(mem_total_kib=4 * 1024 * 1024)
    host.process(
        4242,
        "postgres",
        cpu_ticks=10 * CLK_TCK,
        start_ticks=50 * CLK_TCK,
        rss_pages=1000,
        threads=7,
        io=(1 << 20, 2 << 20),
        cmdline=["postgres: writer", "-D", "/var/lib/pg"],
    )
    host.process(17, "averyveryverylo", cpu_ticks=0, cmdline=["/opt/bin/averyveryverylongname"], io=None)
    reader = ProcfsProcessReader(HostPaths(host.root))
    snapshot = reader.read()
    assert {p.pid for p in snapshot.processes} == {4242, 17}
    assert snapshot.total_memory == 4 * GIB
    pg = next(p for p in snapshot.processes if p.pid == 4242)
    assert (pg.cpu_seconds, pg.rss, pg.threads, pg.io_read_bytes, pg.state) == (
        10.0,
        1000 * PAGE,
        7,
        1 << 20,
        "sleeping",
    )
    assert pg.create_time == BOOT_TIME + 50
    detailed = reader.details(pg)
    assert detailed.cmdline == "postgres: writer -D /var/lib/pg"
    assert detailed.user is not None
    other = next(p for p in snapshot.processes if p.pid == 17)
    assert other.io_read_bytes is None  # /proc/PID/io unreadable: unknown, not zero
    assert reader.details(other).name == "averyveryverylongname"  # comm is cut at 15 characters


def test_command_lines_can_be_turned_off(tmp_path):
    host = FakeHost(str(tmp_path / "host"))
    host.base()
    host.process(5, "sshd", cmdline=["sshd:", "alice@pts/0"])
    reader = ProcfsProcessReader(HostPaths(host.root), cmdlines=False)
    table = ProcessSource(reader).read()
    assert table.rows[0].cmdline is None and table.rows[0].name == "sshd"


def test_pid_reuse_under_the_proc_reader_resets_cached_details(tmp_path):
    host = FakeHost(str(tmp_path / "host"))
    host.base()
    host.process(9, "old", start_ticks=100, cmdline=["old", "--x"])
    source = ProcessSource(ProcfsProcessReader(HostPaths(host.root)))
    assert source.read().rows[0].cmdline == "old --x"
    host.remove_process(9)
    host.process(9, "new", start_ticks=900, cmdline=["new", "--y"])
    row = source.read().rows[0]
    assert (row.name, row.cmdline) == ("new", "new --y")


# ----- the real host


def test_a_process_started_by_the_test_shows_in_the_top_n_and_its_cpu_rises_when_it_spins():
    """The child waits on stdin (idle), then spins once told to."""
    source = ProcessSource(ProcfsProcessReader(HostPaths("/")), top_n=10)
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline()\nwhile True: pass", "dashd-test-spinner"],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)  # let the interpreter start; no assertion on timing
        source.read()
        time.sleep(0.5)
        idle = rows_by_pid(source.read()).get(child.pid)
        idle_cpu = idle.cpu_percent if idle is not None else 0.0
        child.stdin.write("spin\n")
        child.stdin.flush()
        source.read()
        # On a loaded machine the spinner gets what the scheduler gives it:
        # read once a second until it shows (at most 15 tries), and ask only
        # that its CPU rose well above its idle reading.
        row = None
        for _ in range(15):
            time.sleep(1.0)
            row = rows_by_pid(source.read()).get(child.pid)
            if row is not None and row.cpu_percent > idle_cpu + 5.0:
                break
        assert row is not None, "the spinning child is not in the top 10 by CPU"
        assert row.cpu_percent > idle_cpu + 5.0
        assert row.name.startswith("python")
        assert row.cmdline.endswith("dashd-test-spinner")
        assert row.ppid == os.getpid()
        assert row.user == "root"
        assert row.state in ("running", "sleeping")
    finally:
        child.kill()
        child.wait()


def test_an_idle_process_keeps_its_io_counters_without_rereading_them(tmp_path):
    """/proc/PID/io is read again only for a process that used CPU (or waits
    on disk) since the last reading: an idle one cannot have issued I/O."""
    host = FakeHost(str(tmp_path / "host"))
    host.base()
    host.process(5, "idle", cpu_ticks=10, io=(100, 200))
    host.process(6, "busy", cpu_ticks=10, io=(100, 200))
    reader = ProcfsProcessReader(HostPaths(host.root))
    reader.read()
    host.process(5, "idle", cpu_ticks=10, io=(999, 999))  # a change the kernel could not have made
    host.process(6, "busy", cpu_ticks=11, io=(300, 400))
    by_pid = {p.pid: p for p in reader.read().processes}
    assert (by_pid[5].io_read_bytes, by_pid[5].io_write_bytes) == (100, 200)
    assert (by_pid[6].io_read_bytes, by_pid[6].io_write_bytes) == (300, 400)


def test_a_process_that_execs_another_program_gets_its_new_command_line(tmp_path):
    """fork + exec keeps the pid and the start time; the cached command line
    must not outlive the program it belonged to."""
    host = FakeHost(str(tmp_path / "host"))
    host.base()
    host.process(12, "bash", start_ticks=300, cmdline=["bash", "-c", "make test"])
    source = ProcessSource(ProcfsProcessReader(HostPaths(host.root)))
    assert source.read().rows[0].cmdline == "bash -c make test"
    host.process(12, "make", start_ticks=300, cmdline=["make", "test"])
    row = source.read().rows[0]
    assert (row.name, row.cmdline) == ("make", "make test")
