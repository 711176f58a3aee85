"""The conversation state: a small typed, versioned record the engine owns.

The host keeps it in one JSON column (participants.state) and never looks inside
beyond `from_dict()` / `to_dict()`. Reading is forgiving on purpose: a row written by
an older release, by hand, or half-corrupted must never crash a participant's turn,
so unknown keys are ignored and values of the wrong type become the defaults.

Versions:
  1  the plain dict the engine wrote before this module (no "version" key).
  2  the same key names and shapes plus "version": 2, and only the fields that differ
     from their defaults. Keeping the key names means a release that still reads
     version 1 can read version 2 rows too, so a deploy can be rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATE_VERSION = 2
"""The version `to_dict()` writes."""


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a flow stands: the way back after a detour, or the flow a crisis set aside."""

    flow: str
    step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Both keys always (older readers index ["step"] directly)."""
        return {"flow": self.flow, "step": self.step}

    @classmethod
    def from_dict(cls, data: Any) -> Resume | None:
        """The flow and step in data, or None when there is no flow id to go back to."""
        if not isinstance(data, Mapping):
            return None
        flow = _text(data.get("flow"))
        return None if flow is None else cls(flow, _text(data.get("step")))


@dataclass(frozen=True, slots=True)
class Suspended:
    """A flow set aside after a safety alert (CONTINUE picks it up at `step`)."""

    flow: str
    step: str | None = None
    at: datetime | None = None
    resume: Resume | None = None  # the detour's way back, when suspended inside one

    def to_dict(self) -> dict[str, Any]:
        """flow and step always; at and resume when set."""
        out: dict[str, Any] = {"flow": self.flow, "step": self.step}
        if self.at is not None:
            out["at"] = self.at.isoformat()
        if self.resume is not None:
            out["resume"] = self.resume.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Suspended | None:
        """The suspended flow in data, or None when it names no flow."""
        held = Resume.from_dict(data)
        if held is None:
            return None
        return cls(held.flow, held.step, _time(data.get("at")),
                   Resume.from_dict(data.get("resume")))


@dataclass(frozen=True, slots=True)
class SafetyCheck:
    """The YES/NO safety question waiting for its answer."""

    asked_at: datetime
    timed_out: bool = False  # the care team was already asked to reach out

    def to_dict(self) -> dict[str, Any]:
        """asked_at always; timed_out only when true."""
        out: dict[str, Any] = {"asked_at": self.asked_at.isoformat()}
        if self.timed_out:
            out["timed_out"] = True
        return out

    @classmethod
    def from_dict(cls, data: Any) -> SafetyCheck | None:
        """The open check in data, or None when it has no readable time.

        A check whose time cannot be read cannot be aged either; dropping it is safe
        because the host's safety_checks row still pages the care team when it lapses.
        """
        if not isinstance(data, Mapping):
            return None
        asked_at = _time(data.get("asked_at"))
        return None if asked_at is None else cls(asked_at, data.get("timed_out") is True)


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Where one participant's conversation stands between turns (immutable)."""

    flow: str | None = None  # the flow in progress ...
    step: str | None = None  # ... and the step waiting for its answer
    resume: Resume | None = None  # the longer flow a detour interrupted
    suspended: Suspended | None = None  # the flow a safety alert set aside
    awaiting: str | None = None  # the nudge whose reply is awaited outside any flow
    asked_again: bool = False  # that nudge's question was already repeated once
    check: SafetyCheck | None = None  # the open safety question
    check_last: datetime | None = None  # when a safety question was last asked
    quiet_until: datetime | None = None  # flooding: no replies before this
    optout_lang: str | None = None  # language of the open "Reply STOP ..." question
    invited: bool = False  # the invitation went out (later texts get the reminder)
    delete_asked: datetime | None = None  # DELETE waits for its confirming DELETE
    lang: str | None = None  # language of an opt-out, so START is answered in it
    version: int = field(default=STATE_VERSION, init=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict for the database: the version and non-default fields only."""
        out: dict[str, Any] = {"version": self.version}
        for name, value in (("flow", self.flow), ("step", self.step),
                            ("awaiting", self.awaiting), ("optout_lang", self.optout_lang),
                            ("lang", self.lang)):
            if value is not None:
                out[name] = value
        for name, nested in (("resume", self.resume), ("suspended", self.suspended),
                             ("check", self.check)):
            if nested is not None:
                out[name] = nested.to_dict()
        for name, moment in (("check_last", self.check_last),
                             ("quiet_until", self.quiet_until),
                             ("delete_asked", self.delete_asked)):
            if moment is not None:
                out[name] = moment.isoformat()
        if self.asked_again:
            out["asked_again"] = True
        if self.invited:
            out["invited"] = True
        return out

    @classmethod
    def from_dict(cls, data: Any) -> ConversationState:
        """Read any dict this code or its predecessors wrote; never raises.

        No "version" key means version 1. Versions 1 and 2 share their key names, so
        one reader serves both; a newer version (a rolled-back deploy reading a row its
        successor wrote) is read for the keys known here, which beats failing the turn.
        Unknown keys are ignored and unreadable values fall back to their defaults.
        """
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            flow=_text(data.get("flow")),
            step=_text(data.get("step")),
            resume=Resume.from_dict(data.get("resume")),
            suspended=Suspended.from_dict(data.get("suspended")),
            awaiting=_text(data.get("awaiting")),
            asked_again=data.get("asked_again") is True,
            check=SafetyCheck.from_dict(data.get("check")),
            check_last=_time(data.get("check_last")),
            quiet_until=_time(data.get("quiet_until")),
            optout_lang=_text(data.get("optout_lang")),
            invited=data.get("invited") is True,
            delete_asked=_time(data.get("delete_asked")),
            lang=_text(data.get("lang")),
        )


def as_state(value: ConversationState | Mapping | None) -> ConversationState:
    """The typed state from either the typed state or a stored dict (None: a new one)."""
    return value if isinstance(value, ConversationState) else ConversationState.from_dict(value)


def _text(value: Any) -> str | None:
    """A non-empty string, or None (ids and language codes are never anything else)."""
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime, or None when it cannot be read.

    Every time the engine writes is aware UTC; a naive one (hand-edited) is taken as
    UTC, because comparing it with the aware `now` would raise mid-turn.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
