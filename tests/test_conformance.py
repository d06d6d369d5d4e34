"""dashd's WebSocket stack (the conformance echo server: the daemon's factory
options, deflate negotiation and send path) driven by an independent client,
the `websockets` library's sans-I/O protocol, through the edge cases that
matter for the fast path: fragmented messages with control frames between
the fragments, a close handshake during a broadcast, invalid UTF-8, the size
limits, and compressed and uncompressed clients side by side.

RawClient (also used by test_fastpath.py) records every frame in the order
the server sent it, and the raw bytes, so the tests can see control frames
and the RSV1 ("compressed") bit that higher-level clients hide."""

from __future__ import annotations

import struct
import sys
from typing import Any, Callable

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from dashd.wire import fastpath
from dashd_dev.conformance import BROADCAST_PATH, listen_echo
from fakes import sleep

TIMEOUT = 10.0


class RawClient(Protocol):
    """websockets' sans-I/O client on a Twisted TCP connection."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, deflate: bool = False) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if deflate else []
        self.ws = ClientProtocol(parse_uri(url), extensions=extensions, max_size=None)
        self.request = self.ws.connect()
        for name, value in (headers or {}).items():
            self.request.headers[name] = value
        self.response: Response | None = None
        self.frames: list[Frame] = []  # decoded (inflated), in arrival order
        self.raw = bytearray()  # everything the server sent, as sent
        self.lost = False
        self._opened: Deferred = Deferred()
        self._lost: Deferred = Deferred()
        self._waiters: list[tuple[Callable[[], bool], Deferred]] = []

    # ----- Twisted

    def connectionMade(self) -> None:
        self.ws.send_request(self.request)
        self._flush()

    def dataReceived(self, data: bytes) -> None:
        self.raw += data
        self.ws.receive_data(data)
        self._handle_events()

    def connectionLost(self, reason=None) -> None:
        self.lost = True
        self.ws.receive_eof()
        self._handle_events()
        if not self._opened.called:
            self._opened.errback(ConnectionError("connection lost during the handshake"))
        self._lost.callback(None)
        self._check()

    def _handle_events(self) -> None:
        for event in self.ws.events_received():
            if isinstance(event, Response):
                self.response = event
                if event.status_code == 101 and self.ws.handshake_exc is None:
                    self._opened.callback(self)
                else:
                    self._opened.errback(ConnectionError(f"handshake refused: {event.status_code}"))
            else:
                self.frames.append(event)
        self._flush()
        self._check()

    def _flush(self) -> None:
        # websockets answers pings and close frames by itself.
        for data in self.ws.data_to_send():
            if self.lost:
                continue
            if data:
                self.transport.write(data)
            elif self.transport is not None:
                self.transport.loseWriteConnection()

    def _check(self) -> None:
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate() and not d.called:
                self._waiters.remove(waiter)
                d.callback(None)

    # ----- test API

    def send(self, action: Callable[[ClientProtocol], Any]) -> None:
        """Run sans-I/O calls (send_text, send_ping...), then write their bytes."""
        action(self.ws)
        self._flush()

    async def wait(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        if predicate():
            return
        d: Deferred = Deferred()
        self._waiters.append((predicate, d))
        d.addTimeout(timeout, reactor)
        await d

    def messages(self) -> list[tuple[str, bytes]]:
        """Data messages, reassembled from their fragments: ('text'|'binary', bytes)."""
        result, parts, kind = [], [], None
        for frame in self.frames:
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                kind, parts = ("text" if frame.opcode is Opcode.TEXT else "binary"), [frame.data]
            elif frame.opcode is Opcode.CONT:
                parts.append(frame.data)
            else:
                continue
            if frame.fin:
                result.append((kind, b"".join(parts)))
        return result

    def kinds(self) -> list[str]:
        return [frame.opcode.name for frame in self.frames]

    def close_code(self) -> int | None:
        for frame in self.frames:
            if frame.opcode is Opcode.CLOSE:
                return struct.unpack("!H", frame.data[:2])[0] if len(frame.data) >= 2 else 1005
        return None

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.abortConnection()


def wire_frames(raw: bytes) -> list[tuple[bool, bool, int, int]]:
    """(fin, rsv1, opcode, payload length) of each server frame on the wire,
    after the HTTP response: independent of any WebSocket library."""
    data = bytes(raw)
    offset = data.index(b"\r\n\r\n") + 4
    frames = []
    while offset + 2 <= len(data):
        first, second = data[offset], data[offset + 1]
        length, offset = second & 0x7F, offset + 2
        assert not second & 0x80, "server frames are never masked"
        if length == 126:
            (length,), offset = struct.unpack_from("!H", data, offset), offset + 2
        elif length == 127:
            (length,), offset = struct.unpack_from("!Q", data, offset), offset + 8
        if offset + length > len(data):
            break
        frames.append((bool(first & 0x80), bool(first & 0x40), first & 0x0F, length))
        offset += length
    return frames


async def open_client(url: str, headers: dict[str, str] | None = None, deflate: bool = False) -> RawClient:
    parts = parse_uri(url)
    client = RawClient(url, headers, deflate)
    await connectProtocol(TCP4ClientEndpoint(reactor, parts.host, parts.port, timeout=TIMEOUT), client)
    opened = client._opened
    opened.addTimeout(TIMEOUT, reactor)
    await opened
    return client


class EchoServer:
    def __init__(self, port) -> None:
        self.port = port
        self.clients: list[RawClient] = []

    def url(self, path: str = "/echo") -> str:
        return f"ws://127.0.0.1:{self.port.getHost().port}{path}"

    async def connect(self, path: str = "/echo", deflate: bool = False) -> RawClient:
        client = await open_client(self.url(path), deflate=deflate)
        self.clients.append(client)
        return client


async def start_echo(settings) -> EchoServer:
    return EchoServer(await listen_echo(reactor, "tcp:0:interface=127.0.0.1", settings))


async def stop_echo(server: EchoServer) -> None:
    for client in server.clients:
        client.abort()
    await server.port.stopListening()
    await sleep(0.05)


@pytest_twisted.async_yield_fixture
async def echo(make_settings):
    server = await start_echo(make_settings())
    yield server
    await stop_echo(server)


@pytest_twisted.async_yield_fixture
async def small_echo(make_settings):
    server = await start_echo(make_settings(max_message_size="1KiB", max_frame_size="1KiB"))
    yield server
    await stop_echo(server)


# --------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest_twisted.ensureDeferred
async def test_echo_returns_text_as_text_and_binary_as_binary(echo, deflate):
    """The basic contract, on both framings; the compressed client's frames carry RSV1."""
    client = await echo.connect(deflate=deflate)
    negotiated = client.response.headers.get("Sec-WebSocket-Extensions", "")
    assert ("permessage-deflate" in negotiated) is deflate
    if deflate:
        assert "server_no_context_takeover" in negotiated
    client.send(lambda ws: ws.send_text("héllo ✓".encode()))
    client.send(lambda ws: ws.send_binary(bytes(range(256))))
    await client.wait(lambda: len(client.messages()) == 2)
    assert client.messages() == [("text", "héllo ✓".encode()), ("binary", bytes(range(256)))]
    assert [rsv1 for _, rsv1, _, _ in wire_frames(client.raw)] == [deflate, deflate]


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest_twisted.ensureDeferred
async def test_fragmented_message_with_interleaved_control_frames(echo, deflate):
    """Control frames between the fragments of a message are answered at once
    (the pong goes out before the echo), and the fragments reassemble."""
    client = await echo.connect(deflate=deflate)

    def fragments(ws: ClientProtocol) -> None:
        ws.send_text(b"frag-1 ", fin=False)
        ws.send_ping(b"p1")
        ws.send_continuation(b"frag-2 ", fin=False)
        ws.send_pong(b"unsolicited")
        ws.send_ping(b"p2")
        ws.send_continuation(b"end", fin=True)

    client.send(fragments)
    await client.wait(lambda: len(client.messages()) == 1)
    assert client.messages() == [("text", b"frag-1 frag-2 end")]
    assert client.kinds() == ["PONG", "PONG", "TEXT"]
    assert [frame.data for frame in client.frames[:2]] == [b"p1", b"p2"]


