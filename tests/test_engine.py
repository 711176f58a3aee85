"""The pure flow engine, turn by turn: no database, no clock, no network.

Every engine call goes through `Chat` (or `turn`), which round-trips the state through
JSON the way the host stores it, and checks every text the engine writes: GSM-7 and at
most two segments, except texts that quote the participant's own words.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest

from flows import loader, sms_text
from flows.engine import Engine, Timer
from flows.model import (
    AskOptOut,
    Context,
    DeleteData,
    EndCourse,
    OptIn,
    OptOut,
    Pause,
    RaiseAlert,
    RecordConsent,
    RecordSessionDone,
    RecordTherapyBooked,
    Result,
    SaveIntention,
    SaveJournalEntry,
    SchedulePlan,
    ScheduleSession,
    SendJournal,
    SendText,
    SessionInfo,
    StoreMood,
    UpdateParticipant,
)
from flows.state import ConversationState
from tests.engine_host import apply

NEW_YORK = "America/New_York"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
VARIABLES = {
    "program": "Integration Companion",
    "clinic_name": "Harbor Clinic",
    "clinic_contact": "555-0100",
    "care_team": "your care team at 555-0100",
}
QUOTING_KEYS = frozenset({"intention.saved", "journal.images.intention"})
"""Texts that echo the participant's words, which may hold any character."""
JOURNAL_PROMPTS = ["images", "insight", "release", "different", "action"]


@pytest.fixture(scope="module")
def engine() -> Engine:
    """One engine over the shipped definitions, with the real safety rules."""
    return Engine(loader.load())


def context(status: str = "active", timezone: str = NEW_YORK, **fields) -> Context:
    """A participant as the host would load them."""
    return Context(status=status, timezone=timezone, variables=VARIABLES, **fields)


def done_session(at: datetime = NOW, **fields) -> SessionInfo:
    """A session marked done at `at`."""
    return SessionInfo(done_at=at, **fields)


def check_texts(result: Result) -> Result:
    """Fail when a text is not plain GSM-7 within two segments (quoting texts excepted)."""
    for event in result.events:
        if isinstance(event, SendText) and event.key not in QUOTING_KEYS:
            assert sms_text.problems(event.text) == [], (event.key, event.text)
            assert len(event.text) <= 306, event.key
    return result


def roundtrip(state: ConversationState | dict) -> ConversationState:
    """The state as it comes back from the database's JSON column (a dict is a stored row)."""
    stored = state.to_dict() if isinstance(state, ConversationState) else state
    return ConversationState.from_dict(json.loads(json.dumps(stored)))


def keys(result: Result) -> list[str]:
    """Message keys of the texts a result sends, in order."""
    return [e.key for e in result.events if isinstance(e, SendText)]


def others(result: Result) -> list:
    """The non-text events of a result, in order."""
    return [e for e in result.events if not isinstance(e, SendText)]


def turn(engine: Engine, ctx: Context, text: str | None = None, *, state: dict | None = None,
         now: datetime = NOW, **kwargs) -> Result:
    """One checked resume() call."""
    return check_texts(engine.resume(roundtrip(state or {}), ctx, now, text=text, **kwargs))


class Chat:
    """A participant in conversation: applies just enough events to the context."""

    def __init__(self, engine: Engine, ctx: Context, state: dict | None = None):
        self.engine, self.ctx, self.state = engine, ctx, roundtrip(state or {})
        self.now = NOW

    def send(self, text: str, *, at: datetime | None = None, **kwargs) -> Result:
        """The participant texts; returns the engine's result (state kept)."""
        self.now = at or self.now
        return self._keep(self.engine.resume(self.state, self.ctx, self.now, text=text, **kwargs))

    def timer(self, expects_reply: str) -> Result:
        """A nudge that expects a reply went out."""
        return self._keep(self.engine.resume(self.state, self.ctx, self.now,
                                             timer=Timer(expects_reply)))

    def _keep(self, result: Result) -> Result:
        check_texts(result)
        self.state = roundtrip(result.state)
        for event in result.events:
            self.ctx = apply(self.ctx, event)
        return result


def enrolled(engine: Engine) -> Chat:
    """A participant who said YES and is at the first setup question."""
    chat = Chat(engine, context(status="invited", name="Sam"))
    chat.state = roundtrip(engine.invite(chat.ctx).state)
    chat.send("YES")
    return chat


def journaling(engine: Engine, **ctx_fields) -> Chat:
    """A participant who just texted DONE."""
    chat = Chat(engine, context(**ctx_fields))
    chat.send("DONE")
    return chat


# ---------------------------------------------------------------- invitation and consent


