"""A sender rate limit shared by every worker on every host, kept in Redis.

GCRA (the generic cell rate algorithm): each send reserves the next free slot
on a shared timeline, spaced 1/rate apart, and sleeps until it. Redis' own
clock is used so hosts with skewed clocks still agree. Any one-second window
then holds at most `rate` sends.
"""

from __future__ import annotations

import threading
import time

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

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local max_ahead = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_ahead then return {-1, now} end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', math.ceil((wait + interval) / 1000) + 1000)
return {wait, now}
"""


class RateLimiter:
    """Spaces sends 1/rate seconds apart across every process sharing the Redis key."""

    def __init__(self, redis_client, rate_per_second: float, key: str = "integration-bot:sms-rate"):
        if rate_per_second <= 0:
            raise ValueError("rate must be positive")
        self.interval_us = int(1_000_000 / (rate_per_second * RATE_MARGIN))
        self.key = key
        self._script = redis_client.register_script(_GCRA)
        self._clock = _RedisClock()

    def reserve(self, max_ahead: float = MAX_RESERVE_AHEAD) -> float | None:
        """Reserve the next slot; seconds to wait for it, or None when it is over max_ahead away."""
        slot = self._reserve(max_ahead)
        return None if slot is None else max(0.0, slot - time.monotonic())

    def _reserve(self, max_ahead: float) -> float | None:
        """Reserve the next slot; its time on this process's monotonic clock, or None."""
        asked = time.monotonic()
        wait_us, redis_now_us = self._script(
            keys=[self.key], args=[self.interval_us, int(max(max_ahead, 0) * 1e6)])
        self._clock.observe(asked, int(redis_now_us), time.monotonic())
        if int(wait_us) < 0:
            return None
        return self._clock.local(int(redis_now_us) + int(wait_us))

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
            slot = self._reserve(min(MAX_RESERVE_AHEAD, left))
            if slot is None:
                time.sleep(min(1.0, left))
                continue
            if slot > time.monotonic():
                time.sleep(slot - time.monotonic())
            if time.monotonic() - slot <= LATE_TOLERANCE:
                return True


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
