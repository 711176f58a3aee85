"""Caring contacts: short texts that ask nothing, planned when a crisis alert is acknowledged.

The words and times live in flows/definitions/plans.toml (`[plans.caring]`); they are
ordinary scheduled messages, so they go out only inside the sending window, respect
the 3-a-day cap, and are cancelled by STOP or DELETE like everything else pending.
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot import scheduling
from bot.storage.models import Participant

log = logging.getLogger(__name__)

PLAN = "caring"


def plan_after_crisis(services, db, participant_id: int, now: datetime) -> int:
    """Plan the caring texts from now (replacing any still pending); returns how many."""
    participant = db.get(Participant, participant_id)
    if participant is None or participant.status != "active":
        return 0  # opted out, deleted or not yet consented: no texts at all
    rows = scheduling.place_plan(services, db, participant, now, PLAN, now)
    log.info("caring contacts planned for participant %s: %d", participant_id, len(rows))
    return len(rows)
