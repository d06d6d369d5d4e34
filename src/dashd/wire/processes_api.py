"""`GET /api/processes?time=...&host=...&sort=...&limit=...` (issue 19 item
3): the stored process table nearest a time, as `processes_at` answers it on
the WebSocket, for the dashboard's links and alert e-mails. A bearer token
or the dashboard's session cookie (any role but agent); the same redaction: user names and command lines for
operators and admins only. Bad input is a 400 JSON error, no table near the
time a 404 (docs/protocol.md, "Processes")."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from dashd.auth.handshake import TokenCheck
from dashd.clients.processes import ProcessRequests
from dashd.errors import ProtocolError
from dashd.wire.export import SessionCheck, link_principal
from dashd.wire.web import AsyncJsonResource


class ProcessesResource(AsyncJsonResource):
    def __init__(self, tokens: TokenCheck, users: SessionCheck | None, processes: ProcessRequests) -> None:
        super().__init__()
        self.tokens = tokens
        self.users = users
        self.processes = processes

    def render_GET(self, request: Request) -> Any:
        async def handle(request: Request):
            principal = await link_principal(self.tokens, self.users, request, "processes")
            requests = self.processes
            args = {
                key.decode("utf-8", "replace"): values[-1].decode("utf-8", "replace")
                for key, values in request.args.items()
            }
            data: dict[str, Any] = {key: args[key] for key in ("host", "sort") if key in args}
            if "time" in args:
                data["time"] = _number_or_text(args["time"])
            if "limit" in args:
                try:
                    data["limit"] = int(args["limit"])
                except ValueError:
                    raise ProtocolError(
                        "bad_message",
                        "processes: 'limit' must be an integer from 1 to 200",
                        {"limit": args["limit"][:64]},
                    ) from None
            query = requests.parse_at(data, "processes")
            return 200, await requests.at(query, principal)

        return self._respond(request, handle)


def _number_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