def test_invite_names_participant_and_asks_for_yes(engine):
    result = check_texts(engine.invite(context(status="invited", name="Sam")))
    assert keys(result) == ["invite"]
    assert "Hi Sam," in result.texts()[0] and "Reply YES" in result.texts()[0]
    assert "STOP" in result.texts()[0] and "Msg & data rates may apply" in result.texts()[0]


def test_yes_records_consent_and_asks_first_setup_question(engine):
    chat = Chat(engine, context(status="invited", name="Sam"))
    chat.state = roundtrip(engine.invite(chat.ctx).state)
    result = chat.send("Yes!")
    assert others(result) == [RecordConsent(engine.defs.wording_version)]
    assert keys(result) == ["consent.confirmed", "consent.notice", "enroll.timezone"]
    assert "Eastern time (New York)" in result.texts()[2]
    assert chat.state == ConversationState(flow="enrollment", step="timezone")


def test_start_also_gives_consent(engine):
    result = turn(engine, context(status="invited"), "START", state={"invited": True})
    assert isinstance(result.events[0], RecordConsent)


@pytest.mark.parametrize(
    "text",
    ["hello", "who is this?", "DONE", "journal", "fri 6pm", "I saw the ocean", "PAUSE",
     "delete", "no", "SKIP", "timezone"],
)
def test_nothing_but_a_reminder_before_yes(engine, text):
    result = turn(engine, context(status="invited"), text, state={"invited": True})
    assert keys(result) == ["invite.reminder"]
    assert others(result) == []
    assert result.state == ConversationState(invited=True)


def test_first_text_from_unknown_number_gets_the_invitation_once(engine):
    chat = Chat(engine, context(status="invited"))
    assert keys(chat.send("hi who is this")) == ["invite"]
    assert keys(chat.send("hello?")) == ["invite.reminder"]


def test_help_before_yes_is_answered(engine):
    result = turn(engine, context(status="invited"), "HELP", state={"invited": True})
    assert keys(result) == ["help"]
    assert "555-0100" in result.texts()[0] and "988" in result.texts()[0]


def test_stop_before_yes_opts_out(engine):
    result = turn(engine, context(status="invited"), "STOP", state={"invited": True})
    assert others(result) == [OptOut("keyword")]
    assert keys(result) == ["stop.confirm"]


# ---------------------------------------------------------------- enrollment answers


def test_time_zone_confirmed_with_yes(engine):
    chat = enrolled(engine)
    result = chat.send("yes")
    assert others(result) == [UpdateParticipant({"timezone": NEW_YORK})]
    assert keys(result) == ["enroll.bedtime"]


@pytest.mark.parametrize(
    "answer, zone",
    [("Pacific", "America/Los_Angeles"), ("central time", "America/Chicago"),
     ("Europe/London", "Europe/London"), ("I'm in Chicago", "America/Chicago")],
)
def test_time_zone_given_by_name(engine, answer, zone):
    chat = enrolled(engine)
    result = chat.send(answer)
    assert others(result) == [UpdateParticipant({"timezone": zone})]
    assert chat.state.step == "bedtime"


@pytest.mark.parametrize("answer", ["blue", "no", "somewhere warm", "Eastern or Pacific"])
def test_unreadable_time_zone_asks_again(engine, answer):
    chat = enrolled(engine)
    result = chat.send(answer)
    assert keys(result) == ["enroll.timezone.retry"] and others(result) == []
    assert chat.state == ConversationState(flow="enrollment", step="timezone")


@pytest.mark.parametrize("answer, bedtime", [("10:30pm", time(22, 30)), ("11", time(23, 0)),
                                             ("midnight", time(0, 0))])
def test_bedtime(engine, answer, bedtime):
    chat = enrolled(engine)
    chat.send("yes")
    result = chat.send(answer)
    assert others(result) == [UpdateParticipant({"bedtime": bedtime})]
    assert keys(result) == ["enroll.therapist"]


def test_unreadable_bedtime_asks_again(engine):
    chat = enrolled(engine)
    chat.send("yes")
    result = chat.send("whenever I'm tired")
    assert keys(result) == ["enroll.bedtime.retry"] and others(result) == []
    assert chat.state.step == "bedtime"


@pytest.mark.parametrize("answer, has_therapist", [("yes", True), ("Yep", True), ("NO", False),
                                                   ("not yet", False)])
def test_therapist_yes_or_no(engine, answer, has_therapist):
    chat = enrolled(engine)
    chat.send("yes")
    chat.send("10pm")
    result = chat.send(answer)
    assert others(result) == [UpdateParticipant({"has_therapist": has_therapist})]
    assert keys(result) == ["enroll.session"]


