"""Opt-out requests aimed at this service, in English and Spanish (pure, standard library only).

`classify(text)` returns one of four outcomes:
  - "immediate": a clear request to stop every text (the STOP family, PARAR/ALTO/BAJA,
    "remove my number", "I revoke my consent", "wrong number", ...): opt out now;
  - "confirm": it may be one ("not interested", a capital STOP before a sentence about
    something else): ask the one fixed question and send nothing else until answered;
  - "setting": a request to change a time or stop one kind of text, not everything:
    offer the setting that does it (PAUSE, BEDTIME, MINDFULNESS);
  - "none": not a request to this service (other people, habits, exclamations, questions).

The rules are data (flows/definitions/optout.toml), validated on load. How they apply:
the text is folded (case, accents, apostrophes, emoji, common abbreviations and typos of
the key words), a whole message that is a stop keyword with polite filler is immediate,
words other people said, quoted after a verb of saying, are set aside; then the text is cut
into clauses and each clause takes the outcome of the first rule that matches it (guards
that mean "not a request" come first). The strongest clause outcome wins; two uncertain
signals ("Stop." + "leave me alone") make a clear one, and an uncertain one beside a
named setting ("remove the walk prompts, the rest are good") is that setting.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

IMMEDIATE = "immediate"
CONFIRM = "confirm"
SETTING = "setting"
NONE = "none"
HINT = "hint"
"""A weak signal: counts only beside a "confirm" clause (then both mean stop)."""

RULE_OUTCOMES = (NONE, SETTING, IMMEDIATE, CONFIRM, HINT)
LANGS = ("en", "es")
SETTINGS = ("pause", "time", "kind")
"""What a "setting" outcome offers: PAUSE, a time change, or stopping one kind of text."""

_STRENGTH = {NONE: 0, SETTING: 1, CONFIRM: 2, IMMEDIATE: 3}

QUESTION_WINDOW = timedelta(hours=24)
"""After "Reply STOP to stop all texts", nothing scheduled is sent until they answer or
this long has passed; a second stop request inside it opts out at once."""

RULES_FILE = Path(__file__).parent / "definitions" / "optout.toml"


@dataclass(frozen=True)
class Verdict:
    """What a text asks of the service, and in which language to answer."""

    outcome: str
    lang: str = "en"
    rule: str | None = None  # id of the deciding rule (for explanations and tests)
    setting: str | None = None  # pause | time | kind, for a "setting" outcome

    @property
    def is_request(self) -> bool:
        """True for an opt-out, clear or uncertain."""
        return self.outcome in (IMMEDIATE, CONFIRM)


NOT_A_REQUEST = Verdict(NONE)


@dataclass(frozen=True)
class Rule:
    """One compiled rule of optout.toml."""

    id: str
    outcome: str
    lang: str
    pattern: re.Pattern
    unless: tuple[str, ...] = ()
    setting: str | None = None


@dataclass(frozen=True)
class Rules:
    """The compiled rules and word lists."""

    keywords: dict[str, frozenset[str]]  # lang -> whole-message stop keywords
    fillers: frozenset[str]
    abbreviations: dict[str, str]
    typo_targets: dict[str, str]  # word -> "any" | "swap"
    real_words: frozenset[str]
    laughter: frozenset[str]  # emoji that read as laughter
    flags: dict[str, re.Pattern]  # message-level conditions rules may name in `unless`
    clause_split: re.Pattern
    leading_caps: frozenset[str]
    send_gerunds: frozenset[str]
    sentence_starts: frozenset[str]  # words after a capital STOP that begin a new sentence
    keep_answer: re.Pattern  # an answer to the question that means "keep the texts"
    reported_speech: re.Pattern  # a verb of saying and the quoted words after it
    own_words: re.Pattern  # the end of the text before it when the sender is the speaker
    rules: tuple[Rule, ...]
    checks: tuple[tuple[str, str], ...]  # (text, expected outcome) that must hold


class RulesError(ValueError):
    """optout.toml has problems; .problems lists every one."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


# ---------------------------------------------------------------- loading


def read(path: Path = RULES_FILE) -> dict[str, Any]:
    """The [optout] table of the rules file."""
    return tomllib.loads(path.read_text(encoding="utf-8")).get("optout", {})


