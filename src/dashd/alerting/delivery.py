"""Alert delivery, assembled: the RuleEngine's events are recorded in the
timeline (the node that records an event first owns its delivery), checked
against silences, routed and grouped into notices, and written to the
durable outbox, which delivers them through the channels.

Channels come from the INI file (read-only) and from admins through the API
(stored, secrets write-only). This module holds no protocol: the HTTP
resource (dashd.wire.alerting_api) calls the methods below."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from dashd.alerting.channels import (
    ChannelConfig,
    ChannelError,
    DeliveryResult,
    Transport,
    merge_secrets,
    parse_channel,
    prepare_api_channel,
    transport_for,
)
from dashd.alerting.model import FIRING, AlertEvent, Notice, build_notice, dedup_key
from dashd.alerting.netguard import NetworkGuard
from dashd.alerting.outbox import Outbox, RetryPolicy
from dashd.alerting.routing import ALL_CHANNELS, DEFAULT_ROUTE, Grouper, Route
from dashd.alerting.silences import Silence, SilenceBook, silence_from_request, silence_from_row
from dashd.store.alerting import AlertingStore
from dashd.store.database import StoreUnavailable

SILENCE_POLL = 10.0  # other nodes' silences and channels show up within this
ENQUEUE_RETRY = 5.0


def _trap_unavailable(failure: Failure) -> Failure | None:
    """A refresh while the store is down: the next tick tries again."""
    return None if isinstance(failure.value, StoreUnavailable) else failure


class AlertDelivery(MultiService):
    log = Logger()

    def __init__(
        self,
        store: Any,
        clock: IReactorTime,
        node: str,
        *,
        channels: tuple[ChannelConfig, ...],
        routes: tuple[Route, ...],
        guard: NetworkGuard,
        base_url: str,
        policy: RetryPolicy = RetryPolicy(),
        poll_interval: float = 1.0,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        max_alerts: int = 50,
        jitter: Callable[[], float] | None = None,
        on_attempt: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Twisted's services are untyped
        self.store = AlertingStore(store)
        self.clock = clock
        self.node = node
        self.guard = guard
        self.base_url = base_url
        self.wall_clock_ms = wall_clock_ms
        self.policy = policy
        self.configured = {c.name: c for c in channels}
        self.api_channels: dict[str, ChannelConfig] = {}
        self.routes = routes or (DEFAULT_ROUTE,)
        self.silences = SilenceBook()
        extra: dict[str, Any] = {"jitter": jitter} if jitter is not None else {}
        if on_attempt is not None:
            extra["on_attempt"] = on_attempt
        self.outbox = Outbox(self.store, self.transport, clock, node, policy, poll_interval, wall_clock_ms, **extra)
        self.outbox.setServiceParent(self)  # type: ignore[no-untyped-call]  # Twisted's services are untyped
        self.grouper = Grouper(
            clock, self._enqueue, base_url, self.silences.silenced_by, wall_clock_ms, self._repeat_for, max_alerts
        )
        self._chain: Deferred[None] = Deferred()
        self._chain.callback(None)
        self._writing: set[Deferred[None]] = set()
        self._stopping = False
        self._poll: LoopingCall | None = None
        self.loaded: Deferred[None] = Deferred()

    # ----- lifecycle

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's services are untyped
        self._poll = LoopingCall(self._refresh_tick)
        self._poll.clock = self.clock
        self._poll.start(SILENCE_POLL, now=True).addErrback(lambda f: self.log.failure("alerting poll stopped", f))

    def stopService(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        """Groups still waiting (group_wait) are written to the outbox now,
        so a clean stop loses nothing; the next start delivers them."""
        self._stopping = True
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self.grouper.flush_waiting()
        await self.idle()
        self.grouper.stop()
        await super().stopService()  # type: ignore[no-untyped-call]  # Twisted's services are untyped

    def _refresh_tick(self) -> Deferred[None]:
        d = Deferred.fromCoroutine(self.refresh())
        d.addErrback(_trap_unavailable)
        d.addErrback(lambda f: self.log.failure("refreshing silences and channels failed", f))
        return d

    async def refresh(self) -> None:
        """Silences and API channels from the store (all nodes share them)."""
        now = self.wall_clock_ms()
        rows = await self.store.silences(now - 24 * 3600 * 1000)
        self.silences.replace([silence_from_row(r) for r in rows])
        stored = await self.store.channels()
        channels = {}
        for name, spec in stored.items():
            try:
                channels[name] = parse_channel(name, spec, source="api-stored")
            except ChannelError as e:
                self.log.warn("ignoring stored channel {name}: {error}", name=name, error=str(e))
        self.api_channels = {
            n: ChannelConfig(c.name, c.kind, c.options, c.secrets, c.headers, "api")
            for n, c in channels.items()
            if n not in self.configured
        }
        if not self.loaded.called:
            self.loaded.callback(None)

    # ----- channels

    def channel(self, name: str) -> ChannelConfig | None:
        return self.configured.get(name) or self.api_channels.get(name)

    def channel_names(self) -> list[str]:
        return sorted(set(self.configured) | set(self.api_channels))

    def transport(self, name: str) -> Transport | None:
        config = self.channel(name)
        return transport_for(config, self.guard, self.wall_clock_ms) if config is not None else None

    def _repeat_for(self, channel: str, route: Route) -> float:
        config = self.channel(channel)
        if config is not None and config.kind == "alertmanager":
            # Alertmanager forgets an alert that is not re-posted.
            return min(route.repeat_interval, float(config.option["resend_interval"]))
        return route.repeat_interval

    def public_channels(self) -> list[dict[str, Any]]:
        return [config.public() for config in map(self.channel, self.channel_names()) if config is not None]

    async def save_channel(self, name: str, data: Mapping[str, Any], user: str) -> dict[str, Any]:
        if name in self.configured:
            raise ChannelError(f"channel {name} is configured in the INI file; change it there")
        config = parse_channel(name, prepare_api_channel(name, data, self.api_channels.get(name)), source="api")
        config = merge_secrets(config, self.api_channels.get(name), data)
        await self.store.save_channel(name, config.kind, config.stored(), user, self.wall_clock_ms())
        self.api_channels[name] = config
        return config.public()

    async def delete_channel(self, name: str) -> bool:
        if name in self.configured:
            raise ChannelError(f"channel {name} is configured in the INI file; remove it there")
        deleted = await self.store.delete_channel(name)
        return bool(self.api_channels.pop(name, None)) or bool(deleted)

    async def send_test(self, name: str, user: str) -> DeliveryResult:
        """Send a test notice now (not through the outbox) and return the
        receiver's answer."""
        transport = self.transport(name)
        if transport is None:
            raise KeyError(name)
        now = self.wall_clock_ms()
        event = AlertEvent(
            "dashd_test",
            self.node,
            FIRING,
            "info",
            (("alertname", "dashd_test"), ("host", self.node), ("severity", "info")),
            f"Test notification from dashd, sent by {user}",
            "If you can read this, alerts reach this channel.",
            now,
        )
        notice = build_notice(
            name,
            f"test/{name}",
            {"alertname": "dashd_test"},
            [event],
            self.base_url,
            dedup_key("test", name, str(now)),
            1,
            kind="test",
        )
        result: DeliveryResult = await transport.send(notice.body)
        return result

    # ----- silences

    async def add_silence(self, data: Mapping[str, Any], user: str) -> Silence:
        silence = silence_from_request(data, user, self.wall_clock_ms())
        await self.store.add_silence(silence.as_dict(self.wall_clock_ms()))
        self.silences.add(silence)
        return silence

    async def expire_silence(self, silence_id: str, user: str) -> bool:
        expired = await self.store.expire_silence(silence_id, user, self.wall_clock_ms())
        await self.refresh()
        return bool(expired)

    # ----- the alert path

    def observe(self, event: AlertEvent, silence_id: str | None) -> None:
        """RuleEngine observer: handled in order, one event at a time."""
        self._chain.addCallback(lambda _: Deferred.fromCoroutine(self._handle(event, silence_id)))
        self._chain.addErrback(lambda f: self.log.failure("alert {key} could not be handled", f, key=event.event_key))

    async def _handle(self, event: AlertEvent, silence_id: str | None) -> None:
        try:
            owned = await self.store.record_event(
                event.event_key,
                event.fingerprint,
                event.ts_ms,
                event.state,
                event.level,
                event.label_map,
                event.summary,
                silence_id,
                self.node,
            )
        except StoreUnavailable:
            owned = True  # deliver from here rather than risk nobody doing it
        for route in self.routes:
            if not route.matches(event):
                continue
            channels = self.channel_names() if ALL_CHANNELS in route.channels else route.channels
            for channel in channels:
                self.grouper.add(route, channel, event, owned, silence_id is not None)
            if route.stop:
                break

    def _enqueue(self, notice: Notice) -> Deferred[None]:
        d = Deferred.fromCoroutine(self._enqueue_until_written(notice))
        self._writing.add(d)
        d.addBoth(self._written, d)
        return d

    def _written(self, result: Any, d: Deferred[None]) -> Any:
        self._writing.discard(d)
        return result

    async def idle(self) -> None:
        """Wait until every event handed in so far is handled and every
        notice due so far is written to the outbox."""
        await self._chain
        while self._writing:
            await DeferredList(list(self._writing), consumeErrors=True)

    async def _enqueue_until_written(self, notice: Notice) -> None:
        """The store may be down for a while: keep the notice and retry,
        until its deadline."""
        deadline = self.wall_clock_ms() + int(self.policy.dead_after * 1000)
        while True:
            try:
                await self.outbox.enqueue(notice, deadline)
                return
            except StoreUnavailable:
                if self.wall_clock_ms() > deadline or self._stopping:
                    self.log.error(
                        "alert notice for {channel} lost: the store stayed unavailable", channel=notice.channel
                    )
                    return
                await deferLater(self.clock, ENQUEUE_RETRY, lambda: None)

    # ----- reads for the API

    async def deliveries(self, limit: int, status: str | None) -> list[dict[str, Any]]:
        return await self.store.deliveries(limit, status)

    async def timeline(self, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        return await self.store.timeline(from_ms, to_ms, limit)
