"""The engine's data types: flows, steps, the context it reads and the events it returns.

Everything here is a frozen dataclass of plain values so that results can be
compared in tests, logged as shapes (never bodies) and carried out by the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from flows.state import ConversationState

# ---------------------------------------------------------------- definitions

ANSWER_KINDS = frozenset(
    {"text", "yes_no", "timezone", "bedtime", "clock", "session_time", "intention", "journal"}
)
"""What a step can expect as an answer; each has a parser in flows/answers.py."""


@dataclass(frozen=True)
class Step:
    """One question (or statement) of a flow."""

    id: str
    say: str  # message key
    say_with_intention: str | None = None  # variant used when the session has an intention
    expect: str | None = None  # one of ANSWER_KINDS, None for a statement
    save: str | None = None  # where the answer goes, e.g. "journal:images", "participant:bedtime"
    next: str | None = None  # following step id, None ends the flow
    retry: str | None = None  # message key when the answer cannot be understood
    skippable: bool = True


@dataclass(frozen=True)
class Flow:
    """A named, linear conversation loaded from the definition files."""

    id: str
    start: str
    steps: dict[str, Step]
    done: str | None = None  # message key sent when the flow ends normally

    def step(self, step_id: str) -> Step:
        """Return the step with this id (KeyError names the flow when missing)."""
        try:
            return self.steps[step_id]
        except KeyError:
            raise KeyError(f"flow {self.id!r} has no step {step_id!r}") from None

    def position(self, step_id: str) -> int:
        """1-based position of a step among the flow's questions."""
        return list(self.steps).index(step_id) + 1


# ---------------------------------------------------------------- context


@dataclass(frozen=True)
class SessionInfo:
    """What the engine may know about the participant's current session."""

    scheduled_at: datetime | None = None
    done_at: datetime | None = None
    intention: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Context:
    """A read-only snapshot of the participant the host loaded for one turn."""

    status: str  # "invited", "active", "paused", "opted_out", "unreachable", "deleted"
    timezone: str
    name: str | None = None
    bedtime: time | None = None
    has_therapist: bool | None = None
    paused_until: datetime | None = None
    open_session: SessionInfo | None = None  # the session DONE would mark done
    last_session: SessionInfo | None = None  # the most recently done session
    recent_texts: int = 0  # inbound texts in the last minute, this one included
    optout_asked_at: datetime | None = None  # when "Reply STOP to stop all texts" was asked
    variables: dict[str, str] = field(default_factory=dict)  # clinic name, contact, ...


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    """Base class: something the host must carry out."""


@dataclass(frozen=True)
class SendText(Event):
    """Reply to the participant (in the same webhook response when there is one)."""

    text: str
    key: str  # message key the text came from (safe to log)


@dataclass(frozen=True)
class RecordConsent(Event):
    """The participant answered YES: store consent time, channel and wording version."""

    wording_version: str


@dataclass(frozen=True)
class OptOut(Event):
    """Stop every text to this participant now, and cancel what is pending."""

    reason: str  # "keyword", "request", "carrier"


@dataclass(frozen=True)
class AskOptOut(Event):
    """An uncertain stop request was asked about (at), or the question is settled (None):
    scheduled texts wait while it is open (flows.optout.QUESTION_WINDOW)."""

    at: datetime | None


@dataclass(frozen=True)
class OptIn(Event):
    """The participant came back (START, UNSTOP, YES after STOP)."""


@dataclass(frozen=True)
class UpdateParticipant(Event):
    """Change fields of the participant (timezone, bedtime, has_therapist, ...)."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class ScheduleSession(Event):
    """Record the next session's scheduled time (UTC)."""

    at: datetime


@dataclass(frozen=True)
class SaveIntention(Event):
    """Store the participant's intention on their upcoming session."""

    text: str


@dataclass(frozen=True)
class RecordSessionDone(Event):
    """Mark the open session done at this time (creating one when none is open)."""

    at: datetime


@dataclass(frozen=True)
class SaveJournalEntry(Event):
    """Store one journal answer on the most recently done session."""

    prompt: str  # the step's save target, e.g. "images"
    text: str


@dataclass(frozen=True)
class SendJournal(Event):
    """Send back the journal: a private link, or the notes themselves (page 1: newest)."""

    page: int = 1


@dataclass(frozen=True)
class SchedulePlan(Event):
    """Schedule a nudge plan anchored at a time (replacing that plan's pending messages)."""

    plan: str
    anchor_at: datetime


@dataclass(frozen=True)
class StoreMood(Event):
    """Store a 1-5 mood score from a check-in reply."""

    score: int


@dataclass(frozen=True)
class RecordTherapyBooked(Event):
    """The participant said whether they booked a therapy session."""

    booked: bool


@dataclass(frozen=True)
class Pause(Event):
    """Hold scheduled messages until a time (None resumes now)."""

    until: datetime | None


@dataclass(frozen=True)
class EndCourse(Event):
    """The course of sessions is over: maintenance check-ins begin."""

    at: datetime


@dataclass(frozen=True)
class RaiseAlert(Event):
    """Tell the care team (level and category only: never the text)."""

    level: str
    category: str | None


@dataclass(frozen=True)
class DeleteData(Event):
    """Erase the participant's journal, intentions, moods and message bodies."""


@dataclass(frozen=True)
class AskSafetyCheck(Event):
    """The safety check question went out: the host times it (unanswered -> care team)."""

    at: datetime


@dataclass(frozen=True)
class CloseSafetyCheck(Event):
    """The safety check was settled: "yes", "no", "unclear", "crisis" or "repeated"."""

    outcome: str


@dataclass(frozen=True)
class SendSafetyPlan(Event):
    """PLAN: text the participant their safety plan (the host holds it, encrypted)."""


@dataclass(frozen=True)
class Result:
    """What one engine call returns: the new conversation state and the events.

    The host stores `state.to_dict()` and hands back `ConversationState.from_dict()`.
    """

    state: ConversationState
    events: tuple[Event, ...]

    def texts(self) -> list[str]:
        """The texts this result sends, in order (handy in tests and the chat CLI)."""
        return [e.text for e in self.events if isinstance(e, SendText)]
