"""The data path: the bus, the stream hub, per-client streams and the Redis bus."""
