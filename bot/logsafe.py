"""Logging that keeps participants' messages and phone numbers out of log lines.

The real rule is that code never logs message bodies. A body cannot be recognised
after the fact (it is just text), so it must never be handed to a logger at all:
callers log message SIDs, lengths, segment counts and masked numbers instead, e.g.
``log.info("inbound %s from %s, %d chars", sid, mask_phone(sender), len(body))``.

``PhiFilter`` is the second line of defence, for phone numbers only: it formats each
record and masks anything that looks like a phone number before a handler sees it,
so a number that slips into an f-string or an exception message still never reaches
stderr, gunicorn's log or RQ's log.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""The one format every process uses (web, worker, clock)."""

MIN_PHONE_DIGITS = 7
"""A run with fewer digits than this is a count, a dose or a blood pressure, not a number."""

_MASK = "***"

# Runs that look numeric but must stay readable: ISO dates (optionally with a time),
# UUIDs (RQ job ids) and IPv4 addresses. They are tried before the phone pattern at
# each position, so "2026-11-23 19:05" is not mistaken for a ten-digit number.
_PROTECTED = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\d{1,3}(?:\.\d{1,3}){3}(?![\d.])"
)
# A phone-like run: optional "+" (or its URL encoding "%2B"), then groups of digits,
# each group possibly in parentheses "(555)", joined by at most one space, dash or dot.
# It must not touch a letter or digit on either side, so the digits inside a hex SID
# ("SM1234567ab...") survive; an underscore does not protect it
# ("participant_15551234567" is still masked).
# Two bare digit groups always need a separator between them (only a parenthesis may
# stand alone), so the pattern has one way to match and cannot backtrack explosively.
_GROUP = r"(?:\(\d+\)|\d+)"
_SEPARATOR = r"(?:[ .\-]|(?<=\))|(?=\())"
_PHONE = rf"(?:\+|%2[bB])?{_GROUP}(?:{_SEPARATOR}{_GROUP})*"
_RUN = re.compile(rf"(?<![^\W_])(?:(?P<keep>{_PROTECTED})|(?P<phone>{_PHONE}))(?![^\W_])")
_CHANNEL = re.compile(r"^(?P<channel>[A-Za-z]{1,16}):(?P<rest>.*)$", re.DOTALL)
_PHONE_ONLY = re.compile(r"^\s*\+?[\d ().\-]+\s*$")


def _last4(digits: str) -> str:
    """Return the masked form of a run of digits long enough to be a number."""
    return _MASK + digits[-4:]


def mask_phone(value: str | None) -> str:
    """Mask a phone address for logs: '+15551234567' -> '***4567', keeping a 'whatsapp:' prefix."""
    if not value:
        return "-"
    prefix = ""
    rest = value
    match = _CHANNEL.match(value)
    if match:
        prefix = match.group("channel") + ":"
        rest = match.group("rest")
    digits = "".join(ch for ch in rest if ch.isdigit())
    if not _PHONE_ONLY.match(rest) or len(digits) < MIN_PHONE_DIGITS:
        return _MASK
    return prefix + _last4(digits)


def _mask_match(match: re.Match[str]) -> str:
    """Replace one phone-like run with ***last4, leaving short or protected runs alone."""
    run = match.group("phone")
    if run is None:
        return match.group(0)
    digits = "".join(ch for ch in run if ch.isdigit())
    if run.lower().startswith("%2b"):
        digits = digits[1:]  # the "2" of "%2B" is not part of the number
    if len(digits) < MIN_PHONE_DIGITS:
        return run
    return _last4(digits)


_JOURNAL_TOKEN = re.compile(r"/j/[A-Za-z0-9_\-]+\.[A-Za-z0-9_.\-]+")
"""A journal link's token (bot.journal_links) in a logged path: a key to someone's notes."""


def scrub(text: str) -> str:
    """Mask every phone-number-like run in free text to ***last4, and journal link tokens."""
    return _RUN.sub(_mask_match, _JOURNAL_TOKEN.sub("/j/***", text))


class PhiFilter(logging.Filter):
    """Handler filter that masks phone numbers in the formatted message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with numbers masked; never drops or raises."""
        try:
            message = record.getMessage()
        except Exception:
            # Bad format arguments: logging would print them in its error report, so
            # keep the template (scrubbed) and drop the arguments we cannot format.
            message = f"{record.msg} [log arguments dropped: they did not format]"
        try:
            record.msg = scrub(str(message))
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            if record.exc_text:
                record.exc_text = scrub(record.exc_text)
            if record.stack_info:
                record.stack_info = scrub(record.stack_info)
        except Exception:
            record.msg = "[log message dropped: it could not be masked]"
            record.args = None
        return True


def _ensure_filter(handler: logging.Handler) -> None:
    """Attach one PhiFilter to a handler unless it already has one."""
    if not any(isinstance(f, PhiFilter) for f in handler.filters):
        handler.addFilter(PhiFilter())


def configure_logging(level: str | int = "INFO") -> None:
    """Give the root logger one masked stderr handler; calling again only changes the level."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_integration_bot", False):
            _ensure_filter(handler)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._integration_bot = True  # type: ignore[attr-defined]  # marks ours for idempotence
    _ensure_filter(handler)
    root.addHandler(handler)


def install_filter(logger: logging.Logger | None = None) -> None:
    """Attach PhiFilter to every handler of the given logger (root by default), once each."""
    target = logger if logger is not None else logging.getLogger()
    for handler in target.handlers:
        _ensure_filter(handler)
