"""The webhook's boundary: nothing a phone (or a forger holding the token) sends gives a 500,
oversized bodies are refused before they are read, and delivery reports only touch our texts."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot import webhook_form
from bot.storage.models import Message, Participant, ScheduledMessage
from tests.conftest import PHONE, Phone, replies
from tests.test_conversation import count, enroll
from tests.test_nudges import drive_until


def test_a_nul_byte_in_message_sid_is_a_400_and_stores_nothing(phone, db):
    response = phone.post(phone.params("hello", MessageSid="SM\x00abc"))
    assert response.status_code == 400
    assert count(db, Message) == 0


@pytest.mark.parametrize("num_media", ["2147483648", "99999999999999999999999", "-1", "1e3",
                                       "11", "٣"])
def test_num_media_out_of_range_is_a_400(phone, db, num_media):
    response = phone.post(phone.params("hello", NumMedia=num_media))
    assert response.status_code == 400
    assert count(db, Message) == 0


@pytest.mark.parametrize("code", ["2147483648", "99999999999999999999999", "abc", "-5"])
def test_status_callback_error_code_out_of_range_is_a_400(phone, code):
    callback = {"MessageSid": "SM" + uuid.uuid4().hex, "MessageStatus": "failed",
                "ErrorCode": code}
    assert phone.post(callback, path="/twilio/status").status_code == 400


_field = st.one_of(st.none(), st.text(max_size=40),
                   st.integers(min_value=-2**70, max_value=2**70).map(str),
                   st.sampled_from(["2147483648", "9223372036854775808", "-1", "SM\x00ab",
                                    "0" * 70, "\x00"]))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sid=_field, num_media=_field, body=st.one_of(st.none(), st.text(max_size=200)),
       from_=st.one_of(st.just(PHONE), _field), opt_out=_field)
def test_no_signed_inbound_form_causes_a_500(client, sid, num_media, body, from_, opt_out):
    phone = Phone(client)
    params = {"MessageSid": sid, "NumMedia": num_media, "Body": body, "From": from_,
              "OptOutType": opt_out, "To": "+15005550006"}
    response = phone.post({k: v for k, v in params.items() if v is not None})
    assert response.status_code in (200, 400), response.data


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sid=_field, status=_field, code=_field)
def test_no_signed_status_callback_causes_a_500(client, sid, status, code):
    phone = Phone(client)
    params = {"MessageSid": sid, "MessageStatus": status, "ErrorCode": code}
    response = phone.post({k: v for k, v in params.items() if v is not None},
                          path="/twilio/status")
    assert response.status_code in (204, 400), response.data


def test_an_oversized_body_gets_413_before_the_signature_is_checked(client, db):
    too_big = "x" * (webhook_form.MAX_CONTENT_LENGTH + 1)
    response = client.post("/twilio/sms", data={"Body": too_big, "From": PHONE,
                                                  "MessageSid": "SM" + "1" * 32})
    assert response.status_code == 413
    assert count(db, Message) == 0


def test_a_status_callback_naming_an_inbound_sid_changes_nothing(client, services, phone, db):
    enroll(client, services, phone)
    params = phone.params("how are you")
    phone.post(params)
    with db.session() as s:
        before = s.scalars(select(Message).where(
            Message.twilio_sid == params["MessageSid"])).one().status
    callback = {"MessageSid": params["MessageSid"], "MessageStatus": "undelivered",
                "ErrorCode": "21610"}
    assert phone.post(callback, path="/twilio/status").status_code == 204
    with db.session() as s:
        inbound = s.scalars(select(Message).where(
            Message.twilio_sid == params["MessageSid"])).one()
        assert inbound.status == before == "processed"
        assert s.scalars(select(Participant)).one().status == "active"


def test_a_21610_delivery_report_opts_the_participant_out(client, services, phone, db, clock):
    enroll(client, services, phone)
    phone.text("done")
    drive_until(client, clock, clock.now() + timedelta(hours=3))
    with db.session() as s:
        sid = s.scalars(select(ScheduledMessage.twilio_sid).where(
            ScheduledMessage.status == "sent")).first()
    assert count(db, ScheduledMessage, status="pending") > 0
    callback = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    assert phone.post(callback, path="/twilio/status").status_code == 204
    with db.session() as s:
        assert s.scalars(select(Participant)).one().status == "opted_out"
    assert count(db, ScheduledMessage, status="pending") == 0


# ---------------------------------------------------------------- replays


def test_concurrent_replays_of_one_message_sid_all_get_the_first_reply_and_run_once(
        client, services, phone, db, monkeypatch):
    enroll(client, services, phone)
    engine = services.engine
    real_resume = engine.resume
    turns = []

    def slow_resume(*args, **kwargs):
        turns.append(kwargs.get("text"))
        time.sleep(0.5)  # the first copy is still being processed when the replays arrive
        return real_resume(*args, **kwargs)

    monkeypatch.setattr(engine, "resume", slow_resume)
    params = phone.params("done")
    app = client.application
    answers: list[tuple[int, list[str]]] = []
    lock = threading.Lock()

    def post():
        response = Phone(app.test_client()).post(params)
        with lock:
            answers.append((response.status_code, replies(response)))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 8
    first = answers[0][1]
    assert first and "rest" in first[0].lower()
    assert all(answer == (200, first) for answer in answers), answers
    assert turns == ["done"], "a replay was processed a second time"
    with db.session() as s:
        inbound = s.scalars(select(Message).where(
            Message.twilio_sid == params["MessageSid"])).one()
        stored = s.scalars(select(Message).where(Message.reply_to_id == inbound.id)).all()
    assert [m.body for m in stored] == first
