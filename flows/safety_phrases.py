"""Word-gated phrase lists for the safety rules (pure, standard library only).

Trying a few hundred alternatives at every word of a long text is slow, so each phrase is
compiled on its own and only run when the text holds a word the phrase cannot match
without. The gate is read off the phrase's own source, conservatively: when in doubt a
phrase gets no gate and always runs. tests/test_safety.py checks the gates.
"""

from __future__ import annotations

import re
from typing import Protocol

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_GATE_WORD = re.compile(r"[a-z0-9']+")
TRACKED_WORDS: set[str] = set()
"""Words whose positions a text records: those phrases start with (filled in as the phrase
lists are built) and the conjunctions that split clauses."""


_COMMON = frozenset(
    "i to my the a an and of it is in on be so just at for with that this you am are was or"
    " not no do all me i'm up out".split()
)


def _group_end(source: str, start: int) -> int:
    """Index of the parenthesis closing the group that opens at start."""
    depth, i = 0, start
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = source.index("]", i + 1) + 1
            continue
        depth += (c == "(") - (c == ")")
        if depth == 0:
            return i
        i += 1
    raise ValueError(f"unbalanced group in {source!r}")


def _split_top(source: str) -> list[str]:
    """Split source at its top-level '|' characters."""
    parts, depth, last, i = [], 0, 0, 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            i = source.index("]", i + 1) + 1
            continue
        if c in "()":
            depth += 1 if c == "(" else -1
        elif c == "|" and depth == 0:
            parts.append(source[last:i])
            last = i + 1
        i += 1
    return parts + [source[last:]]


def _atoms(source: str) -> list[tuple[str, str]]:
    """Top-level pieces of source: ('word', w), ('group', body), ('space', ' ') or ('other', '')."""
    atoms: list[tuple[str, str]] = []
    i = 0
    while i < len(source):
        c = source[i]
        if c == "(":
            end = _group_end(source, i)
            quantified = end + 1 < len(source) and source[end + 1] in "?*{"
            body = source[i + 1:end]
            plain = body.startswith("?:") and not quantified
            atoms.append(("group", body[2:]) if plain else ("other", ""))
            i = end + 1 + (1 if quantified and source[end + 1] != "{" else 0)
        elif c == " ":
            atoms.append(("space", " "))
            i += 1
        elif c == "{":
            i = source.index("}", i) + 1
            i += i < len(source) and source[i] == "?"
            atoms.append(("other", ""))
        elif _GATE_WORD.match(c):
            word = _GATE_WORD.match(source, i).group(0)
            i += len(word)
            quantified = i < len(source) and source[i] in "?*+{"
            # A gate word must be a whole token of the text, never a part like "'d".
            if not quantified and TOKEN.fullmatch(word):
                atoms.append(("word", word))
            else:
                stem = word[:-1] if quantified and source[i] != "+" else word
                atoms.append(("stem", stem))
        else:
            if c == "\\":
                i += 1
            elif c == "[":
                i = source.index("]", i)
            atoms.append(("other", ""))
            i += 1
    return atoms


def _leading_words(body: str) -> frozenset[str] | None:
    """The first word of every alternative in a group body, or None if one has none."""
    words = set()
    for alternative in _split_top(body):
        atoms = _atoms(alternative)
        if not atoms or atoms[0][0] != "word":
            return None
        if len(atoms) > 1 and atoms[1][0] != "space":
            return None
        words.add(atoms[0][1])
    return frozenset(words)


def _gate(source: str) -> frozenset[str] | None:
    """Strings of which every match of source contains at least one, or None if unsure."""
    if len(_split_top(source)) > 1:
        return None
    candidates = []
    for kind, value in _atoms(source):
        if kind in ("word", "stem"):
            candidates.append(frozenset([value]))
        elif kind == "group":
            firsts = [_atoms(alternative)[:1] for alternative in _split_top(value)]
            if all(f and f[0][0] in ("word", "stem") for f in firsts):
                candidates.append(frozenset(f[0][1] for f in firsts))
    candidates = [c for c in candidates if min(map(len, c)) >= 3]
    if not candidates:
        return None
    # Rarer strings prune more: avoid common words, prefer few and long ones.
    return min(candidates, key=lambda g: (bool(g & _COMMON), len(g), -min(map(len, g))))


def _leading(source: str) -> frozenset[str] | None:
    """Words one of which starts every match of source, or None when that is not plain."""
    if len(_split_top(source)) > 1:
        return None
    atoms = _atoms(source)
    if not atoms:
        return None
    kind, value = atoms[0]
    rest = source[len(value):] if kind == "word" else source[_group_end(source, 0) + 1:]
    # The word must end where the text's word ends: next comes a space, the end, or a
    # zero-width or optional part that starts with a space.
    if rest and not rest.startswith((" ", "(?: ", "(?=", "(?!")):
        return None
    if kind == "word":
        return frozenset([value])
    if kind == "group":
        return _leading_words(value)
    return None


class Scanned(Protocol):
    """What a phrase list needs to know of a text."""

    text: str
    words: frozenset[str]
    positions: dict[str, list[int]]


class Phrases:
    """Alternative phrases, each tried only where the text holds a word it needs.

    A phrase that starts with known words is matched only at those words; any other is
    searched for in the whole text, and only when a word it cannot match without is there.
    """

    def __init__(self, *alternatives: str) -> None:
        self.entries = tuple((source, _leading(source), _gate(source)) for source in alternatives)
        by_word: dict[str, list[str]] = {}
        scanned = []
        for source, lead, gate in self.entries:
            if lead:
                for word in lead:
                    by_word.setdefault(word, []).append(r"(?:" + source + r")\b")
            else:
                scanned.append((gate, re.compile(r"\b(?:" + source + r")\b")))
        # One pattern per starting word, so each place that word occurs costs one match.
        self.anchored = {word: re.compile("|".join(found)) for word, found in by_word.items()}
        self.lead_words = frozenset(by_word)
        TRACKED_WORDS.update(by_word)
        self.scanned = tuple(scanned)

    def finditer(self, ctx: Scanned) -> list[re.Match[str]]:
        """All matches of the phrases in the context's text."""
        text, found = ctx.text, []
        for word in self.lead_words & ctx.words:
            match = self.anchored[word].match
            for pos in ctx.positions[word]:
                m = match(text, pos)
                if m:
                    found.append(m)
        for gate, pattern in self.scanned:
            if gate is None or any(part in text for part in gate):
                found.extend(pattern.finditer(text))
        return found

    def search(self, ctx: Scanned) -> bool:
        """True when any phrase matches somewhere in the context's text."""
        return bool(self.finditer(ctx))


def finder(word: str, inside: str) -> re.Pattern[str]:
    """A pattern for word standing alone (no `inside` character either side of it).

    It starts with the word itself, so re can skip through the text fast; the
    character before is checked by a fixed-width lookbehind after the word.
    """
    w = re.escape(word)
    return re.compile(w + r"(?<!" + inside + w + r")(?!" + inside + r")")


