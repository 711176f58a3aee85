"""In a real browser (the distribution's Chromium): a whole session cycle in the simulator,
the journal link opened from the chat, expired and tampered links, and printing."""

from __future__ import annotations

import re
import socket
import threading

import pytest
from playwright.sync_api import expect

from bot import delivery, scheduling
from tests.conftest import make_settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PHONE = "+15551230001"
ANSWERS = [
    "Warm light, my grandmother's kitchen, a feeling of being held.",
    "I don't have to carry my father's disappointment.",
    "Let go of doomscrolling; bring more slow walks.",
    "Less braced. The critic is quieter.",
    "Call my sister on Sunday.",
]


class Server:
    """The app over real HTTP on a port chosen before the app is built (for PUBLIC_BASE_URL)."""

    def __init__(self, app, port: int):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def public_server(tmp_path, db, clock, sender):
    """An app whose PUBLIC_BASE_URL is its own address, so JOURNAL texts a link to it."""
    from bot import create_app
    from bot.services import build_services

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, db.url, public_base_url=url)
    app = create_app(services=build_services(settings, clock=clock, sender=sender, db=db))
    server = Server(app, port)
    server.url = url
    yield server
    server.stop()


def bubbles(page, direction):
    return page.locator(f"#chat .row.{direction} .bubble")


def say(page, text: str, expect_reply: str) -> None:
    """Type a text on the simulated phone and wait for a reply containing expect_reply."""
    before = bubbles(page, "out").count()
    page.fill("#compose", text)
    page.press("#compose", "Enter")
    expect(bubbles(page, "in").last).to_have_text(text)
    expect(bubbles(page, "out").nth(before)).to_be_visible()
    expect(page.locator("#chat")).to_contain_text(expect_reply)


def live_through_a_session(page, base_url: str) -> None:
    """Enroll, set up, set an intention, DONE, and answer every journaling question."""
    page.set_viewport_size({"width": 760, "height": 1100})
    page.goto(f"{base_url}/simulator")
    page.fill("#phone-number", PHONE)
    page.fill("#tz", "America/New_York")
    page.click("#enroll")
    expect(bubbles(page, "out").first).to_contain_text("YES")
    # The invitation went out through the REST API, and says so under the bubble.
    expect(page.locator("#chat .row.out .meta").first).to_contain_text("REST sent")
    say(page, "YES", "time zone")
    say(page, "yes", "bed")
    say(page, "10:30pm", "therapist")
    say(page, "yes", "")
    say(page, "skip", "")
    say(page, "INTENTION", "intention")
    say(page, "To be gentle with myself", "DONE")
    say(page, "DONE", "To be gentle with myself")
    for answer in ANSWERS:
        say(page, answer, "")
    expect(page.locator("#chat")).to_contain_text("JOURNAL to read your notes")


def test_a_session_cycle_and_the_next_morning_in_the_simulator(page, live_server, screenshot,
                                                                services, clock):
    live_through_a_session(page, live_server.url)
    meta = page.locator("#chat .row.out .meta").last
    expect(meta).to_contain_text("GSM-7")
    expect(meta).to_contain_text("segment")
    say(page, "Thank you \U0001f64f", "")  # an emoji makes the whole text UCS-2
    expect(page.locator("#chat .row.in .meta").last).to_contain_text("1 segment · UCS-2")

    # A nudge the worker sends on its own shows up in the open chat, nobody clicking.
    clock.advance(hours=2)
    delivery.deliver_batch(services, scheduling.all_due_ids(services, clock.now()))
    expect(page.locator("#chat .row.out.nudge .bubble").last).to_contain_text("therapist")
    expect(page.locator("#timeline tr[data-kind=exercise][data-status=pending]")).to_have_count(1)
    screenshot(page, "journal-done")

    exercise = page.locator("#timeline tr[data-kind=exercise][data-status=sent]")
    for _ in range(8):
        if exercise.count():
            break
        sent = page.locator("#timeline tr[data-status=sent]").count()
        page.click("[data-step=next]")
        expect(page.locator("#timeline tr[data-status=sent]")).not_to_have_count(sent)
    expect(exercise).to_have_count(1)
    nudge = page.locator("#chat .row.out.nudge .bubble").last
    expect(nudge).to_contain_text("30-minute walk")
    expect(page.locator("#now")).to_contain_text("Tue")
    expect(page.locator("#chat .row.out.nudge .meta").last).to_contain_text("nudge")
    screenshot(page, "next-morning")

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "phone-width")


def test_journal_link_opens_prints_and_expires(page, public_server, clock, screenshot):
    live_through_a_session(page, public_server.url)
    say(page, "JOURNAL", "24 hours")
    link = page.locator("#chat .row.out .bubble a").last
    href = link.get_attribute("href")
    assert href.startswith(f"{public_server.url}/j/")
    with page.context.expect_page() as opened:
        link.click()
    journal = opened.value
    journal.set_viewport_size({"width": 390, "height": 844})
    expect(journal.locator("h1")).to_have_text("My journal")
    expect(journal.locator("section.session")).to_have_count(1)
    for answer in ANSWERS:
        expect(journal.locator("main")).to_contain_text(answer)
    expect(journal.locator("main")).to_contain_text("To be gentle with myself")
    screenshot(journal, "journal-page")

    journal.locator("details summary").first.click()
    journal.locator("details textarea").first.fill("And the smell of bread.")
    journal.locator("details button").first.click()
    expect(journal.locator(".added")).to_contain_text("And the smell of bread.")

    journal.emulate_media(media="print")
    expect(journal.locator(".controls")).to_be_hidden()
    expect(journal.locator("details").first).to_be_hidden()
    expect(journal.locator("main")).to_contain_text(ANSWERS[0])
    screenshot(journal, "journal-print")
    journal.emulate_media(media="screen")

    token = href.rsplit("/", 1)[1]
    tampered = token[:-3] + ("xyz" if not token.endswith("xyz") else "abc")
    journal.goto(f"{public_server.url}/j/{tampered}")
    expect(journal.locator("h1")).to_have_text("This link doesn't open anything")
    expect(journal.locator("main")).not_to_contain_text("grandmother")

    clock.advance(hours=24, minutes=1)
    journal.goto(href)
    expect(journal.locator("h1")).to_have_text("This link doesn't open anything")
    expect(journal.locator("main")).not_to_contain_text("grandmother")
    screenshot(journal, "journal-expired")


def test_printing_puts_one_session_on_each_page(page, public_server, clock):
    live_through_a_session(page, public_server.url)
    clock.advance(days=7)
    say(page, "DONE", "")
    for answer in ANSWERS:
        say(page, answer.upper(), "")
    say(page, "JOURNAL", "24 hours")
    href = page.locator("#chat .row.out .bubble a").last.get_attribute("href")
    page.goto(href)
    expect(page.locator("section.session")).to_have_count(2)
    pdf = page.pdf(format="Letter")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pages == 2, pages
