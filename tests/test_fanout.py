"""The flat broadcast loop (issue 17): StreamHub.fan_out hands the clients
that take a frame directly to dashd.wire.broadcast.FlatWriter, which writes
them in one loop -- the C extension dashd.wire._sendmany, or the same loop in
Python -- and leaves everyone else to the per-client path.

What must hold on every path: the same bytes on the wire for every client
(checked byte for byte, 100 clients, plain and compressed, filtered, with
Autobahn frames waiting in Twisted's buffer), frames queued behind what
Twisted already holds, the rest of a partial kernel write handed to Twisted
in order, and the C loop's contract equal to the Python one's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import zlib

import pytest
import pytest_twisted
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet import reactor

from dashd.stream.streams import METRICS_UPDATE, NOTIFICATION, ClientStream, OutboundFrame, StreamMessage
from dashd.wire import broadcast, fastpath
from dashd.wire.broadcast import FlatWriter, available_loops, python_sendmany
from dashd.wire.protocol import DashboardServerFactory
from test_conformance import open_client
from test_fastpath import tcp_pair  # noqa: F401  (fixture)

LOOPS = available_loops()
HAVE_COMPILER = shutil.which(
    sysconfig.get_config_var("CC").split()[0] if sysconfig.get_config_var("CC") else "cc"
) is not None and os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))


def test_the_c_loop_was_built_where_a_compiler_and_headers_exist():
    """`pip install` builds dashd.wire._sendmany from source on this machine."""
    if not HAVE_COMPILER:
        pytest.skip("no C compiler or Python headers here: the Python loop is the only one")
    assert LOOPS == ("python", "c")
    assert FlatWriter().loop == "c"


# --------------------------------------------------------------------------
# The loops' contract, on real sockets


def socket_pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    pairs = []
    for _ in range(count):
        a, b = socket.socketpair()
        a.setblocking(False)
        pairs.append((a, b))
    return pairs


@pytest.mark.parametrize("loop", LOOPS)
def test_a_loop_sends_to_every_socket_and_reports_only_the_short_writes(loop):
    send, by_fd = broadcast.LOOPS[loop]
    pairs = socket_pairs(5)
    full, tiny = pairs[1][0], pairs[3][0]
    tiny.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    closed_peer = pairs[4]
    closed_peer[1].close()
    data = bytes(range(256)) * 4096  # 1 MiB: more than a small buffer takes
    full.send(b"x" * 0)  # nothing: an ordinary socket
    targets = [a.fileno() if by_fd else a for a, _ in pairs]
    small = b"hello"
    assert send(targets[:4], small) == []
    for _, b in pairs[:4]:
        assert b.recv(100) == small
    short = dict(send(targets, data))
    assert set(short) == {0, 1, 2, 3, 4}  # nobody takes 1 MiB at once on a socketpair
    assert all(0 < short[i] < len(data) for i in range(4))
    assert short[4] < 0 and -short[4] in (32, 104)  # EPIPE / ECONNRESET: the peer is gone
    # A socket whose buffer is full takes nothing: -EAGAIN.
    again = dict(send([targets[3]], data))
    assert again == {0: -11}
    for a, b in pairs:
        a.close()
        if b.fileno() >= 0:
            b.close()


def test_the_c_loop_refuses_bad_arguments():
    if "c" not in LOOPS:
        pytest.skip("C loop not built")
    send, _ = broadcast.LOOPS["c"]
    with pytest.raises(TypeError):
        send(42, b"x")
    with pytest.raises(ValueError):
        send([-1], b"x")
    with pytest.raises(TypeError):
        send(["3"], b"x")
    assert send([], b"x") == []
    assert python_sendmany([], b"x") == []


def test_without_the_extension_the_python_loop_is_chosen():
    """The automatic fallback: dashd.wire._sendmany missing (a failed build)."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'dashd.wire._sendmany': raise ImportError('not built')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from dashd.wire import broadcast\n"
        "print(broadcast.available_loops(), broadcast.FlatWriter().loop)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "('python',) python"


def test_the_loop_can_be_chosen_and_a_missing_one_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DASHD_FANOUT_LOOP", "python")
    assert FlatWriter().loop == "python"
    monkeypatch.setenv("DASHD_FANOUT_LOOP", "io_uring")
    with pytest.raises(ValueError, match="available loops are python"):
        FlatWriter()


