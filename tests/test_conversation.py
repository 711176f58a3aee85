"""End-to-end conversations through the signed webhook, on a real database."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.storage.models import JournalEntry, Message, Participant, ScheduledMessage, Session
from flows.state import ConversationState
from tests.conftest import PHONE


def enroll(client, services, phone, number=PHONE):
    """Invite via the operator command, then answer YES and the setup questions."""
    runner = client.application.test_cli_runner()
    result = runner.invoke(args=["enroll", number, "--tz", "America/New_York", "--name", "Sam"])
    assert result.exit_code == 0, result.output
    first = phone.text("YES")
    phone.text("yes")  # time zone confirmed
    phone.text("10:30pm")
    phone.text("yes")  # has a therapist
    last = phone.text("skip")
    return first, last


def count(db, model, **where):
    """Rows of model matching where."""
    with db.session() as s:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return s.scalar(query)


def test_enroll_yes_done_five_answers_closing(client, services, phone, sender, db):
    first, last = enroll(client, services, phone)
    invite = sender.sent[0]
    assert invite.to == PHONE and "Reply YES" in invite.body and "Sam" in invite.body
    assert "Msg & data rates may apply" in first[0] and "STOP" in first[0]
    assert "not encrypted" in first[1]
    assert "time zone" in first[2]
    assert "All set" in last[0]

    done = phone.text("Done!")
    assert "rest" in done[0].lower()
    assert "images, memories or feelings" in done[1]
    answers = ["I saw the ocean and my grandmother", "I am allowed to rest",
               "Let go of rushing, bring more music", "Lighter, less foggy",
               "Call my brother on Sunday"]
    replies = [phone.text(a) for a in answers]
    assert "clarity or insight" in replies[0][0]
    assert "48 hours" in replies[-1][0] and "alcohol" in replies[-1][0]
    assert count(db, JournalEntry) == 5
    with db.session() as s:
        session = s.scalars(select(Session)).one()
        assert session.done_at is not None and session.action == "Call my brother on Sunday"
        p = s.scalars(select(Participant)).one()
        assert p.status == "active" and p.bedtime == "22:30" and p.has_therapist is True
        assert p.consent_version and p.consent_at is not None
    assert count(db, ScheduledMessage, status="pending") >= 5


def test_journal_reads_back_the_session_in_the_order_it_was_written(client, services, phone):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    phone.text("rest is allowed")
    text = phone.text("JOURNAL")[0]
    assert "Came up: the ocean\nInsight: rest is allowed" in text


def test_intention_is_quoted_in_first_journal_question(client, services, phone):
    enroll(client, services, phone)
    assert "intention" in phone.text("INTENTION")[0]
    saved = phone.text("I'm open to whatever needs to be seen")
    assert "open to whatever" in saved[0] and "DONE" in saved[0]
    done = phone.text("DONE")
    assert "open to whatever needs to be seen" in done[1]


def test_stop_confirms_once_then_silence_until_start(client, services, phone, db, sender):
    enroll(client, services, phone)
    phone.text("done")
    assert count(db, ScheduledMessage, status="pending") > 0
    stop = phone.text("STOP")
    assert len(stop) == 1 and "unsubscribed" in stop[0]
    assert count(db, ScheduledMessage, status="pending") == 0
    assert phone.text("hello?") == []
    assert phone.text("done") == []
    back = phone.text("START")
    assert "Welcome back" in back[0]


def test_plain_language_stop_request_opts_out(client, services, phone, db):
    enroll(client, services, phone)
    assert "unsubscribed" in phone.text("please stop texting me")[0]
    with db.session() as s:
        assert s.scalars(select(Participant)).one().status == "opted_out"


def test_keyword_inside_an_answer_is_an_answer(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    reply = phone.text("I'm done with my old job, that's what came up")
    assert "clarity or insight" in reply[0]
    assert count(db, Session) == 1
    with db.session() as s:
        assert s.scalars(select(JournalEntry)).one().prompt == "images"


def test_done_mid_journal_repeats_the_question(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    phone.text("the ocean")
    again = phone.text("done")
    assert "2 of 5" in again[0] and "clarity or insight" in again[1]
    assert count(db, Session) == 1


def test_skip_moves_on_without_storing(client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    assert "clarity or insight" in phone.text("SKIP")[0]
    assert count(db, JournalEntry) == 0


def test_help_names_program_contact_and_emergency_line(client, services, phone):
    text = phone.text("HELP")[0]
    assert "555-0100" in text and "988" in text and "911" in text and "STOP" in text


def test_unknown_number_gets_a_neutral_reply_and_no_conversation(client, phone, db, sender):
    # Issue 10, item 10: a stranger was told "your clinic set you up".
    for text in ("hi who is this", "yes", "done"):
        reply = phone.text(text)
        assert len(reply) == 1 and "isn't enrolled" in reply[0] and "clinic" in reply[0]
        assert "set you up" not in reply[0]
    assert count(db, Session) == 0 and count(db, ScheduledMessage) == 0
    with db.session() as s:
        p = s.scalars(select(Participant)).one()
        assert p.status == "unenrolled" and p.consent_at is None
        assert ConversationState.from_dict(p.state) == ConversationState()  # nothing kept
    assert sender.sent == []
    # Once the clinic enrolls the number, the invitation goes out and YES works.
    runner = client.application.test_cli_runner()
    assert runner.invoke(args=["enroll", PHONE]).exit_code == 0
    assert "Reply YES" in sender.sent[0].body
    assert "You're in" in phone.text("YES")[0]


def test_invited_number_gets_nothing_more_before_yes(client, phone, db, sender):
    runner = client.application.test_cli_runner()
    assert runner.invoke(args=["enroll", PHONE]).exit_code == 0
    assert "reply YES" in phone.text("what?")[0]
    assert phone.text("done")[0].startswith("To start")
    assert count(db, Session) == 0
    assert len(sender.sent) == 1


def test_replayed_message_sid_gets_same_reply_and_changes_nothing(client, services, phone, db):
    enroll(client, services, phone)
    params = phone.params("done")
    first = phone.post(params)
    again = phone.post(params)
    assert first.data == again.data
    assert count(db, Session) == 1
    assert count(db, Message, direction="in", twilio_sid=params["MessageSid"]) == 1


def test_forged_signature_gets_403_and_stores_nothing(client, phone, db):
    params = phone.params("hello")
    assert phone.post(params, signature="forged").status_code == 403
    assert phone.post(params, sign=False).status_code == 403
    # A real signature over different fields: someone changed the body in transit.
    from twilio.request_validator import RequestValidator

    from tests.conftest import AUTH_TOKEN

    good = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/twilio/sms", params)
    tampered = {**params, "Body": "STOP"}
    assert phone.post(tampered, signature=good).status_code == 403
    wrong_key = RequestValidator("other-token").compute_signature(
        "http://localhost/twilio/sms", params)
    assert phone.post(params, signature=wrong_key).status_code == 403
    assert count(db, Message) == 0 and count(db, Participant) == 0


def test_odd_inputs_never_500(client, services, phone, db):
    enroll(client, services, phone)
    cases = ["", "   ", "\U0001F642\U0001F642", "x" * 1600, "  done.  ", "DONE", "Done!",
             "caf\u00e9 \u2014 \u201cquotes\u201d", "\x00weird"]
    for body in cases:
        response = phone.post(phone.params(body))
        assert response.status_code == 200, body
    media = phone.post(phone.params("", NumMedia="1", MediaUrl0="https://x/y.jpg",
                                    MediaContentType0="image/jpeg", Extra="field"))
    assert media.status_code == 200 and b"only read text" in media.data


def test_invalid_from_gets_clear_400(client, phone, db):
    params = phone.params("hello")
    params["From"] = "not-a-number"
    response = phone.post(params)
    assert response.status_code == 400 and b"From" in response.data
    assert count(db, Message) == 0


def test_whatsapp_channel_is_kept(client, services, db):
    from tests.conftest import Phone

    wa = Phone(client, number="whatsapp:+15551230000")
    assert "isn't enrolled" in wa.text("hello")[0]
    with db.session() as s:
        assert s.scalars(select(Participant)).one().channel == "whatsapp"
