"""Nudge plans as data, and the pure function that turns a plan into timed messages.

A plan (flows/definitions/plans.toml) lists nudges relative to an anchor: a session
done, a session scheduled, or the end of the course. plan_messages() places each nudge
in the participant's own time zone, inside their sending window, under the rolling
cap, and drops whatever would go out after its expiry. No I/O and no clock: the
current time comes in as an argument. Every datetime returned is timezone-aware UTC.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows import sms_text

KINDS: tuple[str, ...] = (
    "avoid", "sleep", "exercise", "connection", "therapy",
    "action", "mindfulness", "intention", "maintenance", "caring",
)
ANCHORS: tuple[str, ...] = ("session_done", "session_scheduled", "course_end", "crisis_ack")
NAMED_TIMES: tuple[str, ...] = ("bedtime", "mindfulness_time")
"""Wall times `at` may name instead of "HH:MM"; they come from the participant."""
OUTSIDE_WINDOW: tuple[str, ...] = ("later", "earlier", "same_day", "later_else_earlier")
"""What a nudge does when its time falls outside the sending window."""
WHENS: tuple[str, ...] = ("has_therapist", "no_therapist", "has_action")
"""Plan-time requirements, judged here from the ParticipantView."""
CONDITIONS: tuple[str, ...] = ("therapy_not_booked", "has_action")
"""Send-time conditions, passed through for the host to check when the nudge is due."""
REPLIES: tuple[str, ...] = ("mood", "therapy_booked", "intention", "keep_going")
"""Kinds of reply a nudge may ask for; the host knows how to read each."""

DEFAULT_WINDOW_START = time(8, 0)
"""Earliest local time for a scheduled message (Florida's 8 am); participants can only narrow."""
DEFAULT_WINDOW_END = time(20, 0)
"""Local time scheduled messages stop (exclusive); participants can only narrow."""
DEFAULT_BEDTIME = time(22, 30)
"""Bedtime assumed when the participant has not told us theirs."""
DEFAULT_MINDFULNESS_TIME = time(9, 0)
"""Practice time assumed when the participant has not chosen one."""
BEDTIME_QUIET = timedelta(minutes=30)
"""The sending window closes this long before the participant's bedtime."""
MORNING_BEDTIME = time(12, 0)
"""Bedtimes before this are after midnight (or a day sleeper's) and belong to the next day."""
LAST_SLOT_MARGIN = timedelta(minutes=30)
"""A nudge moved back into the window lands this long before the window closes."""
CAP_COUNT = 3
"""Most scheduled messages per participant in any rolling CAP_PERIOD."""
CAP_PERIOD = timedelta(hours=24)
MIN_SPACING = timedelta(minutes=30)
"""Two scheduled messages never land closer than this, so they don't arrive as a burst."""
SEARCH_DAYS = 8
"""How many local days to look through for an open window (a window opens every day)."""
PLACEHOLDER_SAMPLES: Mapping[str, int] = {"action": 60, "name": 12, "clinic_name": 24}
"""Placeholders message texts may use, with the length of sample text used to check them."""
PRIVATE_WORDS: tuple[str, ...] = ("ketamine", "spravato")
"""Words that must never appear on a lock screen."""
COVERED_KINDS: tuple[str, ...] = ("sleep", "exercise", "therapy", "connection", "avoid")
"""Kinds the clinic's guide names: each reaches the participant at least once per plan."""
COVERAGE_HORIZON = timedelta(hours=72)
"""A kind the cap would leave out moves to a later slot, but no later than this after the anchor."""
COVERAGE_SHIFTS = 3
"""How many following local days a left-out kind may move to (same wall time each day)."""

_DURATION = re.compile(r"^(-)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")
_SCOPE = re.compile(r"^[a-z0-9_]+$")
_PLAN_KEYS = frozenset({"anchor", "day_starts", "expires_after", "nudges"})
_NUDGE_KEYS = frozenset({
    "kind", "scope", "message", "priority", "after", "day", "at", "lead", "outside_window",
    "expires_after", "expires_in", "fallback_after", "fallback_within", "when", "condition",
    "expects_reply",
})


class PlanError(ValueError):
    """A plans file with problems; .problems lists every one of them."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("invalid nudge plans:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class Nudge:
    """One line of a plan: what to send, when, and until when it is still worth sending."""

    kind: str
    scope: str
    message: str
    priority: int
    after: timedelta | None = None  # due = anchor + after (elapsed time)
    day: int | None = None  # or: this many local days after the anchor's local day ...
    at: time | str | None = None  # ... at this wall time, or a NAMED_TIMES entry
    lead: timedelta = timedelta(0)  # this long before `at`
    outside_window: str = "later"
    expires_after: timedelta | None = None  # expiry = anchor + expires_after
    expires_in: timedelta | None = None  # expiry = the nudge's own time + expires_in
    fallback_after: timedelta | None = None  # used instead when the main time is past ...
    fallback_within: timedelta | None = None  # ... or the anchor is less than this away
    when: str | None = None
    condition: str | None = None
    expects_reply: str | None = None


@dataclass(frozen=True)
class Plan:
    """A named list of nudges timed from one anchor event."""

    name: str
    anchor: str
    nudges: tuple[Nudge, ...]
    day_starts: time = time(0, 0)  # local days for `day` counting begin at this time


@dataclass(frozen=True)
class ParticipantView:
    """What scheduling needs to know about a participant."""

    timezone: str
    bedtime: time | None = None
    window_start: time = DEFAULT_WINDOW_START
    window_end: time = DEFAULT_WINDOW_END
    paused_until: datetime | None = None
    has_therapist: bool | None = None
    mindfulness_time: time | None = None
    has_action: bool = False


@dataclass(frozen=True)
class PlannedMessage:
    """A nudge placed in time: the host stores one scheduled_messages row per message."""

    kind: str
    scope: str
    message: str
    due_at: datetime
    expires_at: datetime
    priority: int
    condition: str | None
    expects_reply: str | None


# --- reading plans -------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """Parse "90m", "1h30m", "45h", "3d" or "-15m" (negative = before the anchor)."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match or not any(match.group(i) for i in (2, 3, 4)):
        raise ValueError(f"{text!r} is not a duration like '90m', '1h30m', '45h' or '3d'")
    sign, days, hours, minutes = match.groups()
    value = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0))
    return -value if sign else value


