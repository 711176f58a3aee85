"""Golden transcripts: scripted conversations through the pure engine, compared with
tests/golden/<name>.txt.

To rewrite the files after an intended change of words or behaviour, run

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py

then read the diff: it is the conversation participants will see. (An environment
variable rather than a --update-golden option: pytest only takes options from
conftest.py or plugins loaded at start-up, and pytest_plugins in a test module
registers too late for the command line.)

Transcript lines:
    @ Mon Nov 23 10:00 AM      the participant's local time, whenever it moves on
    > text                     what the participant texted (<media>: a photo; <blank>)
    < text                     a reply from the engine, one line per text
    <~ text                    a nudge the host sent from a plan (not the engine)
      [Event field=value]      anything else the engine asked the host to do
      (state ...)              the conversation state, when it changed
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows import loader
from flows.engine import Engine, Timer
from flows.model import (
    Context,
    Result,
    SendText,
    SessionInfo,
)
from tests.engine_host import apply

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
VARIABLES = {
    "program": "Integration Companion",
    "clinic_name": "Harbor Clinic",
    "clinic_contact": "555-0100",
    "care_team": "your care team at 555-0100",
}


@dataclass(frozen=True)
class Say:
    """The participant texts something (after `wait`; by default right away)."""

    text: str
    wait: timedelta = timedelta(0)
    media: int = 0


@dataclass(frozen=True)
class Nudge:
    """The host sends a plan's nudge that expects a reply (after `wait`)."""

    key: str
    expects: str
    wait: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Invite:
    """The clinic enrolls the participant: the invitation goes out."""


class Host:
    """Just enough of bot/ to carry a conversation: applies events to the context."""

    def __init__(self, engine: Engine, ctx: Context):
        self.engine, self.ctx, self.state = engine, ctx, {}
        self.shown_state: dict = {}
        self.now = START
        self.lines: list[str] = []
        self._shown_time: str | None = None

    def run(self, script: list) -> str:
        """Play a script; return the rendered transcript."""
        for item in script:
            if isinstance(item, Invite):
                self._show_time()
                self._take(self.engine.invite(self.ctx))
            elif isinstance(item, Nudge):
                self._tick(item.wait)
                self.lines.append(f"<~ {self.engine.defs.render(item.key, self.ctx.variables)}")
                self._take(self.engine.resume(self.state, self.ctx, self.now,
                                              timer=Timer(item.expects)))
            else:
                self._tick(item.wait)
                self.lines.append(f"> {shown_inbound(item)}")
                self._take(self.engine.resume(self.state, self.ctx, self.now, text=item.text,
                                              media=item.media))
        return "\n".join(self.lines) + "\n"

    def _tick(self, wait: timedelta) -> None:
        self.now += wait
        self._show_time()

    def _show_time(self) -> None:
        """A time line whenever the participant's clock shows another minute."""
        local = self.now.astimezone(ZoneInfo(self.ctx.timezone))
        shown = f"{local:%a %b} {local.day} {local.hour % 12 or 12}:{local:%M %p}"
        if shown != self._shown_time:
            self.lines.append(f"@ {shown}")
            self._shown_time = shown

    def _take(self, result: Result) -> None:
        for event in result.events:
            if isinstance(event, SendText):
                self.lines.append(f"< {event.text}")
            else:
                self.lines.append(f"  [{render_event(event)}]")
            self.ctx = apply(self.ctx, event)
        stored = json.loads(json.dumps(result.state.to_dict()))  # as the database keeps it
        # The version is the same on every line, so the transcripts leave it out.
        state = {k: v for k, v in stored.items() if k != "version"}
        if state != self.shown_state:
            shown = " ".join(f"{k}={v}" for k, v in sorted(state.items())) or "empty"
            self.lines.append(f"  (state {shown})")
        self.state, self.shown_state = stored, state


def shown_inbound(say: Say) -> str:
    """The inbound text, with blank ones named (trailing spaces would not survive editors)."""
    if say.text.strip():
        return say.text
    return "<media>" if say.media else "<blank>"


def render_event(event) -> str:
    """'Name field=value ...' with plain, stable values."""
    parts = [type(event).__name__]
    for f in fields(event):
        value = getattr(event, f.name)
        if isinstance(value, dict):
            parts += [f"{k}={render_value(v)}" for k, v in value.items()]
        else:
            parts.append(f"{f.name}={render_value(value)}")
    return " ".join(parts)


