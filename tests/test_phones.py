"""Numbers from Twilio and the clinic become E.164 addresses; replies become time zones."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from bot.phones import Address, InvalidNumber, guess_timezone, parse_address, parse_timezone

JANUARY = datetime(2026, 1, 15, 17, 0, tzinfo=UTC)
JULY = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "phone", "channel"),
    [
        ("+15551234567", "+15551234567", "sms"),
        ("whatsapp:+15551234567", "+15551234567", "whatsapp"),
        ("WhatsApp:+447911123456", "+447911123456", "whatsapp"),
        ("(555) 123-4567", "+15551234567", "sms"),
        ("  +1 212-555-0142 \n", "+12125550142", "sms"),
        ("212.555.0142", "+12125550142", "sms"),
        ("+15005550006", "+15005550006", "sms"),  # Twilio test-credential "From"
        ("+15005550001", "+15005550001", "sms"),  # Twilio test "invalid To" still parses
    ],
)
def test_parse_address_accepts_what_twilio_and_the_clinic_send(value, phone, channel):
    assert parse_address(value) == Address(phone=phone, channel=channel)


def test_default_region_applies_to_national_numbers():
    assert parse_address("07911 123456", default_region="GB").phone == "+447911123456"


def test_twilio_address_round_trips():
    for value in ["+15551234567", "whatsapp:+15551234567"]:
        address = parse_address(value)
        assert address.twilio_address == value
        assert parse_address(address.twilio_address) == address


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "whatsapp:",
        "call me",
        "1-800-FLOWERS",
        "+1555123456x",
        "12345",
        "+1212555",
        "+12125550142999",  # too long
        "+1 011 555 0142",  # area codes never start with 0 or 1
        "+999 123 456 789",  # no such country
    ],
)
def test_parse_address_rejects_what_cannot_be_texted(value):
    with pytest.raises(InvalidNumber):
        parse_address(value)


@pytest.mark.parametrize("value", ["+1 011 555 0142", "+12125550142999", "1-800-FLOWERS", "12345"])
def test_invalid_number_message_never_contains_the_digits(value):
    with pytest.raises(InvalidNumber) as caught:
        parse_address(value)
    digits = "".join(ch for ch in value if ch.isdigit())
    message = str(caught.value)
    assert message
    assert digits not in message
    assert value not in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        ("+12125550142", "America/New_York"),  # Manhattan
        ("+13125550142", "America/Chicago"),
        ("+14155552671", "America/Los_Angeles"),
        ("+16025550142", "America/Phoenix"),
        ("whatsapp:+13035550142", "America/Denver"),
        ("+447400123456", "Europe/London"),
        ("+61412345678", "Australia/Sydney"),  # mobile: all of Australia, main zone
        ("+18005550142", "America/New_York"),  # toll-free: every US zone, so the default
        ("+15005550006", "America/New_York"),  # Twilio test number
    ],
)
def test_guess_timezone_from_the_number(phone, zone):
    assert guess_timezone(phone) == zone


@pytest.mark.parametrize(
    "phone",
    [
        "+12125550142",
        "+447911123456",
        "+919876543210",
        "+61412345678",
        "+61212345678",
        "+18005550142",
        "+18885550142",
        "+5511987654321",
        "+79161234567",
        "+15551234567",
    ],
)
def test_guessed_zone_always_loads(phone):
    zoneinfo.ZoneInfo(guess_timezone(phone))


def test_india_maps_to_indian_time():
    zone = zoneinfo.ZoneInfo(guess_timezone("+919876543210"))
    assert JANUARY.astimezone(zone).utcoffset().total_seconds() == 5.5 * 3600


def test_guess_timezone_uses_default_when_unknown_or_unparseable():
    assert guess_timezone("+15551234567", default="America/Chicago") == "America/Chicago"
    assert guess_timezone("not a number", default="America/Denver") == "America/Denver"


def test_guess_timezone_is_stable_for_several_zones_without_the_default():
    first = guess_timezone("+18005550142", default="Europe/Paris")
    assert first == guess_timezone("+18005550142", default="Europe/Paris")
    assert first == "America/New_York"


@pytest.mark.parametrize(
    ("reply", "zone"),
    [
        ("America/Chicago", "America/Chicago"),
        ("america/los_angeles", "America/Los_Angeles"),
        ("I'm in Europe/Berlin now", "Europe/Berlin"),
        ("EST", "America/New_York"),
        ("eastern", "America/New_York"),
        ("Eastern time please!", "America/New_York"),
        ("ET", "America/New_York"),
        ("central", "America/Chicago"),
        ("CT", "America/Chicago"),
        ("cst", "America/Chicago"),
        ("Mountain", "America/Denver"),
        ("MST", "America/Denver"),
        ("arizona", "America/Phoenix"),
        ("mountain time, I'm in Arizona", "America/Phoenix"),
        ("Pacific", "America/Los_Angeles"),
        ("PT", "America/Los_Angeles"),
        ("alaska", "America/Anchorage"),
        ("Hawaii", "Pacific/Honolulu"),
        ("new york", "America/New_York"),
        ("NYC? no, New York City", "America/New_York"),
        ("chicago", "America/Chicago"),
        ("Denver", "America/Denver"),
        ("phoenix", "America/Phoenix"),
        ("Los Angeles", "America/Los_Angeles"),
        ("seattle", "America/Los_Angeles"),
        ("Miami", "America/New_York"),
        ("London", "Europe/London"),
        ("berlin", "Europe/Berlin"),
        ("Paris", "Europe/Paris"),
        ("Sydney", "Australia/Sydney"),
        ("toronto", "America/Toronto"),
        ("Vancouver", "America/Vancouver"),
        ("UTC", "UTC"),
        ("gmt", "UTC"),
    ],
)
def test_parse_timezone_understands_common_replies(reply, zone):
    assert parse_timezone(reply) == zone
    zoneinfo.ZoneInfo(zone)


@pytest.mark.parametrize(
    "reply", ["", "yes", "blue", "not sure", "Chicago or Denver?", "eastern/central", "Mars"]
)
def test_parse_timezone_returns_none_when_unclear(reply):
    assert parse_timezone(reply) is None


def test_utc_offset_uses_the_date_to_pick_a_zone_with_daylight_saving():
    assert parse_timezone("UTC-5", now=JANUARY) == "America/New_York"
    assert parse_timezone("UTC-5", now=JULY) == "America/Chicago"
    assert parse_timezone("gmt+5:30", now=JULY) == "Asia/Kolkata"


def test_utc_offset_without_a_date_is_a_fixed_zone():
    zone = parse_timezone("utc-5")
    assert zone == "Etc/GMT+5"
    assert JULY.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset().total_seconds() == -5 * 3600
    assert parse_timezone("UTC+0") == "UTC"
