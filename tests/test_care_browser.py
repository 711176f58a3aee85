"""The care console in a real browser (the distribution's Chromium via pytest-playwright).

One clinic day: a crisis text arrives through the signed webhook, a clinician signs in
with password and TOTP, acknowledges the alert, reads the participant's timeline and
charts, takes over the conversation, replies (the text reaches the fake Twilio), and hands
back to the bot. Screenshots of every page land in artifacts/screenshots/ (phone size).
"""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from bot.fake_twilio import FakeTwilio
from bot.sms import TwilioSender
from bot.storage.models import Alert, Participant
from tests.care_helpers import ADMIN, CLINICIAN, PASSWORD, journal_and_checkin, make_staff
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PHONE
from tests.test_conversation import enroll

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PHONE_VIEWPORT = {"width": 390, "height": 844}
WAIT_MS = 15_000


@pytest.fixture
def fake_twilio():
    """The project's fake Twilio API on a free local port."""
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def sender(fake_twilio):
    """The real twilio SDK, pointed at the fake Twilio server."""
    return TwilioSender(ACCOUNT_SID, AUTH_TOKEN, from_number="+15005550006",
                        api_base_url=fake_twilio.base_url)


def sign_in(page, base: str, email: str, secret: str, clock) -> None:
    """Fill the sign-in form with the password and a fresh authenticator code."""
    clock.advance(seconds=30)  # each code works once
    page.goto(f"{base}/care/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).at(clock.now()))
    page.get_by_role("button", name="Sign in").click()


def test_clinician_day_in_the_browser(page, live_server, client, services, clock, phone,
                                      fake_twilio, db, screenshot):
    base = live_server.url
    page.set_viewport_size(PHONE_VIEWPORT)
    enroll(client, services, phone)
    journal_and_checkin(services, clock, phone, "4")
    crisis = phone.text("I want to kill myself tonight")
    assert "988" in crisis[0]
    secret = make_staff(services, CLINICIAN, "clinician")
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
        alert_id = s.scalars(select(Alert.id)).one()

    page.goto(f"{base}/care/")
    expect(page).to_have_url(f"{base}/care/login?next=/care/")
    screenshot(page, "login")
    sign_in(page, base, CLINICIAN, secret, clock)
    expect(page).to_have_url(f"{base}/care/")
    alert = page.locator(f"#alert-{alert_id}")
    expect(alert).to_contain_text("crisis")
    expect(alert).to_contain_text("Sam")
    screenshot(page, "now")
    alert.get_by_label("Note (what did you do?)").fill("Called Sam; safe with her sister")
    alert.get_by_role("button", name=f"Acknowledge alert #{alert_id}").click()
    expect(page.get_by_text(f"Alert #{alert_id} acknowledged.")).to_be_visible()
    expect(page.get_by_text("No open alerts.")).to_be_visible()

    page.get_by_role("link", name="Participants").click()
    expect(page.get_by_role("link", name="Sam")).to_be_visible()
    screenshot(page, "participants")
    page.get_by_role("link", name="Sam").click()
    expect(page).to_have_url(f"{base}/care/participants/{pid}")
    expect(page.locator(".timeline")).to_contain_text("I want to kill myself tonight")
    expect(page.locator(".timeline")).to_contain_text("raised an alert")
    expect(page.locator("#mood-chart svg")).to_be_visible()
    expect(page.locator("#mood-chart svg")).not_to_contain_text("No data")
    expect(page.locator("#reply-chart svg")).not_to_contain_text("No data")
    expect(page.locator("#reply-chart svg")).to_be_visible()
    expect(page.get_by_text("Called Sam; safe with her sister")).to_be_visible()
    screenshot(page, "participant")

    page.get_by_role("button", name="Open an inbox conversation").click()
    expect(page).to_have_url(f"{base}/care/inbox/{pid}")
    assert phone.text("can someone from the clinic call me?") == []  # the bot steps back
    expect(page.locator("#messages")).to_contain_text("can someone from the clinic call me?",
                                                      timeout=WAIT_MS)  # polled in
    page.get_by_label("Reply").fill("Hi Sam, this is Dana. I will call you in 5 minutes.")
    expect(page.locator("#reply-count")).to_contain_text("1 segment")
    before = len(fake_twilio.messages)
    page.get_by_role("button", name="Send reply").click()
    arrived = fake_twilio.wait_for(before + 1)[before:]
    assert [(m["to"], m["body"]) for m in arrived] == [
        (PHONE, "Hi Sam, this is Dana. I will call you in 5 minutes.")]
    expect(page.locator("#messages")).to_contain_text("I will call you in 5 minutes")
    screenshot(page, "conversation")

    page.get_by_role("button", name="Close and hand back to the bot").click()
    expect(page.get_by_text("Conversation closed: the bot answers again.")).to_be_visible()
    screenshot(page, "inbox")
    assert phone.text("thank you") != []  # the bot answers the next text again

    # A post without the form's CSRF token is refused and changes nothing.
    refused = page.request.post(f"{base}/care/inbox/{pid}/open", form={})
    assert refused.status == 400
    page.goto(f"{base}/care/inbox")
    expect(page.get_by_text("No open conversations.")).to_be_visible()

    # A clinician is refused the audit log.
    denied = page.goto(f"{base}/care/audit")
    assert denied.status == 403

    # Fifteen idle minutes later the session is over.
    clock.advance(minutes=16)
    page.goto(f"{base}/care/participants/{pid}")
    expect(page).to_have_url(f"{base}/care/login")
    expect(page.get_by_text("15 minutes without activity")).to_be_visible()


def test_admin_pages_in_the_browser(page, live_server, client, services, clock, phone, db,
                                    screenshot):
    base = live_server.url
    page.set_viewport_size(PHONE_VIEWPORT)
    enroll(client, services, phone)
    phone.text("DONE")
    secret = make_staff(services, ADMIN, "admin")
    sign_in(page, base, ADMIN, secret, clock)
    expect(page).to_have_url(f"{base}/care/")

    page.get_by_role("link", name="Staff").click()
    page.get_by_label("Email").fill("new.nurse@harbor.example")
    page.get_by_role("button", name="Add and show set-up link").click()
    link = page.locator("#setup-link").inner_text()
    assert "/care/setup/" in link
    screenshot(page, "staff")

    page.get_by_role("link", name="Export").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    text = open(download.value.path()).read()
    assert text.startswith("participant,week_start,sessions_done") and "Sam" not in text
    screenshot(page, "export")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Action starts with").fill("export")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table")).to_contain_text("export.csv.anonymous")
    expect(page.locator("table")).to_contain_text(ADMIN)
    screenshot(page, "audit")

    # The new account's set-up page: QR code for the authenticator, then a password.
    page.get_by_role("button", name="Sign out").click()
    page.goto(link)
    expect(page.locator(".qr svg")).to_be_visible()
    screenshot(page, "setup")
    new_secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_label("Code shown by the authenticator app").fill(
        pyotp.TOTP(new_secret).at(clock.now()))
    page.get_by_role("button", name="Finish set-up").click()
    expect(page.get_by_text("Your account is ready.")).to_be_visible()
    sign_in(page, base, "new.nurse@harbor.example", new_secret, clock)
    expect(page).to_have_url(f"{base}/care/")