@pytest.mark.skipif(not HAVE_COMPILER, reason="needs the compiler to show the build failing")
def test_a_failing_extension_build_does_not_fail_the_install(tmp_path):
    """optional=True: with a compiler that always fails, the wheel still
    builds, without the extension."""
    root = os.path.join(os.path.dirname(__file__), "..")
    env = dict(os.environ, CC="false", LDSHARED="false")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), root],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = [name for name in os.listdir(tmp_path) if name.endswith(".whl")]
    listing = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(tmp_path / wheel)], capture_output=True, text=True, check=True
    ).stdout
    assert "dashd/wire/broadcast.py" in listing and "_sendmany" not in listing.replace("_sendmany.c", "")


# --------------------------------------------------------------------------
# FlatWriter on a real loopback connection (a stand-in protocol around it)


class _Protocol:
    """What FlatWriter reads of a DashboardServerProtocol, on a real transport."""

    state = WebSocketProtocol.STATE_OPEN
    send_state = WebSocketProtocol.SEND_STATE_GROUND

    def __init__(self, transport, key=None) -> None:
        self.send_queue: list = []
        self.flat_target = (transport, transport.socket, transport.socket.fileno(), key)


def frame_of(payload: bytes) -> OutboundFrame:
    return OutboundFrame(payload, 1, kind=METRICS_UPDATE)


@pytest.mark.parametrize("loop", LOOPS)
@pytest_twisted.ensureDeferred
async def test_write_many_writes_at_once_and_counts_what_it_wrote(tcp_pair, loop):
    transport, sink = tcp_pair
    counted = []
    writer = FlatWriter(lambda frame, count: counted.append((frame.kind, count)), loop=loop)
    before = fastpath.stats.direct
    frame = frame_of(b'{"n": 1}')
    assert writer.write_many(frame, [_Protocol(transport)]) == []
    assert fastpath.stats.direct == before + 1 and counted == [(METRICS_UPDATE, 1)]
    assert transport.dataBuffer == b"" and transport._tempDataLen == 0
    await sink.wait_for(10)
    assert bytes(sink.data) == frame.prepared.plain()


@pytest.mark.parametrize("loop", LOOPS)
@pytest_twisted.ensureDeferred
async def test_write_many_leaves_a_connection_with_buffered_bytes_to_the_ordered_path(tcp_pair, loop):
    """Mutation guard: without the buffered check this frame overtakes 'first'."""
    transport, sink = tcp_pair
    transport.write(b"first ")  # waits in Twisted's buffer until the next reactor turn
    protocol = _Protocol(transport)
    assert FlatWriter(loop=loop).write_many(frame_of(b"x"), [protocol]) == [protocol]
    paused = _Protocol(transport)
    transport.producerPaused = True
    assert FlatWriter(loop=loop).write_many(frame_of(b"x"), [paused]) == [paused]
    transport.producerPaused = False
    for field, value in (
        ("send_queue", [b"sync"]),
        ("state", WebSocketProtocol.STATE_CLOSING),
        ("send_state", WebSocketProtocol.SEND_STATE_INSIDE_MESSAGE),
        ("flat_target", None),
    ):
        other = _Protocol(transport)
        setattr(other, field, value)
        assert FlatWriter(loop=loop).write_many(frame_of(b"x"), [other]) == [other], field
    await sink.wait_for(6)
    assert bytes(sink.data) == b"first "


@pytest.mark.parametrize("loop", LOOPS)
@pytest_twisted.ensureDeferred
async def test_write_many_hands_the_rest_of_a_partial_write_to_twisted_in_order(tcp_pair, loop):
    """Mutation guard: ignoring the partial result loses the tail of the frame."""
    transport, sink = tcp_pair
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sink.transport.pauseProducing()  # the peer stops reading: the kernel fills up
    big = bytes(i % 256 for i in range(2 * 1024 * 1024))
    writer = FlatWriter(loop=loop)
    partial = fastpath.stats.partial
    first = frame_of(big)
    assert writer.write_many(first, [_Protocol(transport)]) == []
    assert fastpath.stats.partial == partial + 1
    assert 0 < len(transport.dataBuffer) + transport._tempDataLen < len(first.prepared.plain())
    second = frame_of(b"tail")
    protocol = _Protocol(transport)
    assert writer.write_many(second, [protocol]) == [protocol]  # buffered now: the ordered path
    fastpath.write_now(transport, second.prepared.plain())
    sink.transport.resumeProducing()
    expected = first.prepared.plain() + second.prepared.plain()
    await sink.wait_for(len(expected))
    assert bytes(sink.data) == expected


