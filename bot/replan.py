"""Plans follow facts: when an input a plan depends on changes, its pending nudges move.

One function, `replan()`, serves every such change (the small action saved, time zone,
bedtime, mindfulness time, therapist answer, session time, PAUSE and RESUME, a crisis
hold, START after STOP). It finds the plans still running for the participant, cancels
their pending rows and places them again from the same anchor with the same pure
`flows.schedule.plan_messages`, so what was already sent stays sent and counts towards
the 3-per-24h cap and the 30-minute spacing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update

from bot import scheduling
from bot.storage.models import ScheduledMessage
from flows import model as ev

log = logging.getLogger(__name__)

POST_SESSION_HORIZON = timedelta(days=8)
"""A post-session plan is running this long after DONE (its last mindfulness nudge)."""

MAINTENANCE_HORIZON = timedelta(days=70)
"""The maintenance plan runs this long after the course ends."""

REPLAN_ORDER = ("pre_session", "post_session", "maintenance")
"""Plans are placed in this order, the most time-critical first."""


def needs_replan(event: ev.Event, participant) -> bool:
    """Whether an event changed a fact some plan depends on."""
    if isinstance(event, (ev.UpdateParticipant, ev.Pause)):
        return True
    if isinstance(event, ev.SaveJournalEntry):
        return event.prompt == "action"
    if isinstance(event, ev.OptIn):
        return participant.status == "active"
    if isinstance(event, ev.RaiseAlert):
        return event.level == "crisis"
    return False


def running_plans(turn) -> dict[str, datetime]:
    """The participant's plans that are still running, each with its anchor instant."""
    p, now = turn.participant, turn.now
    # Sessions from before the latest consent belong to an erased past (START after
    # DELETE is a fresh start): their plans do not come back.
    since = p.consent_at
    plans: dict[str, datetime] = {}
    upcoming = turn.sessions.open(now)
    if (upcoming is not None and upcoming.scheduled_at and upcoming.scheduled_at > now
            and (since is None or upcoming.created_at >= since)):
        plans["pre_session"] = upcoming.scheduled_at
    done = turn.sessions.last_done()
    if (done is not None and done.done_at + POST_SESSION_HORIZON > now
            and (since is None or done.done_at >= since)):
        plans["post_session"] = done.done_at
    if p.course_ended_at and p.course_ended_at + MAINTENANCE_HORIZON > now:
        plans["maintenance"] = p.course_ended_at
    return plans


def replan(turn) -> int:
    """Place the pending nudges of every running plan again from its anchor; rows placed."""
    p = turn.participant
    if p.status != "active":
        return 0
    plans = running_plans(turn)
    if not plans:
        return 0
    # Free every affected plan's slots first, so each is placed against what was sent
    # and the plans placed before it, never against its own stale rows.
    turn.db.execute(update(ScheduledMessage).where(
        ScheduledMessage.participant_id == p.id, ScheduledMessage.status == "pending",
        ScheduledMessage.plan.in_(list(plans)),
    ).values(status="cancelled", updated_at=turn.now))
    placed = 0
    for name in REPLAN_ORDER:
        if name in plans:
            placed += len(scheduling.schedule_plan(turn, name, plans[name]))
    log.info("replanned plans=%s messages=%d", ",".join(sorted(plans)), placed)
    return placed
