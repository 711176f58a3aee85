"""Each delivery invariant has a test that fails when its check is taken out: the send-time
window, opt-out/pause/hold re-checked after the rate slot, unknown conditions, re-planning,
recording through a database outage, retries that give up, replies nobody settled."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot import delivery, jobs, queue, reconcile, runner, scheduling
from bot.storage.models import Message, Participant, ScheduledMessage
from flows.engine import POST_SESSION_PLAN
from flows.model import Result, SchedulePlan
from tests.conftest import PHONE, Phone
from tests.test_conversation import count, enroll
from tests.test_nudges import drive_until
from tests.test_rq_delivery import add_participants, statuses

NEW_YORK = ZoneInfo("America/New_York")


def row(services, row_id: int) -> ScheduledMessage:
    """One scheduled row, fresh from the database."""
    with services.db.session() as db:
        return db.get(ScheduledMessage, row_id)


# ---------------------------------------------------------------- the sending window (16)


def test_a_late_job_outside_08_to_20_waits_for_the_morning(services, sender, clock):
    (row_id,) = add_participants(services, 1)
    # The job runs at 21:30 New York time (say, Redis was down all evening).
    clock.set(datetime(2026, 11, 23, 21, 30, tzinfo=NEW_YORK))
    with services.db.session() as db:
        db.execute(update(ScheduledMessage).values(
            expires_at=clock.now() + timedelta(days=2)))
    assert delivery.deliver_batch(services, [row_id]) == {"rescheduled": 1}
    assert sender.sent == []
    due = row(services, row_id).due_at.astimezone(NEW_YORK)
    assert (due.date(), due.hour, due.minute) == (datetime(2026, 11, 24).date(), 8, 0)
    clock.set(due)
    delivery.deliver_batch(services, [row_id])
    assert [t.body for t in sender.sent] == ["walk reminder 0"]


# ---------------------------------------------------------------- re-checked after the slot (2, 17)


class SlotThen:
    """A rate limiter whose slot comes only after `meanwhile()` ran (a STOP, a PAUSE...)."""

    def __init__(self, meanwhile) -> None:
        self.meanwhile = meanwhile
        self.calls = 0
        self._lock = threading.Lock()

    def acquire(self, budget: float = float("inf")) -> bool:
        """Let the world move on while the senders wait (all of them), then grant slots."""
        with self._lock:
            self.calls += 1
            if self.calls == 1:
                self.meanwhile()
        return True


def test_stop_while_a_claimed_nudge_waits_for_its_slot_means_it_is_not_sent(
        client, services, phone, sender, clock):
    enroll(client, services, phone)
    (row_id,) = add_participants(services, 1)
    with services.db.session() as db:
        participant_id = db.get(ScheduledMessage, row_id).participant_id
    stopper = Phone(client, number="+15552000000")
    services.rate_limiter = SlotThen(lambda: stopper.text("STOP"))
    before = len(sender.sent)
    outcome = delivery.deliver_batch(services, [row_id])
    assert [t.body for t in sender.sent[before:]] == [], "texted after STOP"
    assert outcome == {"skipped": 1} or outcome.get("cancelled") == 1
    assert row(services, row_id).status == "cancelled"
    with services.db.session() as db:
        assert db.get(Participant, participant_id).status == "opted_out"


def test_an_opted_out_participant_whose_row_is_still_pending_gets_nothing(services, sender):
    # The STOP was recorded but its cancellation of pending rows did not happen (a crash
    # between the two, an old row created by a racing re-plan): the send-time check holds.
    (row_id,) = add_participants(services, 1)
    with services.db.session() as db:
        db.execute(update(Participant).values(status="opted_out"))
    assert delivery.deliver_batch(services, [row_id]) == {"cancelled": 1}
    assert sender.sent == []


def test_a_pause_or_hold_while_waiting_for_the_slot_puts_the_nudge_off(services, sender, clock):
    ids = add_participants(services, 2)

    def pause_and_hold():
        with services.db.session() as db:
            until = clock.now() + timedelta(days=2)
            people = db.scalars(select(Participant).order_by(Participant.id)).all()
            people[0].paused_until, people[1].hold_until = until, until

    services.rate_limiter = SlotThen(pause_and_hold)
    outcome = delivery.deliver_batch(services, ids)
    assert sender.sent == []
    assert outcome.get("rescheduled") == 2 or outcome.get("expired") == 2
    assert all(row(services, i).status in ("pending", "expired") for i in ids)


# ---------------------------------------------------------------- conditions (15)


def test_a_nudge_with_an_unknown_condition_is_not_sent(services, sender):
    (row_id,) = add_participants(services, 1)
    with services.db.session() as db:
        db.execute(update(ScheduledMessage).values(condition="therapy_not_bookd"))
    assert delivery.deliver_batch(services, [row_id]) == {"cancelled": 1}
    assert sender.sent == []


# ---------------------------------------------------------------- re-planning (19)


def test_re_planning_never_sends_a_nudge_that_already_went_out(client, services, phone, sender,
                                                              clock):
    enroll(client, services, phone)
    done_at = clock.now()
    phone.text("done")
    drive_until(client, clock, done_at + timedelta(hours=12))
    with services.db.session() as db:
        sent_rows = db.scalars(select(ScheduledMessage).where(
            ScheduledMessage.status == "sent")).all()
        participant_id = sent_rows[0].participant_id
    assert sent_rows, "nothing went out in the first 12 hours"
    sent_bodies = [t.body for t in sender.sent]

    def replan(engine, ctx, state, _message):
        return Result(state=state, events=(SchedulePlan(POST_SESSION_PLAN, done_at),))

    runner.run_turn(services, replan, participant_id=participant_id, via="rest")
    for sent_row in sent_rows:
        assert row(services, sent_row.id).status == "sent"
    drive_until(client, clock, done_at + timedelta(days=4), step=timedelta(hours=1))
    later = [t.body for t in sender.sent[len(sent_bodies):]]
    for sent_row in sent_rows:
        assert sent_row.body not in later, f"{sent_row.kind} went out twice"


# ---------------------------------------------------------------- recording (1, 13)


class FlakyDatabase:
    """The real database, refusing new units of work while `down` is set."""

    def __init__(self, real) -> None:
        self.real, self.down = real, threading.Event()
        self.refused = 0

    def session(self):
        """A real session, or OperationalError as from a database that refuses connections."""
        if self.down.is_set():
            self.refused += 1
            raise OperationalError("connect", {}, ConnectionRefusedError("db down"))
        return self.real.session()

    def __getattr__(self, name):
        return getattr(self.real, name)


class DownAfterSend:
    """A sender whose acceptance is followed by a database outage of `outage` seconds."""

    def __init__(self, sender, flaky: FlakyDatabase, outage: float) -> None:
        self.sender, self.flaky, self.outage = sender, flaky, outage

    def send(self, to, body, **kwargs):
        """Send, then take the database away for a while."""
        result = self.sender.send(to, body, **kwargs)
        self.flaky.down.set()
        threading.Timer(self.outage, self.flaky.down.clear).start()
        return result

    def sent_to(self, to, since):
        """The provider's list, as the real sender reads it."""
        return self.sender.sent_to(to, since)


