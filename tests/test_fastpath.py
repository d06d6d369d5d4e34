"""dashd.wire.fastpath: frames built once, compressed once, written straight to
the socket when nothing is waiting -- and everything that must not change
because of it: per-connection order with Autobahn's own frames, nothing
after a close frame, every compressed frame decodable, flow control and
coalescing for slow clients. Plus pins on the Twisted/Autobahn internals
the module reads, so an upgrade that moves one fails here first.

The daemon tests run the real service tree on 127.0.0.1 and read the wire
with an independent client (websockets' sans-I/O protocol, RawClient)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import zlib

import pytest
import pytest_twisted
from autobahn.websocket.compress_deflate import PerMessageDeflate
from autobahn.websocket.protocol import PreparedMessage, WebSocketProtocol
from twisted.internet import reactor, tcp
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol
from websockets.extensions.permessage_deflate import PerMessageDeflate as WebsocketsDeflate
from websockets.frames import Frame, Opcode

from dashd.wire import fastpath
from dashd.wire.fastpath import FramedMessage, deflate_message, frame, send_message, write_now
from dashd.wire.protocol import DashboardServerFactory
from fakes import sleep
from test_conformance import RawClient, open_client, wire_frames

TIMEOUT = 10.0


# Every daemon test here runs once per available flat-loop send loop (the C
# extension and the Python loop; issue 17): the guarantees hold on each.
def pytest_generate_tests(metafunc):
    if "daemon" in metafunc.fixturenames:
        from dashd.wire.broadcast import available_loops

        metafunc.parametrize("fanout_loop", available_loops(), indirect=True)


@pytest.fixture(autouse=True)
def fanout_loop(request):
    loop = getattr(request, "param", None)
    if loop is not None:
        from dashd.wire.broadcast import FlatWriter

        hub = request.getfixturevalue("daemon").core.hub
        hub.writer = FlatWriter(hub.writer.on_sent, loop=loop)
    return loop


# --------------------------------------------------------------------------
# Framing and compression, against independent implementations


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True])
def test_frame_matches_autobahns_framing(length, binary):
    payload = bytes(i % 251 for i in range(length))
    assert frame(payload, binary=binary) == PreparedMessage(payload, binary, False, True).payloadHybi


def test_compressed_frame_sets_rsv1_and_keeps_the_opcode():
    assert frame(b"abc", compressed=True)[0] == 0x80 | 0x40 | 0x1
    assert frame(b"abc", binary=True, compressed=True)[0] == 0x80 | 0x40 | 0x2


@pytest.mark.parametrize("window_bits", [9, 11, 15])
def test_deflated_message_decodes_with_that_window_by_zlib_and_by_websockets(window_bits):
    payload = json.dumps({"type": "metrics_update", "seq": 7, "data": {"metrics": {"cpu_usage": 12.5}}}).encode()
    data = deflate_message(payload, window_bits, 4)
    assert not data.endswith(b"\x00\x00\xff\xff")
    assert zlib.decompressobj(-window_bits).decompress(data + b"\x00\x00\xff\xff") == payload
    decoder = WebsocketsDeflate(
        remote_no_context_takeover=True,
        local_no_context_takeover=True,
        remote_max_window_bits=window_bits,
        local_max_window_bits=window_bits,
    )
    decoded = decoder.decode(Frame(Opcode.TEXT, data, rsv1=True))
    assert decoded.data == payload and not decoded.rsv1


def test_framed_message_builds_each_form_once():
    message = FramedMessage(b'{"hello": 1}')
    assert message.plain() is message.plain()
    assert message.deflated(11, 4) is message.deflated(11, 4)
    assert message.deflated(9, 4) is not message.deflated(11, 4)
    assert message.deflated(11, 4)[0] & 0x40


# --------------------------------------------------------------------------
# The internals fastpath reads: pinned on live objects


class _Sink(Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.waiters: list[tuple[int, Deferred]] = []

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        for waiter in list(self.waiters):
            if len(self.data) >= waiter[0]:
                self.waiters.remove(waiter)
                waiter[1].callback(None)

    async def wait_for(self, size: int) -> None:
        if len(self.data) >= size:
            return
        d: Deferred = Deferred()
        self.waiters.append((size, d))
        d.addTimeout(TIMEOUT, reactor)
        await d


class _ServerSide(Protocol):
    def connectionMade(self) -> None:
        self.factory.connected.callback(self)


@pytest_twisted.async_yield_fixture
async def tcp_pair():
    """(server-side tcp.Server transport, client-side _Sink) over loopback."""
    factory = Factory.forProtocol(_ServerSide)
    factory.connected = Deferred()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    sink = _Sink()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), sink)
    server = await factory.connected
    yield server.transport, sink
    server.transport.abortConnection()
    sink.transport.abortConnection()
    await port.stopListening()
    await sleep(0.01)


@pytest_twisted.ensureDeferred
async def test_the_twisted_internals_fastpath_reads_exist(tcp_pair):
    transport, _ = tcp_pair
    assert type(transport) is tcp.Server
    assert isinstance(transport.socket, socket.socket) and transport.socket.gettimeout() == 0.0
    assert transport.dataBuffer == b"" and transport._tempDataLen == 0
    assert transport.connected and not transport.disconnecting
    assert transport._writeDisconnected is False and transport.producerPaused is False
    assert transport.TLS is False


def test_the_autobahn_constants_and_deflate_fields_fastpath_reads_exist():
    states = (
        WebSocketProtocol.STATE_CONNECTING,
        WebSocketProtocol.STATE_OPEN,
        WebSocketProtocol.STATE_CLOSING,
        WebSocketProtocol.STATE_CLOSED,
    )
    assert len(set(states)) == 4 and isinstance(WebSocketProtocol.SEND_STATE_GROUND, int)
    deflate = PerMessageDeflate(True, True, False, 11, 0, 4)
    assert (
        deflate._is_server,
        deflate.server_no_context_takeover,
        deflate.server_max_window_bits,
        deflate.mem_level,
        deflate._compressor,
    ) == (True, True, 11, 4, None)


# --------------------------------------------------------------------------
# write_now on a real loopback connection


@pytest_twisted.ensureDeferred
async def test_write_now_sends_at_once_when_nothing_is_buffered(tcp_pair):
    transport, sink = tcp_pair
    before = fastpath.stats.direct
    write_now(transport, b"hello")
    assert fastpath.stats.direct == before + 1
    assert transport.dataBuffer == b"" and transport._tempDataLen == 0  # never went through Twisted
    await sink.wait_for(5)
    assert bytes(sink.data) == b"hello"


@pytest_twisted.ensureDeferred
async def test_write_now_queues_behind_what_twisted_already_holds(tcp_pair):
    transport, sink = tcp_pair
    transport.write(b"first ")  # buffered until the next reactor turn
    before = fastpath.stats.buffered
    write_now(transport, b"second")
    assert fastpath.stats.buffered == before + 1
    await sink.wait_for(12)
    assert bytes(sink.data) == b"first second"


@pytest_twisted.ensureDeferred
async def test_write_now_hands_what_the_kernel_refused_to_twisted_in_order(tcp_pair):
    transport, sink = tcp_pair
    transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sink.transport.pauseProducing()  # the peer stops reading: the kernel fills up
    big = bytes(i % 256 for i in range(4 * 1024 * 1024))
    partial = fastpath.stats.partial
    write_now(transport, big)
    assert fastpath.stats.partial == partial + 1
    assert 0 < len(transport.dataBuffer) + transport._tempDataLen < len(big)
    write_now(transport, b"tail")  # must not overtake the buffered rest
    sink.transport.resumeProducing()
    await sink.wait_for(len(big) + 4)
    assert bytes(sink.data) == big + b"tail"


@pytest_twisted.ensureDeferred
async def test_write_now_leaves_a_closing_or_non_tcp_transport_to_its_write(tcp_pair):
    transport, sink = tcp_pair
    transport.loseConnection()
    before = fastpath.stats.buffered
    write_now(transport, b"last words")
    assert fastpath.stats.buffered == before + 1
    await sink.wait_for(10)
    assert bytes(sink.data) == b"last words"

    class TLSLike:
        written: list = []

        def write(self, data: bytes) -> None:
            self.written.append(data)

    tls = TLSLike()
    write_now(tls, b"encrypted by someone else")
    assert tls.written == [b"encrypted by someone else"]


def test_send_message_leaves_context_takeover_compression_to_autobahn():
    """A compressor whose state outlives a message cannot share frames."""

    class FakeProtocol:
        state = WebSocketProtocol.STATE_OPEN
        send_state = WebSocketProtocol.SEND_STATE_GROUND
        send_queue: list = []
        _perMessageCompress = PerMessageDeflate(True, False, False, 11, 0, 4)

        def __init__(self) -> None:
            self.sent: list = []

        def sendMessage(self, payload: bytes, isBinary: bool = False) -> None:
            self.sent.append(payload)

    protocol = FakeProtocol()
    send_message(protocol, FramedMessage(b"{}"))
    assert protocol.sent == [b"{}"]
    protocol.state = WebSocketProtocol.STATE_CLOSING
    send_message(protocol, FramedMessage(b"late"))
    assert protocol.sent == [b"{}"]


# --------------------------------------------------------------------------
# The daemon, end to end


def updates(client: RawClient) -> list[dict]:
    return [json.loads(payload) for kind, payload in client.messages() if kind == "text"]


async def dashboard_client(daemon, deflate: bool = False) -> RawClient:
    client = await open_client(daemon.url(), {"Authorization": f"Bearer {daemon.token()}"}, deflate=deflate)
    await client.wait(lambda: any(m["type"] == "connection_ack" for m in updates(client)))
    return client


def session_of(daemon, count: int = 1):
    sessions = list(daemon.core.connections)
    assert len(sessions) == count
    return sessions


def publish(daemon, n: int) -> int:
    message = daemon.core.hub.publish(
        "metrics_update",
        daemon.core.wall_clock_ms(),
        host="fast-test",
        metrics={"cpu_usage": float(n), "memory_usage": 40.0},
    )
    return message.seq


@pytest_twisted.ensureDeferred
async def test_the_autobahn_protocol_fields_fastpath_reads_exist(daemon):
    client = await dashboard_client(daemon, deflate=True)
    (session,) = session_of(daemon)
    protocol = session.sink
    assert protocol.state == WebSocketProtocol.STATE_OPEN
    assert protocol.send_state == WebSocketProtocol.SEND_STATE_GROUND
    assert len(protocol.send_queue) == 0
    assert type(protocol._perMessageCompress) is PerMessageDeflate
    assert protocol._perMessageCompress.server_no_context_takeover is True
    assert type(protocol.transport) is tcp.Server
    client.abort()


@pytest.mark.parametrize("ping_first", [False, True], ids=["idle-socket", "behind-a-buffered-ping"])
@pytest_twisted.ensureDeferred
async def test_a_reply_between_two_broadcasts_arrives_between_them(daemon, ping_first):
    client = await dashboard_client(daemon)
    (session,) = session_of(daemon)
    protocol = session.sink
    frames_before = len(client.frames)
    first = publish(daemon, 1)
    if ping_first:
        protocol.sendPing(b"keepalive")  # Autobahn's own write: waits in Twisted's buffer
    session.reply("pong", {"note": "between"}, "c-1")
    second = publish(daemon, 2)
    await client.wait(lambda: any(m.get("seq") == second for m in updates(client)))
    ours = [
        f
        for f in client.frames[frames_before:]
        if f.opcode is Opcode.PING or (f.opcode is Opcode.TEXT and (b'"fast-test"' in f.data or b'"c-1"' in f.data))
    ]
    seen = [
        f.opcode.name
        if f.opcode is Opcode.PING
        else (json.loads(f.data).get("seq") or json.loads(f.data)["correlation_id"])
        for f in ours
    ]
    assert seen == [first] + (["PING"] if ping_first else []) + ["c-1", second]
    client.abort()


@pytest_twisted.ensureDeferred
async def test_frames_after_an_autobahn_sync_write_wait_for_it(daemon):
    """Autobahn's own delayed-write queue (sync=True) is respected."""
    client = await dashboard_client(daemon)
    (session,) = session_of(daemon)
    session.sink.sendMessage(b'{"type": "sync-first"}', sync=True)
    seq = publish(daemon, 3)
    await client.wait(lambda: any(m.get("seq") == seq for m in updates(client)))
    types = [m["type"] for m in updates(client)]
    assert types.index("sync-first") < max(i for i, m in enumerate(updates(client)) if m.get("seq") == seq)
    client.abort()


