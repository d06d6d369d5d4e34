"""One client's life independent of the network: session, router, connection registry, limits."""