def test_a_database_blip_after_twilio_accepted_does_not_send_twice(services, sender, clock):
    ids = add_participants(services, 3)
    flaky = FlakyDatabase(services.db)
    services.db = flaky
    services._sender = DownAfterSend(sender, flaky, outage=1.0)
    delivery.deliver_batch(services, ids)
    assert flaky.refused > 0, "the outage never hit the recording"
    # Leases long gone, a few passes later: every text went out exactly once.
    for _ in range(3):
        clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
        scheduling.release_expired_leases(services, clock.now())
        delivery.deliver_batch(services, scheduling.all_due_ids(services, clock.now()))
    assert sorted(t.body for t in sender.sent) == [f"walk reminder {n}" for n in range(3)]
    assert set(statuses(services).values()) == {"sent"}


def test_an_accepted_text_whose_worker_never_recorded_it_is_reconciled(services, sender, clock):
    (row_id,) = add_participants(services, 1)
    now = clock.now()
    claimed = delivery.claim(services, [row_id], now)
    (out,) = delivery.check(services, claimed, now, {})
    sender.send(out.to, out.body)  # Twilio took it; the worker died before recording
    clock.advance(seconds=delivery.LEASE.total_seconds() + 1)
    assert reconcile.expired_scheduled(services, clock.now()) == {"reconciled": 1}
    assert row(services, row_id).status == "sent"
    assert row(services, row_id).twilio_sid == "SM" + f"{1:032x}"
    assert scheduling.all_due_ids(services, clock.now()) == []
    assert len(sender.sent) == 1


