"""The human handoff: a clinician opens a conversation and the bot steps back on free text.

While a conversation is open, an inbound text that is not a safety concern, a
STOP/START/HELP request or another keyword is left for the clinician: the engine
does not run, nothing is answered automatically. Scheduled nudges are held by
setting the participant's hold (the same hold a crisis sets), and released when
the conversation closes. Staff texts go out through the bot's REST sending path
(rate limit, status callbacks) and are stored encrypted like any other message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot import delivery, queue
from bot.storage.models import (
    CareConversation,
    CareReply,
    Message,
    Participant,
    ScheduledMessage,
)
from flows import keywords, safety, schedule, sms_text

log = logging.getLogger(__name__)

HANDOFF_HOLD = timedelta(hours=12)
"""How long an open conversation holds nudges; closing it releases them at once."""

STAFF_KEY = "care.reply"
"""The message key of a text a clinician wrote."""

BOT_KEYWORDS_IN_HANDOFF = frozenset(
    {keywords.OPT_OUT, keywords.OPT_IN, keywords.HELP, keywords.DONE, keywords.JOURNAL,
     keywords.INTENTION, keywords.PAUSE, keywords.RESUME, keywords.TIMEZONE,
     keywords.BEDTIME, keywords.THERAPIST, keywords.SESSION, keywords.MINDFULNESS,
     keywords.FINISHED, keywords.DELETE, keywords.SHARE})
"""Keywords the bot still answers during a conversation ("yes", "ok", "skip" are replies to
the clinician)."""


class HandoffError(ValueError):
    """A conversation action that cannot be done (message is safe to show)."""


@dataclass(frozen=True)
class Sent:
    """A staff text that was stored and handed to the sending path."""

    message_id: int
    segments: int
    warnings: tuple[str, ...]


def open_for(db, participant_id: int) -> CareConversation | None:
    """The participant's open conversation, if any."""
    return db.scalars(select(CareConversation).where(
        CareConversation.participant_id == participant_id,
        CareConversation.status == "open").order_by(CareConversation.id.desc())).first()


def open_conversation(db, participant: Participant, staff_id: int,
                      now: datetime) -> CareConversation:
    """Open (or return the already open) conversation and hold the participant's nudges."""
    current = open_for(db, participant.id)
    if current is not None:
        return current
    if participant.status == "deleted":
        raise HandoffError("this participant's data was deleted")
    hold = now + HANDOFF_HOLD
    conversation = CareConversation(
        participant_id=participant.id, status="open", opened_by=staff_id, opened_at=now,
        hold_set=hold, prior_hold=participant.hold_until)
    participant.hold_until = max(hold, participant.hold_until or hold)
    db.add(conversation)
    db.flush()
    return conversation


def close_conversation(db, participant: Participant, staff_id: int, now: datetime) -> bool:
    """Hand the participant back to the bot and release held nudges; False when none open."""
    conversation = open_for(db, participant.id)
    if conversation is None:
        return False
    conversation.status, conversation.closed_by, conversation.closed_at = "closed", staff_id, now
    if participant.hold_until == conversation.hold_set:
        # Our hold is the one in force (a crisis during the conversation sets a longer one,
        # which stays): go back to whatever hold was there before, if it still runs.
        prior = conversation.prior_hold
        participant.hold_until = prior if prior and prior > now else None
        if participant.hold_until is None:
            _release_held(db, participant, conversation, now)
    return True


def _release_held(db, participant: Participant, conversation: CareConversation,
                  now: datetime) -> int:
    """Nudges pushed to the end of our hold go out now (the sending window still applies)."""
    view = schedule.ParticipantView(timezone=participant.timezone)
    pushed_until = schedule.next_allowed(conversation.hold_set, view)
    result = db.execute(update(ScheduledMessage).where(
        ScheduledMessage.participant_id == participant.id,
        ScheduledMessage.status == "pending",
        ScheduledMessage.due_at >= conversation.hold_set,
        ScheduledMessage.due_at <= pushed_until,
    ).values(due_at=now, updated_at=now))
    return result.rowcount or 0


def takes_over(services, message_id: int) -> bool:
    """Whether the participant who sent this text is in an open conversation."""
    with services.db.session() as db:
        # One indexed lookup per inbound text (most texts arrive with no conversation open).
        return db.scalar(select(CareConversation.id).join(
            Message, Message.participant_id == CareConversation.participant_id).where(
            Message.id == message_id, CareConversation.status == "open").limit(1)) is not None


def is_for_clinician(text: str | None, opt_out_type: str | None = None) -> bool:
    """True for free text the clinician answers; False for what the bot must still handle."""
    if opt_out_type or keywords.is_opt_out(text) or keywords.is_spelled_out(text):
        return False
    if keywords.keyword(text) in BOT_KEYWORDS_IN_HANDOFF:
        return False
    return not safety.assess(text or "").alert


def check_text(body: str) -> tuple[str, ...]:
    """Warnings about a staff text (non-GSM-7 characters, more than 2 segments): never blocks."""
    return tuple(sms_text.problems(body))


def queue_staff_text(db, participant: Participant, staff_id: int, body: str,
                     now: datetime) -> Sent:
    """Store a clinician's text as a queued outbound message (sent after commit)."""
    body = (body or "").strip()
    if not body:
        raise HandoffError("write something to send")
    if len(body) > 1600:
        raise HandoffError("a text can be at most 1600 characters")
    if participant.status in ("opted_out", "deleted", "unreachable") or not participant.phone:
        raise HandoffError(f"cannot text a participant who is {participant.status}")
    conversation = open_for(db, participant.id)
    segments = sms_text.segments(body)
    message = Message(
        participant_id=participant.id, direction="out", key=STAFF_KEY,
        channel=participant.channel, status="queued", body=body, segments=segments,
        created_at=now, updated_at=now)
    db.add(message)
    db.flush()
    db.add(CareReply(message_id=message.id, staff_id=staff_id,
                     conversation_id=conversation.id if conversation else None))
    return Sent(message.id, segments, check_text(body))


def send_queued(services, message_ids: list[int]) -> None:
    """Hand staff texts to a worker (the bot's REST path); send here when no queue answers."""
    if services.redis_url:
        try:
            queue.enqueue_outbound(services, message_ids)
            return
        except Exception:
            log.exception("could not enqueue a staff text; sending it from the web process")
    delivery.send_outbound(services, message_ids)
