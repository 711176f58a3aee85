"""Quoting the participant's own words back in a text (pure, standard library).

Phones send curly quotes, emoji and accented letters; one character outside GSM-7
turns the whole text into UCS-2, cutting a segment from 160 to 70 characters. A quote
is therefore folded to GSM-7 (look-alikes transliterated, accents dropped where GSM-7
lacks the letter, emoji dropped) and cut at a word boundary.
"""

from __future__ import annotations

import unicodedata

from flows import sms_text

QUOTE_LENGTH = 60
"""Longest piece of the participant's own words quoted back in a text."""

_LOOK_ALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ",
    "\u2022": "-", "\u00b7": "-",
}
"""Characters phones insert, with the GSM-7 text that reads the same."""


def to_gsm7(text: str) -> str:
    """text with every character GSM-7 can carry; look-alikes swapped, the rest dropped."""
    out = []
    for ch in text:
        if ch in _LOOK_ALIKES:
            out.append(_LOOK_ALIKES[ch])
        elif sms_text.is_gsm7(ch):
            out.append(ch)
        else:
            # "á" -> "a", "ﬁ" -> "fi"; an emoji decomposes to nothing GSM-7 knows.
            base = unicodedata.normalize("NFKD", ch)
            out.append("".join(c for c in base if sms_text.is_gsm7(c)))
    return "".join(out)


def quote(text: str, limit: int = QUOTE_LENGTH) -> str:
    """The participant's words for echoing back: GSM-7, one line, cut at a word boundary."""
    # Double quotes go: the quote is already inside straight double quotes.
    flat = " ".join(to_gsm7(text).replace('"', "").split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 3]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "..."


def fits(text: str) -> bool:
    """Whether a finished text is plain GSM-7 within the 2-segment limit."""
    return not sms_text.problems(text)
