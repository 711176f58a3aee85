"""Crisis and side-effect detection for inbound texts (pure, standard library only).

`assess(text)` runs on every inbound text before anything else. It is rule based on
purpose: every verdict can be explained to a clinician by the rule and the phrase that
matched, and the rules are data (flows/definitions/safety_rules.toml) a clinician can
read and sign off (`flask --app bot flows safety-sheet`).

Levels, highest first:
    crisis (988 / 911 now)  >  urgent (care team the same day)  >  check (ask "are you
    safe?")  >  none (a gentle "mention" for hard topics about others or the past)

Recall comes first (a missed crisis is the worst outcome). When risk words appear but
no full rule holds, the level is `check`: the host asks one fixed, kind question rather
than staying silent. False alarms cost trust, so each match is checked against what
usually makes it harmless: negation ("I'm not suicidal"), idioms ("this commute is
killing me"), other people and the distant past ("my uncle died by suicide years ago"),
talk about the treatment ("it can reduce suicidal thoughts"). Integration language
("ego death", "it felt like I died") is not matched in the first place.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

from flows import safety_model, safety_rules
from flows.safety_phrases import TOKEN, TRACKED_WORDS, Phrases
from flows.safety_text import Normaliser

CRISIS = "crisis"
URGENT = "urgent"
CHECK = "check"
NONE = "none"
MENTION = "mention"

SUICIDE = "suicide"
SELF_HARM = "self_harm"
OVERDOSE = "overdose"
MEDICAL_EMERGENCY = "medical_emergency"
THIRD_PARTY_EMERGENCY = "third_party_emergency"
HARM_OTHERS = "harm_others"
BLADDER = "bladder"
DISSOCIATION = "dissociation"
BLOOD_PRESSURE = "blood_pressure"
EXTRA_DOSE = "extra_dose"
MIXING = "mixing"
CRAVING = "craving"

NEGATION_WINDOW = 6
"""Words before a match in which a negation ("not", "never", "no") cancels it."""
CLAUSE_REACH = 100
"""Characters before a match looked at for its negation and its subject (long clauses)."""

_LEVEL_RANK = {CRISIS: 0, URGENT: 1, CHECK: 2, NONE: 3}


@dataclass(frozen=True)
class Assessment:
    """What an inbound text says about the participant's safety."""

    level: str
    category: str | None
    matched: tuple[str, ...] = ()
    reply_key: str | None = None
    rules: tuple[str, ...] = ()

    @property
    def gentle(self) -> bool:
        """True when the text touches on hard topics about others or the past."""
        return self.level == NONE and self.category == MENTION

    @property
    def alert(self) -> bool:
        """True when the care team must be told (crisis or urgent)."""
        return self.level in (CRISIS, URGENT)

    @property
    def check(self) -> bool:
        """True when the host should ask the safety question."""
        return self.level == CHECK


NO_CONCERN = Assessment(NONE, None, ())


def _rx(patterns) -> re.Pattern[str]:
    """Compile alternatives into one word-bounded pattern."""
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


# ---------------------------------------------------------------- the rules, loaded once

RULESET = safety_rules.load()
_NORMALISER = Normaliser(RULESET.normalise)
_CUES = RULESET.cues
_CATEGORIES = RULESET.categories
CRISIS_ORDER = tuple(c.name for c in _CATEGORIES.values() if c.level == CRISIS)
"""Which crisis category names the assessment when several match (911-first ones lead)."""
URGENT_ORDER = tuple(c.name for c in _CATEGORIES.values() if c.level == URGENT)
"""Which urgent category names the assessment when several match."""
CHECK_CATEGORIES = tuple(c.name for c in _CATEGORIES.values() if c.level == CHECK)

# A clause ends at punctuation or a conjunction that starts a new thought, so that
# "I'm not suicidal but I keep thinking about pills" keeps the second half.
_CLAUSE_PUNCT = re.compile(r"[.!?;,\"()]| - ")  # not ":": "song lyric: ..." is one clause
_CONJUNCTIONS = frozenset("but so because though although however yet except anyway then"
                          " and".split())