def compile_rules(data: dict[str, Any]) -> tuple[Rules | None, list[str]]:
    """Build Rules from the [optout] table; return (rules or None, problems)."""
    problems: list[str] = []
    vocab: dict[str, str] = {}
    for name, words in data.get("vocab", {}).items():
        try:  # a word list may use the lists defined before it
            vocab[name] = "(?:" + _fill("|".join(words), vocab) + ")"
        except KeyError as exc:
            problems.append(f"word list {name!r}: unknown word list {exc}")

    def expand(pattern: str, where: str) -> re.Pattern | None:
        try:
            text = _fill(pattern, vocab)
            return re.compile(text)
        except KeyError as exc:
            problems.append(f"{where}: unknown word list {exc}")
        except re.error as exc:
            problems.append(f"{where}: bad pattern: {exc}")
        return None

    flags = {}
    for name, pattern in data.get("flags", {}).items():
        compiled = expand(pattern, f"flag {name!r}")
        if compiled is not None:
            flags[name] = compiled
    rules, seen = [], set()
    for n, raw in enumerate(data.get("rules", [])):
        rid = raw.get("id") or f"#{n}"
        where = f"rule {rid!r}"
        if rid in seen:
            problems.append(f"{where} is defined twice")
        seen.add(rid)
        outcome, lang = raw.get("outcome"), raw.get("lang", "en")
        if outcome not in RULE_OUTCOMES:
            problems.append(f"{where}: outcome must be one of {RULE_OUTCOMES}")
        if lang not in LANGS:
            problems.append(f"{where}: lang must be one of {LANGS}")
        setting = raw.get("setting")
        if (outcome == SETTING) != (setting is not None) or (setting and setting not in SETTINGS):
            problems.append(f"{where}: a setting rule names one of {SETTINGS}, others none")
        unless = tuple(raw.get("unless", []))
        problems += [f"{where}: unknown flag {u!r}" for u in unless if u not in flags]
        pattern = expand(raw.get("pattern", ""), where) if raw.get("pattern") else None
        if pattern is None:
            if not raw.get("pattern"):
                problems.append(f"{where}: pattern is missing")
            continue
        if not raw.get("examples"):
            problems.append(f"{where}: give at least one example it matches")
        rules.append(Rule(rid, outcome, lang, pattern, unless, setting))
    split = expand(data.get("clause_split", r"[.!?;\n]+"), "clause_split")
    keywords = {lang: frozenset(data.get("keywords", {}).get(lang, [])) for lang in LANGS}
    if not all(keywords.values()):
        problems.append("keywords: both en and es lists are needed")
    built = Rules(
        keywords=keywords,
        fillers=frozenset(data.get("fillers", [])),
        abbreviations=dict(data.get("abbreviations", {})),
        typo_targets=dict(data.get("typos", {}).get("targets", {})),
        real_words=frozenset(data.get("typos", {}).get("real_words", [])),
        laughter=frozenset(data.get("laughter_emoji", [])),
        flags=flags,
        clause_split=split or re.compile(r"[.!?;\n]+"),
        leading_caps=frozenset(data.get("leading_caps", [])),
        send_gerunds=frozenset(data.get("send_gerunds", [])),
        sentence_starts=frozenset(data.get("sentence_starts", [])),
        keep_answer=expand(data.get("keep_answer", r"^no\b"), "keep_answer") or re.compile(r"^no\b"),
        reported_speech=expand(data.get("reported_speech", r"(?!)"), "reported_speech")
        or re.compile(r"(?!)"),
        own_words=expand(data.get("own_words", r"(?!)"), "own_words") or re.compile(r"(?!)"),
        rules=tuple(rules),
        checks=tuple((c["text"], c["outcome"]) for c in data.get("checks", [])),
    )
    bad_modes = {w: m for w, m in built.typo_targets.items() if m not in ("any", "swap")}
    problems += [f"typos: {w!r} has mode {m!r} (any or swap)" for w, m in bad_modes.items()]
    if problems:
        return None, problems
    problems += _check_examples(built, data.get("rules", []))
    return built, problems


def check(path: Path = RULES_FILE) -> list[str]:
    """Every problem in the rules file (empty when sound), examples and checks included."""
    try:
        data = read(path)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return [f"{path.name}: {exc}"]
    _, problems = compile_rules(data)
    return [f"{path.name}: {p}" for p in problems]


