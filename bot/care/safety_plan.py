"""The participant's safety plan on the console: read and saved through bot/safety_plan.py.

The console adds no rules of its own: the sections, the GSM-7 and 2-segment checks and
the encrypted store are issue 9's, so what a clinician saves is exactly what PLAN texts.
"""

from __future__ import annotations

from datetime import datetime

from bot import safety_plan as store

SECTIONS = store.SECTIONS
"""(key, heading) of the plan's parts, in the order the page shows and PLAN texts them."""

PlanError = store.PlanError


def load(db, participant_id: int) -> dict | None:
    """The participant's plan as {section: text}, or None when none is stored."""
    return store.find(db, participant_id) or None


def save(db, participant_id: int, sections: dict[str, str], who: str,
         now: datetime) -> dict[str, str]:
    """Replace the plan with the form's sections (an emptied box removes that section).

    Raises PlanError (nothing stored) when a section would not survive SMS.
    """
    given = {key: sections.get(key) or "" for key, _ in SECTIONS}
    try:
        return store.load(store.store(db, participant_id, given, who, now))
    except PlanError as error:
        raise PlanError(_readable(str(error))) from None


def _readable(message: str) -> str:
    """The store's error with the section's heading in place of its key."""
    key, sep, rest = message.partition(": ")
    heading = dict(SECTIONS).get(key)
    return f'"{heading}":{rest and " " + rest}' if sep and heading else message
