"""Reading dates and times in natural language, in the host (the engine gets values).

When the participant is answering "when is your next session?", the text is read
here before the turn: first with the engine's own small grammar (the examples the
texts give: "fri 6pm", "tomorrow 10am", "12/5 3pm", "next tuesday at 6:30pm"), then
with `dateparser` for everything else people write ("December 8th at half past six pm",
"in 3 days at 10am"). The engine receives only the resolved instant and repeats it in
its reply, so the participant can correct a misreading.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flows import answers
from flows.state import ConversationState, as_state

log = logging.getLogger(__name__)

_HAS_TIME = re.compile(r"\d|\b(?:noon|midday|midnight|morning|afternoon|evening|tonight)\b",
                       re.IGNORECASE)
"""A session answer must say a time of day; dateparser would otherwise fill in 'now'."""

MAX_AHEAD = timedelta(days=120)
"""A reading further ahead than this is a misreading ("the 8th" as next August): ask again."""


def session_time(text: str, tz: str, now: datetime) -> datetime | None:
    """The future instant a text names, in UTC, or None when it names none."""
    found = answers.parse_session_time(text, tz, now)
    if found is not None:
        return found
    if not text.strip() or not _HAS_TIME.search(text):
        return None
    import dateparser  # loads its language data on first use, so only when needed

    local_now = now.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    try:
        parsed = dateparser.parse(text, languages=["en"], settings={
            "PREFER_DATES_FROM": "future", "TIMEZONE": tz, "RETURN_AS_TIMEZONE_AWARE": True,
            "RELATIVE_BASE": local_now,
        })
    except Exception:  # a parser bug must not turn a reply into a 500
        log.exception("dateparser failed on a session answer")
        return None
    if parsed is None:
        return None
    parsed = parsed.astimezone(UTC)
    return parsed if now < parsed <= now + MAX_AHEAD else None


RESOLVERS = {"session_time": session_time}
"""Answer kinds the host reads before the engine sees the text."""


def resolve_answer(definitions, state: ConversationState | dict | None, text: str, tz: str,
                   now: datetime) -> dict[str, Any]:
    """Values the current step's answer resolves to ({} when the step needs none)."""
    state = as_state(state)
    flow = definitions.flows.get(state.flow or "")
    step = flow.steps.get(state.step or "") if flow else None
    resolver = RESOLVERS.get(step.expect) if step is not None else None
    if resolver is None:
        return {}
    value = resolver(text, tz, now)
    return {} if value is None else {step.expect: value}
