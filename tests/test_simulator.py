"""The development simulator over HTTP: signed texts through the real webhook, the clock,
send-now, and that production has no simulator at all. (The browser tests drive the page.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FileClock
from bot.config import Settings
from tests.conftest import make_settings


def csrf(client) -> str:
    """The token the simulator page hands its script."""
    page = client.get("/simulator").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def post(client, token, path, **data):
    return client.post(f"/simulator/{path}", json=data, headers={"X-CSRFToken": token})


def text(client, token, phone, body):
    """What the page's script does: ask for a signature, then POST to the webhook."""
    signed = post(client, token, "sign", phone=phone, body=body).get_json()
    response = client.post(signed["path"], data=signed["params"],
                           headers={"X-Twilio-Signature": signed["signature"]})
    assert response.status_code == 200, response.data
    return response


def chat(client, phone):
    return client.get("/simulator/state", query_string={"phone": phone}).get_json()


PHONE = "+15551230001"


def test_texts_are_signed_with_the_webhooks_own_token_and_forgeries_fail(client, db):
    token = csrf(client)
    assert post(client, token, "enroll", phone=PHONE, timezone="America/Chicago").get_json()["ok"]
    state = chat(client, PHONE)
    assert state["participant"]["timezone"] == "America/Chicago"
    assert "YES" in state["messages"][0]["body"]  # the invitation, in the chat

    signed = post(client, token, "sign", phone=PHONE, body="YES").get_json()
    tampered = {**signed["params"], "Body": "STOP"}
    forged = client.post("/twilio/sms", data=tampered,
                         headers={"X-Twilio-Signature": signed["signature"]})
    assert forged.status_code == 403
    assert chat(client, PHONE)["participant"]["status"] == "invited"
    ok = client.post("/twilio/sms", data=signed["params"],
                     headers={"X-Twilio-Signature": signed["signature"]})
    assert ok.status_code == 200
    state = chat(client, PHONE)
    assert state["participant"]["status"] == "active"
    reply = [m for m in state["messages"] if m["direction"] == "out"][-1]
    assert reply["encoding"] == "GSM-7" and reply["segments"] in (1, 2)


def test_simulator_posts_need_the_page_token(client):
    assert client.post("/simulator/sign", json={"phone": PHONE, "body": "hi"}).status_code == 400
    assert client.post("/simulator/clock", json={"step": "day"},
                       headers={"X-CSRFToken": "made-up"}).status_code == 400


def test_clock_moves_to_the_next_nudge_and_sends_it_into_the_chat(client, clock):
    token = csrf(client)
    post(client, token, "enroll", phone=PHONE, timezone="America/New_York")
    for body in ("YES", "yes", "10:30pm", "yes", "skip", "DONE"):
        text(client, token, PHONE, body)
    timeline = chat(client, PHONE)["timeline"]
    pending = [row for row in timeline if row["status"] == "pending"]
    assert {"therapy", "sleep", "exercise"} <= {row["kind"] for row in pending}
    started = clock.now()

    result = post(client, token, "clock", phone=PHONE, step="next").get_json()
    assert result["ok"] and result["sent"] == 1
    assert clock.now() > started
    state = chat(client, PHONE)
    nudges = [m for m in state["messages"] if m["nudge"]]
    assert len(nudges) == 1
    assert [r for r in state["timeline"] if r["status"] == "sent"]

    for _ in range(10):
        if any(r["kind"] == "exercise" and r["status"] == "sent"
               for r in chat(client, PHONE)["timeline"]):
            break
        post(client, token, "clock", phone=PHONE, step="next")
    state = chat(client, PHONE)
    assert any("30-minute walk" in m["body"] for m in state["messages"] if m["nudge"])
    assert state["now_local"].startswith("Tue")  # the next morning, in their zone


def test_send_now_sends_a_pending_nudge_inside_the_window(client, clock):
    token = csrf(client)
    post(client, token, "enroll", phone=PHONE, timezone="America/New_York")
    for body in ("YES", "yes", "10:30pm", "yes", "skip", "DONE"):
        text(client, token, PHONE, body)
    row = next(r for r in chat(client, PHONE)["timeline"] if r["kind"] == "exercise")
    result = post(client, token, "send-now", id=row["id"]).get_json()
    assert result["sent"] == 1
    state = chat(client, PHONE)
    assert next(r for r in state["timeline"] if r["id"] == row["id"])["status"] == "sent"
    assert "30-minute walk" in state["messages"][-1]["body"]
    again = post(client, token, "send-now", id=row["id"]).get_json()
    assert again["sent"] == 0 and "not pending" in again["note"]
    assert post(client, token, "send-now", id="1; drop").status_code == 400


def test_production_has_no_simulator(tmp_path, db, clock, sender, client_for):
    from bot.services import build_services

    settings = make_settings(tmp_path, db.url, env="production", redis_url="redis://unused",
                             secret_key="s" * 32)  # production always needs SECRET_KEY
    client = client_for(build_services(settings, clock=clock, sender=sender, db=db))
    assert client.get("/simulator").status_code == 404
    assert client.post("/simulator/sign", json={"phone": PHONE, "body": "x"}).status_code == 404


# ---------------------------------------------------------------- the shared clock file


def test_file_clock_runs_ahead_of_real_time_and_is_shared(tmp_path):
    path = tmp_path / "clock"
    web, worker = FileClock(path), FileClock(path)
    before = datetime.now(UTC)
    assert before <= worker.now() <= datetime.now(UTC)  # no file: the real time
    target = web.advance(days=1)
    assert abs((worker.now() - target).total_seconds()) < 5
    assert path.read_text().startswith("+")  # time keeps running from there
    web.advance(hours=1)
    assert timedelta(hours=24, minutes=59) < worker.now() - before < timedelta(hours=25, minutes=1)
    frozen = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    web.set(frozen)  # the instant format still works, and stays still
    assert worker.now() == frozen
    web.advance(hours=2)
    assert worker.now() == frozen + timedelta(hours=2)
    assert [p.name for p in tmp_path.iterdir()] == ["clock"]  # no temp files left behind
    web.reset()
    assert abs((worker.now() - datetime.now(UTC)).total_seconds()) < 5


def test_development_shares_one_clock_file_and_production_has_none(tmp_path):
    dev = Settings.from_env({"INSTANCE_PATH": str(tmp_path)})
    assert dev.clock_file == str(tmp_path / "clock")
    assert Settings.from_env({"INSTANCE_PATH": str(tmp_path), "BOT_ENV": "production"}).clock_file == ""
    assert Settings.from_env({"BOT_ENV": "test"}).clock_file == ""
    assert Settings.from_env({"CLOCK_FILE": "/x/y"}).clock_file == "/x/y"


@pytest.mark.parametrize("step", ["hour", "day"])
def test_clock_buttons_move_a_frozen_test_clock(client, clock, step):
    before = clock.now()
    post(client, csrf(client), "clock", step=step)
    assert clock.now() - before == {"hour": timedelta(hours=1), "day": timedelta(days=1)}[step]
