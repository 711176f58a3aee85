"""Parsers for the short answers participants text back (pure, standard library).

Each parser takes the raw text and returns a value, or None when it cannot
tell: the engine then asks again with the step's retry words.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flows import keywords

_WEEKDAYS = {
    "mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2,
    "wednesday": 2, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4, "friday": 4,
    "sat": 5, "saturday": 5, "sun": 6, "sunday": 6,
}
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_TIME = re.compile(
    r"(?:at\s+)?(?:(noon|midday|midnight)|(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.?|p\.m\.?|a|p)?)$"
)
_MAX_TEXT = 1000
"""Longest answer we keep in one journal entry or intention (SMS bodies stop at 1600)."""


def clean_text(text: str | None) -> str:
    """Trim an answer for storage: collapse runs of blank space, cap the length."""
    return " ".join((text or "").split())[:_MAX_TEXT]


_LEADING_YES = re.compile(r"^(?:yes|yeah|yep|yup|i did|i have|i booked|booked|done)\b")
_LEADING_NO = re.compile(
    r"^(?:not yet|no|nope|nah|i have ?n.?t|i have not|i did ?n.?t|i did not|"
    r"have ?n.?t|not booked)\b(?!\s+(?:idea|clue)\b)")


def parse_yes_no(text: str | None) -> bool | None:
    """YES -> True, NO -> False, anything else -> None.

    The answer may lead a longer sentence: "not yet, money is tight" is NO and "yes,
    for Thursday" is YES ("no idea" is neither).
    """
    word = keywords.keyword(text)
    if word == keywords.YES:
        return True
    if word == keywords.NO:
        return False
    first = re.split(r"[,.;!?:(]|\s-\s|\bbut\b", keywords.normalize(text), maxsplit=1)[0]
    word = keywords.keyword(first)
    if word in (keywords.YES, keywords.NO):
        return word == keywords.YES
    lead = keywords.normalize(text).replace("\u2019", "'")
    if re.search(r"\byes\b", lead) and re.search(r"\bno\b", lead):
        return None  # "yes and no"
    if _LEADING_NO.match(lead):
        return False
    if _LEADING_YES.match(lead):
        return True
    return None


_LATER = re.compile(
    r"\b(?:next\s+(?:week|month|weekend|mon|tue|wed|thu|fri|sat|sun)\w*|tomorrow|"
    r"later|soon|in\s+\d+\s+(?:days?|weeks?)|on\s+(?:mon|tue|wed|thu|fri|sat|sun)\w*|"
    r"travell?ing|heading|flying|will\s+be|going\s+to|gonna\s+be|trip|visiting|"
    r"moving\s+to|planning)\b")


def mentions_later(text: str | None) -> bool:
    """Whether a reply talks about the future ("traveling to Denver next week")."""
    return bool(_LATER.search(keywords.normalize(text)))


def parse_mood(text: str | None) -> int | None:
    """A 1-5 score from '4', '4/5', 'about a 3', or None."""
    # A digit counts only on the 1-5 scale: "5/10", "3 out of 10" and "2.5" are not scores.
    found = re.findall(
        r"(?<![\d/.])([1-5])(?:\s*(?:/|out of)\s*5(?!\d))?(?!\d|\.\d|\s*(?:/|out of)\s*\d)",
        keywords.normalize(text),
    )
    return int(found[0]) if len(found) == 1 else None


def parse_clock(text: str | None, *, assume_evening: bool = False) -> time | None:
    """A time of day from '10pm', '10:30 pm', '22:30', 'midnight'; None if unclear.

    With assume_evening, a bare hour from 6 to 11 ("10") means the evening,
    which is what people mean when asked for a bedtime.
    """
    t = re.sub(r"\s+", " ", keywords.normalize(text)).strip(" .!")
    m = _TIME.fullmatch(t) or _TIME.fullmatch(_without_filler(t))
    if not m:
        return None
    word, hour_s, minute_s, ampm = m.groups()
    if word:
        return time(12, 0) if word in ("noon", "midday") else time(0, 0)
    hour, minute = int(hour_s), int(minute_s or 0)
    if minute > 59:
        return None
    if ampm:
        if not 1 <= hour <= 12:
            return None
        pm = ampm.startswith("p")
        hour = (hour % 12) + (12 if pm else 0)
    elif hour > 23:
        return None
    elif assume_evening and 6 <= hour <= 11:
        hour += 12
    elif assume_evening and hour == 12:
        hour = 0
    return time(hour, minute)


_FILLER = re.compile(
    r"\b(?:usually|normally|typically|generally|mostly|around|about|approx(?:imately)?|"
    r"roughly|maybe|probably|like|by|at|ish|or so|i go to (?:bed|sleep)|i sleep|i'?m in bed|"
    r"go to bed|bed|bedtime|sleep|i'?d say|i think|every night|most nights|on weeknights|"
    r"in the (?:evening|night)|at night)\b")


def _without_filler(text: str) -> str:
    """'usually around midnight' -> 'midnight': the words around a time people add."""
    bare = _FILLER.sub(" ", re.sub(r"(\d)\s*ish\b", r"\1", text.replace("-", " ").replace("~", " ")))
    return " ".join(bare.replace(",", " ").split()).strip(" .!")


def parse_session_time(text: str | None, tz: str, now: datetime) -> datetime | None:
    """When the next session is: 'fri 6pm', 'tomorrow 10am', '12/5 3pm', 'dec 5 3pm'.

    Returns a UTC datetime in the future, or None when it can't be read. A bare
    weekday means the next such day (today counts only if the time is still ahead).
    """
    zone = ZoneInfo(tz)
    local_now = now.astimezone(zone)
    words = keywords.normalize(text).replace(",", " ").split()
    if not words:
        return None
    day, rest = _parse_day(words, local_now)
    if day is None or not rest:
        return None
    # "tonight 8" is 8 pm, as with a bedtime.
    evening = words[0] == "tonight" or words[:2] == ["this", "evening"]
    clock = parse_clock(" ".join(rest), assume_evening=evening)
    if clock is None:
        return None
    local = datetime.combine(day, clock, tzinfo=zone)
    named_weekday = words[0] in _WEEKDAYS or (
        words[0] in ("next", "this") and len(words) > 1 and words[1] in _WEEKDAYS
    )
    if words[0] == "next" and named_weekday and _same_week(day, local_now.date()):
        # "next tuesday" said on a Monday is the Tuesday of next week, not tomorrow.
        local = datetime.combine(day + timedelta(days=7), clock, tzinfo=zone)
    if local <= local_now and named_weekday:
        local = datetime.combine(day + timedelta(days=7), clock, tzinfo=zone)
    if local <= local_now:
        return None
    return _resolve_gap(local).astimezone(ZoneInfo("UTC"))


def _same_week(day, today) -> bool:
    """Whether day falls in today's Monday-to-Sunday week."""
    return day - timedelta(days=day.weekday()) == today - timedelta(days=today.weekday())


