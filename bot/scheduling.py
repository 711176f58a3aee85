"""Turning plans into scheduled_messages rows, and due rows into RQ jobs.

The database is the only source of truth for timers: a row per message,
unique on (participant, kind, scope). `dispatch_due()` hands due rows to RQ
(and hands them again if Redis lost them); workers claim each row in the
database before sending, so a row handed over twice is still sent once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, literal_column, or_, select, union_all, update

from bot import alerts, queue, reconcile, safety_checks, spool
from bot import participants as people
from bot.participants import cancel_pending
from bot.storage.models import Message, Participant, ScheduledMessage, Session
from flows import schedule
from flows.quoting import fits, quote

log = logging.getLogger(__name__)

REQUEUE_AFTER = timedelta(seconds=20)
"""A due row handed to RQ this long ago and still pending is handed over again
(its job was lost with Redis, or is stuck behind a dead worker)."""

BATCH_SIZE = 50
"""Most scheduled-message ids per RQ job: one job claims a batch and sends it with a
thread pool."""

BATCH_SECONDS = 5.0
"""A batch holds at most this many seconds of sending at the rate limit (so at 1 msg/s
a worker does not claim 50 rows that would wait nearly a minute for their turn)."""

HANDOVER_SECONDS = REQUEUE_AFTER.total_seconds() / 2
"""Rows waiting in RQ unclaimed are kept to this many seconds of sending: a long backlog
stays in the database, so no row waits in the queue past REQUEUE_AFTER and is handed
over twice."""

DISPATCH_LIMIT = 5000
"""Most rows one dispatch pass hands over (the next pass takes the rest)."""

INBOUND_RETRY_AFTER = timedelta(seconds=30)
"""An inbound text still unprocessed this long after it arrived goes to a worker; each
failed try doubles the wait before the next."""

MAX_INBOUND_ATTEMPTS = 5
"""Tries at processing one inbound text before it is left as `failed` for an operator
(a text that always crashes must not become a failed job every second forever)."""

MAX_OUTBOUND_ATTEMPTS = 6
"""Tries at sending one REST reply before it is left as `failed`."""

CAP_LOOKBACK = timedelta(hours=24)


def participant_view(participant: Participant, session: Session | None) -> schedule.ParticipantView:
    """What the pure scheduler needs to know about a participant."""
    return schedule.ParticipantView(
        timezone=participant.timezone,
        bedtime=people.parse_clock(participant.bedtime),
        paused_until=_later(participant.paused_until, participant.hold_until),
        has_therapist=participant.has_therapist,
        mindfulness_time=people.parse_clock(participant.mindfulness_time),
        has_action=bool(session and session.action),
    )


def schedule_plan(turn, plan_name: str, anchor_at: datetime) -> list[ScheduledMessage]:
    """Replace the participant's pending messages of plan_name with a fresh schedule."""
    return place_plan(turn.services, turn.db, turn.participant, turn.now, plan_name,
                      anchor_at)