# "and" starts a new clause only when a new subject follows ("I'm not okay and I want to...").
_NEW_SUBJECT = re.compile(r" (?:i|i'm|i've|i'd|i'll|he|she|they|my|it|now|then)\b")
_SENTENCE_BREAK = re.compile(r"[.!?]+")
TRACKED_WORDS.update(_CONJUNCTIONS)

_NEGATION = _rx(_CUES["negation"])
_NOT_NEGATING = _rx(_CUES["not_negating"])
# A negation straight after the phrase: "suicidal thoughts? no", "self harm: none".
_POST_NEGATION = re.compile(r"^\s*(?:thoughts)?\s*[:?\-=]*\s*(?:no|none|nope|never|zero|0)\b")
_SUBSTANCE_NEGATION = _rx(_CUES["substance_negation"])
_DISTANT_PAST = _rx(_CUES["distant_past"])
_RECENT = _rx(_CUES["recent"])
_PAST_FORM = re.compile(r"^(?:had|was|were|felt)\b")
_PERSISTS = _rx(_CUES["persists"])
_TREATMENT = _rx(_CUES["treatment"])
_NOT_YET = re.compile(r"(?:'s)? (?:isn't|is not|not|won't be|is) (?:until|till|for (?:a|another) (?:week|month)|next (?:week|month))")
_NO_TREATMENT = re.compile(r"\b(?:no|not|without|skipped|skipping|skip|isn't|wasn't|cancelled|canceled)\b(?: (?:a|any|my|the|near a|near my))? ?$")
_HEDGED = _rx(_CUES["hedged"])
_QUESTION = re.compile(r"(?:^|[.!?] ?)\s*(?:" + "|".join(_CUES["question"]) + r")\b|\?")
_EXPERIENCE = _rx(_CUES["experience"])
_TOPIC_TALK = _rx(_CUES["topic_talk"])
_QUOTED = _rx(_CUES["quoted"])
_JOKING = _rx(_CUES["joking"])
_RESOLVED = _rx(_CUES["resolved"])
_LET_GO = _rx(_CUES["let_go"])
_BP_CONTEXT = _rx(_CUES["bp_context"])
_IDIOM = _rx(_CUES["idiom"])

_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|myself|mine)\b")
_SUBJECT = re.compile(
    r"\b(?:(?P<self>i|i'm|i've|i'd|i'll|me|myself)"
    r"|(?P<other>he|she|they|he's|she's|they're|his|her|their|him|them|someone|somebody"
    r"|(?:my|a|our|his|her|their) (?:\w+ )?(?:" + "|".join(_CUES["relations"]) + r")"
    r"|(?!(?:there|that|it|what|here|where|who|let|one|everyone|everything|nothing|life)'s)"
    r"\w+'s))\b"
)
_OWNER = re.compile(r"(?:(?:my|his|her|their|a|the) )?(?:\w+ )?\w+'s ?$")
_BP_READING = re.compile(r"\b(\d{2,3})\s*(?:/|over|\\)\s*(\d{2,3})\b")
_NUMBER_WORDS = {
    "one": 1, "two": 2, "eighty": 80, "ninety": 90, "hundred": 100, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "ten": 10,
    "eleven": 11, "twelve": 12, "fifteen": 15, "five": 5, "three": 3, "four": 4, "six": 6,
    "seven": 7, "eight": 8, "nine": 9,
}
_SPOKEN_BP = re.compile(r"\b((?:one|two) (?:hundred )?(?:and )?(?:\w+ ?){1,2}?) over "
                        r"((?:one )?(?:hundred )?(?:and )?(?:\w+ ?){1,2})\b")


def _spoken_number(words: str) -> int | None:
    """'one eighty five' -> 185, 'one twenty' -> 120 (None when not a number)."""
    parts = [w for w in words.split() if w != "and"]
    if not parts or any(p not in _NUMBER_WORDS for p in parts):
        return None
    if parts[0] == "one" and len(parts) > 1:
        rest = parts[2:] if parts[1] == "hundred" else parts[1:]
        return 100 + sum(_NUMBER_WORDS[p] for p in rest)
    if parts[0] == "two" and len(parts) > 1:
        rest = parts[2:] if parts[1] == "hundred" else parts[1:]
        return 200 + sum(_NUMBER_WORDS[p] for p in rest)
    return sum(_NUMBER_WORDS[p] for p in parts)


