"""Phone addresses and time zones from what Twilio and the clinic give us.

Twilio sends "+15551234567" for SMS and "whatsapp:+15551234567" for WhatsApp; the
clinic's enrollment sheet has whatever a person typed, like "(555) 123-4567".
Everything is normalised to E.164 plus a channel. Error messages never contain the
number, so an InvalidNumber can be logged or shown to staff safely.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers import timezone as phone_timezones

SMS = "sms"
WHATSAPP = "whatsapp"
_WHATSAPP_PREFIX = "whatsapp:"

TEST_NUMBER_PREFIXES = ("+1500555", "+1555")
"""E.164 prefixes accepted even when phonenumbers does not call them valid.

"+1 500 555 xxxx" is the range of Twilio's test-credential magic numbers
(+15005550006 sends, +15005550001 fails with 21211, ...), and area code 555 is the
fictional range used in Twilio's docs, our fixtures and clinic demos. Neither belongs
to a real subscriber, so accepting them (when they still have a possible length) lets
tests and demos run end to end, while a real typo elsewhere is still rejected.
"""

PREFERRED_ZONES = {
    1: "America/New_York",
    7: "Europe/Moscow",
    44: "Europe/London",
    52: "America/Mexico_City",
    55: "America/Sao_Paulo",
    61: "Australia/Sydney",
}
"""By country calling code: the most populous zone of a country whose numbers map to several."""


@dataclass(frozen=True)
class Address:
    """A participant's address: an E.164 number and the channel it is reached on."""

    phone: str
    channel: str

    @property
    def twilio_address(self) -> str:
        """Return the form Twilio expects in To/From: '+1555...' or 'whatsapp:+1555...'."""
        if self.channel == WHATSAPP:
            return _WHATSAPP_PREFIX + self.phone
        return self.phone


class InvalidNumber(ValueError):
    """A value that is not a usable phone number; the message never contains the number."""


def _is_test_number(e164: str) -> bool:
    """Say whether an E.164 number is in a reserved test or fictional range."""
    return e164.startswith(TEST_NUMBER_PREFIXES)


def parse_address(value: str, default_region: str = "US") -> Address:
    """Parse a Twilio address or a typed number into an Address; raises InvalidNumber."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidNumber("phone number is empty")
    text = value.strip()
    channel = SMS
    if text.lower().startswith(_WHATSAPP_PREFIX):
        channel = WHATSAPP
        text = text[len(_WHATSAPP_PREFIX) :].strip()
    if any(ch.isalpha() for ch in text):
        # phonenumbers reads "1-800-FLOWERS" as digits; a participant's number has no letters.
        raise InvalidNumber("phone number contains letters")
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        raise InvalidNumber("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidNumber("phone number has the wrong number of digits")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not (phonenumbers.is_valid_number(number) or _is_test_number(e164)):
        raise InvalidNumber("phone number is not in use in its country")
    return Address(phone=e164, channel=channel)


@cache
def _loadable(zone: str) -> bool:
    """Say whether zoneinfo can load a zone name."""
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def guess_timezone(phone: str, default: str = "America/New_York") -> str:
    """Guess a participant's IANA zone from their number; default when it is unknown or unclear."""
    text = phone.strip()
    if text.lower().startswith(_WHATSAPP_PREFIX):
        text = text[len(_WHATSAPP_PREFIX) :]
    try:
        number = phonenumbers.parse(text, None)
    except NumberParseException:
        return default
    zones = sorted(
        z
        for z in phone_timezones.time_zones_for_number(number)
        if z != "Etc/Unknown" and _loadable(z)
    )
    if not zones:
        return default
    if len(zones) == 1:
        return zones[0]
    # Several zones (a toll-free number, a country spanning zones): prefer the default,
    # then the country's main zone, then the first name, so the answer never flips.
    if default in zones:
        return default
    preferred = PREFERRED_ZONES.get(number.country_code)
    if preferred in zones:
        return preferred
    return zones[0]


from flows.timezones import parse_timezone  # noqa: E402  (re-exported)

__all__ = ["Address", "InvalidNumber", "guess_timezone", "parse_address", "parse_timezone"]
