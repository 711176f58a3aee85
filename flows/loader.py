"""Load and validate the definition files: flows, nudge plans and their words.

Every `*.toml` file under `flows/definitions/` may hold `[flows.*]`,
`[plans.*]` and a `[messages]` table; the loader merges them, then checks
everything a clinic edit can break (dangling step ids, missing words,
characters outside GSM-7, more than two SMS segments).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows import optout, schedule, sms_text
from flows.model import ANSWER_KINDS, Flow, Step

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
"""Where the shipped definition files live."""

SAMPLE_VARIABLES: dict[str, str] = {
    "program": "Integration Companion",
    "clinic_name": "Harbor Light Wellness Clinic",  # 28 chars: a long clinic name
    "clinic_contact": "(555) 555-0100 or care@clinic.org",
    "care_team": "your care team at (555) 555-0100 or care@clinic.org",
    "care_team_es": "tu equipo de atencion al (555) 555-0100 or care@clinic.org",
    "name": " Alexandria",
    "intention": "x" * 60,  # quoted user text is cut to 60 characters
    "timezone": "America/Argentina/Buenos_Aires",
    "bedtime": "10:30 PM",
    "clock": "10:30 PM",
    "when": "Wed Dec 30 at 10:30 AM",
    "until": "Wed Dec 30 at 10:30 AM",
    "date": "Wed Dec 30",
    "question": "x" * 20,
    "action": "x" * 60,
    "step": "5",
    "steps": "5",
    "url": "https://notes.example-clinic-name.org/j/" + "x" * 64,
    "page": "12",
}
"""Longest plausible values, so length checks hold for real participants."""

ENGINE_MESSAGES = frozenset(
    {"invite", "invite.reminder", "consent.confirmed", "consent.notice", "help",
     "stop.confirm", "start.confirm", "done.ack", "journal.repeat", "journal.empty",
     "journal.header", "journal.session", "journal.older", "journal.link",
     "journal.no_more", "note.saved", "fallback", "skip.nothing",
     "pause.confirm", "resume.confirm", "media.only", "empty.text", "flood.notice",
     "mood.saved", "mood.low", "therapy.booked", "therapy.not_booked", "finished.confirm",
     "keep_going.yes", "keep_going.no", "mood.again", "therapy_booked.again",
     "keep_going.again", "delete.ask", "delete.done", "delete.kept",
     "session.saved", "session.skipped", "safety.crisis", "safety.emergency",
     "safety.other_person", "safety.urgent", "safety.gentle", "optout.ask", "optout.ask.es",
     "optout.kept", "optout.kept.es", "stop.confirm.es", "start.confirm.es", "help.es",
     "setting.pause", "setting.pause.es",
     "setting.time", "setting.time.es", "setting.kind", "setting.kind.es",
     "safety.crisis.told", "safety.emergency.told",
     "safety.urgent.told", "safety.check", "safety.check_no", "safety.check_unclear",
     "safety.check_unclear.told", "safety.check_repeat", "safety.check_repeat.told",
     "safety.suspended", "safety.plan_hint", "safety.plan_none", "journal.stopped",
     "continue.nothing"}
)
"""Message keys the engine and host use by name: every one must exist."""

ENGINE_FLOWS = frozenset(
    {"enrollment", "intention", "journal", "timezone", "bedtime", "therapist", "session",
     "mindfulness", "share"}
)
"""Flows the engine starts by name."""

SAVE_TARGETS = frozenset(
    {"participant:timezone", "participant:bedtime", "participant:has_therapist",
     "participant:mindfulness_time", "participant:share_journal",
     "session:scheduled_at", "intention"}
)


class DefinitionError(ValueError):
    """The definition files have problems; .problems lists every one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Definitions:
    """Everything the engine and scheduler read from the definition files."""

    flows: dict[str, Flow]
    messages: dict[str, str]
    plans: dict[str, Any] = field(default_factory=dict)
    wording_version: str = "unversioned"

    def render(self, key: str, variables: Mapping[str, str] | None = None) -> str:
        """The words for key with placeholders filled (missing ones become empty)."""
        return string.Formatter().vformat(self.messages[key], (), _Blank(variables or {}))