@dataclass(frozen=True)
class _Compiled:
    """A rule with its patterns compiled into a word-gated phrase list."""

    rule: safety_rules.Rule
    phrases: Phrases


_COMPILED = tuple(_Compiled(rule, Phrases(*rule.patterns)) for rule in RULESET.rules)
SPANISH = "es"
_RULE_LANG = {rule.id: rule.lang for rule in RULESET.rules}


def _index(compiled_rules: tuple[_Compiled, ...]):
    """Every rule's anchored patterns by their first word, and the scanned ones, in one place.

    Most texts hold the first words of only a few rules: one set intersection per text
    finds them, instead of forty small ones.
    """
    by_word: dict[str, list[tuple[int, re.Pattern[str]]]] = {}
    scanned = []
    for i, compiled in enumerate(compiled_rules):
        for word, pattern in compiled.phrases.anchored.items():
            by_word.setdefault(word, []).append((i, pattern))
        # A gate is a few strings of which a match needs one: one C-level search finds any.
        scanned += [(i, None if gate is None else re.compile("|".join(map(re.escape, gate))),
                     pattern) for gate, pattern in compiled.phrases.scanned]
    return by_word, frozenset(by_word), tuple(scanned)


_BY_WORD, _LEAD_WORDS, _SCANNED = _index(_COMPILED)


# ---------------------------------------------------------------- context


def _breaks(pattern: re.Pattern[str], text: str) -> list[int]:
    """Positions where each clause or sentence of text begins."""
    return [0] + [m.end() for m in pattern.finditer(text)]


def _span_start(starts: list[int], pos: int) -> int:
    """Start of the clause or sentence containing pos."""
    return starts[bisect_right(starts, pos) - 1]


def _span_end(starts: list[int], pos: int, length: int) -> int:
    """End of the clause or sentence containing pos."""
    i = bisect_right(starts, pos)
    return starts[i] if i < len(starts) else length


def normalise(text: str) -> str:
    """The text as the rules see it."""
    return _NORMALISER.prepare(text)[0]


