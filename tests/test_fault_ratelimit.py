"""The shared send-rate limit as the carrier sees it: real redis-server, real twilio SDK,
the fake Twilio counting arrivals per second, with Redis losing the limiter's key mid-run."""

from __future__ import annotations

import threading
import time

import pytest

from bot.fake_twilio import FakeTwilio
from bot.ratelimit import RateLimiter
from bot.redis_conn import connect, start_embedded
from bot.sms import TwilioSender
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.integration

RATE = 20
SENDERS = 16


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server this test owns (it is flushed on purpose)."""
    url, proc = start_embedded(tmp_path / "redis")
    conn = connect(url)
    yield conn
    conn.close()
    proc.terminate()
    proc.wait(timeout=10)


def send_through_limiter(redis_conn, fake, texts: int, during=None) -> None:
    """SENDERS threads share `texts` sends through one limiter; `during()` runs meanwhile."""
    sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006",
                          api_base_url=fake.base_url)
    limiter = RateLimiter(redis_conn, RATE)
    left = list(range(texts))
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                if not left:
                    return
                n = left.pop()
            try:
                assert limiter.acquire(60)
                sender.send(f"+1555300{n:04d}", f"text {n}")
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    if during is not None:
        during()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(fake.messages) == texts


def test_the_carrier_never_sees_more_than_the_limit_in_any_second(own_redis):
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        send_through_limiter(own_redis, fake, 2 * RATE)
        assert fake.max_per_second() <= RATE


def test_redis_losing_the_limiter_key_does_not_start_a_second_timeline(own_redis):
    def flush_mid_run():
        # Wait until senders hold slots booked ahead, then lose every key.
        deadline = time.monotonic() + 10
        while len(fake.messages) < RATE // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        own_redis.flushall()

    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        send_through_limiter(own_redis, fake, 3 * RATE, during=flush_mid_run)
        assert fake.max_per_second() <= RATE