@pytest.mark.parametrize("loop", LOOPS)
@pytest_twisted.ensureDeferred
async def test_write_many_sends_one_deflated_frame_per_window_to_compressed_clients(tcp_pair, loop):
    transport, sink = tcp_pair
    frame = frame_of(b'{"metrics": {"cpu_usage": 1.0, "cpu_usage_2": 1.0}}')
    assert FlatWriter(loop=loop).write_many(frame, [_Protocol(transport, key=(11, 4))]) == []
    data = frame.prepared.deflated(11, 4)
    await sink.wait_for(len(data))
    assert bytes(sink.data) == data and data[0] & 0x40
    assert zlib.decompressobj(-11).decompress(data[2:] + b"\x00\x00\xff\xff") == frame.payload


# --------------------------------------------------------------------------
# The hub's side: who takes a frame directly


class _Sink:
    def __init__(self) -> None:
        self.frames: list[OutboundFrame] = []

    def send_frame(self, frame: OutboundFrame) -> None:
        self.frames.append(frame)

    def close(self, code: int, reason: str) -> None:
        pass


def _stream(**kwargs) -> ClientStream:
    from twisted.internet.task import Clock

    stream = ClientStream(_Sink(), Clock(), wants_metrics=True, wants_notifications=True, **kwargs)
    stream.live = True
    return stream


def test_take_directly_only_for_clients_that_need_no_per_client_work():
    from dashd.stream.streams import SubscriptionFilter

    message = StreamMessage(5, METRICS_UPDATE, 0, "h", {"cpu_usage": 1.0})
    plain = _stream()
    assert plain.take_directly(message)
    assert (plain.last_seq, plain.first_live_seq, plain.stats.sent) == (5, 5, 1)
    assert not plain.take_directly(message)  # already has it
    not_live = _stream()
    not_live.live = False
    paused = _stream()
    paused.pause()
    queued = _stream()
    queued._queue = [object()]  # something waits: order says behind it
    throttled = _stream(collection_hz=10)
    throttled.set_rate(1)
    filtered = _stream()
    filtered.subscription = SubscriptionFilter(metrics=("cpu_*",))
    other_host = _stream()
    other_host.subscription = SubscriptionFilter(hosts=("web-*",))
    resuming = _stream()
    resuming.resuming = True
    closed = _stream()
    closed.close()
    for stream in (not_live, paused, queued, throttled, filtered, other_host, resuming, closed):
        assert not stream.take_directly(message)
        assert stream.last_seq == 0 and stream.stats.sent == 0
    everything = _stream()
    everything.subscription = SubscriptionFilter(metrics=("*",), hosts=("h",))
    assert everything.take_directly(message)
    notification = StreamMessage(6, NOTIFICATION, 0, body={"id": 1})
    assert _stream().take_directly(notification)
    metrics_only = ClientStream(_Sink(), None, wants_metrics=True, wants_notifications=False)
    metrics_only.live = True
    assert not metrics_only.take_directly(notification)


class _RecordingWriter:
    def __init__(self, refuse: int = 0) -> None:
        self.calls: list[tuple[OutboundFrame, list]] = []
        self.refuse = refuse

    def write_many(self, frame, sinks):
        self.calls.append((frame, list(sinks)))
        return list(sinks[: self.refuse])