class _Context:
    """A normalised text, its words, and its clause and sentence boundaries (found on demand)."""

    def __init__(self, raw: str) -> None:
        self.text, tokens = _NORMALISER.prepare(raw)
        parts = [part for token in tokens if "'" in token for part in token.split("'")]
        self.words = frozenset(tokens).union(parts)
        self._cues: dict[tuple[str, int], bool] = {}  # cue searches, per clause or sentence

    @cached_property
    def positions(self) -> dict[str, list[int]]:
        """Where each word that starts some phrase occurs (also "i" inside "i'm")."""
        found: dict[str, list[int]] = {}
        for m in TOKEN.finditer(self.text):
            word = m.group(0)
            if word in TRACKED_WORDS:
                found.setdefault(word, []).append(m.start())
            if "'" in word:
                pos = m.start()
                for part in word.split("'"):
                    if part in TRACKED_WORDS:
                        found.setdefault(part, []).append(pos)
                    pos += len(part) + 1
        return found

    @cached_property
    def clauses(self) -> list[int]:
        """Start of every clause: after punctuation or a conjunction that starts a new thought."""
        text, positions = self.text, self.positions
        starts = _breaks(_CLAUSE_PUNCT, text)
        for word in _CONJUNCTIONS.intersection(positions):
            ends = (pos + len(word) for pos in positions[word])
            if word == "and":
                ends = (end for end in ends if _NEW_SUBJECT.match(text, end))
            starts.extend(ends)
        return sorted(starts)

    @cached_property
    def sentences(self) -> list[int]:
        """Start of every sentence."""
        return _breaks(_SENTENCE_BREAK, self.text)

    @cached_property
    def idioms(self) -> list[tuple[int, int]]:
        """Spans of known hyperbole."""
        return [m.span() for m in _IDIOM.finditer(self.text)]

    @cached_property
    def has_treatment(self) -> bool:
        """True when the text mentions the treatment, a dose or a session ("no session
        this week" does not count)."""
        text = self.text
        return any(not _NO_TREATMENT.search(text, max(0, m.start() - 16), m.start())
                   and not _NOT_YET.match(text, m.end())
                   for m in _TREATMENT.finditer(text))

    def clause_before(self, pos: int) -> str:
        """The last words of the clause containing pos, up to pos."""
        start = max(_span_start(self.clauses, pos), pos - CLAUSE_REACH)
        return self.text[start:pos]

    def sentence(self, pos: int) -> str:
        """The whole sentence containing pos."""
        start = _span_start(self.sentences, pos)
        return self.text[start:_span_end(self.sentences, pos, len(self.text))]

    def negated(self, m: re.Match[str], extra: re.Pattern[str] | None = None) -> bool:
        """True when a negation close before the match (same clause) or right after cancels it."""
        prefix = self.clause_before(m.start())
        cues = (_NEGATION,) if extra is None else (_NEGATION, extra)
        if any(cue.search(prefix) for cue in cues):
            prefix = _NOT_NEGATING.sub(" ", prefix)
            window = " ".join(prefix.split()[-NEGATION_WINDOW:])
            if any(cue.search(window) for cue in cues):
                return True
        return bool(_POST_NEGATION.match(self.text[m.end():m.end() + 24]))

    def idiom(self, m: re.Match[str]) -> bool:
        """True when the match sits inside a known hyperbole."""
        return any(s < m.end() and m.start() < e for s, e in self.idioms)

    def about_someone_else(self, m: re.Match[str]) -> bool:
        """True when the clause's subject before the match is another person."""
        if _FIRST_PERSON.search(m.group(0)):
            return False
        last = None
        prefix = self.clause_before(m.start())
        # "i used my friend's pills": after "i ...", a possessive right before the match
        # names its owner, not the clause's subject.
        owner = _OWNER.search(prefix)
        if owner and _FIRST_PERSON.search(prefix, 0, owner.start()):
            prefix = prefix[:owner.start()]
        for s in _SUBJECT.finditer(prefix):
            last = s
        return last is not None and last.group("other") is not None

    def distant_past(self, m: re.Match[str], *, whole_sentence: bool = False) -> bool:
        """True when the match's clause, or the opening of its sentence, is years back.

        For crisis phrases only the clause counts ("I used to paint but now I want to
        die" is about now), except a sentence that opens with the time ("Years ago, I
        tried to..."). Same-day side effects may use the whole sentence.
        """
        if whole_sentence:
            return self.sentence_has(_DISTANT_PAST, m.start())
        start = _span_start(self.clauses, m.start())
        key = ("clause", start)
        if key not in self._cues:
            end = _span_end(self.clauses, m.start(), len(self.text))
            opening = _span_start(self.sentences, m.start())
            opening += self.text.startswith(" ", opening)
            self._cues[key] = bool(
                _DISTANT_PAST.search(self.text, start, end)
                or _DISTANT_PAST.match(self.text, opening)
            )
        return self._cues[key]

    def sentence_has(self, cue: re.Pattern[str], pos: int) -> bool:
        """True when cue occurs in the sentence containing pos (cached per sentence)."""
        key = (cue.pattern, _span_start(self.sentences, pos))
        if key not in self._cues:
            self._cues[key] = bool(cue.search(self.sentence(pos)))
        return self._cues[key]

    def guard(self, name: str, m: re.Match[str]) -> bool:
        """True when the named guard holds for the match (see safety_rules.SKIP_GUARDS)."""
        if name == "idiom":
            return self.idiom(m)
        if name == "negated":
            return self.negated(m)
        if name == "negated_substance":
            return self.negated(m, _SUBSTANCE_NEGATION)
        if name == "someone_else":
            return self.about_someone_else(m)
        if name == "distant_past":
            return self.distant_past(m)
        if name == "distant_past_sentence":
            return self.distant_past(m, whole_sentence=True)
        if name == "past_not_recent":
            # "my dad had a stroke" is history; "she just had a seizure" is now.
            return bool(_PAST_FORM.match(m.group(0))) and not self.sentence_has(_RECENT,
                                                                                 m.start())
        if name == "experience":
            return self.sentence_has(_EXPERIENCE, m.start())
        if name == "topic_talk":
            return bool(_TOPIC_TALK.search(self.clause_before(m.start()) + m.group(0)))
        if name == "quoted":
            if _QUOTED.search(self.clause_before(m.start()) + m.group(0)):
                return True
            # Inside double quotes, a song or film named anywhere in the sentence counts:
            # 'a song came on, "i hurt myself today"'.
            # So does a headline or a line from an article quoted while talking about it.
            return (self.text.count('"', 0, m.start()) % 2 == 1
                    and (self.sentence_has(_QUOTED, m.start())
                         or self.sentence_has(_TOPIC_TALK, m.start())))
        if name == "let_go":
            return self.sentence_has(_LET_GO, m.start())
        if name == "resolved":
            return self.sentence_has(_RESOLVED, m.start())
        if name == "joking":
            return self.sentence_has(_JOKING, m.start())
        if name == "hedged":
            return bool(_HEDGED.search(self.clause_before(m.start())))
        if name == "question":
            return self.sentence_has(_QUESTION, m.start())
        if name == "persists":
            return self.sentence_has(_PERSISTS, m.start())
        if name == "treatment":
            return self.has_treatment
        raise KeyError(name)


