"""The safety net, consent and privacy, through the real webhook and database."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bot.config import ConfigError, Settings
from bot.storage.models import (
    Alert,
    AuditRecord,
    JournalEntry,
    Message,
    Participant,
    ScheduledMessage,
    Session,
)
from tests.conftest import PHONE, Phone
from tests.test_conversation import count, enroll
from tests.test_nudges import drive_until, report

CARE_TEAM = "+15557654321"


def pages(sender) -> list[str]:
    """Texts that went to the care team."""
    return [s.body for s in sender.sent if s.to == CARE_TEAM]


def test_crisis_text_gets_988_in_the_same_response_and_pages_care_team(
        client, services, phone, sender, db):
    enroll(client, services, phone)
    phone.text("done")
    texts = phone.text("I want to kill myself tonight")
    assert "988" in texts[0] and "741741" in texts[0] and "911" in texts[0]
    assert len(texts) == 1, "no cheerful next question after a crisis reply"
    page = pages(sender)
    assert len(page) == 1 and "CRISIS" in page[0] and "kill" not in page[0]
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert alert.level == "crisis" and alert.status == "open"
    # The journal is suspended, not advanced: the next words are not its answer.
    after = phone.text("I'm safe, my partner is with me")
    assert len(after) == 1 and "CONTINUE" in after[0] and "988" in after[0]
    with db.session() as s:
        assert not s.scalars(select(JournalEntry).where(JournalEntry.prompt != "note")).all()
    # CONTINUE picks it up at the question where it stopped.
    assert "images, memories or feelings" in phone.text("CONTINUE")[0]


def test_open_alert_pages_again_until_acknowledged(client, services, phone, sender, clock):
    enroll(client, services, phone)
    phone.text("I took the whole bottle of pills")
    assert len(pages(sender)) == 1
    drive_until(client, clock, clock.now() + timedelta(minutes=16), step=timedelta(minutes=1))
    from bot import alerts

    alerts.page_due(services, clock.now(), enqueue=False)
    assert len(pages(sender)) == 2
    runner = client.application.test_cli_runner()
    listing = runner.invoke(args=["alerts"])
    assert "crisis" in listing.output and "overdose" in listing.output
    alert_id = re.search(r"#(\d+) crisis", listing.output).group(1)
    assert runner.invoke(args=["alerts", "ack", alert_id, "--by", "dr-lee"]).exit_code == 0
    clock.advance(minutes=30)
    alerts.page_due(services, clock.now(), enqueue=False)
    assert len(pages(sender)) == 2
    assert "no open alerts" in runner.invoke(args=["alerts"]).output


def test_urgent_side_effect_asks_them_to_call_the_care_team(client, services, phone, sender,
                                                            db):
    enroll(client, services, phone)
    texts = phone.text("there's blood in my urine since yesterday")
    assert "your care team at 555-0100 today" in texts[0]
    assert "prescriber" not in texts[0].lower()  # a lock screen must not hint at medication
    assert "URGENT" in pages(sender)[0]


def test_crisis_holds_cheerful_nudges_for_a_day(client, services, phone, sender, clock):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("I don't want to be alive anymore")
    before = [s for s in sender.sent if s.to == PHONE]
    drive_until(client, clock, clock.now() + timedelta(hours=23), step=timedelta(hours=1))
    assert [s for s in sender.sent if s.to == PHONE] == before


def test_plain_language_requests_stop_everything(client, services, db):
    for n, request in enumerate(["please stop texting me", "unsubscribe me",
                                 "no more messages please"]):
        phone = Phone(client, number=f"+1555300{n:04d}")
        runner = client.application.test_cli_runner()
        assert runner.invoke(args=["enroll", phone.number]).exit_code == 0
        phone.text("yes")
        assert "unsubscribed" in phone.text(request)[0]
        assert phone.text("hello") == []


def test_twilio_opt_out_type_is_honoured(client, services, phone, db):
    enroll(client, services, phone)
    assert "unsubscribed" in phone.text("arret", OptOutType="STOP")[0]
    with db.session() as s:
        assert s.scalars(select(Participant)).one().status == "opted_out"


def test_consent_record_has_time_channel_and_wording_version(client, services, phone, db):
    enroll(client, services, phone)
    with db.session() as s:
        p = s.scalars(select(Participant)).one()
        assert p.consent_at is not None and p.consent_channel == "sms"
        assert p.consent_version == services.definitions.wording_version


def test_logs_hold_no_bodies_and_no_full_numbers(client, services, phone, caplog):
    caplog.set_level(logging.DEBUG)
    enroll(client, services, phone)
    words = ["zanzibarquill", "marmaladecomet", "periwinkleoath", "obsidianfable",
             "tangerinevow"]
    phone.text("INTENTION")
    phone.text(f"I want {words[0]}")
    phone.text("done")
    for word in words[1:]:
        phone.text(f"thinking about {word}")
    phone.text("I want to die " + words[0])
    client.application.test_cli_runner().invoke(args=["participant", PHONE, "--json"])
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records, "the conversation logged nothing at all"
    for word in words:
        assert word not in logged
    assert PHONE not in logged and PHONE[1:] not in logged


def test_database_file_holds_no_journal_text_or_numbers(client, services, phone, db):
    if not db.url.startswith("sqlite"):
        return  # the raw file check is SQLite's; PostgreSQL gets the column check below
    enroll(client, services, phone)
    phone.text("done")
    phone.text("secretmeadowlark and my mother")
    phone.text("INTENTION")
    phone.text("hiddenlanternvow")
    db.engine.dispose()
    folder = Path(db.url.split("///", 1)[1]).parent
    raw = b"".join(p.read_bytes() for p in folder.iterdir() if p.is_file())
    for secret in (b"secretmeadowlark", b"hiddenlanternvow", PHONE.encode(), PHONE[2:].encode()):
        assert secret not in raw


def test_raw_columns_are_ciphertext(client, services, phone, db):
    from sqlalchemy import text

    enroll(client, services, phone)
    phone.text("done")
    phone.text("secretmeadowlark")
    with db.engine.connect() as conn:
        rows = [r[0] for r in conn.execute(text("select text from journal_entries"))]
        phones = [r[0] for r in conn.execute(text("select phone from participants"))]
    assert rows and all("secretmeadowlark" not in r for r in rows)
    assert phones and all(PHONE not in p for p in phones)


def test_delete_leaves_nothing_personal_and_never_texts_again(client, services, phone, db,
                                                              clock, sender):
    enroll(client, services, phone)
    phone.text("INTENTION")
    phone.text("be gentle")
    phone.text("done")
    phone.text("the ocean")
    assert "DELETE again" in phone.text("DELETE")[0]
    assert "erased" in phone.text("delete")[0]
    with db.session() as s:
        p = s.scalars(select(Participant)).one()
        assert p.status == "deleted" and p.phone is None and p.name is None
        assert s.scalar(select(func.count()).select_from(JournalEntry)) == 0
        assert all(x.intention is None for x in s.scalars(select(Session)))
        assert all(m.body is None for m in s.scalars(select(Message)))
        assert all(r.status != "pending" and r.body is None
                   for r in s.scalars(select(ScheduledMessage)))
        assert s.scalars(select(AuditRecord).where(AuditRecord.action == "delete")).first()
    before = len(sender.sent)
    drive_until(client, clock, clock.now() + timedelta(hours=72), step=timedelta(hours=2))
    assert len(sender.sent) == before
    assert phone.text("hello") == []


def test_delete_needs_confirmation(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    phone.text("DELETE")
    assert "nothing was deleted" in phone.text("no wait")[0].lower()
    assert count(db, JournalEntry) == 1


def test_flood_gets_one_notice_then_quiet_and_nothing_is_lost(client, services, phone, db):
    enroll(client, services, phone)
    before = count(db, Message, direction="in")
    answers = [phone.text(f"message {n}") for n in range(40)]
    notices = [a for a in answers if a and "a lot of texts" in a[0]]
    assert len(notices) == 1
    assert all(a == [] for a in answers[answers.index(notices[0]) + 1:])
    assert count(db, Message, direction="in") - before == 40


def test_keys_rotate_reencrypts_under_the_new_key(client, services, phone, db, settings):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("secretmeadowlark")
    new_key = Fernet.generate_key().decode()
    from bot.crypto import Keyring, set_keyring

    set_keyring(Keyring([new_key, settings.journal_encryption_key]))
    result = client.application.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    set_keyring(Keyring([new_key]))  # the old key is gone now
    with db.session() as s:
        assert s.scalars(select(JournalEntry)).one().text == "secretmeadowlark"
        assert s.scalars(select(Participant)).one().phone == PHONE


def test_operator_views_are_audited(client, services, phone, db):
    enroll(client, services, phone)
    report(client)
    with db.session() as s:
        record = s.scalars(select(AuditRecord).where(
            AuditRecord.action == "participant.show")).one()
        assert record.actor and record.participant_id is not None


def test_production_refuses_to_start_without_secrets(tmp_path):
    base = dict(env="production", database_url="sqlite://", redis_url="redis://x",
                twilio_account_sid="AC1", twilio_auth_token="t", twilio_from_number="+15005550006",
                journal_encryption_key=Fernet.generate_key().decode(), phone_hash_key="p",
                secret_key="k" * 32, care_team_numbers=("+15557654321",),
                clinic_contact="555-0100")
    Settings(**base).check()
    for missing in ("twilio_auth_token", "journal_encryption_key", "phone_hash_key", "redis_url",
                    "secret_key", "care_team_numbers", "clinic_contact"):
        settings = Settings(**{**base, missing: () if missing == "care_team_numbers" else ""})
        try:
            settings.check()
        except ConfigError:
            continue
        raise AssertionError(f"production started without {missing}")


def test_media_only_gets_text_only_answer(client, services, phone):
    enroll(client, services, phone)
    texts = phone.text("", NumMedia="2")
    assert "only read text" in texts[0]


def test_status_callback_updates_delivery(client, services, phone, db, clock):
    enroll(client, services, phone)
    phone.text("done")
    drive_until(client, clock, clock.now() + timedelta(hours=3))
    with db.session() as s:
        row = s.scalars(select(ScheduledMessage).where(ScheduledMessage.status == "sent")).first()
        sid = row.twilio_sid
    callback = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC"}
    assert phone.post(callback, path="/twilio/status").status_code == 204
    assert phone.post({**callback, "MessageStatus": "sent"}, path="/twilio/status").status_code == 204
    assert phone.post(callback, path="/twilio/status", signature="bad").status_code == 403
    statuses = {r["status"] for r in report(client)["scheduled"]}
    assert "delivered" in statuses
