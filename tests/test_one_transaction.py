"""The webhook's one-transaction turn: what a participant would notice if it went wrong.

A turn that fails part-way keeps the text (for a worker's retry) and nothing else it
wrote; the participant is answered exactly once. A connection the database dropped
never costs a participant their answer.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from bot import jobs, runner, scheduling, storage
from bot.storage.models import Message, Participant, ScheduledMessage, Session
from tests.conftest import PHONE, Phone, replies
from tests.test_conversation import count, enroll


def test_a_turn_that_fails_after_writing_keeps_only_the_text_and_is_answered_once(
        client, services, phone, sender, monkeypatch, clock, db):
    enroll(client, services, phone)
    before = count(db, Session)
    with monkeypatch.context() as patch:
        def boom(*args, **kwargs):
            raise RuntimeError("the plan could not be written")

        # DONE has already written its session and cancelled the old plan when this fails.
        patch.setattr(scheduling, "_upsert", boom)
        response = phone.post(phone.params("done"))
    assert response.status_code == 200 and replies(response) == []
    # Rolled back to the savepoint: no half-done session, no plan; the text is kept.
    assert count(db, Session) == before
    assert count(db, ScheduledMessage, plan="post_session") == 0
    with db.session() as s:
        stored = s.scalars(select(Message).where(Message.direction == "in")
                           .order_by(Message.id.desc())).first()
        assert (stored.status, stored.attempts, stored.body) == ("failed", 1, "done")
        assert s.scalars(select(Message).where(Message.reply_to_id == stored.id)).all() == []
    # The clock hands it to a worker, which answers through the REST API: once.
    clock.advance(seconds=scheduling.INBOUND_RETRY_AFTER.total_seconds() + 1)
    assert scheduling.stuck_inbound_ids(services, clock.now()) == [stored.id]
    sent_before = len(sender.sent)
    jobs.use_services(services)
    try:
        jobs.retry_inbound(stored.id)
        jobs.retry_inbound(stored.id)  # a duplicate job changes nothing
        with db.session() as s:
            queued = list(s.scalars(select(Message.id).where(Message.status == "queued")))
        jobs.send_outbound(queued)
    finally:
        jobs.use_services(None)
    texts = [m.body for m in sender.sent[sent_before:]]
    assert texts and len(texts) == len(set(texts)) and "rest" in texts[0].lower()
    assert all(m.to == PHONE for m in sender.sent[sent_before:])
    assert count(db, Session) == before + 1
    assert count(db, ScheduledMessage, plan="post_session", status="pending") > 0
    assert scheduling.stuck_inbound_ids(services, clock.now()) == []


def test_a_replayed_text_whose_first_copy_failed_is_not_run_again(
        client, services, phone, monkeypatch, db):
    enroll(client, services, phone)
    params = phone.params("done")
    turns = []
    real_take_turn = runner.take_turn

    def fail_once(*args, **kwargs):
        turns.append(1)
        if len(turns) == 1:
            raise RuntimeError("simulated failure")
        return real_take_turn(*args, **kwargs)

    monkeypatch.setattr(runner, "take_turn", fail_once)
    assert replies(phone.post(params)) == []
    assert replies(phone.post(params)) == []  # Twilio's retry: left to the worker
    assert turns == [1]
    assert count(db, Message, direction="in", twilio_sid=params["MessageSid"],
                 status="failed") == 1


def test_a_text_arriving_as_the_connection_drops_is_answered_at_once(
        client, services, phone, monkeypatch, db):
    enroll(client, services, phone)
    real = runner._record_and_turn
    calls = []

    def drop_first(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # what psycopg raises when the server went away mid-request
            raise OperationalError("SELECT ...", {}, Exception("server closed the connection"),
                                   connection_invalidated=True)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_record_and_turn", drop_first)
    texts = phone.text("done")
    assert texts and "rest" in texts[0].lower()  # answered now, not spooled for later
    assert len(calls) == 2
    assert count(db, Message, direction="in") == count(db, Message, direction="in",
                                                        status="processed")
    assert count(db, Session) == 1


def test_a_pooled_connection_that_died_while_idle_costs_no_answer(
        client, services, phone, monkeypatch, db, caplog):
    enroll(client, services, phone)
    monkeypatch.setattr(storage, "IDLE_PING_SECONDS", 0.0)  # every pooled connection is idle
    engine = services.db.engine
    engine.dispose()  # an empty pool: the victim is the first connection handed out next
    victim = engine.raw_connection()
    if engine.dialect.name == "postgresql":
        other = engine.raw_connection()
        cursor = victim.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        victim.commit()
        victim.close()  # back to the pool, alive (first in line); then the server ends it
        cursor = other.cursor()
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
        other.commit()
        other.close()
    else:  # SQLite has no server: the nearest thing is a handle closed under the pool
        victim.dbapi_connection.close()
        victim.close()
    with caplog.at_level(logging.WARNING, logger="bot.runner"):
        texts = phone.text("done")
    assert texts and "rest" in texts[0].lower()
    assert "trying once more" not in caplog.text  # the pool replaced it before the turn
    assert count(db, Message, direction="in", status="processed") == count(
        db, Message, direction="in")
    engine.dispose()  # nothing dead is left in the shared pool for the next test


def test_two_first_texts_from_a_new_number_at_once_are_both_answered(
        client, services, monkeypatch, db):
    from bot import participants

    real_create = participants.create

    def slow_create(*args, **kwargs):
        participant = real_create(*args, **kwargs)  # inserted, not yet committed ...
        time.sleep(0.3)  # ... while the second text arrives
        return participant

    monkeypatch.setattr(participants, "create", slow_create)
    app = client.application
    answers: list[tuple[int, list[str]]] = []
    lock = threading.Lock()

    def text(body: str) -> None:
        response = Phone(app.test_client(), number="+15557770001").post(
            Phone(None, number="+15557770001").params(body))
        with lock:
            answers.append((response.status_code, replies(response)))

    threads = [threading.Thread(target=text, args=(body,)) for body in ("hello", "hi")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=30)
    assert [status for status, _ in answers] == [200, 200]
    assert all(texts for _, texts in answers), answers  # neither went unanswered
    assert count(db, Participant) == 1
    assert count(db, Message, direction="in", status="processed") == 2
