"""Delivery through real Redis, real RQ workers and the real twilio SDK talking to FakeTwilio.

The database is the source of truth: losing Redis loses nothing, two workers and
two schedulers never send a row twice, and a worker killed mid-send leaves its
row to be retried once its lease runs out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from bench import send_rate
from bot import jobs, queue, scheduling
from bot.clock import FileClock
from bot.delivery import LEASE
from bot.fake_twilio import FakeTwilio
from bot.services import build_services
from bot.storage.models import ScheduledMessage
from tests.conftest import AUTH_TOKEN, PHONE, START, Phone, make_settings
from tests.test_conversation import enroll

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_twilio():
    """The project's fake Twilio API on a free local port."""
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def clock_file(tmp_path):
    """A clock shared with worker subprocesses through a file."""
    clock = FileClock(tmp_path / "now.txt")
    clock.set(START)
    return clock


@pytest.fixture
def rq_settings(tmp_path, db, redis_url, fake_twilio, clock_file):
    """Settings that reach the fake Twilio server and the test Redis."""
    return make_settings(tmp_path, db.url, redis_url=redis_url,
                         twilio_api_base_url=fake_twilio.base_url,
                         clock_file=str(clock_file.path), sms_max_per_second=100.0,
                         care_team_numbers=())


@pytest.fixture
def rq_services(rq_settings, db, redis_conn, clock_file):
    """Adapters with the real Twilio sender (pointed at the fake) and real Redis."""
    services = build_services(rq_settings, clock=clock_file, db=db)
    jobs.use_services(services)
    yield services
    jobs.use_services(None)


def worker_env(settings) -> dict[str, str]:
    """The environment a worker subprocess needs to reach the same everything."""
    return {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}


