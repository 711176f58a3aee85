"""The conversation does what it says (issue 10, items 4, 6, 8, 11, 12), through the signed
webhook on a real database, with the injected clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.storage.models import JournalEntry, Participant, ScheduledMessage, Session
from flows import loader, sms_text
from flows.engine import Engine
from flows.model import Context, SendText
from flows.quoting import quote
from tests.test_conversation import count, enroll
from tests.test_nudges import drive_until
from tests.test_plans_follow_facts import JOURNAL


def plain_and_short(text: str) -> bool:
    """GSM-7 and within two segments: what every text the bot writes must be."""
    return sms_text.is_gsm7(text) and sms_text.segments(text) <= 2


# ---------------------------------------------------------------- item 4: quoting


def test_an_intention_with_emoji_is_quoted_as_plain_text_cut_at_a_word(client, services, phone):
    enroll(client, services, phone)
    phone.text("INTENTION")
    words = ("I want to feel safe in my body again \U0001F64F\u2728 and finally let go of "
             "the fear that has followed me since childhood \u2764\ufe0f")
    reply = phone.text(words)[0]
    assert plain_and_short(reply), reply
    quoted = reply.split('"')[1]
    assert quoted.endswith("...") and "I want to feel safe in my body again" in quoted
    assert quoted[:-3] == quoted[:-3].rstrip() and words.startswith(
        quoted[:-3].split(" ")[0])
    stem = quoted[:-3]
    plain = " ".join(words.replace("\U0001F64F", "").replace("\u2728", "").split())
    assert plain.startswith(stem) and plain[len(stem)] == " "  # cut between words


def test_the_action_nudge_quotes_the_action_in_plain_text(client, services, phone, clock,
                                                          sender):
    enroll(client, services, phone)
    phone.text("done")
    for answer in JOURNAL[:-1]:
        phone.text(answer)
    phone.text("Call my abuela \u201cevery\u201d Sunday \U0001F60A\U0001F60A and walk more")
    drive_until(client, clock, clock.now() + timedelta(days=4))
    action = [s.body for s in sender.sent if "small action" in s.body]
    assert len(action) == 1 and plain_and_short(action[0]), action
    assert '"Call my abuela every Sunday and walk more"' in action[0]


def test_journal_read_back_stays_gsm7_when_answers_have_emoji(client, services, phone):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("Saw the ocean \U0001F30A and felt calm")
    reply = phone.text("JOURNAL")[0]
    assert sms_text.is_gsm7(reply) and "Saw the ocean and felt calm" in reply


def test_a_quote_that_would_break_the_segment_limit_falls_back_to_the_plain_words():
    defs = loader.load()
    long = dataclasses.replace(defs, messages={
        **defs.messages,
        "intention.saved": "x" * 240 + " \"{intention}\" " + "y" * 20,
    })
    ctx = Context(status="active", timezone="America/New_York")
    now = datetime(2026, 11, 23, 15, tzinfo=UTC)
    # Quoting alone is under test: the learned safety stage asks about this intention
    # ("myself" scores high; a known weakness, bench/README.md round 3), so it is off here.
    result = Engine(long, learned_safety=False).resume({"flow": "intention", "step": "ask"},
                                                       ctx, now,
                                 text="to be gentle with myself and everyone around me today")
    texts = [e for e in result.events if isinstance(e, SendText)]
    assert [t.key for t in texts] == ["intention.saved.plain"]
    assert plain_and_short(texts[0].text)


def test_quote_transliterates_accents_and_drops_symbols():
    assert quote("Jos\u00e9 \u2014 caf\u00e9 \u00e1 la mode \U0001F600") == "Jos\u00e9 - caf\u00e9 a la mode"
    assert quote("word " * 30).endswith("word...")


# ---------------------------------------------------------------- item 6: detours


def test_a_keyword_detour_mid_journal_comes_back_to_the_journal(client, services, phone, clock,
                                                               db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text(JOURNAL[0])
    phone.text(JOURNAL[1])
    phone.text("TIMEZONE")
    back = phone.text("Pacific")
    assert "Pacific" in back[0] and "back to where we were" in back[1]
    assert "let go of" in back[2]  # the third journal question, where we left off
    clock.advance(minutes=20)
    again = phone.text("done")  # "done" meaning done with this: the same journal
    assert "still journaling" in again[0] and "let go of" in again[1]
    for answer in JOURNAL[2:]:
        phone.text(answer)
    assert count(db, Session) == 1 and count(db, JournalEntry) == 5
    assert "Small action: Call my brother" in phone.text("JOURNAL")[0]


def test_a_session_detour_mid_journal_also_returns(client, services, phone):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("SESSION")
    back = phone.text("fri 6pm")
    assert "Fri Nov 27 at 6:00 PM" in back[0] and "images, memories" in back[-1]


def test_a_months_old_intention_is_not_quoted_at_a_new_session(client, services, phone, clock):
    enroll(client, services, phone)
    phone.text("INTENTION")
    phone.text("to be brave")
    first = phone.text("done")
    assert '"to be brave"' in first[1]
    clock.advance(days=90)
    later = phone.text("done")
    assert "brave" not in " ".join(later) and "images, memories" in later[1]


# ---------------------------------------------------------------- item 8: rejoin


def test_rejoining_after_delete_is_a_fresh_start(client, services, phone, clock, sender, db):
    enroll(client, services, phone)
    phone.text("TIMEZONE")
    phone.text("Europe/London")
    phone.text("done")  # a session whose plan DELETE cancels for good
    phone.text("DELETE")
    phone.text("DELETE")
    clock.advance(days=10)
    rejoin = phone.text("START")
    assert "Welcome back" not in " ".join(rejoin)
    assert "You're in" in rejoin[0] and "not encrypted" in rejoin[1]
    assert "Are you on Eastern time" in rejoin[2]  # set-up, not the invitation; not London
    follow = phone.text("yes")
    assert not any("Reply YES to join" in r for r in follow)
    with db.session() as s:
        p = s.scalars(select(Participant)).one()
        assert p.status == "active" and p.timezone == "America/New_York"
        assert p.consent_at == clock.now()
        assert s.scalar(select(func.count()).select_from(ScheduledMessage)
                        .where(ScheduledMessage.status == "pending")) == 0


# ---------------------------------------------------------------- item 11: plain answers


def test_bedtime_in_plain_words(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("BEDTIME")
    assert "12:00 AM" in phone.text("usually around midnight")[0]
    with db.session() as s:
        assert s.scalars(select(Participant)).one().bedtime == "00:00"


def test_not_yet_with_a_reason_answers_the_therapy_question(client, services, phone, clock,
                                                            sender):
    enroll(client, services, phone)
    phone.text("done")
    for answer in JOURNAL:
        phone.text(answer)
    drive_until(client, clock, clock.now() + timedelta(hours=3))
    assert any("Have you booked one?" in s.body for s in sender.sent)
    reply = phone.text("not yet, money is tight")
    assert "That's okay" in reply[0]


def test_next_tuesday_on_a_monday_is_next_weeks_and_is_confirmed(client, services, phone):
    enroll(client, services, phone)  # the clock says Monday Nov 23
    phone.text("SESSION")
    reply = phone.text("next tuesday at 6:30pm")[0]
    assert "Tue Dec 1 at 6:30 PM" in reply and "text SESSION to change it" in reply


def test_a_date_in_longer_words_is_read_by_the_host(client, services, phone):
    enroll(client, services, phone)
    phone.text("SESSION")
    reply = phone.text("December 8th at 6:30 pm")[0]
    assert "Tue Dec 8 at 6:30 PM" in reply


def test_travel_plans_do_not_switch_the_zone_yet(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("TIMEZONE")
    reply = phone.text("I'm traveling to Denver next week")
    assert "Safe travels" in reply[0] and "Eastern" in reply[0]
    with db.session() as s:
        assert s.scalars(select(Participant)).one().timezone == "America/New_York"


# ---------------------------------------------------------------- item 12: HELP


def test_help_lists_what_can_be_texted_within_the_limits(client, services, phone):
    enroll(client, services, phone)
    reply = phone.text("HELP")
    assert len(reply) == 2 and all(plain_and_short(r) for r in reply)
    for word in ("DONE", "INTENTION", "JOURNAL", "SKIP", "PAUSE", "RESUME", "SESSION",
                 "TIMEZONE", "BEDTIME", "THERAPIST", "MINDFULNESS", "DELETE", "STOP"):
        assert word in reply[1], word
