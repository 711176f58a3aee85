"""The safety path keeps its promises (issue 9), end to end: the signed webhook, the
database, real Redis, the clock pass and an RQ worker, over simulated time."""

from __future__ import annotations

import logging
import re
from zoneinfo import ZoneInfo

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import func, select, text

from bot import jobs, scheduling, spool
from bot.services import build_services
from bot.sms import SendError
from bot.storage import Database
from bot.storage.models import (
    Alert,
    AlertPage,
    JournalEntry,
    Message,
    SafetyCheck,
    ScheduledMessage,
)
from tests.conftest import PHONE, Phone, make_settings
from tests.test_conversation import enroll

CARE_TEAM = "+15557654321"
CHECK_TEXT = "sometimes i wonder if everyone would be better off if i just disappeared"
PILLS_TEXT = "how many of my sleeping pills would it take to not wake up"
TOLD = "has been told"


@pytest.fixture
def live(tmp_path, db, redis_url, redis_conn, clock, sender):
    """Services with real Redis for the clock pass and RQ jobs (fake SMS sender)."""
    settings = make_settings(tmp_path, db.url, redis_url=redis_url)
    services = build_services(settings, clock=clock, sender=sender, db=db)
    jobs.use_services(services)
    yield services
    jobs.use_services(None)


@pytest.fixture
def live_phone(live, client_for):
    """A phone talking to an app built over the live services."""
    return Phone(client_for(live))


def clock_pass(services) -> None:
    """One pass of the clock process, then an RQ worker drains what it handed over."""
    scheduling.dispatch_due(services)
    queue = Queue(services.settings.queue_name, connection=services.redis)
    SimpleWorker([queue], connection=services.redis).work(burst=True)


def advance(services, clock, minutes: int, step: int = 1) -> None:
    """Move time on, running the clock pass every `step` minutes."""
    for _ in range(0, minutes, step):
        clock.advance(minutes=step)
        clock_pass(services)


def pages(sender) -> list[str]:
    """Texts that went to the care team."""
    return [s.body for s in sender.sent if s.to == CARE_TEAM]


def to_participant(sender) -> list[str]:
    """Texts sent to the participant through the REST API (not TwiML)."""
    return [s.body for s in sender.sent if s.to == PHONE]


def open_alerts(db) -> list[Alert]:
    with db.session() as s:
        return list(s.scalars(select(Alert).where(Alert.status == "open").order_by(Alert.id)))


def journal(db) -> list[tuple[str, str]]:
    with db.session() as s:
        return [(e.prompt, e.text) for e in s.scalars(select(JournalEntry).order_by(JournalEntry.id))]


# ---------------------------------------------------------------- 1. the check question


def test_check_then_yes_takes_the_crisis_path(client, services, phone, sender, db):
    enroll(client, services, phone)
    question = phone.text(CHECK_TEXT)
    assert len(question) == 1
    assert "YES or NO" in question[0] and "988" in question[0] and "911" in question[0]
    assert pages(sender) == [] and open_alerts(db) == []  # asking is not yet paging
    crisis = phone.text("yes")
    assert "988" in crisis[0] and "741741" in crisis[0] and TOLD in crisis[0]
    [alert] = open_alerts(db)
    assert (alert.level, alert.category) == ("crisis", "check_yes")
    assert len(pages(sender)) == 1 and "CRISIS" in pages(sender)[0]
    assert "disappeared" not in pages(sender)[0]
    with db.session() as s:
        assert s.scalars(select(SafetyCheck)).one().status == "yes"


def test_check_then_no_resumes_the_journal_at_the_same_question(client, services, phone, db,
                                                                sender):
    enroll(client, services, phone)
    phone.text("done")
    assert "clarity or insight" in phone.text("the ocean, and a lot of light")[0]
    assert "YES or NO" in phone.text(PILLS_TEXT)[0]
    thanks, again = phone.text("no")
    assert "Thank you for answering" in thanks and "988" in thanks
    assert "clarity or insight" in again
    phone.text("I am allowed to rest")
    assert journal(db) == [("images", "the ocean, and a lot of light"),
                           ("insight", "I am allowed to rest")]
    assert open_alerts(db) == [] and pages(sender) == []


def test_unanswered_check_pages_the_care_team_after_30_minutes(live, live_phone, clock, sender,
                                                               db):
    enroll(live_phone.client, live, live_phone)
    live_phone.text(CHECK_TEXT)
    advance(live, clock, 29)
    assert pages(sender) == [], "nobody is paged while the question may still be answered"
    advance(live, clock, 2)
    [page] = pages(sender)
    assert "unanswered safety check" in page and "CHECK" in page
    assert "disappeared" not in page and "better off" not in page
    [alert] = open_alerts(db)
    assert (alert.level, alert.category) == ("check", "unanswered_check")
    # A late NO is still an answer: thanks, and no second alert.
    assert "Thank you for answering" in live_phone.text("no")[0]
    assert len(open_alerts(db)) == 1
    with db.session() as s:
        assert s.scalars(select(SafetyCheck)).one().status == "no"


