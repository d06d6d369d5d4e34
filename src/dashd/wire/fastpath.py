"""The broadcast write path: frame a message once, compress it once, and hand
it to the kernel at once when nothing is waiting ahead of it.

This module is the ONE place where dashd reaches into Twisted and Autobahn
internals. Everything it reads is listed here, and tests/test_fastpath.py
pins each assumption, so an upgrade that changes one fails a test rather
than a dashboard:

Twisted, `twisted.internet.tcp.Server` (plain TCP only, exact type):
  - `transport.socket`: the non-blocking socket we `send()` on;
  - `transport.dataBuffer`, `transport._tempDataLen`: bytes Twisted has
    accepted but not yet written; anything there must go first;
  - `transport.connected`, `transport.disconnecting`,
    `transport._writeDisconnected`, `transport.producerPaused`,
    `transport.TLS`: whether a direct write is still allowed.
Twisted TLS (wss): the transport is a `twisted.protocols.tls`
`BufferingTLSTransport` (or `TLSMemoryBIOProtocol`; exact types) over a
plain `tcp.Server` (`transport`), of which:
  - `_tlsConnection` (pyOpenSSL `Connection`: its `_ssl` and `_from_ssl`
    BIO, `_raise_ssl_error`), `_handshakeDone`, `_appSendBuffer`,
    `_lostTLSConnection`, `_aborted`, `disconnecting`, `_bufferedWrite`,
    `_tlsShutdownFinished`; and `_aggregator` (`_AggregateSmallWrites`,
    its `_buffer`): small writes Twisted holds until the next reactor turn;
pyOpenSSL: `OpenSSL.SSL._lib.SSL_write`/`BIO_read` and `_ffi` (cffi).
Autobahn, `WebSocketProtocol`:
  - `state` (STATE_OPEN) and `send_state` (SEND_STATE_GROUND: not in the
    middle of a message sent with the frame-by-frame API);
  - `send_queue`: Autobahn's own queue for `sync=True`/chopped writes;
  - `_perMessageCompress`: the negotiated permessage-deflate parameters.

Why: a profile of the stock path (docs/benchmarks.md) shows that the cost
of a broadcast is not JSON or framing but Twisted's buffered write per
delivery: `transport.write` registers the socket for writing (epoll_ctl),
a later reactor turn calls `doWrite` -> `send` -> `stopWriting` (another
epoll_ctl), plus Autobahn's `sendData`, which formats debug-log arguments
even when debug logging is off. When the transport has nothing buffered,
calling `send()` at once (what libuv's `uv_try_write` does for Node) is
observably the same: the bytes reach the kernel in the same order, only
earlier. Whatever the kernel does not take goes to `transport.write`, so
Twisted's buffering, its producer pause/resume (dashd's flow control, see
ClientStream) and its error handling work exactly as before.

TLS (issue 17): Twisted's TLS write per message is `BufferingTLSTransport.write`
(held in an aggregator, one `callLater(0)` per connection, flushed on the
next reactor turn) -> `TLSMemoryBIOProtocol.write`
-> pyOpenSSL `send` (argument checks, `from_buffer`) -> `bio_read(32 KiB)`
(a fresh 32 KiB cffi buffer per call) -> the TCP transport's buffered
write (epoll_ctl, a later reactor turn, `doWrite`, epoll_ctl). When the TLS
layer is idle (handshake done, nothing waiting in its own buffer), the
record is made here with the same two OpenSSL calls on the same `SSL*`
(`SSL_write` into its memory BIO, `BIO_read` into one reused buffer) and
the ciphertext goes to the socket as a plain write would: the same
records in the same order, minus the wrappers and the buffered write. Errors
take Twisted's own handling (`_bufferedWrite` on WantRead, shutdown on any
other error). Kernel TLS (TCP_ULP "tls") would also remove the user-space
encryption; docs/benchmarks.md says why it is not used here.

Compression: dashd always negotiates server_no_context_takeover, so every
message the server sends is compressed on its own and the compressed bytes
depend only on the payload and the window size. A broadcast is therefore
compressed once per window size for all clients, with no compressor kept per
connection. A connection whose compression is anything else (context
takeover, another extension) takes Autobahn's normal `sendMessage`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from autobahn.websocket.compress_deflate import PerMessageDeflate
from autobahn.websocket.protocol import WebSocketProtocol
from OpenSSL import SSL as _SSL
from twisted.internet import tcp
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOProtocol, _AggregateSmallWrites
from twisted.python.failure import Failure

__all__ = [
    "FramedMessage",
    "WriteStats",
    "deflate_message",
    "frame",
    "send_message",
    "stats",
    "write_now",
    "write_tls_now",
]

_STATE_OPEN = WebSocketProtocol.STATE_OPEN
_SEND_STATE_GROUND = WebSocketProtocol.SEND_STATE_GROUND

_FIN = 0x80
_RSV1 = 0x40  # "this message is compressed" (RFC 7692 6)
_OPCODE_TEXT = 0x1
_OPCODE_BINARY = 0x2
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


def frame(payload: bytes, *, binary: bool = False, compressed: bool = False) -> bytes:
    """One unmasked, unfragmented server frame (RFC 6455 5.2) carrying
    `payload` (already compressed when `compressed`)."""
    first = _FIN | (_RSV1 if compressed else 0) | (_OPCODE_BINARY if binary else _OPCODE_TEXT)
    length = len(payload)
    if length <= 125:
        header = bytes((first, length))
    elif length <= 0xFFFF:
        header = _HEADER_16.pack(first, 126, length)
    else:
        header = _HEADER_64.pack(first, 127, length)
    return header + payload


def deflate_message(payload: bytes, window_bits: int, mem_level: int) -> bytes:
    """`payload` compressed on its own as permessage-deflate wants it: raw
    deflate with a fresh compressor, a sync flush, and the flush's trailing
    00 00 ff ff removed (RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits, mem_level)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(_SYNC_FLUSH_TAIL)
    return data[:-4]


