"""When processing a stored text fails, nothing is lost and a crisis still gets 988."""

from __future__ import annotations

from sqlalchemy import select

from bot import jobs, runner, scheduling
from bot.storage.models import Message
from tests.conftest import PHONE
from tests.test_conversation import enroll


def break_turns(monkeypatch):
    """Make every engine turn crash (a bug, a database hiccup...)."""
    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(runner, "take_turn", boom)


def test_failed_turn_is_retried_by_a_worker_and_answered_by_rest(
        client, services, phone, sender, monkeypatch, clock, db):
    enroll(client, services, phone)
    with monkeypatch.context() as patch:
        break_turns(patch)
        response = phone.post(phone.params("done"))
        assert response.status_code == 200 and b"<Message>" not in response.data
    with db.session() as s:
        stored = s.scalars(select(Message).where(Message.direction == "in")
                           .order_by(Message.id.desc())).first()
        assert stored.status == "failed" and stored.body == "done"
    # The clock process finds it (its job was never enqueued: no Redis here) ...
    clock.advance(seconds=scheduling.INBOUND_RETRY_AFTER.total_seconds() + 1)
    assert stored.id in scheduling.stuck_inbound_ids(services, clock.now())
    # ... and a worker processes it, replying through the REST API.
    jobs.use_services(services)
    try:
        before = len(sender.sent)
        jobs.retry_inbound(stored.id)
        with db.session() as s:
            queued = [m.id for m in s.scalars(select(Message).where(
                Message.status == "queued"))]
        jobs.send_outbound(queued)
    finally:
        jobs.use_services(None)
    replies = [s.body for s in sender.sent[before:]]
    assert any("rest" in r.lower() for r in replies)
    assert all(s.to == PHONE for s in sender.sent[before:])


def test_crisis_text_gets_988_even_when_the_turn_fails(client, services, phone, monkeypatch):
    enroll(client, services, phone)
    break_turns(monkeypatch)
    response = phone.post(phone.params("I am going to end my life tonight"))
    assert response.status_code == 200 and b"988" in response.data
    ordinary = phone.post(phone.params("the ocean"))
    assert b"988" not in ordinary.data


def test_retry_after_timeout_window_not_before(client, services, phone, monkeypatch, clock):
    enroll(client, services, phone)
    break_turns(monkeypatch)
    phone.post(phone.params("done"))
    assert scheduling.stuck_inbound_ids(services, clock.now()) == []
    clock.advance(seconds=scheduling.INBOUND_RETRY_AFTER.total_seconds() + 1)
    assert len(scheduling.stuck_inbound_ids(services, clock.now())) == 1

