"""Normalising texts before the safety rules read them (pure, standard library only).

People text in every spelling: "im", "wanna", "kms", "k1ll mys3lf", "s u i c i d e",
"killmyself", "diiieee", emoji. One normalised form lets one rule cover them all. The
word lists live in flows/definitions/safety_rules.toml ([normalise]); this module only
applies them, cheapest checks first, so an ordinary text costs a few microseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from flows.safety_phrases import TOKEN, finder

_CHAR_MAP = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u02bc": "'", "`": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
        "\u2012": " - ", "\u2013": " - ", "\u2014": " - ", "\u2015": " - ",
        "\ufe0f": "", "\u200d": "",
    }
)
_SELF_RE = re.compile(r"self(?<![a-z0-9]self)(?:-|(?=harm|injur))")
_WITH_RE = re.compile(r"w/o\b|w/ ?")
# A word with a digit or a masking symbol inside it: "k1ll", "mys3lf", "s*icide", "d!e".
_MASKED = re.compile(r"(?<![\w@$*!])(?=[\w@$*!]*[a-z])(?=[\w@$*!]*[0-9@$*!])"
                     r"[a-z0-9@$*!]{3,}(?![\w@$*])")
# Letters spelled out one at a time: "s u i c i d e", "k.m.s", "k-m-s".
_SPELLED = re.compile(r"(?<![\w.])(?:[a-z][ .\-]){2,}[a-z](?![\w])\.?")
_REPEATS = re.compile(r"([a-z])\1\1+")
_BEFORE_MYSELF = re.compile(r"\b([a-z]{3,6}) myself\b")


def _deletions(word: str) -> set[str]:
    """word and every string one deletion away from it."""
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


class Normaliser:
    """Case, punctuation, texting spellings, masked and split words, typos and emoji."""

    def __init__(self, tables: Mapping[str, Mapping[str, str] | list[str]]) -> None:
        self.spellings: dict[str, str] = dict(tables.get("spellings", {}))
        self.phrases: dict[str, str] = dict(tables.get("phrases", {}))
        self.emoji: dict[str, str] = dict(tables.get("emoji", {}))
        self.leet = str.maketrans(dict(tables.get("leet", {})))
        self.vocabulary = frozenset(tables.get("vocabulary", ()))
        self.not_typos = frozenset(tables.get("not_typos", ()))
        self.joinable = frozenset(tables.get("joinable", ()))
        # "kilk myself", "hnag myself": a short verb right before "myself" is repaired too.
        self._verb_index: dict[str, str] = {}
        for verb in tables.get("myself_verbs", ()):
            for form in _deletions(verb):
                self._verb_index.setdefault(form, verb)
        self.join_needs = frozenset(tables.get("join_needs", ()))
        self.to_typos = tuple(
            (f" {verb} {typo} ", f" {verb} to ")
            for typo, verbs in dict(tables.get("to_typos", {})).items() for verb in verbs
        )
        self.self_kys = re.compile(
            r"\b(i|i'll|i'd|i'm|should|might|will|to|just|could|would|must|gonna)\s+(?:just\s+)?"
            r"kys\b")
        self._emoji_re = (re.compile("|".join(map(re.escape, sorted(self.emoji, key=len,
                                                                       reverse=True))))
                          if self.emoji else None)
        self._phrase_re = (re.compile(r"\b(?:" + "|".join(
            re.escape(p) for p in sorted(self.phrases, key=len, reverse=True)) + r")\b")
                           if self.phrases else None)
        self._spelling_keys = frozenset(self.spellings)
        # Typos: a word one edit from a vocabulary word shares a one-deletion form with it.
        self._typo_index: dict[str, str] = {}
        for word in tables.get("typo_targets", ()):
            for form in _deletions(word):
                self._typo_index.setdefault(form, word)
        self._known = self.vocabulary | self._spelling_keys | self.not_typos
        self._phrase_starts = frozenset(p.split()[0] for p in self.phrases)
        self._phrase_starts |= {p[:3] for p in self.phrases}  # "kms", "sh'd"
        # Most words of most texts are ordinary and recur: repair each word once.
        self.repair = lru_cache(maxsize=8192)(self._repair)

    # ------------------------------------------------------------ word repairs

    def _unmask(self, m: re.Match[str]) -> str:
        """'k1ll' -> 'kill', 's*icide' -> 'suicide' when that is a vocabulary word."""
        chunk = m.group(0)
        if chunk in self._spelling_keys:
            return chunk
        plain = chunk.translate(self.leet)
        if plain in self.vocabulary or plain in self._spelling_keys:
            return plain
        if "*" in plain:
            shape = re.compile(plain.replace("*", "[a-z]"))
            for word in self.vocabulary:
                if len(word) == len(plain) and shape.fullmatch(word):
                    return word
        fixed = self._typo(plain)
        return fixed if fixed != plain else chunk

    def _unspell(self, m: re.Match[str]) -> str:
        """'s u i c i d e' -> 'suicide' when the letters make a vocabulary word."""
        joined = re.sub(r"[ .\-]", "", m.group(0))
        if joined in self.vocabulary or joined in self._spelling_keys:
            return joined
        return m.group(0)

    def _typo(self, word: str) -> str:
        """The vocabulary word one edit away from word, if there is exactly that one."""
        if len(word) < 5 or word in self._known:
            return word
        for form in _deletions(word):
            target = self._typo_index.get(form)
            if target is not None and abs(len(target) - len(word)) <= 1:
                return target
        return word

    def _fix_verb(self, m: re.Match[str]) -> str:
        """'kilk myself' -> 'kill myself' (a verb one edit from a harm verb)."""
        word = m.group(1)
        if word in self._known or word in self._verb_index.values():
            return m.group(0)
        for form in _deletions(word):
            verb = self._verb_index.get(form)
            if verb is not None and abs(len(verb) - len(word)) <= 1:
                return f"{verb} myself"
        return m.group(0)

    def _split(self, word: str) -> str:
        """'killmyself' -> 'kill myself': a run-together phrase of risk words."""
        n = len(word)
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for end in range(1, n + 1):
            for start in range(max(0, end - 8), end):
                piece = word[start:end]
                if best[start] is not None and piece in self.joinable:
                    best[end] = best[start] + [piece]
                    break
        parts = best[n]
        if parts and len(parts) > 1 and self.join_needs.intersection(parts):
            return " ".join(parts)
        return word

    def _repair(self, token: str) -> str:
        """One token with its repeated letters, typo or run-together words repaired."""
        if _REPEATS.search(token):
            twice = _REPEATS.sub(r"\1\1", token)
            once = _REPEATS.sub(r"\1", token)
            token = once if once in self._known or twice not in self._known and (
                self._typo(once) != once) else twice
        if token in self._known:
            return token
        fixed = self._typo(token)
        if fixed != token:
            return fixed
        if len(token) >= 6 and token.isalpha() and any(w in token for w in self.join_needs):
            return self._split(token)
        return token

    # ------------------------------------------------------------ the whole text

    def prepare(self, text: str) -> tuple[str, list[str]]:
        """The normalised text and its words."""
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
            if self._emoji_re is not None:
                text = self._emoji_re.sub(lambda m: f" {self.emoji[m.group(0)]} ", text)
        text = " ".join(text.casefold().split())
        tokens = TOKEN.findall(text)
        before = text
        if any(c in text for c in "0123456789@$*!"):
            text = _MASKED.sub(self._unmask, text)
        if sum(len(t) == 1 for t in tokens) >= 3:
            text = _SPELLED.sub(self._unspell, text)
        if text != before:
            tokens = TOKEN.findall(text)
        repaired = {t: self.repair(t) for t in set(tokens) if len(t) >= 5
                    and t not in self._known}
        for token, fixed in repaired.items():
            if fixed != token:
                text = finder(token, "[\\w']").sub(fixed, text)
        if "myself" in text:
            text = _BEFORE_MYSELF.sub(self._fix_verb, text)
        if "self" in text:
            text = _SELF_RE.sub("self ", text)
        if "w/" in text:
            text = _WITH_RE.sub(lambda m: "without" if m.group(0) == "w/o" else "with ", text)
        words = TOKEN.findall(text) if text != before else tokens
        for word in self._spelling_keys.intersection(words):
            text = finder(word, "[\\w']").sub(self.spellings[word], text)
        if self._phrase_re is not None and not self._phrase_starts.isdisjoint(words):
            text = self._phrase_re.sub(lambda m: self.phrases[m.group(0)], text)
        if " 2 " in text or " too " in text:
            text = f" {text} "
            for typo, fixed in self.to_typos:
                text = text.replace(typo, fixed)
            text = text[1:-1]
        if "kys" in text:
            text = self.self_kys.sub(r"\1 kill myself", text)
        return text, (tokens if text == before else TOKEN.findall(text))