@pytest_twisted.ensureDeferred
async def test_a_server_close_mid_broadcast_is_the_last_frame(daemon):
    client = await dashboard_client(daemon)
    (session,) = session_of(daemon)
    sent = [publish(daemon, n) for n in range(5)]
    session.close(1000, "test over")
    after = [publish(daemon, n) for n in range(5)]
    await client.wait(lambda: client.lost)
    assert client.kinds()[-1] == "CLOSE" and client.close_code() == 1000
    seqs = [m["seq"] for m in updates(client) if m["type"] == "metrics_update"]
    assert set(sent) <= set(seqs) and not set(after) & set(seqs)
    assert [opcode for _, _, opcode, _ in wire_frames(client.raw)][-1] == 8


@pytest_twisted.ensureDeferred
async def test_a_client_that_closes_mid_broadcast_gets_no_frame_after_its_close_frame(daemon):
    """Broadcasts at 500 Hz; the client closes after 20 updates."""
    client = await dashboard_client(daemon)
    stop: list = []

    async def broadcast() -> None:
        for n in range(2000):
            if stop:
                return
            publish(daemon, n)
            await sleep(0.002)

    running = Deferred.fromCoroutine(broadcast())
    await client.wait(lambda: sum(m["type"] == "metrics_update" for m in updates(client)) >= 20)
    client.send(lambda ws: ws.send_close(1000, "enough"))
    await client.wait(lambda: client.lost)
    stop.append(True)
    await running
    assert client.kinds().count("CLOSE") == 1 and client.kinds()[-1] == "CLOSE"
    seqs = [m["seq"] for m in updates(client) if m["type"] == "metrics_update"]
    assert seqs == sorted(seqs)
    live = [s for s in seqs if s > seqs[0]]
    assert live == list(range(seqs[0] + 1, seqs[0] + 1 + len(live)))  # no gap
    assert len(daemon.core.connections) == 0


