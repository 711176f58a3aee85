"""Reading a time zone from a participant's reply (pure, standard library).

Used by the engine when it asks for a time zone; bot.phones re-exports it.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime, timedelta
from functools import cache

# Words a participant might use for a zone. Looked up after exact IANA names.
_ZONE_WORDS = {
    "eastern": "America/New_York",
    "est": "America/New_York",
    "edt": "America/New_York",
    "et": "America/New_York",
    "central": "America/Chicago",
    "cst": "America/Chicago",
    "cdt": "America/Chicago",
    "ct": "America/Chicago",
    "mountain": "America/Denver",
    "mst": "America/Denver",
    "mdt": "America/Denver",
    "mt": "America/Denver",
    "arizona": "America/Phoenix",
    "pacific": "America/Los_Angeles",
    "pst": "America/Los_Angeles",
    "pdt": "America/Los_Angeles",
    "pt": "America/Los_Angeles",
    "alaska": "America/Anchorage",
    "akst": "America/Anchorage",
    "akdt": "America/Anchorage",
    "hawaii": "Pacific/Honolulu",
    "hst": "Pacific/Honolulu",
    "utc": "UTC",
    "gmt": "UTC",
    "chicago": "America/Chicago",
    "denver": "America/Denver",
    "phoenix": "America/Phoenix",
    "seattle": "America/Los_Angeles",
    "miami": "America/New_York",
    "london": "Europe/London",
    "berlin": "Europe/Berlin",
    "paris": "Europe/Paris",
    "sydney": "Australia/Sydney",
    "toronto": "America/Toronto",
    "vancouver": "America/Vancouver",
}
_ZONE_PHRASES = {
    "new york": "America/New_York",
    "los angeles": "America/Los_Angeles",
}
# Zones tried, in order, when a reply gives a UTC offset and we know the date: the
# first whose offset matches on that date wins, so "UTC-5" is Chicago in July and
# New York in January.
_OFFSET_CANDIDATES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Paris",
    "Asia/Kolkata",
    "Australia/Sydney",
)
_IANA = re.compile(r"[a-z]+(?:/[a-z0-9_+\-]+){1,2}")
_OFFSET = re.compile(r"\b(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\b")
_WORD = re.compile(r"[a-z]+")


@cache
def _iana_names() -> dict[str, str]:
    """Map lower-case IANA names to their proper spelling."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _zone_for_offset(
    sign: str, hours: str, minutes: str | None, now: datetime | None
) -> str | None:
    """Turn 'UTC-5' into a zone: a common zone with that offset on `now`, else Etc/GMT."""
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if sign == "-":
        offset = -offset
    if not offset:
        return "UTC"
    if now is not None and now.tzinfo is not None:
        for zone in _OFFSET_CANDIDATES:
            if now.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset() == offset:
                return zone
    if offset.seconds % 3600 or not timedelta(hours=-12) <= offset <= timedelta(hours=14):
        return None
    whole = int(offset.total_seconds() // 3600)
    # POSIX sign convention: Etc/GMT+5 is five hours *behind* UTC.
    return f"Etc/GMT{-whole:+d}"


def parse_timezone(text: str, now: datetime | None = None) -> str | None:
    """Read a zone from a reply ('central', 'EST', 'Chicago', 'UTC-5'); None when unclear."""
    lowered = (text or "").lower()
    for candidate in _IANA.findall(lowered):
        if candidate in _iana_names():
            return _iana_names()[candidate]
    offset = _OFFSET.search(lowered)
    if offset:
        return _zone_for_offset(*offset.groups(), now=now)
    words = _WORD.findall(lowered)
    padded = f" {' '.join(words)} "
    found = {zone for phrase, zone in _ZONE_PHRASES.items() if f" {phrase} " in padded}
    found |= {_ZONE_WORDS[word] for word in words if word in _ZONE_WORDS}
    if "arizona" in words:
        # Arizona keeps mountain standard time all year, so it wins over "mountain"/"MST".
        found -= {"America/Denver"}
    if len(found) == 1:
        return found.pop()
    return None  # nothing recognised, or two different zones named: ask again


_FRIENDLY = {
    "America/New_York": "Eastern time (New York)",
    "America/Chicago": "Central time (Chicago)",
    "America/Denver": "Mountain time (Denver)",
    "America/Phoenix": "Arizona time (Phoenix)",
    "America/Los_Angeles": "Pacific time (Los Angeles)",
    "America/Anchorage": "Alaska time",
    "Pacific/Honolulu": "Hawaii time",
    "UTC": "UTC",
}


def describe_zone(zone: str) -> str:
    """A zone as people say it: 'Eastern time (New York)', else its city ('Buenos Aires')."""
    if zone in _FRIENDLY:
        return _FRIENDLY[zone]
    if zone.startswith("Etc/"):
        return zone[4:]
    return zone.rsplit("/", 1)[-1].replace("_", " ") + " time"
