"""A /proc and /sys tree under another root, written file by file: the
recorded readings of the collector tests, and the host root of the
`host_root` test (issue 19 item 6). Values are in the kernel's own formats."""

from __future__ import annotations

import os
import shutil

DATA = os.path.join(os.path.dirname(__file__), "data")
BOOT_TIME = 1_700_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

NET_DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
)
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


class FakeHost:
    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def write(self, relative: str, text: str) -> str:
        path = os.path.join(self.root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    # ----- /proc

    def base(self, mem_total_kib: int = 8_000_000, ctxt: int = 1000, intr: int = 500) -> None:
        self.write(
            "proc/stat", f"cpu  1 2 3 4 5 6 7 0 0 0\nintr {intr} 1 2 3\nctxt {ctxt}\nbtime {BOOT_TIME}\nprocesses 100\n"
        )
        self.write("proc/meminfo", f"MemTotal:       {mem_total_kib} kB\nMemFree:        1000 kB\n")
        self.write("proc/filesystems", "nodev\tsysfs\nnodev\tproc\nnodev\ttmpfs\n\text4\n\txfs\nnodev\tnfs4\n")
        self.write("proc/sys/fs/file-nr", "4096\t96\t9223372036854775807\n")

    def mounts(self, lines: list[tuple[str, str, str]], pid: str = "1") -> None:
        text = "".join(f"{dev} {mp.replace(' ', chr(92) + '040')} {fs} rw,relatime 0 0\n" for dev, mp, fs in lines)
        self.write(f"proc/{pid}/mounts", text)

    def diskstats(self, disks: dict[str, tuple[int, int, int, int, int]], partitions: tuple[str, ...] = ()) -> None:
        """name -> (reads, sectors read, writes, sectors written, busy ms)."""
        lines = []
        for name, (reads, rsect, writes, wsect, busy) in disks.items():
            lines.append(f"   8       0 {name} {reads} 0 {rsect} 0 {writes} 0 {wsect} 0 0 {busy} 0 0 0 0 0 0 0\n")
            if name not in partitions:
                os.makedirs(os.path.join(self.root, "sys/block", name), exist_ok=True)
        self.write("proc/diskstats", "".join(lines))

    def net_dev(self, interfaces: dict[str, tuple[int, int, int, int, int, int, int, int]], pid: str = "1") -> None:
        """iface -> (rx bytes, rx packets, rx errs, rx drop, tx bytes, tx packets, tx errs, tx drop)."""
        lines = [NET_DEV_HEADER]
        for name, (rb, rp, re_, rd, tb, tp, te, td) in interfaces.items():
            lines.append(f"{name:>6}: {rb} {rp} {re_} {rd} 0 0 0 0 {tb} {tp} {te} {td} 0 0 0 0\n")
        self.write(f"proc/{pid}/net/dev", "".join(lines))

    def link(self, iface: str, state: str, speed: int | None) -> None:
        self.write(f"sys/class/net/{iface}/operstate", state + "\n")
        if speed is not None:
            self.write(f"sys/class/net/{iface}/speed", f"{speed}\n")

    def tcp(self, sockets: list[tuple[int, str]], v6: list[tuple[int, str]] = (), pid: str = "1") -> None:
        """(local port, state hex) per socket."""
        for name, entries in (("tcp", sockets), ("tcp6", v6)):
            lines = [TCP_HEADER]
            for i, (port, state) in enumerate(entries):
                lines.append(
                    f"   {i}: 0100007F:{port:04X} 0100007F:1F90 {state} 00000000:00000000 00:00000000 "
                    f"00000000     0        0 {1000 + i} 1\n"
                )
            self.write(f"proc/{pid}/net/{name}", "".join(lines))

    def process(
        self,
        pid: int,
        comm: str,
        *,
        ppid: int = 1,
        state: str = "S",
        cpu_ticks: int = 0,
        threads: int = 1,
        start_ticks: int = 100,
        rss_pages: int = 100,
        io: tuple[int, int] | None = (0, 0),
        cmdline: list[str] | None = None,
    ) -> None:
        utime, stime = cpu_ticks // 2, cpu_ticks - cpu_ticks // 2
        fields = [
            state,
            ppid,
            pid,
            pid,
            0,
            -1,
            4194560,
            0,
            0,
            0,
            0,
            utime,
            stime,
            0,
            0,
            20,
            0,
            threads,
            0,
            start_ticks,
            1000000,
            rss_pages,
        ] + [0] * 30
        self.write(f"proc/{pid}/stat", f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n")
        if io is not None:
            self.write(
                f"proc/{pid}/io",
                f"rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: {io[0]}\n"
                f"write_bytes: {io[1]}\ncancelled_write_bytes: 0\n",
            )
        elif os.path.exists(os.path.join(self.root, f"proc/{pid}/io")):
            os.remove(os.path.join(self.root, f"proc/{pid}/io"))
        self.write(f"proc/{pid}/cmdline", "\0".join(cmdline or [comm]) + "\0")

    def remove_process(self, pid: int) -> None:
        shutil.rmtree(os.path.join(self.root, f"proc/{pid}"))

    # ----- /sys

    def hwmon(
        self,
        index: int,
        chip: str,
        temps: dict[int, tuple[str | None, int, int | None, int | None]],
        fans: dict[int, int] | None = None,
    ) -> None:
        """temp number -> (label, input m°C, max m°C, crit m°C)."""
        base = f"sys/class/hwmon/hwmon{index}"
        self.write(f"{base}/name", chip + "\n")
        for n, (label, value, high, crit) in temps.items():
            self.write(f"{base}/temp{n}_input", f"{value}\n")
            if label:
                self.write(f"{base}/temp{n}_label", label + "\n")
            if high is not None:
                self.write(f"{base}/temp{n}_max", f"{high}\n")
            if crit is not None:
                self.write(f"{base}/temp{n}_crit", f"{crit}\n")
        for n, rpm in (fans or {}).items():
            self.write(f"{base}/fan{n}_input", f"{rpm}\n")

    def battery(self, name: str, capacity: int, status: str) -> None:
        self.write(f"sys/class/power_supply/{name}/type", "Battery\n")
        self.write(f"sys/class/power_supply/{name}/capacity", f"{capacity}\n")
        self.write(f"sys/class/power_supply/{name}/status", status + "\n")

    def copy_cgroup_tree(self, recorded: str = "cgroup-v2") -> str:
        target = os.path.join(self.root, "sys/fs/cgroup")
        shutil.copytree(os.path.join(DATA, recorded, "sys/fs/cgroup"), target)
        return target


class StepClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
