"""The network edges: WebSocket protocol, the broadcast fast path, agent ingest, the HTTP site."""