def parse_clock(text: str) -> time:
    """Parse a 24-hour "HH:MM" wall time."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{text!r} is not a 24-hour time like '09:00'")
    return time(int(match.group(1)), int(match.group(2)))


def sample_render(text: str) -> str:
    """Fill a message's placeholders with sample text of their longest expected length."""
    fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    unknown = sorted({name for name in fields if name not in PLACEHOLDER_SAMPLES})
    if unknown:
        raise ValueError("unknown placeholder " + ", ".join("{" + n + "}" for n in unknown))
    return text.format_map({name: "a" * size for name, size in PLACEHOLDER_SAMPLES.items()})


def message_problems(text: object) -> list[str]:
    """Describe what makes a message text unfit to send (empty list when fine)."""
    if not isinstance(text, str) or not text.strip():
        return ["is empty or not text"]
    try:
        rendered = sample_render(text)
    except ValueError as exc:  # unbalanced braces or unknown placeholder
        return [str(exc)]
    found = sms_text.problems(rendered)
    lowered = rendered.lower()
    found += [f"names {word!r} (lock-screen privacy)" for word in PRIVATE_WORDS if word in lowered]
    return found


def validate_plans(data: Mapping, messages: Mapping[str, str]) -> list[str]:
    """List every problem in parsed plans, checking message keys and texts against messages."""
    return _read_plans(data, messages)[1]


def load_plans(data: Mapping) -> dict[str, Plan]:
    """Build the plans from parsed TOML; raise PlanError listing every problem."""
    messages = data.get("messages") if isinstance(data, Mapping) and "plans" in data else None
    plans, problems = _read_plans(data, messages if isinstance(messages, Mapping) else None)
    if problems:
        raise PlanError(problems)
    return plans


def _plans_table(data: Mapping) -> object:
    """The [plans] table, from a whole plans.toml document or given on its own."""
    # The loader merges several files and passes just the merged [plans] table, so
    # both shapes are accepted. (A plan named "plans" would be misread: don't.)
    return data.get("plans") if isinstance(data, Mapping) and "plans" in data else data


