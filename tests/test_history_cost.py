"""A participant's long history does not make their turns read (and decrypt) more.

The session lookups (latest done session, open session) fetch one row, so a
journal answer after a year of sessions decrypts as much as one after the first.
"""

from __future__ import annotations

from datetime import timedelta

from bot import crypto, participants
from bot.storage.models import Session
from tests.conftest import PHONE
from tests.test_conversation import enroll


def add_past_sessions(services, count: int, before) -> None:
    """Done sessions with an intention and an action, one a week back from `before`."""
    with services.db.session() as db:
        p = participants.find(db, PHONE, services.phone_hash_key)
        for n in range(count):
            at = before - timedelta(days=7 * (n + 1))
            db.add(Session(participant_id=p.id, scheduled_at=at, done_at=at, created_at=at,
                           intention=f"old intention {n}", action=f"old action {n}"))


def decrypted_during(monkeypatch, turn) -> int:
    """How many stored values were decrypted while `turn()` ran."""
    seen = []
    original = crypto.Keyring.decrypt

    def counting(self, token):
        seen.append(token)
        return original(self, token)

    monkeypatch.setattr(crypto.Keyring, "decrypt", counting)
    try:
        turn()
    finally:
        monkeypatch.setattr(crypto.Keyring, "decrypt", original)
    return len(seen)


def test_a_journal_answer_costs_the_same_after_many_sessions(client, services, phone, clock,
                                                             monkeypatch):
    enroll(client, services, phone)
    phone.text("done")
    clock.advance(seconds=120)
    first = decrypted_during(monkeypatch, lambda: phone.text("The ocean"))
    phone.text("JOURNAL")
    add_past_sessions(services, 60, clock.now() - timedelta(days=1))
    clock.advance(days=3)
    phone.text("done")
    clock.advance(seconds=120)
    replies = []
    later = decrypted_during(monkeypatch, lambda: replies.extend(phone.text("The forest")))
    assert replies, "the answer got no reply"
    assert later == first
