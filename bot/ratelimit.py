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

    def reserve(self) -> float | None:
        """Reserve the next slot; seconds to wait for it, or None when it is too far ahead."""
        wait_us = int(self._script(keys=[self.key],
                                   args=[self.interval_us, int(MAX_RESERVE_AHEAD * 1e6)]))
        return None if wait_us < 0 else wait_us / 1e6

    def wait(self) -> None:
        """Block until this caller may send one message."""
        while True:
            wait = self.reserve()
            if wait is not None:
                if wait > 0:
                    time.sleep(wait)
                return
            time.sleep(1.0)


class NoLimit:
    """No rate limit (console backend, unit tests)."""

    def wait(self) -> None:
        """Return at once."""