def test_therapist_unclear_answer_asks_for_yes_or_no(engine):
    chat = enrolled(engine)
    chat.send("yes")
    chat.send("10pm")
    result = chat.send("sort of")
    assert keys(result) == ["answer.yes_no"] and others(result) == []
    assert chat.state.step == "therapist"


def at_session_question(engine, **ctx_fields) -> Chat:
    """An enrolling participant about to say when their next session is."""
    chat = Chat(engine, context(**ctx_fields), {"flow": "enrollment", "step": "session"})
    return chat


def test_session_time_schedules_session_and_pre_session_plan(engine):
    chat = at_session_question(engine)
    result = chat.send("fri 6pm")
    friday_6pm = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)  # 18:00 EST
    assert others(result) == [ScheduleSession(friday_6pm),
                              SchedulePlan("pre_session", friday_6pm)]
    assert keys(result) == ["session.saved", "enroll.done"]  # repeats what it understood
    assert "Fri Nov 27 at 6:00 PM" in result.texts()[0]
    assert chat.state == ConversationState()


def test_session_time_after_clocks_go_back_uses_winter_offset(engine):
    chat = at_session_question(engine)
    thursday_noon_edt = datetime(2026, 10, 29, 16, 0, tzinfo=UTC)
    result = chat.send("mon 6pm", at=thursday_noon_edt)
    monday_6pm_est = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)  # not 22:00: EST by then
    assert ScheduleSession(monday_6pm_est) in result.events
    assert SchedulePlan("pre_session", monday_6pm_est) in result.events


def test_session_time_is_read_in_the_zone_just_given(engine):
    chat = enrolled(engine)
    chat.send("Pacific")
    chat.send("10pm")
    chat.send("no")
    result = chat.send("fri 6pm")
    assert ScheduleSession(datetime(2026, 11, 28, 2, 0, tzinfo=UTC)) in result.events


def test_unreadable_or_past_session_time_asks_again(engine):
    chat = at_session_question(engine)
    for answer in ("soon", "today 9am"):
        result = chat.send(answer)
        assert keys(result) == ["session.retry"] and others(result) == []
        assert chat.state == ConversationState(flow="enrollment", step="session")


def test_skip_session_time_ends_enrollment_without_scheduling(engine):
    chat = at_session_question(engine)
    result = chat.send("skip")
    assert others(result) == []
    assert keys(result) == ["enroll.done"]
    assert chat.state == ConversationState()


def test_skip_a_setup_question_stores_nothing(engine):
    chat = enrolled(engine)
    chat.send("yes")
    result = chat.send("SKIP")
    assert others(result) == [] and keys(result) == ["enroll.therapist"]


def test_whole_enrollment_in_order(engine):
    chat = enrolled(engine)
    asked = [keys(chat.send(answer)) for answer in ("yes", "10:30pm", "yes", "fri 6pm")]
    assert asked == [["enroll.bedtime"], ["enroll.therapist"], ["enroll.session"],
                     ["session.saved", "enroll.done"]]
    assert chat.ctx.bedtime == time(22, 30) and chat.ctx.has_therapist is True


# ---------------------------------------------------------------- changing a setting later


def test_session_keyword_confirms_the_time_in_local_words(engine):
    chat = Chat(engine, context())
    assert keys(chat.send("SESSION")) == ["enroll.session"]
    result = chat.send("tomorrow 10am")
    assert keys(result) == ["session.saved"]
    assert "Tue Nov 24 at 10:00 AM" in result.texts()[0]


def test_session_keyword_then_skip(engine):
    chat = Chat(engine, context())
    chat.send("session")
    assert keys(chat.send("skip")) == ["session.skipped"]


def test_bedtime_and_time_zone_keywords(engine):
    chat = Chat(engine, context())
    chat.send("BEDTIME")
    result = chat.send("11:30pm")
    assert "11:30 PM" in result.texts()[0]
    chat.send("time zone")
    result = chat.send("mountain")
    assert others(result) == [UpdateParticipant({"timezone": "America/Denver"})]
    assert "Mountain time (Denver)" in result.texts()[0]


# ---------------------------------------------------------------- DONE and journaling


def test_done_records_session_schedules_plan_and_asks_first_question(engine):
    result = turn(engine, context(), "Done!")
    assert others(result) == [RecordSessionDone(NOW), SchedulePlan("post_session", NOW)]
    assert keys(result) == ["done.ack", "journal.images"]
    assert result.state == ConversationState(flow="journal", step="images")


