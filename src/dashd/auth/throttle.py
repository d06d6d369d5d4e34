"""Login throttling: how many password checks may run, for whom, and when.

The check is made when a login *starts*, before its password is hashed: an
attempt reserves a slot in the failure budget of its user name and of its
client address, so forty logins sent at once are counted as forty, not as
the few whose hashes happened to finish first. Beyond the budget an attempt
is refused at once (HTTP 429) without hashing. Password hashes (scrypt,
~32 MiB and ~50-100 ms each, in threads) are also bounded in number, per
address and in total, so logins cannot starve the daemon.

The tables are bounded: entries expire once their back-off is over, and the
least recently used are evicted beyond `max_entries` (never one with an
attempt in flight), so spraying unique user names costs a fixed amount of
memory. No I/O here; the caller passes `now_ms`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import islice

FAILURES_BEFORE_BACKOFF = 5
MAX_BACKOFF_SECONDS = 15 * 60
HASHES_PER_ADDRESS = 2
HASHES_TOTAL = 4
MAX_ENTRIES = 10_000
BUSY_RETRY_SECONDS = 1.0


class LoginThrottled(Exception):
    """Refused before any password check; `retry_after` in seconds."""

    def __init__(self, retry_after: float, why: str = "too many failed logins") -> None:
        super().__init__(f"{why}; retry in {max(1, round(retry_after))}s")
        self.retry_after = retry_after
        self.why = why


@dataclass
class _Attempts:
    failures: int = 0
    pending: int = 0  # attempts reserved and not yet decided
    last_ms: int = 0

    def wait(self, now_ms: int, threshold: int, max_backoff: float) -> float:
        """Seconds until another attempt may start (0: now)."""
        if self.failures + self.pending < threshold:
            return 0.0
        if self.pending:
            # The budget is taken by attempts being checked: wait for them.
            return BUSY_RETRY_SECONDS
        backoff = min(max_backoff, 2 ** (self.failures - threshold))
        return max(0.0, (self.last_ms + backoff * 1000 - now_ms) / 1000.0)

    def idle_since(self, now_ms: int, max_backoff: float) -> bool:
        """Nothing to remember: no attempt in flight and any back-off long over."""
        return self.pending == 0 and now_ms - self.last_ms > max_backoff * 1000


class _BoundedTable:
    """Attempt counters by key: LRU-bounded, idle entries expire."""

    def __init__(self, max_entries: int, max_backoff: float) -> None:
        self._entries: OrderedDict[str, _Attempts] = OrderedDict()
        self._max_entries = max_entries
        self._max_backoff = max_backoff

    def get(self, key: str, now_ms: int) -> _Attempts:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Attempts(last_ms=now_ms)
            self._trim(now_ms)
        else:
            self._entries.move_to_end(key)
        return entry

    def forget(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.pending == 0:
            del self._entries[key]

    def _trim(self, now_ms: int) -> None:
        # Expire idle entries among the oldest (bounded work per insert)...
        for key in list(islice(self._entries, 64)):
            if self._entries[key].idle_since(now_ms, self._max_backoff):
                del self._entries[key]
        # ...then evict the least recently used beyond the bound, never one
        # with an attempt in flight (its outcome is still to be counted).
        if len(self._entries) > self._max_entries:
            for key in list(self._entries):
                if len(self._entries) <= self._max_entries:
                    break
                if self._entries[key].pending == 0:
                    del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class Reservation:
    """One login attempt admitted by the throttle; settle it exactly once."""

    def __init__(
        self, throttle: LoginThrottle, user: _Attempts, address: _Attempts, user_key: str, address_key: str
    ) -> None:
        self._throttle = throttle
        self._user = user
        self._address = address
        self._user_key = user_key
        self._address_key = address_key
        self._settled = False

    def succeeded(self) -> None:
        if self._settle():
            self._throttle._users.forget(self._user_key)
            self._throttle._addresses.forget(self._address_key)

    def failed(self, now_ms: int) -> int:
        """Count a failure; returns the user's failures in a row."""
        if self._settle():
            for entry in (self._user, self._address):
                entry.failures += 1
                entry.last_ms = now_ms
        return self._user.failures

    def cancelled(self) -> None:
        """The attempt ended without a verdict (the store failed): not a failure."""
        self._settle()

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        self._user.pending -= 1
        self._address.pending -= 1
        return True


class LoginThrottle:
    """Failure budgets per user name and per client address."""

    def __init__(
        self,
        *,
        threshold: int = FAILURES_BEFORE_BACKOFF,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.threshold = threshold
        self.max_backoff = max_backoff
        self._users = _BoundedTable(max_entries, max_backoff)
        self._addresses = _BoundedTable(max_entries, max_backoff)

    def reserve(self, user: str, address: str, now_ms: int) -> Reservation:
        """Admit one attempt or raise LoginThrottled (nothing is counted then)."""
        user_entry = self._users.get(user, now_ms)
        address_entry = self._addresses.get(address, now_ms)
        wait = max(
            user_entry.wait(now_ms, self.threshold, self.max_backoff),
            address_entry.wait(now_ms, self.threshold, self.max_backoff),
        )
        if wait > 0:
            raise LoginThrottled(wait)
        user_entry.pending += 1
        address_entry.pending += 1
        return Reservation(self, user_entry, address_entry, user, address)

    def sizes(self) -> tuple[int, int]:
        """(user entries, address entries): for tests and telemetry."""
        return len(self._users), len(self._addresses)


class HashSlots:
    """Bounds password hashes in flight, per address and in total. A slot is
    taken or refused at once (no queue: a queue is what starved logins)."""

    def __init__(self, per_address: int = HASHES_PER_ADDRESS, total: int = HASHES_TOTAL) -> None:
        self.per_address = per_address
        self.total = total
        self._by_address: dict[str, int] = {}
        self._in_flight = 0

    def acquire(self, address: str) -> None:
        if self._in_flight >= self.total:
            raise LoginThrottled(BUSY_RETRY_SECONDS, "too many logins being checked")
        if self._by_address.get(address, 0) >= self.per_address:
            raise LoginThrottled(BUSY_RETRY_SECONDS, "too many logins being checked from this address")
        self._by_address[address] = self._by_address.get(address, 0) + 1
        self._in_flight += 1

    def release(self, address: str) -> None:
        self._in_flight -= 1
        left = self._by_address.get(address, 1) - 1
        if left <= 0:
            self._by_address.pop(address, None)
        else:
            self._by_address[address] = left

    @property
    def in_flight(self) -> int:
        return self._in_flight
