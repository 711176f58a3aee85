"""A participant's personal safety plan: stored by the care team, texted back on PLAN.

The sections follow the Stanley-Brown safety plan. The plan is kept as one
encrypted JSON document (EncryptedText); it is never logged. PLAN sends it as
texts of at most 2 GSM-7 segments each, one section or more per text.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select

from bot.storage.models import SafetyPlan
from flows import model as ev
from flows import sms_text

SECTIONS = (
    ("warning_signs", "My warning signs"),
    ("coping", "Things I can do on my own"),
    ("distractions", "People and places that help me feel better"),
    ("people", "People I can ask for help"),
    ("professionals", "Professionals and crisis lines"),
    ("environment", "Making my surroundings safer"),
    ("reasons", "My reasons for living"),
)
"""(key, heading) in the order they are texted."""

ALWAYS = "Call or text 988 any time. In danger now: 911."
"""Closes the plan's last text, whatever the care team wrote."""

HINT_AFTER = ("safety.crisis", "safety.emergency", "safety.check_repeat")
"""Replies that point to the plan when the participant has one."""


class PlanError(ValueError):
    """A plan that cannot be texted as written (characters outside GSM-7, too long)."""


def validate(sections: dict[str, str]) -> dict[str, str]:
    """Keep known, non-empty sections; refuse text that would not survive SMS."""
    unknown = set(sections) - {key for key, _ in SECTIONS}
    if unknown:
        raise PlanError(f"unknown sections: {', '.join(sorted(unknown))}")
    clean = {k: " ".join(v.split()) for k, v in sections.items() if v and v.strip()}
    if not clean:
        raise PlanError("a safety plan needs at least one section")
    for key, text in clean.items():
        bad = sms_text.non_gsm7_chars(text)
        if bad:
            raise PlanError(f"{key}: characters that SMS cannot carry plainly: {''.join(bad)}")
        if sms_text.segments(f"{dict(SECTIONS)[key]}: {text}") > sms_text.MAX_SEGMENTS:
            raise PlanError(f"{key}: longer than 2 SMS segments; shorten it")
    return clean


def store(db, participant_id: int, sections: dict[str, str], who: str,
          now: datetime) -> SafetyPlan:
    """Create or replace the participant's plan (merging sections into an existing one)."""
    plan = db.scalars(select(SafetyPlan).where(
        SafetyPlan.participant_id == participant_id)).first()
    merged = {**(load(plan) if plan else {}), **sections}
    merged = validate(merged)
    if plan is None:
        plan = SafetyPlan(participant_id=participant_id)
        db.add(plan)
    plan.sections = json.dumps(merged, sort_keys=True)
    plan.updated_by, plan.updated_at = who, now
    return plan


def load(plan: SafetyPlan | None) -> dict[str, str]:
    """The plan's sections (empty when there is none)."""
    return json.loads(plan.sections) if plan is not None and plan.sections else {}


def find(db, participant_id: int) -> dict[str, str]:
    """The participant's plan sections (empty when none is stored)."""
    return load(db.scalars(select(SafetyPlan).where(
        SafetyPlan.participant_id == participant_id)).first())


def texts(sections: dict[str, str]) -> list[str]:
    """The plan as SMS texts, each at most 2 GSM-7 segments, in section order."""
    parts = [f"{heading}: {sections[key]}" for key, heading in SECTIONS if key in sections]
    parts.append(ALWAYS)
    out: list[str] = []
    current = "Your safety plan."
    for part in parts:
        candidate = f"{current}\n{part}"
        if sms_text.segments(candidate) <= sms_text.MAX_SEGMENTS:
            current = candidate
        else:
            out.append(current)
            current = part
    out.append(current)
    return out


def send_plan(turn, event: ev.SendSafetyPlan) -> None:
    """PLAN: the stored plan in as many texts as it needs, or how to get one."""
    sections = find(turn.db, turn.participant.id)
    if not sections:
        text = turn.services.definitions.render("safety.plan_none", turn.services.variables)
        turn.replies.append(ev.SendText(text=text, key="safety.plan_none"))
        return
    for text in texts(sections):
        turn.replies.append(ev.SendText(text=text, key="safety.plan"))


def add_hint(turn, event: ev.SendText) -> None:
    """After a crisis reply, a second short text when the participant has a plan."""
    if event.key not in HINT_AFTER or not find(turn.db, turn.participant.id):
        return
    text = turn.services.definitions.render("safety.plan_hint", turn.services.variables)
    turn.replies.append(ev.SendText(text=text, key="safety.plan_hint"))