# ---------------------------------------------------------------- assessment


@dataclass(frozen=True)
class _Finding:
    """One phrase that counts towards a level and category."""

    level: str
    category: str
    phrase: str
    position: int
    rule: str


def _findings(ctx: _Context, compiled: _Compiled,
              matches: list[re.Match[str]] | None = None) -> list[_Finding]:
    """What one rule finds in the text (or in the matches given), after its guards."""
    rule = compiled.rule
    found = []
    for m in compiled.phrases.finditer(ctx) if matches is None else matches:
        if any(ctx.guard(g, m) for g in rule.skip_if):
            continue
        if not all(ctx.guard(c, m) for c in rule.requires):
            continue
        level, category = rule.level, rule.category
        if rule.other_category and ctx.about_someone_else(m):
            category = rule.other_category
            level = _CATEGORIES[category].level
        elif any(ctx.guard(g, m) for g in rule.mention_if):
            level, category = NONE, MENTION
        elif level == CRISIS and any(ctx.guard(c, m) for c in rule.check_if):
            level = CHECK
            category = _check_category(rule.category)
        found.append(_Finding(level, category, m.group(0), m.start(), rule.id))
    return found


def _check_category(category: str) -> str:
    """The check category a crisis rule falls back to when it is only hedged or asked."""
    return category if _CATEGORIES[category].level == CHECK else "possible_risk"


def _blood_pressure(ctx: _Context) -> list[_Finding]:
    """Readings at or above the thresholds in safety_rules.toml (either number)."""
    found = []
    systolic_alert = RULESET.blood_pressure["systolic"]
    diastolic_alert = RULESET.blood_pressure["diastolic"]
    reported_systolic = RULESET.blood_pressure.get("reported_systolic", systolic_alert)
    reported_diastolic = RULESET.blood_pressure.get("reported_diastolic", diastolic_alert)
    readings = [(int(m.group(1)), int(m.group(2)), m) for m in _BP_READING.finditer(ctx.text)]
    if " over " in ctx.text:
        for m in _SPOKEN_BP.finditer(ctx.text):
            high, low = _spoken_number(m.group(1)), _spoken_number(m.group(2))
            if high and low:
                readings.append((high, low, m))
    for systolic, diastolic, m in readings:
        if not (60 <= systolic <= 300 and 30 <= diastolic <= 200 and systolic > diastolic):
            continue
        # Without a BP word, "10/12" is a date and "8/10" a score: need a 3-digit systolic.
        if systolic < 100 and not ctx.sentence_has(_BP_CONTEXT, m.start()):
            continue
        reported = ctx.sentence_has(_BP_CONTEXT, m.start())
        high = systolic >= systolic_alert or diastolic >= diastolic_alert or (
            reported and (systolic >= reported_systolic or diastolic >= reported_diastolic))
        if high:
            if not (ctx.negated(m) or ctx.about_someone_else(m)
                    or ctx.distant_past(m, whole_sentence=True)):
                found.append(_Finding(URGENT, BLOOD_PRESSURE, m.group(0), m.start(),
                                      "blood_pressure_reading"))
    return found


