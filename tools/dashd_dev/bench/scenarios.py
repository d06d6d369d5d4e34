"""The sessions and windows `run` measures (full and --quick plans)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    name: str
    rate_hz: float


@dataclass(frozen=True)
class Session:
    """One server start with one set of clients, measured in windows."""

    name: str
    clients: int
    windows: tuple[Window, ...] = ()
    ramp: tuple[float, ...] = ()  # ascending rates; stop at the first that is not sustained
    deflate: bool = False
    tls: bool = False
    memory: bool = False  # report RSS per connection (measured after connecting, before the windows)


@dataclass(frozen=True)
class Plan:
    sessions: tuple[Session, ...]
    repeats: int
    warmup: float
    window: float
    ramp_window: float
    ramp_refine: int  # extra bisection steps between the last sustained and the first failed rate
    collector_seconds: float


def full_plan() -> Plan:
    return Plan(
        sessions=(
            Session(
                "1k",
                1000,
                (Window("1000x10Hz", 10), Window("1000x100Hz", 100)),
                ramp=(20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 140),
            ),
            Session("5k", 5000, (Window("5000x10Hz", 10),)),
            Session("10k-idle", 10000, (Window("10000x1Hz idle", 1),), memory=True),
            Session("1k-deflate", 1000, (Window("1000x10Hz deflate", 10),), deflate=True),
            Session("1k-tls", 1000, (Window("1000x10Hz TLS", 10),), tls=True),
        ),
        repeats=2,
        warmup=3.0,
        window=8.0,
        ramp_window=5.0,
        ramp_refine=1,
        collector_seconds=60.0,
    )


def quick_plan() -> Plan:
    return Plan(
        sessions=(
            Session("1k", 1000, (Window("1000x10Hz", 10), Window("1000x100Hz", 100)), ramp=(30, 50, 70, 90, 110)),
            Session("10k-idle", 10000, (Window("10000x1Hz idle", 1),), memory=True),
            Session("1k-deflate", 1000, (Window("1000x10Hz deflate", 10),), deflate=True),
            Session("1k-tls", 1000, (Window("1000x10Hz TLS", 10),), tls=True),
        ),
        repeats=1,
        warmup=1.5,
        window=3.0,
        ramp_window=2.5,
        ramp_refine=0,
        collector_seconds=10.0,
    )
