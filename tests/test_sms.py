"""Sender backends: the real twilio SDK against a local FakeTwilio, plus console and fake."""

from __future__ import annotations

import io
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.fake_twilio import FakeTwilio
from bot.sms import (
    ConsoleSender,
    FakeSender,
    RebasedHttpClient,
    SendError,
    SendResult,
    TwilioSender,
    classify,
    mask_number,
)

ACCOUNT = "AC" + "0" * 32
TOKEN = "secret-token"
FROM = "+15005550006"
TO = "+15551234567"
SERVICE = "MG" + "1" * 32


@pytest.fixture
def fake():
    with FakeTwilio(auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def sender(fake):
    return TwilioSender(ACCOUNT, TOKEN, from_number=FROM, api_base_url=fake.base_url, timeout=5)


def refused(sender: TwilioSender, to: str = TO, body: str = "hello") -> SendError:
    with pytest.raises(SendError) as caught:
        sender.send(to, body)
    return caught.value


# -- classify --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "http_status", "kind"),
    [
        (20429, 429, "retry"),
        (None, 429, "retry"),
        (None, 500, "retry"),
        (20503, 503, "retry"),
        (30003, None, "retry"),
        (21610, 400, "opted_out"),
        (30004, None, "opted_out"),
        (21211, 400, "unreachable"),
        (21614, 400, "unreachable"),
        (30005, None, "unreachable"),
        (30006, None, "unreachable"),
        (21408, 400, "unreachable"),
        (21617, 400, "failed"),
        (30007, None, "failed"),
        (30034, None, "failed"),
        (20003, 401, "failed"),
        (None, 404, "failed"),
        (None, None, "failed"),
        (21610, 500, "opted_out"),  # the Twilio code says more than the HTTP status
    ],
)
def test_classify_maps_twilio_errors_to_what_the_job_should_do(code, http_status, kind):
    assert classify(code, http_status) == kind


def test_send_error_carries_kind_code_and_status():
    error = SendError("retry", code=20429, http_status=429, detail="slow down")
    assert (error.kind, error.code, error.http_status) == ("retry", 20429, 429)
    assert "slow down" in str(error)


def test_mask_number_keeps_only_the_last_four_digits():
    assert mask_number("+15551234567") == "***4567"
    assert mask_number("whatsapp:+15551234567") == "***4567"


# -- TwilioSender against FakeTwilio ------------------------------------------------


@pytest.mark.integration
def test_send_returns_the_sid_the_server_recorded(fake, sender):
    result = sender.send(TO, "How are you today?", status_callback="https://bot.test/status")

    [seen] = fake.messages
    assert result == SendResult(sid=seen["sid"], status="queued", segments=1)
    assert seen["to"] == TO
    assert seen["from"] == FROM
    assert seen["body"] == "How are you today?"
    assert seen["status_callback"] == "https://bot.test/status"
    assert seen["account_sid"] == ACCOUNT


@pytest.mark.integration
def test_send_without_status_callback_leaves_it_out(fake, sender):
    sender.send(TO, "hi")
    assert fake.messages[0]["status_callback"] is None


@pytest.mark.integration
def test_long_text_reports_its_segments(sender):
    assert sender.send(TO, "a" * 200).segments == 2


@pytest.mark.integration
def test_messaging_service_mode_sends_the_service_sid_and_no_from(fake):
    sender = TwilioSender(ACCOUNT, TOKEN, messaging_service_sid=SERVICE, api_base_url=fake.base_url)
    sender.send(TO, "hi")
    [seen] = fake.messages
    assert seen["messaging_service_sid"] == SERVICE
    assert seen["from"] is None


def test_sender_needs_a_from_number_or_a_messaging_service():
    with pytest.raises(ValueError):
        TwilioSender(ACCOUNT, TOKEN)


@pytest.mark.integration
def test_wrong_auth_token_fails_without_retry(fake):
    sender = TwilioSender(ACCOUNT, "wrong", from_number=FROM, api_base_url=fake.base_url)
    error = refused(sender)
    assert (error.kind, error.http_status, error.code) == ("failed", 401, 20003)
    assert fake.messages == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("inject", "kind", "code", "http_status"),
    [
        (429, "retry", 20429, 429),
        (500, "retry", 20500, 500),
        (30003, "retry", 30003, 400),
        (21610, "opted_out", 21610, 400),
        (30004, "opted_out", 30004, 400),
        (21617, "failed", 21617, 400),
        (30007, "failed", 30007, 400),
    ],
)
def test_twilio_errors_become_send_error_kinds(fake, sender, inject, kind, code, http_status):
    fake.fail_next(inject)
    error = refused(sender)
    assert (error.kind, error.code, error.http_status) == (kind, code, http_status)


@pytest.mark.integration
def test_a_server_error_is_tried_once_only(fake, sender):
    # Retries belong to the job layer: the SDK and requests must not retry on their own.
    fake.fail_next(500)
    refused(sender)
    assert fake.attempts() == 1


