"""Operator and developer experience (issue 10, items 13 and 14): signed webhooks in
development, `chat` with logs in a file and texts that go out on their own, the Redis URL
`make run` publishes, and CLOCK_FILE."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import delivery, scheduling
from bot.clock import FileClock
from bot.config import REDIS_URL_FILE, ConfigError, Settings
from bot.storage.models import Message
from bot.webhook_token import TOKEN_FILE, sign, webhook_token
from tests.conftest import PHONE, Phone, make_settings
from tests.test_conversation import count

# ---------------------------------------------------------------- item 14


@pytest.fixture
def dev_services(tmp_path, db, clock, sender):
    """Development settings with no Twilio credentials at all (what `make run` uses)."""
    from bot.services import build_services

    settings = make_settings(tmp_path, db.url, env="development", twilio_auth_token="",
                             twilio_account_sid="", sms_backend="console")
    return build_services(settings, clock=clock, sender=sender, db=db)


def test_development_refuses_unsigned_webhooks_and_accepts_its_own_token(
        dev_services, client_for, db):
    client = client_for(dev_services)
    phone = Phone(client)
    params = phone.params("hello")
    assert phone.post(params, sign=False).status_code == 403
    assert phone.post(params, signature="forged").status_code == 403
    assert count(db, Message) == 0
    token_file = Path(dev_services.settings.instance_path) / TOKEN_FILE
    assert token_file.exists() and oct(token_file.stat().st_mode & 0o777) == "0o600"
    good = sign(dev_services.settings, "http://localhost/twilio/sms", params)
    assert phone.post(params, signature=good).status_code == 200
    assert count(db, Message, direction="in") == 1


def test_unsigned_webhooks_only_with_the_explicit_switch(tmp_path, db, clock, sender,
                                                         client_for):
    from bot.services import build_services

    settings = make_settings(tmp_path, db.url, env="development", twilio_auth_token="",
                             twilio_account_sid="", sms_backend="console",
                             allow_unsigned_webhooks=True)
    phone = Phone(client_for(build_services(settings, clock=clock, sender=sender, db=db)))
    assert phone.post(phone.params("hello"), sign=False).status_code == 200
    with pytest.raises(ConfigError):
        make_settings(tmp_path, db.url, env="production", allow_unsigned_webhooks=True).check()
    assert Settings.from_env({"ALLOW_UNSIGNED_WEBHOOKS": "1"}).allow_unsigned_webhooks


def test_the_dev_token_is_stable_and_production_uses_twilios(tmp_path):
    dev = Settings(env="development", instance_path=str(tmp_path))
    assert webhook_token(dev) == webhook_token(dev) and len(webhook_token(dev)) >= 32
    prod = Settings(env="production", instance_path=str(tmp_path), twilio_auth_token="t0k")
    assert webhook_token(prod) == "t0k"


def test_the_web_process_binds_loopback_unless_told_otherwise():
    procfile = (Path(__file__).resolve().parents[1] / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert "--bind ${BIND_ADDRESS:-127.0.0.1}:" in web


# ---------------------------------------------------------------- item 13: chat


def test_chat_keeps_logs_out_of_the_conversation(app, settings):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["enroll", PHONE]).exit_code == 0
    result = runner.invoke(args=["chat", PHONE], input="yes\nyes\n")
    assert result.exit_code == 0, result.output
    assert " INFO " not in result.output and "bot.runner" not in result.output
    log = (Path(settings.instance_path) / "chat.log").read_text()
    assert "turn participant=***4567" in log and PHONE not in log


def test_chat_shows_scheduled_texts_as_they_go_out(app, services, clock):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["enroll", PHONE]).exit_code == 0
    setup = "yes\nyes\n10:30pm\nyes\nskip\ndone\n"
    assert runner.invoke(args=["chat", PHONE], input=setup).exit_code == 0
    read_end, write_end = os.pipe()
    outcome = {}

    def chat() -> None:
        with os.fdopen(read_end, "rb") as stdin:
            outcome["result"] = app.test_cli_runner().invoke(args=["chat", PHONE], input=stdin)

    thread = threading.Thread(target=chat)
    thread.start()
    with os.fdopen(write_end, "wb", buffering=0) as typed:
        typed.write(b"I saw the ocean\n")
        deadline = time.monotonic() + 30
        while count(services.db, Message, direction="in") < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        # While the chat is open, the worker sends the therapy nudge 90 minutes later.
        clock.advance(hours=2)
        ids = scheduling.all_due_ids(services, clock.now())
        assert ids and delivery.deliver_batch(services, ids).get("sent")
        typed.write(b"It felt important\n")
    thread.join(timeout=60)
    output = outcome["result"].output
    sent = [line for line in output.splitlines() if line.startswith("bot (sent)> ")]
    assert len(sent) == 1 and "therapist" in sent[0]
    lines = output.splitlines()
    assert lines.index(sent[0]) < max(i for i, line in enumerate(lines) if "bot> " in line)


# ---------------------------------------------------------------- item 13: Redis, clock


def test_cli_commands_find_the_redis_url_make_run_published(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / REDIS_URL_FILE).write_text("unix:///tmp/x/redis.sock?db=0\n")
    found = Settings.from_env({"INSTANCE_PATH": str(instance)})
    assert found.redis_url == "unix:///tmp/x/redis.sock?db=0"
    explicit = Settings.from_env({"INSTANCE_PATH": str(instance), "REDIS_URL": "redis://h/0"})
    assert explicit.redis_url == "redis://h/0"
    production = Settings.from_env({"INSTANCE_PATH": str(instance), "BOT_ENV": "production"})
    assert production.redis_url == ""


def test_a_half_written_clock_file_does_not_crash_a_reader(tmp_path):
    path = tmp_path / "now.txt"
    at = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    clock = FileClock(path)
    clock.set(at)
    assert clock.now() == at
    path.write_text("2026-11-2")  # someone's `echo` caught mid-write
    assert clock.now() == at
    with pytest.raises(ValueError, match="ISO-8601"):
        FileClock(path).now()  # a fresh reader with nothing good to fall back on says why
    FileClock(path).set(at + timedelta(hours=1))
    assert clock.now() == at + timedelta(hours=1)
    assert [p.name for p in tmp_path.iterdir()] == ["now.txt"]  # no temporary files left


def test_clock_commands_move_every_reader(tmp_path, db, clock, sender):
    from bot import create_app
    from bot.services import build_services

    path = tmp_path / "clock" / "now.txt"
    settings = make_settings(tmp_path, db.url, clock_file=str(path))
    app = create_app(services=build_services(settings, clock=clock, sender=sender, db=db))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["clock", "set", "2026-11-23T15:00:00+00:00"]).exit_code == 0
    assert runner.invoke(args=["clock", "advance", "90m"]).exit_code == 0
    assert FileClock(path).now() == datetime(2026, 11, 23, 16, 30, tzinfo=UTC)
    bad = runner.invoke(args=["clock", "set", "2026-11-23 15:00"])
    assert bad.exit_code != 0 and "offset" in bad.output


# ---------------------------------------------------------------- make run, end to end


def _listening_addresses(port: int) -> set[str]:
    """Local IPv4 addresses with a socket listening on port (Linux /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.mark.integration
def test_make_run_is_local_signed_and_reachable_from_another_terminal(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.test_dev_run import free_port

    port, instance = free_port(), tmp_path / "instance"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "REDIS_URL", "DATABASE_URL", "SMS_BACKEND",
                                "BIND_ADDRESS", "ALLOW_UNSIGNED"))}
    env.update(INSTANCE_PATH=str(instance), PORT=str(port), WEB_CONCURRENCY="1")
    proc = subprocess.Popen([sys.executable, "-m", "bot.dev"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ok":
                        break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        assert _listening_addresses(port) == {"127.0.0.1"}
        # A second terminal: the CLI finds the embedded Redis without REDIS_URL.
        status = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "bot", "nudges", "status"],
            env=env, capture_output=True, text=True, timeout=60)
        assert "rq queue     0" in status.stdout, status.stdout + status.stderr
        # Unsigned texts are refused; texts signed with the dev token get in.
        params = {"MessageSid": "SM" + "1" * 32, "From": "+15551234567", "Body": "hi",
                  "To": "+15005550006"}
        data = urllib.parse.urlencode(params).encode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/twilio/sms", data=data, timeout=10)
        assert refused.value.code == 403
        settings = Settings(env="development", instance_path=str(instance))
        signed = urllib.request.Request(f"{base}/twilio/sms", data=data, headers={
            "X-Twilio-Signature": sign(settings, f"{base}/twilio/sms", params)})
        with urllib.request.urlopen(signed, timeout=10) as answer:
            assert answer.status == 200 and b"enrolled" in answer.read()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=30)
    assert not (instance / REDIS_URL_FILE).exists()  # nothing stale for the next command
