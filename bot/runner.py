"""The host loop of one turn: load participant -> engine -> handlers -> commit -> after-commit.

The webhook records and answers a text in one transaction (`receive`): the text is
inserted unique on Twilio's MessageSid, the turn runs under a savepoint, and a turn
that fails rolls back to it and still commits the text as `failed`, so nothing is
lost: a worker retries it (`process_inbound`), replying through the REST API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot import dates, handlers, queue, safety_words
from bot import participants as people
from bot.care import handoff
from bot.logsafe import mask_phone
from bot.phones import Address, guess_timezone
from bot.storage import insert_for
from bot.storage.models import Message
from flows import sms_text
from flows.engine import Engine
from flows.model import Context, Result
from flows.state import ConversationState

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
    return run_turn(services, _inbound_step(services, clinician, opt_out_type),
                    message_id=message_id, via=via)


def _inbound_step(services, clinician: bool, opt_out_type: str | None) -> Callable:
    """The engine step for an inbound text (left to the clinician when theirs to answer)."""
    def step(engine: Engine, ctx: Context, state: ConversationState, message) -> Result:
        now = services.clock.now()
        if clinician and handoff.is_for_clinician(message.body, opt_out_type):
            return Result(state=state, events=())
        parsed = dates.resolve_answer(engine.defs, state, message.body or "", ctx.timezone, now)
        return engine.resume(state, ctx, now, text=message.body or "",
                             media=message.num_media, opt_out_type=opt_out_type, parsed=parsed)

    return step


# ---------------------------------------------------------------- the webhook's one transaction


@dataclass(frozen=True)
class Received:
    """What became of an inbound text in the webhook's transaction."""

    message_id: int
    new: bool = True  # False: a replay of a MessageSid already stored; nothing was done
    failed: bool = False  # processing raised: the text is stored `failed` for a worker
    replies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arrived:
    """The inbound text as the engine step reads it (the row is not read back)."""

    id: int
    body: str
    num_media: int


def receive(services, inbound: Inbound) -> Received:
    """Record an inbound text and answer it in ONE transaction (the webhook's path).

    The participant is read once (row-locked on PostgreSQL, so two texts of one person
    take turns and a replay waits for its first copy); the text is inserted with
    ON CONFLICT DO NOTHING on its MessageSid (no row back: a replay, nothing else is
    done); the turn runs under a SAVEPOINT. When the turn fails, the transaction rolls
    back to the savepoint and still commits the text, marked `failed`, for a worker to
    retry. Raises SQLAlchemyError when nothing could be stored (the caller spools).

    A process killed between BEGIN and COMMIT (a few ms) leaves no row at all, where the
    old two-transaction turn left a `received` one: Twilio, not having had an answer,
    logs an error for the text and the participant gets no reply.
    """
    for attempt in (1, 2):
        try:
            received, outcome = _record_and_turn(services, inbound)
            break
        except DBAPIError as error:
            # A connection the server dropped (restart, idle timeout: the pool pings only
            # long-idle connections, see bot.storage) or a first text from a new number
            # racing another: nothing was committed, so the text is tried once more.
            if attempt == 2 or not (error.connection_invalidated
                                    or isinstance(error, IntegrityError)):
                raise
            log.warning("inbound %s: %s; trying once more", inbound.sid, type(error).__name__)
    if outcome is None:
        return received
    try:
        texts = after_turn(services, outcome, "twiml")
    except Exception:  # committed: the replies are stored and still go out
        log.exception("after-commit work for inbound %s failed", inbound.sid)
        texts = outcome.texts
    return replace(received, replies=tuple(texts))


def _record_and_turn(services, inbound: Inbound) -> tuple[Received, Outcome | None]:
    """receive()'s transaction: (what happened, the turn's outcome when it ran)."""
    now = services.clock.now()
    with services.db.session() as db:
        facts = _turn_facts(services, db, inbound, now)
        # Written as processed: this transaction commits it together with its replies, or
        # marks it failed below; no one ever sees it processed without them.
        message_id = _insert_inbound(db, facts.participant.id, inbound, now, "processed")
        if message_id is None:
            existing = db.scalars(select(Message.id).where(Message.twilio_sid == inbound.sid))
            return Received(existing.one(), new=False), None
        facts.recent_texts += 1  # read before this text was stored
        step = _inbound_step(services, facts.in_conversation, inbound.opt_out_type)
        arrived = Arrived(id=message_id, body=inbound.body, num_media=inbound.num_media)
        try:
            with db.begin_nested():
                outcome = take_turn(services, db, step, facts, arrived, now=now, via="twiml")
        except Exception:
            log.exception("processing inbound %s failed; a worker will retry it", inbound.sid)
            db.execute(update(Message).where(Message.id == message_id).values(
                status="failed", attempts=Message.attempts + 1, updated_at=now,
            ).execution_options(synchronize_session=False))
            return Received(message_id, failed=True), None
    return Received(message_id), outcome


def _turn_facts(services, db, inbound: Inbound, now: datetime) -> people.TurnFacts:
    """The sender, locked, with what the turn reads; created when the number is new."""
    key = people.hash_phone(inbound.address.phone, services.phone_hash_key)
    facts = people.load_for_turn(db, now, phone_hash=key)
    if facts is None:
        # A number the clinic never enrolled: kept only to answer it (and to honour
        # STOP); it gets no conversation until the clinic enrolls it.
        participant = people.create(
            db, inbound.address, services.phone_hash_key, now,
            default_timezone=services.settings.default_timezone, status="unenrolled")
        sessions = people.TurnSessions(db, participant, latest_open=None, last_done=None)
        return people.TurnFacts(participant, sessions, recent_texts=0, in_conversation=False)
    participant = facts.participant
    if participant.phone is None:
        # Deleted earlier and texting again: we need the number to answer START. The old
        # time zone went with their data: guess it again from the number. Flushed before
        # the turn's savepoint, so a failed turn keeps it for the worker's retry.
        participant.phone = inbound.address.phone
        participant.timezone = guess_timezone(inbound.address.phone,
                                              services.settings.default_timezone)
        db.flush()
    return facts