def place_plan(services, db, p: Participant, now: datetime, plan_name: str,
               anchor_at: datetime) -> list[ScheduledMessage]:
    """schedule_plan outside a turn (caring texts after a crisis is acknowledged)."""
    plan = services.definitions.plans.get(plan_name)
    if plan is None:
        log.warning("no plan named %s; nothing scheduled", plan_name)
        return []
    # A new DONE replaces the previous session's plan instead of stacking a second one.
    cancel_pending(db, p.id, now, plan=plan_name)
    db.flush()
    session = _anchor_session(db, p, plan.anchor, now)
    plan = _without_settled(db, p.id, plan, session, anchor_at)
    existing = _existing_due_times(db, p.id, anchor_at, now)
    planned = schedule.plan_messages(plan, participant_view(p, session), anchor_at, now, existing)
    rows = []
    variables = {**services.variables, "name": p.name or "",
                 "action": quote(session.action) if session and session.action else ""}
    scopes = [_scope(plan_name, session, anchor_at, item.scope) for item in planned]
    known = {(row.kind, row.scope): row for row in db.scalars(select(ScheduledMessage).where(
        ScheduledMessage.participant_id == p.id,
        ScheduledMessage.scope.in_(set(scopes))))} if planned else {}
    for item, scope in zip(planned, scopes, strict=True):
        row = known.get((item.kind, scope))
        if row is None:
            row = ScheduledMessage(participant_id=p.id, kind=item.kind, scope=scope,
                                   created_at=now)
            db.add(row)
        elif row.status not in ("pending", "cancelled"):
            continue  # already went out: never send the same (kind, scope) twice
        row.session_id = session.id if session else None
        row.plan, row.message_key, row.priority = plan_name, item.message, item.priority
        row.condition, row.expects_reply = item.condition, item.expects_reply
        row.body = _body(services.definitions, item.message, variables)
        row.due_at, row.expires_at = item.due_at, item.expires_at
        row.status, row.lease_until, row.enqueued_at = "pending", None, None
        row.attempts, row.error_code, row.updated_at = 0, None, now
        rows.append(row)
    db.flush()
    log.info("scheduled plan=%s messages=%d", plan_name, len(rows))
    return rows


def _body(definitions, key: str, variables: dict[str, str]) -> str:
    """The nudge's words; when a quote of the participant would make it unfit to send
    (not GSM-7, over 2 segments), the words without the quote (the key's ".plain")."""
    text = definitions.render(key, variables)
    plain = f"{key}.plain"
    if not fits(text) and plain in definitions.messages:
        return definitions.render(plain, variables)
    return text


def _without_settled(db, participant_id: int, plan, session: Session | None,
                     anchor_at: datetime):
    """The plan minus nudges already sent or settled: a re-plan never repeats them."""
    scopes = {_scope(plan.name, session, anchor_at, n.scope): n for n in plan.nudges}
    settled = set(db.execute(select(ScheduledMessage.kind, ScheduledMessage.scope).where(
        ScheduledMessage.participant_id == participant_id,
        ScheduledMessage.scope.in_(list(scopes)),
        ScheduledMessage.status.not_in(("pending", "cancelled")))).all())
    if not settled:
        return plan
    keep = tuple(n for scope, n in scopes.items() if (n.kind, scope) not in settled)
    return replace(plan, nudges=keep)


def _anchor_session(db, participant: Participant, anchor: str, now: datetime) -> Session | None:
    """The session a plan belongs to (none for the course-end plan)."""
    if anchor == "session_done":
        return people.last_done_session(db, participant)
    if anchor == "session_scheduled":
        return people.open_session(db, participant, now)
    return None


def _scope(plan_name: str, session: Session | None, anchor_at: datetime, scope: str) -> str:
    """The stored scope: unique per session (or per course end) and per nudge."""
    if session is not None:
        return f"s{session.id}:{scope}"
    return f"{plan_name}:{anchor_at:%Y%m%d%H%M}:{scope}"


def _existing_due_times(db, participant_id: int, anchor_at: datetime, now: datetime):
    """Due times of the participant's other live messages, for the rolling cap."""
    since = min(anchor_at, now) - CAP_LOOKBACK
    return list(db.scalars(select(ScheduledMessage.due_at).where(
        ScheduledMessage.participant_id == participant_id,
        ScheduledMessage.status.in_(("pending", "sending", "sent", "delivered")),
        ScheduledMessage.due_at >= since,
    )))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    """The later of two optional instants."""
    if a is None or b is None:
        return a or b
    return max(a, b)


# ---------------------------------------------------------------- dispatch


def _const(value: str):
    """A status written into the SQL as a constant, so the clock's partial indexes match.

    PostgreSQL (under a generic plan) and SQLite can only prove a partial index's
    predicate from constants in the query, not from bound parameters.
    """
    if not value.isidentifier():
        raise ValueError(f"not a status name: {value!r}")
    return literal_column(f"'{value}'")


def _pending():
    """A pending timer (matches ix_scheduled_pending_due)."""
    return ScheduledMessage.status == _const("pending")


