"""The HTTP boundary of Twilio's webhooks: body size, and each field's type and range.

Anything a phone (or a forger with the token) can put in a request either fits
what Twilio sends or is refused with 400 before it reaches the database: no
500 from input. Twilio may add fields without notice, so unknown fields pass.
"""

from __future__ import annotations

import re

from flask import Flask, Response, request

MAX_CONTENT_LENGTH = 64 * 1024
"""Largest request body accepted (bytes). Twilio's inbound form is a few KB: a 1600-char
body, up to 10 media URLs and the location fields; anything bigger is refused with 413
before it is read."""

MAX_NUM_MEDIA = 10
"""Twilio attaches at most 10 media items to one message."""

MAX_ERROR_CODE = 99_999
"""Twilio's error codes have at most five digits."""

MAX_BODY_CHARS = 1600
"""Twilio's longest message body; longer text is cut (Twilio never sends more)."""

_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_STATUS = re.compile(r"[a-z_-]{1,32}")
_OPT_OUT = re.compile(r"[A-Za-z]{1,16}")


class FormError(ValueError):
    """A field Twilio would never send: answered with 400, nothing stored."""


def init_app(app: Flask) -> None:
    """Refuse oversized bodies early: by Content-Length before reading, and while parsing."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_CONTENT_LENGTH

    @app.before_request
    def _refuse_oversized() -> Response | None:
        # Checked before the signature: a forged 100 MB body must not be read to be refused.
        if (request.content_length or 0) > MAX_CONTENT_LENGTH:
            return Response("request too large\n", status=413, mimetype="text/plain")
        return None


def message_sid(form) -> str:
    """MessageSid (or SmsMessageSid / SmsSid): letters and digits, 2-64 of them."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid") or ""
    if not _SID.fullmatch(sid):
        raise FormError("missing or malformed MessageSid")
    return sid


def num_media(form) -> int:
    """NumMedia: 0 when absent, else a whole number 0-10."""
    return _bounded_int(form.get("NumMedia"), MAX_NUM_MEDIA, "NumMedia") or 0


def error_code(form) -> int | None:
    """ErrorCode of a status callback: None when absent or 0, else 1-99999."""
    return _bounded_int(form.get("ErrorCode"), MAX_ERROR_CODE, "ErrorCode") or None


def message_status(form) -> str:
    """MessageStatus (or SmsStatus), lower case, letters, '_' and '-' only."""
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
    if not _STATUS.fullmatch(status):
        raise FormError("missing or malformed MessageStatus")
    return status


def body(form) -> str:
    """Body, cut to Twilio's 1600 characters, without NUL characters (no store takes them)."""
    return form.get("Body", "")[:MAX_BODY_CHARS].replace("\x00", "")


def opt_out_type(form) -> str | None:
    """OptOutType (STOP/START/HELP with Advanced Opt-Out); None when absent or unexpected."""
    value = form.get("OptOutType") or ""
    return value if _OPT_OUT.fullmatch(value) else None


def _bounded_int(raw: str | None, highest: int, name: str) -> int | None:
    """A decimal field as an int in 0..highest; None when absent; FormError otherwise."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(highest)) or int(raw) > highest:
        raise FormError(f"{name} out of range")
    return int(raw)
