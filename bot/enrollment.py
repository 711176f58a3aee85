"""Inviting a participant: the one rule set shared by the CLI and the care console."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from bot import delivery, runner
from bot import participants as people
from bot.phones import InvalidNumber, parse_address
from bot.storage.models import Message

ALREADY_IN = ("active", "opted_out", "deleted", "unreachable")
"""Statuses that must not get a second invitation."""


class EnrollError(ValueError):
    """Why a participant cannot be invited (safe to show an operator)."""


def invite(services, phone: str, *, timezone: str | None = None,
           name: str | None = None) -> int:
    """Create (or refresh) an invited participant and text the invitation; returns the id."""
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise EnrollError("not an IANA time zone (e.g. America/Chicago)") from None
    try:
        address = parse_address(phone, services.settings.default_region)
    except InvalidNumber as exc:
        raise EnrollError(str(exc)) from None
    now = services.clock.now()
    with services.db.session() as db:
        p = people.find(db, address.phone, services.phone_hash_key)
        if p is not None and p.status in ALREADY_IN:
            raise EnrollError(f"participant is already {p.status}; nothing sent")
        if p is None:
            p = people.create(db, address, services.phone_hash_key, now, timezone=timezone,
                              name=name, default_timezone=services.settings.default_timezone)
        elif timezone:
            p.timezone = timezone
        if p.status == "unenrolled":
            p.status = "invited"  # they texted us first; now the clinic enrolls them
        pid = p.id

    def step(engine, ctx, state, _message):
        return engine.invite(ctx)

    runner.run_turn(services, step, participant_id=pid, via="queue")
    delivery.send_outbound(services, queued_ids(services, pid))
    return pid


def queued_ids(services, participant_id: int) -> list[int]:
    """Outbound rows waiting for the REST API."""
    with services.db.session() as db:
        return list(db.scalars(select(Message.id).where(
            Message.participant_id == participant_id, Message.status == "queued")))
