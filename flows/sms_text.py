"""GSM-7 character checks and SMS segment counting (standard library only).

One character outside the GSM-7 alphabet turns a whole message into UCS-2,
which cuts a segment from 160 to 70 characters, so the words we write stay
inside GSM-7 and within two segments.
"""

from __future__ import annotations

# GSM 03.38 basic character set (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (escape + character).
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE_SEGMENT_GSM7 = 160
"""Characters in a GSM-7 message that fits one segment."""
MULTI_SEGMENT_GSM7 = 153
"""Characters per segment once a GSM-7 message is split (UDH takes 7)."""
SINGLE_SEGMENT_UCS2 = 70
MULTI_SEGMENT_UCS2 = 67
MAX_SEGMENTS = 2
"""Most segments any message the bot writes may take."""


def non_gsm7_chars(text: str) -> list[str]:
    """Return the distinct characters of text that GSM-7 cannot encode, in order."""
    seen: list[str] = []
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED and ch not in seen:
            seen.append(ch)
    return seen


def is_gsm7(text: str) -> bool:
    """True when every character of text is in the GSM-7 alphabet."""
    return not non_gsm7_chars(text)


def septets(text: str) -> int:
    """Count GSM-7 septets (extension characters count twice)."""
    return sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)


def segments(text: str) -> int:
    """Number of SMS segments text takes, GSM-7 when it can be, else UCS-2."""
    if not text:
        return 1
    if is_gsm7(text):
        length, single, multi = septets(text), SINGLE_SEGMENT_GSM7, MULTI_SEGMENT_GSM7
    else:
        # UTF-16 code units: emoji outside the BMP take two.
        length = len(text.encode("utf-16-le")) // 2
        single, multi = SINGLE_SEGMENT_UCS2, MULTI_SEGMENT_UCS2
    if length <= single:
        return 1
    return -(-length // multi)


def problems(text: str, *, max_segments: int = MAX_SEGMENTS) -> list[str]:
    """Describe what makes text unfit to send as written (empty list when fine)."""
    found = []
    bad = non_gsm7_chars(text)
    if bad:
        found.append("characters outside GSM-7: " + " ".join(repr(c) for c in bad))
    count = segments(text)
    if count > max_segments:
        found.append(f"{count} segments (at most {max_segments})")
    return found