@pytest_twisted.ensureDeferred
async def test_a_compressed_client_decodes_every_frame_compressed_once_for_all(daemon, monkeypatch):
    compressions: list[int] = []
    real = fastpath.deflate_message
    # Only this test's updates count: the daemon's own collector may publish meanwhile.
    monkeypatch.setattr(
        fastpath,
        "deflate_message",
        lambda payload, bits, level: (
            compressions.append(1) if b'"fast-test"' in payload else None,
            real(payload, bits, level),
        )[1],
    )
    squeezed = [await dashboard_client(daemon, deflate=True) for _ in range(3)]
    plain = await dashboard_client(daemon)
    sessions = session_of(daemon, 4)
    compressions.clear()
    seqs = [publish(daemon, n) for n in range(100)]
    for client in squeezed + [plain]:
        await client.wait(lambda c=client: any(m.get("seq") == seqs[-1] for m in updates(c)))
    expected = [m for m in updates(plain) if m.get("seq") in seqs]
    assert [m["seq"] for m in expected] == seqs
    for client in squeezed:
        assert [m for m in updates(client) if m.get("seq") in seqs] == expected
        assert all(rsv1 for _, rsv1, opcode, _ in wire_frames(client.raw) if opcode == 1)
    # One compression per update (not per client), and no per-connection compressor.
    assert len(compressions) == len(seqs)
    for session in sessions:
        compressor = session.sink._perMessageCompress
        assert compressor is None or compressor._compressor is None
    for client in squeezed + [plain]:
        client.abort()


