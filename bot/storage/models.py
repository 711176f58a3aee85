"""SQLAlchemy 2 typed models: the database is the source of truth for everything.

Personal text (journal entries, intentions, message bodies, names, phone
numbers) is stored encrypted (bot.crypto.EncryptedText); phone numbers are
found by a keyed hash (`phone_hash`) so lookups never need the clear number.
Every datetime is timezone-aware UTC (UTCDateTime rejects naive values).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from bot.crypto import EncryptedText


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every datetime must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONText(TypeDecorator):
    """A small JSON document kept as text (conversation state)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    def process_result_value(self, value: str | None, dialect) -> Any:
        return None if value is None else json.loads(value)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)


class Participant(Base):
    """A person enrolled (or invited) by phone number."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(EncryptedText)  # E.164, encrypted
    phone_last4: Mapped[str] = mapped_column(String(4), default="")  # for operators and logs
    channel: Mapped[str] = mapped_column(String(16), default="sms")  # sms | whatsapp
    name: Mapped[str | None] = mapped_column(EncryptedText)
    timezone: Mapped[str] = mapped_column(String(64))
    # invited | active | paused | opted_out | unreachable | deleted
    status: Mapped[str] = mapped_column(String(16), default="invited", index=True)
    bedtime: Mapped[str | None] = mapped_column(String(5))  # "HH:MM" local
    mindfulness_time: Mapped[str | None] = mapped_column(String(5))
    has_therapist: Mapped[bool | None] = mapped_column(Boolean)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # after a crisis
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_channel: Mapped[str | None] = mapped_column(String(16))
    consent_version: Mapped[str | None] = mapped_column(String(32))
    consented_before: Mapped[bool] = mapped_column(Boolean, default=False)
    course_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "Reply STOP to stop all texts" was asked then: scheduled texts wait (24 h at most).
    optout_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    state: Mapped[dict | None] = mapped_column(JSONText)  # the engine's conversation state
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    sessions: Mapped[list[Session]] = relationship(
        back_populates="participant", order_by="Session.id", cascade="all, delete-orphan"
    )


class Session(Base):
    """One treatment session: maybe scheduled, maybe with an intention, maybe done."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    intention: Mapped[str | None] = mapped_column(EncryptedText)
    action: Mapped[str | None] = mapped_column(EncryptedText)  # the "one small action"
    therapy_booked: Mapped[bool | None] = mapped_column(Boolean)
    mood: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    participant: Mapped[Participant] = relationship(back_populates="sessions")
    entries: Mapped[list[JournalEntry]] = relationship(
        back_populates="session", order_by="JournalEntry.id", cascade="all, delete-orphan"
    )


class JournalEntry(Base):
    """One answer to a journaling question (or a free note), encrypted."""

    __tablename__ = "journal_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    prompt: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    session: Mapped[Session] = relationship(back_populates="entries")


def partial_index(name: str, *columns: str, where: str) -> Index:
    """An index over only the rows matching `where` (PostgreSQL and SQLite alike).

    A query uses it only when its own WHERE repeats `where` with the same constants
    written into the SQL (bot.scheduling does), not as bound parameters.
    """
    return Index(name, *columns, postgresql_where=text(where), sqlite_where=text(where))


INBOUND_WAITING = "direction = 'in' AND status IN ('received', 'failed')"
"""Inbound texts stored but not yet answered: the clock retries them (a handful at most)."""
OUTBOUND_QUEUED = "direction = 'out' AND status = 'queued'"
"""Replies waiting for the REST API: the clock re-drives them when their job was lost."""
OUTBOUND_SENDING = "direction = 'out' AND status = 'sending'"
"""REST replies a worker claimed: the clock reconciles those left behind (bot.reconcile)."""
SCHEDULED_PENDING = "status = 'pending'"
"""Timers not yet sent: the clock's due query reads them in due order."""