def _read_plans(
    data: Mapping, messages: Mapping[str, str] | None,
) -> tuple[dict[str, Plan], list[str]]:
    """Parse and check every plan in one pass; messages=None skips the message checks."""
    problems: list[str] = []
    raw_plans = _plans_table(data)
    if not isinstance(raw_plans, Mapping) or not raw_plans:
        return {}, ["no [plans.<name>] tables"]
    plans = {}
    for name, raw in raw_plans.items():
        plan = _read_plan(str(name), raw, messages, problems)
        if plan is not None:
            plans[plan.name] = plan
    return plans, problems


def _read_plan(name: str, raw: object, messages: Mapping | None,
               problems: list[str]) -> Plan | None:
    """Parse one [plans.<name>] table, appending its problems."""
    where = f"plan {name!r}"
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: is not a table")
        return None
    problems += [f"{where}: unknown setting {key!r}" for key in raw if key not in _PLAN_KEYS]
    anchor = raw.get("anchor")
    if anchor not in ANCHORS:
        problems.append(f"{where}: unknown anchor {anchor!r} (one of {', '.join(ANCHORS)})")
    day_starts = _field(raw, "day_starts", parse_clock, where, problems) or time(0, 0)
    default_expiry = _field(raw, "expires_after", parse_duration, where, problems)
    raw_nudges = raw.get("nudges")
    if not isinstance(raw_nudges, list) or not raw_nudges:
        problems.append(f"{where}: has no [[plans.{name}.nudges]]")
        return None
    nudges, seen = [], set()
    for index, raw_nudge in enumerate(raw_nudges, start=1):
        nudge = _read_nudge(raw_nudge, f"{where} nudge {index}", default_expiry, messages, problems)
        if nudge is None:
            continue
        if (nudge.kind, nudge.scope) in seen:
            problems.append(f"{where}: duplicate scope {nudge.scope!r} for kind {nudge.kind!r}")
        seen.add((nudge.kind, nudge.scope))
        nudges.append(nudge)
    return Plan(name=name, anchor=str(anchor), nudges=tuple(nudges), day_starts=day_starts)


def _field(raw: Mapping, key: str, parse, where: str, problems: list[str]):
    """Parse raw[key] with parse, or None when absent; a bad value becomes a problem."""
    if key not in raw:
        return None
    try:
        return parse(raw[key])
    except ValueError as exc:
        problems.append(f"{where}: {key}: {exc}")
        return None


def _choice(raw: Mapping, key: str, allowed: tuple[str, ...], where: str, problems: list[str]):
    """Return raw[key] when it is one of allowed (or absent), else note a problem."""
    value = raw.get(key)
    if value is not None and value not in allowed:
        problems.append(f"{where}: {key} {value!r} is not one of {', '.join(allowed)}")
        return None
    return value


def _read_at(value: object) -> time | str:
    """Parse `at`: a NAMED_TIMES entry or an "HH:MM" wall time."""
    return value if value in NAMED_TIMES else parse_clock(value)  # type: ignore[arg-type]


def _read_nudge(
    raw: object, where: str, default_expiry: timedelta | None, messages: Mapping | None,
    problems: list[str],
) -> Nudge | None:
    """Parse one nudge table, appending its problems; None when it cannot be built."""
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: is not a table")
        return None
    kind, scope, key = raw.get("kind"), raw.get("scope"), raw.get("message")
    where = f"{where} ({kind}/{scope})"
    count = len(problems)
    problems += [f"{where}: unknown field {name!r}" for name in raw if name not in _NUDGE_KEYS]
    if kind not in KINDS:
        problems.append(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if not isinstance(scope, str) or not _SCOPE.match(scope):
        problems.append(f"{where}: scope must be lower-case letters, digits or _")
    priority = raw.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool):
        problems.append(f"{where}: priority must be a whole number")
    if not isinstance(key, str) or not key:
        problems.append(f"{where}: message must name a key in [messages]")
    elif messages is not None:
        _check_message(raw, key, where, messages, problems)
    nudge_fields = {
        name: _field(raw, name, parse_duration, where, problems)
        for name in ("after", "expires_after", "expires_in", "fallback_after", "fallback_within")
    }
    lead = _field(raw, "lead", parse_duration, where, problems)
    at = _field(raw, "at", _read_at, where, problems)
    day = raw.get("day")
    if day is not None and (not isinstance(day, int) or isinstance(day, bool)):
        problems.append(f"{where}: day must be a whole number")
    nudge_fields["expires_after"] = nudge_fields["expires_after"] or default_expiry
    _check_timing(raw, nudge_fields, lead, where, problems)
    choices = {
        "outside_window": _choice(raw, "outside_window", OUTSIDE_WINDOW, where, problems),
        "when": _choice(raw, "when", WHENS, where, problems),
        "condition": _choice(raw, "condition", CONDITIONS, where, problems),
        "expects_reply": _choice(raw, "expects_reply", REPLIES, where, problems),
    }
    if len(problems) > count:
        return None
    return Nudge(
        kind=kind, scope=scope, message=key, priority=priority, day=day, at=at,
        lead=lead or timedelta(0), **nudge_fields,
        **{name: value for name, value in choices.items() if value is not None},
    )


