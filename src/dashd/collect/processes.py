"""The process table (issue 19 item 2, domain part): the top N processes by
CPU, memory or I/O, as htop and atop show them, and role-aware redaction
(the look-back encoding is dashd.store.processes).

Split like the host collector: a ProcessReader returns raw readings
(psutil on the real host, recorded lists in tests) and ProcessSampler does
the maths:

- CPU % and I/O bytes/s need two readings. A process is identified by
  (pid, create time), so a pid the kernel reused for a new process is a new
  process, not a continuation of the old one's counters;
- a process that appeared since the last reading is measured over its own
  life (its CPU time since it started over the time since it started), so a
  short-lived spinner shows up at once;
- a process that exited is dropped, and counted in `exited`;
- on the very first reading CPU % and I/O rates are unknown (None).

CPU % is of one core (a process busy on two cores shows 200 %), as in top
and htop. The table kept is the union of the top N by CPU, by memory and by
I/O, so that a client can sort it by any of the three.
"""

from __future__ import annotations

import heapq
import os
import pwd
import time
from dataclasses import dataclass, field, fields, replace
from typing import Callable, NamedTuple, Protocol

from dashd.collect.hostroot import HostPaths, read_text
from dashd.collect.sources import PROCESSES_TOPIC

CMDLINE_MAX = 256  # characters of a command line kept
ORDERS = ("cpu", "memory", "io")
# Roles that may see command lines and user names (they can carry secrets).
SENSITIVE_ROLES = frozenset({"operator", "admin"})


class ProcessReading(NamedTuple):
    """One process as read at one instant: counters are totals since it started.

    A NamedTuple, not a frozen dataclass: one is built per process per
    snapshot, and a frozen dataclass's __init__ cost five times as much."""

    pid: int
    ppid: int
    name: str
    user: str | None
    state: str
    cpu_seconds: float  # user + system
    rss: int
    threads: int
    io_read_bytes: int | None  # None: not readable (another user's process without root)
    io_write_bytes: int | None
    create_time: float  # Unix seconds
    cmdline: str | None


@dataclass(frozen=True)
class ProcessTableReading:
    wall: float  # Unix seconds, for the age of new processes
    monotonic: float
    total_memory: int
    processes: tuple[ProcessReading, ...]


class ProcessReader(Protocol):
    def read(self) -> ProcessTableReading:
        """Every process, without user and command line (they cost a file each)."""

    def details(self, reading: ProcessReading) -> ProcessReading:
        """The same process with its user and command line filled in."""


@dataclass(frozen=True)
class ProcessRow:
    """One row of the table as clients see it."""

    pid: int
    ppid: int
    name: str
    user: str | None
    state: str
    cpu_percent: float | None
    memory_percent: float
    rss: int
    threads: int
    io_read_bps: float | None
    io_write_bps: float | None
    start_time: float
    cmdline: str | None

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ROW_FIELDS = tuple(f.name for f in fields(ProcessRow))


@dataclass(frozen=True)
class ProcessTable:
    """The top processes at one instant. `total` counts every process on the
    host and `running` those in state R; `started`/`exited` count the churn
    since the previous table."""

    rows: tuple[ProcessRow, ...]
    total: int
    started: int = 0
    exited: int = 0
    running: int = 0

    def top(self, order: str = "cpu", n: int = 50) -> list[ProcessRow]:
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        return sorted(self.rows, key=_SORT_KEYS[order], reverse=True)[:n]

    def redacted_for(self, role: str) -> ProcessTable:
        """The table a user with `role` may see: viewers (and any role not
        known here) get no command lines and no user names."""
        if role in SENSITIVE_ROLES:
            return self
        return replace(self, rows=tuple(replace(row, cmdline=None, user=None) for row in self.rows))


_SORT_KEYS: dict[str, Callable[[ProcessRow], tuple]] = {
    "cpu": lambda r: (r.cpu_percent or 0.0, r.rss),
    "memory": lambda r: (r.rss, r.cpu_percent or 0.0),
    "io": lambda r: ((r.io_read_bps or 0.0) + (r.io_write_bps or 0.0), r.cpu_percent or 0.0),
}