def _parse_day(words: list[str], local_now: datetime):
    """Split a leading day expression off words: (date, remaining words)."""
    today = local_now.date()
    first = words[0]
    if first in ("next", "this") and len(words) > 1 and words[1] in _WEEKDAYS:
        first, words = words[1], words[1:]  # "this fri" and "next fri": the coming Friday
    if first in ("today", "tonight", "this"):
        rest = words[1:]
        if first == "this" and rest and rest[0] in ("morning", "afternoon", "evening"):
            rest = rest[1:]
        return today, rest
    if first in ("tomorrow", "tmrw", "tmr", "tom"):
        return today + timedelta(days=1), words[1:]
    if first in _WEEKDAYS:
        ahead = (_WEEKDAYS[first] - today.weekday()) % 7
        return today + timedelta(days=ahead), words[1:]
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?", first)
    if m:
        return _date_ahead(today, int(m.group(1)), int(m.group(2)), m.group(3)), words[1:]
    if first[:3] in _MONTHS and len(words) > 1 and words[1].isdigit():
        return _date_ahead(today, _MONTHS[first[:3]], int(words[1]), None), words[2:]
    return None, words


def _date_ahead(today, month: int, day: int, year_s: str | None):
    """The date month/day in the given year, else the next one not in the past."""
    try:
        if year_s:
            year = int(year_s) + (2000 if len(year_s) == 2 else 0)
            return today.replace(year=year, month=month, day=day)
        candidate = today.replace(month=month, day=day)
        if candidate < today:
            candidate = candidate.replace(year=today.year + 1)
        return candidate
    except ValueError:
        return None


def _resolve_gap(local: datetime) -> datetime:
    """Move a wall time that doesn't exist (spring-forward gap) to just after the gap."""
    utc = local.astimezone(ZoneInfo("UTC"))
    back = utc.astimezone(local.tzinfo)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return local + timedelta(hours=1) if back < local else back
    return local
