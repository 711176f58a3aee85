"""Sending what the database says is due, exactly once, and recording what Twilio said.

A scheduled row is claimed in the database (pending -> sending, with a lease
and an attempt number that acts as the claim's token) before anything is
sent, so two workers holding the same id send it once. Each row is checked at
claim time and again right before the API call, after its rate-limit slot is
won. A row still `sending` when its lease runs out (the worker died, or the
database went away after Twilio accepted the text) is reconciled against
Twilio's message list before anything is sent again (bot.reconcile); see
README, "Delivery guarantees", for the duplicate window that remains.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from bot import journal_links, runner
from bot import participants as people
from bot.logsafe import mask_phone
from bot.participants import cancel_pending
from bot.sms import SendError, classify
from bot.storage.models import Message, Participant, ScheduledMessage, Session
from flows import optout, schedule, sms_text

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
"""How long a claimed row belongs to one worker before another may take it."""

LEASE_SAFETY = timedelta(seconds=15)
"""A claimed row is sent only this long before its lease ends (longer than the API timeout)."""

SEND_THREADS = 32
"""Concurrent API calls per worker process: at 150 ms a call, 16 in flight carry 100 msg/s;
the rest wait on reserved rate-limit slots."""

RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                 timedelta(minutes=30), timedelta(hours=1))
"""Delay before each retry of a text Twilio could not take yet (429, 5xx, timeouts)."""

RECORD_RETRY_FIRST = 0.2
"""Seconds before the first retry of recording an accepted text (doubling each time)."""

RECORD_RETRY_MAX = 2.0
"""Longest pause between retries of recording an accepted text."""

RECORD_MARGIN = 5.0
"""Seconds before the lease ends at which a worker stops retrying and leaves the row to
reconciliation (so two processes never settle it at once)."""

OUTBOUND_SLOT_WAIT = 30.0
"""Seconds a REST reply waits for a rate-limit slot before going back to the queue (well
inside its 90 s lease, bot.reconcile.OUTBOUND_LEASE)."""

OUTBOUND_RECORD_PATIENCE = 45.0
"""Seconds a worker keeps trying to record a REST reply's outcome through a database outage."""

LIVE = ("active",)
"""Participant statuses that may receive scheduled messages."""

STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "undelivered": 3, "failed": 3,
               "delivered": 4, "read": 5}
"""Delivery statuses in order: a late 'sent' callback never overwrites 'delivered'."""


@dataclass(frozen=True)
class Outgoing:
    """A claimed row that passed its checks: everything needed to send and record it."""

    row_id: int
    token: int
    participant_id: int
    to: str
    body: str
    channel: str
    message_key: str
    expects_reply: str | None
    send_by: datetime


_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _send_pool() -> ThreadPoolExecutor:
    """One pool per process, kept between jobs so threads keep their Twilio client."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child has no threads
            _pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="send")
            _pool_pid = os.getpid()
        return _pool


def deliver_batch(services, ids: list[int]) -> dict[str, int]:
    """Claim and check a batch in one transaction, then send it concurrently."""
    outcomes: dict[str, int] = {}
    if not ids:
        return outcomes
    now = services.clock.now()
    claimed = claim(services, ids, now)
    outcomes["skipped"] = len(set(ids)) - len(claimed)
    outgoing = check(services, claimed, now, outcomes) if claimed else []
    if outgoing:
        # Build the sender and limiter here, once, before any thread holds a send slot.
        services.sender, services.rate_limiter  # noqa: B018
    for outcome in _send_pool().map(lambda out: _safe_send(services, out), outgoing):
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {name: count for name, count in outcomes.items() if count}


def claim(services, ids: list[int], now: datetime) -> dict[int, int]:
    """pending -> sending for this worker; returns each claimed id's token (attempt number)."""
    with services.db.session() as db:
        rows = db.execute(
            update(ScheduledMessage)
            .where(ScheduledMessage.id.in_(ids), ScheduledMessage.status == "pending",
                   ScheduledMessage.due_at <= now)
            .values(status="sending", lease_until=now + LEASE,
                    attempts=ScheduledMessage.attempts + 1, updated_at=now)
            .returning(ScheduledMessage.id, ScheduledMessage.attempts)
        ).all()
        return {row_id: token for row_id, token in rows}