def test_hub_writes_direct_clients_in_one_call_and_the_rest_per_client():
    from twisted.internet.task import Clock

    from dashd.stream.bus import InMemoryBus
    from dashd.stream.hub import MemorySequence, StreamHub
    from dashd.stream.streams import SubscriptionFilter

    writer = _RecordingWriter(refuse=1)
    hub = StreamHub(InMemoryBus(), Clock(), MemorySequence(), 60, lambda: ("cpu_usage",), writer=writer)
    direct = [_stream() for _ in range(3)]
    filtered = _stream()
    filtered.subscription = SubscriptionFilter(metrics=("cpu_usage",))
    for stream in direct + [filtered]:
        hub.attach(stream)
    message = hub.publish(METRICS_UPDATE, 1000, host="h", metrics={"cpu_usage": 1.0, "memory_usage": 2.0})
    ((frame, sinks),) = writer.calls
    assert set(sinks) == {s.sink for s in direct}
    assert json.loads(frame.payload)["data"]["metrics"] == {"cpu_usage": 1.0, "memory_usage": 2.0}
    # The refused sink is written through its ordered path, with the same frame.
    assert [s.sink.frames for s in direct if s.sink.frames] == [[frame]]
    assert json.loads(filtered.sink.frames[0].payload)["data"]["metrics"] == {"cpu_usage": 1.0}
    assert all(s.last_seq == message.seq for s in direct + [filtered])
    # No writer: the per-client path, same frames.
    hub.writer = None
    second = hub.publish(METRICS_UPDATE, 2000, host="h", metrics={"cpu_usage": 3.0})
    assert all(s.last_seq == second.seq for s in direct)


# --------------------------------------------------------------------------
# Every path, 100 clients, byte for byte

REAL_WRITE_TLS_NOW = fastpath.write_tls_now
PATHS = ["autobahn", "per-client", "flat-python"] + (["flat-c"] if "c" in LOOPS else [])
MARK = b'"flat-check"'


def our_frames(raw: bytes) -> list[bytes]:
    """The whole frames (header and payload, as sent) that carry our
    broadcast or the interleaved control frames, after the handshake."""
    data = bytes(raw)
    offset = data.index(b"\r\n\r\n") + 4
    frames = []
    while offset + 2 <= len(data):
        start = offset
        first, second = data[offset], data[offset + 1]
        length, offset = second & 0x7F, offset + 2
        if length == 126:
            length, offset = int.from_bytes(data[offset : offset + 2], "big"), offset + 2
        elif length == 127:
            length, offset = int.from_bytes(data[offset : offset + 8], "big"), offset + 8
        payload = data[offset : offset + length]
        offset += length
        decoded = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") if first & 0x40 else payload
        if MARK in decoded or first & 0x0F == 0x9 or b'"between"' in decoded:
            frames.append(data[start:offset])
    return frames


async def broadcast_through(daemon, path: str, monkeypatch, connect=None, count: int = 100) -> list[list[bytes]]:
    hub = daemon.core.hub
    monkeypatch.setattr(DashboardServerFactory, "direct_writes", path != "autobahn")
    monkeypatch.setattr(
        fastpath, "write_tls_now", REAL_WRITE_TLS_NOW if path != "tls-twisted" else (lambda transport, data: False)
    )
    if path == "per-client":
        hub.writer = None  # fastpath per client, as before the flat loop
    else:  # autobahn: no connection has a flat target, so the writer refuses all
        hub.writer = FlatWriter(loop=path.split("-")[1] if path.startswith("flat") else None)
    headers = {"Authorization": f"Bearer {daemon.token()}"}
    clients = []
    for index in range(count):
        client = await (connect or open_client)(daemon.url(), headers, deflate=index % 4 == 1)
        await client.wait(lambda c=client: any(b"connection_ack" in p for _, p in c.messages()))
        if index % 10 == 3:
            client.send(
                lambda ws: ws.send_text(
                    json.dumps(
                        {"type": "subscribe", "correlation_id": "s", "data": {"metrics": ["cpu_usage"]}}
                    ).encode()
                )
            )
            await client.wait(
                lambda c=client: any(b'"subscribed"' in p or b'"correlation_id":"s"' in p for _, p in c.messages())
            )
        clients.append(client)
    ports = [c.transport.getHost().port for c in clients]
    session_of = {s.sink.transport.getPeer().port: s for s in daemon.core.connections}
    for n in range(20):
        if n == 5:
            # Autobahn's own frames wait in Twisted's buffer for every 7th
            # client: the next broadcast must go behind them.
            for index in range(0, count, 7):
                session = session_of[ports[index]]
                session.sink.sendPing(b"p%d" % index)
                session.reply("pong", {"note": "between"}, f"c-{index}")
        kind = NOTIFICATION if n % 7 == 6 else METRICS_UPDATE
        if kind == METRICS_UPDATE:
            message = StreamMessage(
                50_000 + n, kind, 1_700_000_000_000 + n, "flat-check", {"cpu_usage": float(n), "memory_usage": 40.0 + n}
            )
        else:
            message = StreamMessage(
                50_000 + n, kind, 1_700_000_000_000 + n, body={"id": n, "title": "flat-check", "severity": "info"}
            )
        hub.fan_out(message)
    last = b'"seq":50019'
    for client in clients:
        await client.wait(lambda c=client: any(last in p for _, p in c.messages()))
    received = [our_frames(client.raw) for client in clients]
    for client in clients:
        client.abort()
    return received