def start_worker(settings, *, burst: bool) -> subprocess.Popen:
    """A real `rq worker` process, as the Procfile runs it."""
    args = [sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.worker.SimpleWorker",
            "--url", settings.redis_url, settings.queue_name]
    if burst:
        args.insert(4, "--burst")
    return subprocess.Popen(args, env=worker_env(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def work_in_process(services) -> None:
    """Run queued jobs here with RQ's SimpleWorker until the queue is empty."""
    queue = Queue(services.settings.queue_name, connection=services.redis)
    SimpleWorker([queue], connection=services.redis).work(burst=True)


def add_participants(services, count: int) -> list[int]:
    """Active participants (+15552000000, ...) in New York with one due nudge each; the row ids."""
    return send_rate.add_due_nudges(services, count, zone="America/New_York")


def statuses(services) -> dict[int, str]:
    """Scheduled row id -> status."""
    with services.db.session() as db:
        return dict(db.execute(select(ScheduledMessage.id, ScheduledMessage.status)).all())


def test_nudges_reach_twilio_through_rq_at_their_times(rq_services, client_for, fake_twilio,
                                                      clock_file):
    client = client_for(rq_services)
    phone = Phone(client)
    enroll(client, rq_services, phone)
    phone.text("done")
    with rq_services.db.session() as db:
        plan = db.scalars(select(ScheduledMessage).where(ScheduledMessage.status == "pending")
                          .order_by(ScheduledMessage.due_at)).all()
        first_two = [(r.due_at, r.body) for r in plan[:2]]
    invites = len(fake_twilio.messages)
    for due_at, body in first_two:
        clock_file.set(due_at - timedelta(minutes=1))
        scheduling.dispatch_due(rq_services)
        work_in_process(rq_services)
        assert body not in [m["body"] for m in fake_twilio.messages], "sent early"
        clock_file.set(due_at)
        scheduling.dispatch_due(rq_services)
        work_in_process(rq_services)
        assert [m["body"] for m in fake_twilio.messages].count(body) == 1
    sent = fake_twilio.messages[invites:]
    assert [m["to"] for m in sent] == [PHONE, PHONE]
    assert all(m["from"] == "+15005550006" for m in sent)


def test_redis_flush_loses_nothing_and_doubles_nothing(rq_services, redis_conn, fake_twilio,
                                                       clock_file):
    ids = add_participants(rq_services, 12)
    assert scheduling.dispatch_due(rq_services) == 12
    redis_conn.flushall()  # Redis restarts without persistence: every job is gone
    work_in_process(rq_services)
    assert fake_twilio.messages == []
    assert set(statuses(rq_services).values()) == {"pending"}
    # The data is back; within REQUEUE_AFTER the scheduler hands the rows over again.
    clock_file.set(START + scheduling.REQUEUE_AFTER + timedelta(seconds=1))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    bodies = sorted(m["body"] for m in fake_twilio.messages)
    assert bodies == sorted(f"walk reminder {n}" for n in range(12))
    assert set(statuses(rq_services).values()) == {"sent"}
    assert {r for r in statuses(rq_services)} == set(ids)


def test_two_workers_and_two_schedulers_never_send_twice(rq_services, rq_settings, fake_twilio):
    count = 60
    add_participants(rq_services, count)
    # Two schedulers at once, and a third hand-over of every row for good measure.
    passes = [threading.Thread(target=scheduling.dispatch_due, args=(rq_services,))
              for _ in range(2)]
    for t in passes:
        t.start()
    for t in passes:
        t.join()
    with rq_services.db.session() as db:
        every = list(db.scalars(select(ScheduledMessage.id)))
    queue.enqueue_scheduled(rq_services, every)
    workers = [start_worker(rq_settings, burst=True) for _ in range(2)]
    try:
        for w in workers:
            assert w.wait(timeout=120) == 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    bodies = [m["body"] for m in fake_twilio.messages]
    assert len(bodies) == count and len(set(bodies)) == count
    assert set(statuses(rq_services).values()) == {"sent"}


def test_worker_killed_after_twilio_accepted_is_reconciled_not_sent_again(
        rq_services, rq_settings, fake_twilio, clock_file):
    (row_id,) = add_participants(rq_services, 1)
    fake_twilio.latency = 30.0  # Twilio has the text but its answer hangs: the worker dies
    scheduling.dispatch_due(rq_services)
    worker = start_worker(rq_settings, burst=False)
    try:
        deadline = time.monotonic() + 60
        while fake_twilio.attempts() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_twilio.attempts() == 1
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    fake_twilio.latency = 0.0
    assert statuses(rq_services)[row_id] == "sending"
    # Before the lease runs out nobody may take the row.
    clock_file.set(START + LEASE - timedelta(seconds=1))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert statuses(rq_services)[row_id] == "sending"
    # After it, the clock asks Twilio first: the text is in its list, so it is recorded.
    clock_file.set(START + LEASE + timedelta(seconds=1))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert statuses(rq_services)[row_id] == "sent"
    assert fake_twilio.attempts() == 1, "the text went out twice"
    with rq_services.db.session() as db:
        assert db.get(ScheduledMessage, row_id).twilio_sid == fake_twilio.messages[0]["sid"]


def test_worker_killed_before_twilio_took_the_text_sends_it_after_the_lease(
        rq_services, rq_settings, fake_twilio, clock_file):
    (row_id,) = add_participants(rq_services, 1)
    fake_twilio.fail_next(503, count=1000)  # Twilio is down: nothing is accepted
    fake_twilio.latency = 30.0
    scheduling.dispatch_due(rq_services)
    worker = start_worker(rq_settings, burst=False)
    try:
        deadline = time.monotonic() + 60
        while fake_twilio.attempts() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_twilio.attempts() == 1
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    fake_twilio.clear()
    fake_twilio.latency = 0.0
    clock_file.set(START + LEASE + timedelta(seconds=1))
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert statuses(rq_services)[row_id] == "sent"
    assert len(fake_twilio.messages) == 1


def test_sender_errors_retry_or_stop(rq_services, fake_twilio, clock_file):
    first, second = add_participants(rq_services, 2)
    fake_twilio.fail_to("+15552000000", 21610)
    fake_twilio.fail_to("+15552000001", 429)
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    status = statuses(rq_services)
    assert status[first] == "failed"  # opted out at the carrier
    with rq_services.db.session() as db:
        retried = db.get(ScheduledMessage, second)
        assert retried.status == "pending" and retried.error_code == 20429
        due = retried.due_at
    fake_twilio.clear()  # Twilio is taking messages again
    clock_file.set(due)
    scheduling.dispatch_due(rq_services)
    work_in_process(rq_services)
    assert statuses(rq_services)[second] == "sent"


def test_a_care_team_page_lost_with_redis_is_sent_by_the_clock_once(
        rq_settings, db, redis_conn, clock_file, fake_twilio, client_for):
    care_team = "+15557654321"
    services = build_services(replace(rq_settings, care_team_numbers=(care_team,)),
                              clock=clock_file, db=db)
    jobs.use_services(services)
    try:
        phone = Phone(client_for(services))
        enroll(phone.client, services, phone)
        assert "988" in " ".join(phone.text("I took the whole bottle of pills"))
        redis_conn.flushall()  # the page's job is lost before any worker ran it
        clock_file.set(START + timedelta(minutes=1))
        scheduling.dispatch_due(services)
        work_in_process(services)
        scheduling.dispatch_due(services)  # the next pass does not page again
        work_in_process(services)
    finally:
        jobs.use_services(None)
    pages = [m for m in fake_twilio.messages if m["to"] == care_team]
    assert len(pages) == 1
    assert "CRISIS" in pages[0]["body"] and "pills" not in pages[0]["body"]