def test_a_reply_that_is_not_yes_or_no_goes_to_the_care_team(client, services, phone, sender,
                                                            db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text(CHECK_TEXT)
    reply = phone.text("I don't know what I mean anymore")
    assert "988" in reply[0] and TOLD in reply[0]
    [alert] = open_alerts(db)
    assert (alert.level, alert.category) == ("check", "unanswered_check")
    assert ("images", "I don't know what I mean anymore") not in journal(db)


def test_check_is_not_asked_twice_in_two_hours(client, services, phone, sender, db, clock):
    enroll(client, services, phone)
    phone.text(CHECK_TEXT)
    phone.text("no")
    clock.advance(minutes=90)
    second = phone.text(PILLS_TEXT)
    assert "YES or NO" not in second[0] and "988" in second[0] and TOLD in second[0]
    [alert] = open_alerts(db)
    assert (alert.level, alert.category) == ("check", "repeated_check")
    clock.advance(minutes=31)  # 2 hours after the first question: asking is right again
    assert "YES or NO" in phone.text(CHECK_TEXT)[0]


# ---------------------------------------------------------------- 2. crisis during a flow


def test_crisis_mid_journal_suspends_it_and_journal_says_how_to_pick_up(client, services, phone,
                                                                       db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    phone.text("I want to kill myself")
    after = phone.text("I'm safe, my partner is with me")
    assert len(after) == 1 and "CONTINUE" in after[0]
    assert "what do you want to let go" not in after[0].lower()
    assert ("insight", "I'm safe, my partner is with me") not in journal(db)
    readback = phone.text("JOURNAL")
    assert "question 2 of 5" in readback[-1] and "CONTINUE" in readback[-1]
    assert "clarity or insight" in phone.text("continue")[0]
    phone.text("I am allowed to rest")
    assert ("insight", "I am allowed to rest") in journal(db)


# ---------------------------------------------------------------- 3. honest words


def test_no_care_team_numbers_means_no_has_been_told(tmp_path, db, clock, sender, client_for,
                                                     caplog):
    caplog.set_level(logging.WARNING)
    settings = make_settings(tmp_path, db.url, care_team_numbers=())
    services = build_services(settings, clock=clock, sender=sender, db=db)
    assert any("CARE_TEAM_NUMBERS" in r.getMessage() for r in caplog.records), \
        "development warns loudly at start-up"
    phone = Phone(client_for(services))
    enroll(phone.client, services, phone)
    for words in ("I want to kill myself", "there's blood in my urine since yesterday"):
        reply = phone.text(words)[0]
        assert "988" in reply or "911" in reply
        assert TOLD not in reply
    listing = phone.client.application.test_cli_runner().invoke(args=["alerts"]).output
    assert listing.count("attempted=0 accepted=0 failed=0") == 2


def test_refused_page_means_no_has_been_told_and_alerts_show_the_failure(client, services,
                                                                        phone, sender, db):
    enroll(client, services, phone)
    sender.fail_with(SendError("failed", code=30007))
    reply = phone.text("I want to kill myself")[0]
    assert "988" in reply and TOLD not in reply
    with db.session() as s:
        assert s.scalars(select(Message.key).where(Message.direction == "out")
                         .order_by(Message.id.desc())).first() == "safety.crisis"
        page = s.scalars(select(AlertPage)).one()
        assert (page.outcome, page.error_code, page.to_last4) == ("failed", 30007, "4321")
    listing = client.application.test_cli_runner().invoke(args=["alerts"]).output
    assert "attempted=1 accepted=0 failed=1" in listing


def test_urgent_and_low_mood_words_read_well_without_a_real_contact(tmp_path, db, clock, sender,
                                                                    client_for):
    settings = make_settings(tmp_path, db.url, clinic_contact="your care team")
    services = build_services(settings, clock=clock, sender=sender, db=db)
    phone = Phone(client_for(services))
    enroll(phone.client, services, phone)
    reply = phone.text("there's blood in my urine since yesterday")[0]
    assert "contact your care team today" in reply
    assert "at your care team" not in reply and "prescriber" not in reply.lower()


# ---------------------------------------------------------------- 4. the database is down


def test_database_down_crisis_still_answered_and_nothing_lost(live, live_phone, sender, db,
                                                              clock, monkeypatch):
    enroll(live_phone.client, live, live_phone)
    live_phone.text("done")
    real_db = live.db
    monkeypatch.setattr(live, "db", Database("postgresql+psycopg://bot@127.0.0.1:1/gone"))
    first = live_phone.params("the ocean, and a lot of light")
    response = live_phone.post(first)
    assert response.status_code == 200
    assert b"<Message>" not in response.data  # spooled; its answer comes after recovery
    assert live_phone.post(first).status_code == 200  # Twilio retries the same MessageSid
    crisis = live_phone.text("I want to kill myself")
    assert "988" in crisis[0] and "741741" in crisis[0] and TOLD in crisis[0]
    for _ in range(5):  # a flood while the database is away pages once
        assert "988" in live_phone.text("I want to die, I mean it")[0]
    [page] = pages(sender)
    assert "CRISIS" in page and "kill" not in page and "die" not in page
    assert live.redis.hlen(spool.REDIS_KEY) == 7
    raw = b"".join(live.redis.hvals(spool.REDIS_KEY))
    assert b"ocean" not in raw and b"kill" not in raw and PHONE.encode() not in raw

    monkeypatch.setattr(live, "db", real_db)  # the database is back
    clock.advance(seconds=30)
    clock_pass(live)
    clock_pass(live)  # a second replay finds nothing to do
    assert live.redis.hlen(spool.REDIS_KEY) == 0
    with db.session() as s:
        bodies = [m.body for m in s.scalars(select(Message).where(Message.direction == "in"))]
    assert bodies.count("the ocean, and a lot of light") == 1
    assert bodies.count("I want to kill myself") == 1
    assert bodies.count("I want to die, I mean it") == 5
    assert journal(db) == [("images", "the ocean, and a lot of light")]
    [alert] = open_alerts(db)
    assert alert.level == "crisis" and alert.signals == 6
    # The journal answer got its late reply; the crisis texts were already answered.
    assert any("clarity or insight" in body for body in to_participant(sender))
    assert not any("741741" in body for body in to_participant(sender))


def test_database_and_redis_down_spool_to_a_local_file(live, live_phone, sender, db, clock,
                                                       monkeypatch):
    enroll(live_phone.client, live, live_phone)
    real_db = live.db
    monkeypatch.setattr(live, "db", Database("postgresql+psycopg://bot@127.0.0.1:1/gone"))
    from bot.redis_conn import connect

    monkeypatch.setattr(live, "redis", connect("redis://127.0.0.1:1/0"))
    assert "988" in live_phone.text("I want to kill myself")[0]
    live_phone.text("hello, anyone there?")
    path = spool.spool_file(live)
    assert len(path.read_text().splitlines()) == 2
    assert "kill" not in path.read_text()
    monkeypatch.setattr(live, "db", real_db)
    assert spool.replay(live) == 2
    assert spool.replay(live) == 0
    assert not path.exists()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)
                        .where(Message.direction == "in", Message.body.is_not(None))) >= 2
    assert len(open_alerts(db)) == 1


