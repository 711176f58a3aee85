"""Sending at the carrier's pace: the shared rate limit, rows that find no slot, and a
backlog handed to workers no faster than they can send it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import delivery, ratelimit, scheduling
from bot.config import Settings
from bot.ratelimit import RateLimiter
from bot.storage.models import Message, ScheduledMessage
from tests.conftest import make_settings
from tests.test_rq_delivery import add_participants


class NoSlot:
    """A rate limiter with no free slot within any budget."""

    def __init__(self) -> None:
        self.budgets: list[float] = []

    def acquire(self, budget: float = float("inf")) -> bool:
        """Refuse, remembering how long the caller was willing to wait."""
        self.budgets.append(budget)
        return False


def rows(services) -> dict[int, ScheduledMessage]:
    """Every scheduled row by id."""
    with services.db.session() as db:
        return {r.id: r for r in db.scalars(select(ScheduledMessage))}


# ---------------------------------------------------------------- the shared limiter


@pytest.mark.integration
def test_a_caller_that_cannot_wait_long_enough_books_no_slot(redis_conn):
    limiter = RateLimiter(redis_conn, rate_per_second=10)
    for _ in range(10):  # book the next second of the timeline
        assert limiter.reserve() is not None
    booked = redis_conn.get(limiter.key)
    assert limiter.acquire(budget=0.2) is False
    assert redis_conn.get(limiter.key) == booked, "a refused caller still took a slot"


@pytest.mark.integration
def test_a_sender_woken_late_gives_its_slot_up_and_takes_another(redis_conn, monkeypatch):
    limiter = RateLimiter(redis_conn, rate_per_second=50)
    reserved = []
    real_reserve = limiter._reserve

    def reserve(max_ahead):
        reserved.append(real_reserve(max_ahead))
        return reserved[-1]

    sleeps = []
    real_sleep = time.sleep

    def oversleep(seconds):
        # The first wake-up comes well past the slot (a busy process); later ones on time.
        sleeps.append(seconds)
        real_sleep(seconds + (5 * ratelimit.LATE_TOLERANCE if len(sleeps) == 1 else 0))

    limiter._reserve = reserve
    limiter.reserve()  # someone else holds the current slot, so ours is in the future
    reserved.clear()
    monkeypatch.setattr(ratelimit.time, "sleep", oversleep)
    assert limiter.acquire() is True
    assert len(reserved) == 2, "the late slot was used instead of a fresh one"


def test_settings_survive_the_trip_to_a_worker_process(tmp_path):
    settings = make_settings(tmp_path, "sqlite:///x.db", sms_max_per_second=37.5,
                             care_team_numbers=("+15557654321", "+15557654322"),
                             public_base_url="https://bot.example.org")
    assert Settings.from_env(settings.to_env()) == settings


# ---------------------------------------------------------------- rows without a slot


def test_a_row_that_finds_no_send_slot_goes_back_to_pending_unsent(services, sender):
    ids = add_participants(services, 3)
    scheduling.due_ids(services, services.clock.now())
    refusing = services.rate_limiter = NoSlot()
    outcomes = delivery.deliver_batch(services, ids)
    assert outcomes == {"deferred": 3}
    assert sender.sent == []
    assert all(b <= (delivery.LEASE - delivery.LEASE_SAFETY).total_seconds()
               for b in refusing.budgets), "a send could outlive its claim"
    for row in rows(services).values():
        assert (row.status, row.lease_until, row.enqueued_at) == ("pending", None, None)
    # The next scheduler pass hands them over at once; they go out once each.
    assert sorted(scheduling.due_ids(services, services.clock.now())) == sorted(ids)
    del services.rate_limiter
    assert delivery.deliver_batch(services, ids) == {"sent": 3}
    assert sorted(t.body for t in sender.sent) == [f"walk reminder {n}" for n in range(3)]


def test_a_batch_sends_each_row_once_and_records_it(services, sender):
    ids = add_participants(services, 5)
    assert delivery.deliver_batch(services, ids) == {"sent": 5}
    assert delivery.deliver_batch(services, ids) == {"skipped": 5}
    assert len(sender.sent) == 5
    with services.db.session() as db:
        history = db.scalars(select(Message).where(Message.direction == "out")).all()
    assert sorted(m.body for m in history) == sorted(t.body for t in sender.sent)
    assert {r.status for r in rows(services).values()} == {"sent"}
    assert all(r.twilio_sid and r.sent_at for r in rows(services).values())


# ---------------------------------------------------------------- backlog hand-over


def test_a_backlog_waits_in_the_database_not_in_the_queue(services, clock):
    # At 1 text a second a worker sends ~10 rows in HANDOVER_SECONDS; 120 due rows must not
    # all sit in RQ, or most would wait past REQUEUE_AFTER and be handed over twice.
    services.settings = services.settings.with_overrides({"sms_max_per_second": 1.0})
    add_participants(services, 120)
    first = scheduling.due_ids(services, clock.now())
    assert len(first) == scheduling.BATCH_SIZE
    assert scheduling.due_ids(services, clock.now()) == [], "handed over past what is waiting"
    # Once workers claim what they were given, the next rows follow.
    now = clock.now()
    delivery.claim(services, first, now)
    second = scheduling.due_ids(services, now)
    assert len(second) == scheduling.BATCH_SIZE and not set(second) & set(first)
    # Rows whose job was lost (Redis flushed) come back after REQUEUE_AFTER.
    clock.advance(seconds=scheduling.REQUEUE_AFTER.total_seconds() + 1)
    assert sorted(scheduling.due_ids(services, clock.now())) == sorted(second)


def test_a_fast_sender_gets_a_deeper_queue(services, clock):
    services.settings = services.settings.with_overrides({"sms_max_per_second": 100.0})
    add_participants(services, 1200)
    handed = scheduling.due_ids(services, clock.now())
    assert len(handed) == int(100 * scheduling.HANDOVER_SECONDS)


@pytest.mark.parametrize(("rate", "size"), [(1.0, 5), (0.1, 1), (20.0, 50), (100.0, 50)])
def test_a_job_holds_a_few_seconds_of_sending(rate, size):
    assert scheduling.batch_size(rate) == size


def test_run_due_sends_every_due_row_even_if_already_handed_over(client, services, sender):
    add_participants(services, 7)
    scheduling.due_ids(services, services.clock.now())  # handed to a queue that was lost
    result = client.application.test_cli_runner().invoke(args=["nudges", "run-due"])
    assert result.exit_code == 0, result.output
    assert "due: 7" in result.output and "sent: 7" in result.output
    assert len(sender.sent) == 7


def test_rows_past_their_lease_margin_are_not_sent(services, sender, clock):
    ids = add_participants(services, 1)
    now = clock.now()
    claimed = delivery.claim(services, ids, now)
    outgoing = delivery.check(services, claimed, now, {})
    clock.advance(seconds=(delivery.LEASE - delivery.LEASE_SAFETY).total_seconds() + 1)
    assert delivery.send(services, outgoing[0]) == "deferred"
    assert sender.sent == []
    assert rows(services)[ids[0]].status == "pending"


def test_expired_rows_in_a_batch_are_settled_without_a_send(services, sender, clock):
    ids = add_participants(services, 2)
    with services.db.session() as db:
        db.get(ScheduledMessage, ids[0]).expires_at = clock.now() - timedelta(minutes=1)
    assert delivery.deliver_batch(services, ids) == {"expired": 1, "sent": 1}
    assert [t.body for t in sender.sent] == ["walk reminder 1"]


def test_slots_are_placed_by_the_quickest_round_trip_to_redis():
    clock = ratelimit._RedisClock()
    clock.observe(10.0, 1_000_000_000, 10.2)  # a slow answer: Redis read its clock at ~10.1
    clock.observe(11.0, 1_000_900_500, 11.001)  # a quick one pins it to 11.0005
    assert clock.local(1_001_900_500) == pytest.approx(12.0005)
    clock.observe(11.5, 1_001_700_000, 11.9)  # slow again: ignored
    assert clock.local(1_001_900_500) == pytest.approx(12.0005)
    later = 11.001 + ratelimit.OFFSET_MAX_AGE + 1
    clock.observe(later, 1_000_900_000 + int((later - 11.0) * 1e6), later + 0.01)
    # Redis read its clock mid-way (later + 0.005): the new view replaces the old one.
    assert clock.local(1_001_900_000) == pytest.approx(12.005, abs=1e-4), "an old view kept"
