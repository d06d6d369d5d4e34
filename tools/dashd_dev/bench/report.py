"""The bench's numbers: latency histograms, the summary table, the RESULT
line and the targets it is checked against."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

KB = 1024

# Targets from the issues (15, 17), checked in the summary.
TARGET_DELIVERIES_RATIO = 1.0
TARGET_CPU_RATIO = 1.0
TARGET_P99_MS = 40.0
TARGET_TLS_CPU_RATIO = 1.5
TARGET_TLS_P99_MS = 40.0
TARGET_RSS_PER_CONN_KB = 15.0
TARGET_DEFLATE_CPU_RATIO = 1.3


@dataclass
class LatencyHistogram:
    """Counts per fixed-width bucket (the clients' 0.25 ms buckets), merged
    across generator processes."""

    bucket_ms: float = 0.25
    counts: dict[int, int] = field(default_factory=dict)
    max_ms: float = 0.0

    def add(self, sparse: Mapping[Any, int], max_ms: float) -> None:
        for index, count in sparse.items():
            index = int(index)
            self.counts[index] = self.counts.get(index, 0) + int(count)
        self.max_ms = max(self.max_ms, float(max_ms))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """Upper edge of the bucket holding the q-quantile (ms)."""
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min((index + 1) * self.bucket_ms, self.max_ms) if self.max_ms else (index + 1) * self.bucket_ms
        return self.max_ms


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def format_progress(row: Mapping[str, Any]) -> str:
    def num(key: str, spec: str) -> str:
        value = row.get(key)
        return format(value, spec) if value is not None else "-"

    return (
        f"    {row['server']:<11} {row['scenario']:<20} {num('deliveries_per_s', ',.0f')}/s "
        f"delivered {num('delivered', '.1%')} p99 {num('p99_ms', '.1f')} ms "
        f"cpu {num('server_cpu_pct', '.0f')}% ({num('cpu_us_per_delivery', '.1f')} us/delivery) "
        f"gen {num('generator_cpu_pct', '.0f')}% other {num('other_cpu_pct', '.0f')}%"
    )


TABLE_COLUMNS = (
    ("deliveries/s", "deliveries_per_s", ",.0f"),
    ("deliv%", "delivered", ".1%"),
    ("p50", "p50_ms", ".1f"),
    ("p95", "p95_ms", ".1f"),
    ("p99", "p99_ms", ".1f"),
    ("max", "max_ms", ".0f"),
    ("miss", "missing", ".0f"),
    ("ooo", "out_of_order", ".0f"),
    ("B/upd", "bytes_per_update", ".0f"),
    ("srv cpu%", "server_cpu_pct", ".0f"),
    ("us/deliv", "cpu_us_per_delivery", ".1f"),
    ("xfloor", "vs_floor", ".2f"),
    ("xws", "vs_ws", ".2f"),
    ("usr", "user_us_per_delivery", ".1f"),
    ("sys", "sys_us_per_delivery", ".1f"),
    ("gen cpu%", "generator_cpu_pct", ".0f"),
    ("other%", "other_cpu_pct", ".0f"),
    ("rss MB", "server_rss_mb", ".0f"),
    ("KB/conn", "rss_per_conn_kb", ".1f"),
    ("conn s", "connect_s", ".1f"),
    ("pub%", "published_pct", ".0f"),
    ("coal", "ticks_coalesced", ".0f"),
)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Median over repeats of every numeric column, per (scenario, server).
    Ramp steps are folded into the 'ramp: sustained' line."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for row in rows:
        if row["scenario"].startswith("ramp ") and not row["scenario"].startswith("ramp:"):
            continue
        key = (row["scenario"], row["server"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(row)
    summary = []
    scenarios = list(dict.fromkeys(key[0] for key in order))
    servers = list(dict.fromkeys(key[1] for key in order))
    for key in sorted(order, key=lambda k: (scenarios.index(k[0]), servers.index(k[1]))):
        members = groups[key]
        merged: dict[str, Any] = {"scenario": key[0], "server": key[1], "repeats": len(members)}
        for name in {name for member in members for name in member}:
            values = [member.get(name) for member in members]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None) and any(
                v is not None for v in values
            ):
                merged[name] = median(values)
            elif name not in merged:
                merged[name] = values[-1]
        if key[0] == "ramp: sustained":
            merged["deliveries_per_s"] = merged.get("sustained_deliveries_per_s")
        summary.append(merged)
    add_ratios(summary)
    return summary


def add_ratios(summary: Sequence[dict]) -> None:
    """Every row as a ratio to the floor and to ws in the same scenario: CPU
    per delivery over theirs, or, on the ramp line, sustained deliveries/s
    over theirs."""
    by_scenario: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in summary:
        by_scenario.setdefault(row["scenario"], {})[row["server"]] = row
    for row in summary:
        key = "deliveries_per_s" if row["scenario"] == "ramp: sustained" else "cpu_us_per_delivery"
        peers = by_scenario[row["scenario"]]
        for server, column in (("floor", "vs_floor"), ("ws", "vs_ws")):
            peer = peers.get(server)
            row[column] = ratio(row.get(key), peer.get(key)) if peer is not None else None


def result_line(summary: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
    def pick(scenario: str, server: str, key: str) -> float | None:
        for row in summary:
            if row["scenario"] == scenario and row["server"] == server:
                return row.get(key)
        return None

    values = {
        "deliveries_ratio": ratio(
            pick("ramp: sustained", "dashd", "sustained_deliveries_per_s"),
            pick("ramp: sustained", "ws", "sustained_deliveries_per_s"),
        ),
        "cpu_per_delivery_ratio": ratio(
            pick("1000x100Hz", "dashd", "cpu_us_per_delivery"), pick("1000x100Hz", "ws", "cpu_us_per_delivery")
        ),
        "p99_ms": pick("1000x10Hz", "dashd", "p99_ms"),
        "rss_per_conn_kb": pick("10000x1Hz idle", "dashd", "rss_per_conn_kb"),
        "floor_ratio": ratio(
            pick("1000x100Hz", "dashd", "cpu_us_per_delivery"), pick("1000x100Hz", "floor", "cpu_us_per_delivery")
        ),
        "tls_cpu_per_delivery_ratio": ratio(
            pick("1000x10Hz TLS", "dashd", "cpu_us_per_delivery"), pick("1000x10Hz TLS", "ws", "cpu_us_per_delivery")
        ),
    }
    text = "RESULT " + " ".join(
        f"{name}={'nan' if value is None else f'{value:.3g}' if name.endswith('ratio') else f'{value:.1f}'}"
        for name, value in values.items()
    )
    return text, values


def target_checks(summary: Sequence[Mapping[str, Any]], values: Mapping[str, float | None]) -> list[str]:
    def pick(scenario: str, server: str, key: str) -> float | None:
        for row in summary:
            if row["scenario"] == scenario and row["server"] == server:
                return row.get(key)
        return None

    deflate_ratio = ratio(
        pick("1000x10Hz deflate", "dashd", "cpu_us_per_delivery"), pick("1000x10Hz", "dashd", "cpu_us_per_delivery")
    )
    checks = [
        ("sustained deliveries/s at 1,000 clients vs ws", values["deliveries_ratio"], ">=", TARGET_DELIVERIES_RATIO),
        ("CPU per delivery at 1,000 x 100 Hz vs ws", values["cpu_per_delivery_ratio"], "<=", TARGET_CPU_RATIO),
        ("p99 at 1,000 x 10 Hz (ms)", values["p99_ms"], "<=", TARGET_P99_MS),
        ("RSS per idle connection at 10,000 (KB)", values["rss_per_conn_kb"], "<=", TARGET_RSS_PER_CONN_KB),
        ("deflate CPU per delivery vs uncompressed (dashd)", deflate_ratio, "<=", TARGET_DEFLATE_CPU_RATIO),
        (
            "TLS CPU per delivery at 1,000 x 10 Hz vs ws",
            values["tls_cpu_per_delivery_ratio"],
            "<=",
            TARGET_TLS_CPU_RATIO,
        ),
        ("TLS p99 at 1,000 x 10 Hz (ms)", pick("1000x10Hz TLS", "dashd", "p99_ms"), "<=", TARGET_TLS_P99_MS),
    ]
    lines = []
    for label, value, op, target in checks:
        if value is None:
            verdict = "not measured"
        else:
            met = value >= target if op == ">=" else value <= target
            verdict = "met" if met else "MISSED"
        shown = "-" if value is None else f"{value:.3g}"
        lines.append(f"  {label}: {shown} (target {op} {target:g}): {verdict}")
    return lines


def format_loop_cost(loop_cost: Mapping[str, Any]) -> str:
    """The in-process loop measurement, each loop against the floor."""
    loops = loop_cost["loops"]
    floor = loops["floor"]["us_per_delivery"]
    lines = [
        f"\nbroadcast loop alone ({loop_cost['clients']:,} loopback sockets, {loop_cost['rounds']} rounds, "
        "CPU per delivery):"
    ]
    for name, cost in loops.items():
        above = "" if name == "floor" else f", {cost['us_per_delivery'] - floor:+.2f} us vs the floor"
        lines.append(
            f"  {name:<12} {cost['us_per_delivery']:.2f} us (user {cost['user_us']:.2f}, "
            f"sys {cost['sys_us']:.2f}){above}"
        )
    return "\n".join(lines)


def format_table(summary: Sequence[Mapping[str, Any]]) -> str:
    header = ["scenario", "server"] + [title for title, _, _ in TABLE_COLUMNS]
    body = []
    for row in summary:
        cells = [row["scenario"], row["server"]]
        for _, key, spec in TABLE_COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else format(value, spec))
        body.append(cells)
    widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for cells in body:
        lines.append(
            "| "
            + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            + " |"
        )
    return "\n".join(lines)
