"""The connection manager: who is connected, from where, on which endpoint,
and the limits on how many."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Iterator

from dashd.errors import HandshakeRefused

if TYPE_CHECKING:
    from dashd.clients.session import ClientSession


class ConnectionManager:
    """Registry of live client sessions (authenticated or not)."""

    def __init__(self, max_connections: int, max_per_address: int) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self._sessions: dict[str, ClientSession] = {}
        self._per_address: Counter[str] = Counter()

    def admit(self, address: str) -> None:
        """Check the limits at the handshake; raises HandshakeRefused."""
        if len(self._sessions) >= self.max_connections:
            raise HandshakeRefused(503, "server at its connection limit")
        if self._per_address[address] >= self.max_per_address:
            raise HandshakeRefused(429, "too many connections from this address")

    def add(self, session: ClientSession) -> None:
        self._sessions[session.session_id] = session
        self._per_address[session.address] += 1

    def remove(self, session: ClientSession) -> None:
        if self._sessions.pop(session.session_id, None) is not None:
            self._per_address[session.address] -= 1
            if self._per_address[session.address] <= 0:
                del self._per_address[session.address]

    def get(self, session_id: str) -> ClientSession | None:
        return self._sessions.get(session_id)

    def __iter__(self) -> Iterator[ClientSession]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)

    def authenticated_count(self) -> int:
        return sum(1 for session in self._sessions.values() if session.principal is not None)

    def counts_by(self) -> Counter[tuple[str, str]]:
        """(endpoint, role) -> connections, for the telemetry."""
        counts: Counter[tuple[str, str]] = Counter()
        for session in self._sessions.values():
            role = session.principal.role if session.principal else "unauthenticated"
            counts[(session.endpoint, role)] += 1
        return counts
