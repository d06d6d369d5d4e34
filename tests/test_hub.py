"""The stream hub: sequence numbers that survive restarts (and crashes), the
age-bounded replay ring, bus intake and fan-out, and resume from the ring,
from a (fake) store, across holes, and while live messages keep arriving.
Resume coroutines are driven synchronously with Deferred.fromCoroutine; the
clock is a task.Clock."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from dashd.collect.collector import Sample
from dashd.stream.bus import METRICS_TOPIC, NOTIFICATIONS_TOPIC, InMemoryBus
from dashd.stream.hub import MemorySequence, ReplayRing, SequenceFile, StreamHub
from dashd.stream.streams import (
    METRICS_UPDATE,
    NOTIFICATION,
    ClientStream,
    StreamMessage,
    SubscriptionFilter,
)
from fakes import FakeStore, RecordingSink

CATALOGUE = ("cpu_usage", "memory_usage")
RING_SPAN = 60.0


def result_of(d: Deferred):
    """The result of a Deferred that has already fired (no reactor needed)."""
    results, failures = [], []
    d.addCallbacks(results.append, failures.append)
    if failures:
        failures[0].raiseException()
    assert results, "the Deferred has not fired"
    return results[0]


def make_hub(
    clock: Clock | None = None, store: FakeStore | None = None, sequence=None, bus: InMemoryBus | None = None
) -> StreamHub:
    return StreamHub(
        bus or InMemoryBus(), clock or Clock(), sequence or MemorySequence(), RING_SPAN, lambda: CATALOGUE, sink=store
    )


def publish_samples(hub: StreamHub, count: int, host: str = "web-1") -> list[StreamMessage]:
    return [
        hub.publish(
            METRICS_UPDATE,
            1_764_151_200_000 + hub.seq,
            host=host,
            metrics={"cpu_usage": float(hub.seq + 1), "memory_usage": 50.0},
        )
        for _ in range(count)
    ]


def new_client(hub: StreamHub, clock: Clock) -> tuple[ClientStream, RecordingSink]:
    """A client that just reconnected: live and attached, nothing received yet."""
    sink = RecordingSink()
    stream = ClientStream(sink, clock, wants_metrics=True, wants_notifications=True)
    stream.live = True
    hub.attach(stream)
    return stream, sink


def stream_seqs(sink: RecordingSink) -> list[tuple[int, bool]]:
    return [(m["seq"], m["data"].get("recovered", False)) for m in sink.messages if "seq" in m]


# ----- SequenceFile


def test_sequence_continues_exactly_after_a_clean_close(tmp_path):
    path = str(tmp_path / "stream.seq")
    sequence = SequenceFile(path)
    issued = [sequence.next() for _ in range(5)]
    sequence.close()
    assert issued == [1, 2, 3, 4, 5]
    assert SequenceFile(path).next() == 6


def test_sequence_continues_across_several_clean_restarts(tmp_path):
    path = str(tmp_path / "stream.seq")
    issued = []
    for _ in range(3):
        sequence = SequenceFile(path)
        issued += [sequence.next() for _ in range(3)]
        sequence.close()
    assert issued == list(range(1, 10))


@pytest.mark.parametrize("issued_before_crash", [1, 5, SequenceFile.BLOCK, SequenceFile.BLOCK + 7])
def test_after_a_crash_the_sequence_starts_above_every_issued_number(tmp_path, issued_before_crash):
    path = str(tmp_path / "stream.seq")
    sequence = SequenceFile(path)
    last = max(sequence.next() for _ in range(issued_before_crash))
    # no close(): the process died
    restarted = SequenceFile(path)
    assert restarted.next() > last


def test_a_corrupt_sequence_file_is_a_clear_error(tmp_path):
    path = tmp_path / "stream.seq"
    path.write_text("not a number\n")
    with pytest.raises(ValueError, match="stream.seq"):
        SequenceFile(str(path))


def test_hub_stop_closes_the_sequence_cleanly(tmp_path):
    path = str(tmp_path / "stream.seq")
    hub = make_hub(sequence=SequenceFile(path))
    hub.startService()
    publish_samples(hub, 3)
    hub.stopService()
    assert SequenceFile(path).next() == 4


# ----- ReplayRing


def message(seq: int) -> StreamMessage:
    return StreamMessage(seq, NOTIFICATION, seq, body={"id": f"n-{seq}"})


def test_ring_forgets_messages_older_than_its_span():
    ring = ReplayRing(span_seconds=10.0)
    ring.append(message(1), now=0.0)
    ring.append(message(2), now=5.0)
    ring.append(message(3), now=10.0)
    assert [m.seq for m in ring.after(0)] == [1, 2, 3]  # exactly span old: kept
    ring.append(message(4), now=12.0)
    assert ring.first_seq == 2
    assert [m.seq for m in ring.after(0)] == [2, 3, 4]


def test_ring_is_also_bounded_by_count():
    ring = ReplayRing(span_seconds=3600.0, max_messages=3)
    for seq in range(1, 6):
        ring.append(message(seq), now=float(seq))
    assert [m.seq for m in ring.after(0)] == [3, 4, 5]


def test_ring_after_returns_the_newer_messages_in_order():
    ring = ReplayRing(span_seconds=60.0)
    for seq in range(1, 6):
        ring.append(message(seq), now=0.0)
    assert [m.seq for m in ring.after(3)] == [4, 5]
    assert ring.after(5) == []
    assert ReplayRing(60.0).first_seq is None


# ----- intake and fan-out


def test_bus_samples_and_notifications_are_sequenced_recorded_and_fanned_out():
    clock, store, bus = Clock(), FakeStore(), InMemoryBus()
    hub = make_hub(clock, store, bus=bus)
    hub.startService()
    stream, sink = new_client(hub, clock)
    bus.publish(METRICS_TOPIC, Sample("web-1", 1_764_151_200_000, {"cpu_usage": 5.0}))
    bus.publish(
        NOTIFICATIONS_TOPIC,
        {"type": "notification", "timestamp_ms": 1_764_151_201_000, "data": {"id": "n-1", "level": "info"}},
    )
    assert [(m["type"], m["seq"]) for m in sink.messages] == [("metrics_update", 1), ("notification", 2)]
    assert sorted(store.recorded) == [1, 2]
    assert hub.latest_sample["web-1"].seq == 1
    hub.stopService()
    bus.publish(METRICS_TOPIC, Sample("web-1", 1_764_151_202_000, {"cpu_usage": 6.0}))
    assert hub.seq == 2  # unsubscribed on stop


def test_send_latest_gives_a_new_client_each_hosts_newest_sample():
    clock = Clock()
    hub = make_hub(clock)
    publish_samples(hub, 2, host="a")
    publish_samples(hub, 1, host="b")
    publish_samples(hub, 1, host="a")
    stream, sink = new_client(hub, clock)
    hub.send_latest(stream)
    assert [(m["seq"], m["data"]["host"]) for m in sink.messages] == [(3, "b"), (4, "a")]


# ----- resume


def test_resume_from_the_ring_replays_in_order_with_no_gap():
    clock = Clock()
    hub = make_hub(clock)
    publish_samples(hub, 5)
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 2, None, limit=1000)))
    assert stream_seqs(sink) == [(3, False), (4, False), (5, False)]
    assert result.as_dict() == {"after_seq": 2, "replayed": 3, "recovered": 0, "gaps": [], "seq": 5}
    publish_samples(hub, 1)
    assert stream_seqs(sink)[-1] == (6, False)  # the live stream continues


def test_resume_with_nothing_missed_replays_nothing():
    clock = Clock()
    hub = make_hub(clock)
    publish_samples(hub, 3)
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 3, None, limit=1000)))
    assert (sink.frames, result.replayed, result.gaps, result.reset) == ([], 0, [], False)


def age_out_of_ring(hub: StreamHub, clock: Clock, old: int, recent: int) -> None:
    """`old` messages that the ring then forgets, and `recent` ones it keeps."""
    publish_samples(hub, old)
    clock.advance(RING_SPAN + 1)
    publish_samples(hub, recent)


def test_resume_before_the_ring_backfills_from_the_store_marked_recovered():
    clock, store = Clock(), FakeStore()
    hub = make_hub(clock, store)
    age_out_of_ring(hub, clock, old=5, recent=3)
    assert hub.ring.first_seq == 6
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 2, store.backfill, limit=1000)))
    assert store.reads == [(3, 5)]
    assert stream_seqs(sink) == [(3, True), (4, True), (5, True), (6, False), (7, False), (8, False)]
    assert result.as_dict() == {"after_seq": 2, "replayed": 3, "recovered": 3, "gaps": [], "seq": 8}


def test_a_hole_in_the_store_is_reported_as_a_resume_gap():
    clock, store = Clock(), FakeStore()
    hub = make_hub(clock, store)
    age_out_of_ring(hub, clock, old=6, recent=2)
    store.lost = {3, 4}
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 1, store.backfill, limit=1000, correlation_id="r1")))
    assert stream_seqs(sink) == [(2, True), (5, True), (6, True), (7, False), (8, False)]
    gaps = [m for m in sink.messages if m["type"] == "resume_gap"]
    # The gap's times come from its neighbours (seq 2 before, seq 5 after),
    # so a client can refill exactly that range from history.
    assert gaps == [
        {
            "type": "resume_gap",
            "correlation_id": "r1",
            "data": {"from_seq": 3, "to_seq": 4, "from": "2025-11-26T10:00:00.001Z", "to": "2025-11-26T10:00:00.004Z"},
        }
    ]
    assert result.gaps == [gaps[0]["data"]]
    assert result.recovered == 3


def test_a_store_missing_the_newest_stored_seqs_reports_the_tail_as_a_gap():
    clock, store = Clock(), FakeStore()
    hub = make_hub(clock, store)
    age_out_of_ring(hub, clock, old=5, recent=1)
    store.lost = {4, 5}
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 0, store.backfill, limit=1000)))
    assert [(g["from_seq"], g["to_seq"]) for g in result.gaps] == [(4, 5)]
    assert stream_seqs(sink) == [(1, True), (2, True), (3, True), (6, False)]


def test_without_a_store_the_unreachable_range_is_one_gap():
    clock = Clock()
    hub = make_hub(clock)
    age_out_of_ring(hub, clock, old=4, recent=1)
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 1, None, limit=1000)))
    assert [(g["from_seq"], g["to_seq"]) for g in result.gaps] == [(2, 4)]
    assert stream_seqs(sink) == [(5, False)]


def test_a_failing_store_read_becomes_a_gap_not_an_error():
    clock = Clock()
    hub = make_hub(clock)
    age_out_of_ring(hub, clock, old=3, recent=1)
    stream, sink = new_client(hub, clock)

    async def broken_backfill(from_seq, to_seq):
        raise ConnectionError("database down")

    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 0, broken_backfill, limit=1000)))
    assert [(g["from_seq"], g["to_seq"]) for g in result.gaps] == [(1, 3)]
    assert stream_seqs(sink) == [(4, False)]
    assert stream.resuming is False


def test_backfill_beyond_the_limit_reports_the_oldest_part_as_a_gap():
    """The limit caps the whole replay (store and ring together, issue 11 B):
    only the newest `limit` messages are replayed, the rest is a gap."""
    clock, store = Clock(), FakeStore()
    hub = make_hub(clock, store)
    age_out_of_ring(hub, clock, old=10, recent=1)
    stream, sink = new_client(hub, clock)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 0, store.backfill, limit=4)))
    assert store.reads == [(8, 10)]
    assert [(g["from_seq"], g["to_seq"]) for g in result.gaps] == [(1, 7)]
    assert [seq for seq, _ in stream_seqs(sink)] == [8, 9, 10, 11]


def test_after_seq_beyond_the_current_seq_is_a_reset():
    clock = Clock()
    hub = make_hub(clock)
    publish_samples(hub, 3)
    stream, sink = new_client(hub, clock)
    stream.last_seq = 3  # it already has the live stream
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 500, None, limit=1000)))
    assert result.as_dict() == {"after_seq": 500, "replayed": 0, "recovered": 0, "gaps": [], "seq": 3, "reset": True}
    assert sink.frames == []
    assert stream.resuming is False
    publish_samples(hub, 1)
    assert stream_seqs(sink) == [(4, False)]  # live messages flow again


def test_live_messages_during_a_slow_backfill_are_neither_lost_nor_duplicated():
    clock, store = Clock(), FakeStore()
    hub = make_hub(clock, store)
    age_out_of_ring(hub, clock, old=4, recent=2)  # 1-4 only in the store, 5-6 in the ring
    store.gate = Deferred()
    stream, sink = new_client(hub, clock)
    resumed = Deferred.fromCoroutine(hub.resume(stream, 0, store.backfill, limit=1000))
    assert not resumed.called
    publish_samples(hub, 2)  # 7 and 8 arrive while the store is being read
    assert sink.frames == []  # held back: they must come after the backfill
    store.gate.callback(None)
    result = result_of(resumed)
    publish_samples(hub, 1)  # 9: live again
    assert stream_seqs(sink) == [
        (1, True),
        (2, True),
        (3, True),
        (4, True),
        (5, False),
        (6, False),
        (7, False),
        (8, False),
        (9, False),
    ]
    assert (result.recovered, result.replayed, result.seq) == (4, 4, 8)


def test_resume_respects_the_clients_subscription():
    clock = Clock()
    hub = make_hub(clock)
    publish_samples(hub, 1, host="a")
    publish_samples(hub, 1, host="b")
    hub.publish(NOTIFICATION, 0, body={"id": "n-3"})
    sink = RecordingSink()
    stream = ClientStream(sink, clock, wants_metrics=True, wants_notifications=False)
    stream.live = True
    stream.subscription = SubscriptionFilter(hosts=("b",))
    hub.attach(stream)
    result = result_of(Deferred.fromCoroutine(hub.resume(stream, 0, None, limit=1000)))
    assert [(m["seq"], m["data"]["host"]) for m in sink.messages] == [(2, "b")]
    assert result.replayed == 1
