"""Sending what the database says is due, exactly once, and recording what Twilio says.

A scheduled row is claimed in the database (pending -> sending, with a lease
and an attempt number that acts as the claim's token) before anything is
sent, so two workers holding the same id send it once. A worker killed
mid-send leaves the row `sending`; when its lease runs out the scheduler puts
it back to pending and it is sent again. The one window in which a duplicate
is possible: Twilio accepted the text but the worker died before it
committed `sent` (milliseconds); see README, "Delivery guarantees".
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot import participants as people
from bot.logsafe import mask_phone
from bot.sms import SendError
from bot.storage.models import Message, Participant, ScheduledMessage, Session
from flows import schedule, sms_text

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=90)
"""How long a claimed row belongs to one worker before another may take it."""

SEND_THREADS = 32
"""Concurrent API calls per job: at 150 ms a call, 16 in flight carry 100 msg/s."""

RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10),
                 timedelta(minutes=30), timedelta(hours=1))
"""Delay before each retry of a text Twilio could not take yet (429, 5xx, timeouts)."""

LIVE = ("active",)
"""Participant statuses that may receive scheduled messages."""

STATUS_RANK = {"queued": 0, "sending": 1, "sent": 2, "undelivered": 3, "failed": 3,
               "delivered": 4, "read": 5}
"""Delivery statuses in order: a late 'sent' callback never overwrites 'delivered'."""


def deliver_batch(services, ids: list[int]) -> dict[str, int]:
    """Send a batch of scheduled rows concurrently; returns a count per outcome."""
    outcomes: dict[str, int] = {}
    if not ids:
        return outcomes
    with ThreadPoolExecutor(max_workers=min(SEND_THREADS, len(ids))) as pool:
        for outcome in pool.map(lambda i: _safe_deliver(services, i), ids):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _safe_deliver(services, row_id: int) -> str:
    """deliver() that reports a crash as an outcome (the lease brings the row back)."""
    try:
        return deliver(services, row_id)
    except Exception:
        log.exception("delivering scheduled message %s failed", row_id)
        return "error"


def deliver(services, row_id: int) -> str:
    """Claim, check and send one scheduled row; returns what happened."""
    now = services.clock.now()
    token = claim(services, row_id, now)
    if token is None:
        return "skipped"
    verdict, to, body = _check(services, row_id, token, now)
    if verdict != "send":
        return verdict
    services.rate_limiter.wait()
    now = services.clock.now()
    if not _renew(services, row_id, token, now):
        return "lost_lease"
    try:
        result = services.sender.send(to, body, status_callback=status_callback_url(services))
    except SendError as error:
        return _failed(services, row_id, token, error, services.clock.now())
    _mark_sent(services, row_id, token, result, services.clock.now())
    return "sent"


def claim(services, row_id: int, now: datetime) -> int | None:
    """pending -> sending for this worker; returns the claim token (attempt number)."""
    with services.db.session() as db:
        row = db.execute(
            update(ScheduledMessage)
            .where(ScheduledMessage.id == row_id, ScheduledMessage.status == "pending",
                   ScheduledMessage.due_at <= now)
            .values(status="sending", lease_until=now + LEASE,
                    attempts=ScheduledMessage.attempts + 1, updated_at=now)
            .returning(ScheduledMessage.attempts)
        ).first()
        return None if row is None else row[0]


def _renew(services, row_id: int, token: int, now: datetime) -> bool:
    """Still ours right before the API call? (A long rate-limit wait may have lost it.)"""
    with services.db.session() as db:
        result = db.execute(
            update(ScheduledMessage)
            .where(ScheduledMessage.id == row_id, ScheduledMessage.status == "sending",
                   ScheduledMessage.attempts == token)
            .values(lease_until=now + LEASE))
        return result.rowcount == 1


def _check(services, row_id: int, token: int, now: datetime) -> tuple[str, str, str]:
    """Decide whether a claimed row goes out now; settle it when it doesn't."""
    with services.db.session() as db:
        row = db.get(ScheduledMessage, row_id)
        p = db.get(Participant, row.participant_id)
        verdict = _verdict(db, row, p, now)
        if verdict == "send":
            return "send", people.address_of(p), row.body or ""
        if verdict == "later":
            view = schedule.ParticipantView(timezone=p.timezone,
                                            bedtime=people.parse_clock(p.bedtime))
            hold = max(t for t in (p.paused_until, p.hold_until, now) if t is not None)
            due = schedule.next_allowed(hold, view)
            if due <= row.expires_at:
                row.status, row.due_at = "pending", due
                row.lease_until = row.enqueued_at = None
                row.updated_at = now
                return "rescheduled", "", ""
            verdict = "expired"
        row.status = verdict
        row.lease_until = None
        row.updated_at = now
        log.info("scheduled message %s kind=%s not sent: %s", row.id, row.kind, verdict)
        return verdict, "", ""


