"""The `processes` stream (issue 19 item 2): the process table, sent only to
the connections that asked for it (`processes_subscribe`), each at the
collector's own rate, sorted and cut as each asked, redacted for its role.

No networking here. The process collector publishes ProcessSnapshots to a
ProcessStream (it is the collector's publisher for the processes topic:
the tables never go through the shared bus, so they take no `seq` and are
not replayed by `resume` -- each one replaces the last). The stream keeps
the newest table per host, hands each to the look-back (ProcessHistory)
and sends it to its subscribers, serializing once per distinct view
(host, sort, limit, role class) in a worker thread: a hundred viewers of
the default view cost one encoding, and the reactor only writes frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Protocol

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.logger import Logger

from dashd.collect.processes import ProcessRow, ProcessSnapshot, ProcessTable
from dashd.stream.streams import OutboundFrame, encode
from dashd.timefmt import iso_ms

PROCESSES = "processes"
MAX_LIMIT = 200
# Roles whose views carry user names and command lines (they can hold secrets).
SENSITIVE_ROLE = "operator"  # operator and above (Principal.may)

Runner = Callable[[Callable[[], Any]], Deferred]


@dataclass(frozen=True)
class ProcessView:
    """What one subscriber (or one processes_at request) asked for."""

    sort: str
    limit: int
    host: str
    sensitive: bool  # may see user names and command lines
    cmdlines: bool  # command lines are on (the process_cmdlines setting)


def row_dict(row: ProcessRow, view: ProcessView) -> dict:
    """One row on the wire. A view that may not see them has no `user` and
    no `cmdline` keys at all (not nulls: nothing to look for in a frame)."""
    data: dict[str, Any] = {"pid": row.pid, "ppid": row.ppid, "name": row.name}
    if view.sensitive:
        data["user"] = row.user
    data.update(
        state=row.state,
        cpu_percent=row.cpu_percent,
        memory_percent=row.memory_percent,
        rss=row.rss,
        threads=row.threads,
        read_bytes_per_second=row.io_read_bps,
        write_bytes_per_second=row.io_write_bps,
        started=iso_ms(row.start_time * 1000),
    )
    if view.sensitive and view.cmdlines:
        data["cmdline"] = row.cmdline
    return data


def table_data(snapshot: ProcessSnapshot, view: ProcessView) -> dict:
    """The `data` of a `processes` message or a `processes_at` reply."""
    table: ProcessTable = snapshot.table
    return {
        "timestamp": iso_ms(snapshot.timestamp_ms),
        "host": snapshot.host,
        "sort": view.sort,
        "total": table.total,
        "running": table.running,
        "processes": [row_dict(row, view) for row in table.top(view.sort, view.limit)],
    }


class SnapshotSink(Protocol):
    """Where the tables go besides the subscribers (the look-back)."""

    def offer(self, snapshot: ProcessSnapshot) -> None: ...


@dataclass
class _Subscriber:
    view: Callable[[], ProcessView]  # evaluated per table: a re-authenticated role counts at once
    deliver: Callable[[OutboundFrame], None]


class ProcessStream:
    """Subscribers of the processes stream, and the newest table per host."""

    log = Logger()

    def __init__(self, history: SnapshotSink | None = None, runner: Runner | None = None) -> None:
        self._history = history
        # Where the views are built and encoded: a worker thread in the
        # daemon (a table of 100 rows in three views is about 1 ms of
        # Python, more on a loaded machine), here by default (tests).
        self._runner: Runner = runner if runner is not None else (lambda work: maybeDeferred(work))
        self._subscribers: dict[Hashable, _Subscriber] = {}
        self._latest: dict[str, ProcessSnapshot] = {}
        self._generation: dict[str, int] = {}  # per host: a slow encoding never overtakes a newer table

    # ----- the collector's side (dashd.collect.sources.Publisher)

    def publish(self, topic: str, message: Any) -> Deferred:
        if not isinstance(message, ProcessSnapshot):
            self.log.warn("ignoring a {kind} on the processes stream", kind=type(message).__name__)
            return succeed(None)
        self.take(message)
        return succeed(None)

    def take(self, snapshot: ProcessSnapshot) -> None:
        self._latest[snapshot.host] = snapshot
        if self._history is not None:
            try:
                self._history.offer(snapshot)
            except Exception:
                self.log.failure("keeping a process snapshot for look-back failed")
        generation = self._generation[snapshot.host] = self._generation.get(snapshot.host, 0) + 1
        wanted: dict[Hashable, ProcessView] = {}
        for owner, subscriber in self._subscribers.items():
            try:
                view = subscriber.view()
            except Exception:
                self.log.failure("the process view of a client failed")
                continue
            if view.host == snapshot.host:
                wanted[owner] = view
        if not wanted:
            return
        views = frozenset(wanted.values())
        d = self._runner(lambda: {view: _frame(snapshot, view) for view in views})
        d.addCallback(self._deliver, snapshot.host, generation, wanted)
        d.addErrback(lambda failure: self.log.failure("encoding the process table failed", failure))

    # ----- clients

    def subscribe(
        self, owner: Hashable, view: Callable[[], ProcessView], deliver: Callable[[OutboundFrame], None]
    ) -> None:
        """Add or replace `owner`'s subscription; the newest table of its
        host, if there is one, is sent at once."""
        self._subscribers[owner] = _Subscriber(view, deliver)
        latest = self._latest.get(view().host)
        if latest is not None:
            # One view, encoded here: a request's reply, not a broadcast.
            deliver(_frame(latest, view()))

    def unsubscribe(self, owner: Hashable) -> bool:
        return self._subscribers.pop(owner, None) is not None

    def latest(self, host: str) -> ProcessSnapshot | None:
        return self._latest.get(host)

    def _deliver(
        self, frames: dict[ProcessView, OutboundFrame], host: str, generation: int, wanted: dict[Hashable, ProcessView]
    ) -> None:
        if self._generation.get(host) != generation:
            return  # a newer table was taken meanwhile: it is on its way
        for owner, view in wanted.items():
            subscriber = self._subscribers.get(owner)
            if subscriber is None:
                continue  # unsubscribed (or gone) meanwhile
            try:
                if subscriber.view() == view:  # else it changed its choice: the next table has it
                    subscriber.deliver(frames[view])
            except Exception:
                self.log.failure("sending the process table to a client failed")


def _frame(snapshot: ProcessSnapshot, view: ProcessView) -> OutboundFrame:
    message = {"type": PROCESSES, "correlation_id": None, "data": table_data(snapshot, view)}
    # coalesce_key: a slow client's queue keeps only the newest table.
    return OutboundFrame(encode(message), coalesce_key=PROCESSES, kind=PROCESSES)


class TopicRouter:
    """A Publisher that sends some topics elsewhere: the collectors publish
    through it, the process tables to the ProcessStream, the rest to the bus."""

    def __init__(self, default: Any, routes: dict[str, Any]) -> None:
        self._default = default
        self._routes = dict(routes)

    def publish(self, topic: str, message: Any) -> Deferred:
        return self._routes.get(topic, self._default).publish(topic, message)