def _due(now: datetime):
    """The condition of a pending row whose time has come."""
    return and_(_pending(), ScheduledMessage.due_at <= now)


def _inbound_waiting(now: datetime):
    """Inbound texts stored but never answered (matches ix_messages_inbound_waiting)."""
    return and_(Message.direction == _const("in"),
                Message.status.in_([_const("received"), _const("failed")]),
                Message.updated_at < now - INBOUND_RETRY_AFTER)


def _outbound_queued(now: datetime):
    """Replies queued for the REST API (matches ix_messages_outbound_queued)."""
    return and_(Message.direction == _const("out"), Message.status == _const("queued"),
                Message.updated_at < now - INBOUND_RETRY_AFTER)


def handover_cap(rate_per_second: float) -> int:
    """Most due rows waiting in RQ at once: HANDOVER_SECONDS of sending, at least a batch."""
    return max(BATCH_SIZE, int(rate_per_second * HANDOVER_SECONDS))


def release_leases(db, now: datetime) -> int:
    """In db's transaction: rows whose worker died mid-send go back to pending."""
    result = db.execute(update(ScheduledMessage).where(  # found through ix_scheduled_due
        ScheduledMessage.status == _const("sending"), ScheduledMessage.lease_until < now,
    ).values(status="pending", lease_until=None, enqueued_at=None, updated_at=now)
        .execution_options(synchronize_session=False))  # no ORM objects to refresh
    return result.rowcount or 0


def release_expired_leases(services, now: datetime) -> int:
    """Rows claimed by a worker that died mid-send: recorded as sent if the provider has
    them (bot.reconcile), else back to pending. Returns how many were settled."""
    outcomes = reconcile.expired_scheduled(services, now)
    return outcomes.get("released", 0) + outcomes.get("reconciled", 0)


def claim_due(db, now: datetime, cap: int, limit: int = DISPATCH_LIMIT) -> list[int]:
    """In db's transaction, one statement: mark due rows handed over; their ids in due order.

    Rows handed over less than REQUEUE_AFTER ago and still pending count as waiting
    in RQ; the pass tops them up to `cap` (at most `limit`). On PostgreSQL the picked
    rows are locked with SKIP LOCKED, so two clocks never hand over the same row in the
    same pass; SQLite's BEGIN IMMEDIATE already serialises writers.
    """
    cutoff = now - REQUEUE_AFTER
    waiting = func.count()
    room = (select(case((waiting >= cap, 0), (cap - waiting > limit, limit),
                        else_=cap - waiting))
            .select_from(ScheduledMessage)
            .where(_due(now), ScheduledMessage.enqueued_at >= cutoff)
            .scalar_subquery())
    picked = (select(ScheduledMessage.id)
              .where(_due(now), or_(ScheduledMessage.enqueued_at.is_(None),
                                    ScheduledMessage.enqueued_at < cutoff))
              .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
              .limit(room)
              .with_for_update(skip_locked=True))
    rows = db.execute(update(ScheduledMessage).where(ScheduledMessage.id.in_(picked))
                      .values(enqueued_at=now)
                      .returning(ScheduledMessage.id, ScheduledMessage.due_at)
                      .execution_options(synchronize_session=False)).all()
    return [row.id for row in sorted(rows, key=lambda r: (r.due_at, r.id))]


def due_ids(services, now: datetime, limit: int = DISPATCH_LIMIT) -> list[int]:
    """Pending rows that are due and not handed to RQ recently; marks them handed over."""
    cap = handover_cap(services.settings.sms_max_per_second)
    with services.db.session() as db:
        return claim_due(db, now, cap, limit)


def all_due_ids(services, now: datetime, limit: int = DISPATCH_LIMIT) -> list[int]:
    """Every pending row that is due, handed to RQ or not (`nudges run-due`)."""
    with services.db.session() as db:
        return list(db.scalars(select(ScheduledMessage.id).where(_due(now))
                               .order_by(ScheduledMessage.due_at, ScheduledMessage.id)
                               .limit(limit)))