def _check_message(raw: Mapping, key: str, where: str, messages: Mapping, problems: list[str]):
    """The message key must exist, and its text must be fit to send."""
    if key not in messages:
        problems.append(f"{where}: message {key!r} is not in [messages]")
        return
    problems += [f"{where}: message {key!r} {p}" for p in message_problems(messages[key])]
    text = messages[key]
    if raw.get("expects_reply") and isinstance(text, str) and "reply" not in text.lower():
        problems.append(f"{where}: message {key!r} expects a reply but does not say how to reply")


def _check_timing(
    raw: Mapping, fields: Mapping[str, timedelta | None], lead: timedelta | None, where: str,
    problems: list[str],
) -> None:
    """Each nudge needs one way to be timed and at least one expiry that can be met."""
    by_offset = "after" in raw
    by_clock = "day" in raw or "at" in raw
    if by_offset == by_clock:
        problems.append(f"{where}: give either after = \"..\" or day = N with at = \"HH:MM\"")
    elif by_clock and ("day" not in raw or "at" not in raw):
        problems.append(f"{where}: day and at go together")
    if lead is not None and "at" not in raw:
        problems.append(f"{where}: lead only works with at")
    if lead is not None and lead < timedelta(0):
        problems.append(f"{where}: lead must not be negative")
    if ("fallback_after" in raw) != ("fallback_within" in raw):
        problems.append(f"{where}: fallback_after and fallback_within go together")
    after, expires_after = fields["after"], fields["expires_after"]
    if expires_after is None and fields["expires_in"] is None:
        problems.append(f"{where}: no expiry (set expires_after on the plan or nudge, or expires_in)")
    if fields["expires_in"] is not None and fields["expires_in"] < timedelta(0):
        problems.append(f"{where}: expires_in must not be negative")
    if after is not None and expires_after is not None and after > expires_after:
        problems.append(f"{where}: after {raw['after']!r} is past its expiry, it would never be sent")
    day = raw.get("day")
    if isinstance(day, int) and expires_after is not None:
        # Local day N starts at least (N - 1) days after the anchor (DST and rollover aside).
        if timedelta(days=day - 1, hours=-2) > expires_after:
            problems.append(f"{where}: day {day} is past its expiry, it would never be sent")


# --- time in the participant's zone --------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    """The participant's zone, with an unknown name reported as a ValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _utc(moment: datetime, name: str) -> datetime:
    """Convert an aware datetime to UTC; naive ones are a caller bug."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.astimezone(UTC)


def _wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """UTC instant of a local wall time; a skipped time resolves forward, a repeated one first."""
    # fold=0 uses the offset from before a transition: in a spring-forward gap that lands
    # after the gap (02:30 -> 03:30), in a fall-back overlap on the first occurrence.
    return datetime.combine(day, wall.replace(tzinfo=None, fold=0), tzinfo=zone).astimezone(UTC)


def local_to_utc(day: date, wall: time, timezone: str) -> datetime:
    """UTC instant of wall time on a local day in an IANA zone (gaps forward, overlaps first)."""
    return _wall_to_utc(day, wall, _zone(timezone))


def sending_window(participant: ParticipantView) -> tuple[time, time]:
    """The participant's local sending window [start, end), narrowed to close before bedtime."""
    start = max(participant.window_start, DEFAULT_WINDOW_START)
    end = min(participant.window_end, DEFAULT_WINDOW_END)
    if start >= end:
        # A participant can only narrow the window; an empty one is a data slip, so the
        # legal default is safer than sending nothing at all or failing the whole plan.
        start, end = DEFAULT_WINDOW_START, DEFAULT_WINDOW_END
    bedtime = participant.bedtime
    if bedtime is not None and bedtime >= MORNING_BEDTIME:
        # Close the window 30 minutes before bedtime, so the last text of the day never
        # lands as they settle down. Morning bedtimes (after midnight, or a day sleeper)
        # say nothing about the evening, so they leave the window alone.
        quiet = (datetime.combine(date(2000, 1, 1), bedtime) - BEDTIME_QUIET).time()
        if start < quiet < end:
            end = quiet
    return start, end


