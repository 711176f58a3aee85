"""The participant's safety plan on the console (Stanley-Brown's six parts).

The encrypted safety plan store arrives with the alert-grouping work (issue 9); until
it is merged this module is the one seam the participant page calls, so connecting it
is a change here and in templates/care/_safety_plan.html only.
"""

from __future__ import annotations

SECTIONS = (
    ("warning_signs", "Warning signs"),
    ("coping", "Things I can do on my own to cope"),
    ("distractions", "People and places that distract me"),
    ("people", "People I can ask for help"),
    ("professionals", "Professionals and crisis lines"),
    ("safer_surroundings", "Making my surroundings safer"),
    ("reasons", "Reasons to live"),
)
"""The plan's parts, in the order the page shows them."""


def load(db, participant_id: int) -> dict | None:
    """The participant's plan as {section: text}, or None when there is no plan store yet."""
    return None
