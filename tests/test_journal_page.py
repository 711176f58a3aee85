"""JOURNAL end to end through the signed webhook: the SMS digest without a public address,
the private journal page with one, its revocation, expiry, headers, audit and additions."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text
from twilio.request_validator import RequestValidator

from bot.storage.models import AuditRecord, JournalEntry, JournalLink
from flows import sms_text
from tests.conftest import Phone, make_settings
from tests.test_conversation import enroll

BASE = "https://notes.example-clinic.org"

LONG_ANSWERS = [
    "I saw my grandmother's kitchen, the yellow curtains and the radio, and I felt held in a way "
    "I had not felt since I was a child. Then the scene dissolved into warm light and quiet.",
    "That I have been carrying my father's disappointment as if it were mine, and it is not. "
    "I can set it down and still love him. That felt enormous and also very simple.",
    "Let go of checking my phone first thing in the morning; bring more slow walks, more "
    "cooking with friends, more evenings where nothing has to be accomplished at all.",
    "I feel less braced. My shoulders dropped. The voice that says I am behind is quieter, and "
    "when it comes back I can notice it instead of obeying it right away.",
    "Call my sister on Sunday and tell her about the kitchen memory.",
]


class PublicPhone(Phone):
    """A phone whose texts are signed for PUBLIC_BASE_URL, as Twilio signs them."""

    def post(self, params: dict, *, sign: bool = True, signature: str | None = None,
             path: str = "/twilio/sms"):
        signature = signature or RequestValidator(self.token).compute_signature(
            BASE + path, params)
        return self.client.post(path, data=params, headers={"X-Twilio-Signature": signature})


@pytest.fixture
def linked(tmp_path, db, clock, sender, client_for):
    """An app with PUBLIC_BASE_URL set: JOURNAL answers with a link."""
    from bot.services import build_services

    settings = make_settings(tmp_path, db.url, public_base_url=BASE)
    services = build_services(settings, clock=clock, sender=sender, db=db)
    client = client_for(services)
    return client, services, PublicPhone(client)


def journal_session(phone, answers, intention=None):
    """Optionally set an intention, then DONE and answer every journaling question."""
    if intention:
        phone.text("INTENTION")
        phone.text(intention)
    phone.text("DONE")
    for answer in answers:
        phone.text(answer)


def link_path(reply: str) -> str:
    """The path of the journal link in a reply."""
    match = re.search(re.escape(BASE) + r"(/j/[A-Za-z0-9_.\-]+)", reply)
    assert match, reply
    return match.group(1)


# ---------------------------------------------------------------- the SMS digest


def test_journal_by_sms_sends_every_answer_whole_and_reaches_older_sessions(
        client, services, phone, clock):
    enroll(client, services, phone)
    journal_session(phone, ["first session memories of the sea"] + ["an older answer"] * 4,
                    intention="stay curious")
    clock.advance(days=7)
    journal_session(phone, LONG_ANSWERS, intention="be gentle with myself")
    clock.advance(days=7)
    journal_session(phone, [a.upper() for a in LONG_ANSWERS])

    texts = phone.text("JOURNAL")
    assert 2 <= len(texts) <= 5
    for reply in texts:
        assert sms_text.segments(reply) <= 2, reply
        assert "more in your journal" not in reply
    joined = " ".join(" ".join(texts).split())
    # The newest session comes first, and each of its answers arrives whole.
    assert joined.index(LONG_ANSWERS[0].upper()) < joined.index("be gentle with myself")
    for answer in LONG_ANSWERS:
        assert " ".join(answer.upper().split()) in joined
    # What did not fit is one keyword away, not lost.
    assert "text JOURNAL 2" in texts[-1]
    older = " ".join(" ".join(phone.text("JOURNAL 2")).split())
    assert "first session memories of the sea" in older + joined
    assert "stay curious" in older + joined
    assert "all of your notes" in phone.text("journal 9")[0]


def test_journal_by_sms_without_notes_says_how_to_start(client, services, phone):
    enroll(client, services, phone)
    assert "text DONE" in phone.text("JOURNAL")[0]


# ---------------------------------------------------------------- the journal page


def test_journal_link_opens_every_session_privately_and_is_audited(linked, db, clock):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, ["an older memory of snow"] * 5, intention="stay curious")
    clock.advance(days=7)
    journal_session(phone, LONG_ANSWERS, intention="be gentle with myself")
    phone.text("still thinking about the kitchen")  # a note outside any flow

    reply = phone.text("JOURNAL")
    assert len(reply) == 1 and sms_text.segments(reply[0]) <= 2
    assert "ketamine" not in reply[0].lower() and "24 hours" in reply[0]
    response = client.get(link_path(reply[0]))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for answer in LONG_ANSWERS:
        assert answer.replace("'", "&#39;") in page
    assert "still thinking about the kitchen" in page
    assert page.index("be gentle with myself") < page.index("stay curious")  # newest first
    assert "an older memory of snow" in page
    assert "What do you want to let go of?" in page  # each answer with its question
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert '<meta name="robots" content="noindex' in page
    with db.session() as s:
        actions = list(s.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))
    assert actions.count("journal.view") == 1 and "journal.link" in actions


def test_journal_text_download_holds_everything(linked, clock):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS, intention="be gentle with myself")
    response = client.get(link_path(phone.text("JOURNAL")[0]) + "/journal.txt")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="journal-2026-11-23.txt"'
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    assert "be gentle with myself" in body
    for answer in LONG_ANSWERS:
        assert answer in body


def test_a_link_stops_working_after_24_hours_a_new_link_stop_and_delete(linked, clock):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)

    first = link_path(phone.text("JOURNAL")[0])
    assert client.get(first).status_code == 200
    second = link_path(phone.text("JOURNAL")[0])
    assert client.get(first).status_code == 404  # replaced by the new link
    assert client.get(second).status_code == 200

    clock.advance(hours=23, minutes=59)
    assert client.get(second).status_code == 200
    clock.advance(minutes=2)
    gone = client.get(second)
    assert gone.status_code == 404 and LONG_ANSWERS[0][:20] not in gone.get_data(as_text=True)
    assert gone.headers["Cache-Control"] == "no-store"

    third = link_path(phone.text("JOURNAL")[0])
    phone.text("STOP")
    assert client.get(third).status_code == 404
    phone.text("START")
    assert client.get(third).status_code == 404  # coming back does not revive it
    fourth = link_path(phone.text("JOURNAL")[0])
    assert client.get(fourth).status_code == 200
    phone.text("DELETE")
    assert client.get(fourth).status_code == 200  # only asked: nothing changes yet
    assert "erased" in phone.text("DELETE")[0]
    assert client.get(fourth).status_code == 404


def test_a_tampered_or_made_up_link_shows_nothing(linked, db):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)
    path = link_path(phone.text("JOURNAL")[0])
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (f"/j/{tampered}", "/j/x", "/j/" + "A" * 60, f"/j/{tampered}/journal.txt"):
        response = client.get(bad)
        assert response.status_code == 404
        assert "kitchen" not in response.get_data(as_text=True)
    # Another participant's link id signed by nobody: still nothing.
    with db.session() as s:
        assert s.scalar(select(JournalLink.id)) is not None
    assert client.post(f"/j/{tampered}/add", data={"target": "session:1",
                                                   "text": "x"}).status_code == 404


def test_additions_from_the_page_need_the_form_token_and_are_stored_encrypted(linked, db):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)
    path = link_path(phone.text("JOURNAL")[0])
    page = client.get(path).get_data(as_text=True)
    entry_id = re.search(r'name="target" value="entry:(\d+)"', page).group(1)
    session_id = re.search(r'name="target" value="session:(\d+)"', page).group(1)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)

    forged = client.post(f"{path}/add", data={"target": f"entry:{entry_id}",
                                               "text": "planted text"})
    assert forged.status_code == 400
    added = client.post(f"{path}/add", data={"target": f"entry:{entry_id}", "csrf_token": csrf,
                                              "text": "and the smell of bread"})
    assert added.status_code == 303
    note = client.post(f"{path}/add", data={"target": f"session:{session_id}",
                                             "csrf_token": csrf, "text": "a note from later"})
    assert note.status_code == 303
    page = client.get(path).get_data(as_text=True)
    assert "Added" in page and "and the smell of bread" in page
    assert "a note from later" in page and "planted text" not in page
    with db.session() as s:
        raw = " ".join(s.execute(text("select text from journal_entries")).scalars())
        assert "smell of bread" not in raw and "note from later" not in raw
        assert s.scalar(select(JournalEntry.text).where(
            JournalEntry.prompt == "images", JournalEntry.id != int(entry_id))
        ) == "and the smell of bread"


def test_cannot_add_to_someone_elses_answer(linked, db):
    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)
    mine = link_path(phone.text("JOURNAL")[0])
    other = PublicPhone(client, number="+15557770000")
    enroll(client, services, other, number="+15557770000")
    journal_session(other, ["their own words"] * 5)
    theirs = client.get(link_path(other.text("JOURNAL")[0])).get_data(as_text=True)
    their_entry = re.search(r'value="entry:(\d+)"', theirs).group(1)
    page = client.get(mine).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(f"{mine}/add", data={"target": f"entry:{their_entry}",
                                                 "csrf_token": csrf, "text": "intruder"})
    assert response.status_code == 404
    with db.session() as s:
        assert "intruder" not in list(s.scalars(select(JournalEntry.text)))


def test_production_with_a_public_address_needs_a_secret_key(tmp_path):
    from cryptography.fernet import Fernet

    from bot.config import ConfigError, Settings

    base = dict(env="production", database_url="sqlite://", redis_url="redis://x",
                twilio_account_sid="AC1", twilio_auth_token="t", twilio_from_number="+15005550006",
                journal_encryption_key=Fernet.generate_key().decode(), phone_hash_key="p",
                public_base_url=BASE, care_team_numbers=("+15557654321",),
                clinic_contact="555-0100")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings(**base).check()
    Settings(**base, secret_key="s" * 32).check()



def test_journal_tokens_never_reach_a_log_line(linked, caplog):
    import logging

    from bot.logsafe import PhiFilter

    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)
    path = link_path(phone.text("JOURNAL")[0])
    token = path.rsplit("/", 1)[1]
    # gunicorn's access line for an opening, through the filter every handler carries
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1,
                               "%s %s %s", ("GET", path + "/journal.txt", "200"), None)
    PhiFilter().filter(record)
    assert token not in record.getMessage() and "/j/***" in record.getMessage()
    assert token not in caplog.text


def test_a_carrier_opt_out_ends_the_link_for_good(linked, db):
    from bot.storage.models import Message

    client, services, phone = linked
    enroll(client, services, phone)
    journal_session(phone, LONG_ANSWERS)
    path = link_path(phone.text("JOURNAL")[0])
    with db.session() as s:
        sid = s.scalars(select(Message.twilio_sid).where(Message.direction == "out",
                                                         Message.status == "sent")).first()
    assert sid
    report = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610",
              "AccountSid": "AC"}
    assert phone.post(report, path="/twilio/status").status_code == 204
    assert client.get(path).status_code == 404
    phone.text("START")
    assert client.get(path).status_code == 404
