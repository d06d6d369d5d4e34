"""Database connections with deadlines (part of the store layer).

`adbapi.ConnectionPool` runs each interaction on a pool thread and has no
notion of time: a server that stops answering without closing the connection
(a network partition, a hung server) blocks the thread, and every caller
waiting on it, until the kernel gives up — minutes. `DeadlinePool` adds:

* a deadline per operation, on the reactor's clock: the caller's Deferred
  fails with `DeadlineExceeded` when it passes, whether the operation is
  still queued for a thread (it will then never run) or running (its
  connection is aborted: the socket shut down, or SQLite interrupted, so the
  thread wakes at once and the connection is discarded, never reused);
* for writers, a Deferred that waits for what really happened (a commit that raced the deadline is reported as written), so a
  batch is re-queued only when it was not committed;
* pymysql's socket timeouts set per operation from the same deadline (plus
  a margin), as the backstop should an abort not wake the thread;
* one warning line, no traceback, when a connection is lost (adbapi logs
  "Rollback failed" tracebacks for what is simply the outcome of a cut).

Borrowed internals (pinned by tests/test_reliability.py): pymysql's
`Connection._sock`, `_read_timeout` and `_write_timeout`; adbapi's
`ConnectionPool.connect/_runInteraction/_close` and `Connection.rollback`.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

SECOND = 1.0
SOCKET_MARGIN = 1 * SECOND  # socket timeouts trail the deadline: the abort comes first

_T = TypeVar("_T")  # what an interaction returns

log = Logger()


class DeadlineExceeded(Exception):
    """A database operation did not finish within its deadline."""


@dataclass(eq=False)  # identity, so tickets can live in a set
class Ticket:
    """One operation's journey: queued -> running -> done, or expired while queued."""

    timeout: float
    state: str = "queued"
    connection: Any = None  # the DB-API connection while running
    aborted: bool = False  # its connection was aborted at the deadline
    lock: threading.Lock = field(default_factory=threading.Lock)


_current = threading.local()  # the Ticket of the interaction a pool thread runs


def abort_connection(connection: Any) -> None:
    """Wake a thread blocked on `connection` (called from the reactor thread)."""
    interrupt = getattr(connection, "interrupt", None)
    if interrupt is not None:  # sqlite3: aborts the running statement, thread-safe
        interrupt()
        return
    sock = getattr(connection, "_sock", None)  # pymysql
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class QuietConnection(adbapi.Connection):
    """adbapi's connection wrapper, with a lost connection reported as one
    warning line instead of a "Rollback failed" traceback."""

    def rollback(self) -> None:
        if not self._pool.reconnect:
            self._connection.rollback()
            return
        try:
            self._connection.rollback()
            cursor = self._connection.cursor()
            cursor.execute(self._pool.good_sql)
            cursor.close()
            self._connection.commit()
            return
        except BaseException as e:
            self._pool.connection_lost(e)
        self._pool.disconnect(self._connection)
        raise adbapi.ConnectionLost()