# ---------------------------------------------------------------- the check net

_NET = RULESET.net
_NET_CONCEPTS = tuple(
    (concept.name, concept.weight, concept.count,
     _NET.skip_if if concept.skip_if is None else concept.skip_if,
     re.compile(r"\b(?:" + "|".join(concept.patterns) + r")\b"), concept.only_with)
    for concept in (_NET.concepts if _NET else ())
)
NET_CATEGORY = "possible_risk"


def _net_matches(ctx: _Context) -> list[tuple[str, int, re.Match[str]]]:
    """(concept, weight, match) for every concept word that counts, after its guards."""
    counted = []
    for name, weight, count, guards, pattern, _ in _NET_CONCEPTS:
        seen: set[str] = set()
        for m in pattern.finditer(ctx.text):
            if m.group(0) in seen or any(_net_guard(ctx, g, m) for g in guards):
                continue
            seen.add(m.group(0))
            counted.append((name, weight, m))
            if len(seen) >= count:
                break
    present = {name for name, _, _ in counted}
    needs = {name: only for name, _, _, _, _, only in _NET_CONCEPTS if only}
    return [c for c in counted if c[0] not in needs or needs[c[0]] & present]


def _net_guard(ctx: _Context, name: str, m: re.Match[str]) -> bool:
    """A guard for a net concept word; the word itself never counts as the session's
    experience ("never come back" is not "came back" from the session)."""
    if name == "experience":
        sentence = ctx.sentence(m.start())
        start = _span_start(ctx.sentences, m.start())
        rest = sentence[:m.start() - start] + " " + sentence[m.end() - start:]
        return bool(_EXPERIENCE.search(rest))
    return ctx.guard(name, m)


def _net(ctx: _Context) -> list[_Finding]:
    """The safety net: risk concepts scored over the whole text, each kind counted once.

    No rule matched, but a text that names, say, two means and a time ("filling the tub
    now. i have the blades"), or a farewell and a time, still earns the safety question.
    Each concept word passes the net's guards first (idiom, the session's experience,
    someone else, the past, quotes, reading about the treatment, wishes let go of).
    """
    if _NET is None:
        return []
    counted = _net_matches(ctx)
    if sum(weight for _, weight, _ in counted) < _NET.threshold:
        return []
    first = min(m.start() for _, _, m in counted)
    words = " + ".join(m.group(0) for _, _, m in counted)
    return [_Finding(CHECK, NET_CATEGORY, words, first, "check_net")]


def net_score(text: str) -> tuple[int, tuple[str, ...]]:
    """The check net's score for text and the concept words that counted (for review)."""
    counted = _net_matches(_Context(text))
    return (sum(weight for _, weight, _ in counted),
            tuple(f"{name}:{m.group(0)}" for name, _, m in counted))


def _decide(found: list[_Finding]) -> Assessment:
    """Apply the precedence: crisis > urgent > check > mention > none."""
    if not found:
        return NO_CONCERN
    best = min(_LEVEL_RANK[f.level] for f in found)
    hits = sorted((f for f in found if _LEVEL_RANK[f.level] == best), key=lambda f: f.position)
    level = hits[0].level
    category = min({f.category for f in hits},
                   key=lambda c: _CATEGORIES[c].rank if c in _CATEGORIES else 999)
    phrases = tuple(dict.fromkeys(f.phrase for f in hits))
    rules = tuple(dict.fromkeys(f.rule for f in hits))
    key = _CATEGORIES[category].reply_key if category in _CATEGORIES else None
    if key and all(_RULE_LANG.get(r) == SPANISH for r in rules):
        key += "." + SPANISH  # written in Spanish: answered in Spanish
    return Assessment(level, category, phrases, key, rules)


def assess_rules(text: str) -> Assessment:
    """The rules' verdict alone: crisis, urgent, check, or none (maybe a gentle mention)."""
    if not text or not text.strip():
        return NO_CONCERN
    return _rules_verdict(_Context(text))