@pytest_twisted.ensureDeferred
async def test_ping_between_two_messages_is_answered_in_order(echo):
    """A message, a ping, a message: echo, pong, echo, in that order on the wire."""
    client = await echo.connect()
    client.send(lambda ws: (ws.send_text(b"one"), ws.send_ping(b"between"), ws.send_text(b"two")))
    await client.wait(lambda: len(client.frames) == 3)
    assert client.kinds() == ["TEXT", "PONG", "TEXT"]
    assert [frame.data for frame in client.frames] == [b"one", b"between", b"two"]


@pytest.mark.parametrize("fragmented", [False, True], ids=["whole", "fragmented"])
@pytest_twisted.ensureDeferred
async def test_invalid_utf8_text_is_closed_with_1007_and_not_echoed(echo, fragmented):
    client = await echo.connect()
    bad = "κόσμε".encode()[:-1] + b"\xff"

    def send(ws: ClientProtocol) -> None:
        if fragmented:
            ws.send_text(b"valid start ", fin=False)
            ws.send_continuation(bad, fin=True)
        else:
            ws.send_text(bad)

    client.send(send)
    await client.wait(lambda: client.lost)
    assert client.close_code() == 1007
    assert client.messages() == []


@pytest_twisted.ensureDeferred
async def test_message_at_the_size_limit_is_echoed_and_one_byte_more_closes_1009(small_echo):
    client = await small_echo.connect()
    client.send(lambda ws: ws.send_text(b"x" * 1024))
    await client.wait(lambda: len(client.messages()) == 1)
    assert client.messages() == [("text", b"x" * 1024)]
    client.send(lambda ws: ws.send_text(b"y" * 1025))
    await client.wait(lambda: client.lost)
    assert client.close_code() == 1009
    assert len(client.messages()) == 1