def check(services, claimed: dict[int, int], now: datetime,
          outcomes: dict[str, int]) -> list[Outgoing]:
    """Decide which claimed rows go out now; settle the others in the same transaction."""
    outgoing = []
    with services.db.session() as db:
        pairs = db.execute(
            select(ScheduledMessage, Participant)
            .join(Participant, Participant.id == ScheduledMessage.participant_id)
            .where(ScheduledMessage.id.in_(list(claimed)))
            .order_by(ScheduledMessage.due_at, ScheduledMessage.id)).all()
        session_ids = {row.session_id for row, _ in pairs if row.condition and row.session_id}
        sessions = ({s.id: s for s in db.scalars(select(Session).where(
            Session.id.in_(session_ids)))} if session_ids else {})
        for row, p in pairs:
            verdict = _verdict(row, p, sessions.get(row.session_id), now)
            if verdict == "send":
                outgoing.append(Outgoing(
                    row.id, claimed[row.id], p.id, people.address_of(p), row.body or "",
                    p.channel, row.message_key, row.expects_reply,
                    send_by=now + LEASE - LEASE_SAFETY))
                continue
            verdict = _settle_unsent(row, p, verdict, now)
            outcomes[verdict] = outcomes.get(verdict, 0) + 1
    return outgoing


def _settle_unsent(row: ScheduledMessage, p: Participant, verdict: str, now: datetime) -> str:
    """Put a row that may not go now back for later, or close it as expired or cancelled."""
    if verdict == "later":
        hold = max(t for t in (p.paused_until, p.hold_until, _question_until(p), now)
                   if t is not None)
        due = schedule.next_allowed(hold, _window(p))
        if due <= row.expires_at:
            row.status, row.due_at = "pending", due
            row.lease_until = row.enqueued_at = None
            row.updated_at = now
            return "rescheduled"
        verdict = "expired"
    row.status = verdict
    row.lease_until = None
    row.updated_at = now
    log.info("scheduled message %s kind=%s not sent: %s", row.id, row.kind, verdict)
    return verdict


def _safe_send(services, out: Outgoing) -> str:
    """send() that reports a crash as an outcome (the lease brings the row back)."""
    try:
        return send(services, out)
    except Exception:
        log.exception("sending scheduled message %s failed", out.row_id)
        return "error"


def send(services, out: Outgoing) -> str:
    """Wait for a rate-limit slot, re-check the row, send it, and record what Twilio said."""
    # The claim's lease must outlive the wait and the API call, or another worker could
    # take the row while this one still sends it: give the row back instead of waiting on.
    budget = (out.send_by - services.clock.now()).total_seconds()
    if budget <= 0 or not _slot(services, budget):
        _give_back(services, out, services.clock.now())
        return "deferred"
    # The wait for a slot can be long (a backlog at 1 text a second): STOP, PAUSE or a
    # crisis hold may have landed since the batch was checked, so look again now.
    verdict = recheck(services, out, services.clock.now())
    if verdict != "send":
        return verdict
    try:
        result = services.sender.send(out.to, out.body,
                                      status_callback=status_callback_url(services))
    except SendError as error:
        return _failed(services, out.row_id, out.token, error, services.clock.now())
    record_sent(services, out, result)
    return "sent"


def _slot(services, budget: float) -> bool:
    """A rate-limit slot within budget seconds; False (row given back) when Redis is down."""
    try:
        return services.rate_limiter.acquire(budget)
    except Exception:
        log.warning("rate limit unavailable; giving the row back for a later pass")
        return False


def recheck(services, out: Outgoing, now: datetime) -> str:
    """Right before the API call: is the row still ours and may it still go out?"""
    with services.db.session() as db:
        row = db.get(ScheduledMessage, out.row_id)
        if row is None or row.status != "sending" or row.attempts != out.token:
            return "skipped"  # cancelled by STOP/DELETE, or the claim passed to someone else
        p = db.get(Participant, row.participant_id)
        session = db.get(Session, row.session_id) if row.condition and row.session_id else None
        verdict = _verdict(row, p, session, now)
        if verdict == "send":
            return verdict
        verdict = _settle_unsent(row, p, verdict, now)
    return verdict


def record_sent(services, out: Outgoing, result) -> None:
    """Record Twilio's acceptance, retrying through a database outage while the lease lasts.

    A text Twilio accepted must not be sent again: giving up here would leave the row
    `sending`, its lease would run out and the next pass would send it a second time.
    If the database stays away past the lease, reconciliation finds the text in
    Twilio's message list instead (bot.reconcile).
    """
    delay, deadline = RECORD_RETRY_FIRST, _real_deadline(services, out)
    while True:
        try:
            _mark_sent(services, out, result, services.clock.now())
            break
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                log.error("scheduled message %s accepted as %s but not recorded; "
                          "reconciliation will settle it", out.row_id, result.sid)
                return
            log.warning("recording scheduled message %s failed; retrying in %.1fs",
                        out.row_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX)
    if out.expects_reply:
        _await_reply(services, out.participant_id, out.expects_reply)


