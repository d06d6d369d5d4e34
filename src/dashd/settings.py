"""dashd's configuration: one frozen Settings object built from, in rising
priority, built-in defaults, an INI file, DASHD_* environment variables and
command-line options.

Every key is declared once in FIELDS; the twistd options, the `dashd` CLI
options, the environment names and the error messages are all derived from
that table so they cannot drift apart.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import unquote, urlsplit

SECOND = 1.0
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
KIB = 1024
MIB = 1024 * KIB

ENV_PREFIX = "DASHD_"
INI_SECTION = "dashd"
RULES_SECTION = "rules"


class ConfigError(ValueError):
    """A configuration value is invalid; str() is one line naming the key."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid configuration: {key} = {value!r}: {allowed}")


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, None: SECOND}
_SIZE = re.compile(r"^\s*([0-9]+)\s*(b|k|kb|kib|m|mb|mib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {None: 1, "b": 1, "k": KIB, "kb": KIB, "kib": KIB, "m": MIB, "mb": MIB, "mib": MIB}


def parse_duration(text: str | float) -> float:
    """'100ms', '5s', '10m', '24h', '30d' or a plain number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", HOUR), ("m", MINUTE)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_size(text: str | int) -> int:
    """'64KiB', '1MiB', '512' (bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(text)
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parse_list(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Comma- or newline-separated; a list stays a list."""
    if isinstance(text, (list, tuple)):
        return tuple(str(item).strip() for item in text if str(item).strip())
    return tuple(part.strip() for part in re.split(r"[,\n]", str(text)) if part.strip())


@dataclass(frozen=True)
class Field:
    name: str
    default: Any
    parse: Callable[[Any], Any]
    allowed: str
    help: str
    check: Callable[[Any], bool] = lambda value: True
    repeatable: bool = False  # a command-line option that appends


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda value: low <= value <= high


def _endpoint_list(value: tuple[str, ...]) -> bool:
    return all(":" in item for item in value)


def _db_url(value: str) -> bool:
    return value == "" or value.startswith("sqlite:///") or value.startswith("mysql://")


COLLECTOR_NAMES = ("host", "filesystems", "disks", "netifs", "system", "sensors", "cgroups", "processes")

FIELDS: tuple[Field, ...] = (
    Field("config", "", str, "a path to an INI file", "INI file to read ([dashd] section)"),
    Field(
        "listen",
        ("tcp:8080",),
        parse_list,
        "Twisted endpoint strings such as tcp:8080 or systemd:domain=INET:index=0",
        "endpoint to serve HTTP/WebSocket on (repeatable)",
        _endpoint_list,
        repeatable=True,
    ),
    Field(
        "tls_listen",
        (),
        parse_list,
        "Twisted endpoint strings such as ssl:8443:privateKey=key.pem:certKey=cert.pem",
        "endpoint to serve HTTPS/WSS on (repeatable)",
        _endpoint_list,
        repeatable=True,
    ),
    Field("redirect_http", False, parse_bool, "true or false", "redirect plain HTTP to the first TLS listener"),
    Field(
        "state_dir", "state", str, "a directory path", "directory for the secret, the SQLite database and other state"
    ),
    Field(
        "db",
        "",
        str,
        "sqlite:///PATH or mysql://user:pass@host:port/db",
        "database URL (default sqlite:///STATE_DIR/dashd.db)",
        _db_url,
    ),
    Field(
        "interval",
        1.0,
        parse_duration,
        "a number of seconds from 0.1 to 60",
        "collection period in seconds",
        _number(0.1, 60),
    ),
    Field("secret_file", "", str, "a file path", "token signing key (default STATE_DIR/secret.key; created 0600)"),
    Field("static", "frontend/dist", str, "a directory path", "frontend build directory served at /"),
    Field(
        "host_name",
        "",
        str,
        "a host name (letters, digits, '.', '-', '_')",
        "name this daemon gives its samples (default: the machine's host name)",
        lambda value: value == "" or re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value) is not None,
    ),
    Field("disk_path", "/", str, "a mounted directory", "filesystem whose usage disk_usage reports"),
    Field(
        "retention_raw",
        7 * DAY,
        parse_duration,
        "a duration from 1m to 365d (e.g. 24h)",
        "how long raw samples are kept",
        _number(MINUTE, 365 * DAY),
    ),
    Field(
        "retention_rollup",
        90 * DAY,
        parse_duration,
        "a duration from 1h to 3650d (e.g. 30d)",
        "how long 1-minute rollups are kept",
        _number(HOUR, 3650 * DAY),
    ),
    Field(
        "retention_hourly",
        730 * DAY,
        parse_duration,
        "a duration from 1h to 3650d (e.g. 2y = 730d)",
        "how long 1-hour rollups are kept",
        _number(HOUR, 3650 * DAY),
    ),
    Field(
        "batch_interval",
        1.0,
        parse_duration,
        "a duration from 0.1s to 60s",
        "how often samples are written to the store (a kill -9 loses at most about this much)",
        _number(0.1, 60),
    ),
    Field(
        "prune_interval",
        5 * MINUTE,
        parse_duration,
        "a duration from 10s to 1d",
        "how often retention pruning and rollup run",
        _number(10, DAY),
    ),
    Field(
        "store_queue",
        100_000,
        int,
        "an integer from 100 to 10000000",
        "rows held in memory while the database is down",
        _number(100, 10_000_000),
    ),
    # Database deadlines (docs/operations.md#database-deadlines).
    Field(
        "db_query_timeout",
        5.0,
        parse_duration,
        "a duration from 0.5s to 1h",
        "deadline of each database query (readiness checks use at most 1.5s)",
        _number(0.5, HOUR),
    ),
    Field(
        "db_connect_timeout",
        5.0,
        parse_duration,
        "a duration from 0.5s to 5m",
        "deadline for opening a database connection",
        _number(0.5, 5 * MINUTE),
    ),
    Field(
        "ring_span",
        5 * MINUTE,
        parse_duration,
        "a duration from 10s to 1h",
        "how far back resume replays from memory",
        _number(10, HOUR),
    ),
    Field(
        "ping_interval",
        20.0,
        parse_duration,
        "a duration from 0 (off) to 300s",
        "WebSocket ping period",
        _number(0, 300),
    ),
    Field(
        "ping_timeout",
        10.0,
        parse_duration,
        "a duration from 1s to 300s",
        "drop a peer that does not answer a ping in this time",
        _number(1, 300),
    ),
    Field(
        "auth_timeout",
        5.0,
        parse_duration,
        "a duration from 0.5s to 60s",
        "time a client has to authenticate",
        _number(0.5, 60),
    ),
    Field(
        "idle_timeout",
        300.0,
        parse_duration,
        "a duration from 0 (off) to 1d",
        "close a connection that sends nothing (not even a pong) for this long",
        _number(0, DAY),
    ),
    Field(
        "token_warning",
        60.0,
        parse_duration,
        "a duration from 5s to 1h",
        "how long before expiry a client is sent token_expiring",
        _number(5, HOUR),
    ),
    Field(
        "max_message_size",
        64 * KIB,
        parse_size,
        "a size from 1KiB to 16MiB",
        "largest inbound message (close 1009 above)",
        _number(KIB, 16 * MIB),
    ),
    Field(
        "max_frame_size",
        64 * KIB,
        parse_size,
        "a size from 1KiB to 16MiB",
        "largest inbound frame (close 1009 above)",
        _number(KIB, 16 * MIB),
    ),
    Field(
        "max_connections",
        20_000,
        int,
        "an integer from 1 to 1000000",
        "most WebSocket connections in total (HTTP 503 above)",
        _number(1, 1_000_000),
    ),
    Field(
        "max_connections_per_ip",
        1_000,
        int,
        "an integer from 1 to 1000000",
        "most WebSocket connections from one client address (HTTP 429 above)",
        _number(1, 1_000_000),
    ),
    Field(
        "messages_per_second",
        20.0,
        float,
        "a number from 1 to 10000",
        "inbound messages a connection may send per second",
        _number(1, 10_000),
    ),
    Field(
        "message_burst",
        40,
        int,
        "an integer from 1 to 100000",
        "inbound burst allowance (token bucket size)",
        _number(1, 100_000),
    ),
    Field(
        "abuse_close_after",
        10.0,
        parse_duration,
        "a duration from 1s to 1h",
        "close (1008) a connection that stays over the rate limit this long",
        _number(1, HOUR),
    ),
    Field("max_rate_hz", 10.0, float, "a number from 0.1 to 100", "highest per-client update rate", _number(0.1, 100)),
    Field(
        "max_subscriptions",
        64,
        int,
        "an integer from 1 to 10000",
        "most metric/host patterns per connection",
        _number(1, 10_000),
    ),
    Field(
        "max_history_points",
        5_000,
        int,
        "an integer from 10 to 1000000",
        "most buckets one history request returns",
        _number(10, 1_000_000),
    ),
    Field(
        "max_history_span",
        730 * DAY,
        parse_duration,
        "a duration from 1m to 3650d",
        "longest time range one history, stats or export request covers (default: the hourly tier's retention)",
        _number(MINUTE, 3650 * DAY),
    ),
    Field(
        "send_queue",
        64,
        int,
        "an integer from 4 to 100000",
        "messages queued per connection while its socket is full",
        _number(4, 100_000),
    ),
    Field(
        "send_buffer",
        256 * KIB,
        parse_size,
        "a size from 4KiB to 64MiB, or 0 for the kernel's default",
        "kernel send buffer (SO_SNDBUF) of each WebSocket connection; bounds what a slow client holds",
        lambda value: value == 0 or 4 * KIB <= value <= 64 * MIB,
    ),
    Field(
        "slow_consumer_timeout",
        30.0,
        parse_duration,
        "a duration from 1s to 1h",
        "close (1013) a client that stays over its queue bound this long",
        _number(1, HOUR),
    ),
    Field("compression", True, parse_bool, "true or false", "negotiate permessage-deflate when a client offers it"),
    Field(
        "deflate_window_bits",
        11,
        int,
        "an integer from 9 to 15",
        "permessage-deflate window (server side)",
        _number(9, 15),
    ),
    Field(
        "deflate_mem_level",
        4,
        int,
        "an integer from 1 to 9",
        "permessage-deflate memory level (server side)",
        _number(1, 9),
    ),
    Field(
        "allowed_origins",
        (),
        parse_list,
        "origins such as https://dash.example.com, or *",
        "browser origins allowed to connect (default: the daemon's own origin)",
    ),
    Field("trusted_proxies", (), parse_list, "IP addresses", "proxies whose X-Forwarded-For is believed"),
    Field(
        "access_token_ttl",
        15 * MINUTE,
        parse_duration,
        "a duration from 1m to 1d",
        "lifetime of a login access token",
        _number(MINUTE, DAY),
    ),
    Field(
        "refresh_token_ttl",
        7 * DAY,
        parse_duration,
        "a duration from 1h to 365d",
        "lifetime of a login session (refresh cookie)",
        _number(HOUR, 365 * DAY),
    ),
    Field(
        "log_format",
        "text",
        str,
        "text or json",
        "log output: text, or json (one JSON object per line; docs/operations.md#logs)",
        lambda value: value in ("text", "json"),
    ),
    Field("metrics_token", "", str, "a string", "bearer token required for the Prometheus endpoint (empty: open)"),
    Field(
        "bus",
        "memory",
        str,
        "memory or redis://host:port/db",
        "message bus shared by dashd nodes",
        lambda value: value == "memory" or value.startswith("redis://"),
    ),
    # Issue 19 collectors (dashd.collect.*): all of them by default, now that
    # their series reach clients and the store and `dashd bench collector`
    # holds the budget (docs/benchmarks.md ("Collectors of issue 19")); `host` alone turns
    # them off. See docs/operations.md#collectors.
    Field(
        "collectors",
        ("all",),
        parse_list,
        "a list of host, filesystems, disks, netifs, system, sensors, cgroups, processes, or all",
        "collectors to run besides the host metrics (which always run)",
        lambda value: all(item in COLLECTOR_NAMES + ("all",) for item in value),
    ),
    Field(
        "host_root",
        "",
        str,
        "a directory holding the host's proc and sys (e.g. /host), or empty",
        "read /proc and /sys under this root (dashd in a container watching its host)",
        lambda value: value == "" or value.startswith("/"),
    ),
    Field(
        "filesystems_interval",
        10.0,
        parse_duration,
        "a duration from 1s to 1h",
        "file system collector period",
        _number(1, HOUR),
    ),
    Field(
        "filesystems_include",
        (),
        parse_list,
        "mount point globs such as /, /var*",
        "report only these mount points (default: every disk-backed file system)",
    ),
    Field(
        "filesystems_exclude", (), parse_list, "mount point globs such as /snap/*", "never report these mount points"
    ),
    Field(
        "disks_interval",
        2.0,
        parse_duration,
        "a duration from 0.5s to 1h",
        "disk I/O collector period",
        _number(0.5, HOUR),
    ),
    Field(
        "disks_exclude",
        ("loop*", "ram*", "zram*"),
        parse_list,
        "device name globs such as loop*",
        "block devices not reported",
    ),
    Field(
        "netifs_interval",
        2.0,
        parse_duration,
        "a duration from 0.5s to 1h",
        "network interface collector period",
        _number(0.5, HOUR),
    ),
    Field("netifs_exclude", (), parse_list, "interface name globs such as veth*", "network interfaces not reported"),
    Field(
        "system_interval",
        5.0,
        parse_duration,
        "a duration from 0.5s to 1h",
        "TCP states, file descriptors, context switches collector period",
        _number(0.5, HOUR),
    ),
    Field(
        "sensors_interval",
        10.0,
        parse_duration,
        "a duration from 1s to 1h",
        "temperature, fan, battery collector period",
        _number(1, HOUR),
    ),
    Field(
        "cgroups_interval",
        5.0,
        parse_duration,
        "a duration from 1s to 1h",
        "services and containers collector period",
        _number(1, HOUR),
    ),
    Field("cgroups_depth", 4, int, "an integer from 1 to 16", "how deep the cgroup tree is walked", _number(1, 16)),
    Field("cgroups_max", 200, int, "an integer from 1 to 10000", "most control groups reported", _number(1, 10_000)),
    Field(
        "processes_interval",
        2.0,
        parse_duration,
        "a duration from 0.5s to 1h",
        "process table period",
        _number(0.5, HOUR),
    ),
    Field(
        "processes_top",
        50,
        int,
        "an integer from 1 to 1000",
        "rows of the process table (top N by CPU, memory, I/O)",
        _number(1, 1000),
    ),
    Field(
        "process_cmdlines",
        True,
        parse_bool,
        "true or false",
        "read process command lines (shown to operators and admins only)",
    ),
    Field(
        "processes_store_interval",
        10.0,
        parse_duration,
        "a duration from 1s to 1h",
        "how often a process table is kept for look-back (processes_at), for as long as raw samples",
        _number(1, HOUR),
    ),
    # HTTP hardening (docs/security.md): connection caps, request deadline,
    # allowed hosts, the public origin, static root, headers, token lifetimes.
    Field(
        "max_tcp_connections_per_ip",
        0,
        int,
        "an integer from 0 (max_connections_per_ip + 100) to 1000000",
        "most TCP connections (HTTP and WebSocket) from one address; trusted_proxies are exempt (HTTP 429 above)",
        _number(0, 1_000_000),
    ),
    Field(
        "request_timeout",
        15.0,
        parse_duration,
        "a duration from 1s to 300s",
        "time to send a request's headers and body (and the WebSocket handshake), from connecting or the last "
        "response; not reset by each line (HTTP 408 above)",
        _number(1, 300),
    ),
    Field(
        "public_url",
        "",
        str,
        "an origin such as https://dash.example.com, or empty",
        "the address users open (behind a reverse proxy: the proxy's); used for allowed hosts, CSP and redirects",
        lambda value: value == "" or re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", value) is not None,
    ),
    Field(
        "allowed_hosts",
        (),
        parse_list,
        "host names such as dash.example.com, or *",
        "Host headers served (default: localhost, this machine's and public_url's names; IP addresses always); "
        "others get HTTP 421",
    ),
    Field(
        "static_follow_symlinks",
        False,
        parse_bool,
        "true or false",
        "serve files behind symbolic links that lead outside the static directory",
    ),
    Field(
        "hsts_max_age",
        180 * DAY,
        parse_duration,
        "a duration from 0 (off) to 730d",
        "Strict-Transport-Security max-age sent on HTTPS responses",
        _number(0, 730 * DAY),
    ),
    Field(
        "metrics_token_file",
        "",
        str,
        "a file path, or empty",
        "file holding the Prometheus bearer token (keeps it out of `ps`; instead of metrics_token)",
    ),
    Field(
        "token_max_ttl_viewer",
        30 * DAY,
        parse_duration,
        "a duration from 1m to 366d",
        "longest --ttl `dashd token` mints for a viewer",
        _number(MINUTE, 366 * DAY),
    ),
    Field(
        "token_max_ttl_operator",
        7 * DAY,
        parse_duration,
        "a duration from 1m to 366d",
        "longest --ttl `dashd token` mints for an operator",
        _number(MINUTE, 366 * DAY),
    ),
    Field(
        "token_max_ttl_admin",
        DAY,
        parse_duration,
        "a duration from 1m to 366d",
        "longest --ttl `dashd token` mints for an admin",
        _number(MINUTE, 366 * DAY),
    ),
    Field(
        "token_max_ttl_agent",
        366 * DAY,
        parse_duration,
        "a duration from 1m to 366d",
        "longest --ttl `dashd token` mints for an agent",
        _number(MINUTE, 366 * DAY),
    ),
    # Hardening against floods (issue 11 A, B, D; docs/security.md, "Limits").
    Field(
        "send_queue_bytes",
        4 * MIB,
        parse_size,
        "a size from 64KiB to 1GiB",
        "payload bytes queued per connection while its socket is full (close 1013 above)",
        _number(64 * KIB, 1024 * MIB),
    ),
    Field(
        "query_max_cost",
        2_000_000,
        int,
        "an integer from 1000 to 1000000000",
        "largest estimated cost (rows read + points returned) of one history/stats request (too_large above)",
        _number(1000, 1_000_000_000),
    ),
    Field(
        "query_user_cost_per_second",
        1_000_000.0,
        float,
        "a number from 100 to 1000000000",
        "query cost one user may spend per second, all connections together (rate_limited above)",
        _number(100, 1_000_000_000),
    ),
    Field(
        "query_concurrency",
        2,
        int,
        "an integer from 1 to 64",
        "history/stats queries the store runs at once",
        _number(1, 64),
    ),
    Field(
        "query_queue",
        16,
        int,
        "an integer from 0 to 10000",
        "history/stats queries waiting daemon-wide (rate_limited above)",
        _number(0, 10_000),
    ),
    Field(
        "agent_samples_per_second",
        50.0,
        float,
        "a number from 0.1 to 100000",
        "samples per second one agent host may publish (rate_limited above)",
        _number(0.1, 100_000),
    ),
    Field(
        "agent_max_series",
        256,
        int,
        "an integer from 1 to 100000",
        "distinct metric names one agent host may publish (too_large above)",
        _number(1, 100_000),
    ),
    # Alert delivery (docs/alerting.md); channels and routes are [channel:NAME] and [route:NAME] sections.
    Field(
        "alert_dashboard_url",
        "",
        str,
        "an http:// or https:// URL",
        "dashboard address used in alert links (default public_url, else http://HOST_NAME:PORT of the first listener)",
        lambda value: value == "" or re.match(r"^https?://[^\s/]+", value) is not None,
    ),
    Field(
        "alert_allow_networks",
        (),
        parse_list,
        "networks such as 127.0.0.1/32 or 10.0.0.0/8",
        "private, loopback or link-local networks alert targets may be in (refused otherwise: SSRF)",
        lambda value: all(_is_network(item) for item in value),
    ),
    Field(
        "alert_retry_first",
        5.0,
        parse_duration,
        "a duration from 0.1s to 1h",
        "delay before the first retry of a failed delivery",
        _number(0.1, HOUR),
    ),
    Field(
        "alert_retry_max",
        5 * MINUTE,
        parse_duration,
        "a duration from 1s to 1d",
        "longest delay between delivery retries",
        _number(1, DAY),
    ),
    Field(
        "alert_dead_after",
        DAY,
        parse_duration,
        "a duration from 10s to 30d",
        "a delivery still failing after this is dead-lettered",
        _number(10, 30 * DAY),
    ),
    Field(
        "alert_keep",
        7 * DAY,
        parse_duration,
        "a duration from 1h to 365d",
        "how long finished deliveries and the alert timeline are kept",
        _number(HOUR, 365 * DAY),
    ),
)


def _is_network(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


FIELDS_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class AlertRuleConfig:
    """One `[rules]` line, not yet validated against the metric catalogue."""

    name: str
    spec: str


@dataclass(frozen=True)
class Settings:
    """Everything below makeService reads configuration from this object."""

    config: str = ""
    listen: tuple[str, ...] = ("tcp:8080",)
    tls_listen: tuple[str, ...] = ()
    redirect_http: bool = False
    state_dir: str = "state"
    db: str = ""
    interval: float = 1.0
    secret_file: str = ""
    static: str = "frontend/dist"
    host_name: str = ""
    disk_path: str = "/"
    retention_raw: float = 7 * DAY
    retention_rollup: float = 90 * DAY
    retention_hourly: float = 730 * DAY
    batch_interval: float = 1.0
    prune_interval: float = 5 * MINUTE
    store_queue: int = 100_000
    db_query_timeout: float = 5.0
    db_connect_timeout: float = 5.0
    ring_span: float = 5 * MINUTE
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    auth_timeout: float = 5.0
    idle_timeout: float = 300.0
    token_warning: float = 60.0
    max_message_size: int = 64 * KIB
    max_frame_size: int = 64 * KIB
    max_connections: int = 20_000
    max_connections_per_ip: int = 1_000
    messages_per_second: float = 20.0
    message_burst: int = 40
    abuse_close_after: float = 10.0
    max_rate_hz: float = 10.0
    max_subscriptions: int = 64
    max_history_points: int = 5_000
    max_history_span: float = 730 * DAY
    send_queue: int = 64
    send_buffer: int = 256 * KIB
    slow_consumer_timeout: float = 30.0
    compression: bool = True
    deflate_window_bits: int = 11
    deflate_mem_level: int = 4
    allowed_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    access_token_ttl: float = 15 * MINUTE
    refresh_token_ttl: float = 7 * DAY
    log_format: str = "text"
    metrics_token: str = ""
    bus: str = "memory"
    collectors: tuple[str, ...] = ("all",)
    host_root: str = ""
    filesystems_interval: float = 10.0
    filesystems_include: tuple[str, ...] = ()
    filesystems_exclude: tuple[str, ...] = ()
    disks_interval: float = 2.0
    disks_exclude: tuple[str, ...] = ("loop*", "ram*", "zram*")
    netifs_interval: float = 2.0
    netifs_exclude: tuple[str, ...] = ()
    system_interval: float = 5.0
    sensors_interval: float = 10.0
    cgroups_interval: float = 5.0
    cgroups_depth: int = 4
    cgroups_max: int = 200
    processes_interval: float = 2.0
    processes_top: int = 50
    process_cmdlines: bool = True
    processes_store_interval: float = 10.0
    max_tcp_connections_per_ip: int = 0
    request_timeout: float = 15.0
    public_url: str = ""
    allowed_hosts: tuple[str, ...] = ()
    static_follow_symlinks: bool = False
    hsts_max_age: float = 180 * DAY
    metrics_token_file: str = ""
    token_max_ttl_viewer: float = 30 * DAY
    token_max_ttl_operator: float = 7 * DAY
    token_max_ttl_admin: float = DAY
    token_max_ttl_agent: float = 366 * DAY
    send_queue_bytes: int = 4 * MIB
    query_max_cost: int = 2_000_000
    query_user_cost_per_second: float = 1_000_000.0
    query_concurrency: int = 2
    query_queue: int = 16
    agent_samples_per_second: float = 50.0
    agent_max_series: int = 256
    alert_dashboard_url: str = ""
    alert_allow_networks: tuple[str, ...] = ()
    alert_retry_first: float = 5.0
    alert_retry_max: float = 5 * MINUTE
    alert_dead_after: float = DAY
    alert_keep: float = 7 * DAY
    rules: tuple[AlertRuleConfig, ...] = field(default=())
    # [channel:NAME] and [route:NAME] sections as (name, ((key, value), ...)), validated by dashd.alerting.config
    alert_channels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = field(default=())
    alert_routes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = field(default=())

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{os.path.join(self.state_dir, 'dashd.db')}"

    @property
    def spill_path(self) -> str:
        """Where the store spills rows it cannot write at shutdown."""
        return os.path.join(self.state_dir, "store-spill.json")

    @property
    def secret_path(self) -> str:
        return self.secret_file or os.path.join(self.state_dir, "secret.key")

    @property
    def host(self) -> str:
        return self.host_name or socket.gethostname()

    @property
    def tcp_connections_per_ip(self) -> int:
        return self.max_tcp_connections_per_ip or self.max_connections_per_ip + 100

    def token_max_ttl(self, role: str) -> float:
        return float(getattr(self, f"token_max_ttl_{role}"))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(spec: Field, raw: Any) -> Any:
    try:
        value = spec.parse(raw)
    except (TypeError, ValueError):
        raise ConfigError(spec.name, raw, spec.allowed) from None
    if not spec.check(value):
        raise ConfigError(spec.name, raw, spec.allowed)
    return value


def read_ini(path: str) -> tuple[dict[str, str], tuple[AlertRuleConfig, ...]]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        with open(path, encoding="utf-8") as ini_file:
            parser.read_file(ini_file)
    except OSError as e:
        raise ConfigError("config", path, f"cannot read the file ({e.strerror})") from None
    except configparser.Error as e:
        raise ConfigError("config", path, f"not a valid INI file ({str(e).splitlines()[0]})") from None
    values: dict[str, str] = {}
    if parser.has_section(INI_SECTION):
        for key, value in parser.items(INI_SECTION):
            key = key.replace("-", "_")
            if key not in FIELDS_BY_NAME or key == "config":
                raise ConfigError(key, value, f"unknown key in [{INI_SECTION}] of {path}")
            values[key] = value
    rules: tuple[AlertRuleConfig, ...] = ()
    if parser.has_section(RULES_SECTION):
        rules = tuple(AlertRuleConfig(name, spec) for name, spec in parser.items(RULES_SECTION))
    return values, rules


# `[KIND:NAME]` sections of one kind: (NAME, its (key, value) pairs) in file order.
IniSections = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


def read_ini_sections(path: str, kinds: tuple[str, ...]) -> dict[str, IniSections]:
    """`[KIND:NAME]` sections (alert channels and routes), in file order;
    keys keep their case (header names)."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    with open(path, encoding="utf-8") as ini_file:  # read_ini already reported a bad file
        parser.read_file(ini_file)
    found: dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = {kind: [] for kind in kinds}
    for section in parser.sections():
        kind, _, name = section.partition(":")
        if kind.strip() in found and name.strip():
            found[kind.strip()].append((name.strip(), tuple(parser.items(section))))
    return {kind: tuple(items) for kind, items in found.items()}


def load_settings(
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings: defaults < INI (--config) < DASHD_* < options.

    `options` holds only what was given on the command line (None values are
    ignored), keyed by field name.
    """
    options = {k.replace("-", "_"): v for k, v in (options or {}).items() if v not in (None, [], ())}
    environ = os.environ if environ is None else environ
    env_values = {}
    for spec in FIELDS:
        env_name = ENV_PREFIX + spec.name.upper()
        if env_name in environ and environ[env_name] != "":
            env_values[spec.name] = environ[env_name]
    config_path = options.get("config") or env_values.get("config") or ""
    ini_values: dict[str, str] = {}
    rules: tuple[AlertRuleConfig, ...] = ()
    alerting: dict[str, IniSections] = {"channel": (), "route": ()}
    if config_path:
        ini_values, rules = read_ini(config_path)
        alerting = read_ini_sections(config_path, ("channel", "route"))
    values: dict[str, Any] = {"config": config_path}
    for spec in FIELDS:
        if spec.name == "config":
            continue
        for source in (options, env_values, ini_values):
            if spec.name in source:
                values[spec.name] = _coerce(spec, source[spec.name])
                break
    settings = Settings(rules=rules, alert_channels=alerting["channel"], alert_routes=alerting["route"], **values)
    if settings.retention_rollup < settings.retention_raw:
        raise ConfigError(
            "retention_rollup",
            format_duration(settings.retention_rollup),
            f"must be at least retention_raw ({format_duration(settings.retention_raw)})",
        )
    if settings.retention_hourly < settings.retention_rollup:
        raise ConfigError(
            "retention_hourly",
            format_duration(settings.retention_hourly),
            f"must be at least retention_rollup ({format_duration(settings.retention_rollup)})",
        )
    check_db_url(settings.db_url)
    return _with_metrics_token_file(settings)


def _with_metrics_token_file(settings: Settings) -> Settings:
    """metrics_token_file: the token read from a file (0600, not on the command line)."""
    if not settings.metrics_token_file:
        return settings
    if settings.metrics_token:
        raise ConfigError(
            "metrics_token_file", settings.metrics_token_file, "set metrics_token or metrics_token_file, not both"
        )
    try:
        with open(settings.metrics_token_file, encoding="utf-8") as token_file:
            token = token_file.read().strip()
    except OSError as e:
        raise ConfigError(
            "metrics_token_file", settings.metrics_token_file, f"cannot read the file ({e.strerror})"
        ) from None
    if not token:
        raise ConfigError("metrics_token_file", settings.metrics_token_file, "the file is empty")
    return settings.replace(metrics_token=token)


@dataclass(frozen=True)
class DatabaseURL:
    dialect: str  # "sqlite" or "mysql"
    path: str = ""
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    database: str = ""


def check_db_url(url: str) -> DatabaseURL:
    allowed = FIELDS_BY_NAME["db"].allowed
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path:
            raise ConfigError("db", url, allowed)
        # sqlite:////abs/path and sqlite:///relative/path, as SQLAlchemy reads them.
        return DatabaseURL("sqlite", path=path)
    if url.startswith("mysql://"):
        parts = urlsplit(url)
        database = parts.path.lstrip("/")
        try:
            port = parts.port or 3306
        except ValueError:
            raise ConfigError("db", url, allowed) from None
        if not parts.hostname or not database:
            raise ConfigError("db", url, allowed)
        return DatabaseURL(
            "mysql",
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=database,
        )
    raise ConfigError("db", url, allowed)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs."""
    # Up to the last "@" before the path: urlsplit reads an unescaped "@" in
    # a password that way too; the user part may be empty (redis://:pw@host).
    return re.sub(r"(://[^:/@]*:)[^/]*@", r"\1***@", url)
