"""The flat broadcast loop's wire half: one frame to many connections, in one
tight loop, for the connections that can take it at once.

The hub (dashd.stream.hub.StreamHub.fan_out) asks each client stream whether
it takes a message directly (ClientStream.take_directly: live, nothing
queued, not paused, not throttled, selecting the whole message) and hands the
sinks of those that do to `FlatWriter.write_many`. Here, per sink, the
transport is checked exactly as dashd.wire.fastpath.write_now checks it
(plain TCP, open, nothing in Twisted's buffer, not paused, Autobahn idle);
the frame bytes, built once (and deflated once per window size), then go to
every eligible socket in one loop -- the C extension dashd.wire._sendmany
when it was built, else the same loop in Python. Only the exceptions get
per-client work: a socket that took part of the frame gets the rest through
`transport.write` (Twisted's buffer and producer pause keep order and flow
control, as in fastpath), and a sink that could not be written directly at
all is returned to the hub, which sends it through `ClientSink.send_frame`
(fastpath's ordered path).

Internals read: those listed in dashd.wire.fastpath, plus the per-protocol
`flat_target` set by DashboardServerProtocol.onOpen (transport, socket, fd,
compression key), computed once per connection because none of it changes
after the handshake.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Sequence

from autobahn.websocket.protocol import WebSocketProtocol

from dashd.stream.streams import OutboundFrame
from dashd.wire import fastpath
from dashd.wire.fastpath import FramedMessage

try:
    from dashd.wire._sendmany import sendmany as c_sendmany
except ImportError:  # not built (no compiler at install time): the Python loop
    c_sendmany = None

__all__ = ["FlatWriter", "LOOPS", "available_loops", "python_sendmany"]

_STATE_OPEN = WebSocketProtocol.STATE_OPEN
_SEND_STATE_GROUND = WebSocketProtocol.SEND_STATE_GROUND


def python_sendmany(sockets: Sequence[Any], data: bytes) -> list[tuple[int, int]]:
    """The C loop's contract in Python: send `data` on every (non-blocking)
    socket; return (index, bytes taken or -errno) for those that did not
    take all of it."""
    size = len(data)
    short: list[tuple[int, int]] = []
    for index, sock in enumerate(sockets):
        try:
            sent = sock.send(data)
        except OSError as error:
            short.append((index, -(error.errno or errno.EIO)))
            continue
        if sent != size:
            short.append((index, sent))
    return short


# name -> (loop, whether it takes fds (C) or socket objects (Python))
LOOPS: dict[str, tuple[Callable[[Sequence[Any], bytes], list[tuple[int, int]]], bool]] = {
    "python": (python_sendmany, False)
}
if c_sendmany is not None:
    LOOPS["c"] = (c_sendmany, True)


def available_loops() -> tuple[str, ...]:
    return tuple(LOOPS)


def default_loop() -> str:
    """ "c" when built, else "python"; DASHD_FANOUT_LOOP=python|c chooses (the bench compares them)."""
    wanted = os.environ.get("DASHD_FANOUT_LOOP", "")
    if wanted:
        if wanted not in LOOPS:
            raise ValueError(f"DASHD_FANOUT_LOOP={wanted!r}: available loops are {', '.join(LOOPS)}")
        return wanted
    return "c" if "c" in LOOPS else "python"


class FlatWriter:
    """Implements the hub's BroadcastWriter for DashboardServerProtocol sinks."""

    def __init__(
        self, on_sent: Callable[[OutboundFrame, int], None] = lambda frame, count: None, loop: str | None = None
    ) -> None:
        self.loop = loop or default_loop()
        self._send, self._by_fd = LOOPS[self.loop]
        self.on_sent = on_sent

    def write_many(self, frame: OutboundFrame, sinks: Sequence[Any]) -> list[Any]:
        """Write `frame` now to every sink that can take it directly; return
        the others, untouched, for the caller's ordered per-client path."""
        refused: list[Any] = []
        groups: dict[Any, tuple[list[Any], list[Any]]] = {}  # compression key -> (targets, protocols)
        plain_targets: list[Any] = []
        plain_protocols: list[Any] = []
        by_fd = self._by_fd
        for protocol in sinks:
            target = protocol.flat_target
            if (
                target is None
                or protocol.state != _STATE_OPEN
                or protocol.send_queue
                or protocol.send_state != _SEND_STATE_GROUND
            ):
                refused.append(protocol)
                continue
            transport = target[0]
            if (
                transport.dataBuffer
                or transport._tempDataLen
                or transport.producerPaused
                or transport.disconnecting
                or transport._writeDisconnected
                or not transport.connected
            ):
                refused.append(protocol)
                continue
            key = target[3]
            if key is None:
                plain_targets.append(target[2] if by_fd else target[1])
                plain_protocols.append(protocol)
            else:
                group = groups.get(key)
                if group is None:
                    group = groups[key] = ([], [])
                group[0].append(target[2] if by_fd else target[1])
                group[1].append(protocol)
        framed = frame.prepared
        if not isinstance(framed, FramedMessage):
            framed = frame.prepared = FramedMessage(frame.payload)
        written = 0
        if plain_protocols:
            written += self._send_group(framed._plain or framed.plain(), plain_targets, plain_protocols)
        for (window_bits, mem_level), (targets, protocols) in groups.items():
            written += self._send_group(framed.deflated(window_bits, mem_level), targets, protocols)
        if written:
            self.on_sent(frame, written)
        return refused

    def _send_group(self, data: bytes, targets: list[Any], protocols: list[Any]) -> int:
        short = self._send(targets, data)
        stats = fastpath.stats
        stats.direct += len(targets) - len(short)
        for index, result in short:
            transport = protocols[index].flat_target[0]
            if result > 0:
                # The kernel took part of it: the rest waits in Twisted's
                # buffer, and every later write goes behind it.
                stats.partial += 1
                transport.write(data[result:])
            else:
                # Nothing taken (EAGAIN), or the connection is failing: let
                # Twisted buffer it, or find the error and close the usual way.
                stats.buffered += 1
                transport.write(data)
        return len(targets)