def _rules_verdict(ctx: _Context) -> Assessment:
    """The rules' verdict for an already normalised text."""
    matches: dict[int, list[re.Match[str]]] = {}
    text_, positions = ctx.text, ctx.positions
    for word in _LEAD_WORDS.intersection(ctx.words):
        for i, pattern in _BY_WORD[word]:
            for pos in positions[word]:
                m = pattern.match(text_, pos)
                if m:
                    matches.setdefault(i, []).append(m)
    for i, gate, pattern in _SCANNED:
        if gate is None or gate.search(text_):
            for m in pattern.finditer(text_):
                matches.setdefault(i, []).append(m)
    found: list[_Finding] = []
    for i in sorted(matches):
        found += _findings(ctx, _COMPILED[i], matches[i])
    if not any(f.level == CRISIS for f in found):
        found += _blood_pressure(ctx)
    if not any(f.level in (CRISIS, URGENT, CHECK) for f in found):
        found += _net(ctx)
    return _decide(found)


LEARNED_CATEGORY = "possible_risk"
LEARNED_RULE = "learned_stage"
LEARNED_CONFIRM_RULE = "learned_confirm"
"""Named in an assessment's rules when a head confirmed a rules' check as crisis/urgent."""
LEARNED_CRISIS = "learned_crisis"
LEARNED_URGENT = "learned_urgent"
LEARNED_ENABLED = True
"""Whether `assess` consults the learned stage by default (the host may turn it off:
SAFETY_LEARNED_STAGE, README configuration)."""
MODEL = safety_model.load()
_MODEL = MODEL


def learned_probability(text: str) -> float:
    """The learned stage's estimate that text is a crisis or urgent (0..1)."""
    return _MODEL.probability(normalise(text)) if text and text.strip() else 0.0


def learned_threshold() -> float:
    """The probability at or above which the learned stage raises a `none` to `check`."""
    return _MODEL.threshold


CONFIRMABLE_RULES = frozenset({"check_net"})
"""The checks a head may confirm: the check net's, where several kinds of risk content
(a means, a time, a farewell...) add up but no rule holds. The other checks are the
issue's "ask" cases and stay questions: a hedged passive wish ("sometimes I wonder if..."),
a question about dying or lethal amounts, a bare risk word, someone else's unclear
situation."""


def confirmable(verdict: Assessment) -> bool:
    """True for a rules' check a head may confirm as an alert (see CONFIRMABLE_RULES)."""
    return (verdict.level == CHECK and bool(verdict.rules)
            and CONFIRMABLE_RULES.issuperset(verdict.rules))


def raise_with_model(text: str, verdict: Assessment) -> Assessment:
    """The rules' verdict, raised by the learned stage where it is sure enough.

    A `none` (or gentle mention) becomes `check` when the risk model scores it at or above
    its threshold. A rules' `check` (risk words, no full rule) becomes `crisis` or `urgent`
    when that level's head confirms it. Never lower, and never an alert on a text where
    no rule saw risk: a check the stage itself raised is not promoted.
    """
    return _raised(normalise(text), verdict) if text else verdict


def _raised(normalised: str, verdict: Assessment) -> Assessment:
    """raise_with_model for a text the rules have already normalised."""
    if verdict.level == CHECK:
        if not confirmable(verdict):
            return verdict
        level = _MODEL.confirms(normalised)
        if level is None:
            return verdict
        category = LEARNED_CRISIS if level == CRISIS else LEARNED_URGENT
        return Assessment(level, category, verdict.matched, _CATEGORIES[category].reply_key,
                          verdict.rules + (LEARNED_CONFIRM_RULE,))
    if verdict.level != NONE or not _MODEL.raises(normalised):
        return verdict
    return Assessment(CHECK, LEARNED_CATEGORY, (), None, (LEARNED_RULE,))


