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
from functools import cache

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)

from bot import alerts, queue, reconcile, safety_checks, spool
from bot import participants as people
from bot.storage import insert_for
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

LIVE = ("pending", "sending", "sent", "delivered")
"""Statuses of a message that went out or still will: they count towards the cap."""


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


def schedule_plan(turn, plan_name: str, anchor_at: datetime) -> list[int]:
    """Replace the participant's pending messages of plan_name with a fresh schedule."""
    return place_plan(turn.services, turn.db, turn.participant, turn.now, plan_name,
                      anchor_at, sessions=turn.sessions)


REPLACED = ("session_id", "plan", "message_key", "priority", "condition", "expects_reply",
            "body", "due_at", "expires_at", "status", "lease_until", "enqueued_at",
            "attempts", "error_code", "updated_at")
"""What placing a plan again writes over in a row it already has (pending or cancelled)."""


def place_plan(services, db, p: Participant, now: datetime, plan_name: str,
               anchor_at: datetime, *, sessions=None) -> list[int]:
    """schedule_plan outside a turn (caring texts after a crisis is acknowledged); returns
    the ids of the rows placed. sessions: the turn's people.TurnSessions, when in a turn.

    Three statements whatever the plan's size: cancel the plan's pending rows, read the
    participant's rows that matter (this plan's, and the live ones the cap counts), and
    one multi-row upsert on (participant, kind, scope).
    """
    plan = services.definitions.plans.get(plan_name)
    if plan is None:
        log.warning("no plan named %s; nothing scheduled", plan_name)
        return []
    # A new DONE replaces the previous session's plan instead of stacking a second one.
    db.execute(_CANCEL_PLAN, {"participant": p.id, "plan_name": plan_name, "now": now})
    session = _anchor_session(db, p, plan.anchor, now, sessions)
    scopes = {_scope(plan_name, session, anchor_at, n.scope): n for n in plan.nudges}
    since = min(anchor_at, now) - CAP_LOOKBACK
    known = _rows_that_matter(db, p.id, list(scopes), since)
    # Nudges already sent or settled are left out: a re-plan never repeats them.
    settled = {(row.kind, row.scope) for row in known
               if row.scope in scopes and row.status not in ("pending", "cancelled")}
    if settled:
        plan = replace(plan, nudges=tuple(n for scope, n in scopes.items()
                                          if (n.kind, scope) not in settled))
    # Due times of the participant's other live messages, for the rolling cap.
    existing = [row.due_at for row in known if row.status in LIVE and row.due_at >= since]
    planned = schedule.plan_messages(plan, participant_view(p, session), anchor_at, now, existing)
    variables = {**services.variables, "name": p.name or "",
                 "action": quote(session.action) if session and session.action else ""}
    rows = [{
        "participant_id": p.id, "kind": item.kind,
        "scope": _scope(plan_name, session, anchor_at, item.scope),
        "session_id": session.id if session else None, "plan": plan_name,
        "message_key": item.message, "priority": item.priority, "condition": item.condition,
        "expects_reply": item.expects_reply,
        "body": _body(services.definitions, item.message, variables),
        "due_at": item.due_at, "expires_at": item.expires_at, "status": "pending",
        "lease_until": None, "enqueued_at": None, "attempts": 0, "error_code": None,
        "created_at": now, "updated_at": now,
    } for item in planned]
    ids = _upsert(db, rows) if rows else []
    log.info("scheduled plan=%s messages=%d", plan_name, len(ids))
    return ids


_CANCEL_PLAN = (
    update(ScheduledMessage.__table__)
    .where(ScheduledMessage.participant_id == bindparam("participant"),
           ScheduledMessage.status == "pending", ScheduledMessage.plan == bindparam("plan_name"))
    .values(status="cancelled",
            updated_at=bindparam("now", type_=ScheduledMessage.updated_at.type)))
"""Cancel a participant's pending rows of one plan. Built once, on the table: a plan's
rows are written with Core statements only, so no ORM object of them needs syncing."""

_ROWS_THAT_MATTER = select(
    ScheduledMessage.kind, ScheduledMessage.scope, ScheduledMessage.status,
    ScheduledMessage.due_at,
).where(ScheduledMessage.participant_id == bindparam("participant"),
        or_(ScheduledMessage.scope.in_(bindparam("scopes", expanding=True)),
            and_(ScheduledMessage.status.in_(LIVE),
                 ScheduledMessage.due_at >= bindparam(
                     "since", type_=ScheduledMessage.due_at.type))))
"""_rows_that_matter's statement, built once."""


def _rows_that_matter(db, participant_id: int, scopes: list[str], since: datetime):
    """One read for placing a plan: the participant's rows in the plan's scopes (to skip
    what was already sent) and their live rows due since `since` (for the rolling cap)."""
    with db.no_autoflush:  # nothing pending in the session changes these rows
        return db.execute(_ROWS_THAT_MATTER, {
            "participant": participant_id, "scopes": scopes, "since": since}).all()


def _upsert(db, rows: list[dict]) -> list[int]:
    """Insert the plan's rows in one statement; a row already there is written over only
    while pending or cancelled (one that went out is never sent again). Returns the ids
    of the rows written."""
    statement = _upsert_statement(db.get_bind().dialect.name)
    # executemany with RETURNING: SQLAlchemy sends the rows as one multi-row INSERT
    # ("insertmanyvalues") from a statement compiled once, not rebuilt per plan.
    return list(db.scalars(statement, rows))


@cache
def _upsert_statement(dialect: str):
    """The plan rows' upsert for one database (built once)."""
    table = ScheduledMessage.__table__
    statement = insert_for(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=["participant_id", "kind", "scope"],
        set_={name: statement.excluded[name] for name in REPLACED},
        # Two comparisons, not IN: an expanding IN cannot be sent as executemany.
        where=or_(table.c.status == "pending", table.c.status == "cancelled"),
    ).returning(table.c.id)


def _body(definitions, key: str, variables: dict[str, str]) -> str:
    """The nudge's words; when a quote of the participant would make it unfit to send
    (not GSM-7, over 2 segments), the words without the quote (the key's ".plain")."""
    text = definitions.render(key, variables)
    plain = f"{key}.plain"
    if not fits(text) and plain in definitions.messages:
        return definitions.render(plain, variables)
    return text


def _anchor_session(db, participant: Participant, anchor: str, now: datetime,
                    sessions=None) -> Session | None:
    """The session a plan belongs to (none for the course-end plan)."""
    sessions = sessions or people.TurnSessions(db, participant)
    if anchor == "session_done":
        return sessions.last_done()
    if anchor == "session_scheduled":
        return sessions.open(now)
    return None


def _scope(plan_name: str, session: Session | None, anchor_at: datetime, scope: str) -> str:
    """The stored scope: unique per session (or per course end) and per nudge."""
    if session is not None:
        return f"s{session.id}:{scope}"
    return f"{plan_name}:{anchor_at:%Y%m%d%H%M}:{scope}"


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