@pytest_twisted.ensureDeferred
async def test_a_slow_client_gets_coalesced_not_unbounded_data(daemon):
    client = await dashboard_client(daemon)
    (session,) = session_of(daemon)
    protocol = session.sink
    protocol.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.transport.pauseProducing()  # the client stops reading
    stream = session.stream
    published = 0
    while not stream.paused and published < 50_000:
        publish(daemon, published)
        published += 1
    assert stream.paused, "the transport never reported a full buffer"
    for n in range(500):
        last = publish(daemon, n)
    transport = protocol.transport
    buffered = len(transport.dataBuffer) + transport._tempDataLen
    assert buffered <= transport.bufferSize + 4096  # Twisted's buffer stopped growing at the pause
    assert stream.queued <= 3  # a degraded notice and one coalesced update
    assert stream.stats.coalesced >= 499
    client.transport.resumeProducing()
    await client.wait(
        lambda: any(m["type"] == "stream_degraded" and m["data"]["reason"] == "recovered" for m in updates(client)),
        timeout=20,
    )
    messages = updates(client)
    degraded = [m["data"]["reason"] for m in messages if m["type"] == "stream_degraded"]
    assert degraded == ["slow_consumer", "recovered"]
    seqs = [m["seq"] for m in messages if m["type"] == "metrics_update"]
    assert seqs == sorted(seqs) and last in seqs
    assert len(seqs) < published + 500  # coalesced, not everything
    client.abort()


