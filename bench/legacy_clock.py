"""The clock pass as it was before issue 12, kept to time it in the same run.

Five transactions, a COUNT, a SELECT and a 1,000-literal `IN` update for the due
rows, stuck-message queries with bound parameters (no index matched them), and
one Redis round trip per job. Only `python -m bench dispatch` uses it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select, update

from bot import alerts, queue, scheduling
from bot.storage.models import Message, ScheduledMessage


def _due(now: datetime):
    """A pending row whose time has come (bound parameters, as before)."""
    return and_(ScheduledMessage.status == "pending", ScheduledMessage.due_at <= now)


def release_expired_leases(services, now: datetime) -> int:
    """Rows claimed by a worker that died mid-send go back to pending."""
    with services.db.session() as db:
        result = db.execute(update(ScheduledMessage).where(
            ScheduledMessage.status == "sending", ScheduledMessage.lease_until < now,
        ).values(status="pending", lease_until=None, enqueued_at=None, updated_at=now))
        return result.rowcount or 0


def due_ids(services, now: datetime, limit: int = scheduling.DISPATCH_LIMIT) -> list[int]:
    """COUNT the waiting rows, SELECT the due ids, UPDATE ... WHERE id IN (literal ids)."""
    rate = services.settings.sms_max_per_second
    with services.db.session() as db:
        waiting = db.scalar(select(func.count()).select_from(ScheduledMessage).where(
            _due(now), ScheduledMessage.enqueued_at >= now - scheduling.REQUEUE_AFTER))
        room = min(limit, max(scheduling.BATCH_SIZE,
                              int(rate * scheduling.HANDOVER_SECONDS)) - waiting)
        if room <= 0:
            return []
        ids = list(db.scalars(select(ScheduledMessage.id).where(_due(now), or_(
            ScheduledMessage.enqueued_at.is_(None),
            ScheduledMessage.enqueued_at < now - scheduling.REQUEUE_AFTER,
        )).order_by(ScheduledMessage.due_at, ScheduledMessage.id).limit(room)))
        if ids:
            db.execute(update(ScheduledMessage).where(ScheduledMessage.id.in_(ids))
                       .values(enqueued_at=now))
        return ids


def stuck_inbound_ids(services, now: datetime) -> list[int]:
    """Inbound texts never answered (a scan of `messages`)."""
    with services.db.session() as db:
        return list(db.scalars(select(Message.id).where(
            Message.direction == "in", Message.status.in_(("received", "failed")),
            Message.updated_at < now - scheduling.INBOUND_RETRY_AFTER)))


def stuck_outbound_ids(services, now: datetime) -> list[int]:
    """REST replies whose job was lost (a second scan of `messages`)."""
    with services.db.session() as db:
        return list(db.scalars(select(Message.id).where(
            Message.direction == "out", Message.status == "queued",
            Message.updated_at < now - scheduling.INBOUND_RETRY_AFTER)))


def dispatch_due(services, now: datetime) -> int:
    """The old pass: each step its own transaction, one enqueue per job."""
    release_expired_leases(services, now)
    ids = due_ids(services, now)
    size = scheduling.batch_size(services.settings.sms_max_per_second)
    for start in range(0, len(ids), size):
        queue.enqueue_scheduled(services, ids[start:start + size])
    for message_id in stuck_inbound_ids(services, now):
        queue.enqueue_inbound_retry(services, message_id)
    stuck = stuck_outbound_ids(services, now)
    if stuck:
        queue.enqueue_outbound(services, stuck)
    alerts.page_due(services, now, enqueue=True)
    return len(ids)
