"""`dashd bench loop`: the flat broadcast loop against the floor, in one process."""

from __future__ import annotations

import argparse
import socket
from typing import Any, Callable

from dashd_dev.bench.procs import BenchError, Child, emit
from dashd_dev.bench.samples import BENCH_HOST, synthetic_metrics


def measure_fanout_loop(python: str, clients: int, rounds: int) -> dict:
    child = Child("loop", [python, "-m", "dashd_dev.bench", "loop", "--clients", str(clients), "--rounds", str(rounds)])
    try:
        return child.wait_event("loop", 300)
    finally:
        child.stop()


class _LoopTransport:
    """What the flat writer reads of a Twisted tcp.Server, around a real socket."""

    dataBuffer = b""
    _tempDataLen = 0
    producerPaused = False
    disconnecting = False
    _writeDisconnected = False
    connected = True


class _LoopProtocol:
    """What the flat writer reads of an open DashboardServerProtocol."""

    send_queue = ()

    def __init__(self, sock: socket.socket) -> None:
        from autobahn.websocket.protocol import WebSocketProtocol

        self.state = WebSocketProtocol.STATE_OPEN
        self.send_state = WebSocketProtocol.SEND_STATE_GROUND
        self.flat_target = (_LoopTransport(), sock, sock.fileno(), None)

    def send_frame(self, frame) -> None:
        raise BenchError("the flat writer refused an idle connection")


def fanout_loop_cost(args: argparse.Namespace) -> int:
    """CPU (user + system, getrusage) per delivery of one ~300-byte frame to
    N loopback TCP sockets: the floor's loop (`sock.send` per socket), and
    the hub's flat loop (ClientStream.take_directly, then FlatWriter) with
    each available send loop; rounds alternate so load hits all alike. The
    receiving ends are drained between rounds, outside the measurement."""
    import resource

    from twisted.internet.task import Clock

    from dashd.stream.streams import METRICS_UPDATE, ClientStream, FrameCache, StreamMessage
    from dashd.wire.broadcast import FlatWriter, available_loops

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(args.clients + 16)
    readers, senders = [], []
    try:
        for _ in range(args.clients):
            reader = socket.create_connection(listener.getsockname())
            sender, _ = listener.accept()
            reader.setblocking(False)
            sender.setblocking(False)
            readers.append(reader)
            senders.append(sender)
        clock = Clock()
        streams = []
        for sender in senders:
            stream = ClientStream(_LoopProtocol(sender), clock, wants_metrics=True, wants_notifications=True)
            stream.live = True
            streams.append(stream)
        seq = [0]

        def flat(writer: FlatWriter) -> None:
            seq[0] += 1
            message = StreamMessage(seq[0], METRICS_UPDATE, 1_700_000_000_000, BENCH_HOST, synthetic_metrics(seq[0]))
            direct = [stream.sink for stream in streams if stream.take_directly(message)]
            writer.write_many(FrameCache(message).frame(None), direct)

        frame_bytes = b"x" * 299

        def floor(_: Any) -> None:
            for sender in senders:
                sender.send(frame_bytes)

        kinds: dict[str, tuple[Callable[[Any], None], Any]] = {"floor": (floor, None)}
        for loop in available_loops():
            kinds[f"flat-{loop}"] = (flat, FlatWriter(loop=loop))
        used = {name: [0.0, 0.0] for name in kinds}
        for _ in range(args.rounds):
            for name, (run_once, argument) in kinds.items():
                before = resource.getrusage(resource.RUSAGE_SELF)
                run_once(argument)
                after = resource.getrusage(resource.RUSAGE_SELF)
                used[name][0] += after.ru_utime - before.ru_utime
                used[name][1] += after.ru_stime - before.ru_stime
                for reader in readers:
                    try:
                        while reader.recv(1 << 20):
                            pass
                    except BlockingIOError:
                        pass
        deliveries = args.clients * args.rounds
        result = {
            name: {
                "us_per_delivery": 1e6 * (user + system) / deliveries,
                "user_us": 1e6 * user / deliveries,
                "sys_us": 1e6 * system / deliveries,
            }
            for name, (user, system) in used.items()
        }
        emit({"event": "loop", "clients": args.clients, "rounds": args.rounds, "loops": result})
    finally:
        for sock in readers + senders + [listener]:
            sock.close()
    return 0