def assess(text: str, *, learned: bool | None = None) -> Assessment:
    """Assess one inbound text: crisis, urgent, check, or none (maybe a gentle mention).

    The rules decide; the learned stage (when enabled) may raise a `none` to `check` and
    confirm a rules' `check` as `crisis` or `urgent` (see `raise_with_model`).
    """
    if not text or not text.strip():
        return NO_CONCERN
    ctx = _Context(text)  # normalised once, for the rules and the learned stage
    verdict = _rules_verdict(ctx)
    if learned is None:
        learned = LEARNED_ENABLED
    return _raised(ctx.text, verdict) if learned else verdict


def reply_key(assessment: Assessment) -> str | None:
    """Message key of the fixed template to answer with, or None when no safety reply is due.

    An overdose that has already happened is answered like a medical emergency (911
    first), and an emergency happening to someone else with guidance for helping them.
    A `check` gets no template here: the host asks the safety question.
    """
    if assessment.level == CHECK or not (assessment.alert or assessment.gentle):
        return None
    key = getattr(assessment, "reply_key", None)
    if key:
        return key
    category = _CATEGORIES.get(assessment.category or "")
    if category is not None and category.level == assessment.level and category.reply_key:
        return category.reply_key
    return "safety.crisis" if assessment.level == CRISIS else (
        "safety.urgent" if assessment.level == URGENT else "safety.gentle")


# ---------------------------------------------------------------- the rules' own examples


def _verdict(compiled: _Compiled, text: str) -> tuple[str, str] | None:
    """(level, category) the rule alone gives text, or None when it does not fire."""
    found = _findings(_Context(text), compiled)
    if not found:
        return None
    best = min(found, key=lambda f: _LEVEL_RANK[f.level])
    return best.level, best.category


def check_examples(compiled_rules: tuple[_Compiled, ...] | list[_Compiled] = _COMPILED) -> list[str]:
    """Every rule example that its rule misses and every counter-example it fires on.

    An example holds when the rule alone gives its own level for it; a counter-example
    holds when the rule gives it nothing, or only a gentle mention.
    """
    problems = []
    for compiled in compiled_rules:
        rule = compiled.rule
        for text in rule.examples:
            verdict = _verdict(compiled, text)
            if verdict is None or verdict[0] != rule.level:
                problems.append(f"rule {rule.id!r}: example not matched as {rule.level}: "
                                f"{text!r} (got {verdict})")
        for text in rule.counter_examples:
            verdict = _verdict(compiled, text)
            if verdict is not None and verdict[0] != NONE:
                problems.append(f"rule {rule.id!r}: counter-example matched: {text!r} "
                                f"(got {verdict})")
    return problems


def check_net_examples() -> list[str]:
    """Every check-net example the net alone misses and every counter-example it catches."""
    if _NET is None:
        return []
    problems = []
    for text in _NET.examples:
        if not _net(_Context(text)):
            problems.append(f"check net: example not scored as check: {text!r} "
                            f"(score {net_score(text)})")
    for text in _NET.counter_examples:
        if _net(_Context(text)):
            problems.append(f"check net: counter-example scored as check: {text!r} "
                            f"(score {net_score(text)})")
    return problems


def check_model(tolerance: float = 1e-4) -> list[str]:
    """Every reference text whose score here differs from the one the trainer recorded.

    The trainer stores scikit-learn's probability for a sample of its texts; this code
    must give the same, or the features here are not the ones the weights were fitted to.
    """
    problems = []
    for text, expected in MODEL.meta.get("reference", ()):
        got = learned_probability(text)
        if abs(got - expected) > tolerance:
            problems.append(f"learned stage: score {got:.6f} for {text!r}, trained model "
                            f"gave {expected:.6f}")
    if not MODEL.meta.get("reference"):
        problems.append("learned stage: the weights file holds no reference scores")
    samples = [text for text, _ in MODEL.meta.get("reference", ())]
    for level, expected_scores in MODEL.meta.get("head_reference", {}).items():
        for text, expected in zip(samples, expected_scores, strict=False):
            got = MODEL.head_probability(level, normalise(text))
            if abs(got - expected) > tolerance:
                problems.append(f"learned stage, {level} head: score {got:.6f} for {text!r}, "
                                f"trained model gave {expected:.6f}")
    return problems


_PROBLEMS = check_examples() + check_net_examples()
if _PROBLEMS:
    raise safety_rules.SafetyRulesError(_PROBLEMS)
