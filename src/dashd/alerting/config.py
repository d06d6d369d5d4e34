"""Building alert delivery from Settings: the INI's `[channel:NAME]` and
`[route:NAME]` sections are validated here, so a bad one stops the daemon
at start with one clear line."""

from __future__ import annotations

import re
from typing import Any

from dashd.alerting.channels import ChannelConfig, ChannelError, parse_channel
from dashd.alerting.delivery import AlertDelivery
from dashd.alerting.netguard import NetworkGuard, parse_networks
from dashd.alerting.outbox import RetryPolicy
from dashd.alerting.routing import Route, RouteError, check_routes, parse_route
from dashd.settings import ConfigError, Settings


class AlertingConfigError(ConfigError):
    """A channel or route section is invalid."""

    def __init__(self, section: str, message: str) -> None:
        ValueError.__init__(self, f"invalid configuration: [{section}]: {message}")
        self.key = section
        self.value = None
        self.allowed = message


def channels_from_settings(settings: Settings) -> tuple[ChannelConfig, ...]:
    channels = []
    for name, items in settings.alert_channels:
        try:
            channels.append(parse_channel(name, dict(items)))
        except ChannelError as e:
            raise AlertingConfigError(f"channel:{name}", str(e).split(": ", 1)[-1]) from None
    return tuple(channels)


def routes_from_settings(settings: Settings, channel_names: set[str]) -> tuple[Route, ...]:
    routes = []
    for name, items in settings.alert_routes:
        try:
            routes.append(parse_route(name, dict(items)))
        except RouteError as e:
            raise AlertingConfigError(f"route:{name}", str(e).split(": ", 1)[-1]) from None
    try:
        check_routes(tuple(routes), channel_names)
    except RouteError as e:
        name = str(e).split(":", 1)[0].removeprefix("route ")
        raise AlertingConfigError(f"route:{name}", str(e).split(": ", 1)[-1]) from None
    return tuple(routes)


def dashboard_url(settings: Settings) -> str:
    if settings.alert_dashboard_url:
        return settings.alert_dashboard_url.rstrip("/")
    if settings.public_url:  # the address users open (behind a proxy: the proxy's)
        return settings.public_url.rstrip("/")
    for description in settings.tls_listen + settings.listen:
        match = re.match(r"^(ssl|tcp):(\d+)", description)
        if match and match.group(2) != "0":
            scheme = "https" if match.group(1) == "ssl" else "http"
            return f"{scheme}://{settings.host}:{match.group(2)}"
    return f"http://{settings.host}:8080"


def build_alert_delivery(settings: Settings, store: Any, reactor: Any, **overrides: Any) -> AlertDelivery:
    """The alert delivery service for these settings (ConfigError on a bad
    channel or route)."""
    channels = channels_from_settings(settings)
    routes = routes_from_settings(settings, {c.name for c in channels})
    policy = RetryPolicy(
        first=settings.alert_retry_first,
        maximum=settings.alert_retry_max,
        dead_after=settings.alert_dead_after,
        keep=settings.alert_keep,
    )
    guard = NetworkGuard(reactor, parse_networks(settings.alert_allow_networks))
    options: dict[str, Any] = {
        "channels": channels,
        "routes": routes,
        "guard": guard,
        "base_url": dashboard_url(settings),
        "policy": policy,
    }
    options.update(overrides)
    return AlertDelivery(store, reactor, settings.host, **options)