# ---------------------------------------------------------------- 5. alerts that help


def test_twelve_crisis_texts_in_a_minute_make_one_alert_and_few_pages(live, live_phone, sender,
                                                                      clock, db):
    enroll(live_phone.client, live, live_phone)
    phrases = ["I want to kill myself", "I want to die", "I don't want to be alive anymore",
               "I am going to end my life tonight"]
    for n in range(12):
        reply = live_phone.text(phrases[n % 4])
        assert "988" in reply[0], "flooding guards never silence a crisis reply"
        clock.advance(seconds=5)
    [alert] = open_alerts(db)
    assert alert.signals == 12
    assert len(pages(sender)) == 1
    # Re-pages back off: 15 min, 30 min, 1 h, then hourly.
    advance(live, clock, 3 * 60, step=5)
    assert len(pages(sender)) == 5  # at 0, 15 min, 45 min, 1 h 45, 2 h 45
    runner = live_phone.client.application.test_cli_runner()
    listing = runner.invoke(args=["alerts"]).output
    assert "texts=12" in listing and "attempted=5 accepted=5" in listing
    assert runner.invoke(args=["alerts", "ack", str(alert.id), "--by", "dr-lee"]).exit_code == 0
    advance(live, clock, 3 * 60, step=15)
    assert len(pages(sender)) == 5


def test_alerts_are_grouped_by_participant(client, services, sender, db):
    first, second = Phone(client), Phone(client, number="+15551230001")
    for phone in (first, second):
        enroll(client, services, phone, number=phone.number)
    first.text("I want to kill myself")
    second.text("there's blood in my urine since yesterday")
    first.text("there's blood in my urine since yesterday")
    listing = client.application.test_cli_runner().invoke(args=["alerts"]).output
    lines = listing.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("participant #")]
    assert len(headers) == 2
    assert "crisis" in lines[headers[0] + 1] and "urgent" in lines[headers[0] + 2]


# ---------------------------------------------------------------- 6. caring contacts


