"""Twilio's webhooks: inbound texts (/twilio/sms), delivery status (/twilio/status), /healthz.

Every Twilio request is checked with the SDK's RequestValidator before it can
change anything; a forged or unsigned request gets 403 and leaves no trace.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from bot import delivery, queue, replay, runner, spool
from bot import webhook_form as fields
from bot.phones import InvalidNumber, parse_address
from bot.webhook_token import webhook_token
from flows import safety

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__)


def services():
    """The process's adapters (built by create_app)."""
    return current_app.extensions["integration_bot"]


def twiml(texts: list[str]) -> Response:
    """A TwiML reply with one <Message> per text, or <Response/> for none."""
    reply = MessagingResponse()
    for text in texts:
        reply.message(text)
    return Response(str(reply), mimetype="application/xml")


def signature_ok() -> bool:
    """Whether X-Twilio-Signature matches, against PUBLIC_BASE_URL when it is set."""
    settings = services().settings
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        # Only an explicit development switch lets an unsigned request in.
        return settings.allow_unsigned_webhooks and not settings.production
    token = webhook_token(settings)
    if not token:
        return False
    if settings.public_base_url:
        query = request.query_string.decode()
        url = settings.public_base_url + request.path + (f"?{query}" if query else "")
    else:
        url = request.url
    return RequestValidator(token).validate(url, request.form, signature)


def _forbidden() -> Response:
    """403 without touching anything."""
    return Response("forbidden\n", status=403, mimetype="text/plain")


def _bad_request(why: str) -> Response:
    """A clear 400 (Twilio logs it; nothing was stored)."""
    return Response(f"bad request: {why}\n", status=400, mimetype="text/plain")


@bp.post("/twilio/sms")
def inbound_sms() -> Response:
    """Record the text, run the turn, and answer with TwiML."""
    if not signature_ok():
        log.warning("rejected /twilio/sms with a missing or invalid signature")
        return _forbidden()
    form = request.form
    try:
        sid = fields.message_sid(form)
        address = parse_address(form.get("From", ""), services().settings.default_region)
        inbound = runner.Inbound(
            sid=sid, address=address, body=fields.body(form),
            num_media=fields.num_media(form), opt_out_type=fields.opt_out_type(form),
        )
    except InvalidNumber:
        return _bad_request("From is not a valid phone number")
    except fields.FormError as error:
        return _bad_request(str(error))
    assessment = _assess(inbound.body)  # before the database: a crisis reply never waits on it
    try:
        received = runner.receive(services(), inbound)  # one transaction
    except SQLAlchemyError:
        log.exception("database unreachable for inbound %s: spooling it", sid)
        return twiml(_database_down(inbound, assessment))
    if not received.new:
        log.info("replayed MessageSid %s: answering as before", sid)
        outcome, replies = replay.first_copy_outcome(services(), received.message_id)
        return twiml(_safety_fallback(inbound, assessment) if outcome == "failed" else replies)
    if received.failed:  # stored as failed (bot.runner.receive): a worker retries it
        _enqueue_retry(received.message_id)
        return twiml(_safety_fallback(inbound, assessment))
    return twiml(list(received.replies))


LAST_RESORT_CRISIS_TEXT = (
    "If you are in danger or thinking about suicide, call or text 988 now, or text HOME to "
    "741741. For an emergency call 911."
)
"""Sent when processing failed and the text looks like a crisis: 988 must never wait."""


def _assess(body: str):
    """The safety assessment of a text (None if the detector itself failed)."""
    try:
        return safety.assess(body)
    except Exception:
        log.exception("safety assessment failed")
        return None


def _database_down(inbound: runner.Inbound, assessment) -> list[str]:
    """Spool the text; a risky one still gets its reply and a page (see bot.spool)."""
    svc = services()
    try:
        return spool.database_down(svc, inbound, assessment or safety.NO_CONCERN,
                                   svc.clock.now(), safety.reply_key)
    except Exception:
        log.exception("spooling inbound %s failed", inbound.sid)
        if assessment is not None and (assessment.alert or assessment.level == "check"):
            return [LAST_RESORT_CRISIS_TEXT]
        return []


def _safety_fallback(inbound: runner.Inbound, assessment) -> list[str]:
    """When the turn crashed, a risky text still gets its reply and the care team a page."""
    if assessment is None or not (assessment.alert or assessment.level == "check"):
        return []
    try:
        # The text is stored and a worker retries it (raising the alert with its id); the
        # page goes now, because the retry may be the next thing to fail.
        return spool.risky_reply(services(), inbound, assessment, safety.reply_key)
    except Exception:
        log.exception("crisis template failed; sending the last-resort crisis text")
        return [LAST_RESORT_CRISIS_TEXT]


@bp.post("/twilio/status")
def status_callback() -> Response:
    """Twilio's delivery report for a text we sent."""
    if not signature_ok():
        return _forbidden()
    try:
        sid, status = fields.message_sid(request.form), fields.message_status(request.form)
        code = fields.error_code(request.form)
    except fields.FormError as error:
        return _bad_request(str(error))
    delivery.record_status(services(), sid, status, code)
    return Response("", status=204)


@bp.get("/healthz")
def healthz():
    """Database and Redis reachability (200 only when both answer)."""
    svc = services()
    database = svc.db.ping()
    try:
        redis_ok = bool(svc.redis_url) and bool(svc.redis.ping())
    except Exception:
        redis_ok = False
    ok = database and redis_ok
    body = {"status": "ok" if ok else "degraded", "database": database, "redis": redis_ok,
            "sms_backend": svc.settings.backend}
    return jsonify(body), 200 if ok else 503


def _enqueue_retry(message_id: int) -> None:
    """Hand a failed inbound text to a worker (the clock re-drives it if Redis is down)."""
    try:
        queue.enqueue_inbound_retry(services(), message_id)
    except Exception:
        log.exception("could not enqueue retry for inbound message %s", message_id)

