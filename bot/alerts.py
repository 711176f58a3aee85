"""Care-team alerts: one open alert per participant and level, paged until someone acknowledges it.

A page names the level, the category and a participant reference, never the
participant's words: the care team looks those up with `flask --app bot alerts`.
Further risky texts attach to the open alert (a count and their times) instead
of opening new ones; re-pages back off (REPAGE_BACKOFF) and stop at the
acknowledgement. Every page attempt is recorded with what the SMS provider said,
so a reply only claims "your care team has been told" when a page was accepted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from bot import caring, queue
from bot.logsafe import mask_phone
from bot.sms import SendError
from bot.storage.models import Alert, AlertPage, AlertSignal, Participant

log = logging.getLogger(__name__)

REPAGE_BACKOFF = (timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1))
"""Waits before the 2nd, 3rd and 4th page of an unacknowledged alert; hourly after that."""

REPAGE_EVERY = timedelta(hours=1)
"""The wait between later pages, for as long as nobody acknowledges."""

PAGE_SLOT_WAIT = 5.0
"""Seconds a worker's page waits for a rate-limit slot before it goes anyway (Twilio
queues a short excess; a care team must not wait behind a batch of nudges)."""

INLINE_SLOT_WAIT = 1.0
"""The same wait for the first page sent inside a webhook turn (Twilio allows 15 s)."""

FIRST_PAGE_GRACE = timedelta(seconds=30)
"""An alert never paged this long after it was raised is paged by the scheduler
(its page was lost)."""

RETRY_UNACCEPTED_AFTER = timedelta(minutes=1)
"""A new risky text pages again at once when no page of the open alert was accepted yet
and the last attempt is at least this old (the provider may have recovered)."""

CATEGORY_WORDS = {
    "unanswered_check": "unanswered safety check",
    "repeated_check": "second uncertain text within 2 hours",
    "check_yes": "answered YES to the safety check",
}
"""How a category reads in a page (the rest are shown as they are)."""


def raise_alert(turn, level: str, category: str | None) -> Alert:
    """Open an alert, or attach this signal to the participant's open one of the same level."""
    alert = turn.db.scalars(select(Alert).where(
        Alert.participant_id == turn.participant.id, Alert.level == level,
        Alert.status == "open").order_by(Alert.id).limit(1).with_for_update()).first()
    if alert is None:
        alert = Alert(participant_id=turn.participant.id, level=level, category=category,
                      status="open", created_at=turn.now, signals=1, page_count=0,
                      last_signal_at=turn.now)
        turn.db.add(alert)
        turn.db.flush()
        log.warning("alert %s raised: level=%s category=%s", alert.id, level, category)
    else:
        alert.signals += 1
        alert.last_signal_at = turn.now
        log.warning("alert %s: another %s signal (%d in all)", alert.id, level, alert.signals)
    turn.db.add(AlertSignal(alert_id=alert.id, at=turn.now, category=category))
    turn.alert_ids.append(alert.id)
    return alert


def page_text(alert: Alert, participant: Participant, program: str) -> str:
    """The care team's text: level, category, participant reference; no message text."""
    category = CATEGORY_WORDS.get(alert.category or "", alert.category or "unspecified")
    times = f", {alert.signals} texts" if alert.signals > 1 else ""
    return (f"{program} alert #{alert.id}: {alert.level.upper()} "
            f"({category}{times}) for participant #{participant.id} "
            f"(phone ending {participant.phone_last4}). Please review and acknowledge.")


def next_page_at(alert: Alert) -> datetime | None:
    """When an open alert pages again (None: never paged yet)."""
    if alert.last_paged_at is None:
        return None
    rounds = max(1, alert.page_count)
    wait = REPAGE_BACKOFF[rounds - 1] if rounds <= len(REPAGE_BACKOFF) else REPAGE_EVERY
    return alert.last_paged_at + wait


def accepted_pages(db, alert_id: int) -> int:
    """How many page attempts of an alert the SMS provider accepted."""
    return db.scalar(select(func.count()).select_from(AlertPage).where(
        AlertPage.alert_id == alert_id, AlertPage.outcome == "accepted")) or 0


