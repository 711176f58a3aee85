"""One function per engine event type: database writes inside the turn's transaction.

Anything that reaches outside the database (texting, enqueuing jobs) is put
on `turn.after_commit` and runs only once the transaction has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session as DbSession

from bot import (
    alerts,
    journal_book,
    journal_links,
    privacy,
    replan,
    safety_checks,
    safety_plan,
    scheduling,
)
from bot import participants as people
from bot.participants import cancel_pending
from bot.storage.models import (
    JournalEntry,
    JournalShare,
    Participant,
    Session,
)
from flows import model as ev

CRISIS_HOLD = timedelta(hours=24)
"""After a crisis, cheerful nudges wait this long."""

PENDING = ("pending", "sending")


@dataclass
class Turn:
    """Everything a handler may touch while carrying out one engine result."""

    services: object  # bot.services.Services
    db: DbSession
    participant: Participant
    now: datetime
    replies: list[ev.SendText] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)  # paged before the reply goes out
    sessions: people.TurnSessions | None = None  # read once per turn (runner passes them)

    def __post_init__(self):
        if self.sessions is None:
            self.sessions = people.TurnSessions(self.db, self.participant)


def apply(turn: Turn, events: tuple[ev.Event, ...]) -> None:
    """Carry out events in order with the handler registered for each type."""
    for event in events:
        HANDLERS[type(event)](turn, event)
    # Plans follow facts: one re-plan after the whole turn, whatever changed.
    if any(replan.needs_replan(event, turn.participant) for event in events):
        replan.replan(turn)


def send_text(turn: Turn, event: ev.SendText) -> None:
    """Queue a reply (TwiML in the webhook, the REST API from a worker)."""
    turn.replies.append(event)
    safety_plan.add_hint(turn, event)  # a crisis reply points to their own plan


def record_consent(turn: Turn, event: ev.RecordConsent) -> None:
    """YES: the participant is in; keep when, how and which wording they agreed to."""
    p = turn.participant
    p.status = "active"
    p.consent_at = turn.now
    p.consent_channel = p.channel
    p.consent_version = event.wording_version
    p.consented_before = True


def opt_out(turn: Turn, event: ev.OptOut) -> None:
    """Stop everything at once: status, and every pending scheduled message."""
    p = turn.participant
    p.status = "opted_out"
    p.opted_out_at = turn.now
    p.optout_asked_at = None
    cancel_pending(turn.db, p.id, turn.now)
    journal_links.revoke_all(turn.db, p.id, turn.now)


def ask_opt_out(turn: Turn, event: ev.AskOptOut) -> None:
    """Open (or settle) the opt-out question: scheduled texts wait while it is open."""
    turn.participant.optout_asked_at = event.at


def opt_in(turn: Turn, event: ev.OptIn) -> None:
    """START/UNSTOP/YES after STOP: back to active (or to invited without consent)."""
    p = turn.participant
    if p.status == "deleted":
        # Rejoining after DELETE is a fresh start: the old consent does not carry over
        # (the engine records new consent in the same turn; the zone was guessed again
        # when the text arrived, see runner.record_inbound).
        p.consent_at = p.consent_channel = p.consent_version = None
        p.paused_until = p.course_ended_at = None
    p.status = "active" if p.consented_before else "invited"
    p.opted_out_at = None


def update_participant(turn: Turn, event: ev.UpdateParticipant) -> None:
    """Change settings the participant told us."""
    for name, value in event.fields.items():
        if name == "share_journal":
            _share_journal(turn, bool(value))
            continue
        if name in ("bedtime", "mindfulness_time") and value is not None:
            value = f"{value.hour:02d}:{value.minute:02d}"
        if name not in ("timezone", "bedtime", "has_therapist", "mindfulness_time", "name"):
            raise ValueError(f"engine asked to update unknown field {name!r}")
        setattr(turn.participant, name, value)


def _share_journal(turn: Turn, share: bool) -> None:
    """SHARE: whether the care team may read journal answers (see the care console)."""
    choice = turn.db.get(JournalShare, turn.participant.id)
    if choice is None:
        turn.db.add(JournalShare(participant_id=turn.participant.id, share=share,
                                 changed_at=turn.now))
    else:
        choice.share, choice.changed_at = share, turn.now


def schedule_session(turn: Turn, event: ev.ScheduleSession) -> None:
    """Set the open session's time, or open a new session at that time."""
    session = turn.sessions.open(turn.now)
    if session is None:
        session = _new_session(turn)
    session.scheduled_at = event.at


def save_intention(turn: Turn, event: ev.SaveIntention) -> None:
    """Keep the intention on the upcoming (open) session."""
    session = turn.sessions.open(turn.now) or _new_session(turn)
    session.intention = event.text


