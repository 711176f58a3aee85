"""Reading and validating flows/definitions/safety_rules.toml (pure, standard library only).

The rules are data a clinician can review: one entry per rule with its level, category,
a plain-language description, its patterns, and examples it must match and
counter-examples it must not. This module checks the file's shape; flows/safety.py
checks the examples against the running engine.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RULES_FILE = Path(__file__).parent / "definitions" / "safety_rules.toml"

LEVELS = ("crisis", "urgent", "check", "none")
"""Every level a rule may give (highest first)."""

SKIP_GUARDS = frozenset({
    "idiom", "negated", "negated_substance", "someone_else", "distant_past",
    "distant_past_sentence", "past_not_recent", "experience", "topic_talk", "quoted", "joking",
    "resolved", "let_go",
})
"""When a match does not count at all (see flows/safety.py, `_Context.guard`)."""
MENTION_GUARDS = frozenset({"distant_past", "someone_else", "topic_talk", "quoted", "let_go"})
"""When a match only earns a gentle mention."""
REQUIRED_CUES = frozenset({"persists", "treatment"})
"""Cues a rule can require in the same sentence (persists) or text (treatment)."""
CHECK_CUES = frozenset({"hedged", "question"})
"""Cues that turn a rule's crisis into a check (ask, do not alert)."""

_VOCAB = re.compile(r"\{\{(\w+)\}\}")