class DeadlinePool(adbapi.ConnectionPool):
    """A ConnectionPool whose operations have deadlines (see the module docstring)."""

    connectionFactory = QuietConnection

    def __init__(self, dbapiName: str, *connargs: Any, **connkw: Any) -> None:
        super().__init__(dbapiName, *connargs, **connkw)  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
        self._tickets: set[Ticket] = set()
        self._lost_logged = False

    # ----- the reactor side

    def run(
        self,
        clock: IReactorTime,
        timeout: float,
        interaction: Callable[..., _T],
        *args: Any,
        settle: bool = False,
        cancel_running: Callable[[Ticket, Any], None] | None = None,
    ) -> Deferred[_T]:
        """Run `interaction(cursor, *args)` in a transaction, within `timeout` seconds.

        The Deferred fails with DeadlineExceeded at the deadline; with
        `settle=True` it instead waits for the aborted transaction's real
        outcome (promptly: the abort wakes the thread), for writers that must
        not re-queue a batch that was committed.

        Cancelling the Deferred (its client went away) keeps a queued
        operation from ever running and stops a running one: SQLite is
        interrupted; a server connection is handed to `cancel_running`
        (KILL QUERY from another connection) or else aborted."""
        ticket = Ticket(timeout)

        def cancel(_: Deferred[_T]) -> None:
            with ticket.lock:
                state = ticket.state
                if state == "queued":
                    ticket.state = "expired"  # the pool thread will skip it
                connection = ticket.connection
            if timer.active():
                timer.cancel()
            if state != "running" or connection is None:
                return
            if cancel_running is not None and getattr(connection, "interrupt", None) is None:
                cancel_running(ticket, connection)
            else:
                abort_connection(connection)

        answer: Deferred[_T] = Deferred(cancel)

        def finish(result: _T | Failure) -> None:
            if timer.active():
                timer.cancel()
            elif isinstance(result, Failure) and not result.check(DeadlineExceeded):  # type: ignore[no-untyped-call]  # Twisted's Failure is untyped
                # Failed after the deadline aborted it: say so, callers must
                # not mistake it for a dropped connection worth retrying at once.
                result = Failure(
                    DeadlineExceeded(
                        f"no answer from the database within {timeout:g}s "  # type: ignore[no-untyped-call]  # Twisted's Failure is untyped
                        f"({result.getErrorMessage()})"
                    )
                )
            if not answer.called:
                answer.errback(result) if isinstance(result, Failure) else answer.callback(result)

        def expire() -> None:
            with ticket.lock:
                state = ticket.state
                if state == "queued":
                    ticket.state = "expired"  # the pool thread will skip it
                connection = ticket.connection
                ticket.aborted = state == "running" and connection is not None
            if state == "running" and connection is not None:
                abort_connection(connection)  # the thread fails promptly; settled follows
            if state in ("queued", "expired") or not settle:
                # Queued: it will never run, so nothing was written.
                answer.errback(DeadlineExceeded(f"no answer from the database within {timeout:g}s"))

        timer = clock.callLater(timeout, expire)
        work = self.runInteraction(interaction, *args, _ticket=ticket)  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
        work.addBoth(finish)
        return answer

    def abort_running(self) -> int:
        """Abort every running operation's connection (before closing the
        pool, whose threads close joins). Returns how many."""
        aborted = 0
        for ticket in list(self._tickets):
            with ticket.lock:
                connection = ticket.connection if ticket.state == "running" else None
            if connection is not None:
                abort_connection(connection)
                aborted += 1
        return aborted

    # ----- the pool-thread side

    def connect(self) -> Any:
        """The thread's connection, made abortable and timed for the current
        operation; a new MySQL connection is registered before it connects,
        so a handshake that stalls can be aborted too."""
        ticket: Ticket | None = getattr(_current, "ticket", None)
        tid = self.threadID()
        conn = self.connections.get(tid)
        if conn is None and self.dbapiName == "pymysql":
            conn = self.dbapi.connect(*self.connargs, defer_connect=True, **self.connkw)
            self._attach(ticket, conn)
            try:
                conn.connect()
            except Exception as e:
                # A connection that never opened: the server cannot be reached
                # now, which another fresh connection would not change (the
                # store retries only connections that died in the pool).
                e.never_opened = True  # type: ignore[attr-defined]
                raise
            self.connections[tid] = conn
            return conn
        if conn is None:
            conn = super().connect()  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
        self._attach(ticket, conn)
        return conn

    def _attach(self, ticket: Ticket | None, conn: Any) -> None:
        if ticket is None:
            return
        if hasattr(conn, "_read_timeout"):
            conn._read_timeout = conn._write_timeout = ticket.timeout + SOCKET_MARGIN
        with ticket.lock:
            ticket.connection = conn

    def _runInteraction(
        self, interaction: Callable[..., _T], *args: Any, _ticket: Ticket | None = None, **kw: Any
    ) -> _T:
        if _ticket is None:
            return self._transaction(interaction, *args, **kw)
        with _ticket.lock:
            if _ticket.state == "expired":
                raise DeadlineExceeded("waited too long for a database connection")
            _ticket.state = "running"
        _current.ticket = _ticket
        self._tickets.add(_ticket)
        try:
            return self._transaction(interaction, *args, **kw)
        finally:
            _current.ticket = None
            self._tickets.discard(_ticket)
            with _ticket.lock:
                _ticket.state = "done"
                _ticket.connection = None

    def _transaction(self, interaction: Callable[..., _T], *args: Any, **kw: Any) -> _T:
        """adbapi's _runInteraction, with a lost connection reported quietly."""
        conn = self.connectionFactory(self)  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
        trans = self.transactionFactory(self, conn)  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
        try:
            result = interaction(trans, *args, **kw)
            trans.close()  # type: ignore[no-untyped-call]  # Twisted's adbapi is untyped
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except adbapi.ConnectionLost:
                pass  # QuietConnection said so in one line and discarded it
            except BaseException as e:
                self.connection_lost(e)
            raise
        self._lost_logged = False
        return result

    def connection_lost(self, error: BaseException) -> None:
        """One warning per outage (pool threads; the flag is reset by the next commit)."""
        ticket: Ticket | None = getattr(_current, "ticket", None)
        if ticket is not None and ticket.aborted:
            return  # aborted by its deadline, not lost: the store's "unavailable" line says so
        if not self._lost_logged:
            self._lost_logged = True
            log.warn(
                "store: database connection lost ({error}); discarding it",
                error=f"{type(error).__name__}: {error}".rstrip(": "),
            )

    def _close(self, conn: Any) -> None:
        try:
            conn.close()
        except BaseException:
            pass  # closing a connection the server (or an abort) already dropped
