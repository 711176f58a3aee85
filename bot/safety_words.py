"""Honest safety replies: page the care team first, then say "has been told" only if true.

Runs after a turn commits and before its replies leave (TwiML, or the REST queue).
Each alert the turn raised or joined is paged at once when a page is due; a reply
whose template has a ".told" variant (flows/definitions/safety.toml) is swapped to
it only when at least one page of that participant's alert was accepted by the SMS
provider. With no care-team number, or every page refused, the plain words go out.
"""

from __future__ import annotations

import logging

from bot import alerts
from bot.storage.models import Message

log = logging.getLogger(__name__)

TOLD = ".told"


def finish(services, alert_ids: list[int], keys: list[str], reply_ids: list[int],
           texts: list[str]) -> list[str]:
    """Page what the turn raised, then pick each reply's honest words; returns the texts."""
    if not alert_ids:
        return texts
    told = False
    for alert_id in dict.fromkeys(alert_ids):
        try:
            alerts.page(services, alert_id, slot_wait=alerts.INLINE_SLOT_WAIT,
                        urgent_retry=True)
        except Exception:  # the clock pass pages it (FIRST_PAGE_GRACE); the reply still goes
            log.exception("paging alert %s inside the turn failed", alert_id)
    try:
        with services.db.session() as db:
            told = any(alerts.accepted_pages(db, a) > 0 for a in set(alert_ids))
    except Exception:
        log.exception("could not read page outcomes; replying without 'has been told'")
    if not told:
        return texts
    messages = services.definitions.messages
    final = list(texts)
    swaps = {}
    for i, key in enumerate(keys):
        if key and key + TOLD in messages:
            final[i] = services.definitions.render(key + TOLD, services.variables)
            if i < len(reply_ids):
                swaps[reply_ids[i]] = (key + TOLD, final[i])
    if swaps:
        with services.db.session() as db:
            for row_id, (key, text) in swaps.items():
                row = db.get(Message, row_id)
                if row is not None and row.body is not None:
                    row.key, row.body = key, text
    return final
