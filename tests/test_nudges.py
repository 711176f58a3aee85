"""Timed nudges end to end in one process: plan rows, local times, sending, stopping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.sms import SendError
from bot.storage.models import Participant, ScheduledMessage
from tests.conftest import PHONE, Phone
from tests.test_conversation import enroll

CORE_KINDS = {"sleep", "exercise", "therapy", "connection", "avoid"}


def report(client, number=PHONE) -> dict:
    """`flask --app bot participant PHONE --json` as a dict."""
    result = client.application.test_cli_runner().invoke(args=["participant", number, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def run_due(client) -> str:
    """`flask --app bot nudges run-due`."""
    result = client.application.test_cli_runner().invoke(args=["nudges", "run-due"])
    assert result.exit_code == 0, result.output
    return result.output


def drive_until(client, clock, until: datetime, step=timedelta(minutes=15)):
    """Advance the clock in steps, sending whatever is due at each step."""
    while clock.now() < until:
        clock.advance(seconds=step.total_seconds())
        run_due(client)


def test_done_schedules_core_nudges_inside_window_and_72h(client, services, phone, clock):
    enroll(client, services, phone)
    done_at = clock.now()
    phone.text("done")
    scheduled = report(client)["scheduled"]
    kinds = {row["kind"] for row in scheduled if row["status"] == "pending"}
    assert CORE_KINDS <= kinds
    zone = ZoneInfo("America/New_York")
    for row in scheduled:
        due = datetime.fromisoformat(row["due_at"])
        assert due.tzinfo is not None
        local = due.astimezone(zone).time()
        assert time(8, 0) <= local < time(20, 0), row
        if row["kind"] in CORE_KINDS:
            assert due - done_at <= timedelta(hours=72), row
        assert row["body"] and "ketamine" not in row["body"].lower()


def test_nudges_arrive_at_their_local_times(client, services, phone, clock, sender):
    enroll(client, services, phone)
    phone.text("done")
    due = {r["kind"] + ":" + r["scope"]: datetime.fromisoformat(r["due_at"])
           for r in report(client)["scheduled"] if r["status"] == "pending"}
    sent_before = len(sender.sent)
    drive_until(client, clock, clock.now() + timedelta(hours=72))
    rows = report(client)["scheduled"]
    sent = [r for r in rows if r["status"] == "sent"]
    assert {r["kind"] for r in sent} >= CORE_KINDS
    assert len(sender.sent) - sent_before == len(sent)
    for row in sent:
        # Sent within one clock step of its due time, never before it.
        key = row["kind"] + ":" + row["scope"]
        assert key in due
    bodies = [s.body for s in sender.sent[sent_before:]]
    assert len(bodies) == len(set(bodies)), "a nudge went out twice"


def test_stop_in_the_middle_of_a_plan_stops_everything(client, services, phone, clock, sender):
    enroll(client, services, phone)
    phone.text("done")
    drive_until(client, clock, clock.now() + timedelta(hours=6))
    sent_before = len(sender.sent)
    assert sent_before >= 2  # the invitation and at least the therapy nudge
    phone.text("STOP")
    drive_until(client, clock, clock.now() + timedelta(hours=80), step=timedelta(hours=1))
    assert len(sender.sent) == sent_before
    statuses = {r["status"] for r in report(client)["scheduled"]}
    assert "pending" not in statuses and "cancelled" in statuses


def test_carrier_opt_out_21610_cancels_the_plan(client, services, phone, clock, sender, db):
    enroll(client, services, phone)
    phone.text("done")
    sender.fail_with(SendError("opted_out", code=21610, http_status=400), count=1)
    drive_until(client, clock, clock.now() + timedelta(hours=80), step=timedelta(hours=1))
    with db.session() as s:
        assert s.scalars(select(Participant)).one().status == "opted_out"
        rows = s.scalars(select(ScheduledMessage)).all()
        assert not [r for r in rows if r.status == "pending"]
        assert [r for r in rows if r.status == "failed" and r.error_code == 21610]


def test_new_done_replaces_previous_plan(client, services, phone, clock):
    enroll(client, services, phone)
    phone.text("done")
    first = {r["scope"] for r in report(client)["scheduled"] if r["status"] == "pending"}
    for _ in range(5):
        phone.text("skip")
    clock.advance(hours=20)
    phone.text("done")
    phone.text("done")  # mid-journal: repeats the question, no third session
    rows = report(client)["scheduled"]
    pending = [r for r in rows if r["status"] == "pending"]
    assert pending and not {r["scope"] for r in pending} & first
    assert len(report(client)["sessions"]) == 2
    kinds = [r["kind"] + r["scope"].split(":", 1)[1] for r in pending]
    assert len(kinds) == len(set(kinds)), "two plans stacked"


def test_pause_holds_messages_and_resume_releases_them(client, services, phone, clock, sender):
    enroll(client, services, phone)
    phone.text("done")
    assert "Paused" in phone.text("PAUSE 2")[0]
    sent_before = len(sender.sent)
    drive_until(client, clock, clock.now() + timedelta(hours=40), step=timedelta(hours=1))
    assert len(sender.sent) == sent_before
    phone.text("RESUME")
    drive_until(client, clock, clock.now() + timedelta(hours=10), step=timedelta(hours=1))
    assert len(sender.sent) > sent_before


def test_participant_in_another_time_zone(client, services, clock, sender):
    la = Phone(client, number="+15551239999")
    runner = client.application.test_cli_runner()
    assert runner.invoke(args=["enroll", la.number, "--tz", "America/Los_Angeles"]).exit_code == 0
    for answer in ("yes", "yes", "11pm", "no", "skip"):
        la.text(answer)
    clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 09:00 in Los Angeles
    la.text("done")
    zone = ZoneInfo("America/Los_Angeles")
    for row in report(client, la.number)["scheduled"]:
        local = datetime.fromisoformat(row["due_at"]).astimezone(zone).time()
        assert time(8, 0) <= local < time(20, 0), row


def test_mood_checkin_reply_is_stored(client, services, phone, clock, db):
    enroll(client, services, phone)
    phone.text("done")
    for _ in range(5):
        phone.text("skip")
    drive_until(client, clock, clock.now() + timedelta(hours=48), step=timedelta(minutes=30))
    checkin = [r for r in report(client)["scheduled"]
               if r["scope"].endswith(":checkin") and r["status"] == "sent"]
    assert checkin, "the 1-5 check-in went out"
    assert "Thank you" in phone.text("4")[0]
    assert report(client)["sessions"][-1]["mood"] == 4


def test_mindfulness_time_is_used_for_daily_practice(client, services, phone, clock):
    enroll(client, services, phone)
    assert "time of day" in phone.text("MINDFULNESS")[0]
    assert "7:00 AM" in phone.text("7am")[0]
    phone.text("done")
    zone = ZoneInfo("America/New_York")
    mindful = [r for r in report(client)["scheduled"] if r["kind"] == "mindfulness"]
    assert mindful
    for row in mindful:
        # 07:00 is before sending hours, so each lands at the window's opening.
        assert datetime.fromisoformat(row["due_at"]).astimezone(zone).time() == time(8, 0)


def test_plan_across_the_fall_back_weekend_keeps_local_times(client, services, phone, clock):
    clock.set(datetime(2026, 10, 31, 18, 0, tzinfo=UTC))  # Sat 14:00 EDT; clocks fall back Sunday
    enroll(client, services, phone)
    phone.text("done")
    zone = ZoneInfo("America/New_York")
    rows = report(client)["scheduled"]
    exercise = [r for r in rows if r["kind"] == "exercise"][0]
    local = datetime.fromisoformat(exercise["due_at"]).astimezone(zone)
    assert local.date().isoformat() == "2026-11-01" and local.time() == time(9, 0)
    assert local.utcoffset() == timedelta(hours=-5)  # EST after the change
    for row in rows:
        hour = datetime.fromisoformat(row["due_at"]).astimezone(zone).time()
        assert time(8, 0) <= hour < time(20, 0), row


def test_intention_prompt_before_a_scheduled_session_and_its_reply(client, services, clock,
                                                                   sender, db):
    phone = Phone(client)
    runner = client.application.test_cli_runner()
    assert runner.invoke(args=["enroll", PHONE, "--tz", "America/New_York"]).exit_code == 0
    for answer in ("yes", "yes", "10:30pm", "yes"):
        phone.text(answer)
    assert "Fri Nov 27 at 6:00 PM" in phone.text("fri 6pm")[0]
    before = len(sender.sent)
    drive_until(client, clock, datetime(2026, 11, 27, 1, 0, tzinfo=UTC), step=timedelta(hours=1))
    prompts = sender.sent[before:]
    assert len(prompts) == 1 and "intention" in prompts[0].body
    local = clock.now()  # the prompt went out on Thursday evening, inside sending hours
    assert local.astimezone(ZoneInfo("America/New_York")).date().isoformat() == "2026-11-26"
    assert "open to whatever" in phone.text("I'm open to whatever needs to be seen")[0]
    clock.set(datetime(2026, 11, 27, 23, 45, tzinfo=UTC))
    first_question = phone.text("done")[1]
    assert "open to whatever needs to be seen" in first_question
    sessions = report(client)["sessions"]
    assert len(sessions) == 1 and sessions[0]["has_intention"] and sessions[0]["done_at"]