@pytest_twisted.ensureDeferred
async def test_autobahns_own_write_path_still_works_when_chosen(daemon, monkeypatch):
    """direct_writes = False: the bench's "stock" comparison."""
    monkeypatch.setattr(DashboardServerFactory, "direct_writes", False)
    before = fastpath.stats.as_dict()
    client = await dashboard_client(daemon, deflate=True)
    seq = publish(daemon, 1)
    await client.wait(lambda: any(m.get("seq") == seq for m in updates(client)))
    assert fastpath.stats.as_dict() == before
    client.abort()


# --------------------------------------------------------------------------
# The bench tool's arithmetic (dashd_dev.bench; the runs themselves are `make bench`)


def test_bench_histogram_merges_processes_and_reads_percentiles():
    from dashd_dev.bench.report import LatencyHistogram

    histogram = LatencyHistogram(bucket_ms=0.25)
    histogram.add({"0": 50, "3": 40}, 0.9)
    histogram.add({3: 9, 399: 1}, 99.9)
    assert histogram.total == 100
    assert histogram.percentile(0.5) == 0.25
    assert histogram.percentile(0.95) == 1.0
    assert histogram.percentile(1.0) == 99.9  # the exact max, not the bucket edge
    assert LatencyHistogram().percentile(0.5) is None


def test_bench_summary_takes_medians_and_builds_the_result_line():
    from dashd_dev.bench.report import format_table, result_line, summarize, target_checks

    def row(server, scenario, **values):
        return {"server": server, "scenario": scenario, "session": "1k", **values}

    rows = []
    for repeat, (dashd_cpu, ws_cpu) in enumerate([(10.0, 8.0), (12.0, 8.0), (11.0, 9.0)]):
        rows += [
            row("dashd", "1000x10Hz", p99_ms=20.0 + repeat, cpu_us_per_delivery=11.0, deliveries_per_s=1e4),
            row("ws", "1000x10Hz", p99_ms=15.0, cpu_us_per_delivery=8.0, deliveries_per_s=1e4),
            row("dashd", "1000x100Hz", cpu_us_per_delivery=dashd_cpu),
            row("ws", "1000x100Hz", cpu_us_per_delivery=ws_cpu),
            row("dashd", "ramp 50Hz", deliveries_per_s=5e4),
            row("dashd", "ramp: sustained", sustained_deliveries_per_s=6e4 + repeat),
            row("ws", "ramp: sustained", sustained_deliveries_per_s=5e4),
            row("dashd", "10000x1Hz idle", rss_per_conn_kb=14.0),
            row("dashd", "1000x10Hz deflate", cpu_us_per_delivery=13.2),
            row("floor", "1000x100Hz", cpu_us_per_delivery=5.5),
            row("floor", "ramp: sustained", sustained_deliveries_per_s=1.2e5),
            row("dashd", "1000x10Hz TLS", cpu_us_per_delivery=20.0, p99_ms=30.0),
            row("ws", "1000x10Hz TLS", cpu_us_per_delivery=16.0, p99_ms=25.0),
        ]
    summary = summarize(rows)
    assert [(r["scenario"], r["server"]) for r in summary][:4] == [
        ("1000x10Hz", "dashd"),
        ("1000x10Hz", "ws"),
        ("1000x100Hz", "dashd"),
        ("1000x100Hz", "ws"),
    ]
    assert not any(r["scenario"] == "ramp 50Hz" for r in summary)
    line, values = result_line(summary)
    assert line == (
        "RESULT deliveries_ratio=1.2 cpu_per_delivery_ratio=1.38 p99_ms=21.0 rss_per_conn_kb=14.0 "
        "floor_ratio=2 tls_cpu_per_delivery_ratio=1.25"
    )
    assert values["p99_ms"] == 21.0
    checks = "\n".join(target_checks(summary, values))
    assert "1.2 (target >= 1): met" in checks and "1.38 (target <= 1): MISSED" in checks
    assert "deflate" in checks and "1.2 (target <= 1.3): met" in checks
    assert "TLS CPU per delivery at 1,000 x 10 Hz vs ws: 1.25 (target <= 1.5): met" in checks
    assert "TLS p99 at 1,000 x 10 Hz (ms): 30 (target <= 40): met" in checks
    # Every row as a ratio to the floor and to ws in the same scenario.
    by_key = {(r["scenario"], r["server"]): r for r in summary}
    assert by_key[("1000x100Hz", "dashd")]["vs_floor"] == 11.0 / 5.5
    assert by_key[("1000x100Hz", "dashd")]["vs_ws"] == 11.0 / 8.0
    assert by_key[("ramp: sustained", "dashd")]["vs_floor"] == 60001 / 1.2e5
    assert by_key[("1000x10Hz", "dashd")]["vs_floor"] is None  # no floor row there
    table = format_table(summary)
    header = table.splitlines()[0]
    assert header.startswith("| scenario") and "xfloor" in header and "xws" in header and "21.0" in table
    assert "2.00" in table


