"""Helpers for the care console's tests: staff accounts set up for real, and signing in."""

from __future__ import annotations

import re

import pyotp

from bot.care import accounts

PASSWORD = "correct horse battery staple"
ADMIN = "admin@harbor.example"
CLINICIAN = "clinician@harbor.example"


def make_staff(services, email: str, role: str) -> str:
    """An account set up through the same steps as the set-up link; returns its TOTP secret."""
    now = services.clock.now()
    with services.db.session() as db:
        user, _token = accounts.add_staff(db, email, role, now)
        code = pyotp.TOTP(user.totp_secret).at(now)
        accounts.complete_setup(user, PASSWORD, code, now)
        return user.totp_secret


def next_code(secret: str, clock) -> str:
    """A fresh TOTP code: move the frozen clock to the next 30-second step (codes are single use)."""
    clock.advance(seconds=30)
    return pyotp.TOTP(secret).at(clock.now())


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client, email: str, secret: str, clock, *, password: str = PASSWORD,
          code: str | None = None):
    """Sign in through the form; returns the response to the POST."""
    page = client.get("/care/login")
    return client.post("/care/login", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "email": email,
        "password": password, "code": code or next_code(secret, clock)})


def post_form(client, page_url: str, action: str, **data):
    """POST to action with the CSRF token from page_url."""
    token = csrf_from(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def journal_and_checkin(services, clock, phone, mood: str = "4") -> None:
    """DONE, five journal answers, then the 48-hour mood check-in is sent and answered."""
    from sqlalchemy import select

    from bot import delivery, scheduling
    from bot.storage.models import ScheduledMessage

    phone.text("DONE")
    for answer in ("The ocean", "I can rest", "Less rushing", "Lighter", "Call my brother"):
        phone.text(answer)
    with services.db.session() as db:
        due = db.scalars(select(ScheduledMessage.due_at).where(
            ScheduledMessage.expects_reply == "mood")).first()
    clock.set(due)
    while ids := scheduling.all_due_ids(services, clock.now(), limit=100):
        if set(delivery.deliver_batch(services, ids)) <= {"deferred", "skipped"}:
            break
    clock.advance(minutes=20)  # they answer a while later
    phone.text(mood)
