"""Opt-out outcomes end to end: signed webhook, database, the clock pass and the worker.

Each text sent after someone said stop can cost the clinic, so these follow what the
participant would see: the one question, the silence while it is open (nudges held,
not lost), the opt-out that cancels everything, and the setting offered instead of an
opt-out when they only want fewer or later texts.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot import scheduling
from bot.storage.models import Participant, ScheduledMessage
from tests.conftest import PHONE, Phone
from tests.test_conversation import enroll
from tests.test_nudges import drive_until, report
from tests.test_rq_delivery import (  # noqa: F401  (fixtures used by the RQ journey)
    clock_file,
    fake_twilio,
    rq_services,
    rq_settings,
    work_in_process,
)

QUESTION = "Reply STOP to stop all texts from Integration Companion."


def to_phone(sender, number: str = PHONE) -> list[str]:
    """Bodies the sender handed to Twilio for this number (nudges and REST replies)."""
    return [s.body for s in sender.sent if s.to == number]


def participant(db) -> Participant:
    """The one participant, as stored."""
    with db.session() as s:
        return s.scalars(select(Participant)).one()


def pending(client) -> list[dict]:
    """Scheduled rows still waiting to go out."""
    return [r for r in report(client)["scheduled"] if r["status"] == "pending"]


def test_uncertain_request_asks_once_holds_nudges_and_stop_cancels_them(
        client, services, phone, clock, sender, db):
    enroll(client, services, phone)
    phone.text("done")
    for _ in range(5):
        phone.text("skip")
    assert len(pending(client)) >= 5
    before = to_phone(sender)

    assert phone.text("not interested anymore") == [QUESTION]
    assert participant(db).status == "active" and participant(db).optout_asked_at is not None
    drive_until(client, clock, clock.now() + timedelta(hours=20), step=timedelta(hours=1))
    assert to_phone(sender) == before, "a nudge went out while the question was open"
    statuses = {r["status"] for r in report(client)["scheduled"]}
    assert "sent" not in statuses and pending(client)  # held (some expire), none sent

    assert "unsubscribed" in phone.text("STOP")[0]
    assert participant(db).status == "opted_out"
    assert pending(client) == []
    drive_until(client, clock, clock.now() + timedelta(hours=80), step=timedelta(hours=2))
    assert to_phone(sender) == before
    assert phone.text("hello?") == []


def test_no_settles_the_question_and_the_held_nudges_go_out(client, services, phone, clock,
                                                           sender, db):
    enroll(client, services, phone)
    phone.text("done")
    for _ in range(5):
        phone.text("skip")
    before = len(to_phone(sender))
    assert phone.text("this isn't for me") == [QUESTION]
    drive_until(client, clock, clock.now() + timedelta(hours=6), step=timedelta(hours=1))
    assert len(to_phone(sender)) == before
    assert "will continue" in phone.text("no, keep them")[0]
    assert participant(db).optout_asked_at is None
    drive_until(client, clock, clock.now() + timedelta(hours=30), step=timedelta(hours=1))
    assert len(to_phone(sender)) > before
    assert participant(db).status == "active"


def test_unanswered_question_lapses_after_24_hours(client, services, phone, clock, sender, db):
    enroll(client, services, phone)
    phone.text("done")
    for _ in range(5):
        phone.text("skip")
    asked_at = clock.now()
    before = len(to_phone(sender))
    assert phone.text("i'm done with this") == [QUESTION]
    drive_until(client, clock, asked_at + timedelta(hours=23, minutes=45),
                step=timedelta(minutes=15))
    assert len(to_phone(sender)) == before
    drive_until(client, clock, asked_at + timedelta(hours=48), step=timedelta(minutes=15))
    sent = [r for r in report(client)["scheduled"] if r["status"] == "sent"]
    assert sent and len(to_phone(sender)) == before + len(sent)  # all after the 24 hours
    assert participant(db).status == "active"


def test_clear_request_mid_journal_opts_out_at_once(client, services, phone, sender, db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    reply = phone.text("hey, thanks for everything, but please take me off the text list")
    assert len(reply) == 1 and "unsubscribed" in reply[0]
    assert participant(db).status == "opted_out"


def test_capital_stop_before_a_journal_sentence_asks_instead_of_opting_out(client, services,
                                                                           phone, db):
    enroll(client, services, phone)
    phone.text("done")
    assert phone.text("STOP being so hard on myself, that is what came up") == [QUESTION]
    assert participant(db).status == "active"
    kept = phone.text("no")
    assert "will continue" in kept[0] and "images, memories or feelings" in kept[1]


def test_spanish_keyword_at_any_time_gets_a_spanish_confirmation(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    help_es = phone.text("AYUDA")[0]
    assert "988" in help_es and "STOP" in help_es and "Contacto" in help_es
    reply = phone.text("PARAR")
    assert len(reply) == 1 and "te dimos de baja" in reply[0]
    assert participant(db).status == "opted_out"
    assert pending(client) == []


def test_spanish_uncertain_request_is_asked_in_spanish(client, services, phone, db):
    enroll(client, services, phone)
    assert phone.text("no me interesa") == [
        "Responde STOP para dejar de recibir todos los textos de Integration Companion."]
    assert "te dimos de baja" in phone.text("si")[0]
    assert participant(db).status == "opted_out"


def test_crisis_text_that_also_says_stop_gets_the_crisis_reply_first(client, services, phone,
                                                                     sender, db):
    enroll(client, services, phone)
    reply = phone.text("I want to die. stop texting me")
    assert "988" in reply[0]
    assert "unsubscribed" in reply[1]
    assert participant(db).status == "opted_out"


def test_a_setting_request_is_offered_the_setting_and_texts_continue(client, services, phone,
                                                                     db):
    enroll(client, services, phone)
    phone.text("done")
    for _ in range(5):
        phone.text("skip")
    waiting = len(pending(client))
    reply = phone.text("stop only the walk reminders, keep the mood ones")
    assert len(reply) == 1 and "PAUSE" in reply[0] and "STOP" in reply[0]
    assert "PAUSE 7" in phone.text("can we pause for a week while I'm away")[0]
    assert participant(db).status == "active" and participant(db).optout_asked_at is None
    assert len(pending(client)) == waiting


def test_question_holds_nudges_in_the_rq_worker_and_stop_cancels_them(
        rq_services, client_for, fake_twilio, clock_file):  # noqa: F811
    client = client_for(rq_services)
    phone = Phone(client)
    enroll(client, rq_services, phone)
    phone.text("done")
    with rq_services.db.session() as db:
        first = db.scalars(select(ScheduledMessage).where(ScheduledMessage.status == "pending")
                           .order_by(ScheduledMessage.due_at)).first()
        due_at, body = first.due_at, first.body
    assert phone.text("not interested") == [QUESTION]
    clock_file.set(due_at + timedelta(minutes=1))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert body not in [m["body"] for m in fake_twilio.messages], "sent while asking"
    assert "unsubscribed" in phone.text("yes")[0]
    clock_file.set(due_at + timedelta(hours=30))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert body not in [m["body"] for m in fake_twilio.messages]
    with rq_services.db.session() as db:
        rows = db.scalars(select(ScheduledMessage)).all()
        assert rows and not [r for r in rows if r.status in ("pending", "sending", "sent")]


def test_relative_says_the_owner_died_and_nothing_more_is_sent(client, services, phone, clock,
                                                               sender, db):
    enroll(client, services, phone)
    phone.text("done")
    assert pending(client)
    reply = phone.text("Hi, this is her daughter. The owner of this phone passed away. "
                       "Please remove the number.")
    assert len(reply) == 1 and "unsubscribed" in reply[0]
    assert participant(db).status == "opted_out" and pending(client) == []
    before = len(to_phone(sender))
    drive_until(client, clock, clock.now() + timedelta(days=3), step=timedelta(hours=1))
    assert len(to_phone(sender)) == before


def test_relative_saying_only_that_she_is_in_hospital_is_asked_once(client, services, phone,
                                                                    db):
    enroll(client, services, phone)
    phone.text("done")
    assert phone.text("she is in the hospital") == [QUESTION]
    assert participant(db).status == "active"
    assert "unsubscribed" in phone.text("yes")[0]
    assert participant(db).status == "opted_out"


def test_indirect_request_naming_the_texts_opts_out_at_once(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    reply = phone.text("I'm good without these texts now, thanks for everything")
    assert len(reply) == 1 and "unsubscribed" in reply[0]
    assert participant(db).status == "opted_out"


def test_spanish_speaker_opts_out_then_comes_back_with_alta(client, services, phone, clock,
                                                           sender, db):
    enroll(client, services, phone)
    phone.text("done")
    reply = phone.text("Mi mamá falleció. Por favor dejen de mandar mensajes a este número.")
    assert len(reply) == 1 and "te dimos de baja" in reply[0] and "ALTA" in reply[0]
    assert participant(db).status == "opted_out" and pending(client) == []
    before = len(to_phone(sender))
    drive_until(client, clock, clock.now() + timedelta(days=2), step=timedelta(hours=1))
    assert len(to_phone(sender)) == before  # silent while opted out
    assert phone.text("hola") == []  # nothing but ALTA/START/SI brings them back
    back = phone.text("ALTA")
    assert len(back) == 1 and back[0].startswith("Bienvenido de nuevo")
    assert participant(db).status == "active"
    phone.text("done")
    assert pending(client)  # nudges are planned again after the next session
    drive_until(client, clock, clock.now() + timedelta(days=2), step=timedelta(hours=1))
    assert len(to_phone(sender)) > before


def test_start_after_a_spanish_opt_out_is_answered_in_spanish_and_english_stays_english(
        client, services, phone, db):
    enroll(client, services, phone)
    assert "te dimos de baja" in phone.text("PARAR")[0]
    assert phone.text("START")[0].startswith("Bienvenido de nuevo")
    assert "unsubscribed" in phone.text("stop")[0]
    assert phone.text("START")[0].startswith("Welcome back")
    assert "unsubscribed" in phone.text("STOP")[0]
    assert phone.text("sí")[0].startswith("Bienvenido de nuevo")
    assert participant(db).status == "active"


def test_spanish_formal_revocation_opts_out_at_once_in_spanish(client, services, phone, clock,
                                                              sender, db):
    enroll(client, services, phone)
    phone.text("done")
    assert pending(client)
    reply = phone.text("A quien corresponda: queda revocado el permiso que di para recibir "
                       "mensajes. Solicito que cesen todas las comunicaciones.")
    assert len(reply) == 1 and "te dimos de baja" in reply[0]
    assert participant(db).status == "opted_out" and pending(client) == []
    before = len(to_phone(sender))
    drive_until(client, clock, clock.now() + timedelta(days=2), step=timedelta(hours=1))
    assert len(to_phone(sender)) == before


def test_caregiver_passing_on_the_owners_request_opts_out(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    reply = phone.text("I'm the caregiver for Ruth. She asked me to have these reminders "
                       "stopped.")
    assert len(reply) == 1 and "unsubscribed" in reply[0]
    assert participant(db).status == "opted_out"


def test_stop_as_delight_or_in_a_quoted_story_neither_opts_out_nor_asks(client, services,
                                                                        phone, db):
    enroll(client, services, phone)
    phone.text("done")
    waiting = len(pending(client))
    for text in ("oh stop, you flatter me", "¡para! qué bonito",
                 'My daughter said "mom, stop texting me so much" and I laughed'):
        assert QUESTION not in phone.text(text), text
        assert participant(db).status == "active" and participant(db).optout_asked_at is None
    assert len(pending(client)) == waiting


def test_a_pause_until_a_date_is_offered_pause_not_an_opt_out(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    # The journal that "done" opened carries on after the offer.
    reply = phone.text("I'm traveling next week, can you stop reminders just until the 15th?")
    assert "PAUSE" in reply[0] and QUESTION not in reply
    reply = phone.text("no me manden nada hasta el lunes, luego sigan normal")
    assert "PAUSE" in reply[0] and "descanso" in reply[0]
    assert participant(db).status == "active" and participant(db).optout_asked_at is None
