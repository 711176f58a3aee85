"""Smaller faults a participant or the care team would notice: a page that did not go out,
words renamed under a conversation in progress, and what the twilio SDK writes to the log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot import alerts
from bot.fake_twilio import FakeTwilio
from bot.sms import SendError, TwilioSender
from bot.storage.models import Alert, Participant
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.test_conversation import enroll
from tests.test_safety_net import pages


def test_a_page_no_care_team_number_took_is_sent_again_at_the_next_pass(
        client, services, phone, sender, clock):
    enroll(client, services, phone)
    sender.fail_with(SendError("retry", code=20503))  # the page's send fails
    phone.text("I took the whole bottle of pills")
    assert pages(sender) == []
    with services.db.session() as db:
        alert = db.scalars(select(Alert)).one()
        assert alert.page_count == 0 and alert.last_paged_at is None
    clock.advance(seconds=alerts.FIRST_PAGE_GRACE.total_seconds() + 1)
    alerts.page_due(services, clock.now(), enqueue=False)
    assert len(pages(sender)) == 1, "the care team waited 15 minutes for a failed page"


def test_a_journal_step_renamed_mid_conversation_ends_that_flow_gracefully(
        client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    with db.session() as s:
        p = s.scalars(select(Participant)).one()
        state = dict(p.state)
        assert state.get("flow") == "journal"
        state["step"] = "a_step_the_clinic_renamed"
        s.execute(update(Participant).values(state=state))
    again = phone.text("done")  # within the journal window: it used to crash here
    assert again, "no answer at all"
    note = phone.text("I slept well")
    assert note
    with db.session() as s:
        state = s.scalars(select(Participant)).one().state
    assert state.get("step") != "a_step_the_clinic_renamed"
    other = phone.text("HELP")
    assert any("STOP" in text for text in other)
    with db.session() as s:
        s.execute(update(Participant).values(state={"flow": "no_such_flow", "step": "x"}))
    assert phone.text("hello there")


def test_a_sent_text_writes_one_log_line_without_the_account_sid(caplog):
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006",
                              api_base_url=fake.base_url)
        with caplog.at_level(logging.INFO):
            sender.send("+15551234567", "hello")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert ACCOUNT_SID not in lines[0] and "hello" not in lines[0]


def test_sent_to_lists_a_recipients_texts_from_the_fake_providers_list():
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        sender = TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006",
                              api_base_url=fake.base_url)
        first = sender.send("+15551234567", "one")
        sender.send("+15557654321", "other person")
        second = sender.send("+15551234567", "two")
        today = datetime.now(UTC)
        listed = sender.sent_to("+15551234567", today - timedelta(days=1))
        assert [(m.sid, m.body) for m in listed] == [(second.sid, "two"), (first.sid, "one")]
        assert sender.sent_to("+15551234567", today + timedelta(days=2)) == []