def render_value(value) -> str:
    """One field value: UTC instants, clock times, quoted text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, str):
        return json.dumps(value) if not value.isidentifier() else value
    return repr(value)


def active(**fields) -> Context:
    """An enrolled participant in New York."""
    return Context(status="active", timezone="America/New_York", name="Sam",
                   variables=VARIABLES, **fields)


MINUTE, HOURS = timedelta(minutes=1), timedelta(hours=1)
JOURNAL_ANSWERS = ["I saw the ocean and my grandmother", "I am allowed to rest",
                   "Let go of rushing, bring more music", "Lighter, less foggy",
                   "Call my brother on Sunday"]

SCRIPTS: dict[str, tuple[Context, list]] = {
    "enrollment": (
        Context(status="invited", timezone="America/New_York", name="Sam", variables=VARIABLES),
        [Invite(), Say("who is this?", wait=HOURS), Say("HELP"), Say("yes"),
         Say("somewhere cold"), Say("Eastern"), Say("whenever I'm tired"), Say("10:30pm"),
         Say("yes"), Say("soon I think"), Say("fri 6pm")],
    ),
    "intention_then_done_journal": (
        active(),
        [Nudge("nudge.intention.prompt", "intention", wait=2 * HOURS),
         Say("I'm open to whatever needs to be seen"),
         Say("Done!", wait=5 * HOURS),
         *[Say(a, wait=timedelta(minutes=10)) for a in JOURNAL_ANSWERS],
         Say("JOURNAL", wait=HOURS)],
    ),
    "journal_with_skips_and_resume": (
        active(),
        [Say("done"), Say("the ocean, and a lot of light", wait=timedelta(minutes=30)),
         Say("SKIP"), Say("help"), Say("done", wait=3 * HOURS),
         Say("Let go of rushing. Bring more music."), Say("next"),
         Say("Walk every morning this week")],
    ),
    "stop_and_start": (
        active(),
        [Say("done"), Say("I want to stop drinking"), Say("please stop texting me"),
         Say("hello?", wait=HOURS), Say("DONE"), Say("START", wait=24 * HOURS),
         Say("help")],
    ),
    "optout_question": (
        active(last_session=SessionInfo(done_at=START - timedelta(days=1))),
        [Say("not interested anymore"), Say("no, sorry, keep them", wait=HOURS),
         Say("STOP being so hard on myself is what came up", wait=24 * HOURS),
         Say("yes", wait=10 * MINUTE), Say("hello?", wait=HOURS)],
    ),
    "optout_question_lapses": (
        active(last_session=SessionInfo(done_at=START - timedelta(days=1))),
        [Say("this isn't for me"), Say("had a good walk today", wait=25 * HOURS)],
    ),
    "optout_spanish": (
        active(),
        [Say("AYUDA"), Say("no me interesa"), Say("STOP", wait=MINUTE),
         Say("START", wait=24 * HOURS), Say("alto por favor", wait=HOURS),
         Say("ALTA", wait=HOURS), Say("stop", wait=HOURS), Say("START", wait=HOURS)],
    ),
    "optout_settings": (
        active(last_session=SessionInfo(done_at=START - timedelta(days=1))),
        [Say("stop only the walk reminders, keep the mood ones"),
         Say("could you send the check ins in the evening instead?"),
         Say("can we pause for a week while i'm on vacation"), Say("PAUSE 7"),
         Say("my ex won't stop texting me lol", wait=HOURS),
         Say("hey, thanks for everything, but please take me off the text list", wait=HOURS)],
    ),
    "help_and_unknown": (
        active(),
        [Say("HELP"), Say("what is this"), Say("", media=1), Say("   "), Say("skip"),
         Say("yes"), Say("done", wait=HOURS), Say("SKIP"), Say("feeling good today", wait=HOURS),
         Say("skip")],
    ),
    "pause_resume": (
        active(),
        [Say("PAUSE"), Say("pause 7", wait=HOURS), Say("RESUME", wait=24 * HOURS)],
    ),
    "delete": (
        active(last_session=SessionInfo(done_at=START - timedelta(days=2))),
        [Say("DELETE"), Say("wait, no", wait=MINUTE), Say("delete", wait=HOURS),
         Say("DELETE", wait=MINUTE)],
    ),
    "mood_checkin": (
        active(last_session=SessionInfo(done_at=START - timedelta(days=1))),
        [Nudge("nudge.avoid.checkin", "mood"), Say("4"),
         Nudge("nudge.avoid.checkin", "mood", wait=24 * HOURS), Say("honestly about a 1"),
         Nudge("nudge.avoid.checkin", "mood", wait=24 * HOURS), Say("not sure how I feel"),
         Say("ok, a 3"), Nudge("nudge.avoid.checkin", "mood", wait=24 * HOURS),
         Say("tired"), Say("still tired"),
         Nudge("nudge.therapy.ask", "therapy_booked", wait=2 * HOURS), Say("not yet")],
    ),
    "safety_check": (
        active(),
        [Say("done"), Say("the ocean, and a lot of light", wait=timedelta(minutes=20)),
         Say("sometimes i wonder if everyone would be better off if i just disappeared"),
         Say("no", wait=MINUTE), Say("I am allowed to rest"),
         Say("how many of my sleeping pills would it take to not wake up", wait=HOURS),
         Say("sometimes i wonder if everyone would be better off if i just disappeared",
             wait=3 * HOURS),
         Say("yes", wait=MINUTE), Say("ok", wait=MINUTE),
         Say("sometimes i wonder if everyone would be better off if i just disappeared",
             wait=24 * HOURS),
         Say("I don't know", wait=MINUTE)],
    ),
    "crisis_mid_journal": (
        active(),
        [Say("done"), Say("the ocean, and a lot of light", wait=timedelta(minutes=20)),
         Say("I want to kill myself", wait=MINUTE),
         Say("I'm safe, my partner is with me", wait=MINUTE), Say("JOURNAL", wait=HOURS),
         Say("CONTINUE", wait=MINUTE), Say("I am allowed to rest"),
         Say("there's blood in my urine since yesterday", wait=MINUTE),
         Say("done", wait=MINUTE), Say("Let go of rushing")],
    ),
    # Issue 10: the conversations that changed on purpose.
    "detour_mid_journal": (
        active(),
        [Say("done"), Say(JOURNAL_ANSWERS[0], wait=timedelta(minutes=10)), Say("TIMEZONE"),
         Say("Pacific"), Say("done", wait=timedelta(minutes=10)), Say(JOURNAL_ANSWERS[1]),
         Say("SESSION"), Say("skip"), Say(JOURNAL_ANSWERS[2])],
    ),
    "unknown_number": (
        Context(status="unenrolled", timezone="America/New_York", variables=VARIABLES),
        [Say("hi who is this"), Say("yes"), Say("HELP"), Say("STOP")],
    ),
    "rejoin_after_delete": (
        Context(status="active", timezone="Europe/London", name="Sam", variables=VARIABLES),
        [Say("DELETE"), Say("DELETE", wait=MINUTE), Say("hello?", wait=24 * HOURS),
         Say("START", wait=HOURS), Say("yes")],
    ),
    "plain_answers": (
        active(),
        [Say("BEDTIME"), Say("usually around midnight"), Say("SESSION"),
         Say("next tuesday at 6:30pm"), Say("TIMEZONE"),
         Say("I'm traveling to Denver next week"),
         Nudge("nudge.therapy.ask", "therapy_booked"), Say("not yet, money is tight")],
    ),
    "quoting": (
        active(),
        [Say("INTENTION"),
         Say("I want to feel safe in my body again \U0001F64F\u2728 and finally let go of "
             "the fear that has followed me since childhood"),
         Say("done", wait=2 * HOURS)],
    ),
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The engine over the shipped definitions."""
    return Engine(loader.load())


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_transcript_matches_golden_file(engine, name):
    ctx, script = SCRIPTS[name]
    transcript = Host(engine, ctx).run(script)
    path = GOLDEN_DIR / f"{name}.txt"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(transcript, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1"
    assert transcript == path.read_text(encoding="utf-8")


def test_every_golden_file_has_a_script():
    assert {p.stem for p in GOLDEN_DIR.glob("*.txt")} == set(SCRIPTS)
