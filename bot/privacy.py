"""DELETE: erase what a participant told us, keep only a hashed do-not-text record.

What stays: the participant row with its phone hash (so the number is never
texted again by mistake), status `deleted`, and consent/opt-out times. What
goes: the phone number itself, name, journal entries, intentions, actions,
moods, every message body, and every pending scheduled message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update

from bot import journal_links
from bot.storage.models import (
    AuditRecord,
    JournalEntry,
    Message,
    Participant,
    SafetyPlan,
    ScheduledMessage,
    Session,
)
from flows.state import ConversationState


def erase_participant(db, participant: Participant, now: datetime, actor: str = "participant") -> None:
    """Erase the participant's personal data in the current transaction."""
    pid = participant.id
    journal_links.revoke_all(db, pid, now)
    db.execute(delete(JournalEntry).where(JournalEntry.participant_id == pid))
    db.execute(delete(SafetyPlan).where(SafetyPlan.participant_id == pid))
    db.execute(update(Session).where(Session.participant_id == pid)
               .values(intention=None, action=None, mood=None, therapy_booked=None))
    db.execute(update(Message).where(Message.participant_id == pid).values(body=None))
    db.execute(update(ScheduledMessage).where(ScheduledMessage.participant_id == pid,
                                              ScheduledMessage.status == "pending")
               .values(status="cancelled", updated_at=now))
    db.execute(update(ScheduledMessage).where(ScheduledMessage.participant_id == pid)
               .values(body=None))
    participant.phone = None
    participant.name = None
    participant.bedtime = None
    participant.mindfulness_time = None
    participant.has_therapist = None
    participant.status = "deleted"
    participant.consented_before = False
    participant.opted_out_at = now
    participant.state = ConversationState().to_dict()
    db.add(AuditRecord(at=now, actor=actor, action="delete", participant_id=pid))


def audit(db, actor: str, action: str, participant_id: int | None, now: datetime) -> None:
    """Record that someone looked at or changed personal data."""
    db.add(AuditRecord(at=now, actor=actor, action=action, participant_id=participant_id))