def batch_size(rate_per_second: float) -> int:
    """Ids per job: BATCH_SECONDS of sending at the rate limit, 1 to BATCH_SIZE."""
    return max(1, min(BATCH_SIZE, int(rate_per_second * BATCH_SECONDS)))


def retry_delay(attempts: int) -> timedelta:
    """How long a text that failed `attempts` times waits before its next try."""
    return INBOUND_RETRY_AFTER * (2 ** max(0, attempts - 1))


def stuck_messages(db, now: datetime) -> tuple[list[int], list[int]]:
    """In db's transaction: (unanswered inbound ids, lost REST reply ids) due for another
    try, each marked handed over so the next pass does not hand it over again.

    A text that keeps failing backs off (30 s, doubling) and is left `failed` after
    MAX_INBOUND_ATTEMPTS (MAX_OUTBOUND_ATTEMPTS for replies) instead of becoming a
    failed job every second forever.
    """
    rows = db.execute(union_all(
        select(Message.id, Message.direction, Message.attempts, Message.updated_at)
        .where(_inbound_waiting(now)),
        select(Message.id, Message.direction, Message.attempts, Message.updated_at)
        .where(_outbound_queued(now)),
    )).all()
    cap = {"in": MAX_INBOUND_ATTEMPTS, "out": MAX_OUTBOUND_ATTEMPTS}
    due = [row for row in rows if row.attempts < cap[row.direction]
           and row.updated_at < now - retry_delay(row.attempts)]
    if due:
        db.execute(update(Message).where(Message.id.in_([row.id for row in due]))
                   .values(updated_at=now).execution_options(synchronize_session=False))
    inbound = sorted(row.id for row in due if row.direction == "in")
    outbound = sorted(row.id for row in due if row.direction == "out")
    return inbound, outbound


def stuck_inbound_ids(services, now: datetime) -> list[int]:
    """Inbound texts stored but never answered (crash or lost job), due for another try."""
    with services.db.session() as db:
        return stuck_messages(db, now)[0]


def stuck_outbound_ids(services, now: datetime) -> list[int]:
    """Replies queued for the REST API whose job was lost or whose send must be retried."""
    with services.db.session() as db:
        return stuck_messages(db, now)[1]


def dispatch_due(services, now: datetime | None = None) -> int:
    """One scheduler pass: settle dead leases, hand due rows and stuck work to RQ.

    Expired leases and unsettled REST replies are reconciled first (bot.reconcile: a
    provider lookup per row, rare); then one transaction (due rows, stuck texts, alerts
    to page again); the hand-over is one Redis pipeline, after the commit.
    """
    now = now or services.clock.now()
    # Unsettled sends first: each is looked up at the provider before anything is released
    # (a blind release would send again what Twilio already accepted).
    release_expired_leases(services, now)
    reconcile.stale_replies(services, now)
    rate = services.settings.sms_max_per_second
    with services.db.session() as db:
        ids = claim_due(db, now, handover_cap(rate))
        inbound, outbound = stuck_messages(db, now)
        pages = alerts.due_alert_ids(db, now)
    size = batch_size(rate)
    batches = [ids[start:start + size] for start in range(0, len(ids), size)]
    # Before the Redis hand-over, which fails while Redis is down: questions nobody
    # answered in time, and texts spooled to this host's file during an outage.
    safety_checks.page_unanswered(services, now)
    if spool.file_waiting(services):
        spool.replay(services)
    spooled = queue.enqueue_dispatch(services, batches, inbound, outbound, pages,
                                     count_hash=spool.REDIS_KEY)  # same round trip
    if spooled:
        spool.replay(services)  # texts kept in Redis while the database was away
    return len(ids)


def pending_count(services, now: datetime) -> int:
    """How many pending rows are due now (operators watching the queue)."""
    with services.db.session() as db:
        return db.scalar(select(func.count()).select_from(ScheduledMessage).where(_due(now)))