def load(path: Path = RULES_FILE) -> Rules:
    """Compiled rules; raise RulesError on any problem."""
    rules, problems = compile_rules(read(path))
    if problems or rules is None:
        raise RulesError(problems)
    return rules


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """The shipped rules, loaded once per process."""
    return load()


def _fill(pattern: str, vocab: dict[str, str]) -> str:
    """Replace {name} with the word list's alternation (regex braces like {2} stay)."""
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in vocab:
            raise KeyError(name)
        return vocab[name]

    return re.sub(r"\{([a-z_]+)\}", sub, pattern)


def _check_examples(rules: Rules, raw_rules: list[dict]) -> list[str]:
    """Each rule matches its examples; each listed check gives its outcome."""
    problems = []
    by_id = {rule.id: rule for rule in rules.rules}
    for raw in raw_rules:
        rule = by_id.get(raw.get("id"))
        for example in raw.get("examples", []):
            if rule and not any(rule.pattern.search(c) for c in clauses(example, rules)):
                problems.append(f"rule {rule.id!r} does not match its example {example!r}")
    for text, expected in rules.checks:
        got = classify(text, rules).outcome
        if got != expected:
            problems.append(f"check {text!r}: expected {expected}, got {got}")
    return problems


# ---------------------------------------------------------------- folding


def fold(text: str, rules: Rules) -> str:
    """Lower case, no accents or apostrophes, laughter emoji as 'lol', abbreviations and
    typos of the key words spelled out, single spaces."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(" lol " if ch in rules.laughter else ch for ch in text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("'", "").replace("`", "")
    text = unicodedata.normalize("NFD", text.casefold())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    # Keep letters, digits and the punctuation that ends clauses; the rest is a space.
    text = "".join(ch if ch.isalnum() or ch in ".,!?;:\n#" else " " for ch in text)
    text = re.sub(r"\s*#\s*", " number ", text) if "#" in text else text
    text = re.sub(r"(?<=!)1+", "", text)  # "stop!1!": a missed shift key
    # "s t o p": letters typed apart are one word.
    text = re.sub(r"\b[a-z](?:\s[a-z]\b){2,}", lambda m: m.group(0).replace(" ", ""), text)
    words = []
    for token in re.findall(r"[a-z0-9]+|[^a-z0-9\s]", text):
        if token[0].isalpha() and not token.isalpha() and token not in rules.abbreviations:
            token = token.translate(_LOOKALIKE_DIGITS)  # "st0p", "par4r"
        if token.isalpha():
            token = re.sub(r"(.)\1{2,}", r"\1", token)  # "stoppp" -> "stop", "nooo" -> "no"
            token = rules.abbreviations.get(token, token)
            token = _spell(token, rules)
        words.append(token)
    folded = " ".join(words)
    return re.sub(r"\s+([.,!?;:])", r"\1", folded).strip()


_LOOKALIKE_DIGITS = str.maketrans("01345", "oieas")
"""Digits typed for the letters they look like, inside a word."""


def _spell(token: str, rules: Rules) -> str:
    """A misspelling of a key word ("stpo", "unsubcribe", "remoce") as that word."""
    if len(token) < 3 or token in rules.typo_targets or token in rules.real_words:
        return token
    for target, mode in rules.typo_targets.items():
        if abs(len(target) - len(token)) > 1:
            continue
        if _one_edit(token, target, swap_only=(mode == "swap")):
            return target
    return token


def _one_edit(a: str, b: str, *, swap_only: bool) -> bool:
    """True when a is b with one adjacent swap, its last letter dropped or doubled (or,
    unless swap_only, one letter added, dropped or changed, never the first)."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] \
                and a[diff[1]] == b[diff[0]]:
            return True
        return not swap_only and len(diff) == 1 and diff[0] > 0
    if swap_only:  # "mor" -> "more", "bajaa" -> "baja"
        return (len(a) + 1 == len(b) and b[:-1] == a) or a == b + b[-1]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(1, len(long_)):
        if long_[:i] + long_[i + 1:] == short:
            return True
    return False


def clauses(text: str, rules: Rules) -> list[str]:
    """The folded text cut into clauses (sentences, comma parts, "but ..." parts)."""
    folded = fold(text, rules)
    return [c.strip(" ,") for c in rules.clause_split.split(folded) if c and c.strip(" ,")]


# ---------------------------------------------------------------- classifying


