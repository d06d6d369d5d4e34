"""Per-client streams without a network: a RecordingSink records frames and
closes, a task.Clock drives throttling and the slow-consumer timer.

Covers subscription filtering, the set_rate throttle (latest values plus a
min/max/avg window), flow control (pause coalesces metrics per host, keeps
notifications and replies, resume flushes in order and announces recovery),
the 1013 closes, FrameCache's serialize-once sharing, and the inbound
TokenBucket."""

from __future__ import annotations

import json

import pytest
from twisted.internet.task import Clock

from dashd.clients.limits import TokenBucket
from dashd.stream import streams
from dashd.stream.streams import (
    CLOSE_SLOW_CONSUMER,
    METRICS_UPDATE,
    NOTIFICATION,
    ClientStream,
    FrameCache,
    StreamMessage,
    SubscriptionFilter,
    unknown_patterns,
)
from fakes import RecordingSink

CATALOGUE = ("cpu_usage", "cpu_core_0", "cpu_core_1", "memory_usage", "network_traffic")
T0_MS = 1_764_151_200_000


def metrics(seq: int, host: str = "web-1", **values: float) -> StreamMessage:
    values = values or {name: float(seq) for name in CATALOGUE}
    return StreamMessage(seq, METRICS_UPDATE, T0_MS + seq, host=host, metrics=values)


def notification(seq: int) -> StreamMessage:
    return StreamMessage(seq, NOTIFICATION, T0_MS + seq, body={"id": f"n-{seq}", "level": "info"})


def make_stream(
    clock: Clock | None = None, *, wants_metrics: bool = True, wants_notifications: bool = True, **kwargs
) -> tuple[ClientStream, RecordingSink, Clock]:
    clock = clock or Clock()
    sink = RecordingSink(clock)
    stream = ClientStream(sink, clock, wants_metrics=wants_metrics, wants_notifications=wants_notifications, **kwargs)
    stream.live = True
    return stream, sink, clock


def offer(stream: ClientStream, message: StreamMessage) -> None:
    stream.offer(FrameCache(message), CATALOGUE)


# ----- envelope


def test_metrics_update_envelope_matches_the_wire_contract():
    message = StreamMessage(
        1042, METRICS_UPDATE, 1_764_151_201_000, host="web-1", metrics={"cpu_usage": 45.2, "memory_usage": 67.8}
    )
    assert json.loads(FrameCache(message).frame(None).payload) == {
        "type": "metrics_update",
        "seq": 1042,
        "correlation_id": None,
        "data": {
            "timestamp": "2025-11-26T10:00:01.000Z",
            "host": "web-1",
            "metrics": {"cpu_usage": 45.2, "memory_usage": 67.8},
        },
    }


def test_recovered_message_is_marked_in_its_data():
    envelope = notification(3).with_recovered().envelope()
    assert envelope["data"] == {"id": "n-3", "level": "info", "recovered": True}


# ----- subscriptions


def test_nothing_streams_before_the_client_is_live():
    stream, sink, _ = make_stream()
    stream.live = False
    offer(stream, metrics(1))
    assert sink.frames == []


def test_metric_globs_select_only_the_subscribed_keys():
    stream, sink, _ = make_stream()
    stream.subscription = SubscriptionFilter(metrics=("cpu_*", "memory_usage"))
    offer(stream, metrics(1))
    assert sink.messages[0]["data"]["metrics"] == {
        "cpu_usage": 1.0,
        "cpu_core_0": 1.0,
        "cpu_core_1": 1.0,
        "memory_usage": 1.0,
    }


def test_host_globs_drop_other_hosts_entirely():
    stream, sink, _ = make_stream()
    stream.subscription = SubscriptionFilter(hosts=("web-*",))
    offer(stream, metrics(1, host="db-1"))
    offer(stream, metrics(2, host="web-2"))
    assert [(m["seq"], m["data"]["host"]) for m in sink.messages] == [(2, "web-2")]


def test_an_empty_metric_subscription_gets_no_metrics_but_still_notifications():
    stream, sink, _ = make_stream()
    stream.subscription = SubscriptionFilter(metrics=())
    offer(stream, metrics(1))
    offer(stream, notification(2))
    assert sink.types_and_seqs() == [("notification", 2)]


def test_metrics_endpoint_gets_no_notifications_and_notifications_endpoint_no_metrics():
    metrics_stream, metrics_sink, clock = make_stream(wants_notifications=False)
    notes_stream, notes_sink, _ = make_stream(clock, wants_metrics=False)
    for message in (metrics(1), notification(2)):
        offer(metrics_stream, message)
        offer(notes_stream, message)
    assert metrics_sink.types_and_seqs() == [("metrics_update", 1)]
    assert notes_sink.types_and_seqs() == [("notification", 2)]


def test_a_message_at_or_below_the_last_seq_is_not_sent_twice():
    stream, sink, _ = make_stream()
    offer(stream, metrics(5))
    offer(stream, metrics(5))
    offer(stream, metrics(4))
    assert sink.types_and_seqs() == [("metrics_update", 5)]


