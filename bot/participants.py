"""Finding participants by phone number and describing them to the engine.

Numbers are stored encrypted; lookups use `phone_hash`, an HMAC-SHA256 of the
E.164 number under PHONE_HASH_KEY, so the clear number is never in a query.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session as DbSession

from bot.phones import Address, guess_timezone
from bot.storage.models import Message, Participant, ScheduledMessage, Session
from flows.engine import DONE_EARLY
from flows.model import Context, SessionInfo

STALE_OPEN_SESSION_DAYS = 3
"""A session scheduled this many days ago and never marked done is not 'open' any more."""


def hash_phone(phone: str, key: bytes) -> str:
    """The lookup hash of an E.164 number."""
    return hmac.new(key, phone.encode(), hashlib.sha256).hexdigest()


def find(db: DbSession, phone: str, key: bytes, *, lock: bool = False) -> Participant | None:
    """The participant with this number (row-locked for update when lock is set)."""
    query = select(Participant).where(Participant.phone_hash == hash_phone(phone, key))
    if lock:
        query = query.with_for_update()
    return db.scalars(query.limit(1)).first()


def create(db: DbSession, address: Address, key: bytes, now: datetime, *,
           timezone: str | None = None, name: str | None = None,
           default_timezone: str = "America/New_York", status: str = "invited") -> Participant:
    """A new invited participant (nothing is sent until they answer YES)."""
    participant = Participant(
        phone_hash=hash_phone(address.phone, key),
        phone=address.phone,
        phone_last4=address.phone[-4:],
        channel=address.channel,
        name=name,
        timezone=timezone or guess_timezone(address.phone, default_timezone),
        status=status,
        state={},
        created_at=now,
        updated_at=now,
    )
    db.add(participant)
    db.flush()
    return participant


def address_of(participant: Participant) -> str:
    """Where to text the participant (with the channel's prefix)."""
    if participant.channel == "whatsapp":
        return f"whatsapp:{participant.phone}"
    return participant.phone or ""


def open_session(db: DbSession, participant: Participant, now: datetime) -> Session | None:
    """The not-yet-done session DONE would mark (None when it is stale or missing)."""
    session = db.scalars(
        select(Session)
        .where(Session.participant_id == participant.id, Session.done_at.is_(None))
        .order_by(Session.id.desc()).limit(1)
    ).first()
    if session is None:
        return None
    since = session.scheduled_at or session.created_at
    if since and (now - since).days >= STALE_OPEN_SESSION_DAYS:
        # A session booked (or an intention set) long ago and never done is not the
        # one the participant means now.
        return None
    return session


def session_for_done(db: DbSession, participant: Participant, now: datetime) -> Session | None:
    """The open session DONE marks: not one still more than DONE_EARLY in the future."""
    session = open_session(db, participant, now)
    if session is not None and session.scheduled_at and session.scheduled_at > now + DONE_EARLY:
        return None  # that session is still ahead (tomorrow's): DONE is about another one
    return session


def last_done_session(db: DbSession, participant: Participant) -> Session | None:
    """The most recently done session."""
    return db.scalars(
        select(Session)
        .where(Session.participant_id == participant.id, Session.done_at.is_not(None))
        .order_by(Session.done_at.desc(), Session.id.desc()).limit(1)
    ).first()


def parse_clock(value: str | None) -> time | None:
    """'HH:MM' from the database as a time."""
    if not value:
        return None
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def recent_texts(db: DbSession, participant: Participant, now: datetime) -> int:
    """Inbound texts from the participant in the last minute."""
    from sqlalchemy import func

    return db.scalar(select(func.count()).select_from(Message).where(
        Message.participant_id == participant.id, Message.direction == "in",
        Message.created_at > now - timedelta(minutes=1))) or 0


def context(db: DbSession, participant: Participant, now: datetime,
            variables: dict[str, str]) -> Context:
    """The engine's read-only view of a participant for one turn."""
    return Context(
        recent_texts=recent_texts(db, participant, now),
        status=participant.status,
        timezone=participant.timezone,
        name=participant.name,
        bedtime=parse_clock(participant.bedtime),
        has_therapist=participant.has_therapist,
        paused_until=participant.paused_until,
        optout_asked_at=participant.optout_asked_at,
        open_session=_info(open_session(db, participant, now)),
        last_session=_info(last_done_session(db, participant)),
        variables=variables,
    )


def _info(session: Session | None) -> SessionInfo | None:
    """A session as the engine sees it."""
    if session is None:
        return None
    return SessionInfo(scheduled_at=session.scheduled_at, done_at=session.done_at,
                       intention=session.intention, action=session.action)


def cancel_pending(db: DbSession, participant_id: int, now: datetime,
                   plan: str | None = None, exclude_session: int | None = None,
                   session: int | None = None) -> int:
    """Cancel pending scheduled messages (optionally of one plan); returns how many."""
    query = update(ScheduledMessage).where(
        ScheduledMessage.participant_id == participant_id,
        ScheduledMessage.status == "pending",
    )
    if plan is not None:
        query = query.where(ScheduledMessage.plan == plan)
    if session is not None:
        query = query.where(ScheduledMessage.session_id == session)
    if exclude_session is not None:
        query = query.where(ScheduledMessage.session_id != exclude_session)
    result = db.execute(query.values(status="cancelled", updated_at=now))
    return result.rowcount or 0