def _verdict(db, row: ScheduledMessage, p: Participant, now: datetime) -> str:
    """send, later (paused, held or outside the window), expired or cancelled."""
    if p.status not in LIVE or not p.phone:
        return "cancelled"
    if now > row.expires_at:
        return "expired"
    if row.condition and not _condition_holds(db, row):
        return "cancelled"
    if (p.paused_until and p.paused_until > now) or (p.hold_until and p.hold_until > now):
        return "later"
    view = schedule.ParticipantView(timezone=p.timezone, bedtime=people.parse_clock(p.bedtime))
    if schedule.next_allowed(now, view) > now:
        return "later"  # a late job (say, after a Redis outage) must not text at night
    return "send"


def _condition_holds(db, row: ScheduledMessage) -> bool:
    """Send-time conditions named in the plan."""
    session = db.get(Session, row.session_id) if row.session_id else None
    if row.condition == "therapy_not_booked":
        return session is not None and session.therapy_booked is False
    if row.condition == "has_action":
        return session is not None and bool(session.action)
    return True


def _mark_sent(services, row_id: int, token: int, result, now: datetime) -> None:
    """Twilio took it: record the SID, and a message row for the history."""
    with services.db.session() as db:
        row = db.get(ScheduledMessage, row_id)
        if row.status != "sending" or row.attempts != token:
            log.warning("scheduled message %s changed hands during its send", row_id)
        row.status, row.twilio_sid, row.sent_at = "sent", result.sid, now
        row.lease_until, row.updated_at = None, now
        p = db.get(Participant, row.participant_id)
        db.add(Message(participant_id=row.participant_id, direction="out",
                       twilio_sid=result.sid, scheduled_id=row.id, key=row.message_key,
                       channel=p.channel, status="sent", body=row.body,
                       segments=result.segments or sms_text.segments(row.body or ""),
                       created_at=now, updated_at=now))
        expects = row.expects_reply
        participant_id = row.participant_id
    if expects:
        _await_reply(services, participant_id, expects)


def _await_reply(services, participant_id: int, expects: str) -> None:
    """Tell the engine a nudge that asks a question went out."""
    from bot import runner
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
    from bot.handlers import cancel_pending

    if kind == "opted_out" and p.status != "deleted":
        p.status, p.opted_out_at = "opted_out", now
        cancel_pending(db, p.id, now)
    elif kind == "unreachable" and p.status != "deleted":
        p.status = "unreachable"
        cancel_pending(db, p.id, now)


def status_callback_url(services) -> str | None:
    """Where Twilio reports delivery (only when the bot has a public URL)."""
    base = services.settings.public_base_url
    return f"{base}/twilio/status" if base else None


# ---------------------------------------------------------------- replies via REST


def send_outbound(services, ids: list[int]) -> None:
    """Send replies queued for the REST API (a retried inbound text's answers)."""
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
            to, body = people.address_of(p), message.body or ""
            live = p.status not in ("deleted", "unreachable") and bool(p.phone)
        if not live:
            _settle_outbound(services, message_id, "failed", None, None)
            continue
        services.rate_limiter.wait()
        try:
            result = services.sender.send(to, body, status_callback=status_callback_url(services))
        except SendError as error:
            status = "queued" if error.kind == "retry" else "failed"
            _settle_outbound(services, message_id, status, None, error.code)
            continue
        _settle_outbound(services, message_id, "sent", result.sid, None)


def _settle_outbound(services, message_id: int, status: str, sid: str | None,
                     code: int | None) -> None:
    """Record what happened to a REST reply."""
    now = services.clock.now()
    with services.db.session() as db:
        message = db.get(Message, message_id)
        message.status, message.twilio_sid, message.error_code = status, sid, code
        message.updated_at = now
        message.attempts += 1


# ---------------------------------------------------------------- status callbacks


def record_status(services, sid: str, status: str, error_code: int | None) -> bool:
    """Apply Twilio's delivery report to the message (and scheduled row) with this SID."""
    now = services.clock.now()
    with services.db.session() as db:
        message = db.scalars(select(Message).where(Message.twilio_sid == sid)).first()
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
            from bot.sms import classify

            p = db.get(Participant, message.participant_id)
            apply_carrier_verdict(db, p, classify(error_code, None), now)
        return True