def test_unknown_patterns_are_those_matching_no_metric():
    assert unknown_patterns(["cpu_*", "gpu_*", "memory_usage", "mem"], CATALOGUE) == ["gpu_*", "mem"]


# ----- throttle


def test_a_1hz_client_of_a_10hz_collector_gets_one_update_per_second_with_latest_values_and_a_window():
    stream, sink, clock = make_stream(collection_hz=10.0)
    stream.set_rate(1.0)
    offered: list[tuple[int, StreamMessage]] = []  # (frames sent before it was offered, message)
    for i in range(30):  # three seconds of 10 Hz samples
        clock.advance(i / 10 - clock.seconds())
        message = metrics(i + 1, cpu_usage=float(i), memory_usage=100.0 - i)
        offered.append((len(sink.frames), message))
        offer(stream, message)
    clock.advance(3.0 - clock.seconds())  # the last pending update goes out at 3 s
    updates, sent_at = sink.messages, sink.sent_at
    # At 0 s the first sample at once, then at 1, 2 and 3 s the latest of what arrived since.
    assert [update["seq"] for update in updates] == [1, 10, 20, 30]
    assert sent_at == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert clock.getDelayedCalls() == []
    assert updates[0]["seq"] == 1 and "window" not in updates[0]["data"]
    previous_seq = updates[0]["seq"]
    for index, update in enumerate(updates[1:], start=1):
        folded = [m for sent_before, m in offered if previous_seq < m.seq and sent_before <= index]
        latest = folded[-1]
        assert update["seq"] == latest.seq
        assert update["data"]["metrics"] == dict(latest.metrics)
        cpu = [m.metrics["cpu_usage"] for m in folded]
        assert update["data"]["window"] == {
            "samples": len(folded),
            "min": {"cpu_usage": min(cpu), "memory_usage": 100.0 - max(cpu)},
            "max": {"cpu_usage": max(cpu), "memory_usage": 100.0 - min(cpu)},
            "avg": {"cpu_usage": round(sum(cpu) / len(cpu), 3), "memory_usage": round(100.0 - sum(cpu) / len(cpu), 3)},
        }
        previous_seq = update["seq"]
    assert previous_seq == 30  # the newest sample was delivered in the end


def test_throttled_window_only_covers_subscribed_metrics():
    stream, sink, clock = make_stream(collection_hz=10.0)
    stream.subscription = SubscriptionFilter(metrics=("cpu_usage",))
    stream.set_rate(2.0)
    offer(stream, metrics(1, cpu_usage=1.0, memory_usage=9.0))
    clock.advance(0.1)
    offer(stream, metrics(2, cpu_usage=5.0, memory_usage=9.0))
    clock.advance(0.1)
    offer(stream, metrics(3, cpu_usage=3.0, memory_usage=9.0))
    clock.advance(0.3)
    assert [m["data"] | {"timestamp": None} for m in sink.messages] == [
        {"timestamp": None, "host": "web-1", "metrics": {"cpu_usage": 1.0}},
        {
            "timestamp": None,
            "host": "web-1",
            "metrics": {"cpu_usage": 3.0},
            "window": {"samples": 2, "min": {"cpu_usage": 3.0}, "max": {"cpu_usage": 5.0}, "avg": {"cpu_usage": 4.0}},
        },
    ]


def test_hosts_are_throttled_independently():
    stream, sink, clock = make_stream(collection_hz=10.0)
    stream.set_rate(1.0)
    offer(stream, metrics(1, host="a"))
    offer(stream, metrics(2, host="b"))
    assert [m["data"]["host"] for m in sink.messages] == ["a", "b"]


def test_lifting_the_rate_limit_flushes_what_was_pending():
    stream, sink, clock = make_stream(collection_hz=10.0)
    stream.set_rate(1.0)
    offer(stream, metrics(1))
    clock.advance(0.1)
    offer(stream, metrics(2))
    stream.set_rate(None)
    assert [m["seq"] for m in sink.messages] == [1, 2]
    assert clock.getDelayedCalls() == []
    offer(stream, metrics(3))
    assert [m["seq"] for m in sink.messages] == [1, 2, 3]


def test_a_rate_at_or_above_the_collection_rate_does_not_throttle():
    stream, sink, _ = make_stream(collection_hz=1.0)
    stream.set_rate(5.0)
    assert stream.effective_hz == 1.0
    offer(stream, metrics(1))
    offer(stream, metrics(2))
    assert [m["seq"] for m in sink.messages] == [1, 2]


# ----- flow control


