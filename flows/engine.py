"""The flow engine: one participant turn in, new state and events out.

Two entry points, both pure: `resume()` for an inbound text or a timer, and
`start()` to begin a flow (the clinic's invitation, a scheduled intention
prompt). The engine never sends, stores or schedules anything: it returns
events and the host (bot/runner.py) carries them out.

Order of a text turn, each stage able to end it:
  1. empty or media-only messages get a plain answer;
  2. safety: every text is assessed first (STOP and DONE included);
     a crisis or urgent reply and care-team alert go out and the flow in
     progress is suspended (flows/safety_talk.py); a "check" text gets the
     YES/NO safety question, and a pending question takes the next reply;
  3. opt-out (flows/optout.py: opt out now, or ask once "Reply STOP to stop all
     texts" and wait for the answer), then the opted-out gate;
  4. the invitation gate (double opt-in: nothing but the invitation before YES);
  5. a pending DELETE confirmation;
  6. a request to change a time or stop one kind of text gets the setting offered;
     global keywords, unless the current step takes that word as its answer;
  7. the answer to the current step, or to the nudge that asked for a reply;
  8. free text outside a flow is kept as a journal note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from flows import answers, keywords, optout, safety_talk
from flows.loader import Definitions
from flows.model import (
    AskOptOut,
    Context,
    DeleteData,
    EndCourse,
    Event,
    OptIn,
    OptOut,
    Pause,
    RecordConsent,
    RecordSessionDone,
    RecordTherapyBooked,
    Result,
    SaveIntention,
    SaveJournalEntry,
    SchedulePlan,
    ScheduleSession,
    SendJournal,
    SendSafetyPlan,
    SendText,
    Step,
    StoreMood,
    UpdateParticipant,
)
from flows.quoting import fits, quote
from flows.state import ConversationState, Resume, as_state
from flows.timezones import describe_zone

JOURNAL_REPEAT_WINDOW = timedelta(hours=12)
"""DONE within this long of the last DONE, mid-journal, repeats the question instead
of starting a second session (people type "done" meaning "done with this")."""

DONE_EARLY = timedelta(hours=6)
"""DONE marks the open session only when it was not booked for later than this from now:
a session booked for tomorrow is still ahead, and DONE is about another one."""

DELETE_CONFIRM_WINDOW = timedelta(minutes=10)
"""How long a DELETE waits for the second DELETE that confirms it."""

FLOOD_TEXTS_PER_MINUTE = 30
"""More inbound texts than this in a minute get one notice, then no replies for a while."""

FLOOD_QUIET = timedelta(minutes=10)
"""How long the bot stays quiet after a flood notice (texts are still stored)."""

REPLY_TIMERS = frozenset({"mood", "therapy_booked", "keep_going"})
"""Nudges whose reply the engine waits for outside any flow."""

POST_SESSION_PLAN = "post_session"
PRE_SESSION_PLAN = "pre_session"

_SILENT = frozenset({"opted_out", "deleted"})
UNENROLLED = "unenrolled"
"""A number the clinic never enrolled: a neutral answer, and no conversation state."""
DETOURS = frozenset({"timezone", "bedtime", "therapist", "session", "mindfulness", "intention"})
"""Short flows that may interrupt a longer one; the longer one resumes when they end."""


@dataclass(frozen=True)
class Timer:
    """A timer input: a nudge that expects a reply was just sent."""

    expects_reply: str


class Engine:
    """Runs flows from the loaded definitions; holds no per-participant state."""

    def __init__(self, definitions: Definitions, assess: Callable[[str], Any] | None = None,
                 *, learned_safety: bool | None = None):
        self.defs = definitions
        if assess is None:
            from flows import safety  # stdlib-only module; imported here to keep loading cheap

            reply_key = safety.reply_key
            if learned_safety is None:
                assess = safety.assess
            else:  # the host's setting: the learned stage may raise none to check, or not run
                assess = partial(safety.assess, learned=learned_safety)
        else:
            reply_key = _default_reply_key
        self.assess = assess
        self.reply_key = reply_key

    # ------------------------------------------------------------ entry points

    def invite(self, ctx: Context) -> Result:
        """The enrollment invitation: the only text sent before a participant says YES."""
        turn = _Turn(self.defs, ctx, None)
        turn.say("invite", name=f" {ctx.name}" if ctx.name else "")
        turn.set(invited=True)
        return turn.result()

    def start(self, flow_id: str, state: ConversationState | dict | None, ctx: Context,
              now: datetime) -> Result:
        """Begin flow_id from its first step (replacing any flow in progress)."""
        turn = _Turn(self.defs, ctx, state, now)
        if ctx.status in _SILENT or ctx.status in ("invited", UNENROLLED):
            return turn.result()
        self._begin(turn, flow_id)
        return turn.result()

    def resume(
        self,
        state: ConversationState | dict | None,
        ctx: Context,
        now: datetime,
        *,
        text: str | None = None,
        media: int = 0,
        timer: Timer | None = None,
        opt_out_type: str | None = None,
        parsed: dict[str, Any] | None = None,
    ) -> Result:
        """Advance the conversation with an inbound text (or a timer) at time now.

        opt_out_type is Twilio's Advanced Opt-Out verdict (STOP, START, HELP) when
        it sent one; it wins over our own reading of the words. parsed holds values the
        host already resolved from the text (e.g. "session_time" read by dateparser).
        """
        turn = _Turn(self.defs, ctx, state, now)
        turn.parsed = dict(parsed or {})
        if timer is not None:
            self._on_timer(turn, timer)
        else:
            self._on_text(turn, text or "", media, now, (opt_out_type or "").upper())
        return turn.result()

    # ------------------------------------------------------------ text turns

    def _on_text(self, turn: _Turn, raw: str, media: int, now: datetime, carrier: str) -> None:
        ctx = turn.ctx
        if not raw.strip():
            if ctx.status == "invited":
                self._invited(turn, None, now)
            elif ctx.status not in _SILENT:
                turn.say("media.only" if media else "empty.text")
            return
        assessment = self.assess(raw)
        if assessment.alert:
            turn.talk(safety_talk.alert_reply, self.reply_key(assessment) or "safety.crisis",
                      assessment.level, assessment.category, now)
        elif getattr(assessment, "gentle", False) and ctx.status not in _SILENT:
            turn.say("safety.gentle")

        word = _CARRIER_WORDS.get(carrier) or keywords.keyword(raw)
        verdict = optout.classify(raw)
        if assessment.level == safety_talk.CHECK and verdict.outcome == optout.CONFIRM:
            # Safety first: the safety question, not "Reply STOP to stop all texts?".
            verdict = optout.NOT_A_REQUEST
        if (assessment.level == safety_talk.CHECK and ctx.status not in _SILENT
                and (carrier == "STOP" or verdict.outcome == optout.IMMEDIATE)):
            turn.talk(safety_talk.check_with_stop)  # no question after STOP: a person asks
        if self._opt_out(turn, raw, word, verdict, carrier, now):
            return
        if ctx.status == UNENROLLED:
            # Not enrolled by the clinic: say what this is and how to join, keep nothing.
            if assessment.level == safety_talk.CHECK:
                turn.say("safety.gentle")  # no question to a stranger, but 988 at once
            turn.say("help" if word == keywords.HELP else "stranger")
            turn.state = ConversationState()
            return
        if ctx.status in _SILENT:
            if word in (keywords.OPT_IN, keywords.YES):
                turn.emit(OptIn())
                # Answered in Spanish when they come back in Spanish ("ALTA") or left in it.
                left_in = turn.state.lang
                turn.set(lang=None)
                lang = "es" if keywords.is_spanish_opt_in(raw) or left_in == "es" else "en"
                if ctx.status == "deleted":
                    self._rejoin(turn)
                else:
                    turn.say(_in_lang("start.confirm", lang))
            elif assessment.level == safety_talk.CHECK:
                turn.say("safety.gentle")  # no question to someone we may not text: 988 at once
            return
        if assessment.alert:
            return  # the flow is suspended: these words are not an answer to anything
        # Neither a check question nor its answer is ever silenced by the flooding guard.
        if assessment.level == safety_talk.CHECK:
            turn.talk(safety_talk.ask_check, now)
            return
        if turn.talk(safety_talk.pending_check, now) is not None:
            if turn.talk(safety_talk.answer_check, raw, now):
                step = turn.current_step()
                if step is not None:
                    self._ask(turn, step)
            return
        if self._flooding(turn, now):
            return
        if ctx.status == "invited":
            self._invited(turn, word, now)
            return
        asked = turn.state.delete_asked
        turn.set(delete_asked=None)
        if asked is not None and now - asked <= DELETE_CONFIRM_WINDOW:
            if word == keywords.DELETE:
                turn.emit(DeleteData())
                turn.say("delete.done")
                turn.state = ConversationState()
            else:
                turn.say("delete.kept")
            return
        step = turn.current_step()
        if verdict.outcome == optout.SETTING and word is None:
            # "Stop only the walk texts", "text me later": offer the setting that does it.
            turn.say(_in_lang(f"setting.{verdict.setting}", verdict.lang))
            if step is not None and step.expect in FREE_TEXT_ANSWERS:
                self._answer(turn, step, raw, now)  # their words still answer the question
            elif step is not None:
                self._ask(turn, step)
            return
        if word and not _step_takes(step, word, raw) and not (
            word in (keywords.YES, keywords.NO) and turn.state.awaiting
        ):
            self._command(turn, word, raw, now)
        elif step is not None:
            self._answer(turn, step, raw, now)
        elif turn.state.awaiting:
            self._awaited_reply(turn, raw, now)
        else:
            self._free_text(turn, raw)

    def _opt_out(self, turn: _Turn, raw: str, word: str | None, verdict: optout.Verdict,
                 carrier: str, now: datetime) -> bool:
        """Opt out, ask once, or settle an open question; True when the turn is over.

        A clear request (or Twilio's STOP) opts out at once. An uncertain one gets the one
        fixed question, and scheduled texts wait until it is answered or 24 hours pass;
        inside that time STOP, YES or another stop request opts out, anything else settles
        the question and is handled as usual.
        """
        ctx = turn.ctx
        asked_at = ctx.optout_asked_at
        open_question = asked_at is not None and now - asked_at < optout.QUESTION_WINDOW
        live = ctx.status not in _SILENT
        confirmed = open_question and live and (
            verdict.is_request or (word == keywords.YES and ctx.status != "invited"))
        if carrier == "STOP" or verdict.outcome == optout.IMMEDIATE or confirmed:
            if live:
                reason = "carrier" if carrier == "STOP" else (
                    "keyword" if word == keywords.OPT_OUT else "request")
                lang = (turn.state.optout_lang or "en") if confirmed else verdict.lang
                turn.emit(OptOut(reason))
                turn.say(_in_lang("stop.confirm", lang))
                # Remembered so that START after a Spanish opt-out is answered in Spanish.
                turn.state = ConversationState(lang="es" if lang == "es" else None)
            else:
                turn.state = ConversationState()
            return True
        if asked_at is not None:
            turn.emit(AskOptOut(None))  # answered (or too late): the question is settled
            lang = turn.state.optout_lang or "en"
            turn.set(optout_lang=None)
            if open_question and live and (word == keywords.NO or optout.is_keep_answer(raw)):
                turn.say(_in_lang("optout.kept", lang))
                step = turn.current_step()
                if step is not None:
                    self._ask(turn, step)  # the words that were asked about were not kept
                return True
        if (verdict.outcome == optout.CONFIRM and live and not word
                and ctx.status not in ("invited", UNENROLLED)):
            # (Before YES nothing is sent anyway, and the invitation reminder names STOP.)
            turn.emit(AskOptOut(now))
            turn.set(optout_lang=verdict.lang)
            turn.say(_in_lang("optout.ask", verdict.lang))
            return True
        return False

    def _rejoin(self, turn: _Turn) -> None:
        """START after DELETE: a fresh start, with fresh consent and set-up questions."""
        turn.emit(RecordConsent(self.defs.wording_version))
        turn.say("consent.confirmed")
        turn.say("consent.notice")
        turn.state = ConversationState()
        self._begin(turn, "enrollment")

    def _flooding(self, turn: _Turn, now: datetime) -> bool:
        """A number sending too fast gets one notice, then quiet (nothing is lost)."""
        quiet_until = turn.state.quiet_until
        if quiet_until and quiet_until > now:
            return True
        turn.set(quiet_until=None)
        if turn.ctx.recent_texts > FLOOD_TEXTS_PER_MINUTE:
            turn.set(quiet_until=now + FLOOD_QUIET)
            turn.say("flood.notice")
            return True
        return False

    def _invited(self, turn: _Turn, word: str | None, now: datetime) -> None:
        """Before consent only YES, HELP and the invitation itself are said."""
        if word == keywords.YES or word == keywords.OPT_IN:
            turn.emit(RecordConsent(self.defs.wording_version))
            turn.say("consent.confirmed")
            turn.say("consent.notice")
            turn.state = ConversationState()
            self._begin(turn, "enrollment")
        elif word == keywords.HELP:
            turn.say("help")
        elif not turn.state.invited:
            turn.say("invite", name="")
            turn.set(invited=True)
        else:
            turn.say("invite.reminder")

    def _command(self, turn: _Turn, word: str, raw: str, now: datetime) -> None:
        """Carry out a global keyword."""
        ctx = turn.ctx
        if word == keywords.HELP:
            if keywords.is_spanish_help(raw):
                turn.say("help.es")
            else:
                turn.say("help")
                turn.say("help.commands")
            step = turn.current_step()
            if step is not None:
                self._ask(turn, step)
        elif word == keywords.DONE:
            last = ctx.last_session
            if last is not None and last.done_at is not None and (
                    now - last.done_at < JOURNAL_REPEAT_WINDOW):
                turn.talk(safety_talk.unsuspend, "journal")  # a journal set aside after a crisis
            resume = turn.state.resume
            journaling = turn.state.flow == "journal" or (
                resume is not None and resume.flow == "journal")
            if (
                journaling
                and last is not None
                and last.done_at is not None
                and now - last.done_at < JOURNAL_REPEAT_WINDOW
            ):
                if turn.state.flow != "journal":  # back from a detour to the journal
                    turn.set(flow=resume.flow, step=resume.step, resume=None)
                step = turn.current_step()
                turn.say("journal.repeat", step=str(turn.flow().position(step.id)),
                         steps=str(len(turn.flow().steps)))
                self._ask(turn, step)
                return
            turn.emit(RecordSessionDone(now))
            turn.emit(SchedulePlan(POST_SESSION_PLAN, now))
            turn.say("done.ack")
            turn.set(resume=None)
            turn.fresh_done = True
            self._begin(turn, "journal")
        elif word == keywords.JOURNAL:
            turn.emit(SendJournal(keywords.journal_page(raw)))
            stopped = turn.talk(safety_talk.suspended_position)
            if stopped is not None:
                turn.say("journal.stopped", step=str(stopped[0]), steps=str(stopped[1]))
        elif word == keywords.CONTINUE:
            turn.talk(safety_talk.unsuspend)
            step = turn.current_step()
            if step is not None:
                self._ask(turn, step)  # the suspended question, or the one already open
            else:
                turn.say("continue.nothing")
        elif word == keywords.PLAN:
            turn.emit(SendSafetyPlan())
        elif word == keywords.SKIP:
            step = turn.current_step()
            if step is None:
                turn.say("skip.nothing")
            else:
                self._advance(turn, step, {})
        elif word == keywords.PAUSE:
            until = now + timedelta(days=keywords.pause_days(raw))
            turn.emit(Pause(until))
            turn.say("pause.confirm", until=format_local(until, ctx.timezone))
        elif word == keywords.RESUME:
            turn.emit(Pause(None))
            turn.say("resume.confirm")
        elif word in _SETTING_FLOWS:
            self._begin(turn, _SETTING_FLOWS[word])
        elif word == keywords.INTENTION:
            self._begin(turn, "intention")
        elif word == keywords.FINISHED:
            turn.emit(EndCourse(now))
            turn.say("finished.confirm")
        elif word == keywords.DELETE:
            turn.set(delete_asked=now)
            turn.say("delete.ask")
        elif word == keywords.OPT_IN:
            turn.say(_in_lang("start.confirm", "es" if keywords.is_spanish_opt_in(raw) else "en"))
        else:  # YES/NO with nothing asked: treat as any other free text
            self._free_text(turn, raw)

    # ------------------------------------------------------------ flows

    def _begin(self, turn: _Turn, flow_id: str) -> None:
        """Enter flow_id at its first step and ask it."""
        flow = self.defs.flows[flow_id]
        _stop_awaiting(turn)
        if flow_id not in DETOURS:
            turn.set(suspended=None)  # a new flow replaces one set aside after a crisis
        current = turn.state.flow
        if flow_id in DETOURS and current and current not in DETOURS and current != flow_id:
            # A keyword in the middle of journaling (or set-up): come back afterwards.
            turn.set(resume=Resume(current, turn.state.step))
        elif flow_id not in DETOURS:
            turn.set(resume=None)
        turn.set(flow=flow_id, step=flow.start)
        self._ask(turn, flow.step(flow.start))

    def _ask(self, turn: _Turn, step: Step) -> None:
        """Send a step's question (the intention variant when there is one)."""
        intention = _intention(turn)
        if step.say_with_intention and intention:
            turn.say(step.say_with_intention, fallback=step.say, intention=quote(intention))
        else:
            turn.say(step.say, timezone=describe_zone(turn.ctx.timezone))

    def _answer(self, turn: _Turn, step: Step, raw: str, now: datetime) -> None:
        """Parse and store the answer to step, then move on (or ask again)."""
        value = parse_answer(step, raw, turn.ctx, now, turn.parsed)
        if (step.expect == "timezone" and value not in (None, turn.ctx.timezone)
                and answers.mentions_later(raw)):
            # "I'm traveling to Denver next week": not yet. Keep the zone until they're there.
            turn.say("timezone.later", timezone=describe_zone(turn.ctx.timezone))
            self._advance(turn, step, {"timezone": describe_zone(turn.ctx.timezone)},
                          quiet=True)
            return
        if value is None:
            turn.say(step.retry or step.say, timezone=describe_zone(turn.ctx.timezone))
            return
        shown = self._save(turn, step, value)
        self._advance(turn, step, shown)

    def _save(self, turn: _Turn, step: Step, value: Any) -> dict[str, str]:
        """Emit the event that stores value; return words to show in the reply."""
        target, tz = step.save or "", turn.ctx.timezone
        if target == "participant:timezone":
            turn.emit(UpdateParticipant({"timezone": value}))
            return {"timezone": describe_zone(value)}
        if target == "participant:bedtime":
            turn.emit(UpdateParticipant({"bedtime": value}))
            return {"bedtime": format_clock(value)}
        if target == "participant:mindfulness_time":
            turn.emit(UpdateParticipant({"mindfulness_time": value}))
            return {"clock": format_clock(value)}
        if target == "participant:has_therapist":
            turn.emit(UpdateParticipant({"has_therapist": value}))
            return {}
        if target == "participant:share_journal":
            turn.emit(UpdateParticipant({"share_journal": value}))
            return {}
        if target == "session:scheduled_at":
            turn.emit(ScheduleSession(value))
            turn.emit(SchedulePlan(PRE_SESSION_PLAN, value))
            return {"when": format_local(value, tz)}
        if target == "intention":
            turn.emit(SaveIntention(value))
            return {"intention": quote(value)}
        if target.startswith("journal:"):
            turn.emit(SaveJournalEntry(target.split(":", 1)[1], value))
        return {}

    def _advance(self, turn: _Turn, step: Step, shown: dict[str, str],
                 quiet: bool = False) -> None:
        """Go to the next step, or end the flow with its closing words (then resume the
        flow a detour interrupted). quiet: the closing words were already said."""
        flow = turn.flow()
        if step.next:
            turn.set(step=step.next)
            self._ask(turn, flow.step(step.next))
            return
        turn.set(flow=None, step=None)
        if flow.done and not quiet:
            if flow.id == "session" and "when" not in shown:
                turn.say("session.skipped")
            else:
                if flow.id != "session" and "when" in shown:
                    turn.say("session.saved", **shown)  # repeat what we understood
                turn.say(flow.done, **shown)
        resume = turn.state.resume
        turn.set(resume=None)
        if resume is not None:
            turn.set(flow=resume.flow, step=resume.step)
            step = turn.current_step()
            if step is not None:
                turn.say("detour.back")
                self._ask(turn, step)
            else:  # the interrupted flow's words were removed meanwhile
                turn.set(flow=None, step=None)

    def safety_check_timed_out(self, state: ConversationState | dict | None, ctx: Context,
                               now: datetime) -> Result:
        """The host's timer: the check question went unanswered (a no-op once answered)."""
        turn = _Turn(self.defs, ctx, state)
        turn.talk(safety_talk.check_timed_out, now)
        return turn.result()

    # ------------------------------------------------------------ replies to nudges

    def _on_timer(self, turn: _Turn, timer: Timer) -> None:
        """A nudge expecting a reply went out: wait for that reply."""
        if timer.expects_reply == "intention":
            turn.set(flow="intention", step=self.defs.flows["intention"].start)
            _stop_awaiting(turn)
        elif timer.expects_reply in REPLY_TIMERS and not turn.state.flow:
            turn.set(awaiting=timer.expects_reply, asked_again=False)

    def _awaited_reply(self, turn: _Turn, raw: str, now: datetime) -> None:
        """Handle the reply to a mood, therapy or keep-going question."""
        awaiting, asked_again = turn.state.awaiting, turn.state.asked_again
        _stop_awaiting(turn)
        if awaiting == "mood":
            score = answers.parse_mood(raw)
            if score is not None:
                turn.emit(StoreMood(score))
                turn.say("mood.low" if score <= 2 else "mood.saved")
                return
        elif awaiting == "therapy_booked":
            booked = answers.parse_yes_no(raw)
            if booked is not None:
                turn.emit(RecordTherapyBooked(booked))
                turn.say("therapy.booked" if booked else "therapy.not_booked")
                return
        elif awaiting == "keep_going":
            keep = answers.parse_yes_no(raw)
            if keep is not None:
                if keep:
                    turn.emit(EndCourse(now))
                turn.say("keep_going.yes" if keep else "keep_going.no")
                return
        if not asked_again:
            # Not the answer we asked for: keep the words, and ask once more, gently.
            if turn.ctx.last_session is not None:
                turn.emit(SaveJournalEntry("note", answers.clean_text(raw)))
            turn.set(awaiting=awaiting, asked_again=True)
            turn.say(f"{awaiting}.again")
            return
        self._free_text(turn, raw)

    def _free_text(self, turn: _Turn, raw: str) -> None:
        """Text outside any flow: keep it as a note on the latest session."""
        if turn.state.suspended:
            # After a crisis: kept, never taken as an answer, and no cheerful question.
            if turn.ctx.last_session is not None:
                turn.emit(SaveJournalEntry("note", answers.clean_text(raw)))
            turn.say("safety.suspended")
        elif turn.ctx.last_session is not None:
            turn.emit(SaveJournalEntry("note", answers.clean_text(raw)))
            turn.say("note.saved")
        else:
            turn.say("fallback")


def _in_lang(key: str, lang: str) -> str:
    """The Spanish variant of a message key when the request was in Spanish."""
    return f"{key}.es" if lang == "es" else key


def _stop_awaiting(turn: _Turn) -> None:
    """Forget a question a nudge asked (a flow or a newer question takes its place)."""
    turn.set(awaiting=None, asked_again=False)


_CARRIER_WORDS = {"STOP": keywords.OPT_OUT, "START": keywords.OPT_IN, "HELP": keywords.HELP}

_SETTING_FLOWS = {
    keywords.TIMEZONE: "timezone",
    keywords.BEDTIME: "bedtime",
    keywords.THERAPIST: "therapist",
    keywords.SESSION: "session",
    keywords.MINDFULNESS: "mindfulness",
    keywords.SHARE: "share",
}


class _Turn:
    """Collects the events and state changes of one engine call."""

    def __init__(self, defs: Definitions, ctx: Context,
                 state: ConversationState | dict | None, now: datetime | None = None):
        self.defs, self.ctx, self.now = defs, ctx, now
        self.state = _without_dead_ids(defs, as_state(state))
        self.events: list[Event] = []
        self.parsed: dict[str, Any] = {}
        self.fresh_done = False  # this turn's DONE starts a new session's journal

    def set(self, **changes: Any) -> None:
        """Change fields of the (immutable) state; a misspelt field name raises here."""
        self.state = replace(self.state, **changes)

    def talk(self, action: Callable[..., Any], *args: Any) -> Any:
        """Run a flows/safety_talk function on this turn and keep the state it leaves.

        safety_talk.py still reads and writes the state as the stored dict (its own
        change is left to the safety work), so it gets `to_dict()` and the engine reads
        the dict back with `from_dict()`: the same forgiving path a database row takes.
        """
        legacy = _DictTurn(self)
        out = action(legacy, *args)
        self.state = _without_dead_ids(self.defs, ConversationState.from_dict(legacy.state))
        return out

    def say(self, key: str, fallback: str | None = None, **variables: str) -> None:
        """Queue the words for key, filled with the clinic's and the call's variables.

        A text that quotes the participant is checked as it is sent: if it is not plain
        GSM-7 within 2 segments, the words without the quote go instead (fallback, or
        the key's ".plain" variant).
        """
        text = self.defs.render(key, {**self.ctx.variables, **variables})
        if not fits(text):
            plain = fallback or f"{key}.plain"
            if plain in self.defs.messages:
                key, text = plain, self.defs.render(plain, {**self.ctx.variables, **variables})
        self.events.append(SendText(text=text, key=key))

    def emit(self, event: Event) -> None:
        """Queue any other event."""
        self.events.append(event)

    def flow(self):
        """The flow in progress (only called inside one, so it exists)."""
        return self.defs.flows[self.state.flow]

    def current_step(self) -> Step | None:
        """The step waiting for an answer, or None outside a flow."""
        return _step(self.defs, self.state.flow, self.state.step)

    def result(self) -> Result:
        """Freeze what this turn produced."""
        return Result(state=self.state, events=tuple(self.events))


class _DictTurn:
    """The turn as flows/safety_talk.py sees it: the same say/emit, the state as a dict."""

    def __init__(self, turn: _Turn):
        self.defs, self.ctx, self.now = turn.defs, turn.ctx, turn.now
        self.say, self.emit = turn.say, turn.emit
        self.state: dict[str, Any] = turn.state.to_dict()

    def current_step(self) -> Step | None:
        """The step waiting for an answer, read from the dict."""
        state = ConversationState.from_dict(self.state)
        return _step(self.defs, state.flow, state.step)


def _step(defs: Definitions, flow_id: str | None, step_id: str | None) -> Step | None:
    """The step flow_id/step_id names, or None when either is missing or unknown."""
    flow = defs.flows.get(flow_id) if flow_id else None
    return flow.steps.get(step_id) if flow is not None and step_id else None


def _without_dead_ids(defs: Definitions, state: ConversationState) -> ConversationState:
    """The state with every flow, step or awaited reply the definitions no longer know
    removed.

    The clinic can rename or remove a flow or step while someone is in the middle of
    it. Such a conversation simply ends: the participant's text gets the next normal
    behaviour (a note, a keyword, the fallback) instead of an error on every later turn.
    """
    changes: dict[str, Any] = {}
    if state.flow is not None and _step(defs, state.flow, state.step) is None:
        changes.update(flow=None, step=None)
    elif state.flow is None and state.step is not None:
        changes["step"] = None  # a step without its flow means nothing
    if state.resume is not None and _step(defs, state.resume.flow, state.resume.step) is None:
        changes["resume"] = None
    held = state.suspended
    if held is not None:
        if _step(defs, held.flow, held.step) is None:
            changes["suspended"] = None
        elif held.resume is not None and _step(defs, held.resume.flow,
                                               held.resume.step) is None:
            changes["suspended"] = replace(held, resume=None)
    if state.awaiting is not None and state.awaiting not in REPLY_TIMERS:
        changes.update(awaiting=None, asked_again=False)
    elif state.awaiting is None and state.asked_again:
        changes["asked_again"] = False
    return replace(state, **changes) if changes else state


# ---------------------------------------------------------------- answers


def parse_answer(step: Step, raw: str, ctx: Context, now: datetime,
                 parsed: dict[str, Any] | None = None) -> Any:
    """The value of an answer to step, or None when it cannot be understood.

    A value the host already resolved (parsed[kind]) wins over the engine's own reading.
    """
    kind = step.expect
    if parsed and parsed.get(kind) is not None:
        return parsed[kind]
    if kind == "yes_no":
        return answers.parse_yes_no(raw)
    if kind == "timezone":
        if answers.parse_yes_no(raw) is True:
            return ctx.timezone
        from flows.timezones import parse_timezone

        return parse_timezone(raw, now)
    if kind == "bedtime":
        return answers.parse_clock(raw, assume_evening=True)
    if kind == "clock":
        return answers.parse_clock(raw)
    if kind == "session_time":
        return answers.parse_session_time(raw, ctx.timezone, now)
    text = answers.clean_text(raw)
    return text or None


FREE_TEXT_ANSWERS = frozenset({"text", "journal", "intention"})
"""Steps whose answer is the participant's own words."""


def _step_takes(step: Step | None, word: str, raw: str) -> bool:
    """Whether a keyword-looking message is really the answer to the step.

    YES/NO answer yes/no questions. In a free-text step (journal, intention)
    "no", "ok" or "therapy" are answers too: only the keyword itself, spelled
    out ("HELP", "SKIP", "NEXT", "DONE", ...), interrupts.
    """
    if step is None:
        return False
    if step.expect in ("yes_no", "timezone"):
        return word in (keywords.YES, keywords.NO) or (
            step.expect == "timezone" and word == keywords.TIMEZONE
        )
    if step.expect in FREE_TEXT_ANSWERS:
        return not keywords.is_spelled_out(raw)
    return False


def _intention(turn: _Turn) -> str | None:
    """The intention of the session being journaled (never an older session's)."""
    ctx = turn.ctx
    if turn.fresh_done:
        # DONE marks the open session (unless it is booked for later); anything else is
        # a new session with no intention of its own.
        session = ctx.open_session
        if session is None or (session.scheduled_at is not None
                               and session.scheduled_at > _now_of(turn) + DONE_EARLY):
            return None
        return session.intention
    last = ctx.last_session
    if last is not None and last.done_at is not None and last.intention:
        if _now_of(turn) - last.done_at < JOURNAL_REPEAT_WINDOW:
            return last.intention
    return None


def _now_of(turn: _Turn) -> datetime:
    """The time of this turn (set by the entry points)."""
    return turn.now


def _default_reply_key(assessment: Any) -> str:
    """Template key for an alerting assessment (when a custom assess is injected)."""
    key = getattr(assessment, "reply_key", None)
    if isinstance(key, str) and key:
        return key
    if assessment.level == "crisis":
        return "safety.emergency" if assessment.category == "medical_emergency" else "safety.crisis"
    return "safety.urgent"


def format_clock(value: time) -> str:
    """'10:30 PM' (locale-free, the same on every platform)."""
    hour = value.hour % 12 or 12
    return f"{hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"


def format_local(at: datetime, tz: str) -> str:
    """'Wed Dec 30 at 10:30 AM' in the participant's zone."""
    local = at.astimezone(ZoneInfo(tz))
    return f"{local:%a %b} {local.day} at {format_clock(local.time())}"
