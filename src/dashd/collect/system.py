"""System-wide counts: TCP connections by state, listening ports, open file
descriptors and their limit, context switches and interrupts per second
(issue 19 item 1). Read from /proc/net/tcp{,6}, /proc/sys/fs/file-nr and
/proc/stat, which is far cheaper than psutil.net_connections() (that one
also maps every socket to its process).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Callable

from dashd.collect.hostroot import HostPaths, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC, CounterRates

# include/net/tcp_states.h
TCP_STATES = {
    "01": "established",
    "02": "syn_sent",
    "03": "syn_recv",
    "04": "fin_wait1",
    "05": "fin_wait2",
    "06": "time_wait",
    "07": "close",
    "08": "close_wait",
    "09": "last_ack",
    "0A": "listen",
    "0B": "closing",
    "0C": "new_syn_recv",
}


# "  12: 0100007F:1F90 0100007F:D431 01 ...": local port and state, matched
# over the whole file in one pass (a host with 50,000 sockets has a 7 MB
# /proc/net/tcp; splitting it line by line in Python cost 10 ms a read).
_TCP_LINE = re.compile(r"^\s*\d+: [0-9A-Fa-f]+:([0-9A-Fa-f]{4}) [0-9A-Fa-f]+:[0-9A-Fa-f]{4} ([0-9A-Fa-f]{2}) ", re.M)


def count_tcp(texts: list[str]) -> tuple[dict[str, int], int]:
    """Connections per state name, and distinct listening ports, over the
    given /proc/net/tcp and tcp6 texts."""
    counts: Counter[str] = Counter()
    listening: set[str] = set()
    for text in texts:
        for port, state in _TCP_LINE.findall(text):
            counts[state] += 1
            if state == "0A":
                listening.add(port.upper())
    states = {name: 0 for name in TCP_STATES.values()}
    for code, count in counts.items():
        name = TCP_STATES.get(code.upper())
        if name is not None:
            states[name] += count
    return states, len(listening)


def parse_stat_counters(text: str) -> dict[str, int]:
    """ctxt and the total of intr from /proc/stat."""
    out = {}
    for line in text.splitlines():
        if line.startswith("ctxt "):
            out["ctxt"] = int(line.split()[1])
        elif line.startswith("intr "):
            out["intr"] = int(line.split()[1])
    return out


class SystemSource:
    """Source `system`: tcp_connections{state=...}, tcp_listening_ports,
    open_fds, open_fds_limit, context_switches_per_second,
    interrupts_per_second."""

    name = "system"
    topic = SERIES_TOPIC

    def __init__(self, paths: HostPaths, clock: Callable[[], float] | None = None) -> None:
        self._paths = paths
        self._rates = CounterRates() if clock is None else CounterRates(clock=clock)

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        texts = [t for t in (read_text(self._paths.host_proc("net", f)) for f in ("tcp", "tcp6")) if t is not None]
        if texts:
            states, listening = count_tcp(texts)
            for state, count in states.items():
                values[series("tcp_connections", state=state)] = float(count)
            values["tcp_listening_ports"] = float(listening)
        file_nr = (read_text(self._paths.proc("sys", "fs", "file-nr")) or "").split()
        if len(file_nr) == 3:
            allocated, free, limit = (int(x) for x in file_nr)
            values["open_fds"] = float(allocated - free)
            values["open_fds_limit"] = float(limit)
        counters = parse_stat_counters(read_text(self._paths.proc("stat")) or "")
        rates = self._rates.rates(counters)
        if "ctxt" in rates:
            values["context_switches_per_second"] = round(rates["ctxt"], 1)
        if "intr" in rates:
            values["interrupts_per_second"] = round(rates["intr"], 1)
        return values