class FramedMessage:
    """A message's wire bytes, built once and shared by every connection it
    is sent to: the plain frame, and one compressed frame per
    (window bits, memory level) the connections negotiated (dashd uses one
    setting, so in practice one)."""

    __slots__ = ("payload", "binary", "_plain", "_deflated")

    def __init__(self, payload: bytes, binary: bool = False) -> None:
        self.payload = payload
        self.binary = binary
        self._plain: bytes | None = None
        self._deflated: dict[tuple[int, int], bytes] | None = None

    def plain(self) -> bytes:
        data = self._plain
        if data is None:
            data = self._plain = frame(self.payload, binary=self.binary)
        return data

    def deflated(self, window_bits: int, mem_level: int) -> bytes:
        key = (window_bits, mem_level)
        cache = self._deflated
        if cache is None:
            cache = self._deflated = {}
        data = cache.get(key)
        if data is None:
            data = cache[key] = frame(
                deflate_message(self.payload, window_bits, mem_level), binary=self.binary, compressed=True
            )
        return data


class WriteStats:
    """How messages left: straight to the kernel, partly to the kernel (the
    rest buffered by Twisted), through Twisted's buffer, or through Autobahn
    (unusual compression, mid-message); `tls`: of those, records made here
    for a TLS connection. Read by the bench and tests."""

    __slots__ = ("direct", "partial", "buffered", "autobahn", "tls")

    def __init__(self) -> None:
        self.direct = 0
        self.partial = 0
        self.buffered = 0
        self.autobahn = 0
        self.tls = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def reset(self) -> None:
        self.direct = self.partial = self.buffered = self.autobahn = self.tls = 0


stats = WriteStats()


_ffi = _SSL._ffi
_lib = _SSL._lib
_TLS_MAX_PLAINTEXT = 2**14  # one TLS record; Twisted splits larger writes itself
_BIO_CHUNK = 2**15
_bio_buffer = _ffi.new("char[]", _BIO_CHUNK)  # reused: the reactor thread is the only writer


