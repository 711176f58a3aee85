"""Finding participants by phone number and describing them to the engine.

Numbers are stored encrypted; lookups use `phone_hash`, an HMAC-SHA256 of the
E.164 number under PHONE_HASH_KEY, so the clear number is never in a query.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import aliased

from bot.phones import Address, guess_timezone
from bot.storage.models import (
    CareConversation,
    Message,
    Participant,
    ScheduledMessage,
    Session,
)
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
    return _fresh(_latest_open(db, participant.id), now)


def _latest_open_id(participant_id):
    """Query: the id of the participant's newest not-done session (LIMIT 1)."""
    return (select(Session.id)
            .where(Session.participant_id == participant_id, Session.done_at.is_(None))
            .order_by(Session.id.desc()).limit(1))


def _last_done_id(participant_id):
    """Query: the id of the participant's most recently done session (LIMIT 1)."""
    return (select(Session.id)
            .where(Session.participant_id == participant_id, Session.done_at.is_not(None))
            .order_by(Session.done_at.desc(), Session.id.desc()).limit(1))


def _latest_open(db: DbSession, participant_id: int) -> Session | None:
    """The participant's newest not-done session, stale or not."""
    return db.scalars(select(Session).where(
        Session.id == _latest_open_id(participant_id).scalar_subquery())).first()


def _fresh(session: Session | None, now: datetime) -> Session | None:
    """The session, unless it was booked (or started) too long ago to be the one meant now."""
    if session is None:
        return None
    since = session.scheduled_at or session.created_at
    if since and (now - since).days >= STALE_OPEN_SESSION_DAYS:
        # A session booked (or an intention set) long ago and never done is not the
        # one the participant means now.
        return None
    return session


def _for_done(session: Session | None, now: datetime) -> Session | None:
    """The open session DONE marks: not one still more than DONE_EARLY in the future."""
    if session is not None and session.scheduled_at and session.scheduled_at > now + DONE_EARLY:
        return None  # that session is still ahead (tomorrow's): DONE is about another one
    return session


def session_for_done(db: DbSession, participant: Participant, now: datetime) -> Session | None:
    """The open session DONE marks: not one still more than DONE_EARLY in the future."""
    return _for_done(open_session(db, participant, now), now)


def last_done_session(db: DbSession, participant: Participant) -> Session | None:
    """The most recently done session."""
    return db.scalars(select(Session).where(
        Session.id == _last_done_id(participant.id).scalar_subquery())).first()


_UNREAD = object()
"""A TurnSessions slot not read from the database yet."""


class TurnSessions:
    """The participant's newest open session and last done session, read once per turn.

    Handlers ask here instead of querying, and say what they changed (a session
    opened, a session marked done), so one turn never reads the same session twice.
    A slot that a change makes uncertain is read again only if someone asks.
    """

    def __init__(self, db: DbSession, participant: Participant, *,
                 latest_open: Session | None | object = _UNREAD,
                 last_done: Session | None | object = _UNREAD):
        self.db, self.participant = db, participant
        self._open, self._done = latest_open, last_done

    def open(self, now: datetime) -> Session | None:
        """As open_session(): the not-yet-done session DONE would mark."""
        if self._open is _UNREAD:
            self._open = _latest_open(self.db, self.participant.id)
        return _fresh(self._open, now)

    def for_done(self, now: datetime) -> Session | None:
        """As session_for_done()."""
        return _for_done(self.open(now), now)

    def last_done(self) -> Session | None:
        """As last_done_session()."""
        if self._done is _UNREAD:
            self._done = last_done_session(self.db, self.participant)
        return self._done

    def opened(self, session: Session) -> None:
        """A new not-done session was added (it has the highest id: the newest open one)."""
        self._open = session

    def marked_done(self, session: Session) -> None:
        """`session` just got its done_at."""
        if self._open is session:
            self._open = _UNREAD  # an older open session may be the newest one now
        last = self.last_done()
        if last is None or (session.done_at, session.id) >= (last.done_at, last.id):
            self._done = session


@dataclass
class TurnFacts:
    """A participant locked for a turn and what the turn reads about them."""

    participant: Participant
    sessions: TurnSessions
    recent_texts: int  # inbound texts in the last minute, as stored when read
    in_conversation: bool  # a clinician has a care conversation open


def load_for_turn(db: DbSession, now: datetime, *, phone_hash: str | None = None,
                  participant_id: int | None = None) -> TurnFacts | None:
    """The participant (row-locked on PostgreSQL) with everything a turn reads, in ONE SELECT.

    Found by phone hash or id. Joined in: the newest open and the last done session
    (each a LIMIT 1 lookup on the participant's sessions), the texts of the last minute,
    and whether a care conversation is open. One round trip instead of five.
    """
    by = "phone_hash" if phone_hash is not None else "id"
    row = db.execute(_turn_query(by), {
        "key": phone_hash if phone_hash is not None else participant_id,
        "since": now - timedelta(minutes=1)}).first()
    if row is None:
        return None
    participant, latest_open, last_done, texts, in_conversation = row
    sessions = TurnSessions(db, participant, latest_open=latest_open, last_done=last_done)
    return TurnFacts(participant, sessions, texts or 0, bool(in_conversation))


@cache
def _turn_query(by: str):
    """load_for_turn's statement, built once (building it costs more than running it)."""
    opened, done = aliased(Session), aliased(Session)
    recent = (select(func.count()).select_from(Message).where(
        Message.participant_id == Participant.id, Message.direction == "in",
        Message.created_at > bindparam("since", type_=Message.created_at.type))
        .correlate(Participant).scalar_subquery())
    conversation = exists().where(CareConversation.participant_id == Participant.id,
                                  CareConversation.status == "open").correlate(Participant)
    key = Participant.phone_hash if by == "phone_hash" else Participant.id
    return (select(Participant, opened, done, recent, conversation)
            .outerjoin_from(Participant, opened, opened.id == _latest_open_id(Participant.id)
                            .correlate(Participant).scalar_subquery())
            .outerjoin_from(Participant, done, done.id == _last_done_id(Participant.id)
                            .correlate(Participant).scalar_subquery())
            .where(key == bindparam("key"))
            .limit(1).with_for_update(of=Participant))


def parse_clock(value: str | None) -> time | None:
    """'HH:MM' from the database as a time."""
    if not value:
        return None
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def recent_texts(db: DbSession, participant: Participant, now: datetime) -> int:
    """Inbound texts from the participant in the last minute."""
    return db.scalar(select(func.count()).select_from(Message).where(
        Message.participant_id == participant.id, Message.direction == "in",
        Message.created_at > now - timedelta(minutes=1))) or 0


def context(db: DbSession, participant: Participant, now: datetime,
            variables: dict[str, str], *, sessions: TurnSessions | None = None,
            texts: int | None = None) -> Context:
    """The engine's read-only view of a participant for one turn (reads what is not given)."""
    sessions = sessions or TurnSessions(db, participant)
    return Context(
        recent_texts=recent_texts(db, participant, now) if texts is None else texts,
        status=participant.status,
        timezone=participant.timezone,
        name=participant.name,
        bedtime=parse_clock(participant.bedtime),
        has_therapist=participant.has_therapist,
        paused_until=participant.paused_until,
        optout_asked_at=participant.optout_asked_at,
        open_session=_info(sessions.open(now)),
        last_session=_info(sessions.last_done()),
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