class _Blank(dict):
    """format_map helper: an unknown placeholder renders as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""


def read_files(directory: Path = DEFINITIONS_DIR) -> tuple[dict[str, Any], list[str]]:
    """Parse and merge every TOML file in directory; return (data, problems)."""
    merged: dict[str, Any] = {"flows": {}, "plans": {}, "messages": {}}
    problems: list[str] = []
    files = sorted(Path(directory).glob("*.toml"))
    if not files:
        problems.append(f"no definition files in {directory}")
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        for section in ("flows", "plans", "messages"):
            for key, value in data.get(section, {}).items():
                if key in merged[section]:
                    problems.append(f"{path.name}: {section} {key!r} is defined twice")
                merged[section][key] = value
        if "wording_version" in data:
            merged["wording_version"] = str(data["wording_version"])
    return merged, problems


def check(directory: Path = DEFINITIONS_DIR) -> list[str]:
    """Every problem in the definition files (empty list when they are sound)."""
    data, problems = read_files(directory)
    messages = data["messages"]
    problems += _check_messages(messages)
    flows, flow_problems = _build_flows(data["flows"], messages)
    problems += flow_problems
    problems += [f"message {k!r} is missing (the engine uses it)"
                 for k in sorted(ENGINE_MESSAGES - messages.keys())]
    problems += [f"flow {f!r} is missing (the engine starts it)"
                 for f in sorted(ENGINE_FLOWS - flows.keys())]
    if data["plans"]:
        problems += schedule.validate_plans(data["plans"], messages)
    if directory == DEFINITIONS_DIR or (Path(directory) / optout.RULES_FILE.name).exists():
        problems += optout.check(Path(directory) / optout.RULES_FILE.name)
    return problems


def load(directory: Path = DEFINITIONS_DIR) -> Definitions:
    """Load and validate the definitions; raise DefinitionError on any problem."""
    problems = check(directory)
    if problems:
        raise DefinitionError(problems)
    data, _ = read_files(directory)
    flows, _ = _build_flows(data["flows"], data["messages"])
    plans = schedule.load_plans(data["plans"]) if data["plans"] else {}
    return Definitions(
        flows=flows,
        messages=dict(data["messages"]),
        plans=plans,
        wording_version=data.get("wording_version", "unversioned"),
    )


def _check_messages(messages: Mapping[str, Any]) -> list[str]:
    """GSM-7, length and placeholder problems of every message."""
    problems = []
    for key, text in messages.items():
        if not isinstance(text, str) or not text.strip():
            problems.append(f"message {key!r} is empty or not text")
            continue
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
        except ValueError as exc:
            problems.append(f"message {key!r}: {exc}")
            continue
        unknown = names - SAMPLE_VARIABLES.keys()
        if unknown:
            problems.append(f"message {key!r} uses unknown placeholder(s) {sorted(unknown)}")
            continue
        rendered = text.format_map(SAMPLE_VARIABLES)
        problems += [f"message {key!r}: {p}" for p in sms_text.problems(rendered)]
    return problems


def _build_flows(raw: Mapping[str, Any], messages: Mapping[str, Any]):
    """Build Flow objects from raw TOML tables; return (flows, problems)."""
    flows: dict[str, Flow] = {}
    problems: list[str] = []
    for flow_id, table in raw.items():
        steps: dict[str, Step] = {}
        for raw_step in table.get("steps", []):
            try:
                step = Step(**raw_step)
            except TypeError as exc:
                problems.append(f"flow {flow_id!r}: bad step {raw_step.get('id')!r}: {exc}")
                continue
            if step.id in steps:
                problems.append(f"flow {flow_id!r}: step {step.id!r} is defined twice")
            steps[step.id] = step
        flow = Flow(id=flow_id, start=table.get("start", ""), steps=steps, done=table.get("done"))
        problems += _check_flow(flow, messages)
        flows[flow_id] = flow
    return flows, problems


def _check_flow(flow: Flow, messages: Mapping[str, Any]) -> list[str]:
    """Dangling references and unknown kinds inside one flow."""
    where = f"flow {flow.id!r}"
    problems = []
    if flow.start not in flow.steps:
        problems.append(f"{where}: start step {flow.start!r} does not exist")
    if flow.done and flow.done not in messages:
        problems.append(f"{where}: done message {flow.done!r} is missing")
    for step in flow.steps.values():
        for attr in ("say", "retry", "say_with_intention"):
            key = getattr(step, attr)
            if key and key not in messages:
                problems.append(f"{where} step {step.id!r}: message {key!r} is missing")
        if step.next and step.next not in flow.steps:
            problems.append(f"{where} step {step.id!r}: next step {step.next!r} does not exist")
        if step.expect and step.expect not in ANSWER_KINDS:
            problems.append(f"{where} step {step.id!r}: unknown answer kind {step.expect!r}")
        if step.save and step.save not in SAVE_TARGETS and not step.save.startswith("journal:"):
            problems.append(f"{where} step {step.id!r}: unknown save target {step.save!r}")
    return problems