def test_first_question_quotes_the_intention(engine):
    ctx = context(open_session=SessionInfo(intention="I\u2019m open to \u201cwhatever\u201d comes"))
    result = turn(engine, ctx, "done")
    assert keys(result) == ["done.ack", "journal.images.intention"]
    assert "\"I'm open to whatever comes\"" in result.texts()[1]
    assert sms_text.is_gsm7(result.texts()[1])


def test_long_intention_is_cut_short(engine):
    ctx = context(open_session=SessionInfo(intention="to let go of " + "the old story " * 10))
    text = turn(engine, ctx, "done").texts()[1]
    quoted = text.split('"')[1]
    assert len(quoted) <= 60 and quoted.endswith("...")


def test_five_answers_are_saved_and_closed(engine):
    chat = journaling(engine)
    answers = ["I saw the ocean and my grandmother", "I am allowed to rest",
               "Let go of rushing, bring more music", "Lighter, less foggy",
               "Call my brother on Sunday"]
    results = [chat.send(a) for a in answers]
    saved = [e for r in results for e in others(r)]
    assert saved == [SaveJournalEntry(p, a) for p, a in zip(JOURNAL_PROMPTS, answers, strict=True)]
    assert [keys(r) for r in results] == [["journal.insight"], ["journal.release"],
                                          ["journal.different"], ["journal.action"],
                                          ["journal.closing"]]
    assert "48 hours" in results[-1].texts()[0]
    assert chat.state == ConversationState()


def test_journal_answer_is_trimmed(engine):
    chat = journaling(engine)
    result = chat.send("  the ocean\n\n and   light  ")
    assert others(result) == [SaveJournalEntry("images", "the ocean and light")]


def test_keyword_inside_an_answer_is_an_answer(engine):
    chat = journaling(engine)
    result = chat.send("I'm done with my old job")
    assert others(result) == [SaveJournalEntry("images", "I'm done with my old job")]


def test_done_mid_journal_within_12_hours_repeats_the_question(engine):
    chat = journaling(engine)
    chat.send("the ocean")
    before = chat.state
    result = chat.send("done", at=NOW + timedelta(hours=2))
    assert others(result) == []
    assert keys(result) == ["journal.repeat", "journal.insight"]
    assert "(2 of 5)" in result.texts()[0]
    assert chat.state == before


def test_done_mid_journal_after_12_hours_starts_a_new_session(engine):
    chat = journaling(engine)
    chat.send("the ocean")
    later = NOW + timedelta(hours=13)
    result = chat.send("DONE", at=later)
    assert others(result) == [RecordSessionDone(later), SchedulePlan("post_session", later)]
    assert chat.state == ConversationState(flow="journal", step="images")


def test_skip_moves_on_without_saving(engine):
    chat = journaling(engine)
    result = chat.send("skip")
    assert others(result) == [] and keys(result) == ["journal.insight"]


def test_skip_outside_a_flow(engine):
    assert keys(turn(engine, context(), "skip")) == ["skip.nothing"]


# ---------------------------------------------------------------- opting out and back in


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"])
@pytest.mark.parametrize("shape", [str.upper, str.lower, str.title, lambda w: w.lower() + "!",
                                   lambda w: w + "."])
def test_stop_family_opts_out_once_from_anywhere(engine, word, shape):
    result = turn(engine, context(last_session=done_session()), shape(word),
                  state={"flow": "journal", "step": "insight"})
    assert others(result) == [OptOut("keyword")]
    assert keys(result) == ["stop.confirm"]
    assert "START" in result.texts()[0]
    assert result.state == ConversationState()


@pytest.mark.parametrize("text", ["please stop texting me", "no more messages", "unsubscribe me",
                                  "Please don't text me anymore"])
def test_plain_request_opts_out(engine, text):
    result = turn(engine, context(), text)
    assert others(result) == [OptOut("request")]
    assert keys(result) == ["stop.confirm"]


@pytest.mark.parametrize("text", ["PARAR", "alto por favor", "Baja", "quiero darme de baja",
                                  "ya no me manden mensajes", "borren mi numero por favor"])
def test_spanish_request_opts_out_at_any_time_with_a_spanish_confirmation(engine, text):
    chat = journaling(engine)
    result = chat.send(text)
    assert others(result) == [OptOut("request")]
    assert keys(result) == ["stop.confirm.es"]
    assert "ALTA" in result.texts()[0] and "START" in result.texts()[0]
    assert chat.state == ConversationState(lang="es")  # the journal is gone; only the language is kept


