"""No full phone number reaches a log line, while the rest of the line stays readable."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from bot.logsafe import LOG_FORMAT, PhiFilter, configure_logging, install_filter, mask_phone, scrub


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+15551234567", "***4567"),
        ("whatsapp:+447911123456", "whatsapp:***3456"),
        ("+1 (555) 123-4567", "***4567"),
        (None, "-"),
        ("", "-"),
        ("12", "***"),
        ("12345", "***"),
        ("not a number", "***"),
        ("whatsapp:", "***"),
        ("sip:alice@example.org", "***"),
    ],
)
def test_mask_phone(value, expected):
    assert mask_phone(value) == expected


def test_scrub_masks_numbers_in_every_common_format():
    line = (
        "from +15551234567 to whatsapp:+447911123456, clinic (555) 987-6543, "
        "fax 555.222.3333, intl +44 20 7946 0958, form To=%2B15005550006&x=1"
    )
    scrubbed = scrub(line)
    for number in ["15551234567", "447911123456", "987-6543", "555.222", "7946", "5550006"]:
        assert number not in scrubbed
    assert scrubbed == (
        "from ***4567 to whatsapp:***3456, clinic ***6543, "
        "fax ***3333, intl ***0958, form To=***0006&x=1"
    )


@pytest.mark.parametrize(
    "line",
    [
        "reply 5 received",
        "blood pressure 180/120 noted",
        "session on 2026-11-23 at 19:05",
        "due 2026-11-23T19:05:00 and 2026-11-24 08:00:00.123",
        "3 segments, 160 chars, participant 42",
        "sid SMa1b2c31234567890abcdef12345678 delivered",
        "job 12345678-1234-5678-9012-123456789012 queued",
        "client 192.168.100.200 port 5000",
    ],
)
def test_scrub_leaves_short_numbers_dates_sids_and_ids_alone(line):
    assert scrub(line) == line


def test_scrub_is_stable_when_applied_twice():
    once = scrub("call +15551234567")
    assert scrub(once) == once == "call ***4567"


def make_record(msg, args=(), exc_info=None):
    """Build a LogRecord as a logger would."""
    return logging.LogRecord("bot.test", logging.INFO, __file__, 1, msg, args, exc_info)


def test_filter_masks_numbers_passed_as_arguments_and_keeps_the_record():
    record = make_record("inbound %s from %s (%d chars)", ("SM0123abcd", "+15551234567", 12))
    assert PhiFilter().filter(record) is True
    assert record.getMessage() == "inbound SM0123abcd from ***4567 (12 chars)"
    assert record.name == "bot.test"
    assert record.levelno == logging.INFO


def test_filter_masks_numbers_in_dict_arguments():
    record = make_record("to %(to)s", ({"to": "whatsapp:+15551234567"},))
    PhiFilter().filter(record)
    assert record.getMessage() == "to whatsapp:***4567"


def test_filter_never_raises_on_arguments_that_do_not_format():
    record = make_record("two %s %s for +15551234567", ("one",))
    assert PhiFilter().filter(record) is True
    message = record.getMessage()
    assert "15551234567" not in message
    assert "***4567" in message


def test_filter_masks_numbers_in_tracebacks():
    try:
        raise ValueError("cannot reach +15551234567")
    except ValueError:
        record = make_record("send failed", exc_info=sys.exc_info())
    PhiFilter().filter(record)
    line = logging.Formatter(LOG_FORMAT).format(record)
    assert "15551234567" not in line
    assert "cannot reach ***4567" in line


def test_a_logger_with_the_filter_writes_masked_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("bot.test.logsafe.stream")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        install_filter(logger)
        install_filter(logger)  # twice: still one filter
        logger.info("nudge sent to %s", "+15551234567")
        logger.warning(f"f-string slip: {'+447911123456'}")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "15551234567" not in output and "447911123456" not in output
    assert "INFO bot.test.logsafe.stream nudge sent to ***4567" in output
    assert "WARNING bot.test.logsafe.stream f-string slip: ***3456" in output
    assert sum(isinstance(f, PhiFilter) for f in handler.filters) == 1


@pytest.fixture
def clean_root():
    """Let a test configure the root logger and put it back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers = [h for h in saved_handlers if not getattr(h, "_integration_bot", False)]
    yield root
    root.handlers, root.level = saved_handlers, saved_level


def test_configure_logging_is_idempotent_and_masks(clean_root, capsys):
    before = len(clean_root.handlers)
    configure_logging("DEBUG")
    configure_logging("WARNING")
    ours = [h for h in clean_root.handlers if getattr(h, "_integration_bot", False)]
    assert len(ours) == 1
    assert len(clean_root.handlers) == before + 1
    assert clean_root.level == logging.WARNING
    assert any(isinstance(f, PhiFilter) for f in ours[0].filters)
    assert ours[0].formatter._fmt == LOG_FORMAT

    stream = io.StringIO()
    ours[0].setStream(stream)
    logging.getLogger("bot.webhook").warning("unknown sender %s", "+15551234567")
    assert "WARNING bot.webhook unknown sender ***4567" in stream.getvalue()
    assert "15551234567" not in stream.getvalue()