def test_paused_stream_coalesces_metrics_per_host_and_keeps_notifications_and_replies():
    stream, sink, clock = make_stream()
    offer(stream, metrics(1, host="a"))
    stream.pause()
    offer(stream, metrics(2, host="a"))
    offer(stream, metrics(3, host="b"))
    offer(stream, notification(4))
    stream.send({"type": "pong", "correlation_id": "p1", "data": {}})
    offer(stream, metrics(5, host="a"))  # replaces seq 2
    offer(stream, notification(6))
    offer(stream, metrics(7, host="b"))  # replaces seq 3
    assert sink.types_and_seqs() == [("metrics_update", 1)]  # nothing written while paused
    assert stream.stats.coalesced == 2

    stream.resume()
    received = sink.messages[1:]
    assert [(m["type"], m.get("seq")) for m in received] == [
        ("stream_degraded", None),
        ("notification", 4),
        ("pong", None),
        ("metrics_update", 5),
        ("notification", 6),
        ("metrics_update", 7),
        ("stream_degraded", None),
    ]
    assert received[0]["data"]["reason"] == "slow_consumer"
    assert received[-1]["data"]["reason"] == "recovered"
    stream_seqs = [m["seq"] for m in received if "seq" in m]
    assert stream_seqs == sorted(stream_seqs)
    assert stream.queued == 0


def test_pause_without_coalescing_sends_no_degraded_notice():
    stream, sink, _ = make_stream()
    stream.pause()
    offer(stream, metrics(1))
    offer(stream, notification(2))
    stream.resume()
    assert sink.types_and_seqs() == [("metrics_update", 1), ("notification", 2)]


def test_still_paused_after_slow_timeout_closes_with_1013():
    stream, sink, clock = make_stream(slow_timeout=30.0)
    stream.pause()
    offer(stream, notification(1))
    clock.advance(29.9)
    assert sink.closed == []
    clock.advance(0.1)
    assert [code for code, _ in sink.closed] == [CLOSE_SLOW_CONSUMER] == [1013]
    offer(stream, notification(2))
    stream.resume()
    assert sink.frames == []  # nothing is written to a closed stream


def test_resuming_in_time_cancels_the_slow_consumer_close():
    stream, sink, clock = make_stream(slow_timeout=30.0)
    stream.pause()
    clock.advance(20.0)
    stream.resume()
    clock.advance(20.0)
    stream.pause()
    clock.advance(20.0)
    assert sink.closed == []
    assert len(clock.getDelayedCalls()) == 1  # the new pause's timer only


def test_queue_overflow_past_four_times_the_bound_closes_with_1013():
    stream, sink, clock = make_stream(queue_bound=4)
    stream.pause()
    for seq in range(1, 17):  # 16 = 4 x bound notifications: kept
        offer(stream, notification(seq))
    assert sink.closed == []
    assert stream.queued == 16
    offer(stream, notification(17))
    assert [code for code, _ in sink.closed] == [1013]
    assert stream.queued == 0
    assert clock.getDelayedCalls() == []


def test_coalesced_metrics_never_overflow_the_queue():
    stream, sink, _ = make_stream(queue_bound=4)
    stream.pause()
    for seq in range(1, 100):
        offer(stream, metrics(seq))
    assert sink.closed == []
    assert stream.queued == 2  # the degraded notice and the newest update


def test_close_cancels_throttle_and_slow_timers():
    stream, sink, clock = make_stream(collection_hz=10.0)
    stream.set_rate(1.0)
    offer(stream, metrics(1))
    clock.advance(0.1)
    offer(stream, metrics(2))
    stream.pause()
    stream.close()
    assert clock.getDelayedCalls() == []


# ----- serialize once


def test_frame_cache_serializes_once_per_distinct_subscription(monkeypatch):
    encoded = []
    real_encode = streams.encode
    monkeypatch.setattr(streams, "encode", lambda message: encoded.append(message) or real_encode(message))
    clock = Clock()
    everything = [make_stream(clock)[0:2] for _ in range(3)]
    cpu_only = [make_stream(clock)[0:2] for _ in range(2)]
    for stream, _ in cpu_only:
        stream.subscription = SubscriptionFilter(metrics=("cpu_*",))
    cache = FrameCache(metrics(1))
    for stream, _ in everything + cpu_only:
        stream.offer(cache, CATALOGUE)
    assert len(encoded) == 2
    assert len({id(sink.frames[0]) for _, sink in everything}) == 1
    assert len({id(sink.frames[0]) for _, sink in cpu_only}) == 1
    assert everything[0][1].frames[0] is not cpu_only[0][1].frames[0]


# ----- inbound token bucket


def test_token_bucket_allows_the_burst_then_the_rate():
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after() == pytest.approx(0.5)
    assert bucket.take(0.25) is False
    assert bucket.take(0.5) is True
    assert bucket.take(0.5) is False


def test_token_bucket_saves_up_no_more_than_the_burst():
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert [bucket.take(100.0) for _ in range(3)] == [True, True, False]


def test_token_bucket_ignores_a_clock_going_backwards():
    bucket = TokenBucket(rate=1.0, burst=1, now=10.0)
    assert bucket.take(10.0) is True
    assert bucket.take(5.0) is False