@pytest_twisted.ensureDeferred
async def test_every_write_path_puts_the_same_bytes_on_the_wire_for_100_clients(daemon, monkeypatch):
    daemon.core.collector.schedule.stop()  # only our broadcast on the wire
    results = {}
    for path in PATHS:
        results[path] = await broadcast_through(daemon, path, monkeypatch)
    reference = results["autobahn"]
    assert len(reference) == 100
    plain, compressed, filtered = reference[2], reference[1], reference[3]
    assert len(plain) == 20 and len(compressed) == 20 and len(filtered) == 20
    assert all(f[0] & 0x40 for f in compressed) and not any(f[0] & 0x40 for f in plain)
    assert len(reference[7]) == 22  # ping and reply in the middle
    assert reference[7][5][0] & 0x0F == 0x9 and b"between" in reference[7][6]
    for path in PATHS[1:]:
        for index in range(100):
            assert results[path][index] == reference[index], (path, index)


# --------------------------------------------------------------------------
# TLS: records made by fastpath (issue 17 item 5) against Twisted's own write


@pytest_twisted.ensureDeferred
async def test_tls_records_made_by_fastpath_carry_the_same_stream_as_twisteds(make_settings, tmp_path, monkeypatch):
    """20 wss clients (Twisted's TLS client decrypts), plain and compressed,
    with a ping and a reply waiting in the TLS connection's buffers: the
    WebSocket bytes inside the TLS records are the same whether fastpath
    made the records or Twisted's TLSMemoryBIOProtocol.write did."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
    from twisted.internet.ssl import Certificate, optionsForClientTLS

    from conftest import start_daemon
    from dashd.auth.devcert import write_self_signed
    from test_conformance import TIMEOUT, RawClient

    key, cert = write_self_signed(str(tmp_path / "tls"), "localhost")
    daemon = await start_daemon(make_settings(tls_listen=f"ssl:0:privateKey={key}:certKey={cert}:interface=127.0.0.1"))
    with open(cert, "rb") as f:
        trust = Certificate.loadPEM(f.read())
    tls_port = next(listener for listener in daemon.service.listeners if listener.description.startswith("ssl"))
    port = (await tls_port.ready).getHost().port

    async def open_tls(url, headers, deflate=False):
        client = RawClient(f"wss://localhost:{port}/dashboard", headers, deflate)
        endpoint = wrapClientTLS(
            optionsForClientTLS("localhost", trustRoot=trust),
            TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=TIMEOUT),
        )
        await connectProtocol(endpoint, client)
        client._opened.addTimeout(TIMEOUT, reactor)
        await client._opened
        return client

    try:
        daemon.core.collector.schedule.stop()
        before = fastpath.stats.tls
        ours = await broadcast_through(daemon, "tls-fastpath", monkeypatch, connect=open_tls, count=20)
        assert fastpath.stats.tls - before >= 300  # most of the 400 records were made here
        middle = fastpath.stats.tls
        twisted_made = await broadcast_through(daemon, "tls-twisted", monkeypatch, connect=open_tls, count=20)
        assert fastpath.stats.tls == middle
        assert len(ours) == 20 and all(len(frames) == 20 for frames in ours[1:7])
        assert len(ours[7]) == 22 and ours[1][0][0] & 0x40
        assert ours == twisted_made
    finally:
        await daemon.stop()