def test_a_retried_turn_for_an_answered_text_returns_its_replies_at_once(
        client, services, phone):
    enroll(client, services, phone)
    params = phone.params("done")
    first = phone.post(params)
    assert first.status_code == 200
    with services.db.session() as db:
        message_id = db.scalars(select(Message.id).where(
            Message.twilio_sid == params["MessageSid"])).one()
    # A duplicate retry job for a text already answered: the stored replies, no lock wait.
    again = runner.process_inbound(services, message_id, via="rest")
    assert again and "rest" in again[0].lower()


# ---------------------------------------------------------------- giving up (11, 12)


def test_a_text_that_always_crashes_is_retried_a_few_times_then_left(
        client, services, phone, monkeypatch, clock):
    enroll(client, services, phone)
    enqueued = []
    monkeypatch.setattr(queue, "enqueue_inbound_retry",
                        lambda svc, message_id: enqueued.append(message_id))

    def boom(*args, **kwargs):
        raise RuntimeError("this text always crashes")

    monkeypatch.setattr(runner, "take_turn", boom)
    phone.post(phone.params("done"))
    jobs.use_services(services)
    try:
        for _ in range(24 * 60):  # a clock pass a minute for a day
            clock.advance(seconds=60)
            for message_id in scheduling.stuck_inbound_ids(services, clock.now()):
                enqueued.append(message_id)
                try:
                    jobs.retry_inbound(message_id)
                except RuntimeError:
                    pass
    finally:
        jobs.use_services(None)
    assert len(enqueued) <= 1 + scheduling.MAX_INBOUND_ATTEMPTS
    assert count(services.db, Message, direction="in", status="failed") == 1


def test_a_rest_reply_left_sending_by_a_dead_worker_is_settled(client, services, phone,
                                                              sender, clock):
    enroll(client, services, phone)
    now = clock.now()
    with services.db.session() as db:
        pid = db.scalars(select(Participant.id)).one()
        for body in ("reply that went out", "reply that did not"):
            db.add(Message(participant_id=pid, direction="out", channel="sms", status="sending",
                           body=body, created_at=now, updated_at=now))
    sender.send(PHONE, "reply that went out")  # Twilio has the first; the worker died
    before = len(sender.sent)
    clock.advance(seconds=reconcile.OUTBOUND_LEASE.total_seconds() + 1)
    for message_id in scheduling.stuck_outbound_ids(services, clock.now()):
        raise AssertionError(f"reply {message_id} queued before reconciliation")
    jobs.use_services(services)
    try:
        # The clock pass: reconcile, then hand what is queued to a worker (here, in process).
        assert reconcile.stale_replies(services, clock.now()) == {"reconciled": 1, "released": 1}
        delivery.send_outbound(services, scheduling.stuck_outbound_ids(services, clock.now()))
    finally:
        jobs.use_services(None)
    assert [t.body for t in sender.sent[before:]] == ["reply that did not"]
    with services.db.session() as db:
        bodies = {m.body: m.status for m in db.scalars(select(Message))}
    assert bodies["reply that went out"] == bodies["reply that did not"] == "sent"
