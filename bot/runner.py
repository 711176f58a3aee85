"""The host loop of one turn: load participant -> engine -> handlers -> commit -> after-commit.

Inbound texts are first recorded on their own (unique on Twilio's MessageSid),
so a crash while processing loses nothing: the message stays `received` and
a worker retries it, replying through the REST API instead of TwiML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import dates, handlers, queue, safety_words
from bot import participants as people
from bot.care import handoff
from bot.logsafe import mask_phone
from bot.phones import Address, guess_timezone
from bot.storage.models import Message, Participant
from flows import sms_text
from flows.engine import Engine
from flows.model import Context, Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """A text as Twilio handed it to us."""

    sid: str
    address: Address
    body: str
    num_media: int = 0
    opt_out_type: str | None = None


def record_inbound(services, inbound: Inbound, at: datetime | None = None) -> tuple[int, bool]:
    """Store the text before anything else; return (message id, whether it is new).

    at: when it arrived, for a text replayed from the spool after a database outage.
    """
    now = at or services.clock.now()
    try:
        with services.db.session() as db:
            participant = people.find(db, inbound.address.phone, services.phone_hash_key)
            if participant is not None and participant.phone is None:
                # Deleted earlier and texting again: we need the number to answer START.
                # The old time zone went with their data: guess it again from the number.
                participant.phone = inbound.address.phone
                participant.timezone = guess_timezone(
                    inbound.address.phone, services.settings.default_timezone)
            if participant is None:
                # A number the clinic never enrolled: kept only to answer it (and to
                # honour STOP); it gets no conversation until the clinic enrolls it.
                participant = people.create(
                    db, inbound.address, services.phone_hash_key, now,
                    default_timezone=services.settings.default_timezone, status="unenrolled")
            message = Message(
                participant_id=participant.id, direction="in", twilio_sid=inbound.sid,
                channel=inbound.address.channel, status="received", body=inbound.body,
                num_media=inbound.num_media, segments=sms_text.segments(inbound.body),
                created_at=now, updated_at=now,
            )
            db.add(message)
            db.flush()
            return message.id, True
    except IntegrityError:
        with services.db.session() as db:
            existing = db.scalars(select(Message.id).where(Message.twilio_sid == inbound.sid))
            return existing.one(), False


def stored_replies(services, message_id: int) -> list[str] | None:
    """The replies already given to an inbound text, or None when it is not processed."""
    with services.db.session() as db:
        return _replies_in(db, db.get(Message, message_id))


def _replies_in(db, message: Message | None) -> list[str] | None:
    """stored_replies inside an open session (the caller may hold the row's lock)."""
    if message is None or message.status != "processed":
        return None
    rows = db.scalars(
        select(Message).where(Message.reply_to_id == message.id).order_by(Message.id)
    ).all()
    return [row.body for row in rows if row.body]


def process_inbound(services, message_id: int, *, via: str = "twiml",
                    opt_out_type: str | None = None) -> list[str]:
    """Run the engine on a recorded text; return reply texts (sent later when via='rest')."""
    # A clinician's open conversation takes free text; safety, STOP and HELP still run.
    clinician = handoff.takes_over(services, message_id)

    def step(engine: Engine, ctx: Context, state: dict, message: Message) -> Result:
        now = services.clock.now()
        if clinician and handoff.is_for_clinician(message.body, opt_out_type):
            return Result(state=state, events=())
        parsed = dates.resolve_answer(engine.defs, state, message.body or "", ctx.timezone, now)
        return engine.resume(state, ctx, now, text=message.body or "",
                             media=message.num_media, opt_out_type=opt_out_type, parsed=parsed)

    return run_turn(services, step, message_id=message_id, via=via)


def run_turn(services, step: Callable, *, message_id: int | None = None,
             participant_id: int | None = None, via: str = "twiml") -> list[str]:
    """One engine turn in one transaction, then the after-commit work."""
    now = services.clock.now()
    with services.db.session() as db:
        message = None
        if message_id is not None:
            message = db.get(Message, message_id, with_for_update=True)
            if message is None or message.status == "processed":
                # Same session: a second one would wait on the lock this one holds.
                return _replies_in(db, message) or []
            participant_id = message.participant_id
        participant = db.get(Participant, participant_id, with_for_update=True)
        ctx = people.context(db, participant, now, services.variables)
        result = step(services.engine, ctx, dict(participant.state or {}), message)
        turn = handlers.Turn(services=services, db=db, participant=participant, now=now)
        handlers.apply(turn, result.events)
        participant.state = result.state
        participant.updated_at = now
        reply_ids = _store_replies(turn, message, via)
        if message is not None:
            message.status = "processed"
            message.updated_at = now
        after = list(turn.after_commit)
        texts = [r.text for r in turn.replies]
        alert_ids, reply_keys = list(turn.alert_ids), [r.key for r in turn.replies]
        kinds = [type(e).__name__ for e in result.events]
    log.info("turn participant=%s events=%s replies=%d", mask_phone(participant.phone),
             ",".join(kinds) or "-", len(texts))
    texts = safety_words.finish(services, alert_ids, reply_keys, reply_ids, texts)
    if via == "rest" and reply_ids:
        after.append(lambda: queue.enqueue_outbound(services, reply_ids))
    for action in after:
        try:
            action()
        except Exception:  # the database already has the work; the clock re-drives it
            log.exception("after-commit action failed; it will be retried from the database")
    return texts


def _store_replies(turn: handlers.Turn, message: Message | None, via: str) -> list[int]:
    """Record each reply as an outbound message row (body encrypted)."""
    ids = []
    # After DELETE even our own words are not kept: the reply goes out in the TwiML.
    keep_body = turn.participant.status != "deleted" or via != "twiml"
    for reply in turn.replies:
        row = Message(
            participant_id=turn.participant.id, direction="out",
            reply_to_id=message.id if message is not None else None, key=reply.key,
            channel=turn.participant.channel, status="reply" if via == "twiml" else "queued",
            body=reply.text if keep_body else None, segments=sms_text.segments(reply.text),
            created_at=turn.now, updated_at=turn.now,
        )
        turn.db.add(row)
        turn.db.flush()
        ids.append(row.id)
    return ids


def mark_failed(services, message_id: int) -> None:
    """Processing crashed: count the try and leave the text for a worker to retry."""
    now = services.clock.now()
    with services.db.session() as db:
        message = db.get(Message, message_id)
        if message is not None and message.status in ("received", "failed"):
            message.status = "failed"
            message.attempts += 1
            message.updated_at = now