def test_caring_texts_follow_an_acknowledged_crisis_and_stop_cancels_them(live, live_phone,
                                                                          sender, clock, db):
    enroll(live_phone.client, live, live_phone)
    live_phone.text("I want to kill myself")
    [alert] = open_alerts(db)
    runner = live_phone.client.application.test_cli_runner()
    assert runner.invoke(args=["alerts", "ack", str(alert.id)]).exit_code == 0
    with db.session() as s:
        rows = s.scalars(select(ScheduledMessage).where(ScheduledMessage.plan == "caring")
                         .order_by(ScheduledMessage.due_at)).all()
    assert [r.scope.split(":")[-1] for r in rows] == ["day1", "day3", "week1", "month1"]
    zone = ZoneInfo("America/New_York")
    for row in rows:
        assert 8 <= row.due_at.astimezone(zone).hour < 20
        assert "?" not in row.body and "crisis" not in row.body.lower()
    advance(live, clock, 4 * 24 * 60, step=6 * 60)
    def caring() -> list[str]:
        return [b for b in to_participant(sender) if "No need to reply" in b or "No reply" in b]

    assert len(caring()) == 2  # day 1 and day 3
    live_phone.text("STOP")
    advance(live, clock, 40 * 24 * 60, step=24 * 60)
    assert len(caring()) == 2  # week 1 and month 1 were cancelled
    with db.session() as s:
        assert not s.scalars(select(ScheduledMessage).where(
            ScheduledMessage.plan == "caring", ScheduledMessage.status == "pending")).all()


# ---------------------------------------------------------------- 7. a personal safety plan


def test_safety_plan_round_trip(client, services, phone, db):
    enroll(client, services, phone)
    runner = client.application.test_cli_runner()
    assert "hasn't added a safety plan" in phone.text("PLAN")[0]
    result = runner.invoke(args=[
        "safety-plan", "set", PHONE, "--warning-signs", "I stop answering my sister",
        "--coping", "cold water on my face, a walk with Juniper the dog",
        "--people", "my sister Rosalind 555-0142", "--professionals", "Dr Lee 555-0100",
        "--environment", "keep the spare keys with Rosalind"])
    assert result.exit_code == 0, result.output
    texts = phone.text("plan")
    joined = "\n".join(texts)
    for words in ("I stop answering my sister", "Juniper the dog", "Rosalind 555-0142",
                  "Dr Lee 555-0100", "spare keys", "988"):
        assert words in joined
    from flows import sms_text

    assert all(sms_text.problems(t) == [] for t in texts)
    crisis = phone.text("I want to kill myself")
    assert len(crisis) == 2 and "PLAN" in crisis[1]
    shown = runner.invoke(args=["safety-plan", "show", PHONE]).output
    assert "Juniper" in shown
    with db.engine.connect() as conn:
        raw = conn.execute(text("select sections from safety_plans")).scalar()
    assert "Juniper" not in raw
    bad = runner.invoke(args=["safety-plan", "set", PHONE, "--coping", "breathe \u2014 slowly"])
    assert bad.exit_code != 0 and "SMS" in bad.output


def test_a_long_plan_is_split_into_texts_of_at_most_two_segments(client, services, phone):
    enroll(client, services, phone)
    runner = client.application.test_cli_runner()
    long = "x" * 250
    args = ["safety-plan", "set", PHONE]
    for flag in ("--warning-signs", "--coping", "--distractions", "--people",
                 "--professionals", "--environment", "--reasons"):
        args += [flag, long]
    assert runner.invoke(args=args).exit_code == 0
    texts = phone.text("PLAN")
    from flows import sms_text

    assert len(texts) >= 7 and all(sms_text.segments(t) <= 2 for t in texts)
    assert re.search(r"988", texts[-1])


def test_a_crashed_turn_still_pages_and_the_retry_raises_the_alert(client, services, phone,
                                                                  sender, monkeypatch, clock,
                                                                  db):
    from bot import runner

    enroll(client, services, phone)
    with monkeypatch.context() as patch:
        def boom(*args, **kwargs):
            raise RuntimeError("simulated failure")

        patch.setattr(runner, "take_turn", boom)
        reply = phone.text("I am going to end my life tonight")
    assert "988" in reply[0] and TOLD in reply[0]
    [page] = pages(sender)
    assert "CRISIS" in page and "life" not in page
    assert open_alerts(db) == []  # nothing could be recorded yet ...
    clock.advance(seconds=scheduling.INBOUND_RETRY_AFTER.total_seconds() + 1)
    jobs.use_services(services)
    try:
        for message_id in scheduling.stuck_inbound_ids(services, clock.now()):
            jobs.retry_inbound(message_id)
    finally:
        jobs.use_services(None)
    [alert] = open_alerts(db)  # ... the worker's retry records it, with an id to acknowledge
    assert alert.level == "crisis"