def test_safety_path_and_safety_plan_in_the_browser(page, live_server, client, services, clock,
                                                    phone, fake_twilio, db, screenshot):
    base = live_server.url
    page.set_viewport_size(PHONE_VIEWPORT)
    enroll(client, services, phone)
    phone.text("I want to kill myself tonight")
    clock.advance(minutes=4)
    phone.text("I still want to kill myself")
    secret = make_staff(services, CLINICIAN, "clinician")
    with db.session() as s:
        pid = s.scalars(select(Participant.id)).one()
        alert_id = s.scalars(select(Alert.id)).one()  # one alert, both texts attached

    sign_in(page, base, CLINICIAN, secret, clock)
    alert = page.locator(f"#alert-{alert_id}")
    expect(alert).to_contain_text("Risky texts attached: 2")
    expect(alert).to_contain_text("Pages attempted: 1 · accepted: 1 · failed: 0")
    screenshot(page, "now-safety")
    alert.get_by_label("Note (what did you do?)").fill("Called Sam; safe with her sister")
    alert.get_by_role("button", name=f"Acknowledge alert #{alert_id}").click()
    expect(page.get_by_text(f"Alert #{alert_id} acknowledged.")).to_be_visible()

    page.goto(f"{base}/care/participants/{pid}")
    expect(page.locator(".timeline")).to_contain_text("nudge caring (caring)")
    expect(page.locator(".timeline")).to_contain_text("thinking of you today")
    expect(page.get_by_text("No safety plan is stored for this participant yet.")).to_be_visible()
    page.get_by_text("Edit the safety plan").click()
    page.get_by_label("Things I can do on my own").fill("Walk the dog \u2014 then tea")
    page.get_by_label("My reasons for living").fill("My kids")
    page.get_by_role("button", name="Save safety plan").click()
    expect(page.get_by_role("alert")).to_contain_text("characters that SMS cannot carry")
    expect(page.get_by_label("My reasons for living")).to_have_value("My kids")  # nothing lost
    page.get_by_label("Things I can do on my own").fill("Walk the dog, then tea")
    page.get_by_label("People I can ask for help").fill("My sister Ana 555-0101")
    page.get_by_role("button", name="Save safety plan").click()
    expect(page.get_by_text("Safety plan saved (3 sections)")).to_be_visible()
    expect(page.locator("#safety-plan + dl")).to_contain_text("My sister Ana 555-0101")
    screenshot(page, "safety-plan")

    texts = "\n".join(phone.text("PLAN"))  # through the signed webhook
    assert "Things I can do on my own: Walk the dog, then tea" in texts
    assert "People I can ask for help: My sister Ana 555-0101" in texts
    assert "My reasons for living: My kids" in texts and "988" in texts
