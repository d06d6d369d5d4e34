"""A TCP forwarder on loopback for fault injection: relays to a real server
(MariaDB) until told to stall, then keeps every connection open and relays
nothing — a network partition or a hung server as the client sees it.

It runs on its own thread with plain sockets, so it keeps working while a
test blocks (subprocess waits) and while the reactor is busy."""

from __future__ import annotations

import select
import socket
import threading


class StallingForwarder:
    """127.0.0.1:<port> -> upstream; `stall()` / `resume()`."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stalled = threading.Event()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []  # accepted while stalled: connected upstream on resume
        self._closing = threading.Event()
        self._cut = threading.Event()
        self.accepted = 0
        # While set, a new connection is accepted and closed at once (the
        # server is down): with cut(), a database that is gone, not hung.
        self.refuse_new = False
        self._thread = threading.Thread(target=self._run, name="stalling-forwarder", daemon=True)
        self._thread.start()

    def stall(self) -> None:
        """Stop relaying; close nothing."""
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    def cut(self) -> None:
        """Close every relayed connection (a server restart, a dropped link);
        new connections are still relayed."""
        self._cut.set()
        while self._cut.is_set() and self._thread.is_alive():
            threading.Event().wait(0.01)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        for sock in [self.listener, *self._pairs, *self._held]:
            sock.close()

    def _run(self) -> None:
        while not self._closing.is_set():
            if self._cut.is_set():
                for sock in list(self._pairs):
                    sock.close()
                self._pairs.clear()
                self._cut.clear()
            relaying = not self.stalled.is_set()
            if relaying and self._held:
                for client in self._held:
                    self._pair(client)
                self._held = []
            readable = [self.listener, *(self._pairs if relaying else ())]
            ready, _, _ = select.select(readable, [], [], 0.05)
            for sock in ready:
                if sock is self.listener:
                    client, _ = self.listener.accept()
                    self.accepted += 1
                    if self.stalled.is_set():
                        self._held.append(client)
                    else:
                        self._pair(client)
                elif sock in self._pairs:
                    self._relay(sock)

    def _pair(self, client: socket.socket) -> None:
        if self.refuse_new:
            client.close()
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._pairs[client] = server
        self._pairs[server] = client

    def _relay(self, sock: socket.socket) -> None:
        peer = self._pairs[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        for end in (sock, peer):
            self._pairs.pop(end, None)
            end.close()
