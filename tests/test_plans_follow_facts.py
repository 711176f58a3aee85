"""Plans follow facts (issue 10, items 1, 2, 3, 5, 9): through the signed webhook, the
database, `nudges run-due` and the injected clock, over simulated days."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.storage.models import ScheduledMessage, Session
from flows import sms_text
from tests.test_conversation import enroll
from tests.test_nudges import drive_until

NEW_YORK, LOS_ANGELES = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles")
JOURNAL = ["I saw the ocean", "I am allowed to rest", "Let go of rushing",
           "Lighter, less foggy", "Call my brother on Sunday"]


def rows(db, **where) -> list[ScheduledMessage]:
    """Scheduled rows (all statuses) matching where, by due time."""
    with db.session() as s:
        query = select(ScheduledMessage).order_by(ScheduledMessage.due_at)
        for name, value in where.items():
            query = query.where(getattr(ScheduledMessage, name) == value)
        found = s.scalars(query).all()
        s.expunge_all()
        return list(found)


def pending(db, kind: str, scope: str | None = None) -> ScheduledMessage:
    """The one pending row of a kind (and scope)."""
    found = [r for r in rows(db, kind=kind, status="pending")
             if scope is None or r.scope.endswith(":" + scope)]
    assert len(found) == 1, [(r.kind, r.scope) for r in found]
    return found[0]


def journal_through(phone) -> None:
    """DONE, then answer all five journal questions."""
    phone.text("done")
    for answer in JOURNAL:
        phone.text(answer)


def test_the_small_action_nudge_is_planned_once_the_action_is_written(
        client, services, phone, clock, sender, db):
    # Item 1: the plan was built at DONE, before the action existed, and never again.
    enroll(client, services, phone)
    journal_through(phone)
    action = pending(db, "action")
    local = action.due_at.astimezone(NEW_YORK)
    assert local.date() == datetime(2026, 11, 26).date() and local.time() == time(11, 0)
    drive_until(client, clock, clock.now() + timedelta(days=4))
    bodies = [s.body for s in sender.sent]
    assert any('"Call my brother on Sunday"' in body for body in bodies)


def test_a_new_time_zone_moves_pending_nudges_to_the_new_local_times(
        client, services, phone, clock, db):
    # Item 2: pending texts stayed at New York instants after moving to Los Angeles.
    enroll(client, services, phone)
    phone.text("done")
    assert pending(db, "sleep", "night1").due_at.astimezone(NEW_YORK).time() == time(19, 30)
    phone.text("TIMEZONE")  # a detour from journaling
    assert any("Pacific" in reply for reply in phone.text("Pacific"))
    night = pending(db, "sleep", "night1").due_at.astimezone(LOS_ANGELES)
    assert night.time() == time(19, 30)  # 3 hours before a 22:30 bedtime, in LA now
    walk = pending(db, "exercise").due_at.astimezone(LOS_ANGELES)
    assert walk.time() == time(9, 0)
    for row in rows(db, status="pending"):
        assert time(8) <= row.due_at.astimezone(LOS_ANGELES).time() < time(20), row.kind


def test_a_new_bedtime_moves_the_evening_sleep_nudge(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("BEDTIME")
    assert any("9:30 PM" in reply for reply in phone.text("9:30pm"))
    night = pending(db, "sleep", "night1").due_at.astimezone(NEW_YORK)
    assert night.time() == time(18, 30)


def sent_rows(db) -> list[ScheduledMessage]:
    """Scheduled rows that went out, in the order they went."""
    return sorted((r for r in rows(db) if r.status == "sent"), key=lambda r: r.sent_at)


def test_when_a_pause_ends_deferred_nudges_are_spaced_not_sent_together(
        client, services, phone, clock, db):
    # Item 3: when the pause ended, every deferred text went out in the same second.
    enroll(client, services, phone)
    phone.text("done")  # Mon 10:00
    drive_until(client, clock, datetime(2026, 11, 24, 14, 30, tzinfo=ZoneInfo("UTC")))
    assert "Paused" in phone.text("PAUSE 1")[0]  # Tue 9:30 to Wed 9:30
    drive_until(client, clock, clock.now() + timedelta(hours=48))
    pause_end = datetime(2026, 11, 25, 14, 30, tzinfo=ZoneInfo("UTC"))
    after = [r for r in sent_rows(db) if r.sent_at >= pause_end]
    assert len([r for r in after if r.sent_at <= pause_end + timedelta(hours=1)]) >= 2
    for before, later in zip(after, after[1:], strict=False):
        assert later.sent_at - before.sent_at >= timedelta(minutes=30), (before.kind, later.kind)


def test_when_a_crisis_hold_ends_deferred_nudges_are_spaced(client, services, phone, clock,
                                                            db):
    enroll(client, services, phone)
    phone.text("done")  # Mon 10:00
    drive_until(client, clock, datetime(2026, 11, 24, 14, 30, tzinfo=ZoneInfo("UTC")))
    assert "988" in " ".join(phone.text("I want to kill myself"))  # a 24-hour hold
    drive_until(client, clock, clock.now() + timedelta(hours=48))
    hold_end = datetime(2026, 11, 25, 14, 30, tzinfo=ZoneInfo("UTC"))
    after = [r for r in sent_rows(db) if r.sent_at >= hold_end]
    assert after and not [r for r in sent_rows(db)
                          if datetime(2026, 11, 24, 14, 30, tzinfo=ZoneInfo("UTC")) < r.sent_at
                          < hold_end]
    for before, later in zip(after, after[1:], strict=False):
        assert later.sent_at - before.sent_at >= timedelta(minutes=30), (before.kind, later.kind)


def test_a_today_and_tomorrow_text_is_not_sent_on_the_last_day_after_a_pause(
        client, services, phone, clock, db, sender):
    # Item 3: "a gentle reminder for the rest of today and tomorrow" arrived on day 2.
    enroll(client, services, phone)
    clock.advance(hours=12)  # Mon 22:00 in New York
    phone.text("done")
    clock.advance(minutes=5)
    phone.text("PAUSE 1")  # until Tue 22:05: the Tue 17:00 reminder cannot go on its day
    drive_until(client, clock, clock.now() + timedelta(hours=72))
    reminders = [s for s in sender.sent if "rest of today and tomorrow" in s.body]
    assert reminders == []
    assert any(r.kind == "avoid" for r in sent_rows(db))  # the 48-hour check-in still goes


def test_done_leaves_tomorrows_session_and_its_prompt_alone(
        client, services, phone, clock, sender, db):
    # Item 5: DONE marked the session booked for tomorrow as done.
    enroll(client, services, phone)
    phone.text("SESSION")
    assert "Tue Nov 24 at 6:00 PM" in phone.text("tomorrow 6pm")[0]
    clock.advance(hours=1)
    phone.text("done")
    with db.session() as s:
        sessions = s.scalars(select(Session).order_by(Session.id)).all()
        assert [x.done_at is None for x in sessions] == [True, False]
    drive_until(client, clock, datetime(2026, 11, 24, 23, 0, tzinfo=ZoneInfo("UTC")))
    assert any("coming up" in s.body for s in sender.sent)  # tomorrow's is still ahead


def test_no_coming_up_prompt_after_the_session_is_done(client, services, phone, clock, sender,
                                                       db):
    enroll(client, services, phone)
    phone.text("SESSION")
    phone.text("today 4pm")  # the prompt comes an hour before, at 3 pm
    assert pending(db, "intention").due_at.astimezone(NEW_YORK).time() == time(15, 0)
    clock.advance(hours=3)  # 1 pm: the session started early and is over
    phone.text("done")
    drive_until(client, clock, clock.now() + timedelta(hours=5))
    assert not any("coming up" in s.body for s in sender.sent)
    with db.session() as s:
        assert s.scalars(select(Session)).one().done_at is not None


def test_start_after_stop_restores_the_upcoming_sessions_prompt(
        client, services, phone, clock, sender, db):
    # Item 9: STOP cancelled everything and START brought nothing back.
    enroll(client, services, phone)
    phone.text("SESSION")
    phone.text("wed 6pm")
    assert pending(db, "intention")
    phone.text("STOP")
    assert not rows(db, status="pending")
    clock.advance(hours=2)
    assert "Welcome back" in phone.text("START")[0]
    prompt = pending(db, "intention")
    assert prompt.due_at.astimezone(NEW_YORK).date() == datetime(2026, 11, 24).date()
    drive_until(client, clock, datetime(2026, 11, 25, 22, 0, tzinfo=ZoneInfo("UTC")))
    prompts = [s.body for s in sender.sent if "coming up" in s.body]
    assert len(prompts) == 1 and sms_text.segments(prompts[0]) <= 2