def page(services, alert_id: int, *, slot_wait: float = PAGE_SLOT_WAIT,
         urgent_retry: bool = False) -> int:
    """Text every care-team number about an open alert when a page is due; returns accepted.

    urgent_retry: a new signal arrived and no page was accepted yet: try again now.
    """
    now = services.clock.now()
    with services.db.session() as db:
        alert = db.get(Alert, alert_id, with_for_update=True)
        if alert is None or alert.status != "open":
            return 0
        due = next_page_at(alert)
        if due is not None and now < due:
            retry_now = (urgent_retry and accepted_pages(db, alert_id) == 0
                         and now - alert.last_paged_at >= RETRY_UNACCEPTED_AFTER)
            if not retry_now:
                return 0  # a duplicate job, or not yet time: this page already went out
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
    attempts = []
    for number in numbers:
        _wait_for_slot(services, slot_wait)
        try:
            result = services.sender.send(number, text)
            attempts.append(AlertPage(alert_id=alert_id, at=now, to_last4=number[-4:],
                                      outcome="accepted", twilio_sid=result.sid))
        except Exception as error:  # one number failing must not stop the others
            code = error.code if isinstance(error, SendError) else None
            log.exception("paging %s about alert %s failed", mask_phone(number), alert_id)
            attempts.append(AlertPage(alert_id=alert_id, at=now, to_last4=number[-4:],
                                      outcome="failed", error_code=code))
    with services.db.session() as db:
        db.add_all(attempts)
    sent = sum(1 for a in attempts if a.outcome == "accepted")
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


def _wait_for_slot(services, wait: float) -> None:
    """Keep pages inside the sender rate limit, but never hold one back for long."""
    try:
        services.rate_limiter.acquire(wait)
    except Exception:  # Redis is down: the page matters more than the pacing
        log.warning("rate limit unavailable; paging without it")


def due_alert_ids(db, now: datetime) -> list[int]:
    """In db's transaction: open alerts whose first page was lost or whose re-page is due.

    The same back-off as next_page_at(), in SQL: after round 1 wait 15 min, after round
    2 wait 30 min, after round 3 and later wait an hour.
    """
    first, second, later = REPAGE_BACKOFF[0], REPAGE_BACKOFF[1], REPAGE_EVERY
    return list(db.scalars(select(Alert.id).where(
        Alert.status == "open",
        or_(
            (Alert.last_paged_at.is_(None)) & (Alert.created_at < now - FIRST_PAGE_GRACE),
            (Alert.page_count <= 1) & (Alert.last_paged_at <= now - first),
            (Alert.page_count == 2) & (Alert.last_paged_at <= now - second),
            (Alert.page_count >= len(REPAGE_BACKOFF)) & (Alert.last_paged_at <= now - later),
        ))))


def page_due(services, now: datetime, *, enqueue: bool) -> list[int]:
    """Open alerts whose first page was lost or whose (backed-off) re-page is due."""
    with services.db.session() as db:
        ids = due_alert_ids(db, now)
    for alert_id in ids:
        if enqueue:
            queue.enqueue_alert_page(services, alert_id)
        else:
            page(services, alert_id)
    return ids


def acknowledge(services, alert_id: int, who: str) -> bool:
    """Close an alert (caring texts follow a crisis); False when there is no such open alert."""
    now = services.clock.now()
    with services.db.session() as db:
        alert = db.get(Alert, alert_id)
        if alert is None or alert.status != "open":
            return False
        alert.status, alert.acked_at, alert.acked_by = "acknowledged", now, who
        if alert.level == "crisis":
            caring.plan_after_crisis(services, db, alert.participant_id, now)
        return True


def open_alerts(services) -> list[dict]:
    """Open alerts grouped by participant (most urgent level first), with page outcomes."""
    with services.db.session() as db:
        rows = db.execute(select(Alert, Participant.phone_last4)
                          .join(Participant, Participant.id == Alert.participant_id)
                          .where(Alert.status == "open").order_by(Alert.id)).all()
        outcomes = dict.fromkeys((a.id for a, _ in rows), None)
        counts: dict[int, dict[str, int]] = {i: {"accepted": 0, "failed": 0} for i in outcomes}
        if outcomes:
            for alert_id, outcome, n in db.execute(
                    select(AlertPage.alert_id, AlertPage.outcome, func.count())
                    .where(AlertPage.alert_id.in_(list(outcomes)))
                    .group_by(AlertPage.alert_id, AlertPage.outcome)):
                counts[alert_id][outcome] = n
        rank = {"crisis": 0, "urgent": 1, "check": 2}
        listed = [{"id": a.id, "level": a.level, "category": a.category,
                   "participant": a.participant_id, "phone_last4": last4,
                   "created_at": a.created_at.isoformat(), "signals": a.signals,
                   "last_signal_at": (a.last_signal_at or a.created_at).isoformat(),
                   "rounds": a.page_count,
                   "attempted": counts[a.id]["accepted"] + counts[a.id]["failed"],
                   "accepted": counts[a.id]["accepted"], "failed": counts[a.id]["failed"]}
                  for a, last4 in rows]
        first_seen = {}
        for row in listed:
            first_seen.setdefault(row["participant"], row["id"])
        listed.sort(key=lambda r: (first_seen[r["participant"]], rank.get(r["level"], 9)))
        return listed