def test_bench_helpers_synthetic_samples_process_split_and_proc_readers():
    import os

    from dashd_dev.bench.procs import machine_busy_seconds, process_cpu_seconds, process_rss_kb
    from dashd_dev.bench.report import ratio
    from dashd_dev.bench.samples import BENCH_METRICS, SyntheticSampler, synthetic_metrics
    from dashd_dev.bench.servers import clients_per_process

    assert list(synthetic_metrics(5)) == list(BENCH_METRICS)
    assert synthetic_metrics(5) != synthetic_metrics(6)
    sampler = SyntheticSampler("bench-0", lambda: 1_000)
    sampler.prime()
    sample = sampler.sample()
    assert (sample.host, sample.timestamp_ms, sampler.count) == ("bench-0", 1_000, 1)
    assert clients_per_process(1000) == [500, 500]
    assert clients_per_process(10001) == [2501, 2500, 2500, 2500]
    assert process_rss_kb(os.getpid()) > 1000 and process_cpu_seconds(os.getpid()) > 0
    assert machine_busy_seconds() > 0
    assert ratio(1.0, 0) is None and ratio(3.0, 2.0) == 1.5


class _FakeGenerator:
    """Stands in for the Node load generator: reports `fraction` of what the
    server was asked to publish (the real one is exercised by `make bench`)."""

    def __init__(self, clients: int, fraction: float = 1.0) -> None:
        import os

        self.clients = clients
        self.fraction = fraction
        self.rate = 0.0
        self.pids = [os.getpid()]
        self._reset_at = 0.0

    def broadcast(self, command: str) -> None:
        import time

        if command == "reset":
            self._reset_at = time.monotonic()

    def report(self) -> list[dict]:
        import time

        received = int(self.clients * self.rate * (time.monotonic() - self._reset_at) * self.fraction)
        return [
            {
                "received": received,
                "received_full": received,
                "full_clients": self.clients,
                "open": self.clients,
                "bytes": 297 * received,
                "bucket_ms": 0.25,
                "hist": {"40": received},
                "max_ms": 10.1,
                "missing": 0,
                "out_of_order": 0,
                "degraded": 0,
                "unexpected_closes": 0,
            }
        ]


