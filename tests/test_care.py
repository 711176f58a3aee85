"""The care console over Flask's test client: accounts, access, audit, handoff, export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pyotp
from sqlalchemy import func, select, text

from bot.sms import SendError
from bot.storage.models import (
    Alert,
    AlertNote,
    AlertSignal,
    AuditRecord,
    LoginFailure,
    Message,
    Participant,
    ScheduledMessage,
    StaffUser,
)
from tests.care_helpers import (
    ADMIN,
    CLINICIAN,
    PASSWORD,
    csrf_from,
    journal_and_checkin,
    login,
    make_staff,
    next_code,
    post_form,
)
from tests.conftest import PHONE
from tests.test_conversation import enroll
from tests.test_safety_path import CHECK_TEXT


def audit_actions(db, actor: str | None = None) -> list[tuple[str, int | None]]:
    """(action, participant) of every audit row, oldest first."""
    with db.session() as s:
        query = select(AuditRecord.action, AuditRecord.participant_id).order_by(AuditRecord.id)
        if actor:
            query = query.where(AuditRecord.actor == actor)
        return [tuple(row) for row in s.execute(query)]


def test_nothing_is_open_without_an_account(client, db):
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(StaffUser)) == 0
    for path in ("/care/", "/care/participants", "/care/inbox", "/care/audit", "/care/export.csv",
                 "/care/participants/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/care/login" in response.headers["Location"]
    page = client.get("/care/login")
    cookie = next(c for c in page.headers.getlist("Set-Cookie") if c.startswith("care_session="))
    assert page.status_code == 200
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_staff_add_prints_a_one_time_setup_link_that_enrols_totp(app, client, services, clock):
    result = app.test_cli_runner().invoke(args=["staff", "add", "Nurse@Harbor.example",
                                                "--role", "clinician"])
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert "/care/setup/" in link
    path = link[link.index("/care/setup/"):]
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<svg" in html and "nurse@harbor.example" in html
    with services.db.session() as s:
        user = s.scalars(select(StaffUser)).one()
        assert user.password_hash is None and user.setup_token_hash not in path
        secret = user.totp_secret
    # A wrong authenticator code keeps the link usable and sets no password.
    wrong = client.post(path, data={"csrf_token": csrf_from(html), "password": PASSWORD,
                                    "confirm": PASSWORD, "code": "000000"})
    assert "not right" in wrong.get_data(as_text=True)
    done = client.post(path, data={"csrf_token": csrf_from(html), "password": PASSWORD,
                                   "confirm": PASSWORD, "code": pyotp.TOTP(secret).at(clock.now())})
    assert done.status_code == 302 and done.headers["Location"].endswith("/care/login")
    with services.db.session() as s:
        user = s.scalars(select(StaffUser)).one()
        assert user.password_hash.startswith("$argon2") and user.setup_token_hash is None
    assert client.get(path).status_code == 404  # used once
    assert login(client, "nurse@harbor.example", secret, clock).status_code == 302
    assert client.get("/care/").status_code == 200


def test_wrong_code_is_refused_and_guessing_is_throttled(client, services, clock, db):
    secret = make_staff(services, CLINICIAN, "clinician")
    refused = login(client, CLINICIAN, secret, clock, code="123456")
    assert refused.status_code == 200 and "not right" in refused.get_data(as_text=True)
    assert client.get("/care/").status_code == 302
    for _ in range(4):
        login(client, CLINICIAN, secret, clock, password="wrong password guess")
    # Five failures: even the right password and code are refused for a while.
    locked = login(client, CLINICIAN, secret, clock)
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    assert client.get("/care/").status_code == 302
    clock.advance(minutes=16)
    assert login(client, CLINICIAN, secret, clock).status_code == 302
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 5
    assert ("login", None) in audit_actions(db, CLINICIAN)


def test_a_totp_code_works_once(client, services, clock):
    secret = make_staff(services, CLINICIAN, "clinician")
    code = next_code(secret, clock)
    assert login(client, CLINICIAN, secret, clock, code=code).status_code == 302
    post_form(client, "/care/", "/care/logout")
    again = login(client, CLINICIAN, secret, clock, code=code)
    assert again.status_code == 200 and client.get("/care/").status_code == 302


def test_idle_session_goes_back_to_login(client, services, clock):
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    clock.advance(minutes=14)
    assert client.get("/care/").status_code == 200  # activity keeps it alive
    clock.advance(minutes=14)
    assert client.get("/care/participants").status_code == 200
    clock.advance(minutes=16)
    expired = client.get("/care/", follow_redirects=True)
    assert "/care/login" in expired.request.path
    assert "15 minutes without activity" in expired.get_data(as_text=True)


def test_clinicians_are_refused_admin_pages(client, services, clock, db):
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    for path in ("/care/audit", "/care/export", "/care/export.csv", "/care/staff"):
        assert client.get(path).status_code == 403, path
    assert "Audit log" not in client.get("/care/").get_data(as_text=True)


def test_post_without_csrf_token_changes_nothing(client, services, clock, phone, db):
    enroll(client, services, phone)
    phone.text("I want to kill myself tonight")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        alert_id = s.scalars(select(Alert.id)).one()
    refused = client.post(f"/care/alerts/{alert_id}/ack", data={"note": "called"})
    assert refused.status_code == 400 and "Form refused" in refused.get_data(as_text=True)
    with db.session() as s:
        assert s.get(Alert, alert_id).status == "open"


def test_crisis_alert_on_now_page_acknowledged_with_a_note(client, services, clock, phone, db):
    enroll(client, services, phone)
    phone.text("I want to kill myself tonight")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    clock.advance(minutes=7)
    now_html = client.get("/care/").get_data(as_text=True)
    assert "crisis" in now_html and "Sam" in now_html and "open 7 min" in now_html
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
    response = post_form(client, "/care/", f"/care/alerts/{alert.id}/ack",
                         note="Called her, she is with her sister")
    assert response.status_code == 302
    with db.session() as s:
        assert s.get(Alert, alert.id).status == "acknowledged"
        assert s.get(Alert, alert.id).acked_by == CLINICIAN
        assert s.scalars(select(AlertNote.note)).one() == "Called her, she is with her sister"
    assert "No open alerts" in client.get("/care/").get_data(as_text=True)
    page = client.get(f"/care/participants/{alert.participant_id}").get_data(as_text=True)
    assert "Called her, she is with her sister" in page
    # The text that raised the alert is shown even though the journal is not shared.
    assert "I want to kill myself tonight" in page and "raised an alert" in page
    actions = audit_actions(db, CLINICIAN)
    assert ("now.view", None) in actions and ("alert.ack", alert.participant_id) in actions
    assert ("participant.view", alert.participant_id) in actions


def test_participant_page_keeps_journal_words_private_unless_shared(
        client, services, clock, phone, db):
    enroll(client, services, phone)
    phone.text("DONE")
    phone.text("I saw the ocean and my grandmother")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    page = client.get(f"/care/participants/{pid}").get_data(as_text=True)
    assert "I saw the ocean" not in page
    assert "Not shared with the care team" in page and "1 journal answer(s)" in page
    assert page.count("<svg") >= 2  # mood and reply charts, drawn server-side
    # Text SHARE, answer YES: the care team may now read the journal.
    assert "May your care team read your journal answers?" in phone.text("share")[0]
    assert "Text SHARE anytime" in phone.text("yes")[0]
    page = client.get(f"/care/participants/{pid}").get_data(as_text=True)
    assert "I saw the ocean and my grandmother" in page
    assert "Journal shared with the care team</dt><dd>yes" in page
    phone.text("SHARE")
    phone.text("no")
    assert "I saw the ocean" not in client.get(f"/care/participants/{pid}").get_data(as_text=True)


def test_clinic_default_can_share_journals(tmp_path, db, clock, sender):
    from bot import create_app
    from bot.services import build_services
    from tests.conftest import Phone, make_settings

    settings = make_settings(tmp_path, db.url, journal_share_default=True)
    services = build_services(settings, clock=clock, sender=sender, db=db)
    app = create_app(services=services)
    client = app.test_client()
    phone = Phone(client)
    enroll(client, services, phone)
    phone.text("DONE")
    phone.text("I saw the ocean and my grandmother")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    assert "I saw the ocean" in client.get(f"/care/participants/{pid}").get_data(as_text=True)


def test_mood_and_reply_charts_show_the_checkin(client, services, clock, phone, db):
    enroll(client, services, phone)
    journal_and_checkin(services, clock, phone, "2")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    page = client.get(f"/care/participants/{pid}").get_data(as_text=True)
    mood_svg = page[page.index('id="mood-chart"'):page.index('id="reply-chart"')]
    assert "<svg" in mood_svg and "No data" not in mood_svg and "<script" not in mood_svg
    assert "mood 2/5" in page
    listing = client.get("/care/participants").get_data(as_text=True)
    # one nudge answered (the check-in), latest mood 2
    assert "/ 0 / 1</td>" in listing and 'data-label="Latest mood">2</td>' in listing


def test_handoff_bot_steps_back_on_free_text_only(client, services, clock, phone, sender, db):
    enroll(client, services, phone)
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    participant_page = f"/care/participants/{pid}"
    post_form(client, participant_page, f"/care/inbox/{pid}/open")
    assert phone.text("I had a rough night, can someone call me?") == []
    assert "rough night" in client.get(f"/care/inbox/{pid}").get_data(as_text=True)
    help_reply = phone.text("HELP")
    assert help_reply and "555-0100" in " ".join(help_reply)
    crisis = phone.text("I want to kill myself tonight")
    assert crisis and "988" in crisis[0]

    before = len(sender.sent)
    sent = post_form(client, f"/care/inbox/{pid}", f"/care/participants/{pid}/text",
                     body="Hi Sam, this is Dana from the clinic. Calling you in 5 minutes.",
                     back="inbox")
    assert sent.status_code == 302
    new = sender.sent[before:]
    assert [t.to for t in new] == [PHONE] and "Dana from the clinic" in new[0].body
    with db.session() as s:
        row = s.scalars(select(Message).where(Message.key == "care.reply")).one()
        assert row.status == "sent" and row.body.startswith("Hi Sam")
        raw = s.execute(text("SELECT body FROM messages WHERE id = :id"), {"id": row.id}).scalar()
        assert "Dana" not in raw  # encrypted at rest

    post_form(client, f"/care/inbox/{pid}", f"/care/inbox/{pid}/close")
    assert phone.text("thanks, feeling better") != []  # the bot answers again
    actions = [a for a, _ in audit_actions(db, CLINICIAN)]
    for action in ("conversation.open", "conversation.view", "participant.text",
                   "conversation.close"):
        assert action in actions


def test_open_conversation_holds_nudges_and_closing_releases_them(
        client, services, clock, phone, sender, db):
    from bot import delivery

    enroll(client, services, phone)
    phone.text("DONE")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
        first = s.scalars(select(ScheduledMessage).where(ScheduledMessage.status == "pending")
                          .order_by(ScheduledMessage.due_at)).first()
        first_id, due = first.id, first.due_at
    post_form(client, f"/care/participants/{pid}", f"/care/inbox/{pid}/open")
    clock.set(due)
    delivery.deliver_batch(services, [first_id])
    with db.session() as s:
        held = s.get(ScheduledMessage, first_id)
        assert held.status == "pending" and held.due_at > clock.now()
    login(client, CLINICIAN, secret, clock)  # hours went by: the idle session ended
    post_form(client, f"/care/inbox/{pid}", f"/care/inbox/{pid}/close")
    with db.session() as s:
        released = s.get(ScheduledMessage, first_id)
        assert released.due_at <= clock.now()
    before = len(sender.sent)
    outcome = delivery.deliver_batch(services, [first_id])
    assert outcome.get("sent") == 1 and len(sender.sent) == before + 1


def test_participants_list_search_sort_and_enroll(client, services, clock, phone, sender, db):
    enroll(client, services, phone)
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    response = post_form(client, "/care/participants", "/care/participants/enroll",
                         phone="+1 555 987 6543", name="Ria", timezone="America/Chicago")
    assert response.status_code == 302
    assert sender.sent[-1].to == "+15559876543" and "Ria" in sender.sent[-1].body
    listing = client.get("/care/participants?sort=name&dir=asc").get_data(as_text=True)
    assert listing.index(">Ria<") < listing.index(">Sam<")
    listing = client.get("/care/participants?sort=name&dir=desc").get_data(as_text=True)
    assert listing.index(">Sam<") < listing.index(">Ria<")
    found = client.get("/care/participants?q=ria").get_data(as_text=True)
    assert "Ria" in found and "Sam" not in found
    by_digits = client.get("/care/participants?q=4567").get_data(as_text=True)
    assert "Sam" in by_digits and "Ria" not in by_digits
    again = post_form(client, "/care/participants", "/care/participants/enroll",
                      phone="+15551234567")
    assert again.status_code == 302
    assert "already active" in client.get("/care/participants").get_data(as_text=True)
    bad = post_form(client, "/care/participants", "/care/participants/enroll", phone="12")
    assert bad.status_code == 302
    assert "Not invited" in client.get("/care/participants").get_data(as_text=True)


def test_admin_export_and_audit_log(client, services, clock, phone, db):
    enroll(client, services, phone)
    phone.text("DONE")
    secret = make_staff(services, ADMIN, "admin")
    login(client, ADMIN, secret, clock)
    full = client.get("/care/export.csv")
    rows = list(csv.DictReader(io.StringIO(full.get_data(as_text=True))))
    assert rows and rows[0]["name"] == "Sam" and rows[0]["phone_last4"] == "4567"
    assert rows[0]["sessions_done"] == "1"
    anonymous = client.get("/care/export.csv?anonymous=1").get_data(as_text=True)
    assert "Sam" not in anonymous and "4567" not in anonymous
    assert "sessions_done" in anonymous.splitlines()[0]
    log = client.get("/care/audit?action=export").get_data(as_text=True)
    assert "export.csv.anonymous" in log and "participant.view" not in log
    assert ("audit.view", None) in audit_actions(db, ADMIN)


def test_admin_adds_staff_and_deactivation_signs_them_out(app, services, clock, db):
    admin = app.test_client()
    admin_secret = make_staff(services, ADMIN, "admin")
    login(admin, ADMIN, admin_secret, clock)
    page = post_form(admin, "/care/staff", "/care/staff", email="new@harbor.example",
                     role="clinician")
    assert "/care/setup/" in page.get_data(as_text=True)
    other = app.test_client()
    secret = make_staff(services, CLINICIAN, "clinician")
    login(other, CLINICIAN, secret, clock)
    assert other.get("/care/").status_code == 200
    with db.session() as s:
        clinician_id = s.scalars(select(StaffUser.id).where(StaffUser.email == CLINICIAN)).one()
    post_form(admin, "/care/staff", f"/care/staff/{clinician_id}/deactivate")
    assert other.get("/care/").status_code == 302


def test_stop_still_works_while_a_clinician_has_the_conversation(client, services, clock,
                                                                 phone, db):
    enroll(client, services, phone)
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    post_form(client, f"/care/participants/{pid}", f"/care/inbox/{pid}/open")
    assert phone.text("STOP")  # the opt-out confirmation still goes out
    with db.session() as s:
        assert s.get(Participant, pid).status == "opted_out"
    refused = post_form(client, f"/care/inbox/{pid}", f"/care/participants/{pid}/text",
                        body="Are you there?", back="inbox")
    assert refused.status_code == 302
    assert "cannot text a participant who is opted_out" in client.get(
        f"/care/inbox/{pid}").get_data(as_text=True)


def test_now_page_lists_participants_who_stopped_replying(client, services, clock, phone, db):
    from bot import delivery, scheduling

    enroll(client, services, phone)
    phone.text("DONE")
    secret = make_staff(services, CLINICIAN, "clinician")
    for _ in range(4):  # four days of nudges, none answered
        clock.advance(days=1)
        while ids := scheduling.all_due_ids(services, clock.now(), limit=100):
            if set(delivery.deliver_batch(services, ids)) <= {"deferred", "skipped"}:
                break
    with db.session() as s:
        sent = s.scalar(select(func.count()).select_from(ScheduledMessage).where(
            ScheduledMessage.status == "sent"))
    assert sent >= services.settings.care_silent_after
    login(client, CLINICIAN, secret, clock)
    html = client.get("/care/").get_data(as_text=True)
    assert "Stopped replying (1)" in html
    phone.text("sorry, busy week")
    assert "Stopped replying (0)" in client.get("/care/").get_data(as_text=True)


def test_production_needs_a_secret_key_and_sends_secure_cookies(tmp_path, db):
    from bot import create_app
    from bot.config import ConfigError
    from bot.services import build_services
    from tests.conftest import make_settings

    base = dict(env="production", redis_url="redis://127.0.0.1:1/0")
    try:
        make_settings(tmp_path, db.url, **base).check()
    except ConfigError as exc:
        assert "SECRET_KEY" in str(exc)
    else:
        raise AssertionError("production started without SECRET_KEY")
    settings = make_settings(tmp_path, db.url, secret_key="s" * 40, **base)
    app = create_app(services=build_services(settings, db=db))
    page = app.test_client().get("/care/login")
    cookie = next(c for c in page.headers.getlist("Set-Cookie") if c.startswith("care_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_migrations_create_exactly_the_models(db):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.models import Base

    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_console_forms_work_over_https_with_the_browsers_referer(app, services, clock):
    # Over HTTPS Flask-WTF also wants a same-site Referer: the console's Referrer-Policy
    # (same-origin) must let the browser send it, or every form would fail in production.
    client = app.test_client()
    secret = make_staff(services, CLINICIAN, "clinician")
    base = "https://care.example"
    page = client.get("/care/login", base_url=base)
    assert page.headers["Referrer-Policy"] == "same-origin"
    signed_in = client.post("/care/login", base_url=base,
                            headers={"Referer": f"{base}/care/login"},
                            data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                  "email": CLINICIAN, "password": PASSWORD,
                                  "code": next_code(secret, clock)})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/care/"
    forged = client.post("/care/logout", base_url=base, headers={"Referer": "https://evil.example/"},
                         data={"csrf_token": csrf_from(client.get("/care/", base_url=base)
                                                       .get_data(as_text=True))})
    assert forged.status_code == 400


def test_staff_text_goes_out_with_a_status_callback_and_shows_delivery(tmp_path, db, clock,
                                                                        sender):
    import uuid

    from twilio.request_validator import RequestValidator

    from bot import create_app
    from bot.enrollment import invite
    from bot.services import build_services
    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, make_settings

    public = "https://bot.example"
    services = build_services(make_settings(tmp_path, db.url, public_base_url=public),
                              clock=clock, sender=sender, db=db)
    client = create_app(services=services).test_client()

    def twilio_post(path: str, params: dict):
        signature = RequestValidator(AUTH_TOKEN).compute_signature(public + path, params)
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    pid = invite(services, PHONE, name="Sam")
    twilio_post("/twilio/sms", {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID,
                                "From": PHONE, "To": "+15005550006", "Body": "YES"})
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    post_form(client, f"/care/participants/{pid}", f"/care/inbox/{pid}/open")
    post_form(client, f"/care/inbox/{pid}", f"/care/participants/{pid}/text",
              body="Checking in from the clinic \u2013 how are you?", back="inbox")
    sent = sender.sent[-1]
    assert sent.status_callback == f"{public}/twilio/status"
    page = client.get(f"/care/inbox/{pid}").get_data(as_text=True)
    assert "characters outside GSM-7" in page  # warned, and still sent
    assert "delivered" not in page
    with db.session() as s:
        sid = s.scalars(select(Message.twilio_sid).where(Message.key == "care.reply")).one()
    assert twilio_post("/twilio/status", {"MessageSid": sid, "MessageStatus": "delivered",
                                          "AccountSid": ACCOUNT_SID}).status_code == 204
    assert "delivered" in client.get(f"/care/inbox/{pid}").get_data(as_text=True)


def test_pause_resume_and_course_end_from_the_participant_page(client, services, clock, phone,
                                                               db):
    enroll(client, services, phone)
    phone.text("DONE")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    page = f"/care/participants/{pid}"
    post_form(client, page, f"{page}/pause", days="5")
    with db.session() as s:
        paused = s.get(Participant, pid).paused_until
    assert paused == clock.now() + timedelta(days=5)
    assert "paused until" in client.get(page).get_data(as_text=True)
    post_form(client, page, f"{page}/resume")
    with db.session() as s:
        assert s.get(Participant, pid).paused_until is None
    post_form(client, page, f"{page}/course-end")
    with db.session() as s:
        assert s.get(Participant, pid).course_ended_at == clock.now()
        maintenance = s.scalar(select(func.count()).select_from(ScheduledMessage).where(
            ScheduledMessage.plan == "maintenance", ScheduledMessage.status == "pending"))
    assert maintenance > 0
    actions = [a for a, p in audit_actions(db, CLINICIAN) if p == pid]
    for action in ("participant.pause", "participant.resume", "participant.course_end"):
        assert action in actions


def test_participants_list_pages_through_numbers_that_texted_in(client, services, clock, db):
    from tests.conftest import Phone

    for n in range(30):
        Phone(client, f"+1555300{n:04d}").text("hello?")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    first = client.get("/care/participants?sort=name&dir=asc").get_data(as_text=True)
    assert "30 participants" in first and "Page 1 of 2" in first
    assert first.count("unenrolled") == 25
    second = client.get("/care/participants?sort=name&dir=asc&page=2").get_data(as_text=True)
    assert second.count("unenrolled") == 5


# ---------------------------------------------------------------- the safety path (issue 9)


def test_crisis_twice_is_one_alert_with_page_outcomes_and_ack_schedules_caring_texts(
        client, services, clock, phone, sender, db):
    enroll(client, services, phone)
    sender.fail_with(SendError("failed", code=30007))  # the first page is refused
    phone.text("I want to kill myself tonight")
    clock.advance(minutes=3)
    phone.text("I still want to kill myself, I have the pills here")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    clock.advance(minutes=2)
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()  # the second text attached, no new alert
        assert s.scalar(select(func.count()).select_from(AlertSignal)) == 2
    now_html = client.get("/care/").get_data(as_text=True)
    card = now_html[now_html.index(f'id="alert-{alert.id}"'):]
    card = card[:card.index("</form>")]
    assert "crisis" in card and "open 5 min" in card  # 3 + 2 min, and 30 s to sign in
    assert "Risky texts attached: 2, last 2 min ago" in card
    assert "Pages attempted: 2 &middot; accepted: 1 &middot; failed: 1" in card
    assert "No unanswered safety checks." in now_html
    # Both texts are shown to the care team although the journal is not shared.
    page = client.get(f"/care/participants/{alert.participant_id}").get_data(as_text=True)
    assert "I want to kill myself tonight" in page and "I have the pills here" in page
    assert page.count("raised an alert") == 2
    assert "(caring)" not in page

    response = post_form(client, "/care/", f"/care/alerts/{alert.id}/ack",
                         note="Called her; her sister is with her")
    assert response.status_code == 302
    with db.session() as s:
        assert s.get(Alert, alert.id).status == "acknowledged"
        caring = s.scalars(select(ScheduledMessage).where(ScheduledMessage.plan == "caring")
                           .order_by(ScheduledMessage.due_at)).all()
        assert len(caring) == 4 and {c.status for c in caring} == {"pending"}
    page = client.get(f"/care/participants/{alert.participant_id}").get_data(as_text=True)
    assert page.count("nudge caring (caring)") == 4
    assert "thinking of you today and glad you" in page
    assert "Called her; her sister is with her" in page
    assert ("alert.ack", alert.participant_id) in audit_actions(db, CLINICIAN)


def test_unanswered_safety_check_is_its_own_group_on_now_page(client, services, clock, phone,
                                                               db):
    enroll(client, services, phone)
    phone.text("done")
    assert "YES or NO" in phone.text(CHECK_TEXT)[0]
    phone.text("I don't know what I mean anymore")  # neither YES nor NO: the care team looks
    with db.session() as s:
        alert = s.scalars(select(Alert)).one()
        assert (alert.level, alert.category) == ("check", "unanswered_check")
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    now_html = client.get("/care/").get_data(as_text=True)
    checks = now_html[now_html.index("Unanswered safety checks (1)"):]
    assert f'id="alert-{alert.id}"' in checks and "unanswered safety check" in checks
    assert "Pages attempted: 1 &middot; accepted: 1 &middot; failed: 0" in checks
    assert "Open alerts (0)" in now_html and "No open alerts." in now_html
    post_form(client, "/care/", f"/care/alerts/{alert.id}/ack", note="Texted back; fine")
    assert "No unanswered safety checks." in client.get("/care/").get_data(as_text=True)
    with db.session() as s:  # only a crisis brings caring texts
        assert s.scalars(select(ScheduledMessage).where(
            ScheduledMessage.plan == "caring")).all() == []


def test_clinician_edits_safety_plan_errors_keep_the_text_and_plan_texts_it(
        client, services, clock, phone, db):
    enroll(client, services, phone)
    secret = make_staff(services, CLINICIAN, "clinician")
    login(client, CLINICIAN, secret, clock)
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
    url = f"/care/participants/{pid}"
    assert "No safety plan is stored for this participant yet." in client.get(url).get_data(
        as_text=True)
    refused = post_form(client, url, f"{url}/safety-plan",
                        coping="Walk the dog \u2014 then tea", reasons="My kids")
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Not saved" in html and "Things I can do on my own" in html
    assert "Walk the dog \u2014 then tea" in html and "My kids" in html  # nothing lost
    assert "hasn't added a safety plan" in phone.text("PLAN")[0]
    too_long = post_form(client, url, f"{url}/safety-plan", reasons="x " * 200)
    assert too_long.status_code == 400 and "longer than 2 SMS segments" in too_long.get_data(
        as_text=True)
    saved = post_form(client, url, f"{url}/safety-plan", coping="Walk the dog, then tea",
                      people="My sister Ana 555-0101", reasons="My kids")
    assert saved.status_code == 302
    page = client.get(url).get_data(as_text=True)
    assert "Safety plan saved (3 sections)" in page and "My sister Ana 555-0101" in page
    texts = phone.text("PLAN")
    joined = "\n".join(texts)
    assert "Things I can do on my own: Walk the dog, then tea" in joined
    assert "People I can ask for help: My sister Ana 555-0101" in joined
    assert "My reasons for living: My kids" in joined and "988" in texts[-1]
    # Emptying a box removes that section; the rest stays.
    post_form(client, url, f"{url}/safety-plan", coping="Walk the dog, then tea",
              reasons="My kids")
    assert "My sister Ana" not in "\n".join(phone.text("PLAN"))
    actions = audit_actions(db, CLINICIAN)
    assert actions.count(("safety_plan.set", pid)) == 2
    # Without the form's CSRF token nothing changes.
    forged = client.post(f"{url}/safety-plan", data={"coping": "forged"})
    assert forged.status_code == 400
    assert "forged" not in "\n".join(phone.text("PLAN"))
