"""Care-team alerts: a row per crisis or urgent signal, paged until someone acknowledges it.

A page names the level, the category and a participant reference, never the
participant's words: the care team looks those up with `flask --app bot alerts`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from bot.logsafe import mask_phone
from bot.storage.models import Alert, Participant

log = logging.getLogger(__name__)

REPAGE_AFTER = timedelta(minutes=15)
"""An open alert pages the care team again after this long without an acknowledgement."""

PAGE_SLOT_WAIT = 5.0
"""Seconds a page waits for a rate-limit slot before it goes anyway (Twilio queues
a short excess; a care team must not wait behind a batch of nudges)."""

FIRST_PAGE_GRACE = timedelta(seconds=30)
"""An alert never paged this long after it was raised is paged by the scheduler
(its job was lost)."""


def raise_alert(turn, level: str, category: str | None) -> Alert:
    """Record an alert in the turn's transaction and page once it commits."""
    alert = Alert(participant_id=turn.participant.id, level=level, category=category,
                  status="open", created_at=turn.now)
    turn.db.add(alert)
    turn.db.flush()
    alert_id, services = alert.id, turn.services
    log.warning("alert %s raised: level=%s category=%s", alert_id, level, category)

    def page_after_commit() -> None:
        from bot import jobs

        try:
            jobs.enqueue_alert_page(services, alert_id)
        except Exception:
            log.exception("could not enqueue page for alert %s; paging now", alert_id)
            page(services, alert_id)

    turn.after_commit.append(page_after_commit)
    return alert


def page_text(alert: Alert, participant: Participant, program: str) -> str:
    """The care team's text: level, category, participant reference; no message text."""
    return (f"{program} alert #{alert.id}: {alert.level.upper()} "
            f"({alert.category or 'unspecified'}) for participant #{participant.id} "
            f"(phone ending {participant.phone_last4}). Please review and acknowledge.")


def page(services, alert_id: int) -> int:
    """Text every care-team number about an open alert; returns how many got it."""
    now = services.clock.now()
    with services.db.session() as db:
        alert = db.get(Alert, alert_id, with_for_update=True)
        if alert is None or alert.status != "open":
            return 0
        if alert.last_paged_at and now - alert.last_paged_at < REPAGE_AFTER:
            return 0  # a duplicate job: this page already went out
        participant = db.get(Participant, alert.participant_id)
        text = page_text(alert, participant, services.settings.program_name)
        # Claimed for this page (a duplicate job sees it and stops); undone below if no
        # number got it, so the next clock pass pages again instead of 15 minutes later.
        previous = alert.last_paged_at
        alert.page_count += 1
        alert.last_paged_at = now
    numbers = services.settings.care_team_numbers
    if not numbers:
        log.error("alert %s: CARE_TEAM_NUMBERS is empty; nobody was paged", alert_id)
        return 0
    sent = 0
    for number in numbers:
        _wait_for_slot(services)
        try:
            services.sender.send(number, text)
            sent += 1
        except Exception:
            log.exception("paging %s about alert %s failed", mask_phone(number), alert_id)
    if not sent:
        _unclaim(services, alert_id, now, previous)
    return sent


def _unclaim(services, alert_id: int, claimed_at: datetime, previous: datetime | None) -> None:
    """Nobody was paged: the alert is due for paging again at the next pass."""
    with services.db.session() as db:
        alert = db.get(Alert, alert_id, with_for_update=True)
        if alert is not None and alert.last_paged_at == claimed_at:
            alert.page_count -= 1
            alert.last_paged_at = previous
    log.error("alert %s: no care-team number took the page; paging again next pass", alert_id)


def _wait_for_slot(services) -> None:
    """Keep pages inside the sender rate limit, but never hold one back for long."""
    try:
        services.rate_limiter.acquire(PAGE_SLOT_WAIT)
    except Exception:  # Redis is down: the page matters more than the pacing
        log.warning("rate limit unavailable; paging without it")


def due_alert_ids(db, now: datetime) -> list[int]:
    """In db's transaction: open alerts whose first page was lost or whose re-page is due."""
    return list(db.scalars(select(Alert.id).where(
        Alert.status == "open",
        or_(
            (Alert.last_paged_at.is_(None)) & (Alert.created_at < now - FIRST_PAGE_GRACE),
            Alert.last_paged_at < now - REPAGE_AFTER,
        ))))


def page_due(services, now: datetime, *, enqueue: bool) -> list[int]:
    """Open alerts whose first page was lost or whose re-page is due."""
    with services.db.session() as db:
        ids = due_alert_ids(db, now)
    for alert_id in ids:
        if enqueue:
            from bot import jobs

            jobs.enqueue_alert_page(services, alert_id)
        else:
            page(services, alert_id)
    return ids


def acknowledge(services, alert_id: int, who: str) -> bool:
    """Close an alert; False when there is no such open alert."""
    now = services.clock.now()
    with services.db.session() as db:
        alert = db.get(Alert, alert_id)
        if alert is None or alert.status != "open":
            return False
        alert.status, alert.acked_at, alert.acked_by = "acknowledged", now, who
        return True


def open_alerts(services) -> list[dict]:
    """Open alerts, oldest first, for the operator."""
    with services.db.session() as db:
        rows = db.execute(select(Alert, Participant.phone_last4)
                          .join(Participant, Participant.id == Alert.participant_id)
                          .where(Alert.status == "open").order_by(Alert.id)).all()
        return [{"id": a.id, "level": a.level, "category": a.category,
                 "participant": a.participant_id, "phone_last4": last4,
                 "created_at": a.created_at.isoformat(), "pages": a.page_count}
                for a, last4 in rows]