@dataclass(frozen=True)
class _Window:
    """A participant's sending window in their zone, with pause, ready for instant maths."""

    zone: ZoneInfo
    start: time
    end: time
    paused_until: datetime | None

    @classmethod
    def of(cls, participant: ParticipantView) -> _Window:
        """Build the window for a participant."""
        start, end = sending_window(participant)
        pause = participant.paused_until
        pause = None if pause is None else _utc(pause, "paused_until")
        return cls(_zone(participant.timezone), start, end, pause)

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """UTC instants when the window opens and closes on a local day."""
        return _wall_to_utc(day, self.start, self.zone), _wall_to_utc(day, self.end, self.zone)

    def local_day(self, moment: datetime) -> date:
        """The participant's calendar day at an instant."""
        return moment.astimezone(self.zone).date()

    def next_open(self, moment: datetime) -> datetime:
        """Earliest instant >= moment inside the window and not paused."""
        if self.paused_until is not None and moment < self.paused_until:
            moment = self.paused_until
        first = self.local_day(moment)
        for offset in range(SEARCH_DAYS):
            opens, closes = self.bounds(first + timedelta(days=offset))
            if opens >= closes:
                continue
            if moment < opens:
                return opens
            if moment < closes:
                return moment
        raise ValueError("no sending window found")  # a non-empty window opens every day

    def last_open(self, moment: datetime) -> datetime:
        """Latest instant <= moment inside the window; past closing, the day's last slot."""
        first = self.local_day(moment)
        for offset in range(SEARCH_DAYS):
            opens, closes = self.bounds(first - timedelta(days=offset))
            if opens >= closes or moment < opens:
                continue
            return moment if moment < closes else max(opens, closes - LAST_SLOT_MARGIN)
        raise ValueError("no sending window found")

    def same_day(self, moment: datetime) -> datetime:
        """Clamp moment into its own local day's window."""
        opens, closes = self.bounds(self.local_day(moment))
        if moment < opens:
            return opens
        return moment if moment < closes else max(opens, closes - LAST_SLOT_MARGIN)


def next_allowed(at: datetime, participant: ParticipantView) -> datetime:
    """Earliest UTC instant >= at inside the participant's sending window, respecting pause."""
    return _Window.of(participant).next_open(_utc(at, "at"))


# --- placing a plan ------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    """A nudge with its earliest possible send time and its expiry, before the cap."""

    nudge: Nudge
    earliest: datetime
    expires_at: datetime


def _named_time(name: str, participant: ParticipantView) -> time:
    """The participant's bedtime or mindfulness time, or the default."""
    if name == "bedtime":
        return participant.bedtime or DEFAULT_BEDTIME
    return participant.mindfulness_time or DEFAULT_MINDFULNESS_TIME


def _anchor_day(anchor_at: datetime, plan: Plan, window: _Window) -> date:
    """The local day the anchor belongs to (before day_starts it is still the day before)."""
    local = anchor_at.astimezone(window.zone)
    day = local.date()
    return day - timedelta(days=1) if local.time() < plan.day_starts else day


def _nominal(nudge: Nudge, plan: Plan, participant: ParticipantView, window: _Window,
             anchor_at: datetime) -> datetime:
    """When the plan asks for the nudge, before windows, pause, cap and the present."""
    if nudge.after is not None:
        return anchor_at + nudge.after
    day = _anchor_day(anchor_at, plan, window) + timedelta(days=nudge.day or 0)
    wall = nudge.at if isinstance(nudge.at, time) else _named_time(str(nudge.at), participant)
    if nudge.at == "bedtime" and wall < MORNING_BEDTIME:
        day += timedelta(days=1)  # the night of day N: a 01:00 bedtime is on day N + 1
    return _wall_to_utc(day, wall, window.zone) - nudge.lead


