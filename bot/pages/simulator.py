"""The phone simulator (development only): /simulator.

A phone-shaped chat beside the participant's timeline and a development clock. Texts
typed here reach the bot the way Twilio's do: the browser POSTs them to /twilio/sms
with an X-Twilio-Signature computed by the twilio SDK under the running app's own auth
token (in development without one, the generated token in instance/webhook_token.key). Replies, nudges and REST replies are read back from the messages table, so the
chat shows whatever the bot really sent. Moving the clock writes the shared clock
(CLOCK_FILE in development) and runs the nudges that became due.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from sqlalchemy import select, update
from wtforms import ValidationError

from bot import delivery, runner, scheduling, webhook_token
from bot import participants as people
from bot.phones import InvalidNumber, parse_address
from bot.storage.models import Message, Participant, ScheduledMessage
from flows import sms_text
from flows.state import ConversationState

bp = Blueprint("simulator", __name__, url_prefix="/simulator", template_folder="templates",
               static_folder="static")

TO_NUMBER = "+15005550006"
"""The bot's number as the simulated phone sees it."""

ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles",
         "America/Phoenix", "Pacific/Honolulu", "Europe/London", "Europe/Berlin")
"""Time zones offered in the picker (any IANA zone can be typed)."""

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
"""Clock buttons besides 'next nudge'."""

CSRF_TIME_LIMIT = 24 * 3600
"""Seconds a simulator page's token stays good (a tab left open over a working day)."""

HISTORY = 200
"""Most messages the chat shows."""


def _services():
    return current_app.extensions["integration_bot"]


@bp.before_request
def _development_only():
    """Never in production (the blueprint is not even registered there), and POSTs carry
    the page's CSRF token so another site cannot drive a developer's simulator."""
    if _services().settings.production:
        abort(404)
    if request.method == "POST":
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""), time_limit=CSRF_TIME_LIMIT)
        except (ValidationError, CSRFError):
            abort(400)


@bp.get("")
def page():
    """The phone, the timeline and the clock."""
    return render_template("simulator.html", zones=ZONES, csrf=generate_csrf(),
                           default_zone=_services().settings.default_timezone)


def _address(raw: str):
    try:
        return parse_address(raw or "", _services().settings.default_region)
    except InvalidNumber:
        abort(400, "not a phone number")


@bp.post("/enroll")
def enroll():
    """Invite the number (as `flask enroll` does): the invitation arrives in the chat."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    address = _address(data.get("phone", ""))
    zone = data.get("timezone") or svc.settings.default_timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        abort(400, "not an IANA time zone")
    now = svc.clock.now()
    with svc.db.session() as db:
        p = people.find(db, address.phone, svc.phone_hash_key)
        if p is not None and p.status not in ("invited",):
            return jsonify(ok=False, status=p.status,
                           note=f"already {p.status}: text START or use another number")
        if p is None:
            p = people.create(db, address, svc.phone_hash_key, now, timezone=zone,
                              default_timezone=svc.settings.default_timezone)
        else:
            p.timezone = zone
        pid = p.id

    def step(engine, ctx, state, _message):
        return engine.invite(ctx)

    runner.run_turn(svc, step, participant_id=pid, via="queue")
    with svc.db.session() as db:
        queued = list(db.scalars(select(Message.id).where(
            Message.participant_id == pid, Message.status == "queued")))
    delivery.send_outbound(svc, queued)
    return jsonify(ok=True)


@bp.post("/sign")
def sign():
    """Twilio's fields for a text from the phone, signed with the webhook's own token.

    The browser then POSTs them to /twilio/sms itself: the bot checks the signature and
    handles the text exactly as it would one from Twilio."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    address = _address(data.get("phone", ""))
    body = str(data.get("body", ""))[:1600]
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": svc.settings.twilio_account_sid
              or "AC" + "0" * 32, "From": address.phone, "To": TO_NUMBER, "Body": body,
              "NumMedia": "0", "NumSegments": str(sms_text.segments(body)),
              "SmsStatus": "received", "ApiVersion": "2010-04-01"}
    base = svc.settings.public_base_url or request.host_url.rstrip("/")
    # TWILIO_AUTH_TOKEN, or in development the generated token the webhook checks.
    signature = webhook_token.sign(svc.settings, base + "/twilio/sms", params)
    return jsonify(params=params, signature=signature, path="/twilio/sms")