@pytest_twisted.ensureDeferred
async def test_fragments_adding_up_to_more_than_the_limit_close_1009(small_echo):
    client = await small_echo.connect()
    client.send(lambda ws: (ws.send_text(b"a" * 600, fin=False), ws.send_continuation(b"b" * 600, fin=True)))
    await client.wait(lambda: client.lost)
    assert client.close_code() == 1009
    assert client.messages() == []


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
@pytest_twisted.ensureDeferred
async def test_largest_message_uses_the_64_bit_length(echo, deflate):
    """64 KiB (the default limit) needs the 8-byte length form when sent back uncompressed."""
    client = await echo.connect(deflate=deflate)
    payload = bytes(range(256)) * 256  # 65536 bytes, poorly compressible
    client.send(lambda ws: ws.send_binary(payload))
    await client.wait(lambda: len(client.messages()) == 1)
    assert client.messages() == [("binary", payload)]
    ((fin, rsv1, opcode, length),) = wire_frames(client.raw)
    assert (fin, rsv1, opcode) == (True, deflate, 2)
    if not deflate:
        assert length == 65536 and client.raw[client.raw.index(b"\r\n\r\n") + 5] == 127


@pytest_twisted.ensureDeferred
async def test_compressed_and_uncompressed_clients_side_by_side_get_the_same_broadcast(echo, monkeypatch):
    """One sender, two compressed and one plain receiver on /broadcast: every
    receiver decodes every message, in order; each message is compressed
    once, not once per compressed client."""
    compressions: list[int] = []
    real = fastpath.deflate_message

    def counting(payload: bytes, window_bits: int, mem_level: int) -> bytes:
        compressions.append(len(payload))
        return real(payload, window_bits, mem_level)

    monkeypatch.setattr(fastpath, "deflate_message", counting)
    sender = await echo.connect(BROADCAST_PATH)
    squeezed = [await echo.connect(BROADCAST_PATH, deflate=True) for _ in range(2)]
    plain = await echo.connect(BROADCAST_PATH)
    payloads = [
        f'{{"seq": {n}, "metrics": {{"cpu_usage": {n % 97}.5, "memory_usage": 41.3}}}}'.encode() for n in range(50)
    ]
    sender.send(lambda ws: [ws.send_text(p) for p in payloads])
    receivers = [sender, *squeezed, plain]
    for receiver in receivers:
        await receiver.wait(lambda r=receiver: len(r.messages()) == len(payloads))
        assert receiver.messages() == [("text", p) for p in payloads]
    for receiver in squeezed:
        assert all(rsv1 for _, rsv1, _, _ in wire_frames(receiver.raw))
        assert len(receiver.raw) < len(plain.raw)
    assert not any(rsv1 for _, rsv1, _, _ in wire_frames(plain.raw))
    assert len(compressions) == len(payloads)


