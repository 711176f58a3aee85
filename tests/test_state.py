"""The conversation state: typed, versioned, and forgiving about what it reads.

A participant's state lives in one JSON column for months. Rows written by the release
before this one (version 1, no "version" key), rows edited by hand, and rows naming a
flow the clinic has since renamed must all still give the participant an answer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.storage.models import Participant
from flows import loader
from flows.engine import Engine
from flows.model import Context
from flows.state import STATE_VERSION, ConversationState, Resume, SafetyCheck, Suspended
from tests.test_conversation import enroll

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)

EVERY_OLD_KEY = {
    "flow": "timezone",
    "step": "ask",
    "resume": {"flow": "journal", "step": "insight"},
    "suspended": {"flow": "journal", "step": "images", "at": "2026-11-23T14:00:00+00:00",
                  "resume": {"flow": "enrollment", "step": "bedtime"}},
    "awaiting": "mood",
    "asked_again": True,
    "check": {"asked_at": "2026-11-23T14:30:00+00:00", "timed_out": True},
    "check_last": "2026-11-23T14:30:00+00:00",
    "quiet_until": "2026-11-23T15:10:00+00:00",
    "optout_lang": "es",
    "invited": True,
    "delete_asked": "2026-11-23T14:55:00+00:00",
    "lang": "es",
}
"""Every key the engine wrote before the state had a type, in the shapes it wrote them."""


def stored(state: ConversationState) -> dict:
    """What the database column gives back after storing state."""
    return json.loads(json.dumps(state.to_dict()))


# ---------------------------------------------------------------- reading and writing


def test_every_key_the_old_engine_wrote_survives_a_read_and_a_write():
    state = ConversationState.from_dict(EVERY_OLD_KEY)
    assert state.resume == Resume("journal", "insight")
    assert state.suspended == Suspended("journal", "images", datetime(2026, 11, 23, 14, tzinfo=UTC),
                                        Resume("enrollment", "bedtime"))
    assert state.check == SafetyCheck(datetime(2026, 11, 23, 14, 30, tzinfo=UTC), timed_out=True)
    assert state.quiet_until == datetime(2026, 11, 23, 15, 10, tzinfo=UTC)
    # The same keys and shapes as before plus the version: an older release can still
    # read what this one writes, so a deploy can be rolled back.
    assert stored(state) == {**EVERY_OLD_KEY, "version": STATE_VERSION}


def test_a_row_without_a_version_is_read_as_version_one():
    old = {"flow": "journal", "step": "insight"}
    state = ConversationState.from_dict(old)
    assert (state.flow, state.step, state.version) == ("journal", "insight", STATE_VERSION)
    assert stored(state) == {"version": 2, "flow": "journal", "step": "insight"}


def test_only_fields_that_differ_from_their_defaults_are_written():
    assert ConversationState().to_dict() == {"version": 2}
    assert ConversationState(invited=True).to_dict() == {"version": 2, "invited": True}
    assert ConversationState.from_dict({"invited": False, "asked_again": False,
                                        "flow": None}).to_dict() == {"version": 2}


def test_unknown_keys_and_a_newer_version_are_read_for_what_is_known():
    state = ConversationState.from_dict({"version": 7, "flow": "journal", "step": "images",
                                         "mood_streak": 3, "nested": {"a": [1, 2]}})
    assert stored(state) == {"version": 2, "flow": "journal", "step": "images"}


def test_values_of_the_wrong_type_become_defaults():
    state = ConversationState.from_dict({
        "flow": 5, "step": ["x"], "resume": "journal", "suspended": {"step": "images"},
        "awaiting": {"a": 1}, "asked_again": "yes", "check": {"asked_at": 12},
        "check_last": "yesterday", "quiet_until": "2026-13-45T99:00", "optout_lang": 0,
        "invited": 1, "delete_asked": None, "lang": "",
    })
    assert state == ConversationState()


def test_anything_that_is_not_a_dict_is_a_fresh_state():
    for junk in (None, [], "flow=journal", 3, 2.5, True, ["flow", "journal"]):
        assert ConversationState.from_dict(junk) == ConversationState()


def test_a_time_without_a_zone_is_taken_as_utc():
    state = ConversationState.from_dict({"quiet_until": "2026-11-23T15:10:00"})
    assert state.quiet_until == datetime(2026, 11, 23, 15, 10, tzinfo=UTC)
    elsewhere = ConversationState.from_dict({"check_last": "2026-11-23T10:00:00-05:00"})
    assert elsewhere.check_last == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(sorted(EVERY_OLD_KEY) + ["version", "at", "asked_at", "timed_out"])
ROWS = st.dictionaries(KEYS | st.text(max_size=8), JSON | st.sampled_from(
    list(EVERY_OLD_KEY.values()) + ["2026-11-23T15:00:00+00:00", "2026-11-23"]), max_size=10)


@given(ROWS | JSON)
def test_no_stored_value_makes_reading_raise_and_a_second_read_changes_nothing(row):
    state = ConversationState.from_dict(row)
    assert ConversationState.from_dict(stored(state)) == state


IDS = st.none() | st.text(min_size=1, max_size=12)
TIMES = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5)),
                               timezone(timedelta(hours=5, minutes=30))]))
RESUMES = st.none() | st.builds(Resume, st.text(min_size=1, max_size=12), IDS)
STATES = st.builds(
    ConversationState, flow=IDS, step=IDS, resume=RESUMES,
    suspended=st.none() | st.builds(Suspended, st.text(min_size=1, max_size=12), IDS, TIMES,
                                    RESUMES),
    awaiting=IDS, asked_again=st.booleans(),
    check=st.none() | st.builds(SafetyCheck, TIMES.filter(lambda t: t is not None),
                                st.booleans()),
    check_last=TIMES, quiet_until=TIMES, optout_lang=IDS, invited=st.booleans(),
    delete_asked=TIMES, lang=IDS)


@given(STATES)
def test_every_state_comes_back_from_the_column_unchanged(state):
    assert ConversationState.from_dict(stored(state)) == state


# ---------------------------------------------------------------- words that changed


def engine_turn(state: dict, text: str):
    """One engine turn for an enrolled participant with a stored state."""
    ctx = Context(status="active", timezone="America/New_York",
                  variables={"program": "P", "clinic_name": "C", "clinic_contact": "1",
                             "care_team": "them"})
    return Engine(loader.load()).resume(state, ctx, NOW, text=text)


def test_every_id_the_definitions_no_longer_know_is_dropped_in_the_engine():
    result = engine_turn({"flow": "retired", "step": "gone",
                          "resume": {"flow": "journal", "step": "renamed"},
                          "suspended": {"flow": "old_checkin", "step": "ask"},
                          "awaiting": "retired_nudge", "asked_again": True}, "hello")
    assert result.texts(), "no answer"
    assert result.state == ConversationState()


def test_a_detour_back_to_a_removed_flow_ends_quietly():
    result = engine_turn({"flow": "bedtime", "step": "ask",
                          "resume": {"flow": "retired", "step": "x"}}, "10:30pm")
    assert result.texts() and result.state == ConversationState()


# ---------------------------------------------------------------- through the webhook


def test_a_stored_flow_that_no_longer_exists_ends_with_an_answer_and_a_clean_row(
        client, services, phone, db):
    enroll(client, services, phone)
    fresh = phone.text("what is this")  # what anyone outside a flow gets
    with db.session() as s:
        s.execute(update(Participant).values(state={
            "flow": "evening_checkin", "step": "ask",  # a flow the clinic removed
            "resume": {"flow": "journal", "step": "a_renamed_step"},
            "awaiting": "a_retired_nudge"}))
    answer = phone.text("what is this")
    assert answer == fresh
    with db.session() as s:
        assert s.scalars(select(Participant.state)).one() == {"version": 2}


def test_a_version_one_row_mid_journal_keeps_going_and_is_written_as_version_two(
        client, services, phone, db):
    enroll(client, services, phone)
    phone.text("done")
    with db.session() as s:  # the row as the release before this one left it
        s.execute(update(Participant).values(state={"flow": "journal", "step": "insight"}))
    assert phone.text("I felt lighter")  # the insight answer; the next question follows
    with db.session() as s:
        row = s.scalars(select(Participant.state)).one()
    assert row == {"version": 2, "flow": "journal", "step": "release"}