def test_spanish_help(engine):
    result = turn(engine, context(), "AYUDA")
    assert keys(result) == ["help.es"]
    assert "988" in result.texts()[0] and "STOP" in result.texts()[0]
    assert keys(turn(engine, context(), "HELP")) == ["help", "help.commands"]


def test_uncertain_request_asks_once_and_stop_confirms(engine):
    chat = Chat(engine, context(last_session=done_session()))
    asked = chat.send("not interested anymore")
    assert keys(asked) == ["optout.ask"]
    assert asked.texts() == ["Reply STOP to stop all texts from Integration Companion."]
    assert others(asked) == [AskOptOut(NOW)]
    result = chat.send("STOP", at=NOW + timedelta(hours=3))
    assert others(result) == [OptOut("keyword")]
    assert keys(result) == ["stop.confirm"]


@pytest.mark.parametrize("answer", ["yes", "please stop", "i said im done with this"])
def test_yes_or_another_request_answers_the_question(engine, answer):
    chat = Chat(engine, context(last_session=done_session()))
    chat.send("i'm done with this")
    result = chat.send(answer, at=NOW + timedelta(minutes=5))
    assert OptOut("request") in result.events or OptOut("keyword") in result.events
    assert keys(result) == ["stop.confirm"]


def test_no_keeps_the_texts_and_settles_the_question(engine):
    chat = Chat(engine, context(last_session=done_session()))
    chat.send("not interested")
    result = chat.send("no", at=NOW + timedelta(minutes=5))
    assert others(result) == [AskOptOut(None)]
    assert keys(result) == ["optout.kept"]
    assert chat.ctx.optout_asked_at is None


def test_another_answer_settles_the_question_and_is_handled_as_usual(engine):
    chat = Chat(engine, context(last_session=done_session()))
    chat.send("not interested")
    result = chat.send("sorry, that was for my sister", at=NOW + timedelta(minutes=5))
    assert others(result) == [AskOptOut(None),
                              SaveJournalEntry("note", "sorry, that was for my sister")]
    assert keys(result) == ["note.saved"]


def test_after_24_hours_the_question_lapses(engine):
    chat = Chat(engine, context(last_session=done_session()))
    chat.send("not interested")
    result = chat.send("yes", at=NOW + timedelta(hours=25))
    assert not any(isinstance(e, OptOut) for e in result.events)
    assert others(result)[0] == AskOptOut(None)


def test_spanish_uncertain_request_is_asked_and_confirmed_in_spanish(engine):
    chat = Chat(engine, context())
    assert keys(chat.send("no me interesa")) == ["optout.ask.es"]
    assert keys(chat.send("STOP", at=NOW + timedelta(minutes=1))) == ["stop.confirm.es"]


@pytest.mark.parametrize("text, setting", [
    ("stop only the walk reminders, keep the mood ones", "setting.kind"),
    ("could you send the check ins in the evening instead of morning", "setting.time"),
    ("can we pause for a week while i'm on vacation", "setting.pause"),
    ("solo quiten los recordatorios de caminar", "setting.kind.es"),
])
def test_one_kind_or_a_time_offers_the_setting_not_an_opt_out(engine, text, setting):
    result = turn(engine, context(last_session=done_session()), text)
    assert keys(result) == [setting]
    assert others(result) == []
    assert "STOP" in result.texts()[0]


def test_a_setting_request_inside_a_journal_answer_is_still_saved(engine):
    chat = journaling(engine)
    result = chat.send("I felt lighter. please don't text me before 9am though")
    assert keys(result) == ["setting.time", "journal.insight"]
    assert others(result) == [SaveJournalEntry(
        "images", "I felt lighter. please don't text me before 9am though")]


def test_capital_stop_before_a_journal_sentence_asks_instead_of_opting_out(engine):
    chat = journaling(engine)
    result = chat.send("STOP being so hard on myself, that is what I heard")
    assert keys(result) == ["optout.ask"]
    assert not any(isinstance(e, OptOut) for e in result.events)
    assert keys(chat.send("no", at=NOW + timedelta(minutes=2))) == ["optout.kept",
                                                                    "journal.images"]


def test_stop_inside_a_journal_answer_is_an_answer(engine):
    chat = journaling(engine)
    chat.send("the ocean")
    result = chat.send("I want to stop drinking")
    assert others(result) == [SaveJournalEntry("insight", "I want to stop drinking")]
    assert chat.ctx.status == "active"


@pytest.mark.parametrize(
    "text", ["hi", "HELP", "DONE", "journal", "PAUSE", "delete", "I saw the ocean", "STOP",
             "4", "no"])
def test_opted_out_participant_hears_nothing(engine, text):
    result = turn(engine, context(status="opted_out"), text)
    assert result.events == ()