@pytest.mark.integration
@pytest.mark.parametrize(
    ("number", "kind", "code"),
    [
        ("+15005550001", "unreachable", 21211),
        ("+15005550009", "unreachable", 21614),
        ("+15005550004", "opted_out", 21610),
    ],
)
def test_twilio_magic_numbers(sender, number, kind, code):
    error = refused(sender, to=number)
    assert (error.kind, error.code) == (kind, code)


@pytest.mark.integration
def test_a_server_slower_than_the_timeout_is_retry(fake):
    fake.latency = 2.0
    sender = TwilioSender(ACCOUNT, TOKEN, from_number=FROM, api_base_url=fake.base_url, timeout=0.2)
    error = refused(sender)
    assert error.kind == "retry"
    assert error.http_status is None


@pytest.mark.integration
def test_connection_refused_is_retry():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    sender = TwilioSender(
        ACCOUNT, TOKEN, from_number=FROM, api_base_url=f"http://127.0.0.1:{port}", timeout=2
    )
    assert refused(sender).kind == "retry"


@pytest.mark.integration
def test_whatsapp_address_goes_out_as_is_with_a_whatsapp_sender(fake, sender):
    sender.send("whatsapp:" + TO, "hi")
    [seen] = fake.messages
    assert seen["to"] == "whatsapp:" + TO
    assert seen["from"] == "whatsapp:" + FROM


@pytest.mark.integration
def test_whatsapp_from_number_is_not_prefixed_twice(fake):
    sender = TwilioSender(
        ACCOUNT, TOKEN, from_number="whatsapp:" + FROM, api_base_url=fake.base_url
    )
    sender.send("whatsapp:" + TO, "hi")
    assert fake.messages[0]["from"] == "whatsapp:" + FROM


@pytest.mark.integration
def test_sms_after_whatsapp_keeps_the_plain_from_number(fake, sender):
    sender.send("whatsapp:" + TO, "one")
    sender.send(TO, "two")
    assert [m["from"] for m in fake.messages] == ["whatsapp:" + FROM, FROM]


@pytest.mark.integration
def test_forty_concurrent_sends_all_arrive_once(fake, sender):
    fake.latency = 0.1
    bodies = [f"note {i}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(lambda body: sender.send(TO, body), bodies))

    seen = fake.messages
    assert sorted(m["body"] for m in seen) == sorted(bodies)
    assert {r.sid for r in results} == {m["sid"] for m in seen}
    assert len({r.sid for r in results}) == 40
    assert fake.attempts() == 40


@pytest.mark.integration
def test_failed_send_logs_neither_body_nor_full_number(fake, sender, caplog):
    body = "private words about my week"
    number = "+15005550001"  # Twilio's own error message quotes this number
    fake.fail_next(500)
    with caplog.at_level(logging.DEBUG):
        first = refused(sender, to=number, body=body)
        second = refused(sender, to=number, body=body)

    assert caplog.records, "a refused text should be logged"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert body not in text
        assert number not in text and number[1:] not in text
    for error in (first, second):
        assert body not in str(error) and number[1:] not in str(error)
        assert error.__cause__ is None and error.__suppress_context__
    assert "***0001" in str(second)


def test_rebase_points_any_twilio_host_at_the_base_url():
    client = RebasedHttpClient(timeout=1, base_url="http://127.0.0.1:9/")
    path = "/2010-04-01/Accounts/AC1/Messages.json"
    assert client.rebase("https://api.twilio.com" + path) == "http://127.0.0.1:9" + path
    assert client.rebase("https://api.dublin.ie1.twilio.com" + path) == "http://127.0.0.1:9" + path
    assert client.rebase("https://example.com" + path) == "https://example.com" + path


# -- ConsoleSender and FakeSender -----------------------------------------------------


def test_console_sender_prints_the_text_for_a_developer():
    stream = io.StringIO()
    result = ConsoleSender(stream).send(TO, "Take a slow breath.")
    printed = stream.getvalue()
    assert "Take a slow breath." in printed
    assert "***4567" in printed and TO not in printed
    assert result.sid.startswith("SMconsole") and result.sid in printed
    assert result.status == "sent"


def test_console_sender_defaults_to_stdout(capsys):
    ConsoleSender().send(TO, "hello")
    assert "hello" in capsys.readouterr().out


def test_fake_sender_records_what_was_sent():
    sender = FakeSender()
    first = sender.send(TO, "one", status_callback="https://cb")
    second = sender.send(TO, "two")
    assert sender.sent == [(TO, "one", "https://cb"), (TO, "two", None)]
    assert first.sid != second.sid


def test_fake_sender_fails_the_next_sends_then_recovers():
    sender = FakeSender()
    sender.fail_with(SendError("retry", code=20429, http_status=429), count=2)
    for _ in range(2):
        with pytest.raises(SendError) as caught:
            sender.send(TO, "hi")
        assert caught.value.kind == "retry"
    sender.send(TO, "hi")
    assert sender.sent == [(TO, "hi", None)]
    assert sender.attempts == 3
