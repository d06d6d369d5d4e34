"""The publisher's schedule: a fixed-rate timer that degrades by coalescing,
not by skipping.

Twisted's `LoopingCall` skips every tick it missed: at 100 Hz, a fan-out
that takes 11 ms makes every second tick late by more than a period, so it
runs at 50 Hz -- half the samples silently gone. This schedule runs a late
tick as soon as the reactor is free (a `callLater(0)`, so I/O still gets its
turn) and re-anchors there, without bursting to catch up: under sustained
load the rate falls only to what the work allows (1 / 11 ms = 91 Hz above),
and the periods a late tick ran over are *coalesced* into the next sample
(the collector's rates are deltas over the real elapsed time, so the next
sample covers them; nothing is averaged away). Both are counted: `ticks`
(ran) and `coalesced` (periods folded into a later tick), exported on
/metrics and by the bench.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger


class PublishSchedule:
    """Calls `work` every `period` seconds of `clock`; see the module doc."""

    log = Logger()

    def __init__(self, work: Callable[[], None], clock: IReactorTime, period: float) -> None:
        if period <= 0:
            raise ValueError("the period must be positive")
        self._work = work
        self._clock = clock
        self.period = period
        self.ticks = 0  # ticks that ran
        self.lag_periods = 0.0  # periods late ticks ran over, summed
        self._deadline = 0.0
        self._call: IDelayedCall | None = None
        self._generation = 0  # bumped by start/stop, so a tick knows it was restarted

    @property
    def coalesced(self) -> int:
        """Whole periods that had no tick of their own: a later one covered them."""
        return int(self.lag_periods)

    @property
    def running(self) -> bool:
        return self._call is not None

    def start(self, now: bool = False) -> None:
        self.stop()
        self._generation += 1
        start = self._clock.seconds()
        self._deadline = start if now else start + self.period
        self._call = self._clock.callLater(self._deadline - start, self._run)

    def stop(self) -> None:
        self._generation += 1
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()

    def _run(self) -> None:
        self._call = None
        generation = self._generation
        self.ticks += 1
        try:
            self._work()
        except Exception:
            # Guarded per tick: one failure must not stop the schedule.
            self.log.failure("a scheduled tick failed; the schedule goes on")
        self._deadline += self.period
        finished = self._clock.seconds()
        if self._deadline < finished:
            self.lag_periods += (finished - self._deadline) / self.period
            self._deadline = finished
        if generation == self._generation:  # work() did not stop or restart us
            self._call = self._clock.callLater(self._deadline - finished, self._run)
