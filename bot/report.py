"""What an operator sees of one participant (`flask --app bot participant PHONE --json`).

Counts and times, never journal text; message bodies only for scheduled
messages (the clinic's own words, plus the participant's quoted action).
"""

from __future__ import annotations

from sqlalchemy import func, select

from bot import privacy
from bot.storage.models import JournalEntry, Message, Participant, ScheduledMessage, Session
from flows.state import ConversationState

RECENT_MESSAGES = 20


def _iso(value) -> str | None:
    """UTC ISO-8601 or None."""
    return value.isoformat() if value is not None else None


def participant_report(services, participant_id: int, actor: str) -> dict:
    """One JSON-ready object describing the participant; writes an audit record."""
    now = services.clock.now()
    with services.db.session() as db:
        p = db.get(Participant, participant_id)
        state = ConversationState.from_dict(p.state)
        sessions = db.scalars(select(Session).where(Session.participant_id == p.id)
                              .order_by(Session.id)).all()
        scheduled = db.scalars(select(ScheduledMessage)
                               .where(ScheduledMessage.participant_id == p.id)
                               .order_by(ScheduledMessage.due_at, ScheduledMessage.id)).all()
        messages = db.scalars(select(Message).where(Message.participant_id == p.id)
                              .order_by(Message.id.desc()).limit(RECENT_MESSAGES)).all()
        entries = db.scalar(select(func.count()).select_from(JournalEntry)
                            .where(JournalEntry.participant_id == p.id))
        report = {
            "id": p.id,
            "phone": p.phone,
            "channel": p.channel,
            "status": p.status,
            "timezone": p.timezone,
            "bedtime": p.bedtime,
            "has_therapist": p.has_therapist,
            "paused_until": _iso(p.paused_until),
            "consent": {"at": _iso(p.consent_at), "channel": p.consent_channel,
                        "wording_version": p.consent_version},
            "flow": {"flow": state.flow, "step": state.step} if state.flow else None,
            "awaiting": state.awaiting,
            "journal_entries": entries,
            "sessions": [{"id": s.id, "scheduled_at": _iso(s.scheduled_at),
                          "done_at": _iso(s.done_at), "has_intention": bool(s.intention),
                          "mood": s.mood} for s in sessions],
            "scheduled": [{"kind": r.kind, "scope": r.scope, "due_at": _iso(r.due_at),
                           "expires_at": _iso(r.expires_at), "status": r.status,
                           "body": r.body} for r in scheduled],
            "messages": [{"direction": m.direction, "at": _iso(m.created_at),
                          "status": m.status, "key": m.key, "segments": m.segments}
                         for m in messages],
        }
        privacy.audit(db, actor, "participant.show", p.id, now)
    return report
