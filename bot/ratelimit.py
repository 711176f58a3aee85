"""A sender rate limit shared by every worker on every host, kept in Redis.

GCRA (the generic cell rate algorithm): each send reserves the next free slot
on a shared timeline, spaced 1/rate apart, and sleeps until it. Redis' own
clock is used so hosts with skewed clocks still agree. Any one-second window
then holds at most `rate` sends.
"""

from __future__ import annotations

import time

RATE_MARGIN = 0.98
"""Fraction of SMS_MAX_PER_SECOND actually used: network jitter can bunch sends
that left on time, and the carrier's limit must never be crossed."""

LATE_TOLERANCE = 0.005
"""Seconds a woken sender may be past its slot and still use it (the margin above
absorbs about 20 ms; the request itself still has to travel)."""

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
if wait > max_ahead then return -wait end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil((wait + interval) / 1000) + 1000)
return wait
"""


class RateLimiter:
    """Spaces sends 1/rate seconds apart across every process sharing the Redis key."""

    def __init__(self, redis_client, rate_per_second: float, key: str = "integration-bot:sms-rate"):
        if rate_per_second <= 0:
            raise ValueError("rate must be positive")
        self.interval_us = int(1_000_000 / (rate_per_second * RATE_MARGIN))
        self.key = key
        self._script = redis_client.register_script(_GCRA)

    def reserve(self, max_ahead: float = MAX_RESERVE_AHEAD) -> float | None:
        """Reserve the next slot; seconds to wait for it, or None when it is over max_ahead away."""
        wait_us = int(self._script(keys=[self.key],
                                   args=[self.interval_us, int(max(max_ahead, 0) * 1e6)]))
        return None if wait_us < 0 else wait_us / 1e6

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
            asked = time.monotonic()
            wait = self.reserve(min(MAX_RESERVE_AHEAD, left))
            if wait is None:
                time.sleep(min(1.0, left))
                continue
            # Measured from before the call: an answer that took long to reach this
            # thread (a busy GIL) must count as lateness, not push the slot back.
            slot = asked + wait
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - slot <= LATE_TOLERANCE:
                return True

    def wait(self) -> None:
        """Block until this caller may send one message."""
        self.acquire()


class NoLimit:
    """No rate limit (console backend, unit tests)."""

    def acquire(self, budget: float = float("inf")) -> bool:
        """Return at once: there is always a slot."""
        return True

    def wait(self) -> None:
        """Return at once."""