@dataclass(frozen=True)
class ProcessSnapshot:
    """What goes on the bus's processes topic: one host's table at one time."""

    host: str
    timestamp_ms: int
    table: ProcessTable


@dataclass
class ProcessSampler:
    """Turns successive ProcessTableReadings into ProcessTables."""

    top_n: int = 50
    _previous: dict[tuple[int, float], ProcessReading] = field(default_factory=dict)
    _previous_at: float | None = None

    def table(
        self, reading: ProcessTableReading, details: Callable[[ProcessReading], ProcessReading] = lambda p: p
    ) -> ProcessTable:
        previous, previous_at = self._previous, self._previous_at
        current = {(p.pid, p.create_time): p for p in reading.processes}
        self._previous, self._previous_at = current, reading.monotonic
        elapsed = None if previous_at is None else reading.monotonic - previous_at
        # Rates for every process (cheap tuples), rows only for the chosen:
        # building 300 rows to keep 50-150 was half of the table's cost.
        rates = {key: _rates(p, previous.get(key), elapsed, reading.wall) for key, p in current.items()}
        started = exited = 0
        if previous_at is not None:
            started = sum(1 for key in current if key not in previous)
            exited = sum(1 for key in previous if key not in current)
        rows = tuple(
            self._row(details(current[key]), rates[key], reading.total_memory) for key in self._select(current, rates)
        )
        running = sum(1 for p in reading.processes if p.state == "running")
        return ProcessTable(rows=rows, total=len(current), started=started, exited=exited, running=running)

    @staticmethod
    def _row(
        p: ProcessReading, rates: tuple[float | None, float | None, float | None], total_memory: int
    ) -> ProcessRow:
        cpu, read_bps, write_bps = rates
        memory = round(100.0 * p.rss / total_memory, 2) if total_memory else 0.0
        return ProcessRow(
            pid=p.pid,
            ppid=p.ppid,
            name=p.name,
            user=p.user,
            state=p.state,
            cpu_percent=cpu,
            memory_percent=memory,
            rss=p.rss,
            threads=p.threads,
            io_read_bps=read_bps,
            io_write_bps=write_bps,
            start_time=round(p.create_time, 2),
            cmdline=p.cmdline,
        )

    def _select(
        self, current: dict[tuple[int, float], ProcessReading], rates: dict[tuple[int, float], tuple]
    ) -> list[tuple[int, float]]:
        """Keys of the union of the top N by CPU, memory and I/O, by CPU first."""
        by_cpu = lambda key: (rates[key][0] or 0.0, current[key].rss)  # noqa: E731
        by_memory = lambda key: (current[key].rss, rates[key][0] or 0.0)  # noqa: E731
        by_io = lambda key: ((rates[key][1] or 0.0) + (rates[key][2] or 0.0), rates[key][0] or 0.0)  # noqa: E731
        chosen: set[tuple[int, float]] = set()
        for key_of in (by_cpu, by_memory, by_io):
            chosen.update(heapq.nlargest(self.top_n, current, key=key_of))
        return sorted(chosen, key=by_cpu, reverse=True)


def _rates(
    p: ProcessReading, before: ProcessReading | None, elapsed: float | None, wall: float
) -> tuple[float | None, float | None, float | None]:
    """(CPU %, read B/s, write B/s) of one process; None where unknown."""
    if elapsed is None or elapsed <= 0:
        return None, None, None  # the first reading: nothing to compare with
    if before is not None:
        span = elapsed
        cpu: float | None = max(0.0, p.cpu_seconds - before.cpu_seconds)
        read_delta = _delta(before.io_read_bytes, p.io_read_bytes)
        write_delta = _delta(before.io_write_bytes, p.io_write_bytes)
    else:
        # New since the last reading (or its pid was reused): measure it over
        # its own life. Clock skew could make the age tiny or negative; never
        # divide by less than 10 ms.
        span = max(0.01, min(elapsed, wall - p.create_time))
        cpu = p.cpu_seconds
        read_delta, write_delta = p.io_read_bytes, p.io_write_bytes
    return (
        round(100.0 * cpu / span, 1),
        None if read_delta is None else round(read_delta / span, 1),
        None if write_delta is None else round(write_delta / span, 1),
    )