def _real_deadline(services, out: Outgoing) -> float:
    """The lease's end on the monotonic clock (the injected clock may stand still)."""
    left = (out.send_by + LEASE_SAFETY - services.clock.now()).total_seconds()
    return time.monotonic() + max(0.0, min(left, LEASE.total_seconds())) - RECORD_MARGIN


def _give_back(services, out: Outgoing, now: datetime) -> None:
    """A row that found no send slot in time goes back to pending for the next pass."""
    with services.db.session() as db:
        db.execute(update(ScheduledMessage).where(
            ScheduledMessage.id == out.row_id, ScheduledMessage.status == "sending",
            ScheduledMessage.attempts == out.token,
        ).values(status="pending", lease_until=None, enqueued_at=None, updated_at=now))


def _verdict(row: ScheduledMessage, p: Participant, session: Session | None,
             now: datetime) -> str:
    """send, later (paused, held or outside the window), expired or cancelled."""
    if p.status not in LIVE or not p.phone:
        return "cancelled"
    if now > row.expires_at:
        return "expired"
    if row.condition and not condition_holds(row.condition, session):
        return "cancelled"
    if (p.paused_until and p.paused_until > now) or (p.hold_until and p.hold_until > now):
        return "later"
    if (_question_until(p) or now) > now:
        return "later"  # asked "Reply STOP to stop all texts": nothing else until answered
    if schedule.next_allowed(now, _window(p)) > now:
        return "later"  # a late job (say, after a Redis outage) must not text at night
    return "send"


def _question_until(p: Participant) -> datetime | None:
    """When an open opt-out question stops holding scheduled texts (None: no question)."""
    return p.optout_asked_at + optout.QUESTION_WINDOW if p.optout_asked_at else None


def _window(p: Participant) -> schedule.ParticipantView:
    """What decides the participant's sending window: their zone and bedtime."""
    return schedule.ParticipantView(timezone=p.timezone, bedtime=people.parse_clock(p.bedtime))


def condition_holds(condition: str, session: Session | None) -> bool:
    """Send-time conditions named in the plan; a condition nobody knows never holds."""
    if condition == "therapy_not_booked":
        return session is not None and session.therapy_booked is False
    if condition == "has_action":
        return session is not None and bool(session.action)
    # A typo in a plan must not turn a conditional nudge into an unconditional one.
    log.error("unknown send condition %r: not sending", condition)
    return False


def _mark_sent(services, out: Outgoing, result, now: datetime) -> None:
    """Twilio took it: record the SID on the row, and a message row for the history."""
    sent = {"status": "sent", "twilio_sid": result.sid, "sent_at": now, "lease_until": None,
            "updated_at": now}
    with services.db.session() as db:
        ours = db.execute(update(ScheduledMessage).where(
            ScheduledMessage.id == out.row_id, ScheduledMessage.status == "sending",
            ScheduledMessage.attempts == out.token).values(**sent)).rowcount
        if not ours:
            # The text did go out, so the row says so, whoever holds it now.
            log.warning("scheduled message %s changed hands during its send", out.row_id)
            db.execute(update(ScheduledMessage).where(ScheduledMessage.id == out.row_id)
                       .values(**sent))
        db.execute(insert(Message).values(
            participant_id=out.participant_id, direction="out", twilio_sid=result.sid,
            scheduled_id=out.row_id, key=out.message_key, channel=out.channel, status="sent",
            body=out.body, segments=result.segments or sms_text.segments(out.body),
            num_media=0, attempts=0, created_at=now, updated_at=now))


def _await_reply(services, participant_id: int, expects: str) -> None:
    """Tell the engine a nudge that asks a question went out."""
    from flows.engine import Timer

    def step(engine, ctx, state, _message):
        return engine.resume(state, ctx, services.clock.now(), timer=Timer(expects))

    runner.run_turn(services, step, participant_id=participant_id, via="rest")


