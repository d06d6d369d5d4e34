"""Sensors: temperatures with their high and critical thresholds, fan
speeds and batteries, read from /sys/class/hwmon and
/sys/class/power_supply (issue 19 item 1) — the files psutil's
sensors_* functions read, but under HostPaths so a host root works.

A host without a sensor has no such series: no hwmon directory, a chip
with no readable input, a battery-less server all give nothing, never an
error.
"""

from __future__ import annotations

import os
import re

from dashd.collect.hostroot import HostPaths, read_int, read_text
from dashd.collect.series_names import series
from dashd.collect.sources import SERIES_TOPIC

_TEMP_INPUT = re.compile(r"temp(\d+)_input\Z")
_FAN_INPUT = re.compile(r"fan(\d+)_input\Z")


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class SensorSource:
    """Source `sensors`: sensor_temperature_celsius{chip,sensor},
    sensor_temperature_high_celsius, sensor_temperature_critical_celsius,
    sensor_fan_rpm{chip,sensor}, battery_percent{battery},
    battery_charging{battery}."""

    name = "sensors"
    topic = SERIES_TOPIC

    def __init__(self, paths: HostPaths) -> None:
        self._paths = paths

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        hwmon = self._paths.sys("class", "hwmon")
        for entry in _listdir(hwmon):
            values.update(self._chip(os.path.join(hwmon, entry), entry))
        supplies = self._paths.sys("class", "power_supply")
        for entry in _listdir(supplies):
            values.update(self._battery(os.path.join(supplies, entry), entry))
        return values

    def _chip(self, directory: str, entry: str) -> dict[str, float]:
        chip = (read_text(os.path.join(directory, "name")) or entry).strip()
        out: dict[str, float] = {}
        for filename in _listdir(directory):
            temp = _TEMP_INPUT.match(filename)
            fan = _FAN_INPUT.match(filename)
            if temp:
                out.update(_temperature(directory, chip, temp.group(1)))
            elif fan:
                rpm = read_int(os.path.join(directory, filename))
                if rpm is not None:
                    label = _label(directory, "fan", fan.group(1))
                    out[series("sensor_fan_rpm", chip=chip, sensor=label)] = float(rpm)
        return out

    def _battery(self, directory: str, entry: str) -> dict[str, float]:
        if (read_text(os.path.join(directory, "type")) or "").strip() != "Battery":
            return {}
        capacity = read_int(os.path.join(directory, "capacity"))
        if capacity is None:
            return {}
        status = (read_text(os.path.join(directory, "status")) or "").strip()
        return {
            series("battery_percent", battery=entry): float(capacity),
            series("battery_charging", battery=entry): 1.0 if status == "Charging" else 0.0,
        }


def _label(directory: str, kind: str, number: str) -> str:
    label = read_text(os.path.join(directory, f"{kind}{number}_label"))
    return label.strip() if label and label.strip() else f"{kind}{number}"


def _temperature(directory: str, chip: str, number: str) -> dict[str, float]:
    millidegrees = read_int(os.path.join(directory, f"temp{number}_input"))
    if millidegrees is None:
        return {}  # a sensor that is listed but cannot be read (ENODATA, EIO)
    labels = {"chip": chip, "sensor": _label(directory, "temp", number)}
    out = {series("sensor_temperature_celsius", **labels): millidegrees / 1000.0}
    for suffix, family in (("max", "sensor_temperature_high_celsius"), ("crit", "sensor_temperature_critical_celsius")):
        threshold = read_int(os.path.join(directory, f"temp{number}_{suffix}"))
        if threshold is not None and threshold > 0:
            out[series(family, **labels)] = threshold / 1000.0
    return out