class SafetyRulesError(ValueError):
    """The rules file is malformed or a rule's example does not hold."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    """One reviewable rule."""

    id: str
    level: str
    category: str
    description: str
    patterns: tuple[str, ...]
    skip_if: frozenset[str]
    mention_if: frozenset[str]
    requires: frozenset[str]
    check_if: frozenset[str]
    other_category: str | None
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...]
    lang: str = "en"


LANGS = ("en", "es")
"""Languages a rule may be written in; a verdict reached only by Spanish rules is answered
with the Spanish template (`<reply_key>.es`)."""


@dataclass(frozen=True)
class Category:
    """What a category is called, how urgent it is, and which reply it gets."""

    name: str
    level: str
    reply_key: str | None
    rank: int
    description: str


@dataclass(frozen=True)
class Concept:
    """One kind of risk content the check net scores (dying, means, farewells...)."""

    name: str
    weight: int
    patterns: tuple[str, ...]
    skip_if: frozenset[str] | None = None
    """Guards for this concept (None: the net's own)."""
    count: int = 1
    """How many different words of this concept may each add the weight."""
    only_with: frozenset[str] = frozenset()
    """When set, the concept counts only beside one of these concepts (a time alone is
    no risk; a time beside a means is)."""
    description: str = ""


@dataclass(frozen=True)
class Net:
    """The check net: concepts scored over the whole text, a threshold, and its examples."""

    concepts: tuple[Concept, ...]
    threshold: int
    skip_if: frozenset[str]
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class RuleSet:
    """Everything safety_rules.toml defines."""

    rules: tuple[Rule, ...]
    categories: dict[str, Category]
    cues: dict[str, tuple[str, ...]]
    normalise: dict[str, Any]
    blood_pressure: dict[str, Any]
    net: Net | None = None


def _parse_net(raw: Any, vocab: dict[str, str], problems: list[str]) -> Net | None:
    """The [net] table: weighted concepts, a threshold, guards, examples."""
    if raw is None:
        return None
    concepts = []
    for name, entry in raw.get("concepts", {}).items():
        weight, patterns = entry.get("weight"), entry.get("patterns")
        if not isinstance(weight, int) or weight < 1:
            problems.append(f"net concept {name!r}: weight must be a whole number >= 1")
        if not _strings(patterns) or not patterns:
            problems.append(f"net concept {name!r}: needs a list of patterns")
            continue
        expanded = []
        for pattern in patterns:
            missing = set(_VOCAB.findall(pattern)) - vocab.keys()
            if missing:
                problems.append(f"net concept {name!r}: unknown vocabulary {sorted(missing)}")
                continue
            source = expand(pattern, vocab)
            try:
                re.compile(source)
            except re.error as exc:
                problems.append(f"net concept {name!r}: bad pattern {pattern!r}: {exc}")
                continue
            expanded.append(source)
        own = entry.get("skip_if")
        if own is not None and (not _strings(own) or set(own) - SKIP_GUARDS):
            problems.append(f"net concept {name!r}: skip_if may only name {sorted(SKIP_GUARDS)}")
            own = None
        count = entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            problems.append(f"net concept {name!r}: count must be a whole number >= 1")
            count = 1
        only_with = entry.get("only_with", [])
        if not _strings(only_with) or set(only_with) - set(raw.get("concepts", {})):
            problems.append(f"net concept {name!r}: only_with must name other concepts")
            only_with = []
        concepts.append(Concept(name, weight if isinstance(weight, int) else 1,
                                tuple(expanded), None if own is None else frozenset(own),
                                count, frozenset(only_with),
                                str(entry.get("description", ""))))
    threshold = raw.get("threshold")
    if not isinstance(threshold, int) or threshold < 1:
        problems.append("net.threshold must be a whole number >= 1")
        threshold = 1
    skip_if = raw.get("skip_if", [])
    if not _strings(skip_if) or set(skip_if) - SKIP_GUARDS:
        problems.append(f"net.skip_if may only name {sorted(SKIP_GUARDS)}")
        skip_if = []
    examples, counter = raw.get("examples", []), raw.get("counter_examples", [])
    if not _strings(examples) or not examples or not _strings(counter):
        problems.append("net needs examples and counter_examples (lists of texts)")
        examples, counter = [], []
    return Net(tuple(concepts), threshold, frozenset(skip_if), tuple(examples), tuple(counter),
               str(raw.get("description", "")))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def expand(pattern: str, vocab: dict[str, str]) -> str:
    """pattern with each {{name}} replaced by the vocabulary entry (as a group)."""
    return _VOCAB.sub(lambda m: "(?:" + vocab[m.group(1)] + ")", pattern)


def parse(data: dict[str, Any]) -> tuple[RuleSet | None, list[str]]:
    """Build the rule set from the parsed TOML; (None, problems) when it is malformed."""
    problems: list[str] = []
    vocab = {k: v for k, v in data.get("vocab", {}).items() if isinstance(v, str)}
    categories: dict[str, Category] = {}
    for rank, (name, raw) in enumerate(data.get("categories", {}).items()):
        level = raw.get("level")
        if level not in LEVELS:
            problems.append(f"category {name!r}: level must be one of {LEVELS}")
            continue
        categories[name] = Category(name, level, raw.get("reply_key"), rank,
                                    str(raw.get("description", "")))
    cues = {}
    for name, patterns in data.get("cues", {}).items():
        if not _strings(patterns) or not patterns:
            problems.append(f"cue {name!r} must be a non-empty list of patterns")
            continue
        cues[name] = tuple(patterns)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("rule", [])):
        rid = raw.get("id") or f"#{i + 1}"
        where = f"rule {rid!r}"
        if rid in seen:
            problems.append(f"{where} is defined twice")
        seen.add(rid)
        level, category = raw.get("level"), raw.get("category")
        if level not in LEVELS:
            problems.append(f"{where}: level must be one of {LEVELS}")
        if category not in categories:
            problems.append(f"{where}: unknown category {category!r}")
        elif categories[category].level != level:
            problems.append(f"{where}: category {category!r} is {categories[category].level}")
        if not str(raw.get("description", "")).strip():
            problems.append(f"{where}: needs a plain-language description")
        patterns = raw.get("patterns")
        if not _strings(patterns) or not patterns:
            problems.append(f"{where}: patterns must be a non-empty list of strings")
            patterns = []
        expanded = []
        for pattern in patterns:
            missing = set(_VOCAB.findall(pattern)) - vocab.keys()
            if missing:
                problems.append(f"{where}: unknown vocabulary {sorted(missing)}")
                continue
            source = expand(pattern, vocab)
            try:
                re.compile(source)
            except re.error as exc:
                problems.append(f"{where}: pattern {pattern!r} does not compile: {exc}")
                continue
            expanded.append(source)
        fields = {}
        for key, allowed in (("skip_if", SKIP_GUARDS), ("mention_if", MENTION_GUARDS),
                             ("requires", REQUIRED_CUES), ("check_if", CHECK_CUES)):
            value = raw.get(key, [])
            if not _strings(value) or set(value) - allowed:
                problems.append(f"{where}: {key} may only name {sorted(allowed)}")
                value = []
            fields[key] = frozenset(value)
        other = raw.get("other_category")
        if other is not None and other not in categories:
            problems.append(f"{where}: unknown other_category {other!r}")
        examples, counter = raw.get("examples", []), raw.get("counter_examples", [])
        if not _strings(examples) or not examples:
            problems.append(f"{where}: needs at least one example it must match")
            examples = []
        if not _strings(counter):
            problems.append(f"{where}: counter_examples must be a list of strings")
            counter = []
        unknown = set(raw) - {"id", "level", "category", "description", "patterns",
                              "skip_if", "mention_if", "requires", "check_if",
                              "other_category", "examples", "counter_examples", "lang"}
        if unknown:
            problems.append(f"{where}: unknown fields {sorted(unknown)}")
        lang = raw.get("lang", "en")
        if lang not in LANGS:
            problems.append(f"{where}: lang must be one of {LANGS}")
        rules.append(Rule(rid, level, category, str(raw.get("description", "")).strip(),
                          tuple(expanded), fields["skip_if"], fields["mention_if"],
                          fields["requires"], fields["check_if"], other, tuple(examples),
                          tuple(counter), lang))
    for cue in ("negation", "not_negating", "substance_negation", "distant_past", "recent",
                "persists", "treatment", "idiom", "relations", "bp_context", "hedged",
                "question", "experience", "topic_talk", "quoted", "joking", "resolved", "let_go"):
        if cue not in cues:
            problems.append(f"cue {cue!r} is missing")
    bp = data.get("blood_pressure", {})
    for key in ("systolic", "diastolic"):
        if not isinstance(bp.get(key), int):
            problems.append(f"blood_pressure.{key} must be a whole number")
    for key in ("reported_systolic", "reported_diastolic"):
        if key in bp and not isinstance(bp[key], int):
            problems.append(f"blood_pressure.{key} must be a whole number")
    if "blood_pressure" not in categories:
        problems.append("category 'blood_pressure' is missing (readings use it)")
    if problems:
        return None, problems
    net = _parse_net(data.get("net"), vocab, problems)
    if problems:
        return None, problems
    return RuleSet(tuple(rules), categories, cues, dict(data.get("normalise", {})), bp, net), []


def load(path: Path = RULES_FILE) -> RuleSet:
    """The rule set in path; SafetyRulesError listing every problem when it is malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SafetyRulesError([f"{path.name}: {exc}"]) from exc
    rules, problems = parse(data)
    if rules is None:
        raise SafetyRulesError([f"{path.name}: {p}" for p in problems])
    return rules