def _passes_when(nudge: Nudge, participant: ParticipantView) -> bool:
    """Whether the participant meets the nudge's plan-time requirement."""
    if nudge.when == "has_therapist":
        return participant.has_therapist is True
    if nudge.when == "no_therapist":
        return participant.has_therapist is not True
    if nudge.when == "has_action":
        return participant.has_action
    return True


def _candidate(nudge: Nudge, plan: Plan, participant: ParticipantView, window: _Window,
               anchor_at: datetime, now: datetime) -> _Candidate | None:
    """Earliest allowed send time and expiry of one nudge, or None when it cannot go out."""
    planned = _nominal(nudge, plan, participant, window, anchor_at)
    if nudge.fallback_after is not None and nudge.fallback_within is not None:
        if planned < now or anchor_at - now < nudge.fallback_within:
            planned = anchor_at + nudge.fallback_after
    if nudge.outside_window == "earlier":
        planned = window.last_open(planned)
    elif nudge.outside_window == "same_day":
        planned = window.same_day(planned)
    limits = []
    if nudge.expires_after is not None:
        limits.append(anchor_at + nudge.expires_after)
    if nudge.expires_in is not None:
        limits.append(planned + nudge.expires_in)
    expires_at = min(limits)
    earliest = window.next_open(max(planned, now))
    if earliest > expires_at and nudge.outside_window == "later_else_earlier":
        earliest = window.next_open(max(window.last_open(planned), now))
    return _Candidate(nudge, earliest, expires_at) if earliest <= expires_at else None


def _blocked_until(moment: datetime, taken: Sequence[datetime]) -> datetime | None:
    """If sending at moment would break the cap or spacing, the end of the blocked stretch."""
    until = None
    low = bisect.bisect_left(taken, moment - CAP_PERIOD)
    high = bisect.bisect_right(taken, moment + CAP_PERIOD)
    for other in taken[low:high]:
        if other - MIN_SPACING < moment < other + MIN_SPACING:
            until = max(until or moment, other + MIN_SPACING)
    # Any CAP_COUNT taken times spanning less than CAP_PERIOD forbid the open interval
    # (last - period, first + period): a message there would make CAP_COUNT + 1 inside
    # one rolling period. Consecutive runs are enough: a wider run contains a tighter one.
    for i in range(low, max(low, high - CAP_COUNT + 1)):
        first, last = taken[i], taken[i + CAP_COUNT - 1]
        if last - first < CAP_PERIOD and last - CAP_PERIOD < moment < first + CAP_PERIOD:
            until = max(until or moment, first + CAP_PERIOD)
    return until


def _place(candidates: list[_Candidate], existing: Sequence[datetime],
           window: _Window) -> list[tuple[_Candidate, datetime]]:
    """Give each nudge, most important first, the earliest slot the cap allows, or drop it."""
    taken = sorted(existing)
    placed = []
    order = sorted(candidates, key=lambda c: (-c.nudge.priority, c.nudge.kind, c.nudge.scope))
    for candidate in order:
        moment = candidate.earliest
        while moment <= candidate.expires_at:
            blocked = _blocked_until(moment, taken)
            if blocked is None:
                bisect.insort(taken, moment)
                placed.append((candidate, moment))
                break
            moment = window.next_open(blocked)
    return placed


def _covers(candidate: _Candidate) -> bool:
    """Whether a placed nudge surely reaches the participant (no send-time condition)."""
    return candidate.nudge.kind in COVERED_KINDS and candidate.nudge.condition is None


def _shifted(candidate: _Candidate, plan: Plan, participant: ParticipantView, window: _Window,
             anchor_at: datetime, now: datetime, days: int) -> _Candidate | None:
    """The same nudge `days` local days later (same wall time), with the coverage expiry."""
    nudge = candidate.nudge
    if nudge.after is not None:
        moved = replace(nudge, after=nudge.after + timedelta(days=days))
    else:
        moved = replace(nudge, day=(nudge.day or 0) + days)
    moved = replace(moved, expires_after=COVERAGE_HORIZON, fallback_after=None,
                    fallback_within=None)
    return _candidate(moved, plan, participant, window, anchor_at, now)