def test_bench_serve_runs_the_daemon_with_the_synthetic_publisher(tmp_path):
    """`python -m dashd_dev.bench serve` in a subprocess, driven the way `run`
    drives it; an independent client reads the synthetic stream."""
    import sys

    from websockets.sync.client import connect

    from dashd.auth.tokens import TokenIssuer, load_or_create_secret
    from dashd_dev.bench.collector import measure_collector
    from dashd_dev.bench.procs import process_cpu_seconds
    from dashd_dev.bench.scenarios import Plan, Session
    from dashd_dev.bench.servers import Environment, ServerUnderTest, measure_window, run_ramp

    template = tmp_path / "template"
    template.mkdir()
    token = TokenIssuer(load_or_create_secret(str(template / "secret.key"))).mint("bench", "viewer", 600)[0]
    env = Environment(
        python=sys.executable,
        node="node",
        bench_dir=str(tmp_path),
        work_dir=str(tmp_path),
        token=token,
        state_dir=str(template),
        tls_key="",
        tls_cert="",
    )
    session = Session("tiny", 1)
    server = ServerUnderTest("dashd", env, session, "t")
    try:
        with connect(server.url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            server.set_rate(50)
            seqs = []
            while len(seqs) < 5:
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "metrics_update":
                    assert message["data"]["host"] == "bench-0" and len(message["data"]["metrics"]) == 8
                    seqs.append(message["seq"])
            assert seqs == sorted(seqs)
            stats = server.stats()
            assert stats["clients"] == 1 and stats["published"] >= 5
            assert stats["write_stats"]["direct"] >= 5
            server.children[0].send("profile-start")
            server.children[0].send(f"profile-stop {tmp_path / 'serve.pstats'}")
            assert server.children[0].wait_event("profile", 10)["path"].endswith("serve.pstats")
            generator = _FakeGenerator(clients=1)
            original = server.set_rate
            server.set_rate = lambda hz: (setattr(generator, "rate", hz), original(hz))
            row = measure_window(server, generator, 20, 0.1, 0.3, 1)
            assert 0.9 < row["delivered"] < 1.1 and row["p99_ms"] == 10.1 and row["bytes_per_update"] == 297
            assert row["server_cpu_pct"] >= 0 and process_cpu_seconds(server.pids[0]) > 0
            # The schedule's own figures: ticks run over ticks due (server clock), periods coalesced.
            assert row["published_pct"] > 0 and row["ticks_coalesced"] >= 0
            plan = Plan(
                sessions=(), repeats=1, warmup=0.05, window=0.2, ramp_window=0.2, ramp_refine=1, collector_seconds=0
            )
            ramp_session = Session("tiny", 1, ramp=(10, 20, 40))
            generator.fraction = 1.0
            rows = run_ramp(server, generator, ramp_session, plan, {"server": "dashd"}, lambda text: None)
            assert rows[-1]["scenario"] == "ramp: sustained" and rows[-1]["ceiling"] is True
            generator.fraction = 0.5  # nothing is sustained now: the ramp stops at once
            rows = run_ramp(server, generator, ramp_session, plan, {"server": "dashd"}, lambda text: None)
            assert rows[-1]["sustained_rate_hz"] is None and len(rows) == 2
    finally:
        server.stop()
    assert server.children[0].process.poll() is not None
    collector = measure_collector(sys.executable, 1.0)
    assert collector["samples"] >= 1 and 0 <= collector["cpu_pct"] < 50


def test_bench_child_reports_an_exit_and_a_missing_event():
    import sys

    from dashd_dev.bench.procs import BenchError, Child

    child = Child("echo", [sys.executable, "-c", "print('{\"event\": \"hello\"}'); print('not json')"])
    try:
        assert child.wait_event("hello", 10) == {"event": "hello"}
        with pytest.raises(BenchError, match="exited"):
            child.wait_event("never", 10)
    finally:
        child.stop()


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_bench_floor_server_speaks_enough_websocket_for_the_clients(tmp_path, tls):
    """bench/floor.py, the kernel-limit baseline: a real WebSocket client
    connects (over TLS too), gets connection_ack and then the same
    metrics_update envelope the other servers send, in seq order; the
    schedule reports its coalesced ticks."""
    import os
    import ssl
    import sys

    from websockets.sync.client import connect

    from dashd.auth.devcert import write_self_signed
    from dashd_dev.bench.scenarios import Session
    from dashd_dev.bench.servers import Environment, ServerUnderTest

    bench_dir = os.path.join(os.path.dirname(__file__), "..", "bench")
    key, cert = write_self_signed(str(tmp_path / "tls"), "localhost")
    env = Environment(
        python=sys.executable,
        node="node",
        bench_dir=bench_dir,
        work_dir=str(tmp_path),
        token="unused",
        state_dir=str(tmp_path),
        tls_key=key,
        tls_cert=cert,
    )
    server = ServerUnderTest("floor", env, Session("tiny", 1, tls=tls), "t")
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with connect(server.url, ssl=context, open_timeout=10) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            server.set_rate(50)
            messages = [json.loads(ws.recv(timeout=10)) for _ in range(5)]
            assert [m["type"] for m in messages] == ["metrics_update"] * 5
            seqs = [m["seq"] for m in messages]
            assert seqs == list(range(seqs[0], seqs[0] + 5))
            assert list(messages[0]["data"]["metrics"]) == list(
                json.loads(server.children[0].process.args[server.children[0].process.args.index("--metrics") + 1])
            )
            stats = server.stats()
            assert stats["clients"] == 1 and stats["published"] >= 5 and stats["ticks_coalesced"] >= 0
    finally:
        server.stop()
    assert server.children[0].process.poll() is not None


@pytest.mark.skipif(not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx not installed")
def test_bench_dashd_behind_nginx_terminating_tls(tmp_path):
    """The bench's dashd-nginx server: nginx terminates TLS and proxies to
    dashd's plain listener; a wss client gets the stream through it, and
    the CPU counted includes nginx's worker."""
    import ssl
    import sys

    from websockets.sync.client import connect

    from dashd.auth.devcert import write_self_signed
    from dashd.auth.tokens import TokenIssuer, load_or_create_secret
    from dashd_dev.bench.scenarios import Session
    from dashd_dev.bench.servers import Environment, ServerUnderTest

    template = tmp_path / "template"
    template.mkdir()
    token = TokenIssuer(load_or_create_secret(str(template / "secret.key"))).mint("bench", "viewer", 600)[0]
    key, cert = write_self_signed(str(tmp_path / "tls"), "localhost")
    env = Environment(
        python=sys.executable,
        node="node",
        bench_dir=str(tmp_path),
        work_dir=str(tmp_path),
        token=token,
        state_dir=str(template),
        tls_key=key,
        tls_cert=cert,
    )
    server = ServerUnderTest("dashd-nginx", env, Session("tiny", 1, tls=True), "t")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        assert server.url.startswith("wss://") and len(server.pids) == 3  # dashd, nginx master, nginx worker
        with connect(
            server.url, ssl=context, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10
        ) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "connection_ack"
            server.set_rate(50)
            while True:
                message = json.loads(ws.recv(timeout=10))
                if message["type"] == "metrics_update":
                    break
            assert server.stats()["clients"] == 1
    finally:
        server.stop()
    assert server.nginx.poll() is not None and server.children[0].process.poll() is not None


def test_bench_loop_measures_the_flat_loop_against_the_floor_in_one_process():
    """`python -m dashd_dev.bench loop`: every available send loop and the
    floor, on real loopback sockets; the summary shows each against the floor."""
    import sys

    from dashd.wire.broadcast import available_loops
    from dashd_dev.bench.loop import measure_fanout_loop
    from dashd_dev.bench.report import format_loop_cost

    result = measure_fanout_loop(sys.executable, 20, 5)
    assert set(result["loops"]) == {"floor"} | {f"flat-{loop}" for loop in available_loops()}
    assert all(cost["us_per_delivery"] >= 0 for cost in result["loops"].values())
    text = format_loop_cost(
        {
            "clients": 1000,
            "rounds": 10,
            "loops": {
                "floor": {"us_per_delivery": 8.5, "user_us": 1.3, "sys_us": 7.2},
                "flat-c": {"us_per_delivery": 9.0, "user_us": 1.3, "sys_us": 7.7},
            },
        }
    )
    assert "flat-c       9.00 us (user 1.30, sys 7.70), +0.50 us vs the floor" in text
