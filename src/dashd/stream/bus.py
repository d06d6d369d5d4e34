"""The bus: producers (collector, alert engine, admin broadcasts) publish to
topics; the stream hub subscribes. The in-process bus is the default; the
interface is kept honest for a networked bus (publish returns a Deferred,
delivery is in publish order per topic, subscribers are plain callbacks).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

METRICS_TOPIC = "metrics"
NOTIFICATIONS_TOPIC = "notifications"

Subscriber = Callable[[str, Any], None]


class Subscription(Protocol):
    def cancel(self) -> None: ...


class Bus(Protocol):
    def publish(self, topic: str, message: Any) -> Deferred:
        """Deliver `message` to the topic's subscribers, in publish order."""

    def subscribe(self, topic: str, subscriber: Subscriber) -> Subscription:
        """Call `subscriber(topic, message)` for each message on `topic`."""


class _InMemorySubscription:
    def __init__(self, subscribers: list, subscriber: Subscriber) -> None:
        self._subscribers = subscribers
        self._subscriber = subscriber

    def cancel(self) -> None:
        if self._subscriber in self._subscribers:
            self._subscribers.remove(self._subscriber)


class InMemoryBus:
    """Synchronous, in-process delivery: publish returns after every
    subscriber has run. A failing subscriber is logged and does not stop the
    others."""

    log = Logger()

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def publish(self, topic: str, message: Any) -> Deferred:
        for subscriber in list(self._subscribers.get(topic, ())):
            try:
                subscriber(topic, message)
            except Exception:
                self.log.failure("bus subscriber failed on topic {topic}", topic=topic)
        return succeed(None)

    def subscribe(self, topic: str, subscriber: Subscriber) -> Subscription:
        subscribers = self._subscribers.setdefault(topic, [])
        subscribers.append(subscriber)
        return _InMemorySubscription(subscribers, subscriber)