def classify(text: str | None, rules: Rules | None = None) -> Verdict:
    """The outcome for one inbound text (see the module docstring)."""
    rules = rules or default_rules()
    if not text or not text.strip():
        return NOT_A_REQUEST
    keyword_lang = _keyword_message(text, rules)
    if keyword_lang:
        return Verdict(IMMEDIATE, keyword_lang, "keyword")
    parts = clauses(_set_off_leading_caps(_set_aside_reported_speech(text, rules), rules), rules)
    whole = " . ".join(parts)
    flags = {name for name, pattern in rules.flags.items() if pattern.search(whole)}
    found: list[Verdict] = []
    hints: list[Verdict] = []
    for clause in parts:
        for rule in rules.rules:
            if rule.unless and flags.intersection(rule.unless):
                continue
            if rule.pattern.search(clause):
                verdict = Verdict(rule.outcome, rule.lang, rule.id, rule.setting)
                (hints if rule.outcome == HINT else found).append(verdict)
                break
    if not found:
        return NOT_A_REQUEST
    best = max(found, key=lambda v: _STRENGTH[v.outcome])
    confirms = [v for v in found if v.outcome == CONFIRM]
    if best.outcome == CONFIRM and (len(confirms) >= 2 or hints):
        # Two uncertain signals in one message ("Stop." + "leave me alone") are clear.
        return Verdict(IMMEDIATE, best.lang, "+".join(v.rule for v in confirms + hints))
    settings = [v for v in found if v.outcome == SETTING]
    if best.outcome == CONFIRM and settings:
        # "remove the walk prompts, the rest are good": the setting that was named answers
        # the uncertain part too (its reply also says how to stop everything).
        return settings[0]
    return best


def _keyword_message(text: str, rules: Rules) -> str | None:
    """The language when the whole message is a stop keyword with polite filler."""
    words = [w for w in re.findall(r"[a-z0-9]+", fold(text, rules)) if w not in rules.fillers]
    phrase = " ".join(dict.fromkeys(words))  # "stop stop stop" is still "stop"
    for lang in LANGS:
        if phrase in rules.keywords[lang]:
            return lang
    return None


def _set_off_leading_caps(text: str, rules: Rules) -> str:
    """A capital STOP (or BAJA, ...) before more words reads as its own sentence, unless
    it starts a sentence about something else ("STOP being so hard on myself"), which is
    marked for the rule that asks to confirm it."""
    match = re.match(r"^\W*([A-Z]+)\b[\s,]+(\S+)", unicodedata.normalize("NFKC", text))
    if not match or match.group(1).lower() not in rules.leading_caps:
        return text
    word, following = match.group(1), match.group(2).lower().strip(".,!?'")
    following = following.replace("'", "").replace("\u2019", "")  # "I'm" reads as "im"
    rest = text[match.start(2):]
    if re.fullmatch(r"[a-z]+ing", following) and following not in rules.send_gerunds:
        return f"capsverb {rest}"
    if following in rules.sentence_starts:
        return f"{word}. {rest}"
    return text


def _set_aside_reported_speech(text: str, rules: Rules) -> str:
    """Words someone else said, quoted after a verb of saying ('my daughter said "mom, stop
    texting me"'), are a story, not a request: they become the word "quoted". The sender's
    own quoted words ('I said "STOP"') stay."""
    text = unicodedata.normalize("NFKC", text)

    def sub(match: re.Match) -> str:
        if rules.own_words.search(text[:match.start()]):
            return match.group(0)
        return match.group(0)[: match.start("quote") - match.start()] + " quoted "

    return rules.reported_speech.sub(sub, text)


def is_keep_answer(text: str | None, rules: Rules | None = None) -> bool:
    """True when an answer to the opt-out question means "no, keep the texts"."""
    rules = rules or default_rules()
    return bool(rules.keep_answer.search(fold(text or "", rules)))


def explain(text: str, rules: Rules | None = None) -> list[tuple[str, str | None]]:
    """Each clause of the folded text and the id of the rule it matched (for reviews)."""
    rules = rules or default_rules()
    out = []
    text = _set_aside_reported_speech(text, rules)
    for clause in clauses(_set_off_leading_caps(text, rules), rules):
        rule = next((r.id for r in rules.rules if r.pattern.search(clause)), None)
        out.append((clause, rule))
    return out