def _delta(before: int | None, after: int | None) -> int | None:
    if before is None or after is None or after < before:
        return None
    return after - before


STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "Z": "zombie",
    "T": "stopped",
    "t": "tracing-stop",
    "X": "dead",
    "I": "idle",
    "P": "parked",
    "W": "waking",
    "K": "wake-kill",
}


class _StatLine(NamedTuple):
    pid: int
    comm: str
    state: str
    ppid: int
    ticks: int  # utime + stime
    threads: int
    start_ticks: int
    rss_pages: int


def parse_proc_stat(pid: int, text: str) -> _StatLine | None:
    """/proc/PID/stat; the command name may hold spaces and parentheses, so
    the fields are counted from its last ')'."""
    close = text.rfind(")")
    if close < 0:
        return None
    fields_ = text[close + 2 :].split()
    if len(fields_) < 22:
        return None
    return _StatLine(
        pid=pid,
        comm=text[text.find("(") + 1 : close],
        state=fields_[0],
        ppid=int(fields_[1]),
        ticks=int(fields_[11]) + int(fields_[12]),
        threads=int(fields_[17]),
        start_ticks=int(fields_[19]),
        rss_pages=int(fields_[21]),
    )


class ProcfsProcessReader:
    """Reads every process from /proc under HostPaths (a host root works).

    Written against /proc directly rather than psutil.process_iter: psutil
    opens five files per process and builds objects for each, about 0.4 ms
    a process here, which is 120 ms for 300 processes; the table's budget is
    15 ms. This reads /proc/PID/stat and /proc/PID/io for every process (all
    that sorting by CPU, memory and I/O needs) and the owner and command
    line only for the rows that make the table (`details`)."""

    def __init__(
        self,
        paths: HostPaths,
        cmdlines: bool = True,
        cmdline_max: int = CMDLINE_MAX,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = paths
        self.cmdlines = cmdlines
        self.cmdline_max = cmdline_max
        self._wall = wall
        self._monotonic = monotonic
        self._users: dict[int, str] = {}
        self._details: dict[tuple[int, float], tuple[str, str | None, str | None, str]] = {}
        self._last_io: dict[tuple[int, int], tuple[int, tuple[int | None, int | None]]] = {}
        self._tick = float(os.sysconf("SC_CLK_TCK"))
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._boot_time = _boot_time(read_text(paths.proc("stat")) or "")
        self._total_memory = _mem_total(read_text(paths.proc("meminfo")) or "")

    def read(self) -> ProcessTableReading:
        processes = []
        seen: dict[tuple[int, int], tuple[int, tuple[int | None, int | None]]] = {}
        proc = self._paths.proc() + os.sep
        for entry in os.listdir(proc):
            if not entry.isdigit():
                continue
            text = _read_small(proc + entry + "/stat")
            stat = parse_proc_stat(int(entry), text) if text else None
            if stat is None:
                continue  # exited while we listed /proc
            identity = (stat.pid, stat.start_ticks)
            known = self._last_io.get(identity)
            if known is not None and known[0] == stat.ticks and stat.state != "D":
                # No CPU time since the last reading and not in disk wait:
                # it has issued no I/O (bytes are counted when a syscall
                # dirties or reads them), so its counters are unchanged.
                # Skipping /proc/PID/io for idle processes halves the reads.
                io = known[1]
            else:
                io = _io(_read_small(proc + entry + "/io"))
            seen[identity] = (stat.ticks, io)
            processes.append(
                ProcessReading(
                    pid=stat.pid,
                    ppid=stat.ppid,
                    name=stat.comm,
                    user=None,
                    state=STATES.get(stat.state, stat.state),
                    cpu_seconds=stat.ticks / self._tick,
                    rss=stat.rss_pages * self._page,
                    threads=stat.threads,
                    io_read_bytes=io[0],
                    io_write_bytes=io[1],
                    create_time=round(self._boot_time + stat.start_ticks / self._tick, 2),
                    cmdline=None,
                )
            )
        self._last_io = seen
        return ProcessTableReading(
            wall=self._wall(), monotonic=self._monotonic(), total_memory=self._total_memory, processes=tuple(processes)
        )

    def details(self, reading: ProcessReading) -> ProcessReading:
        """The reading with its user and (if enabled) command line; a process
        that exited meanwhile keeps what it had.

        Cached per (pid, create time) while the process lives and keeps its
        command name: a process's owner and arguments rarely change, and
        reading them for every row of every table was a third of the table's
        cost."""
        key = (reading.pid, reading.create_time)
        cached = self._details.get(key)
        # exec() keeps the pid and start time but changes comm: read again.
        if cached is None or cached[0] != reading.name:
            cached = self._details[key] = (reading.name, *self._read_details(reading))
        _, user, cmdline, name = cached
        return ProcessReading(
            reading.pid,
            reading.ppid,
            name,
            user,
            reading.state,
            reading.cpu_seconds,
            reading.rss,
            reading.threads,
            reading.io_read_bytes,
            reading.io_write_bytes,
            reading.create_time,
            cmdline,
        )

    def forget_exited(self, alive: set[tuple[int, float]]) -> None:
        for key in [key for key in self._details if key not in alive]:
            del self._details[key]

    def _read_details(self, reading: ProcessReading) -> tuple[str | None, str | None, str]:
        directory = self._paths.proc(str(reading.pid))
        try:
            user = self._user(os.stat(directory).st_uid)
        except OSError:
            return reading.user, reading.cmdline, reading.name
        cmdline = None
        name = reading.name
        raw = _read_small(os.path.join(directory, "cmdline"), limit=self.cmdline_max * 4)
        if raw:
            argv = raw.rstrip("\0").split("\0")
            # comm is cut at 15 characters; the program's own name is longer.
            program = os.path.basename(argv[0]) if argv and argv[0] else ""
            if len(name) == 15 and program.startswith(name):
                name = program
            if self.cmdlines:
                cmdline = " ".join(argv)[: self.cmdline_max]
        return user, cmdline, name

    def _user(self, uid: int) -> str:
        # Cached: a passwd lookup per row per snapshot would cost more than
        # the rest. Under a host root the names come from this container's
        # passwd: a uid with no entry shows as its number.
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]