@bp.get("/state")
def state():
    """The clock, the participant, the chat and the timeline, for the page to draw."""
    svc = _services()
    now = svc.clock.now()
    out = {"now": now.isoformat(), "clock": _clock_kind(svc.clock), "participant": None,
           "messages": [], "timeline": []}
    raw = request.args.get("phone", "")
    try:
        address = parse_address(raw, svc.settings.default_region) if raw else None
    except InvalidNumber:
        address = None
    if address is None:
        return jsonify(out)
    with svc.db.session() as db:
        p = people.find(db, address.phone, svc.phone_hash_key)
        if p is None:
            return jsonify(out)
        zone = ZoneInfo(p.timezone)
        out["now_local"] = _local(now, zone)
        out["participant"] = {"status": p.status, "timezone": p.timezone,
                              "flow": ConversationState.from_dict(p.state).flow,
                              "paused_until": _local(p.paused_until, zone)}
        messages = db.scalars(select(Message).where(Message.participant_id == p.id)
                              .order_by(Message.id.desc()).limit(HISTORY)).all()
        out["messages"] = [_message(m, zone) for m in reversed(messages)]
        rows = db.scalars(select(ScheduledMessage).where(ScheduledMessage.participant_id == p.id)
                          .order_by(ScheduledMessage.due_at, ScheduledMessage.id)).all()
        out["timeline"] = [{"id": r.id, "kind": r.kind, "plan": r.plan, "status": r.status,
                            "due": _local(r.due_at, zone),
                            "sent": _local(r.sent_at, zone)} for r in rows]
    return jsonify(out)


def _message(m: Message, zone: ZoneInfo) -> dict:
    """One chat bubble: who, what, when, and what it costs to send."""
    body = m.body or ""
    return {"id": m.id, "direction": m.direction, "body": body, "status": m.status,
            "key": m.key, "nudge": m.scheduled_id is not None, "at": _local(m.created_at, zone),
            "segments": sms_text.segments(body),
            "encoding": "GSM-7" if sms_text.is_gsm7(body) else "UCS-2"}


@bp.post("/clock")
def move_clock():
    """Move the shared clock forward (an hour, a day, or to the next nudge), then run what
    became due."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    step = data.get("step")
    clock = svc.clock
    if not hasattr(clock, "advance"):
        abort(409, "the clock is the real time here: set CLOCK_FILE")
    if step == "next":
        due = _next_due(svc, data.get("phone", ""))
        if due is None:
            return jsonify(ok=False, note="nothing pending", sent=0)
        delta = max(due - clock.now(), timedelta(0))
    elif step in STEPS:
        delta = STEPS[step]
    else:
        abort(400, "step must be hour, day or next")
    clock.advance(seconds=delta.total_seconds())
    return jsonify(ok=True, **run_due(svc))


@bp.post("/send-now")
def send_now():
    """Make one pending nudge due now and run it (the sending window still applies)."""
    svc = _services()
    data = request.get_json(silent=True) or {}
    row_id = data.get("id")
    if not isinstance(row_id, int):
        abort(400, "id must be a scheduled message id")
    now = svc.clock.now()
    with svc.db.session() as db:
        moved = db.execute(update(ScheduledMessage).where(
            ScheduledMessage.id == row_id,
            ScheduledMessage.status == "pending",
        ).values(due_at=now, enqueued_at=None, updated_at=now)).rowcount
    if not moved:
        return jsonify(ok=False, note="not pending any more", sent=0)
    result = run_due(svc)
    with svc.db.session() as db:
        row = db.get(ScheduledMessage, row_id)
        if row.status == "pending" and row.due_at > now:
            p = db.get(Participant, row.participant_id)
            result["note"] = ("outside the 08:00-20:00 window: now due "
                              + _local(row.due_at, ZoneInfo(p.timezone)))
    return jsonify(ok=True, **result)


def run_due(svc) -> dict:
    """Send every nudge due at the clock's time, here and now (a clock-and-worker pass)."""
    now = svc.clock.now()
    scheduling.release_expired_leases(svc, now)
    ids = scheduling.all_due_ids(svc, now)
    outcomes = delivery.deliver_batch(svc, ids) if ids else {}
    return {"sent": outcomes.get("sent", 0), "outcomes": outcomes}


def _next_due(svc, raw_phone: str) -> datetime | None:
    """When the participant's next pending nudge is due (anyone's, without a phone)."""
    with svc.db.session() as db:
        query = select(ScheduledMessage.due_at).where(ScheduledMessage.status == "pending")
        if raw_phone:
            try:
                address = parse_address(raw_phone, svc.settings.default_region)
            except InvalidNumber:
                address = None
            p = people.find(db, address.phone, svc.phone_hash_key) if address else None
            if p is not None:
                query = query.where(ScheduledMessage.participant_id == p.id)
        return db.scalars(query.order_by(ScheduledMessage.due_at).limit(1)).first()


def _clock_kind(clock) -> str:
    """'simulated' when the simulator can move it, else 'real'."""
    return "simulated" if hasattr(clock, "advance") else "real"


def _local(at: datetime | None, zone: ZoneInfo) -> str | None:
    """'Tue 9:00 AM' in the participant's zone."""
    if at is None:
        return None
    return at.astimezone(zone).strftime("%a %b %-d %-I:%M %p")