def test_opted_out_media_and_empty_messages_get_nothing(engine):
    assert turn(engine, context(status="opted_out"), "", media=1).events == ()
    assert turn(engine, context(status="opted_out"), "   ").events == ()


@pytest.mark.parametrize("text", ["START", "unstop", "YES", "start."])
def test_start_unstop_or_yes_opts_back_in(engine, text):
    result = turn(engine, context(status="opted_out"), text)
    assert others(result) == [OptIn()]
    assert keys(result) == ["start.confirm"]


def test_twilio_stop_verdict_forces_opt_out(engine):
    result = turn(engine, context(), "hello there", opt_out_type="STOP")
    assert any(isinstance(e, OptOut) for e in result.events)
    assert keys(result) == ["stop.confirm"]


def test_twilio_start_verdict_opts_back_in(engine):
    result = turn(engine, context(status="opted_out"), "sure thing", opt_out_type="START")
    assert others(result) == [OptIn()]


def test_stop_then_silence_then_start(engine):
    chat = Chat(engine, context())
    chat.send("STOP")
    assert chat.send("hello?").events == ()
    assert chat.send("DONE").events == ()
    assert keys(chat.send("START")) == ["start.confirm"]
    assert keys(chat.send("DONE")) == ["done.ack", "journal.images"]


# ---------------------------------------------------------------- other keywords


def test_pause_holds_reminders_three_days_by_default(engine):
    result = turn(engine, context(), "PAUSE")
    assert others(result) == [Pause(NOW + timedelta(days=3))]
    assert "Thu Nov 26 at 10:00 AM" in result.texts()[0]


def test_pause_for_a_number_of_days(engine):
    result = turn(engine, context(), "pause 5")
    assert others(result) == [Pause(NOW + timedelta(days=5))]
    assert "Sat Nov 28" in result.texts()[0]


def test_resume_turns_reminders_back_on(engine):
    result = turn(engine, context(), "RESUME")
    assert others(result) == [Pause(None)] and keys(result) == ["resume.confirm"]


def test_pause_mid_journal_keeps_the_journal_open(engine):
    result = turn(engine, context(), "pause", state={"flow": "journal", "step": "release"})
    assert result.state == ConversationState(flow="journal", step="release")


def test_journal_keyword_asks_host_to_send_the_journal(engine):
    result = turn(engine, context(last_session=done_session()), "JOURNAL")
    assert result.events == (SendJournal(),)


def test_delete_twice_erases(engine):
    chat = Chat(engine, context())
    first = chat.send("DELETE")
    assert keys(first) == ["delete.ask"] and others(first) == []
    second = chat.send("delete")
    assert others(second) == [DeleteData()] and keys(second) == ["delete.done"]
    assert chat.state == ConversationState()


@pytest.mark.parametrize("text", ["no", "wait", "keep them", "DONE"])
def test_delete_then_anything_else_keeps_everything(engine, text):
    chat = Chat(engine, context())
    chat.send("delete")
    result = chat.send(text)
    assert others(result) == [] and keys(result) == ["delete.kept"]
    assert chat.state.delete_asked is None


def test_finished_ends_the_course(engine):
    result = turn(engine, context(), "FINISHED")
    assert others(result) == [EndCourse(NOW)] and keys(result) == ["finished.confirm"]


def test_help_mid_flow_keeps_the_flow(engine):
    result = turn(engine, context(), "help", state={"flow": "journal", "step": "release"})
    assert keys(result) == ["help", "help.commands", "journal.release"]  # then the question
    assert result.state == ConversationState(flow="journal", step="release")


def test_intention_keyword_asks_and_saves(engine):
    chat = Chat(engine, context())
    assert keys(chat.send("INTENTION")) == ["intention.ask"]
    result = chat.send("to be kind to myself")
    assert others(result) == [SaveIntention("to be kind to myself")]
    assert '"to be kind to myself"' in result.texts()[0]
    assert chat.state == ConversationState()


# ---------------------------------------------------------------- replies to nudges


def test_mood_reply_is_stored(engine):
    chat = Chat(engine, context())
    assert chat.timer("mood").events == ()
    result = chat.send("4")
    assert others(result) == [StoreMood(4)] and keys(result) == ["mood.saved"]
    assert chat.state == ConversationState()


def test_low_mood_points_to_care_team_and_988(engine):
    chat = Chat(engine, context())
    chat.timer("mood")
    result = chat.send("1")
    assert others(result) == [StoreMood(1)] and keys(result) == ["mood.low"]
    assert "555-0100" in result.texts()[0] and "988" in result.texts()[0]


