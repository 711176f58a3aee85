"""Render the journal back to the participant by SMS (pure).

Without a journal page to link to, JOURNAL answers with the notes themselves: every
session, newest first, each answer whole, packed into texts of at most
MAX_TEXT_SEGMENTS segments and at most MAX_TEXTS texts. What does not fit is the next
page ("JOURNAL 2"), so older sessions stay reachable and nothing is cut mid-word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flows import sms_text
from flows.quoting import to_gsm7

MAX_TEXTS = 5
"""Most texts one JOURNAL reply sends."""

MAX_TEXT_SEGMENTS = 2
"""Longest text, in SMS segments (the same limit as every other text)."""

LABELS = {
    "images": "Came up",
    "insight": "Insight",
    "release": "Let go / bring more",
    "different": "Different now",
    "action": "Small action",
    "note": "Note",
}
"""Short labels for each journaling prompt."""


@dataclass(frozen=True)
class SessionNotes:
    """One session as the digest shows it: a date line, then labelled lines."""

    date: str
    intention: str | None = None
    entries: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (prompt, text)
    mood: int | None = None


def session_lines(session: SessionNotes, heading: str) -> list[str]:
    """The lines of one session: heading, intention, answers in order, 48-hour mood."""
    lines = [heading]
    if session.intention:
        lines.append(f"Intention: {clean(session.intention)}")
    for prompt, text in session.entries:
        lines.append(f"{LABELS.get(prompt, prompt.title())}: {clean(text)}")
    if session.mood is not None:
        lines.append(f"48-hour mood: {session.mood}/5")
    return lines


def paginate(lines: Sequence[str], more: Callable[[int], str], *,
             max_texts: int = MAX_TEXTS, max_segments: int = MAX_TEXT_SEGMENTS) -> list[list[str]]:
    """Pack lines into pages of at most max_texts texts; more(n) ends a page before page n.

    Lines are kept whole where they fit; a line longer than a text is split between
    words (never inside one, unless a single word is longer than a text).
    """
    pages: list[list[str]] = []
    texts: list[str] = []
    current = ""

    def fits(text: str) -> bool:
        # The last text of a page keeps room for the "older notes" line.
        if len(texts) == max_texts - 1:
            text = f"{text}\n{more(len(pages) + 2)}"
        return sms_text.segments(text) <= max_segments

    def fits_anywhere(text: str) -> bool:
        # Pieces of a long line must fit even the last text of a page.
        return sms_text.segments(f"{text}\n{more(max_texts * 99)}") <= max_segments

    def close() -> None:
        nonlocal current, texts
        texts.append(current)
        current = ""
        if len(texts) == max_texts:
            pages.append(texts)
            texts = []

    for line in lines:
        for piece in _pieces(line, fits_anywhere):
            joined = f"{current}\n{piece}" if current else piece
            if fits(joined):
                current = joined
                continue
            close()
            current = piece
    if current:
        texts.append(current)
    if texts:
        pages.append(texts)
    for number, page in enumerate(pages[:-1], start=1):
        page[-1] = f"{page[-1]}\n{more(number + 1)}"
    return pages


def _pieces(line: str, fits: Callable[[str], bool]) -> list[str]:
    """line, or its words regrouped into pieces that each fit a text of their own."""
    if fits(line):
        return [line]
    pieces, current = [], ""
    for word in line.split(" "):
        joined = f"{current} {word}" if current else word
        if fits(joined) or not current:
            current = joined
        else:
            pieces.append(current)
            current = word
    if current:
        pieces.append(current)
    return [piece for chunk in pieces for piece in _hard_split(chunk, fits)]


def _hard_split(piece: str, fits: Callable[[str], bool]) -> list[str]:
    """A single word longer than a text (a pasted link), cut into pieces that fit."""
    if fits(piece):
        return [piece]
    out, current = [], ""
    for ch in piece:
        if current and not fits(current + ch):
            out.append(current)
            current = ""
        current += ch
    return out + ([current] if current else [])


def clean(text: str) -> str:
    """One line of the participant's words folded to GSM-7: single spaces, phones' curly
    quotes straightened, accents GSM-7 lacks dropped, emoji dropped (so the text stays
    GSM-7 and carries 3x the room of UCS-2)."""
    return " ".join(to_gsm7(text).split())
