"""The suite's own guard: conftest.py's autouse fixture recognises an
unhandled error when one is logged (so a test that drops a failing Deferred
fails), and the marker lets a test provoke one on purpose."""

from __future__ import annotations

import gc

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import capturedLogs

from conftest import is_unhandled_error


@pytest.mark.allow_unhandled_errors
def test_a_dropped_failing_deferred_is_an_unhandled_error():
    with capturedLogs() as events:
        dropped: Deferred[None] = Deferred()
        dropped.errback(RuntimeError("nobody handles this"))
        del dropped
        gc.collect()
    assert [e for e in events if is_unhandled_error(e)], events


def test_a_handled_failure_logged_on_purpose_is_not_an_unhandled_error():
    from twisted.logger import Logger

    with capturedLogs() as events:
        try:
            raise ValueError("expected")
        except ValueError:
            Logger().failure("handled: {what}", what="a bad sample")
    assert len(events) == 1 and not is_unhandled_error(events[0])