def record_session_done(turn: Turn, event: ev.RecordSessionDone) -> None:
    """DONE: mark the open session done, or record a new one done now."""
    session = turn.sessions.for_done(turn.now)
    if session is None:
        # A session recorded done now: one INSERT (a new row has no prompts to cancel).
        turn.sessions.marked_done(_new_session(turn, done_at=event.at))
        return
    session.done_at = event.at
    turn.sessions.marked_done(session)
    # The session is over: its "coming up" prompt must not go out afterwards.
    cancel_pending(turn.db, turn.participant.id, turn.now, plan="pre_session",
                   session=session.id)


def save_journal_entry(turn: Turn, event: ev.SaveJournalEntry) -> None:
    """Store one journal answer on the latest done session."""
    session = turn.sessions.last_done()
    if session is None:
        session = _new_session(turn, done_at=turn.now)
        turn.sessions.marked_done(session)
    turn.db.add(JournalEntry(participant_id=turn.participant.id, session_id=session.id,
                             prompt=event.prompt, text=event.text, created_at=turn.now))
    if event.prompt == "action":
        session.action = event.text


def send_journal(turn: Turn, event: ev.SendJournal) -> None:
    """Reply with a private link to the journal page, or the notes themselves (bot.journal_book)."""
    replies = journal_book.sms_reply(turn.services, turn.db, turn.participant, event.page,
                                     turn.now)
    turn.replies.extend(ev.SendText(text=text, key=key) for key, text in replies)


def schedule_plan(turn: Turn, event: ev.SchedulePlan) -> None:
    """Schedule a nudge plan's messages (see bot.scheduling)."""
    scheduling.schedule_plan(turn, event.plan, event.anchor_at)


def store_mood(turn: Turn, event: ev.StoreMood) -> None:
    """Keep a check-in's 1-5 score on the latest session."""
    session = turn.sessions.last_done()
    if session is not None:
        session.mood = event.score


def record_therapy_booked(turn: Turn, event: ev.RecordTherapyBooked) -> None:
    """Keep whether they booked therapy after the latest session."""
    session = turn.sessions.last_done()
    if session is not None:
        session.therapy_booked = event.booked


def pause(turn: Turn, event: ev.Pause) -> None:
    """PAUSE n / RESUME: scheduled messages hold until then (see bot.scheduling)."""
    turn.participant.paused_until = event.until


def end_course(turn: Turn, event: ev.EndCourse) -> None:
    """FINISHED: the course is over; weekly maintenance check-ins begin."""
    turn.participant.course_ended_at = event.at
    scheduling.schedule_plan(turn, "maintenance", event.at)


def raise_alert(turn: Turn, event: ev.RaiseAlert) -> None:
    """Record (or attach to) a care-team alert; bot.safety_words pages it after commit."""
    alerts.raise_alert(turn, event.level, event.category)
    if event.level == "crisis":
        turn.participant.hold_until = turn.now + CRISIS_HOLD


def delete_data(turn: Turn, event: ev.DeleteData) -> None:
    """DELETE confirmed: erase everything personal (see bot.privacy)."""
    privacy.erase_participant(turn.db, turn.participant, turn.now)



def _new_session(turn: Turn, done_at: datetime | None = None) -> Session:
    """A fresh session row for the participant (flushed: plans and entries need its id)."""
    session = Session(participant_id=turn.participant.id, created_at=turn.now, done_at=done_at)
    turn.db.add(session)
    turn.db.flush()
    if done_at is None:
        turn.sessions.opened(session)
    return session


HANDLERS: dict[type, Callable] = {
    ev.SendText: send_text,
    ev.RecordConsent: record_consent,
    ev.OptOut: opt_out,
    ev.OptIn: opt_in,
    ev.AskOptOut: ask_opt_out,
    ev.UpdateParticipant: update_participant,
    ev.ScheduleSession: schedule_session,
    ev.SaveIntention: save_intention,
    ev.RecordSessionDone: record_session_done,
    ev.SaveJournalEntry: save_journal_entry,
    ev.SendJournal: send_journal,
    ev.SchedulePlan: schedule_plan,
    ev.StoreMood: store_mood,
    ev.RecordTherapyBooked: record_therapy_booked,
    ev.Pause: pause,
    ev.EndCourse: end_course,
    ev.RaiseAlert: raise_alert,
    ev.DeleteData: delete_data,
    ev.AskSafetyCheck: safety_checks.record_asked,
    ev.CloseSafetyCheck: safety_checks.record_closed,
    ev.SendSafetyPlan: safety_plan.send_plan,
}
"""Every event type the engine can return, and who carries it out."""
