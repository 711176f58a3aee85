"""Nudge plans: loading and validation, and placing nudges in the participant's own time."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.schedule import (
    KINDS,
    Nudge,
    ParticipantView,
    Plan,
    PlanError,
    load_plans,
    local_to_utc,
    next_allowed,
    plan_messages,
    sending_window,
    validate_plans,
)

PLANS_FILE = Path(__file__).resolve().parents[1] / "flows" / "definitions" / "plans.toml"
DATA = tomllib.loads(PLANS_FILE.read_text(encoding="utf-8"))
PLANS = load_plans(DATA)
POST, PRE, MAINTENANCE = PLANS["post_session"], PLANS["pre_session"], PLANS["maintenance"]
OWN_HORIZON = {"mindfulness", "action", "maintenance"}
"""Kinds that may go out after the 72-hour window."""


def at_local(zone: str, *args: int) -> datetime:
    """A local wall time in zone (as a participant would read it)."""
    return datetime(*args, tzinfo=ZoneInfo(zone))


def local(moment: datetime, zone: str) -> datetime:
    """An instant as wall time in zone."""
    return moment.astimezone(ZoneInfo(zone))


def keyed(messages) -> dict:
    """Planned messages by (kind, scope)."""
    return {(m.kind, m.scope): m for m in messages}


def hours_between(start: datetime, end: datetime) -> float:
    """Elapsed hours from start to end."""
    return (end - start) / timedelta(hours=1)


def assert_cap(planned, existing=()) -> None:
    """No rolling 24 hours holds more than 3 messages once a planned one is among them."""
    everything = sorted([(m.due_at, True) for m in planned] + [(e, False) for e in existing])
    for i in range(len(everything) - 3):
        run = everything[i:i + 4]
        if any(is_planned for _, is_planned in run):
            assert run[-1][0] - run[0][0] >= timedelta(hours=24), run


# --- the shipped plans ---------------------------------------------------------------


def test_shipped_plans_validate_clean():
    assert validate_plans(DATA, DATA["messages"]) == []
    assert {name: plan.anchor for name, plan in PLANS.items()} == {
        "post_session": "session_done",
        "pre_session": "session_scheduled",
        "maintenance": "course_end",
        "caring": "crisis_ack",
    }
    assert {n.kind for plan in PLANS.values() for n in plan.nudges} == set(KINDS)


def test_the_plans_table_on_its_own_loads_the_same_as_the_whole_file():
    # The definitions loader merges files and hands over just the [plans] table.
    assert load_plans(DATA["plans"]) == PLANS
    assert validate_plans(DATA["plans"], DATA["messages"]) == []
    problems = validate_plans(DATA["plans"], {})
    assert problems and all("is not in [messages]" in p for p in problems)


def test_every_nudge_that_asks_for_a_reply_says_how():
    asking = [n for plan in PLANS.values() for n in plan.nudges if n.expects_reply]
    assert {n.expects_reply for n in asking} == {"mood", "therapy_booked", "intention",
                                                 "keep_going"}
    for nudge in asking:
        assert "reply" in DATA["messages"][nudge.message].lower()


# --- a session done in the afternoon -------------------------------------------------


@pytest.mark.parametrize("zone", [
    "America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Auckland", "America/Phoenix",
])
@pytest.mark.parametrize("has_therapist", [True, False])
def test_done_in_the_afternoon_spreads_nudges_over_the_window(zone, has_therapist):
    done = at_local(zone, 2026, 5, 5, 14, 0)
    participant = ParticipantView(timezone=zone, has_therapist=has_therapist)
    planned = plan_messages(POST, participant, done, now=done)
    got = keyed(planned)
    today, tomorrow = date(2026, 5, 5), date(2026, 5, 6)

    therapy = got[("therapy", "ask" if has_therapist else "suggest")]
    assert 0 < hours_between(done, therapy.due_at) <= 2
    sleep = local(got[("sleep", "night1")].due_at, zone)
    assert sleep.date() == today and sleep.time() <= time(22, 0)  # before a 22:30 bedtime
    exercise = local(got[("exercise", "day1")].due_at, zone)
    assert exercise.date() == tomorrow and exercise.time() < time(12, 0)
    assert local(got[("connection", "day1")].due_at, zone).date() == tomorrow
    assert hours_between(done, got[("avoid", "reminder")].due_at) < 48
    assert 44 <= hours_between(done, got[("avoid", "checkin")].due_at) <= 47
    assert got[("avoid", "checkin")].expects_reply == "mood"

    for message in planned:
        assert time(8, 0) <= local(message.due_at, zone).time() < time(20, 0)
        if message.kind not in OWN_HORIZON:
            assert hours_between(done, message.due_at) <= 72
    assert_cap(planned)


def test_done_late_at_night_waits_for_the_morning():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 23, 30)
    planned = plan_messages(POST, ParticipantView(timezone=zone), done, now=done)
    first = local(planned[0].due_at, zone)
    assert (first.date(), first.time()) == (date(2026, 5, 6), time(8, 0))
    assert planned[0].kind == "therapy"
    assert ("sleep", "night1") not in keyed(planned)  # tonight's sleep text is no use tomorrow
    assert all(time(8, 0) <= local(m.due_at, zone).time() < time(20, 0) for m in planned)


def test_done_just_after_midnight_counts_as_the_evening_before():
    zone = "Europe/London"
    done = at_local(zone, 2026, 5, 6, 0, 45)
    got = keyed(plan_messages(POST, ParticipantView(timezone=zone), done, now=done))
    exercise = local(got[("exercise", "day1")].due_at, zone)
    assert exercise.date() == date(2026, 5, 6)  # "the day after" is this same morning


# --- daylight saving -----------------------------------------------------------------


@pytest.mark.parametrize("zone, saturday", [
    ("America/New_York", date(2026, 3, 7)),   # spring forward on Sunday 8 March
    ("America/New_York", date(2026, 10, 31)),  # fall back on Sunday 1 November
    ("Europe/London", date(2026, 3, 28)),
    ("Pacific/Auckland", date(2026, 4, 4)),
])
def test_nudges_keep_their_local_wall_time_across_dst(zone, saturday):
    tz = ZoneInfo(zone)
    monday = saturday + timedelta(days=2)
    assert datetime.combine(saturday, time(12), tz).utcoffset() != \
        datetime.combine(monday, time(12), tz).utcoffset()  # the fixture really spans a change
    done = datetime.combine(saturday, time(14, 0), tz)
    planned = plan_messages(POST, ParticipantView(timezone=zone), done, now=done)
    got = keyed(planned)
    exercise = local(got[("exercise", "day1")].due_at, zone)
    assert (exercise.date(), exercise.time()) == (saturday + timedelta(days=1), time(9, 0))
    sleep = local(got[("sleep", "night1")].due_at, zone)
    assert (sleep.date(), sleep.time()) == (saturday, time(19, 30))
    mindfulness = [m for m in planned if m.kind == "mindfulness"]
    assert mindfulness and all(local(m.due_at, zone).time() == time(9, 0) for m in mindfulness)
    # "45 hours after" is elapsed time, so its wall time shifts with the clocks.
    assert hours_between(done, got[("avoid", "checkin")].due_at) == 45


def test_skipped_local_times_resolve_forward_and_repeated_ones_take_the_first():
    zone = "America/New_York"
    assert local_to_utc(date(2026, 3, 8), time(2, 30), zone) == datetime(2026, 3, 8, 7, 30,
                                                                         tzinfo=UTC)
    assert local(local_to_utc(date(2026, 3, 8), time(2, 30), zone), zone).time() == time(3, 30)
    assert local_to_utc(date(2026, 11, 1), time(1, 30), zone) == datetime(2026, 11, 1, 5, 30,
                                                                          tzinfo=UTC)


def test_maintenance_runs_weekly_at_the_same_local_time_then_asks_to_keep_going():
    zone = "America/New_York"
    course_end = at_local(zone, 2026, 10, 20, 15, 0)  # the weeks cross the November change
    planned = plan_messages(MAINTENANCE, ParticipantView(timezone=zone), course_end,
                            now=course_end)
    assert [m.scope for m in planned] == [f"week{n}" for n in range(1, 10)]
    days = [local(m.due_at, zone) for m in planned]
    assert all(d.time() == time(10, 0) for d in days)
    assert [(b.date() - a.date()).days for a, b in zip(days, days[1:], strict=False)] == [7] * 8
    assert [m.expects_reply for m in planned] == [None] * 8 + ["keep_going"]


# --- the sending window --------------------------------------------------------------


@pytest.mark.parametrize("participant, expected", [
    (ParticipantView("UTC"), (time(8), time(20))),
    (ParticipantView("UTC", bedtime=time(21, 0)), (time(8), time(20))),
    (ParticipantView("UTC", bedtime=time(19, 0)), (time(8), time(18, 30))),
    (ParticipantView("UTC", bedtime=time(1, 0)), (time(8), time(20))),
    (ParticipantView("UTC", window_start=time(9), window_end=time(17)), (time(9), time(17))),
    (ParticipantView("UTC", window_start=time(6), window_end=time(23)), (time(8), time(20))),
    (ParticipantView("UTC", window_start=time(18), window_end=time(9)), (time(8), time(20))),
])
def test_sending_window_only_narrows(participant, expected):
    assert sending_window(participant) == expected


def test_a_narrow_window_and_early_bedtime_are_respected():
    zone = "America/Phoenix"
    done = at_local(zone, 2026, 6, 2, 13, 0)
    participant = ParticipantView(timezone=zone, bedtime=time(19, 0), window_start=time(10))
    planned = plan_messages(POST, participant, done, now=done)
    assert planned
    assert all(time(10) <= local(m.due_at, zone).time() < time(18, 30) for m in planned)
    sleep = local(keyed(planned)[("sleep", "night1")].due_at, zone)
    assert sleep.date() == date(2026, 6, 2) and sleep.time() <= time(16, 0)


def test_a_late_bedtime_still_gets_tonights_sleep_nudge_before_the_window_closes():
    zone = "Europe/London"
    done = at_local(zone, 2026, 6, 2, 13, 0)
    got = keyed(plan_messages(POST, ParticipantView(zone, bedtime=time(23, 45)), done, now=done))
    sleep = local(got[("sleep", "night1")].due_at, zone)
    assert sleep.date() == date(2026, 6, 2) and sleep.time() == time(19, 30)


def test_next_allowed_moves_night_times_to_the_morning_and_respects_pause():
    zone = "Asia/Kolkata"
    participant = ParticipantView(timezone=zone)
    assert next_allowed(at_local(zone, 2026, 1, 5, 12, 0), participant) == \
        at_local(zone, 2026, 1, 5, 12, 0)
    assert local(next_allowed(at_local(zone, 2026, 1, 5, 21, 0), participant), zone) == \
        at_local(zone, 2026, 1, 6, 8, 0)
    paused = ParticipantView(timezone=zone, paused_until=at_local(zone, 2026, 1, 9, 22, 0))
    assert local(next_allowed(at_local(zone, 2026, 1, 5, 12, 0), paused), zone) == \
        at_local(zone, 2026, 1, 10, 8, 0)


# --- the present, expiry and pause ---------------------------------------------------


def test_nothing_is_due_before_now_when_planning_runs_late():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    now = at_local(zone, 2026, 5, 5, 18, 10)  # e.g. the worker was down for a while
    planned = plan_messages(POST, ParticipantView(zone), done, now=now)
    assert all(m.due_at >= now for m in planned)
    assert keyed(planned)[("therapy", "suggest")].due_at == now


def test_a_nudge_that_cannot_go_out_before_its_expiry_is_dropped():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 20, 30)  # after the window closed on the session evening
    planned = plan_messages(POST, ParticipantView(zone), done, now=done)
    assert ("sleep", "night1") not in keyed(planned)
    assert all(m.due_at <= m.expires_at for m in planned)


def test_paused_participants_get_nothing_until_the_pause_ends():
    zone = "Europe/London"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    pause_end = done + timedelta(hours=30)
    participant = ParticipantView(zone, paused_until=pause_end, has_therapist=True)
    got = keyed(plan_messages(POST, participant, done, now=done))
    assert all(m.due_at >= pause_end for m in got.values())
    assert ("therapy", "ask") not in got  # its 24 hours ran out during the pause
    assert ("avoid", "checkin") in got


# --- branches from what we know about the participant --------------------------------


@pytest.mark.parametrize("has_therapist, expected", [
    (True, {("therapy", "ask"), ("therapy", "followup")}),
    (False, {("therapy", "suggest")}),
    (None, {("therapy", "suggest")}),
])
def test_therapy_nudges_follow_whether_they_have_a_therapist(has_therapist, expected):
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    got = keyed(plan_messages(POST, ParticipantView(zone, has_therapist=has_therapist), done,
                              now=done))
    assert {key for key in got if key[0] == "therapy"} == expected
    if has_therapist:
        assert got[("therapy", "ask")].expects_reply == "therapy_booked"
        assert got[("therapy", "followup")].condition == "therapy_not_booked"


@pytest.mark.parametrize("has_action", [True, False])
def test_the_action_follow_up_needs_an_action(has_action):
    zone = "Asia/Kolkata"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    got = keyed(plan_messages(POST, ParticipantView(zone, has_action=has_action), done, now=done))
    assert (("action", "day3") in got) is has_action
    if has_action:
        action = got[("action", "day3")]
        assert local(action.due_at, zone).date() == date(2026, 5, 8)
        assert action.condition == "has_action"
        assert "{action}" in DATA["messages"][action.message]


def test_mindfulness_goes_out_at_the_chosen_time_or_the_nearest_open_time_that_day():
    zone = "Pacific/Auckland"
    done = at_local(zone, 2026, 7, 1, 14, 0)
    for chosen, expected in ((time(12, 30), time(12, 30)), (time(6, 30), time(8, 0)),
                             (time(21, 0), time(19, 30))):
        planned = plan_messages(POST, ParticipantView(zone, mindfulness_time=chosen), done,
                                now=done)
        practice = [m for m in planned if m.kind == "mindfulness"]
        assert len(practice) >= 4
        assert {local(m.due_at, zone).time() for m in practice} == {expected}


# --- before a session ----------------------------------------------------------------


def test_intention_prompt_comes_the_evening_before():
    zone = "America/New_York"
    session = at_local(zone, 2026, 5, 8, 10, 0)
    now = at_local(zone, 2026, 5, 5, 12, 0)
    (prompt,) = plan_messages(PRE, ParticipantView(zone), session, now=now)
    assert local(prompt.due_at, zone) == at_local(zone, 2026, 5, 7, 19, 0)
    assert prompt.expects_reply == "intention" and prompt.expires_at < session


def test_intention_prompt_booked_late_comes_an_hour_before():
    zone = "America/New_York"
    session = at_local(zone, 2026, 5, 8, 10, 0)
    now = at_local(zone, 2026, 5, 7, 20, 30)
    (prompt,) = plan_messages(PRE, ParticipantView(zone), session, now=now)
    assert local(prompt.due_at, zone) == at_local(zone, 2026, 5, 8, 9, 0)


def test_intention_prompt_is_dropped_when_no_allowed_time_is_left_before_the_session():
    zone = "America/New_York"
    session = at_local(zone, 2026, 5, 8, 7, 30)
    now = at_local(zone, 2026, 5, 7, 21, 0)
    assert plan_messages(PRE, ParticipantView(zone), session, now=now) == []


# --- the rolling cap -----------------------------------------------------------------


def simple_plan(*nudges: Nudge) -> Plan:
    """A post-session style plan built in the test, to show the cap on its own."""
    return Plan(name="test", anchor="session_done", nudges=nudges)


def test_cap_counts_existing_messages_and_moves_the_less_important_nudge_later():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    existing = [at_local(zone, 2026, 5, 6, 9, 0), at_local(zone, 2026, 5, 6, 10, 0)]
    plan = simple_plan(
        Nudge("sleep", "a", "m", priority=90, day=1, at=time(11), expires_in=timedelta(hours=1)),
        Nudge("exercise", "b", "m", priority=10, day=1, at=time(11),
              expires_in=timedelta(hours=48)),
    )
    got = keyed(plan_messages(plan, ParticipantView(zone), done, now=done, existing=existing))
    assert local(got[("sleep", "a")].due_at, zone) == at_local(zone, 2026, 5, 6, 11, 0)
    # Three already sit in the 24 hours from 09:00, so the less important one waits.
    assert local(got[("exercise", "b")].due_at, zone) == at_local(zone, 2026, 5, 7, 9, 0)
    assert_cap(got.values(), existing)


def test_cap_drops_the_less_important_nudge_when_moving_it_would_pass_its_expiry():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    existing = [at_local(zone, 2026, 5, 6, 9, 0), at_local(zone, 2026, 5, 6, 10, 0)]
    plan = simple_plan(
        Nudge("sleep", "a", "m", priority=90, day=1, at=time(11), expires_in=timedelta(hours=4)),
        Nudge("mindfulness", "b", "m", priority=10, day=1, at=time(11),
              expires_in=timedelta(hours=4)),
    )
    # (A kind the clinic's guide names would move to a later day instead: test_coverage.py.)
    got = keyed(plan_messages(plan, ParticipantView(zone), done, now=done, existing=existing))
    assert set(got) == {("sleep", "a")}


def test_cap_breaks_priority_ties_by_kind_whatever_the_order_in_the_plan():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    existing = [at_local(zone, 2026, 5, 6, 9, 0), at_local(zone, 2026, 5, 6, 10, 0)]
    first = Nudge("mindfulness", "a", "m", priority=50, day=1, at=time(11),
                  expires_in=timedelta(0))
    second = Nudge("action", "a", "m", priority=50, day=1, at=time(11), expires_in=timedelta(0))
    results = [
        plan_messages(simple_plan(*order), ParticipantView(zone), done, now=done,
                      existing=existing)
        for order in ((first, second), (second, first))
    ]
    assert results[0] == results[1]
    assert [m.kind for m in results[0]] == ["action"]


def test_the_full_plan_with_busy_existing_messages_respects_the_cap():
    zone = "America/New_York"
    done = at_local(zone, 2026, 5, 5, 14, 0)
    existing = [done + timedelta(hours=h) for h in (2, 5, 20, 30, 50)]
    participant = ParticipantView(zone, has_therapist=True, has_action=True)
    planned = plan_messages(POST, participant, done, now=done, existing=existing)
    assert planned
    assert_cap(planned, existing)
    assert plan_messages(POST, participant, done, now=done, existing=existing[::-1]) == planned


# --- bad input -----------------------------------------------------------------------


def test_naive_datetimes_and_unknown_zones_are_refused():
    done = datetime(2026, 5, 5, 14, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_messages(POST, ParticipantView("UTC"), done, now=done.replace(tzinfo=UTC))
    with pytest.raises(ValueError, match="unknown time zone"):
        plan_messages(POST, ParticipantView("Mars/Olympus"), done.replace(tzinfo=UTC),
                      now=done.replace(tzinfo=UTC))


# --- validation ----------------------------------------------------------------------


def broken(change) -> tuple[dict, dict]:
    """A copy of the shipped plans with one change applied, and its messages."""
    data = copy.deepcopy(DATA)
    change(data)
    return data, data["messages"]


def first_nudge(data: dict) -> dict:
    """The first post-session nudge table (therapy/ask)."""
    return data["plans"]["post_session"]["nudges"][0]


def test_a_dangling_message_key_is_named():
    data, messages = broken(lambda d: first_nudge(d).update(message="nudge.therapy.nope"))
    (problem,) = validate_plans(data, messages)
    assert "nudge.therapy.nope" in problem and "therapy/ask" in problem


def test_a_word_outside_gsm7_is_named():
    data, messages = broken(lambda d: d["messages"].update(
        {"nudge.sleep.night1": "Tonight, aim for 7\u20149 hours \u2019sleep\u2019."}))
    (problem,) = validate_plans(data, messages)
    assert "nudge.sleep.night1" in problem and "GSM-7" in problem


def test_a_400_character_message_is_named():
    data, messages = broken(lambda d: d["messages"].update({"nudge.exercise.day1": "a" * 400}))
    (problem,) = validate_plans(data, messages)
    assert "nudge.exercise.day1" in problem and "segments" in problem


def test_a_long_placeholder_can_push_a_message_over_two_segments():
    data, messages = broken(lambda d: d["messages"].update(
        {"nudge.action.day3": "a" * 250 + " {action}"}))
    (problem,) = validate_plans(data, messages)
    assert "nudge.action.day3" in problem and "segments" in problem


def test_a_duplicate_scope_is_named():
    data, messages = broken(lambda d: d["plans"]["post_session"]["nudges"].append(
        dict(first_nudge(d))))
    (problem,) = validate_plans(data, messages)
    assert "duplicate scope 'ask'" in problem and "post_session" in problem


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["plans"]["maintenance"].update(anchor="course_start"), "unknown anchor"),
    (lambda d: first_nudge(d).update(kind="diet"), "unknown kind 'diet'"),
    (lambda d: first_nudge(d).update(after="2 hours"), "not a duration"),
    (lambda d: d["plans"]["pre_session"]["nudges"][0].update(at="25:00"), "'25:00'"),
    (lambda d: first_nudge(d).update(exipres_after="24h"), "unknown field 'exipres_after'"),
    (lambda d: d["messages"].update({"nudge.therapy.ask": "Book a session. YES or NO?"}),
     "does not say how to reply"),
    (lambda d: d["messages"].update({"nudge.sleep.night1": "Sleep well after your Ketamine."}),
     "lock-screen"),
    (lambda d: d["messages"].update({"nudge.sleep.night1": "Hi {first_name}, sleep well."}),
     "{first_name}"),
    (lambda d: first_nudge(d).update(after="30h"), "never be sent"),
])
def test_other_mistakes_are_reported(change, expected):
    data, messages = broken(change)
    problems = validate_plans(data, messages)
    assert any(expected in p for p in problems), problems


def test_load_plans_lists_every_problem_at_once():
    def two_mistakes(d):
        first_nudge(d).update(message="missing.key")
        d["plans"]["maintenance"]["anchor"] = "nope"

    data, _ = broken(two_mistakes)
    with pytest.raises(PlanError) as caught:
        load_plans(data)
    assert len(caught.value.problems) == 2
    assert "missing.key" in str(caught.value) and "'nope'" in str(caught.value)


# --- properties ----------------------------------------------------------------------

ZONES = [
    "America/New_York", "America/Los_Angeles", "America/Phoenix", "America/St_Johns",
    "America/Sao_Paulo", "America/Santiago", "America/Havana", "Europe/London",
    "Europe/Berlin", "Africa/Casablanca", "Asia/Kolkata", "Asia/Kathmandu",
    "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham", "Pacific/Kiritimati",
]


def _transitions() -> list[datetime]:
    """Days in 2026-2028 when one of ZONES changes its UTC offset (noon UTC)."""
    found = []
    for name in ZONES:
        zone = ZoneInfo(name)
        moment = datetime(2026, 1, 1, 12, tzinfo=UTC)
        offset = moment.astimezone(zone).utcoffset()
        while moment.year < 2029:
            moment += timedelta(days=1)
            if moment.astimezone(zone).utcoffset() != offset:
                offset = moment.astimezone(zone).utcoffset()
                found.append(moment)
    return found


TRANSITIONS = _transitions()
quarter_hours = st.integers(0, 95).map(lambda n: time(n // 4, n % 4 * 15))
anchors = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.tuples(st.sampled_from(TRANSITIONS), st.integers(-72 * 60, 72 * 60)).map(
        lambda pair: pair[0] + timedelta(minutes=pair[1])),
)


@st.composite
def participants(draw) -> ParticipantView:
    """Participants with varied zones, windows, bedtimes and knowledge."""
    start = draw(st.integers(32, 72))  # quarter hours: 08:00 .. 18:00
    end = draw(st.integers(start + 4, 80))  # at least an hour, up to 20:00
    return ParticipantView(
        timezone=draw(st.sampled_from(ZONES)),
        bedtime=draw(st.none() | quarter_hours),
        window_start=time(start // 4, start % 4 * 15),
        window_end=time(end // 4, end % 4 * 15),
        has_therapist=draw(st.sampled_from([None, True, False])),
        mindfulness_time=draw(st.none() | quarter_hours),
        has_action=draw(st.booleans()),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.sampled_from(list(PLANS.values())),
    participant=participants(),
    anchor=anchors,
    now_offset=st.integers(-4 * 24 * 60, 12 * 60),
    pause_hours=st.none() | st.integers(0, 96),
    existing_offsets=st.lists(st.integers(-48 * 60, 96 * 60), max_size=7),
    data=st.data(),
)
def test_planned_messages_always_obey_the_delivery_rules(
    plan, participant, anchor, now_offset, pause_hours, existing_offsets, data,
):
    now = anchor + timedelta(minutes=now_offset)
    if pause_hours is not None:
        participant = ParticipantView(**{**participant.__dict__,
                                         "paused_until": now + timedelta(hours=pause_hours)})
    existing = [anchor + timedelta(minutes=m) for m in existing_offsets]
    planned = plan_messages(plan, participant, anchor, now, existing)

    start, end = sending_window(participant)
    for message in planned:
        assert message.due_at.tzinfo is UTC and message.expires_at.tzinfo is UTC
        assert now <= message.due_at <= message.expires_at
        if participant.paused_until is not None:
            assert message.due_at >= participant.paused_until
        assert start <= local(message.due_at, participant.timezone).time() < end
        if plan.anchor == "session_done" and message.kind not in OWN_HORIZON:
            assert message.due_at <= anchor + timedelta(hours=72)
        if plan.anchor == "session_scheduled":
            assert message.due_at < anchor
    assert [m.due_at for m in planned] == sorted(m.due_at for m in planned)
    assert len({(m.kind, m.scope) for m in planned}) == len(planned)
    assert_cap(planned, existing)
    for message in planned:
        others = [m.due_at for m in planned if m is not message] + existing
        assert all(abs(message.due_at - other) >= timedelta(minutes=30) for other in others)
    shuffled = data.draw(st.permutations(existing))
    assert plan_messages(plan, participant, anchor, now, shuffled) == planned


@settings(max_examples=300, deadline=None)
@given(participant=participants(), at=anchors, pause_hours=st.none() | st.integers(0, 96))
def test_next_allowed_is_the_earliest_open_time(participant, at, pause_hours):
    if pause_hours is not None:
        participant = ParticipantView(**{**participant.__dict__,
                                         "paused_until": at + timedelta(hours=pause_hours)})
    result = next_allowed(at, participant)
    start, end = sending_window(participant)
    assert result.tzinfo is UTC and result >= at
    assert start <= local(result, participant.timezone).time() < end
    floor = max(at, participant.paused_until or at)
    if start <= local(floor, participant.timezone).time() < end:
        assert result == floor
    else:
        assert local(result, participant.timezone).time() == start
