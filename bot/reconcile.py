"""Settling sends nobody finished: ask the provider before sending anything again.

A worker can die (or lose its database) after Twilio accepted a text and before it
recorded the SID. Its row stays `sending`; when the claim's lease runs out the clock
process looks the recipient's recent messages up in Twilio's message list (by
recipient and date, as Twilio's API filters). A message with the same body whose SID
we have never recorded is the lost acceptance: the row is marked sent with that SID.
Only when there is none does the row go back to pending (or queued) to be sent again.
If the list cannot be read the row waits for the next pass: never re-sent blindly.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import insert, literal_column, select, update

from bot import participants as people
from bot.delivery import LEASE, _await_reply
from bot.sms import SendError
from bot.storage.models import Message, Participant, ScheduledMessage
from flows import sms_text

log = logging.getLogger(__name__)

LOOKBACK = timedelta(days=1)
"""How far before the claim the provider's list is read (its date filter is by UTC day)."""

OUTBOUND_LEASE = timedelta(seconds=90)
"""A REST reply `sending` for this long belongs to a worker that died; it is reconciled."""


def unclaimed_acceptance(services, to: str, body: str, since: datetime) -> str | None:
    """The SID of a text to `to` with this body that the provider holds and we never recorded.

    Raises SendError when the provider's list cannot be read.
    """
    found = [m for m in services.sender.sent_to(to, since - LOOKBACK) if m.body == body]
    if not found:
        return None
    with services.db.session() as db:
        known = set(db.scalars(select(Message.twilio_sid).where(
            Message.twilio_sid.in_([m.sid for m in found]))))
    # Oldest first: the provider lists newest first.
    for message in reversed(found):
        if message.sid not in known:
            return message.sid
    return None


def expired_scheduled(services, now: datetime) -> dict[str, int]:
    """Settle rows whose claim ran out while `sending`: sent (found at the provider) or pending."""
    outcomes: dict[str, int] = {}
    with services.db.session() as db:
        stale = db.execute(
            select(ScheduledMessage, Participant)
            .join(Participant, Participant.id == ScheduledMessage.participant_id)
            .where(ScheduledMessage.status == "sending", ScheduledMessage.lease_until < now)
        ).all()
        work = [(row.id, row.attempts, row.body or "", row.lease_until, row.message_key,
                 row.expects_reply, p.id, p.channel, people.address_of(p) if p.phone else None)
                for row, p in stale]
    for row_id, token, body, lease_until, key, expects, pid, channel, to in work:
        outcome = _settle_scheduled(services, now, row_id, token, body, lease_until, key,
                                    expects, pid, channel, to)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _settle_scheduled(services, now, row_id, token, body, lease_until, key, expects, pid,
                      channel, to) -> str:
    """Look one stale row up at the provider and settle it."""
    sid = None
    if to is not None:
        try:
            sid = unclaimed_acceptance(services, to, body, lease_until - LEASE)
        except SendError as error:
            log.warning("scheduled message %s: provider list unavailable (%s); "
                        "left for the next pass", row_id, error.kind)
            return "unknown"
    ours = (ScheduledMessage.id == row_id, ScheduledMessage.status == "sending",
            ScheduledMessage.attempts == token)
    with services.db.session() as db:
        if sid is None:
            db.execute(update(ScheduledMessage).where(*ours).values(
                status="pending", lease_until=None, enqueued_at=None, updated_at=now))
            return "released"
        taken = db.execute(update(ScheduledMessage).where(*ours).values(
            status="sent", twilio_sid=sid, sent_at=now, lease_until=None,
            updated_at=now)).rowcount
        if not taken:
            return "skipped"
        db.execute(insert(Message).values(
            participant_id=pid, direction="out", twilio_sid=sid, scheduled_id=row_id, key=key,
            channel=channel, status="sent", body=body, segments=sms_text.segments(body),
            num_media=0, attempts=0, created_at=now, updated_at=now))
    log.warning("scheduled message %s was accepted as %s before its worker stopped: "
                "recorded, not sent again", row_id, sid)
    if expects:
        _await_reply(services, pid, expects)
    return "reconciled"


def stale_replies(services, now: datetime) -> dict[str, int]:
    """REST replies left `sending` by a dead worker: sent (found at the provider) or queued."""
    outcomes: dict[str, int] = {}
    with services.db.session() as db:
        stale = db.execute(
            select(Message, Participant)
            .join(Participant, Participant.id == Message.participant_id)
            # Constants in the SQL, so ix_messages_outbound_sending (a partial index) is used.
            .where(Message.direction == literal_column("'out'"),
                   Message.status == literal_column("'sending'"),
                   Message.updated_at < now - OUTBOUND_LEASE)).all()
        work = [(m.id, m.updated_at, m.body or "", people.address_of(p) if p.phone else None)
                for m, p in stale]
    for message_id, claimed_at, body, to in work:
        sid = None
        if to is not None:
            try:
                sid = unclaimed_acceptance(services, to, body, claimed_at)
            except SendError as error:
                log.warning("reply %s: provider list unavailable (%s); left for the next pass",
                            message_id, error.kind)
                outcomes["unknown"] = outcomes.get("unknown", 0) + 1
                continue
        with services.db.session() as db:
            # Back to queued with the old time stamp, so this pass hands it to a worker.
            values = ({"status": "queued"} if sid is None
                      else {"status": "sent", "twilio_sid": sid, "updated_at": now})
            db.execute(update(Message).where(Message.id == message_id,
                                             Message.status == "sending").values(**values))
        outcome = "released" if sid is None else "reconciled"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