def test_unreadable_mood_reply_is_kept_as_a_note(engine):
    chat = Chat(engine, context(last_session=done_session()))
    chat.timer("mood")
    result = chat.send("feeling meh")
    assert others(result) == [SaveJournalEntry("note", "feeling meh")]
    assert keys(result) == ["mood.again"], "an unreadable reply should be asked once more"
    result = chat.send("ok maybe a 2")
    assert others(result) == [StoreMood(2)] and keys(result) == ["mood.low"]
    assert chat.state == ConversationState()


def test_a_question_is_asked_again_only_once(engine):
    chat = Chat(engine, context(last_session=done_session()))
    chat.timer("therapy_booked")
    assert keys(chat.send("I will call them")) == ["therapy_booked.again"]
    result = chat.send("when I can")
    assert others(result) == [SaveJournalEntry("note", "when I can")]
    assert keys(result) == ["note.saved"] and chat.state == ConversationState()


def test_therapy_booked_no(engine):
    chat = Chat(engine, context())
    chat.timer("therapy_booked")
    result = chat.send("NO")
    assert others(result) == [RecordTherapyBooked(False)]
    assert keys(result) == ["therapy.not_booked"]


def test_therapy_booked_yes(engine):
    chat = Chat(engine, context())
    chat.timer("therapy_booked")
    assert others(chat.send("yes")) == [RecordTherapyBooked(True)]


def test_intention_prompt_reply_is_saved(engine):
    chat = Chat(engine, context())
    assert chat.timer("intention").events == ()
    result = chat.send("I'm open to whatever needs to be seen")
    assert others(result) == [SaveIntention("I'm open to whatever needs to be seen")]
    assert keys(result) == ["intention.saved"]


def test_mood_timer_mid_journal_leaves_the_journal_in_charge(engine):
    chat = journaling(engine)
    chat.timer("mood")
    result = chat.send("4")
    assert others(result) == [SaveJournalEntry("images", "4")]


def test_start_begins_a_flow_for_active_participants_only(engine):
    started = check_texts(engine.start("intention", None, context(), NOW))
    assert keys(started) == ["intention.ask"]
    assert started.state == ConversationState(flow="intention", step="ask")
    for status in ("invited", "opted_out", "deleted"):
        assert engine.start("intention", None, context(status=status), NOW).events == ()


# ---------------------------------------------------------------- free text, media, empty


def test_free_text_after_a_session_is_a_note(engine):
    result = turn(engine, context(last_session=done_session()), "  felt calm   today ")
    assert others(result) == [SaveJournalEntry("note", "felt calm today")]
    assert keys(result) == ["note.saved"]


def test_free_text_before_any_session_gets_the_fallback(engine):
    result = turn(engine, context(), "hello?")
    assert others(result) == [] and keys(result) == ["fallback"]


def test_media_only_message(engine):
    result = turn(engine, context(), "", media=1)
    assert keys(result) == ["media.only"] and others(result) == []


def test_empty_message(engine):
    result = turn(engine, context(), "  \n ")
    assert keys(result) == ["empty.text"] and others(result) == []


def test_media_mid_journal_does_not_move_the_journal(engine):
    state = {"flow": "journal", "step": "insight"}
    result = turn(engine, context(), None, media=2, state=state)
    assert keys(result) == ["media.only"] and result.state == ConversationState.from_dict(state)


# ---------------------------------------------------------------- safety comes first


def test_crisis_mid_journal_alerts_and_suspends_the_flow(engine):
    chat = journaling(engine)
    chat.send("the ocean")
    result = chat.send("I want to die")
    assert keys(result) == ["safety.crisis"]
    assert others(result) == [RaiseAlert("crisis", "suicide")]
    assert "988" in result.texts()[0]
    assert chat.state.flow is None and chat.state.suspended.step == "insight"
    # The next words are kept as a note, never as the answer, with no cheerful question.
    result = chat.send("I'm safe now, my partner is here")
    assert keys(result) == ["safety.suspended"]
    assert others(result) == [SaveJournalEntry("note", "I'm safe now, my partner is here")]
    assert keys(chat.send("JOURNAL"))[-1] == "journal.stopped"
    assert keys(chat.send("CONTINUE")) == ["journal.insight"]


def test_medical_emergency_gets_the_911_template(engine):
    result = turn(engine, context(), "chest pain and I can't breathe")
    assert keys(result) == ["safety.emergency"]
    assert others(result) == [RaiseAlert("crisis", "medical_emergency")]
    assert "911" in result.texts()[0]


