"""Parsers for short answers: clock times, session times, mood scores, yes/no, free text."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from flows.answers import clean_text, parse_clock, parse_mood, parse_session_time, parse_yes_no

NEW_YORK = "America/New_York"
MONDAY_10AM = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Mon Nov 23 2026, 10:00 in New York
THURSDAY_NOON = datetime(2026, 10, 29, 16, 0, tzinfo=UTC)  # Thu Oct 29 2026, 12:00 EDT


def local(zone: str, *args: int) -> datetime:
    """A wall time in zone, as the participant means it."""
    return datetime(*args, tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10pm", time(22, 0)),
        ("10:30 pm", time(22, 30)),
        ("10.30pm", time(22, 30)),
        ("10 p.m.", time(22, 0)),
        ("11:30 PM", time(23, 30)),
        ("7am", time(7, 0)),
        ("12am", time(0, 0)),
        ("12pm", time(12, 0)),
        ("22:30", time(22, 30)),
        ("at 9pm", time(21, 0)),
        ("midnight", time(0, 0)),
        ("Noon!", time(12, 0)),
        ("10", time(10, 0)),  # without assume_evening a bare hour stays as written
        ("25", None),
        ("13pm", None),
        ("10:75pm", None),
        ("late", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_clock(text, expected):
    assert parse_clock(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10:30pm", time(22, 30)),
        ("11", time(23, 0)),
        ("10", time(22, 0)),
        ("6", time(18, 0)),
        ("12", time(0, 0)),  # "12" at bedtime is midnight
        ("1", time(1, 0)),  # after midnight
        ("5", time(5, 0)),
        ("23:00", time(23, 0)),
        ("9am", time(9, 0)),  # an explicit am is kept (day sleepers)
    ],
)
def test_parse_clock_assuming_evening_for_bedtimes(text, expected):
    assert parse_clock(text, assume_evening=True) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("fri 6pm", local(NEW_YORK, 2026, 11, 27, 18, 0)),
        ("Friday at 6 pm", local(NEW_YORK, 2026, 11, 27, 18, 0)),
        ("tomorrow 10am", local(NEW_YORK, 2026, 11, 24, 10, 0)),
        ("tmrw 9:15am", local(NEW_YORK, 2026, 11, 24, 9, 15)),
        ("today 11am", local(NEW_YORK, 2026, 11, 23, 11, 0)),
        ("tonight 8", local(NEW_YORK, 2026, 11, 23, 20, 0)),  # tonight means pm
        ("this fri 6pm", local(NEW_YORK, 2026, 11, 27, 18, 0)),
        ("mon 11am", local(NEW_YORK, 2026, 11, 23, 11, 0)),  # later today
        ("mon 9am", local(NEW_YORK, 2026, 11, 30, 9, 0)),  # already past: next week
        ("next mon 9am", local(NEW_YORK, 2026, 11, 30, 9, 0)),
        ("12/5 3pm", local(NEW_YORK, 2026, 12, 5, 15, 0)),
        ("12/5/26 3pm", local(NEW_YORK, 2026, 12, 5, 15, 0)),
        ("dec 5 3:30pm", local(NEW_YORK, 2026, 12, 5, 15, 30)),
        ("December 5, 3:30pm", local(NEW_YORK, 2026, 12, 5, 15, 30)),
        ("1/8 10am", local(NEW_YORK, 2027, 1, 8, 10, 0)),  # January is next year
    ],
)
def test_parse_session_time_from_monday_morning(text, expected):
    found = parse_session_time(text, NEW_YORK, MONDAY_10AM)
    assert found == expected
    assert found.utcoffset().total_seconds() == 0  # stored as UTC


def test_next_weekday_is_the_coming_one():
    # From a Thursday, "next tue" and "tue" both mean the Tuesday five days on.
    expected = local(NEW_YORK, 2026, 11, 3, 15, 0)
    assert parse_session_time("next tue 3pm", NEW_YORK, THURSDAY_NOON) == expected
    assert parse_session_time("tue 3pm", NEW_YORK, THURSDAY_NOON) == expected


def test_session_after_the_fall_back_uses_the_new_offset():
    # Thursday in daylight time; Monday Nov 2 is after the clocks go back (EST, UTC-5).
    found = parse_session_time("mon 6pm", NEW_YORK, THURSDAY_NOON)
    assert found == datetime(2026, 11, 2, 23, 0, tzinfo=UTC)


def test_session_time_reads_in_the_participants_zone():
    la = parse_session_time("fri 6pm", "America/Los_Angeles", MONDAY_10AM)
    ny = parse_session_time("fri 6pm", NEW_YORK, MONDAY_10AM)
    assert la == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert la - ny == (datetime(2026, 11, 28, 2) - datetime(2026, 11, 27, 23))


def test_spring_forward_gap_moves_past_the_missing_hour():
    # 2:30 am on Sun Mar 14 2027 does not exist in New York: the clocks jump 2:00 -> 3:00.
    now = datetime(2027, 3, 10, 17, 0, tzinfo=UTC)
    found = parse_session_time("3/14 2:30am", NEW_YORK, now)
    assert found == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)  # 3:30 EDT
    assert found.astimezone(ZoneInfo(NEW_YORK)).hour == 3


@pytest.mark.parametrize(
    "text",
    [
        "today 9am",  # an hour ago
        "11/23 9am",  # today's date, earlier time
        "11/20/2026 3pm",  # an explicit past date
        "2/30 3pm",  # no such date
        "13/1 3pm",
        "tomorrow",  # a day without a time
        "6pm",  # a time without a day
        "sometime next week",
        "fri",
        "",
        None,
    ],
)
def test_unreadable_or_past_session_times_are_none(text):
    assert parse_session_time(text, NEW_YORK, MONDAY_10AM) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4", 4),
        ("1", 1),
        ("5", 5),
        ("4/5", 4),
        ("4 / 5", 4),
        ("4 out of 5", 4),
        ("about a 3", 3),
        ("I'm a 2 today", 2),
        ("3.", 3),
        ("0", None),
        ("6", None),
        ("10", None),
        ("5/10", None),  # another scale
        ("3 out of 10", None),
        ("2.5", None),
        ("3 or 4", None),  # two scores: ask again
        ("pretty good", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_mood(text, expected):
    assert parse_mood(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("yes", True),
        ("YES!", True),
        ("Yeah", True),
        ("y", True),
        ("sure", True),
        ("no", False),
        ("Nope.", False),
        ("not yet", False),
        ("maybe", None),
        ("yes and no", None),
        ("I know", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  the ocean  ", "the ocean"),
        ("line one\n\nline two", "line one line two"),
        ("tabs\tand   spaces", "tabs and spaces"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text(text, expected):
    assert clean_text(text) == expected


def test_clean_text_caps_very_long_answers():
    assert len(clean_text("word " * 1000)) == 1000
