"""Running the daemon: logs, systemd notification, Prometheus telemetry."""
