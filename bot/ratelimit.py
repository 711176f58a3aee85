"""A sender rate limit shared by every worker on every host, kept in Redis.

GCRA (the generic cell rate algorithm): each send reserves the next free slot
on a shared timeline, spaced 1/rate apart, and sleeps until it. Redis' own
clock is used so hosts with skewed clocks still agree. Any one-second window
then holds at most `rate` sends.

One timeline only: the key carries an epoch with the timeline's next slot. If
Redis loses the key (FLUSHALL, a restart without persistence) while senders
sleep on slots booked ahead, the next booking starts a new epoch half a second
from now, and every sender checks its slot's epoch when it wakes: a slot from a
lost timeline is given up and booked again on the new one, so the old and the
new timeline never both send.
"""

from __future__ import annotations

import threading
import time
import uuid

RATE_MARGIN = 0.97
"""Fraction of SMS_MAX_PER_SECOND actually used: network jitter can bunch sends
that left on time, and the carrier's limit must never be crossed."""

LATE_TOLERANCE = 0.005
"""Seconds a woken sender may be past its slot and still use it (the margin above
absorbs about 30 ms a second; the request itself still has to travel)."""

OFFSET_MAX_AGE = 10.0
"""Seconds the quickest round trip's view of Redis' clock is trusted before it is relearned."""

MAX_RESERVE_AHEAD = 30.0
"""Seconds ahead a single caller may reserve; past that it is told to come back later."""

NEW_TIMELINE_PAUSE = 0.5
"""Seconds (at least one interval) before the first slot of a new timeline: a sender that
checked its slot on the lost timeline just before the loss may still be sending (a busy
host can hold its thread that long); the pause keeps the two from sharing a second. Paid
once per Redis data loss (and on first use)."""

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_ahead = tonumber(ARGV[2])
local raw = redis.call('GET', KEYS[1])
local epoch, tat
if raw then
  local sep = string.find(raw, ':', 1, true)
  epoch = string.sub(raw, 1, sep - 1)
  tat = tonumber(string.sub(raw, sep + 1))
else
  -- No timeline (first use, or Redis lost it): senders may still hold slots booked on
  -- the lost one until they wake and check, so the new one starts a pause from now.
  epoch = ARGV[3]
  tat = now + math.max(interval, tonumber(ARGV[4]))
end
if tat < now then tat = now end
local wait = tat - now
if wait > max_ahead then return {-1, now, epoch} end
redis.call('SET', KEYS[1], epoch .. ':' .. string.format('%d', tat + interval))
return {wait, now, epoch}
"""


class RateLimiter:
    """Spaces sends 1/rate seconds apart across every process sharing the Redis key."""

    def __init__(self, redis_client, rate_per_second: float, key: str = "integration-bot:sms-rate"):
        if rate_per_second <= 0:
            raise ValueError("rate must be positive")
        self.interval_us = int(1_000_000 / (rate_per_second * RATE_MARGIN))
        self.key = key
        self._redis = redis_client
        self._script = redis_client.register_script(_GCRA)
        self._clock = _RedisClock()

    def reserve(self, max_ahead: float = MAX_RESERVE_AHEAD) -> float | None:
        """Reserve the next slot; seconds to wait for it, or None when it is over max_ahead away."""
        booked = self._reserve(max_ahead)
        return None if booked is None else max(0.0, booked[0] - time.monotonic())

    def _reserve(self, max_ahead: float) -> tuple[float, bytes] | None:
        """Reserve the next slot: (its time on this process's monotonic clock, its epoch)."""
        asked = time.monotonic()
        wait_us, redis_now_us, epoch = self._script(
            keys=[self.key],
            args=[self.interval_us, int(max(max_ahead, 0) * 1e6), uuid.uuid4().hex,
                  int(NEW_TIMELINE_PAUSE * 1e6)])
        self._clock.observe(asked, int(redis_now_us), time.monotonic())
        if int(wait_us) < 0:
            return None
        return self._clock.local(int(redis_now_us) + int(wait_us)), _bytes(epoch)

    def _still_current(self, epoch: bytes) -> bool:
        """Whether the timeline a slot was booked on is still the shared one."""
        raw = self._redis.get(self.key)
        return raw is not None and raw.split(b":", 1)[0] == epoch

    def acquire(self, budget: float = float("inf")) -> bool:
        """Block until this caller may send one message; False when that takes over budget seconds.

        A slot woken up late is given up and another reserved: a late send would
        land in the same second as the on-time sends after it and cross the limit.
        """
        deadline = time.monotonic() + budget
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            booked = self._reserve(min(MAX_RESERVE_AHEAD, left))
            if booked is None:
                time.sleep(min(1.0, left))
                continue
            slot, epoch = booked
            if slot > time.monotonic():
                time.sleep(slot - time.monotonic())
            if time.monotonic() - slot > LATE_TOLERANCE:
                continue  # woken late: this slot's second may already be full
            if self._still_current(epoch):
                return True
            # Redis lost the timeline while we slept: book again on the new one.


def _bytes(value) -> bytes:
    """A Redis reply as bytes (clients with decode_responses answer str)."""
    return value if isinstance(value, bytes) else str(value).encode()


class _RedisClock:
    """Maps Redis' clock onto this process's monotonic clock.

    The offset comes from the quickest round trip seen so far (its midpoint is the
    best guess for when Redis read its clock), so a slot's local time does not
    depend on how long any one answer took to reach its thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._best_rtt = float("inf")
        self._learned_at = 0.0
        self._offset = 0.0

    def observe(self, sent: float, redis_us: int, received: float) -> None:
        """Learn from one round trip: local send time, Redis' time, local receive time."""
        rtt = received - sent
        with self._lock:
            # Clocks drift apart (NTP slews Redis' host clock): an old best is let go.
            if rtt < self._best_rtt or received - self._learned_at > OFFSET_MAX_AGE:
                self._best_rtt, self._learned_at = rtt, received
                self._offset = redis_us / 1e6 - (sent + received) / 2

    def local(self, redis_us: int) -> float:
        """A Redis time (microseconds) on the local monotonic clock."""
        return redis_us / 1e6 - self._offset


class NoLimit:
    """No rate limit (console backend, unit tests)."""

    def acquire(self, budget: float = float("inf")) -> bool:
        """Return at once: there is always a slot."""
        return True