def test_stop_request_with_a_crisis_gets_both_crisis_reply_and_opt_out(engine):
    result = turn(engine, context(), "I want to die. stop texting me")
    assert keys(result) == ["safety.crisis", "stop.confirm"]
    assert others(result) == [RaiseAlert("crisis", "suicide"), OptOut("request")]


def test_capital_stop_before_a_crisis_sentence_gets_the_crisis_reply_then_the_question(engine):
    # Safety first; then, unsure whether STOP was aimed at us, the one fixed question.
    result = turn(engine, context(), "STOP I want to die")
    assert keys(result) == ["safety.crisis", "optout.ask"]
    assert others(result) == [RaiseAlert("crisis", "suicide"), AskOptOut(NOW)]


def test_urgent_side_effect_alerts_and_suspends_the_flow(engine):
    chat = journaling(engine)
    result = chat.send("there is blood in my pee")
    assert keys(result) == ["safety.urgent"]
    assert others(result) == [RaiseAlert("urgent", "bladder")]
    assert chat.state.suspended.step == "images"


def test_integration_language_is_not_a_crisis(engine):
    chat = journaling(engine)
    result = chat.send("ego death, it felt like I died and was reborn")
    assert not any(isinstance(e, RaiseAlert) for e in result.events)
    assert keys(result) == ["journal.insight"]


def test_mention_of_someone_elses_past_gets_a_gentle_note_and_keeps_the_answer(engine):
    chat = journaling(engine)
    result = chat.send("my uncle died by suicide years ago and he was there")
    assert keys(result) == ["safety.gentle", "journal.insight"]
    assert others(result) == [
        SaveJournalEntry("images", "my uncle died by suicide years ago and he was there")]


def test_no_and_ok_answer_a_journal_question(engine):
    state = {"flow": "journal", "step": "insight"}
    for answer in ("No", "ok", "not yet", "therapy", "notes"):
        result = turn(engine, context(), answer, state=state)
        assert others(result) == [SaveJournalEntry("insight", answer)], answer
        assert result.state.step == "release"


def test_spelled_out_keywords_still_interrupt_a_journal_question(engine):
    state = {"flow": "journal", "step": "insight"}
    assert keys(turn(engine, context(), "SKIP", state=state)) == ["journal.release"]
    assert keys(turn(engine, context(), "next", state=state)) == ["journal.release"]
    assert keys(turn(engine, context(), "Help!", state=state))[0] == "help"


def test_delete_confirmation_expires(engine):
    asked = {"delete_asked": (NOW - timedelta(minutes=11)).isoformat()}
    result = turn(engine, context(), "DELETE", state=asked)
    assert DeleteData() not in result.events
    assert keys(result) == ["delete.ask"]


def test_overdose_gets_the_emergency_template(engine):
    result = turn(engine, context(), "I took too many pills")
    from flows import safety

    assert keys(result)[0] == safety.reply_key(safety.assess("I took too many pills"))


def test_carrier_opt_out_reason(engine):
    result = turn(engine, context(), "arret", opt_out_type="STOP")
    assert OptOut("carrier") in result.events


def test_empty_text_before_yes_gets_the_invitation(engine):
    result = turn(engine, context(status="invited"), "", state={"invited": True})
    assert keys(result) == ["invite.reminder"]


def test_continue_repeats_the_open_question_or_says_there_is_nothing(engine):
    chat = journaling(engine)
    assert keys(chat.send("CONTINUE")) == ["journal.images"]
    assert keys(turn(engine, context(), "continue")) == ["continue.nothing"]


def test_check_text_asks_once_and_no_resumes_the_question(engine):
    chat = journaling(engine)
    result = chat.send("sometimes i wonder if everyone would be better off if i just disappeared")
    assert keys(result) == ["safety.check"]
    assert chat.state.flow == "journal" and chat.state.check
    assert keys(chat.send("NO")) == ["safety.check_no", "journal.images"]
    assert chat.state.check is None


def test_uncertain_text_with_stop_gets_988_and_a_care_team_alert_not_a_question(engine):
    result = turn(engine, context(), "please stop texting me. sometimes i wonder if everyone "
                                     "would be better off if i just disappeared")
    assert keys(result) == ["safety.gentle", "stop.confirm"]
    assert others(result) == [RaiseAlert("check", "unanswered_check"), OptOut("request")]


def test_an_unsure_stop_with_an_uncertain_text_gets_the_safety_question_first(engine):
    # Whether STOP was aimed at us is unclear (issue 15 would ask); safety asks first.
    result = turn(engine, context(),
                  "STOP. sometimes i wonder if everyone would be better off if i just disappeared")
    assert keys(result) == ["safety.check"]