def _read_small(path: str, limit: int = 4096) -> str | None:
    # os.open/os.read: a third of the cost of open().read() for the
    # thousands of tiny /proc files one table reads.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _boot_time(stat_text: str) -> float:
    for line in stat_text.splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


def _mem_total(meminfo_text: str) -> int:
    for line in meminfo_text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _io(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return None, None  # another user's process, read without root
    read = write = None
    for line in text.splitlines():
        if line.startswith("read_bytes:"):
            read = int(line.split()[1])
        elif line.startswith("write_bytes:"):
            write = int(line.split()[1])
    return read, write


class ProcessSource:
    """Source `processes`: one ProcessTable per read, on the processes topic."""

    name = "processes"
    topic = PROCESSES_TOPIC

    def __init__(self, reader: ProcessReader, top_n: int = 50) -> None:
        self._reader = reader
        self._sampler = ProcessSampler(top_n=top_n)

    def envelope(self, host: str, timestamp_ms: int, table: ProcessTable) -> ProcessSnapshot:
        return ProcessSnapshot(host, timestamp_ms, table)

    def read(self) -> ProcessTable:
        reading = self._reader.read()
        table = self._sampler.table(reading, self._reader.details)
        forget = getattr(self._reader, "forget_exited", None)
        if forget is not None:
            forget({(p.pid, p.create_time) for p in reading.processes})
        return table