def _failed(services, row_id: int, token: int, error: SendError, now: datetime) -> str:
    """Settle a row Twilio refused: retry later, opt out, or give up."""
    with services.db.session() as db:
        row = db.get(ScheduledMessage, row_id)
        p = db.get(Participant, row.participant_id)
        row.error_code, row.lease_until, row.updated_at = error.code, None, now
        if error.kind == "retry" and row.attempts <= len(RETRY_BACKOFF):
            retry_at = now + RETRY_BACKOFF[row.attempts - 1]
            if retry_at <= row.expires_at:
                row.status, row.due_at, row.enqueued_at = "pending", retry_at, None
                log.info("scheduled message %s will retry (code %s)", row_id, error.code)
                return "retry"
        row.status = "failed"
        apply_carrier_verdict(db, p, error.kind, now)
    log.warning("scheduled message %s to %s failed: %s (code %s)", row_id,
                mask_phone(p.phone), error.kind, error.code)
    return error.kind


def apply_carrier_verdict(db, p: Participant, kind: str, now: datetime) -> None:
    """21610/30004 mean opted out; 21211/21614/30005/30006 unreachable: stop texting."""
    if kind == "opted_out" and p.status != "deleted":
        p.status, p.opted_out_at = "opted_out", now
        cancel_pending(db, p.id, now)
        journal_links.revoke_all(db, p.id, now)
    elif kind == "unreachable" and p.status != "deleted":
        p.status = "unreachable"
        cancel_pending(db, p.id, now)


def status_callback_url(services) -> str | None:
    """Where Twilio reports delivery (only when the bot has a public URL)."""
    base = services.settings.public_base_url
    return f"{base}/twilio/status" if base else None


# ---------------------------------------------------------------- replies via REST


def send_outbound(services, ids: list[int]) -> None:
    """Send replies queued for the REST API (a retried inbound text's answers).

    A claimed reply is `sending`; a worker that dies leaves it so and the clock
    reconciles it against the provider after OUTBOUND_LEASE (bot.reconcile).
    """
    for message_id in ids:
        now = services.clock.now()
        with services.db.session() as db:
            claimed = db.execute(update(Message).where(
                Message.id == message_id, Message.status == "queued",
            ).values(status="sending", updated_at=now)).rowcount
            if not claimed:
                continue
            message = db.get(Message, message_id)
            p = db.get(Participant, message.participant_id)
            to, body = people.address_of(p) if p.phone else "", message.body or ""
            live = p.status not in ("deleted", "unreachable") and bool(p.phone)
        if not live:
            _settle_outbound(services, message_id, "failed", None, None)
            continue
        if not _slot(services, OUTBOUND_SLOT_WAIT):
            _settle_outbound(services, message_id, "queued", None, None, tried=False)
            continue
        try:
            result = services.sender.send(to, body, status_callback=status_callback_url(services))
        except SendError as error:
            status = "queued" if error.kind == "retry" else "failed"
            _settle_outbound(services, message_id, status, None, error.code)
            continue
        _settle_outbound(services, message_id, "sent", result.sid, None)


def _settle_outbound(services, message_id: int, status: str, sid: str | None,
                     code: int | None, *, tried: bool = True) -> None:
    """Record what happened to a REST reply (retrying through a short database outage)."""
    deadline = time.monotonic() + OUTBOUND_RECORD_PATIENCE
    delay = RECORD_RETRY_FIRST
    while True:
        try:
            now = services.clock.now()
            with services.db.session() as db:
                message = db.get(Message, message_id)
                message.status, message.twilio_sid, message.error_code = status, sid, code
                message.updated_at = now
                message.attempts += 1 if tried else 0
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() + delay > deadline:
                log.error("reply %s: outcome not recorded; reconciliation will settle it",
                          message_id)
                return
            time.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX)


# ---------------------------------------------------------------- status callbacks


def record_status(services, sid: str, status: str, error_code: int | None) -> bool:
    """Apply Twilio's delivery report to the message (and scheduled row) with this SID."""
    now = services.clock.now()
    with services.db.session() as db:
        # Only our own texts have delivery reports: a callback naming an inbound text's
        # SID (forged with a leaked token, or Twilio's mistake) must not rewrite it.
        message = db.scalars(select(Message).where(
            Message.twilio_sid == sid, Message.direction == "out").limit(1)).first()
        if message is None:
            return False
        if STATUS_RANK.get(status, -1) >= STATUS_RANK.get(message.status, -1):
            message.status = status
            message.error_code = error_code or message.error_code
            message.updated_at = now
        if message.scheduled_id:
            row = db.get(ScheduledMessage, message.scheduled_id)
            if STATUS_RANK.get(status, -1) >= STATUS_RANK.get(row.status, -1):
                row.status, row.updated_at = status, now
                row.error_code = error_code or row.error_code
        if error_code and message.participant_id:
            p = db.get(Participant, message.participant_id)
            apply_carrier_verdict(db, p, classify(error_code, None), now)
        return True
