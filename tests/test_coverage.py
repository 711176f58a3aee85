"""Coverage under the cap (issue 10, item 15): whatever the time of DONE, every kind the
clinic's guide names reaches the participant within 72 hours, and the delivery rules hold."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.schedule import (
    CAP_COUNT,
    CAP_PERIOD,
    COVERED_KINDS,
    MIN_SPACING,
    ParticipantView,
    load_plans,
    plan_messages,
    sending_window,
)

PLANS = load_plans(tomllib.loads(
    (Path(__file__).resolve().parents[1] / "flows" / "definitions" / "plans.toml")
    .read_text(encoding="utf-8")))
POST = PLANS["post_session"]

WEEKS = {
    "us-spring-forward": datetime(2026, 3, 5, tzinfo=UTC),  # US clocks jump on Sun Mar 8
    "eu-fall-back": datetime(2026, 10, 22, tzinfo=UTC),  # Europe falls back on Sun Oct 25
    "ordinary": datetime(2026, 11, 23, tzinfo=UTC),
}
ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney")


def week_of_done_times(start: datetime):
    """Every 15-minute DONE instant of the week starting at start."""
    for step in range(7 * 24 * 4):
        yield start + timedelta(minutes=15 * step)


def rule_breaks(planned, view: ParticipantView) -> list[str]:
    """The 3-per-24h cap, 30-minute spacing and sending window, checked on the result."""
    found = []
    times = sorted(m.due_at for m in planned)
    for i in range(len(times) - CAP_COUNT):
        if times[i + CAP_COUNT] - times[i] < CAP_PERIOD:
            found.append(f"cap broken at {times[i]}")
    found += [f"spacing at {b}" for a, b in zip(times, times[1:], strict=False) if b - a < MIN_SPACING]
    opens, closes = sending_window(view)
    for m in planned:
        wall = m.due_at.astimezone(ZoneInfo(view.timezone)).time()
        if not opens <= wall < closes:
            found.append(f"{m.kind} outside the window at {wall}")
    return found


@pytest.mark.parametrize("week", sorted(WEEKS))
@pytest.mark.parametrize("zone", ZONES)
def test_every_named_kind_arrives_within_72_hours_whatever_the_time_of_done(week, zone):
    failures = []
    for index, done in enumerate(week_of_done_times(WEEKS[week])):
        # Alternate the participant's answers so both therapy branches and bedtimes are met.
        view = ParticipantView(
            timezone=zone, has_therapist=index % 2 == 0,
            bedtime=time(22, 30) if index % 3 else time(23, 45), has_action=index % 5 == 0)
        planned = plan_messages(POST, view, done, done)
        reached = {m.kind for m in planned
                   if m.condition is None and m.due_at <= done + timedelta(hours=72)}
        missing = set(COVERED_KINDS) - reached
        if missing:
            local = done.astimezone(ZoneInfo(zone))
            failures.append(f"DONE {local:%a %H:%M} misses {sorted(missing)}")
        failures += [f"DONE {done}: {b}" for b in rule_breaks(planned, view)]
    assert not failures, f"{len(failures)} problems, e.g. {failures[:5]}"


def test_new_york_mid_afternoon_done_still_gets_the_walk():
    # The example: DONE mid-afternoon in New York filled a rolling 24 hours with
    # therapy, sleep, avoid and the walk, and the walk was dropped.
    view = ParticipantView(timezone="America/New_York", has_therapist=None)
    done = datetime(2026, 11, 23, 16, 0, tzinfo=ZoneInfo("America/New_York"))
    planned = plan_messages(POST, view, done, done)
    walks = [m for m in planned if m.kind == "exercise"]
    assert walks, [(m.kind, m.scope, str(m.due_at)) for m in planned]
    assert walks[0].due_at <= done + timedelta(hours=72)