def _first_fit(candidate: _Candidate, taken: Sequence[datetime],
               window: _Window) -> datetime | None:
    """The earliest slot within the candidate's expiry that the cap and spacing allow."""
    moment = candidate.earliest
    while moment <= candidate.expires_at:
        blocked = _blocked_until(moment, taken)
        if blocked is None:
            return moment
        moment = window.next_open(blocked)
    return None


def _cover(candidates: list[_Candidate], placed: list[tuple[_Candidate, datetime]],
           existing: Sequence[datetime], plan: Plan, participant: ParticipantView,
           window: _Window, anchor_at: datetime,
           now: datetime) -> list[tuple[_Candidate, datetime]]:
    """Give every kind the guide names a slot: a left-out kind moves to its next good
    slot (the same time on a following day, within COVERAGE_HORIZON); when none is free,
    a repeat (a kind already covered, or one the guide does not name) gives way first."""
    placed = list(placed)
    covered = {c.nudge.kind for c, _ in placed if _covers(c)}
    left_out = [c for c in candidates
                if c.nudge.kind in COVERED_KINDS and c.nudge.kind not in covered
                and c.nudge.condition is None and all(c is not p for p, _ in placed)]
    left_out.sort(key=lambda c: (-c.nudge.priority, c.nudge.kind, c.nudge.scope))
    for candidate in left_out:
        if candidate.nudge.kind in covered:
            continue
        tries = [t for days in range(COVERAGE_SHIFTS + 1)
                 if (t := _shifted(candidate, plan, participant, window, anchor_at, now, days))]
        slot = _try_slots(tries, placed, existing, window)
        evictable = sorted(
            (item for item in placed if _is_repeat(item[0], placed)),
            key=lambda item: (item[0].nudge.priority, item[1]))
        while slot is None and evictable:
            placed.remove(evictable.pop(0))
            slot = _try_slots(tries, placed, existing, window)
            evictable = [item for item in evictable if _is_repeat(item[0], placed)]
        if slot is not None:
            placed.append(slot)
            covered.add(candidate.nudge.kind)
    return placed


def _is_repeat(candidate: _Candidate, placed: Sequence[tuple[_Candidate, datetime]]) -> bool:
    """A placed nudge that may give way: its kind is covered by another, or not named."""
    kind = candidate.nudge.kind
    if kind not in COVERED_KINDS:
        return True
    return sum(1 for c, _ in placed if c.nudge.kind == kind and _covers(c)) > (
        1 if _covers(candidate) else 0)


def _try_slots(tries: Sequence[_Candidate], placed: Sequence[tuple[_Candidate, datetime]],
               existing: Sequence[datetime], window: _Window) -> tuple[_Candidate, datetime] | None:
    """The first of tries that fits among placed and existing messages."""
    taken = sorted([*existing, *(moment for _, moment in placed)])
    for attempt in tries:
        moment = _first_fit(attempt, taken, window)
        if moment is not None:
            return attempt, moment
    return None


def plan_messages(plan: Plan, participant: ParticipantView, anchor_at: datetime, now: datetime,
                  existing: Sequence[datetime] = ()) -> list[PlannedMessage]:
    """Place a plan's nudges for one participant, sorted by due time (all datetimes UTC)."""
    anchor_at, now = _utc(anchor_at, "anchor_at"), _utc(now, "now")
    taken = [_utc(moment, "existing") for moment in existing]
    window = _Window.of(participant)
    candidates = [
        candidate
        for nudge in plan.nudges
        if _passes_when(nudge, participant)
        and (candidate := _candidate(nudge, plan, participant, window, anchor_at, now))
    ]
    placed = _place(candidates, taken, window)
    placed = _cover(candidates, placed, taken, plan, participant, window, anchor_at, now)
    placed.sort(key=lambda item: (item[1], -item[0].nudge.priority, item[0].nudge.kind,
                                  item[0].nudge.scope))
    return [
        PlannedMessage(
            kind=c.nudge.kind, scope=c.nudge.scope, message=c.nudge.message, due_at=due,
            expires_at=c.expires_at, priority=c.nudge.priority, condition=c.nudge.condition,
            expects_reply=c.nudge.expects_reply,
        )
        for c, due in placed
    ]
