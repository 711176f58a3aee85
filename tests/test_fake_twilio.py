"""FakeTwilio: the local stand-in for Twilio's Messages API."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from bot.fake_twilio import FakeTwilio, max_in_window
from bot.sms import SendError, TwilioSender

ACCOUNT = "AC" + "a" * 32
TOKEN = "fake-token"
TO = "+15551234567"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake():
    with FakeTwilio(auth_token=TOKEN) as server:
        yield server


def post(fake: FakeTwilio, token: str = TOKEN, **form: str) -> requests.Response:
    form = {"To": TO, "From": "+15005550006", "Body": "hi", **form}
    return requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        data=form,
        auth=(ACCOUNT, token),
        timeout=10,
    )


# -- max_in_window (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        ([], 0),
        ([5.0], 1),
        ([0.0, 0.5, 0.99, 1.0, 1.5], 3),
        ([0.0, 1.0, 2.0, 3.0], 1),  # a window is [t, t + 1): exactly one second apart
        ([10.0, 10.1, 10.2, 10.3, 20.0], 4),
        ([3.2, 0.1, 3.0, 0.2, 3.1, 3.9], 4),  # order of arrival does not matter
        ([0.0, 0.9, 1.8, 2.7], 2),
    ],
)
def test_max_in_window_counts_the_busiest_second(stamps, expected):
    assert max_in_window(stamps) == expected


def test_max_in_window_honours_the_window_length():
    assert max_in_window([0.0, 0.4, 0.8, 1.2], window=0.5) == 2
    assert max_in_window([0.0, 0.4, 0.8, 1.2], window=2.0) == 4


# -- the HTTP API -------------------------------------------------------------------


@pytest.mark.integration
def test_accepted_message_looks_like_twilios_resource(fake):
    response = post(fake, Body="a" * 200, StatusCallback="https://bot.test/status")
    assert response.status_code == 201
    payload = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", payload["sid"])
    assert payload["status"] == "queued"
    assert payload["num_segments"] == "2"
    assert payload["to"] == TO and payload["account_sid"] == ACCOUNT
    assert payload["uri"].endswith(f"/Messages/{payload['sid']}.json")
    [seen] = fake.messages
    assert seen["sid"] == payload["sid"]
    assert seen["status_callback"] == "https://bot.test/status"


@pytest.mark.integration
def test_wrong_token_is_401_in_twilios_error_shape(fake):
    response = post(fake, token="nope")
    assert response.status_code == 401
    assert set(response.json()) >= {"code", "message", "more_info", "status"}
    assert response.json()["code"] == 20003
    assert fake.messages == [] and fake.attempts() == 1


@pytest.mark.integration
def test_credentials_must_match_the_account_in_the_path(fake):
    response = requests.post(
        f"{fake.base_url}/2010-04-01/Accounts/ACother/Messages.json",
        data={"To": TO, "From": "+1", "Body": "hi"},
        auth=(ACCOUNT, TOKEN),
        timeout=10,
    )
    assert response.status_code == 401


@pytest.mark.integration
def test_unknown_path_is_404(fake):
    response = requests.get(f"{fake.base_url}/nothing", timeout=10)
    assert response.status_code == 404 and response.json()["code"] == 20404


@pytest.mark.integration
@pytest.mark.parametrize(
    ("code", "http_status", "answer_code", "answer_status"),
    [
        (429, None, 20429, 429),
        (500, None, 20500, 500),
        (21610, None, 21610, 400),
        (21211, None, 21211, 400),
        (30003, 503, 30003, 503),
    ],
)
def test_fail_next_answers_with_the_twilio_error(
    fake, code, http_status, answer_code, answer_status
):
    fake.fail_next(code, http_status=http_status)
    response = post(fake)
    assert response.status_code == answer_status
    assert response.json()["code"] == answer_code
    assert response.json()["status"] == answer_status


@pytest.mark.integration
def test_fail_next_lasts_count_requests(fake):
    fake.fail_next(500, count=2)
    statuses = [post(fake).status_code for _ in range(3)]
    assert statuses == [500, 500, 201]
    assert fake.attempts() == 3
    assert len(fake.messages) == 1


@pytest.mark.integration
def test_fail_to_refuses_every_message_to_that_number(fake):
    fake.fail_to("+15550000000", 21610)
    assert [post(fake, To="+15550000000").status_code for _ in range(2)] == [400, 400]
    assert post(fake).status_code == 201


@pytest.mark.integration
@pytest.mark.parametrize(
    ("to", "code"),
    [("+15005550004", 21610), ("+15005550001", 21211), ("+15005550009", 21614)],
)
def test_magic_test_numbers_fail_like_twilio(fake, to, code):
    response = post(fake, To=to)
    assert (response.status_code, response.json()["code"]) == (400, code)


@pytest.mark.integration
def test_incomplete_requests_are_refused(fake):
    assert post(fake, To="").json()["code"] == 21604
    assert post(fake, Body="").json()["code"] == 21602
    assert post(fake, From="").json()["code"] == 21603
    assert post(fake, Body="a" * 1601).json()["code"] == 21617
    assert fake.messages == []


@pytest.mark.integration
def test_messages_are_copies(fake):
    post(fake)
    fake.messages[0]["body"] = "changed"
    assert fake.messages[0]["body"] == "hi"


@pytest.mark.integration
def test_clear_forgets_messages_attempts_and_failures(fake):
    post(fake)
    fake.fail_next(500)
    fake.fail_to(TO, 21610)
    fake.clear()
    assert fake.messages == [] and fake.attempts() == 0
    assert post(fake).status_code == 201


@pytest.mark.integration
def test_wait_for_returns_once_enough_messages_arrived(fake):
    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(3):
            pool.submit(post, fake)
        assert len(fake.wait_for(3, timeout=10)) >= 3


@pytest.mark.integration
def test_wait_for_gives_up_when_too_few_arrive(fake):
    post(fake)
    with pytest.raises(TimeoutError):
        fake.wait_for(2, timeout=0.1)


@pytest.mark.integration
def test_max_per_second_counts_a_burst(fake):
    for _ in range(5):
        post(fake)
    assert fake.max_per_second() == max_in_window(m["received_at"] for m in fake.messages)
    assert 1 <= fake.max_per_second() <= 5
    fake.clear()
    assert fake.max_per_second() == 0


@pytest.mark.integration
def test_thirty_slow_requests_are_served_at_once(fake):
    fake.latency = 0.2
    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(lambda _: post(fake).status_code, range(30)))
    assert statuses == [201] * 30
    assert len(fake.messages) == 30


@pytest.mark.integration
def test_stop_also_ends_kept_alive_connections():
    fake = FakeTwilio(auth_token=TOKEN)
    sender = TwilioSender(ACCOUNT, TOKEN, from_number="+1", api_base_url=fake.start(), timeout=2)
    sender.send(TO, "before")
    fake.stop()
    with pytest.raises(SendError) as caught:
        sender.send(TO, "after")
    assert caught.value.kind == "retry"
    assert [m["body"] for m in fake.messages] == ["before"]


@pytest.mark.integration
def test_command_line_prints_only_its_url_and_serves():
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.fake_twilio", "--port", "0", "--auth-token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        sender = TwilioSender(ACCOUNT, TOKEN, from_number="+1", api_base_url=url, timeout=5)
        assert sender.send(TO, "secret body").sid.startswith("SM")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert "secret body" not in out + err
    assert TO not in out + err
