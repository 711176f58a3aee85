"""The safety check question's timer: a row per question, settled by the answer or the clock.

The engine decides the conversation (flows/safety_talk.py); this module keeps the
database copy, so a question nobody answered pages the care team even if Redis
and every worker were restarted in between (the clock pass finds it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot import runner
from bot.storage.models import SafetyCheck

log = logging.getLogger(__name__)


def record_asked(turn, event) -> None:
    """AskSafetyCheck: start the unanswered timer (SAFETY_CHECK_TIMEOUT_MINUTES)."""
    timeout = timedelta(minutes=turn.services.settings.safety_check_timeout_minutes)
    _settle(turn.db, turn.participant.id, "repeated", turn.now)  # never two open at once
    turn.db.add(SafetyCheck(participant_id=turn.participant.id, asked_at=event.at,
                            due_at=event.at + timeout, status="open"))


def record_closed(turn, event) -> None:
    """CloseSafetyCheck: the question got its answer (or a crisis text took over)."""
    _settle(turn.db, turn.participant.id, event.outcome, turn.now)


def _settle(db, participant_id: int, outcome: str, now: datetime) -> None:
    db.execute(update(SafetyCheck).where(
        SafetyCheck.participant_id == participant_id,
        SafetyCheck.status.in_(("open", "unanswered")),
    ).values(status=outcome, settled_at=now))


def page_unanswered(services, now: datetime) -> int:
    """Clock pass: every check still open at its due time becomes a same-day alert."""
    with services.db.session() as db:
        due = list(db.scalars(select(SafetyCheck.id).where(
            SafetyCheck.status == "open", SafetyCheck.due_at <= now)))
    for check_id in due:
        with services.db.session() as db:
            claimed = db.execute(update(SafetyCheck).where(
                SafetyCheck.id == check_id, SafetyCheck.status == "open",
            ).values(status="unanswered")).rowcount
            participant_id = db.get(SafetyCheck, check_id).participant_id
        if not claimed:
            continue  # answered meanwhile, or another clock took it

        def step(engine, ctx, state, _message):
            return engine.safety_check_timed_out(state, ctx, services.clock.now())

        log.warning("safety check %s unanswered: paging the care team", check_id)
        runner.run_turn(services, step, participant_id=participant_id, via="rest")
    return len(due)