def write_tls_now(tls: TLSMemoryBIOProtocol, data: bytes) -> bool:
    """Encrypt `data` into one TLS record on `tls`'s connection and send the
    ciphertext at once (or behind what the TCP buffer holds). Returns False,
    having done nothing, when the TLS layer is not idle (handshake, data
    waiting in its buffers, closing) or `data` needs more than one record:
    the caller then uses `tls.write`, Twisted's path."""
    tcp_transport = tls.transport
    if (
        type(tcp_transport) is not tcp.Server
        or tcp_transport.TLS
        or not tls._handshakeDone
        or tls._appSendBuffer
        or tls._lostTLSConnection
        or tls._aborted
        or tls.disconnecting
        or len(data) > _TLS_MAX_PLAINTEXT
    ):
        return False
    if type(tls) is BufferingTLSTransport:
        aggregator = tls._aggregator
        if type(aggregator) is not _AggregateSmallWrites or aggregator._buffer:
            return False  # closed, or earlier writes wait for the next turn
    connection = tls._tlsConnection
    result = _lib.SSL_write(connection._ssl, data, len(data))
    if result != len(data):
        try:
            connection._raise_ssl_error(connection._ssl, result)
        except _SSL.WantReadError:
            tls._bufferedWrite(data)  # what Twisted does: wait for the peer
            return True
        except _SSL.Error:
            tls._tlsShutdownFinished(Failure())
            return True
        if result > 0:  # not expected of a memory BIO; keep the rest in order
            tls._bufferedWrite(data[result:])
    chunks = []
    while True:
        taken = _lib.BIO_read(connection._from_ssl, _bio_buffer, _BIO_CHUNK)
        if taken <= 0:
            break
        chunks.append(_ffi.buffer(_bio_buffer, taken)[:])
        if taken < _BIO_CHUNK:
            break
    stats.tls += 1
    if chunks:
        _send_or_buffer(tcp_transport, chunks[0] if len(chunks) == 1 else b"".join(chunks), tcp_transport.write)
    return True


def _send_or_buffer(transport: tcp.Server, data: bytes, buffered_write: Any) -> None:
    """`data` to the socket at once when the TCP connection has nothing
    buffered and is writable; else, and for whatever the kernel did not take,
    to `buffered_write` (Twisted's buffer, flow control and error handling)."""
    if (
        not transport.dataBuffer
        and not transport._tempDataLen
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport.producerPaused
    ):
        try:
            sent = transport.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # The connection is failing: let Twisted's writer find out and
            # close it the usual way (connectionLost, onClose).
            stats.buffered += 1
            buffered_write(data)
            return
        if sent == len(data):
            stats.direct += 1
            return
        stats.partial += 1
        buffered_write(data[sent:])
        return
    stats.buffered += 1
    buffered_write(data)


def write_now(transport: Any, data: bytes) -> None:
    """Write `data` after everything already written to `transport`: to the
    socket at once when the transport is a TCP connection with nothing
    buffered (for TLS, as a record made here: write_tls_now), else (and for
    whatever the kernel did not take) through `transport.write`, which keeps
    Twisted's buffering and flow control."""
    kind = type(transport)
    if kind is tcp.Server:
        if not transport.TLS:
            _send_or_buffer(transport, data, transport.write)
            return
    elif (kind is BufferingTLSTransport or kind is TLSMemoryBIOProtocol) and write_tls_now(transport, data):
        return
    stats.buffered += 1
    transport.write(data)


def send_message(protocol: WebSocketProtocol, message: FramedMessage) -> None:
    """Send one complete data message on `protocol`, in order with every
    frame Autobahn has written before (pongs, pings, close frames, replies).
    Nothing is sent unless the connection is open."""
    if protocol.state != _STATE_OPEN:
        return
    compression = protocol._perMessageCompress
    if compression is None:
        data = message._plain or message.plain()
    elif type(compression) is PerMessageDeflate and compression.server_no_context_takeover and compression._is_server:
        data = message.deflated(compression.server_max_window_bits, compression.mem_level)
    else:
        # A compressor whose state outlives a message: only Autobahn can
        # compress for it, per connection.
        stats.autobahn += 1
        protocol.sendMessage(message.payload, message.binary)
        return
    if protocol.send_queue or protocol.send_state != _SEND_STATE_GROUND:
        # Autobahn has delayed writes queued, or a message is being sent
        # frame by frame: its own ordered path (what sendPreparedMessage does).
        stats.autobahn += 1
        protocol.sendData(data)
        return
    write_now(protocol.transport, data)
