"""Per-user notification read state (migration 0005) on a real database of
each dialect: single marks, "mark all read", counts, and isolation between
users. The WebSocket side is in test_notification_state.py."""

from __future__ import annotations

import pytest_twisted

from dashd.store.reads import NotificationReads
from test_store import MINUTE_MS, T0_MS, ack, notification, open_store  # noqa: F401 (fixture)


@pytest_twisted.ensureDeferred
async def test_reads_are_per_user_and_mark_all_covers_everything_up_to_then(open_store):  # noqa: F811
    rig = await open_store()
    store = rig.store
    t = T0_MS - MINUTE_MS
    store.record(notification(1, t, "n-a"))
    store.record(notification(2, t + 1, "n-b", level="info"))
    store.record(notification(3, t + 2, "n-c"))
    store.record(ack(4, t + 3, "n-c", "bob"))
    reads = NotificationReads(store)

    assert (await reads.counts("alice")).as_dict() == {"unread": 3, "unacknowledged": 1, "read_through": None}
    assert await reads.known(["n-a", "n-zzz"]) == {"n-a"}
    await reads.mark("alice", ["n-a", "n-b"], T0_MS)
    await reads.mark("alice", ["n-a"], T0_MS + 1)  # idempotent
    assert (await reads.counts("alice")).unread == 1
    assert (await reads.counts("bob")).unread == 3
    listed = await reads.annotate("alice", await store.notifications(10, False))
    assert {n["id"]: n["read"] for n in listed} == {"n-a": True, "n-b": True, "n-c": False}

    await reads.mark_all("bob", T0_MS)
    assert (await reads.counts("bob")).as_dict()["unread"] == 0
    assert (await reads.counts("bob")).read_through_ms == T0_MS
    store.record(notification(5, T0_MS + 5, "n-d"))
    assert (await reads.counts("bob")).unread == 1
    listed = await reads.annotate("bob", await store.notifications(10, False))
    assert {n["id"]: n["read"] for n in listed} == {"n-a": True, "n-b": True, "n-c": True, "n-d": False}
