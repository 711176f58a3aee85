"""The conversation around a safety signal: the check question, and flows suspended after one.

Pure like the rest of flows/: it works on the engine's turn (state, say, emit)
and returns nothing but events. The rules, in the words of issue 9:

- A text assessed "check" gets one fixed YES/NO question (`safety.check`) with 988
  and 911 in it. YES (or any crisis text) -> the crisis path; NO -> a short thanks
  and the flow resumes at the same question; anything else -> not answered: the
  care team gets a same-day alert and the flow is suspended.
- No answer within the host's timeout -> `check_timed_out()` raises the same alert;
  a late YES or NO is still honoured for CHECK_ANSWER_WINDOW.
- A check is asked at most once per CHECK_REPEAT_WINDOW: a second risky text in that
  window goes straight to the care team.
- After a crisis or urgent reply the flow in progress is suspended, never advanced:
  the next text is not taken as an answer. CONTINUE (or DONE, for a journal within
  its window) picks it up at the question where it stopped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flows import answers
from flows.model import AskSafetyCheck, CloseSafetyCheck, RaiseAlert, SaveJournalEntry

CHECK = "check"
"""The assessment level that calls for the question instead of a guess."""

CHECK_REPEAT_WINDOW = timedelta(hours=2)
"""A check is never asked twice within this long; a second risky text pages instead."""

CHECK_ANSWER_WINDOW = timedelta(hours=12)
"""A late YES or NO to the check question still counts for this long after it was asked."""

CHECK_ALERT = "check"
"""Alert level for a check that needs a person (same-day, like urgent)."""

UNANSWERED = "unanswered_check"
REPEATED = "repeated_check"
CHECK_YES = "check_yes"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def suspend(turn, now: datetime) -> None:
    """Set the flow in progress aside (not advanced), and forget any question a nudge asked."""
    state = turn.state
    if state.get("flow"):
        state["suspended"] = {"flow": state.pop("flow"), "step": state.pop("step", None),
                              "at": now.isoformat()}
        if state.get("resume"):  # in a detour (TIMEZONE mid-journal): keep the way back too
            state["suspended"]["resume"] = state.pop("resume")
    state.pop("awaiting", None)
    state.pop("asked_again", None)


def unsuspend(turn, flow: str | None = None) -> bool:
    """Put the suspended flow back (only `flow`, when given); False when there is none."""
    held = turn.state.get("suspended")
    if not held or (flow is not None and held.get("flow") != flow):
        return False
    turn.state.pop("suspended")
    turn.state.update(flow=held["flow"], step=held["step"])
    if held.get("resume"):
        turn.state["resume"] = held["resume"]
    return turn.current_step() is not None


def suspended_position(turn) -> tuple[int, int] | None:
    """(question number, questions) of the suspended flow, for 'you stopped at 2 of 5'."""
    held = turn.state.get("suspended")
    flow = turn.defs.flows.get(held["flow"]) if held else None
    if flow is None or held.get("step") not in flow.steps:
        return None
    return flow.position(held["step"]), len(flow.steps)


def alert_reply(turn, key: str, level: str, category: str | None, now: datetime) -> None:
    """Crisis or urgent: the fixed reply, the care team told, the flow suspended."""
    turn.say(key)
    turn.emit(RaiseAlert(level, category))
    if turn.state.pop("check", None) is not None:
        turn.emit(CloseSafetyCheck("crisis"))
    suspend(turn, now)


def pending_check(turn, now: datetime) -> dict | None:
    """The check question waiting for its answer (None when none, or when too old)."""
    check = turn.state.get("check")
    if not check:
        return None
    if now - _at(check["asked_at"]) > CHECK_ANSWER_WINDOW:
        turn.state.pop("check")
        return None
    return check


def ask_check(turn, now: datetime) -> None:
    """A "check" text: ask the question, or page at once when one was asked recently."""
    last = turn.state.get("check_last")
    if last and now - _at(last) < CHECK_REPEAT_WINDOW:
        turn.say("safety.check_repeat")
        turn.emit(RaiseAlert(CHECK_ALERT, REPEATED))
        if turn.state.pop("check", None) is not None:
            turn.emit(CloseSafetyCheck("repeated"))
        suspend(turn, now)
        return
    # The flow stays where it is: after NO it goes on at the same question.
    turn.state["check"] = {"asked_at": now.isoformat()}
    turn.state["check_last"] = now.isoformat()
    turn.say("safety.check")
    turn.emit(AskSafetyCheck(now))


def answer_check(turn, raw: str, now: datetime) -> bool:
    """Take a reply to the check question; True when the flow resumes (NO)."""
    check = turn.state.pop("check")
    answer = answers.parse_yes_no(raw)
    if answer is True:
        turn.say("safety.crisis")
        turn.emit(RaiseAlert("crisis", CHECK_YES))
        turn.emit(CloseSafetyCheck("yes"))
        suspend(turn, now)
        return False
    if answer is False:
        turn.say("safety.check_no")
        turn.emit(CloseSafetyCheck("no"))
        return True
    # Not an answer: a person should ask. The words are kept, never taken as an answer.
    if turn.ctx.last_session is not None:
        turn.emit(SaveJournalEntry("note", answers.clean_text(raw)))
    turn.say("safety.check_unclear")
    if not check.get("timed_out"):
        turn.emit(RaiseAlert(CHECK_ALERT, UNANSWERED))
    turn.emit(CloseSafetyCheck("unclear"))
    suspend(turn, now)
    return False


def check_with_stop(turn) -> None:
    """An uncertain text that also says STOP: 988 at once, and the care team reaches out."""
    turn.say("safety.gentle")
    turn.emit(RaiseAlert(CHECK_ALERT, UNANSWERED))


def check_timed_out(turn, now: datetime) -> None:
    """The host's timer: still no answer, so the care team is asked to reach out."""
    check = pending_check(turn, now)
    if check is None or check.get("timed_out"):
        return
    check["timed_out"] = True
    turn.emit(RaiseAlert(CHECK_ALERT, UNANSWERED))