class Message(Base):
    """A text in or out, with Twilio's SID and delivery status; body encrypted."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_participant_created", "participant_id", "created_at"),
        # The clock's stuck-message queries read these each second: without them they
        # scan every text ever sent (migration 0008).
        partial_index("ix_messages_inbound_waiting", "updated_at", where=INBOUND_WAITING),
        partial_index("ix_messages_outbound_queued", "updated_at", where=OUTBOUND_QUEUED),
        partial_index("ix_messages_outbound_sending", "updated_at", where=OUTBOUND_SENDING),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    scheduled_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_messages.id"))
    key: Mapped[str | None] = mapped_column(String(64))  # message key of outbound words
    channel: Mapped[str] = mapped_column(String(16), default="sms")
    # in: received | processed | failed ; out: reply | queued | sent | delivered | ...
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    segments: Mapped[int | None] = mapped_column(Integer)
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[str | None] = mapped_column(EncryptedText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduledMessage(Base):
    """A timed nudge: the only source of truth for timers (Redis only carries work)."""

    __tablename__ = "scheduled_messages"
    __table_args__ = (
        UniqueConstraint("participant_id", "kind", "scope", name="uq_scheduled_key"),
        Index("ix_scheduled_due", "status", "due_at"),
        # The dispatch pass reads due rows in (due_at, id) order from this one (migration
        # 0008); expired leases are found through ix_scheduled_due (status = 'sending').
        partial_index("ix_scheduled_pending_due", "due_at", "id", where=SCHEDULED_PENDING),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"))
    plan: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64))
    message_key: Mapped[str] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(EncryptedText)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    condition: Mapped[str | None] = mapped_column(String(32))
    expects_reply: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending | sending | sent | delivered | undelivered | failed | cancelled | expired
    status: Mapped[str] = mapped_column(String(16), default="pending")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last handed to RQ
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    twilio_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """A crisis or urgent signal for the care team (level and category, never text)."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    last_paged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    signals: Mapped[int] = mapped_column(Integer, default=1)  # risky texts attached
    last_signal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRecord(Base):
    """Who looked at or changed personal data, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    participant_id: Mapped[int | None] = mapped_column(Integer)


class JournalLink(Base):
    """A private link to a participant's journal page: the signed token names this row."""

    __tablename__ = "journal_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- care-team console


class StaffUser(Base):
    """A care-team account for the console (no default account exists)."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # clinician | admin
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2; None until set up
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    totp_last_step: Mapped[int | None] = mapped_column(Integer)  # refuses a replayed code
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    setup_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """One failed console sign-in, counted per account and per address to throttle guessing."""

    __tablename__ = "staff_login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CareConversation(Base):
    """A clinician talking with a participant: while open, the bot steps back on free text."""

    __tablename__ = "care_conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | closed
    opened_by: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hold_set: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the nudge hold we set
    prior_hold: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the hold before it


class CareReply(Base):
    """Which clinician wrote an outbound text (the text itself is a Message row)."""

    __tablename__ = "care_replies"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("care_conversations.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))


class AlertNote(Base):
    """The note a clinician left when acknowledging an alert (encrypted)."""

    __tablename__ = "alert_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str | None] = mapped_column(EncryptedText)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class JournalShare(Base):
    """A participant's choice to share journal answers with the care team."""

    __tablename__ = "journal_shares"

    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    share: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------- the safety path (issue 9)


class SafetyCheck(Base):
    """A YES/NO safety question asked after an uncertain text: the timer for 'unanswered'."""

    __tablename__ = "safety_checks"
    __table_args__ = (Index("ix_safety_checks_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # no answer by then: page
    # open | yes | no | unclear | crisis | repeated | unanswered
    status: Mapped[str] = mapped_column(String(16), default="open")
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertSignal(Base):
    """One risky text attached to an open alert (when, and what kind; never the words)."""

    __tablename__ = "alert_signals"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    category: Mapped[str | None] = mapped_column(String(32))


class AlertPage(Base):
    """One page attempt to one care-team number, with what the SMS provider said."""

    __tablename__ = "alert_pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    to_last4: Mapped[str] = mapped_column(String(4))
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | failed
    error_code: Mapped[int | None] = mapped_column(Integer)
    twilio_sid: Mapped[str | None] = mapped_column(String(64))


class SafetyPlan(Base):
    """A participant's personal safety plan (Stanley-Brown sections), encrypted JSON."""

    __tablename__ = "safety_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), unique=True)
    sections: Mapped[str] = mapped_column(EncryptedText)  # JSON {section: text}
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
