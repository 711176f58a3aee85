"""Render a session's journal entries back to the participant (pure).

JOURNAL answers with the most recent session's entries, newest first, in at
most JOURNAL_MAX_SEGMENTS segments: whole entries while they fit, then the
last one cut short with "...", then a note that there is more.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows import sms_text
from flows.quoting import to_gsm7

JOURNAL_MAX_SEGMENTS = 3
"""Longest JOURNAL reply, in SMS segments."""

LABELS = {
    "images": "Came up",
    "insight": "Insight",
    "release": "Let go / bring more",
    "different": "Different now",
    "action": "Small action",
    "note": "Note",
}
"""Short labels for each journaling prompt."""


def render_journal(
    entries: Sequence[tuple[str, str]],
    header: str,
    more: str,
    max_segments: int = JOURNAL_MAX_SEGMENTS,
) -> str:
    """Header plus 'Label: text' lines for entries (newest first) within max_segments."""
    text = header
    for prompt, body in entries:
        line = f"\n{LABELS.get(prompt, prompt.title())}: {' '.join(_straight(body).split())}"
        if sms_text.segments(text + line) <= max_segments:
            text += line
            continue
        cut = _fit(text, line, f"...\n{more}", max_segments)
        if cut:
            return cut
        return text + f"\n{more}" if _fits(text + f"\n{more}", max_segments) else text
    return text


def _fits(text: str, max_segments: int) -> bool:
    """Whether text stays within max_segments."""
    return sms_text.segments(text) <= max_segments


def _fit(text: str, line: str, tail: str, max_segments: int) -> str | None:
    """The longest prefix of line (at least a few words) that fits with tail, or None."""
    low, high, best = 0, len(line), None
    while low <= high:
        mid = (low + high) // 2
        candidate = text + line[:mid].rstrip() + tail
        if _fits(candidate, max_segments):
            best, low = candidate, mid + 1
        else:
            high = mid - 1
    label_end = line.find(": ") + 2
    if best is None or len(best) - len(text) - len(tail) < label_end + 10:
        return None
    return best


def _straight(text: str) -> str:
    """The participant's words folded to GSM-7 (curly quotes straightened, emoji dropped),
    so the reply keeps 3x the room of UCS-2."""
    return to_gsm7(text.replace("\u201c", '"').replace("\u201d", '"'))