@pytest_twisted.ensureDeferred
async def test_close_handshake_during_a_broadcast(echo):
    """A receiver closes while a burst is being broadcast: it gets the
    server's close frame (echoing 1000) and no frame after it; the others
    keep receiving everything."""
    sender = await echo.connect(BROADCAST_PATH)
    closer = await echo.connect(BROADCAST_PATH)
    other = await echo.connect(BROADCAST_PATH, deflate=True)
    burst = [f"message {n}".encode() for n in range(300)]
    closing: list[int] = []

    def close_after_first() -> bool:
        if closer.messages() and not closing:
            closing.append(len(closer.frames))
            closer.send(lambda ws: ws.send_close(1000, "bye"))
        return bool(closing)

    closer._waiters.append((close_after_first, Deferred()))
    sender.send(lambda ws: [ws.send_text(p) for p in burst])
    await other.wait(lambda: len(other.messages()) == len(burst))
    await closer.wait(lambda: closer.lost)
    assert other.messages() == [("text", p) for p in burst]
    assert closer.close_code() == 1000
    assert closer.kinds()[-1] == "CLOSE"
    assert closer.kinds().count("CLOSE") == 1
    opcodes = [opcode for _, _, opcode, _ in wire_frames(closer.raw)]
    assert opcodes[-1] == 8 and opcodes.count(8) == 1
    # What arrived before the close frame is a prefix of the burst, in order.
    received = [payload for _, payload in closer.messages()]
    assert received == burst[: len(received)]


def test_the_conformance_echo_command_serves_until_stopped(tmp_path):
    """`dashd conformance-echo` as an external suite would start it."""
    import re
    import signal
    import subprocess

    from websockets.sync.client import connect

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashd.cli",
            "conformance-echo",
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--state-dir",
            str(tmp_path),
            "--max-message-size",
            "16MiB",
            "--max-frame-size",
            "16MiB",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        assert "test tool" in banner and "dashd.wire.fastpath" in banner
        url = re.search(r"ws://[0-9.]+:[0-9]+/", banner).group(0)
        with connect(url + "any/path", compression="deflate", max_size=None, open_timeout=10) as ws:
            ws.send("x" * 100_000)  # above the daemon's 64 KiB default, under the 16 MiB asked for
            assert ws.recv(timeout=10) == "x" * 100_000
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def test_the_daemon_package_ships_no_test_tools():
    """The bench and the echo server live in the development package
    (tools/dashd_dev), not in the `dashd` package the wheel installs."""
    import importlib.util

    assert importlib.util.find_spec("dashd_dev.conformance") is not None  # this venv is a development install
    for module in ("dashd.bench", "dashd.conformance", "dashd.store.bench_store"):
        assert importlib.util.find_spec(module) is None, module


@pytest.mark.parametrize("command", [["bench", "--quick"], ["bench", "store", "--quick"], ["conformance-echo"]])
def test_development_commands_without_the_development_package_say_how_to_get_it(monkeypatch, capsys, command):
    """A wheel install has no dashd_dev: `dashd bench` and `dashd
    conformance-echo` exit 2 with a message naming `make test-deps`."""
    import importlib.util

    from dashd import cli

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dashd_dev" else real_find_spec(name, *a)
    )
    assert cli.main(command) == 2
    message = capsys.readouterr().err
    assert f"dashd {command[0]} is a development tool" in message and "make test-deps" in message
