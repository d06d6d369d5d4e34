"""Network interfaces: per interface rx/tx bytes/s, packets/s, errors/s
and drops/s from /proc/net/dev, link up/down and speed from
/sys/class/net (issue 19 item 1).

Under a host root the host's network namespace is read through proc/1/
(with `network_mode: host` it is also dashd's own). Interfaces matching an
`exclude` glob are skipped (default: none; `lo` is reported, it is where
dashd's own loopback clients show).
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Sequence

from dashd.collect.hostroot import HostPaths, read_int, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC, CounterRates

# Column order of /proc/net/dev after "iface:".
_RX = ("rx_bytes", "rx_packets", "rx_errors", "rx_drops")
_TX = ("tx_bytes", "tx_packets", "tx_errors", "tx_drops")
FAMILY_OF_COUNTER = {
    "rx_bytes": "net_rx_bytes_per_second",
    "tx_bytes": "net_tx_bytes_per_second",
    "rx_packets": "net_rx_packets_per_second",
    "tx_packets": "net_tx_packets_per_second",
    "rx_errors": "net_rx_errors_per_second",
    "tx_errors": "net_tx_errors_per_second",
    "rx_drops": "net_rx_drops_per_second",
    "tx_drops": "net_tx_drops_per_second",
}


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    interfaces = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        name, _, rest = line.partition(":")
        fields = rest.split()
        if len(fields) < 16:
            continue
        try:
            numbers = [int(f) for f in fields]
        except ValueError:
            continue
        counters = dict(zip(_RX, numbers[0:4]))
        counters.update(zip(_TX, numbers[8:12]))
        interfaces[name.strip()] = counters
    return interfaces


class InterfaceSource:
    """Source `netifs`: `net_*{iface="eth0"}` series."""

    name = "netifs"
    topic = SERIES_TOPIC

    def __init__(self, paths: HostPaths, exclude: Sequence[str] = (), clock: Callable[[], float] | None = None) -> None:
        self._paths = paths
        self._exclude = tuple(exclude)
        self._rates = CounterRates() if clock is None else CounterRates(clock=clock)

    def read(self) -> dict[str, float]:
        text = read_text(self._paths.host_proc("net", "dev")) or read_text(self._paths.proc("net", "dev")) or ""
        interfaces = {
            name: c
            for name, c in parse_net_dev(text).items()
            if not any(fnmatch.fnmatchcase(name, g) for g in self._exclude)
        }
        counters = {(name, key): value for name, c in interfaces.items() for key, value in c.items()}
        values: dict[str, float] = {}
        for (iface, key), rate in self._rates.rates(counters).items():
            values[series(FAMILY_OF_COUNTER[key], iface=iface)] = round(rate, 2)
        for iface in interfaces:
            values.update(self.link(iface))
        return values

    def link(self, iface: str) -> dict[str, float]:
        """Link state (1 up, 0 down) and speed in Mbit/s when the driver knows it."""
        out: dict[str, float] = {}
        state = (read_text(self._paths.sys("class", "net", iface, "operstate")) or "").strip()
        if state:
            # "unknown" is what loopback and many virtual links report while working.
            out[series("net_link_up", iface=iface)] = 1.0 if state in ("up", "unknown") else 0.0
        speed = read_int(self._paths.sys("class", "net", iface, "speed"))
        if speed is not None and speed > 0:
            out[series("net_speed_mbps", iface=iface)] = float(speed)
        return out