def _insert_inbound(db, participant_id: int, inbound: Inbound, now: datetime,
                    status: str) -> int | None:
    """INSERT ... ON CONFLICT (twilio_sid) DO NOTHING RETURNING id: None for a replay."""
    return db.scalar(_inbound_insert(db.get_bind().dialect.name), {
        "participant_id": participant_id, "direction": "in", "twilio_sid": inbound.sid,
        "channel": inbound.address.channel, "status": status, "body": inbound.body,
        "num_media": inbound.num_media, "segments": sms_text.segments(inbound.body),
        "attempts": 0, "created_at": now, "updated_at": now})


@cache
def _inbound_insert(dialect: str):
    """_insert_inbound's statement, built once (values come as parameters)."""
    table = Message.__table__
    return (insert_for(dialect, table).on_conflict_do_nothing(index_elements=["twilio_sid"])
            .returning(table.c.id))


def run_turn(services, step: Callable, *, message_id: int | None = None,
             participant_id: int | None = None, via: str = "twiml") -> list[str]:
    """One engine turn in one transaction, then the after-commit work (workers, CLI, clock)."""
    now = services.clock.now()
    with services.db.session() as db:
        message = None
        if message_id is not None:
            message = db.get(Message, message_id, with_for_update=True)
            if message is None or message.status == "processed":
                # Same session: a second one would wait on the lock this one holds.
                return _replies_in(db, message) or []
            participant_id = message.participant_id
        facts = people.load_for_turn(db, now, participant_id=participant_id)
        if facts is None:
            raise LookupError(f"no participant {participant_id}")
        outcome = take_turn(services, db, step, facts, message, now=now, via=via)
        if message is not None:
            message.status = "processed"
            message.updated_at = now
    return after_turn(services, outcome, via)


@dataclass
class Outcome:
    """What a turn left for after its commit: texts, the rows they were stored in, work."""

    texts: list[str]
    keys: list[str]
    rows: list[Message]  # the replies' rows (their ids are known once flushed)
    alert_ids: list[int]
    after: list[Callable[[], None]]
    kinds: list[str]
    phone: str | None


def take_turn(services, db, step: Callable, facts: people.TurnFacts, message, *,
              now: datetime, via: str) -> Outcome:
    """Engine -> handlers -> replies stored, inside the caller's transaction; flushed at the
    end, so a failure surfaces here (inside the webhook's savepoint), not at COMMIT."""
    participant = facts.participant
    ctx = people.context(db, participant, now, services.variables, sessions=facts.sessions,
                         texts=facts.recent_texts)
    # Read forgivingly (old, hand-edited or damaged rows become a usable state) and
    # written back in the current version: the engine owns the shape, we own the column.
    result = step(services.engine, ctx, ConversationState.from_dict(participant.state), message)
    turn = handlers.Turn(services=services, db=db, participant=participant, now=now,
                         sessions=facts.sessions)
    handlers.apply(turn, result.events)
    participant.state = result.state.to_dict()
    participant.updated_at = now
    rows = _store_replies(turn, message.id if message is not None else None, via)
    db.flush()  # every write of the turn, replies together (one INSERT on both databases)
    return Outcome(texts=[r.text for r in turn.replies], keys=[r.key for r in turn.replies],
                   rows=rows, alert_ids=list(turn.alert_ids), after=list(turn.after_commit),
                   kinds=[type(e).__name__ for e in result.events], phone=participant.phone)


def after_turn(services, outcome: Outcome, via: str) -> list[str]:
    """After the commit: page what the turn raised, pick honest words, run queued work."""
    log.info("turn participant=%s events=%s replies=%d", mask_phone(outcome.phone),
             ",".join(outcome.kinds) or "-", len(outcome.texts))
    reply_ids = [row.id for row in outcome.rows]
    texts = safety_words.finish(services, outcome.alert_ids, outcome.keys, reply_ids,
                                outcome.texts)
    after = list(outcome.after)
    if via == "rest" and reply_ids:
        after.append(lambda: queue.enqueue_outbound(services, reply_ids))
    for action in after:
        try:
            action()
        except Exception:  # the database already has the work; the clock re-drives it
            log.exception("after-commit action failed; it will be retried from the database")
    return texts


def _store_replies(turn: handlers.Turn, reply_to_id: int | None, via: str) -> list[Message]:
    """Record each reply as an outbound message row (body encrypted); flushed by the caller."""
    rows = []
    # After DELETE even our own words are not kept: the reply goes out in the TwiML.
    keep_body = turn.participant.status != "deleted" or via != "twiml"
    for reply in turn.replies:
        rows.append(Message(
            participant_id=turn.participant.id, direction="out",
            reply_to_id=reply_to_id, key=reply.key,
            channel=turn.participant.channel, status="reply" if via == "twiml" else "queued",
            body=reply.text if keep_body else None, segments=sms_text.segments(reply.text),
            created_at=turn.now, updated_at=turn.now,
        ))
    turn.db.add_all(rows)
    return rows


def mark_failed(services, message_id: int) -> None:
    """Processing crashed: count the try and leave the text for a worker to retry."""
    now = services.clock.now()
    with services.db.session() as db:
        message = db.get(Message, message_id)
        if message is not None and message.status in ("received", "failed"):
            message.status = "failed"
            message.attempts += 1
            message.updated_at = now
