#!/usr/bin/env python3
"""The floor for `make bench`: the least a broadcast server can do on this
machine. It answers the WebSocket handshake (nothing else of the protocol),
sends a `connection_ack`, and then, per tick, builds one frame and
`send()`s it to every connected socket in one tight loop: no per-client
state, no flow control, no buffering (a socket that does not take the whole
frame at once is closed: the floor measures the kernel's cost, not a
server's). What it costs per delivery is the kernel's loopback send plus a
few tens of nanoseconds of loop; dashd and Node `ws` are reported as ratios
to it.

    python bench/floor.py --port 0 --rate 1 --metrics '{"cpu_usage":12.5}' [--tls-key K --tls-cert C]

stdout: JSON lines ({"event":"ready","port":N,"pid":P}, stats replies).
stdin:  "rate HZ" (0 stops publishing), "stats", "quit" -- the protocol of
bench/server.js and `dashd_dev.bench serve`.

Standard library only (selectors/epoll, ssl); loopback only. The publisher
uses the same schedule as dashd's collector: on time when it can be, and
when a tick runs late the next runs at once without catching up (later
ticks are coalesced, never bursted).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import selectors
import socket
import ssl
import sys
import time
from datetime import UTC, datetime

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_REQUEST = 16 * 1024


def frame(payload: bytes) -> bytes:
    """One unmasked text frame (RFC 6455 5.2)."""
    n = len(payload)
    if n <= 125:
        return bytes((0x81, n)) + payload
    if n <= 0xFFFF:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + GUID).digest())


def sample(base: dict[str, float], n: int) -> dict[str, float]:
    # The formula bench/server.js and dashd_dev.bench use.
    return {name: round(value + ((n * (i + 3)) % 97) / 10, 2) for i, (name, value) in enumerate(base.items())}


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Floor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.metrics = json.loads(args.metrics)
        self.selector = selectors.DefaultSelector()
        self.pending: dict[socket.socket, bytearray] = {}  # handshaking: what was read so far
        self.open: list[socket.socket] = []
        self.seq = 0
        self.published = 0
        self.period = 0.0
        self.deadline = 0.0
        self.lag_periods = 0.0  # periods folded into late ticks, summed
        self.running = True
        self.tls: ssl.SSLContext | None = None
        if args.tls_key:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(args.tls_cert, args.tls_key)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", args.port))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        os.set_blocking(sys.stdin.fileno(), False)
        self.selector.register(sys.stdin, selectors.EVENT_READ, "control")
        self.control = b""

    # ----- connections

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            self.pending[conn] = bytearray()
            self.selector.register(conn, selectors.EVENT_READ, "handshake")

    def drop(self, conn: socket.socket) -> None:
        try:
            self.selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        self.pending.pop(conn, None)
        conn.close()

    def handshake(self, conn: socket.socket) -> None:
        try:
            if isinstance(conn, ssl.SSLSocket) and not getattr(conn, "_floor_tls_done", False):
                conn.do_handshake()
                conn._floor_tls_done = True  # type: ignore[attr-defined]
            data = conn.recv(MAX_REQUEST)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            self.drop(conn)
            return
        if not data:
            self.drop(conn)
            return
        request = self.pending[conn]
        request += data
        if b"\r\n\r\n" not in request:
            if len(request) > MAX_REQUEST:
                self.drop(conn)
            return
        key = b""
        for line in bytes(request).split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        if not key:
            self.drop(conn)
            return
        ack = json.dumps(
            {"type": "connection_ack", "correlation_id": None, "data": {"seq": self.seq, "host": self.args.host_name}}
        ).encode()
        response = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n" + frame(ack)
        )
        try:
            conn.sendall(response)  # a few hundred bytes into an empty buffer
        except OSError:
            self.drop(conn)
            return
        del self.pending[conn]
        self.selector.modify(conn, selectors.EVENT_READ, "open")
        self.open.append(conn)

    def readable(self, conn: socket.socket) -> None:
        """Clients only read; anything they send is discarded; EOF closes."""
        try:
            data = conn.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self.close_open(conn)

    def close_open(self, conn: socket.socket) -> None:
        try:
            self.open.remove(conn)
        except ValueError:
            pass
        self.drop(conn)

    # ----- publishing

    def publish(self) -> None:
        self.seq += 1
        self.published += 1
        message = {
            "type": "metrics_update",
            "seq": self.seq,
            "correlation_id": None,
            "data": {"timestamp": iso_now(), "host": self.args.host_name, "metrics": sample(self.metrics, self.seq)},
        }
        data = frame(json.dumps(message, separators=(",", ":")).encode())
        size = len(data)
        short = []
        # The floor itself: one send per socket, nothing else.
        for conn in self.open:
            try:
                if conn.send(data) != size:
                    short.append(conn)
            except OSError:
                short.append(conn)
        for conn in short:
            self.close_open(conn)

    def set_rate(self, hz: float) -> None:
        self.period = 1.0 / hz if hz > 0 else 0.0
        self.deadline = time.monotonic() + self.period

    def tick_if_due(self) -> None:
        if self.period <= 0:
            return
        now = time.monotonic()
        if now < self.deadline:
            return
        self.publish()
        self.deadline += self.period
        finished = time.monotonic()
        if self.deadline < finished:
            # Late: the next tick runs at once; the periods it covers are
            # coalesced into it rather than skipped or bursted.
            self.lag_periods += (finished - self.deadline) / self.period
            self.deadline = finished

    def timeout(self) -> float | None:
        if self.period <= 0:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def on_control(self) -> None:
        try:
            chunk = os.read(sys.stdin.fileno(), 4096)
        except BlockingIOError:
            return
        if not chunk:
            self.running = False
            return
        self.control += chunk
        while b"\n" in self.control:
            line, _, self.control = self.control.partition(b"\n")
            command, _, value = line.decode().strip().partition(" ")
            if command == "rate":
                self.set_rate(float(value))
            elif command == "stats":
                emit(
                    {
                        "event": "stats",
                        "published": self.published,
                        "seq": self.seq,
                        "clients": len(self.open),
                        "ticks_coalesced": int(self.lag_periods),
                        "at": time.monotonic(),
                    }
                )
            elif command == "quit":
                self.running = False

    def run(self) -> None:
        emit({"event": "ready", "port": self.listener.getsockname()[1], "pid": os.getpid()})
        while self.running:
            for key, _ in self.selector.select(self.timeout()):
                role = key.data
                if role == "accept":
                    self.accept()
                elif role == "control":
                    self.on_control()
                elif role == "handshake":
                    if key.fileobj in self.pending:
                        self.handshake(key.fileobj)
                else:
                    self.readable(key.fileobj)
            self.tick_if_due()
        for conn in list(self.open) + list(self.pending):
            conn.close()


def emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--metrics", default="{}")
    parser.add_argument("--host-name", default="bench-0")
    parser.add_argument("--tls-key", default=None)
    parser.add_argument("--tls-cert", default=None)
    floor = Floor(parser.parse_args())
    floor.set_rate(floor.args.rate)
    floor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
