"""The safety rules as they were before issue 8 (flows/safety.py at 21b4ac7), kept only so
`python -m bench safety` can time the new rules against them in the same run.

Not used by the bot. Do not edit: it is a fixed point of comparison.
"""
# ruff: noqa


from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property

CRISIS = "crisis"
URGENT = "urgent"
NONE = "none"
MENTION = "mention"

SUICIDE = "suicide"
SELF_HARM = "self_harm"
OVERDOSE = "overdose"
MEDICAL_EMERGENCY = "medical_emergency"
BLADDER = "bladder"
DISSOCIATION = "dissociation"
BLOOD_PRESSURE = "blood_pressure"
EXTRA_DOSE = "extra_dose"
MIXING = "mixing"
CRAVING = "craving"

CRISIS_ORDER = (MEDICAL_EMERGENCY, OVERDOSE, SUICIDE, SELF_HARM)
"""Which crisis category names the assessment when several match (911-first ones lead)."""
URGENT_ORDER = (BLOOD_PRESSURE, MIXING, EXTRA_DOSE, DISSOCIATION, BLADDER, CRAVING)
"""Which urgent category names the assessment when several match."""

SYSTOLIC_ALERT = 180
"""Systolic reading (mmHg) at or above which the care team hears the same day."""
DIASTOLIC_ALERT = 120
"""Diastolic reading (mmHg) at or above which the care team hears the same day."""

NEGATION_WINDOW = 6
"""Words before a match in which a negation ("not", "never", "no") cancels it."""
CLAUSE_REACH = 100
"""Characters before a match looked at for its negation and its subject (long clauses)."""


@dataclass(frozen=True)
class Assessment:
    """What an inbound text says about the participant's safety."""

    level: str
    category: str | None
    matched: tuple[str, ...] = ()

    @property
    def gentle(self) -> bool:
        """True when the text touches on hard topics about others or the past."""
        return self.level == NONE and self.category == MENTION

    @property
    def alert(self) -> bool:
        """True when the care team must be told (crisis or urgent)."""
        return self.level in (CRISIS, URGENT)


NO_CONCERN = Assessment(NONE, None, ())


def _rx(*alternatives: str) -> re.Pattern[str]:
    """Compile alternatives into one word-bounded pattern."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


# ---------------------------------------------------------------- word-gated phrase lists
# Trying a few hundred alternatives at every word of a 1600-character text is slow, so each
# phrase is compiled on its own and only run when the text holds a word the phrase cannot
# match without. The gate is read off the phrase's own source, conservatively: when in
# doubt a phrase gets no gate and always runs. tests/test_safety.py checks the gates.

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_GATE_WORD = re.compile(r"[a-z0-9']+")
_TRACKED_WORDS: set[str] = set()
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
            if not quantified and _TOKEN.fullmatch(word):
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


class _Phrases:
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
        _TRACKED_WORDS.update(by_word)
        self.scanned = tuple(scanned)

    def finditer(self, ctx: _Context) -> list[re.Match[str]]:
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

    def search(self, ctx: _Context) -> bool:
        """True when any phrase matches somewhere in the context's text."""
        return bool(self.finditer(ctx))


def _finder(word: str, inside: str) -> re.Pattern[str]:
    """A pattern for word standing alone (no `inside` character either side of it).

    It starts with the word itself, so re can skip through the text fast; the
    character before is checked by a fixed-width lookbehind after the word.
    """
    w = re.escape(word)
    return re.compile(w + r"(?<!" + inside + w + r")(?!" + inside + r")")


# ---------------------------------------------------------------- normalisation

_CHAR_MAP = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u02bc": "'", "`": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
        "\u2012": " - ", "\u2013": " - ", "\u2014": " - ", "\u2015": " - ",
    }
)
# Laughing emoji make "I'm dying" / "can't breathe" an idiom; keep that signal as a word.
_LAUGH_EMOJI = re.compile("[\U0001f602\U0001f923\U0001f480\U0001f606\U0001f605]")

# Texting spellings and common typos, word for word.
_WORDS = {
    "im": "i'm", "ive": "i've", "dont": "don't", "cant": "can't", "wont": "won't",
    "didnt": "didn't", "doesnt": "doesn't", "isnt": "isn't", "wasnt": "wasn't",
    "arent": "aren't", "werent": "weren't", "havent": "haven't", "hasnt": "hasn't",
    "hadnt": "hadn't", "wouldnt": "wouldn't", "couldnt": "couldn't",
    "shouldnt": "shouldn't", "aint": "ain't", "whats": "what's", "thats": "that's",
    "theres": "there's", "hes": "he's", "shes": "she's", "theyre": "they're",
    "youre": "you're", "wanna": "want to", "gonna": "going to",
    "gotta": "got to", "tryna": "trying to", "hafta": "have to", "kinda": "kind of",
    "sorta": "sort of", "lemme": "let me", "u": "you", "ur": "your",
    "every1": "everyone", "no1": "no one", "noone": "no one", "bout": "about",
    "abt": "about", "bc": "because", "cuz": "because", "coz": "because",
    "rn": "right now", "tmrw": "tomorrow", "tmr": "tomorrow", "tmrow": "tomorrow",
    "tonite": "tonight", "2nite": "tonight", "2day": "today", "b4": "before",
    "idc": "i don't care", "idk": "i don't know", "pls": "please", "plz": "please",
    "ppl": "people", "nvr": "never", "w": "with", "wud": "would", "cud": "could",
    "shud": "should", "sry": "sorry", "rly": "really", "ngl": "not gonna lie",
    "kms": "kill myself", "unalive": "kill", "unalived": "killed",
    "unaliving": "killing", "od": "overdose", "oding": "overdosing",
    "od'ing": "overdosing", "od'd": "overdosed", "od'ed": "overdosed",
    "oded": "overdosed", "sucidal": "suicidal", "suicdal": "suicidal",
    "suisidal": "suicidal", "suicidel": "suicidal", "sucicidal": "suicidal",
    "suicidial": "suicidal", "suacidal": "suicidal", "sucide": "suicide",
    "suicde": "suicide", "suiside": "suicide", "wnat": "want", "wabt": "want",
    "kil": "kill", "myslef": "myself", "mysef": "myself", "mysefl": "myself",
    "slef": "self", "selfharm": "self harm", "thinkin": "thinking",
    "killin": "killing", "cuttin": "cutting", "hurtin": "hurting", "dyin": "dying",
    "endin": "ending", "feelin": "feeling", "goin": "going", "tryin": "trying",
    "nothin": "nothing", "somethin": "something", "doin": "doing",
    "havin": "having", "gettin": "getting", "takin": "taking", "jumpin": "jumping",
    "hangin": "hanging",
}
_WORD_KEYS = frozenset(_WORDS)
# "self-harm", "selfharm" and "self harm" are one phrase.
_SELF_RE = re.compile(r"self(?<![a-z0-9]self)(?:-|(?=harm|injur))")
_WITH_RE = re.compile(r"w/o\b|w/ ?")
# "2" and "too" for "to" only after the verbs they usually follow ("want 2 die").
_TO_TYPOS = tuple(
    (f" {verb} {typo} ", f" {verb} to ")
    for typo, verbs in (
        ("2", ("want", "going", "ready", "need", "have", "got", "about", "trying", "like")),
        ("too", ("want", "going", "ready", "need")),
    )
    for verb in verbs
)
# "kys" is aimed at the participant only when they say it about themselves.
_KYS_SELF_RE = re.compile(
    r"\b(i|i'll|i'd|i'm|should|might|will|to|just|could|would|must|gonna)\s+(?:just\s+)?kys\b"
)


def _prepare(text: str) -> tuple[str, list[str]]:
    """Case-fold and regularise spelling so one pattern covers many ways of texting.

    Returns the normalised text and its words (tokenising is the costly part, done once
    unless a rewrite changed the words).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
        text = _LAUGH_EMOJI.sub(" lol ", text)
    text = " ".join(text.casefold().split())
    tokens = _TOKEN.findall(text)
    before = text
    # The cheap checks first: most texts need none of the rewrites.
    if "self" in text:
        text = _SELF_RE.sub("self ", text)
    if "w/" in text:
        text = _WITH_RE.sub(lambda m: "without" if m.group(0) == "w/o" else "with ", text)
    for word in _WORD_KEYS.intersection(tokens):
        text = _finder(word, "[\\w']").sub(_WORDS[word], text)
    if " 2 " in text or " too " in text:
        text = f" {text} "
        for typo, fixed in _TO_TYPOS:
            text = text.replace(typo, fixed)
        text = text[1:-1]
    if "kys" in text:
        text = _KYS_SELF_RE.sub(r"\1 kill myself", text)
    return text, (tokens if text == before else _TOKEN.findall(text))


def _normalise(text: str) -> str:
    """The text as the phrase lists see it."""
    return _prepare(text)[0]


# ---------------------------------------------------------------- context guards

# A clause ends at punctuation or a conjunction that starts a new thought, so that
# "I'm not suicidal but I keep thinking about pills" keeps the second half.
_CLAUSE_PUNCT = re.compile(r"[.!?;,:\"()]| - ")
_CONJUNCTIONS = frozenset(
    "but so because though although however yet except anyway then and".split()
)
# "and" starts a new clause only when a new subject follows ("I'm not okay and I want to...").
_NEW_SUBJECT = re.compile(r" (?:i|i'm|i've|i'd|i'll|he|she|they|my|it|now|then)\b")
_SENTENCE_BREAK = re.compile(r"[.!?]+")
_TRACKED_WORDS.update(_CONJUNCTIONS)

_NEGATION = _rx(
    "not", "no", "never", "without", "nor", "none", "zero", "nothing", "neither",
    "no longer", "stopped", "quit", "haven't", "hasn't", "hadn't", "don't", "didn't",
    "doesn't", "isn't", "wasn't", "aren't", "weren't", "won't", "wouldn't", "can't",
    "cannot", "couldn't", "shouldn't", "free of", "instead of",
)
# Phrases that contain a negation word but do not negate what follows them.
_NOT_NEGATING = _rx(
    r"(?:can't|cannot|can not|couldn't) (?:stop|help|shake|get rid of|get over|handle|cope"
    r"|take|deal|sleep|do|go|keep|see|wait)",
    r"don't know(?: (?:if|why|how|what|whether))?", "not sure", "no one", "nobody",
    r"not (?:gonna|going to) lie", r"won't (?:stop|go away|leave)",
    r"(?:doesn't|didn't|isn't|not) (?:help|helping|work|working|stop)",
    r"not (?:okay|ok|doing (?:well|good|great|okay|ok)|well|good|great|fine|alright|coping)",
    r"no (?:matter|idea|energy|hope|one)", "not only", "don't care",
    r"nothing (?:helps|matters|works|changes)", "don't think i can",
    r"(?:no|nope|nah|not really)(?= i\b)",
)
# A negation straight after the phrase: "suicidal thoughts? no", "self harm: none".
_POST_NEGATION = re.compile(r"^\s*(?:thoughts)?\s*[:?\-=]*\s*(?:no|none|nope|never|zero|0)\b")
# Extra ways of saying "not any more" that only apply to substances.
_SUBSTANCE_NEGATION = _rx(
    "off", "sober", "no more", "avoid", "avoiding", "avoided", "skip", "skipping", "skipped",
    "cut out", "stay away from", "staying away from", "less", "cut back on", "instead of",
)

# Time cues that put a match in the participant's distant past.
_DISTANT_PAST = _rx(
    r"years? ago", r"decades? ago", r"months ago", "last year", "years back",
    r"(?:weeks|months|years) before",
    r"(?:in|back in|during) (?:high school|college|middle school|uni|university|my teens"
    r"|my twenties|my 20s|my thirties|the past|19\d\d|20[0-2]\d)",
    r"when (?:i|he|she|they) (?:was|were) (?:a |in |younger|young|little|small|\d+|a teen"
    r"|a kid|a child|a teenager|kids|teens)",
    r"as a (?:kid|teen|teenager|child|young adult)", "used to", "back then",
    "long time ago", "a long time", "in the past", "history of", "before i was born",
    "growing up",
)
# Cues that a past-tense emergency is happening now ("she just had a seizure").
_RECENT = _rx(
    "just", "right now", "now", "today", "tonight", r"\d+ ?(?:min|mins|minutes) ago",
    r"(?:a|an|one) (?:few )?(?:minutes?|hour) ago", "this morning", "still",
)
_PAST_FORM = re.compile(r"^(?:had|was|were|felt)\b")

_FIRST_PERSON = _rx("i", "i'm", "i've", "i'd", "i'll", "me", "my", "myself", "mine")
_RELATIONS = (
    r"uncle|aunt|auntie|mom|mum|mother|dad|father|brother|sister|friend|friends|cousin|son"
    r"|daughter|husband|wife|partner|boyfriend|girlfriend|bf|gf|ex|grandfather|grandmother"
    r"|grandpa|grandma|granddad|coworker|colleague|neighbor|neighbour|roommate|patient"
    r"|client|kid|kids|child|children|niece|nephew|parent|parents|family|stepdad|stepmom"
    r"|stepfather|stepmother|sibling|buddy|pal|teacher|boss"
)
_SUBJECT = re.compile(
    r"\b(?:(?P<self>i|i'm|i've|i'd|i'll|me|myself)"
    r"|(?P<other>he|she|they|he's|she's|they're|his|her|their|him|them|someone|somebody"
    r"|(?:my|a|our|his|her|their) (?:\w+ )?(?:" + _RELATIONS + r")"
    r"|(?!(?:there|that|it|what|here|where|who|let|one|everyone|everything|nothing|life)'s)"
    r"\w+'s))\b"
)

# Hyperbole that contains crisis words but is not about wanting to die.
_IDIOM = _rx(
    r"so \w+(?: \w+)? (?:that )?i (?:wanted|want|could|almost|nearly) (?:to )?(?:just )?die",
    r"(?:want|wanted|could|gonna|going) (?:to )?(?:just )?die (?:of|from|laughing)",
    r"(?:died|dying|dead) (?:laughing|of laughter)",
    r"laugh\w* (?:so hard|too hard|until|till)[^.!?]{0,30}(?:breathe|die|died|dying)",
    r"(?:can't|cannot|couldn't) breathe (?:lol|lmao|haha|from laughing|laughing)",
)
_IDIOM_WORDS = ("die", "dying", "dead", "breathe")
"""Every idiom above has one of these; texts without them skip the idiom scan."""


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


class _Context:
    """A normalised text, its words, and its clause and sentence boundaries (found on demand)."""

    def __init__(self, raw: str) -> None:
        self.text, tokens = _prepare(raw)
        parts = [part for token in tokens if "'" in token for part in token.split("'")]
        self.words = frozenset(tokens).union(parts)
        self._cues: dict[tuple[str, int], bool] = {}  # cue searches, per clause or sentence

    @cached_property
    def positions(self) -> dict[str, list[int]]:
        """Where each word that starts some phrase occurs (also "i" inside "i'm")."""
        found: dict[str, list[int]] = {}
        for m in _TOKEN.finditer(self.text):
            word = m.group(0)
            if word in _TRACKED_WORDS:
                found.setdefault(word, []).append(m.start())
            if "'" in word:
                pos = m.start()
                for part in word.split("'"):
                    if part in _TRACKED_WORDS:
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
        if not any(word in self.text for word in _IDIOM_WORDS):
            return []
        return [m.span() for m in _IDIOM.finditer(self.text)]

    def find(self, phrases: _Phrases) -> list[re.Match[str]]:
        """Every match of phrases in the text."""
        return phrases.finditer(self)

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
        for s in _SUBJECT.finditer(self.clause_before(m.start())):
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

    def recent(self, m: re.Match[str]) -> bool:
        """True when the sentence says the event is happening now or just happened."""
        return self.sentence_has(_RECENT, m.start())


# ---------------------------------------------------------------- crisis rules
# "self" rules are written in the first person or imply it; "topic" rules name a hard
# subject without saying whose it is, so by themselves they only earn a gentle reply.

# "end it" counts only when nothing after it makes it about something else ("end it with him").
_END_NOW = (
    r"(?= ?(?:$|[.!?,;:]|tonight|today|now|soon|this (?:week|weekend)|tomorrow|for good"
    r"|forever|once and for all|already|and\b|but\b))"
)
_NAMED_DRUGS = (
    r"xanax|valium|klonopin|ativan|tylenol|advil|ibuprofen|aspirin|benadryl|ambien|oxy"
    r"|percocets?|vicodin|sleeping pills"
)
_PILLS = r"(?:pills|meds|medication|medicine|tablets|troches|lozenges|capsules|doses|bottle)"
_ROUTINE = (
    r"(?! (?:on time|as prescribed|as directed|like (?:i'm|i am|i was) supposed to"
    r"|for the (?:day|week)|this morning|today|like normal|like usual|as usual))"
)

_SUICIDE_SELF = _Phrases(
    # direct wishes and intentions
    r"(?:kill|killing|end|ending|hang|hanging|shoot|shooting|drown|drowning|off) myself",
    r"(?:want|wanted|wanting|wish|wishing|ready|need|plan|planning|deserve|hope|like)"
    r" to (?:just )?(?:die|be dead)(?! (?:of|from|laughing|when i'm old|of old age|old"
    r"|to (?:my|the|our) (?:old|former|ego|self)))",
    r"(?:it's|it is) time (?:for me )?to (?:go|say goodbye|end it|leave)(?= ?(?:$|[.!?,;]))",
    r"(?:don't|can't|do not|cannot) see (?:a|any) (?:way forward|way out|future)",
    r"no (?:way forward|future for me)",
    r"(?:bought|buying|got|getting|stocked up on) (?:a bunch of|a lot of|lots of|bottles of"
    r"|a bottle of|extra|enough) (?:tylenol|acetaminophen|paracetamol|advil|ibuprofen|aspirin"
    r"|sleeping pills|pills)",
    r"(?:planning|planned|plan|thinking about|figured out|worked out|figuring out) how (?:i'd"
    r"|i would|i'll|i will|i could|to) (?:do it|end it|kill myself|die)",
    r"i(?:'ll| will) be gone (?:soon|forever|for good)(?! (?:for|on|to))",
    r"(?:sorry|forgive me) for everything\W+(?:\w+\W+){0,3}?(?:goodbye|bye)",
    r"(?:want|wish|wanting|need) to (?:just )?(?:stop existing|not exist|cease to exist"
    r"|not be alive|not be here)",
    r"(?:shouldn't|should not|don't deserve to|do not deserve to) (?:be alive|be here|live|exist)",
    r"(?:rather|prefer to) be dead",
    r"hope i (?:just )?(?:die|don't wake up|never wake up|get hit)(?! (?:of|from|laughing"
    r"|peacefully|old|happy|at \d+|surrounded))",
    r"(?:to|just) not exist", r"not existing anymore",
    r"(?:don't|do not) care (?:if|whether) i (?:die|live|wake up|don't wake up|get hurt"
    r"|crash|make it)",
    r"(?:nothing|no one|nobody) (?:left )?to live for",
    r"(?:leave|leaving) this (?:world|earth|life)(?! (?:of|behind))",
    r"(?:ways|how|methods|best way|easiest way|painless way|quickest way) to (?:die|kill myself"
    r"|end it|end my life|commit suicide|overdose|hang myself|make it (?:all )?stop)(?! is)",
    r"(?:picture|picturing|imagine|imagining|visualizing|fantasizing about|fantasize about)"
    r" (?:myself )?(?:dead|dying|being dead|at the bottom of|jumping|falling off|hanging)",
    r"(?:i have|i've got|i made|i've made|made) a plan(?= ?(?:$|[.!?,;]|and |to (?:do it|end"
    r"|die|kill)))",
    r"(?:want|wanted|need) (?:it|this|everything|it all|all of this) to (?:be over|all be over"
    r"|end)(?= ?(?:$|[.!?,;]|now|already|forever|permanently))",
    r"(?:tired|exhausted|sick) of (?:fighting|trying|struggling|being me|waking up)"
    r"(?= ?(?:$|[.!?,;]|anymore|any more))", r"rather (?:just )?die(?= ?(?:$|[.!?,;]))",
    r"i (?:just )?want out(?= ?(?:$|[.!?,;]|of (?:this life|life|this world)\b))",
    r"(?:my life|life) is (?:pointless|meaningless|not worth it|over)",
    r"(?:going to|want to|about to|ready to|i'll|i will|might|gonna) (?:just )?jump"
    r"(?= ?(?:$|[.!?,;]|tonight|now|today))",
    r"(?:might|going to|gonna|about to|afraid i'll|scared i'll|worried i'll|want to|could)"
    r" do something (?:stupid|drastic|dumb|i can't take back)",
    r"i (?:just )?feel like (?:dying|i want to die|i should die|ending it)",
    r"wish (?:that )?i (?:was|were|could be|'d be) dead",
    r"wish i (?:could|would) (?:just )?(?:die|disappear|not wake up|never wake up|fall asleep and)",
    r"wish i (?:had never been|was never|wasn't|were never|had not been) born",
    r"(?:better off|be better) dead",
    r"(?:commit|committing) suicide", r"(?:attempt|attempted|attempting) suicide",
    r"(?:my|a) suicide (?:plan|note|attempt)",
    r"(?:planning|plan|planned|plotting|preparing|prepare) (?:my |a |for )?suicide",
    r"suicide (?:is|has been|keeps) on my mind",
    r"(?:i'm|i am|i feel|i felt|feeling|feel|i've been|been|getting|i get|i got|i was|am)"
    r" (?:(?:so|really|very|pretty|kind of|a bit|a little|super|extremely|quite|more|actually"
    r"|honestly|seriously|now|again|still|also|just) )*suicidal",
    r"suicidal (?:again|today|tonight|lately|right now|thoughts|ideation|feelings|urges|ideas)",
    r"(?:having|had|have|get|getting|got|with|experiencing|been having|battling|fighting"
    r"|struggling with) (?:(?:some|a lot of|lots of|more|strong|bad|constant|the|these|those"
    r"|intense|passive|active|frequent|dark) )?thoughts (?:of|about) (?:suicide|killing myself"
    r"|ending (?:it|it all|my life|things)|dying|death|not being here|hurting myself"
    r"|harming myself|self[- ]?harm|cutting)",
    r"(?:thinking|think|thought|considering|consider) (?:about |of )?(?:just )?(?:suicide"
    r"|killing myself|ending (?:it all|my life|things)|taking my (?:own )?life|dying"
    r"|not being here|not waking up|overdosing|jumping off|jumping in front|hanging myself"
    r"|driving (?:my car )?(?:into|off)|crashing my car|walking into traffic|shooting myself)",
    r"(?:end|ending) my (?:own )?life", r"(?:end|ending) it all",
    r"(?:want|going|ready|plan|planning|decided|about|need|should|could|might|will|i'll)"
    r" to (?:just )?end (?:it|things|everything)" + _END_NOW,
    r"(?:should|might|could|will|i'll|i will|gonna) (?:just )?end (?:it|things|everything)"
    + _END_NOW,
    r"(?:should|could|want to|going to|wish i could|might) (?:just )?disappear"
    r"(?= ?(?:$|[.!?,;]|forever|for good|and never))",
    r"make (?:it all|everything|all of it) stop",
    r"(?:when|after|once|if) i(?:'m| am| was| were) (?:gone|dead)(?! (?:on|for|to|next|this"
    r"|from|at|till|until))",
    r"going to the (?:bridge|tracks|train tracks|cliff|roof|rooftop)(?= ?(?:$|[.!?,;]|tonight"
    r"|now|right now|to jump))",
    r"(?:wrote|writing|finished|made) my will(?= ?(?:$|[.!?,;]|today|tonight|and))",
    r"said goodbye to my (?:cat|dog|pets?)",
    r"(?:won't|will not|don't think i'll|not going to|might not) (?:make it through (?:the night"
    r"|tonight|the weekend|this)|see (?:the )?(?:morning|tomorrow))",
    r"(?:death|dying|being dead|not being alive|not existing) (?:sounds|seems|feels|would be"
    r"|looks|is) (?:\w+ )?(?:nice|good|better|easier|appealing|tempting|like relief"
    r"|like (?:the|a|my) (?:only )?(?:option|answer|way out|relief|solution))",
    r"(?:only|best|easiest) (?:option|way out|answer|solution) is (?:to die|dying|death|suicide)",
    r"(?:want|wanna|ready|going|can't wait|need) to (?:go )?(?:be with|join|see) (?:\w+ ){1,3}?"
    r"(?:in heaven|on the other side)",
    r"(?:want|need) (?:it|this|everything|it all|all of this) (?:to (?:be |all be )?)?over"
    r"(?= ?(?:$|[.!?,;]|now|already|forever|for good))",
    r"(?:take|taking) my (?:own )?life",
    # indirect: not wanting to be alive, being a burden, no point
    r"(?:don't|do not|no longer|never) (?:really |even )?(?:want|wish) to (?:be alive|live"
    r"|exist|wake up|keep living|go on|keep going|be here(?= ?(?:anymore|any more|any longer"
    r"|at all|on this earth|in this world|$|[.!?,;])))",
    r"not sure (?:if |that )?i (?:want|wish) to (?:live|be alive|be here|go on|keep going)",
    r"(?:go to sleep|fall asleep|sleep) and (?:not|never) wake up",
    r"(?:sleep|go to sleep|fall asleep) forever", r"hope i (?:don't|never|won't) wake up",
    r"(?:better|happier) (?:off )?without me",
    r"(?:better off|better|happier) if i (?:was|were|wasn't|weren't|was not|were not|died"
    r"|disappeared|was gone|were gone|wasn't here|wasn't around)",
    r"(?:what's|what is) (?:even )?the point (?:of|in) (?:going on|living|life|being alive"
    r"|anything|any of this|it all|carrying on|staying|being here|existing|me)",
    r"(?:what's|what is) (?:even )?the point (?:anymore|any more)",
    r"(?:no|don't see (?:a|any|the)|don't really see (?:a|any|the)|can't see (?:a|any|the)"
    r"|do not see (?:a|any|the)|cannot see (?:a|any|the)|lost (?:my|all|any)|there's no)"
    r" (?:reason|point|will) (?:to|in|for|of) (?:keep |keeping |go on |going on |carry on )?"
    r"(?:live|living|life|being alive|be alive|going on|go on|keep going|being here"
    r"|stay(?:ing)? alive)",
    r"(?:can't|cannot|can not|don't think i can|not sure i can|unable to) (?:go on"
    r"|keep going(?! to)|carry on|keep living|live like this|do this anymore|do this any more"
    r"|take (?:it|this) anymore|keep doing this)",
    r"(?:tired|sick) of (?:living|life|being alive|existing|being here)",
    r"(?:i'm|i am) (?:so )?(?:done|finished) with (?:life|living|being alive|it all|this life)",
    r"done (?:with )?living",
    r"(?:isn't|is not|not|no longer|never) worth (?:living|being alive|staying alive)",
    r"(?:nobody|no one) (?:would|will|'d|is going to|is gonna) (?:even )?(?:miss|notice|care"
    r"|remember) (?:me|if i)",
    r"(?:i|me|myself) (?:\w+ ){0,4}?(?:disappear|vanish)(?:ed)? (?:forever|for good|permanently)",
    r"want (?:it all|everything|all of it|all this|this all) to (?:stop|end)"
    r"(?! for a (?:minute|second|moment|bit|while|day|week))",
    r"(?:only|no other) way out", r"no way out (?:but|except|other than)",
    r"(?:thought|thoughts) (?:about|of) not (?:being here|being alive|waking up|existing|living)",
    r"(?:those|the|these|my|dark|old) (?:dark )?(?:thoughts|urges) (?:are|have) (?:back"
    r"|come back|returned)",
    r"having (?:those|the|these) (?:dark )?thoughts again",
    # goodbyes
    r"this (?:is|will be) (?:my|the) (?:last|final) (?:message|text)",
    r"(?:my|the) (?:last|final) (?:message|text) (?:to you|you'll get|ever)",
    r"last time you(?:'ll| will) hear from me", r"(?:won't|will not|never) hear from me again",
    r"(?:goodbye|bye|farewell) (?:everyone|everybody|forever|world|cruel world|for good"
    r"|for ever|to everyone|to all|all)(?! (?:for now|until|till|tomorrow))",
    r"this is goodbye", r"my (?:final |last )?goodbyes", r"(?:final|last) goodbye",
    r"(?:suicide|goodbye|farewell) (?:note|notes|letter|letters|message|video)",
    r"(?:keep looking at|keep staring at|staring at|can't stop looking at) (?:the |a |my |those"
    r" |these )?(?:knife|knives|razor|razors|blade|blades|rope|pills|bottle of pills)",
    r"(?:wrote|writing|left|leaving|written) (?:letters|notes) (?:for|to) (?:everyone"
    r"|my family|my kids|everybody)",
    r"(?:please|pls) tell (?:my|the) (?:\w+ ){0,2}?(?:that )?i(?:'m| am)? (?:so )?(?:sorry|love)",
    r"tell (?:my|the) (?:\w+ ){0,2}?(?:that )?i (?:love|loved) (?:them|him|her|you)\W+"
    r"(?:\w+\W+){0,3}?(?:goodbye|bye)",
    r"i love you all\W+(?:goodbye|bye)",
    r"(?:won't|will not|not going to|not gonna) be (?:around|here|alive) (?:much longer"
    r"|for much longer|for long|anymore|any more|after (?:tonight|today|this))",
    r"(?:gave|given|giving|give) away (?:all |most )?(?:of )?my (?:stuff|things|belongings"
    r"|possessions|pets?)",
    r"(?:when|after|once) i'm gone(?! (?:on|for|to|next|this|from|at|till|until))",
    # method words with intent
    r"how many (?:of )?(?:my |these |those |the )?(?:\w+ )?(?:" + _PILLS[3:-1] + r"|these"
    r"|them)\b[^.?!]{0,25}?\b(?:would it take|does it take|it would take|to die|to kill"
    r"|to overdose|to not wake|to never wake|is lethal|is fatal|to end)"
    r"(?! to (?:notice|feel|work|see|help|start|get))",
    r"(?:keep|kept|can't stop|cannot stop|been|always|constantly|obsessively|keeps)"
    r" (?:thinking|think|obsessing) (?:about|of) (?:the |my |those |these |all )?(?:(?:sleeping )"
    r"?pills|tablets|bridge|guns?|rope|noose|razors?|blades?|knife|knives|jumping|hanging"
    r"|overdosing|crashing|train tracks|the tracks)",
    r"(?:jump|jumping|throw myself|throwing myself) (?:off|from|in front of|into|under)"
    r" (?:(?:a|the|this|that|my) )?(?:top of (?:a |the )?)?(?:bridge|roof|building|balcony|cliff"
    r"|overpass|parking (?:garage|deck|structure)|tower|train|bus|truck|traffic|window|ledge)",
    r"(?:walk|walking|step|stepping|run|running) (?:out )?(?:into|in front of) (?:a |the"
    r" |oncoming )?(?:traffic|train|bus|truck|ocean|sea|lake|river)",
    r"(?:drive|driving|crash|crashing|steer|steering) (?:my |the )?(?:car )?(?:into|off)"
    r" (?:a |the |oncoming )?(?:river|lake|wall|tree|bridge|cliff|traffic|pole|ocean|truck"
    r"|overpass)",
    r"(?:crash|crashing|wreck|wrecking) (?:my |the )?car (?:on purpose|deliberately)",
    r"(?:gun|pistol|revolver|rifle|shotgun|firearm) (?:to|in|against) my (?:head|mouth|temple"
    r"|chest)",
    r"(?:bought|buying|loaded|loading|holding|looking at|staring at|keep looking at)"
    r" (?:a |the |my |his |my dad's |dad's |my husband's |a new )?(?:gun|pistol|revolver"
    r"|rifle|shotgun|firearm)",
    r"(?:use|using) (?:it|them|that|the gun|the rope|the pills) on myself",
    r"noose", r"(?:bought|buy|got|tied|tie|tying|found) (?:a |the |some )?rope",
    r"(?:the|a) rope (?:is )?(?:ready|tied|up)",
    r"(?:saving|saved|stockpiling|stockpiled|hoarding|hoarded|collecting|stashing) (?:up )?"
    r"(?:my |the |all my |some )?" + _PILLS,
    r"(?:going to|want to|plan to|planning to|about to|will|i'll|should|might|thinking about"
    r"|think about) (?:just )?(?:take|swallow|down) (?:all|every one|the whole|a whole"
    r"|the rest) (?:of )?(?:(?:my |the |these |those )?(?:\w+ )?" + _PILLS + _ROUTINE
    + r"|them|these|those|it)",
    _PILLS + r" (?:saved|stashed|stockpiled|hoarded|hidden|lined up|counted out|ready|out on)",
    r"(?:want|going|plan|planning|about|trying) to overdose",
)

_SELF_HARM_SELF = _Phrases(
    r"(?:cut|cutting|burn|burned|burnt|burning|hurt|hurting|harm|harming|hit|hitting|punch"
    r"|punching|scratch|scratching|starve|starving) myself(?! (?:cooking|at the gym|lifting"
    r"|working out|playing|running|on the|by accident|accidentally|while|shaving|gardening))",
    r"(?:cut|cutting|slit|slitting|slice|slicing) (?:open )?my (?:wrists?|arms?|legs?|thighs?"
    r"|skin|stomach)",
    r"self (?:harm|harms|harmed|harming|injury|injuring|injured|injure)",
    r"(?:cutting|cut) again", r"been cutting", r"started cutting",
    r"(?:relapsed|slipped)(?: and| on| into)? (?:cut|cutting|burned|self harm\w*"
    r"|hurt myself)",
    r"i (?:cut|burned|burnt) (?:again|last night|tonight|today|this morning)",
    r"(?:urge|urges) to (?:cut|hurt|harm|burn)",
    r"(?:cut|cutting|scratched|scratching|scratch|sliced|slicing|carved|carving|burned|burnt"
    r"|burning) (?:up )?my (?:arms?|wrists?|legs?|skin|thighs?|stomach|hands?)(?: \w+){0,3}"
    r" (?:with|using) (?:a |the |my )?(?:razor|blade|knife|glass|scissors|lighter|cigarette"
    r"|match|iron)",
    r"(?:cut|burned|burnt|hurt|hit|punched|scratched|bruised|starved|injured)(?: \w+){0,3}"
    r" (?:on purpose|deliberately|intentionally)",
    r"(?:want|need|deserve) to (?:feel (?:the )?pain|hurt|suffer|be punished)(?= ?(?:$|[.!?,;]|so"
    r"\b|again))",
    r"(?:until|till) (?:my \w+|it|they|i) (?:bled|bleeds?|bleed)",
)

_OVERDOSE_SELF = _Phrases(
    r"(?:took|taken|swallowed|downed|popped|ate) (?:all|the whole|a whole|every|the entire"
    r"|the rest of|everything in) (?:of )?(?:my |the |a |these |those )?(?:\w+ )?(?:bottle"
    r"|pills|meds|medication|medicine|tablets|troches|lozenges|doses|pack|packet|box|supply"
    r"|stash|prescription|cabinet)" + _ROUTINE,
    r"(?:took|taken|swallowed|downed|popped) (?:like |about |around |maybe |over |almost )?"
    r"(?:\d{2,}|[5-9]|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty"
    r"|forty|fifty|a hundred) (?:of )?(?:my |the |these |those )?(?:\w+ )?(?:pills|tablets"
    r"|capsules|caps|" + _NAMED_DRUGS + r"|of (?:my|the|these|them)\b(?: \w+)?)",
    r"(?:took|taken|swallowed|downed|popped) (?:like |about |around |maybe |over )?(?:\d+"
    r"|three|four|five|six|seven|eight|nine|ten) (?:of )?(?:my |the )?(?:doses|troches"
    r"|lozenges) (?:at once|at the same time|together|in a row|back to back|all at)",
    r"(?:took|taken|swallowed|downed|popped) (?:a handful|handfuls|a bunch|a lot|a ton|tons"
    r"|loads|heaps) of (?:my |the |these |those )?(?:\w+ )?(?:pills|tablets|meds|medication"
    r"|medicine|troches|lozenges|doses|" + _NAMED_DRUGS + r")",
    r"(?:took|taken|swallowed|downed|popped) (?:a handful|handfuls)",
    r"(?:took|taken|swallowed|downed|popped) (?:them all|all of them|it all)",
    r"(?:mixed|crushed) (?:all|the whole|every)(?: of)? (?:my |the )?(?:\w+ )?" + _PILLS,
    r"(?:took|taken|take|taking|had|used|swallowed) (?:way|far|much|a lot|lots) more than"
    r" (?:i'm |i am |i was )?(?:prescribed|supposed to|i should|my dose|the dose|allowed)",
    r"(?:took|taken|had|used|swallowed) (?:way|far|much|a lot|lots|a ton) more (?:of (?:the |my )?"
    r"\w+ )?than (?:i |i'm |i was )?(?:should|prescribed|supposed|allowed|meant)",
    r"(?:is|he's|she's|they're|i'm|are|might be) (?:\w+ )?overdosing",
    r"(?:just|has just|have just) overdosed",
    r"(?:triple|tripled|quadruple|quadrupled|3x|4x|5x|three times|four times|five times)"
    r" (?:my |the )?(?:dose|dosage|amount)",
    r"(?:i|i've|i have|i think i|just|i might have|might have|maybe i) (?:just )?(?:overdosed"
    r"|have overdosed)",
    r"(?:took|taken|swallowed) (?:way |far |much )?too (?:much|many)",
)

_CRISIS_TOPIC = _Phrases(
    r"(?:suicide|suicides|suicidal)", r"(?:overdose|overdosed|overdoses|overdosing)",
    r"(?:kill|killed|killing|hung|hanged|shot|cut|cutting) (?:himself|herself|themselves)",
    r"(?:took|taken|take|end|ended) (?:his|her|their) (?:own )?life",
    r"tried to (?:die|end it|end (?:his|her|their) life)",
)

_MEDICAL = _Phrases(
    # chest pain
    r"chest (?:pain|pains|is (?:hurting|tight|heavy)|hurts|hurting|feels (?:tight|crushed)"
    r"|tightness|pressure)",
    r"(?:pain|pressure|tightness|squeezing|crushing) (?:in|on) my chest",
    r"(?:sitting|elephant) on my chest", r"crushing my chest",
    # breathing
    r"(?:can't|cannot|can not|couldn't|could not|can barely|can hardly|unable to) (?:catch my"
    r" breath|breathe|breath|get air|get enough air)",
    r"(?:trouble|difficulty|difficult|hard|struggling|struggle|hard time|problem|problems)"
    r" (?:to |with )?(?:breathe|breathing)(?! (?:exercise|practice|work))",
    r"(?:short|shortness) of breath", r"gasping for (?:air|breath)",
    r"(?:is|he's|she's|i'm|they're|and) gasping",
    r"(?:turning|turned|going|gone) (?:blue|purple|grey|gray)",
    r"(?:not|isn't|stopped|barely|hardly) breathing",
    r"(?:breathing|breath|breaths) (?:is |are |seems |has gotten |got |getting )?"
    r"(?:really |very |so"
    r" |super |too )?(?:slow|shallow|labored|laboured)(?! and deep)",
    r"(?:he's|she's|they're|i'm|is|are) breathing (?:really |very |so |super )?(?:weird|strange"
    r"|funny|odd|slow|shallow)",
    r"lips (?:are |look |turning |turned |went )?(?:blue|purple|grey|gray)",
    # consciousness
    r"(?:can't|cannot|can not|couldn't|can barely|unable to|struggling to|hard to) (?:stay|keep)"
    r" (?:awake|conscious|my eyes open|(?:him|her|them) awake)",
    r"(?:can't|cannot|couldn't|can not|unable to) (?:wake|rouse) (?:him|her|them|my \w+)",
    r"(?:he|she|they|my \w+) (?:won't|will not|isn't|is not|can't be|cannot be) (?:wake"
    r"|waking|woken|waken)(?: up)?",
    r"unconscious", r"unresponsive",
    r"(?:and|but) (?:won't|will not|can't be|cannot be) (?:wake|woken|waken|roused)(?: up)?",
    r"(?:shaking|twitching) and jerking", r"jerking (?:uncontrollably|all over)",
    r"(?:body|arm|arms|legs) (?:is |are |keeps? )?jerking",
    r"(?:can't|cannot) (?:feel|move) (?:the |my |his |her )?(?:left|right|one) side",
    r"(?:numb|numbness|weak|weakness) (?:on|in) (?:the |my |his |her |one )?(?:left|right"
    r"|one) side",
    r"words (?:come|coming|are coming|came) out (?:wrong|weird|jumbled|garbled)",
    r"(?:he|she|they|he's|she's|they're) (?:is |are )?(?:not responding|won't respond"
    r"|isn't responding)",
    # seizure and stroke signs
    r"(?:seizure|seizures|seizing|convulsing|convulsion|convulsions)",
    r"(?:face|mouth|smile|lip) (?:is |looks |seems |feels |started )?(?:drooping|droopy|droops"
    r"|drooped|sagging|uneven|lopsided)",
    r"(?:drooping|droopy) (?:face|mouth|eyelid|side)",
    r"(?:slurred|slurring) (?:speech|words|my words|his words|her words|their words)",
    r"(?:speech|talking|words) (?:is |are |sounds? )?slurred",
    r"(?:i'm|i am|he's|she's|he is|she is|they're|is) slurring",
    r"(?:arm|leg|hand|side|face) (?:is |feels |went |has gone |is going )?(?:really |very"
    r" |suddenly |so )?(?:weak|numb|limp)",
    r"(?:arm|leg|one[- ]sided|left[- ]sided|right[- ]sided|facial) (?:weakness|numbness)",
    r"(?:weakness|numbness) (?:in|on) (?:my |his |her |the )?(?:arm|left|right|one|face)",
    r"(?:can't|cannot|unable to) (?:lift|move|raise|feel) (?:my|his|her|their) (?:left |right )?"
    r"(?:arm|leg|hand|face)",
    r"(?:having|had|have|think i'm having|is having|he's having|she's having|might be having"
    r"|signs of"
    r"|symptoms of) (?:a )?(?:stroke|heart attack|cardiac arrest)",
    r"stroke (?:symptoms|signs)",
    r"(?:call|calling|called) (?:911|an ambulance|the ambulance|ems|paramedics)",
)

# ---------------------------------------------------------------- urgent rules

_BLADDER = _Phrases(
    r"(?:bladder|urinary|urethra|urethral|kidney|kidneys|pelvic)(?: \w+)?"
    r" (?:(?:is|has been|feels|keeps) )?(?:killing me|on fire|pain|pains|hurts"
    r"|hurting|ache|aches|aching|sore|spasms?|infection|issues|problems|burning|pressure"
    r"|feels (?:sore|heavy|painful|weird|full|irritated))",
    r"(?:pain|ache|aching|burning|pressure|discomfort) (?:in|around) (?:my )?(?:bladder"
    r"|urethra|kidneys?|pelvis)",
    r"(?:burns|burning|stings|stinging|hurts|hurting|painful|pain|sore|discomfort)"
    r" (?:\w+ ){0,3}?(?:when"
    r"|while|to|after|as) (?:i )?(?:pee|peeing|urinate|urinating|wee|go to the bathroom"
    r"|use the bathroom|go pee)",
    r"(?:peeing|urinating|urination|urine|pee|weeing) (?:is |has been |feels )?(?:painful"
    r"|hurts|burns|stings|burning|stinging|hurting)",
    r"painful (?:urination|peeing|to pee)",
    r"(?:burning|painful|stinging) (?:pee|peeing|urination|urine)",
    r"(?:pee|urine|wee) (?:has|had|with) (?:some |a little )?blood",
    r"blood (?:in|when) (?:my |the )?(?:urine|pee|wee)", r"bloody (?:urine|pee)",
    r"(?:urine|pee|wee) (?:is |was |looks |looked |has been |came out |seems )?(?:kind of |a bit"
    r" |slightly |really )?(?:pink|red|bloody|brown|dark red|reddish)",
    r"(?:pink|red|reddish|bloody) (?:urine|pee|wee)",
    r"(?:bladder|urethra|pee|peeing|urine) (?:[\w']+ ){0,4}?on fire",
    r"(?:frequent|urgent|constant|increased|sudden) (?:urination|urge to (?:pee|urinate)"
    r"|need to (?:pee|urinate)|peeing|bathroom trips|trips to the bathroom)",
    r"(?:urge|need) to (?:pee|urinate) (?:all the time|constantly|all day|every)",
    r"(?:have|having|had|keep having|need|needing|keep needing|got|always have|running|run)"
    r" to (?:pee|urinate|go to the bathroom|run to the bathroom|go pee) (?:all the time"
    r"|constantly|nonstop|non stop|every (?:\d+|few|couple|ten|five|fifteen|twenty|half)"
    r"|so much|so often|a lot)",
    r"(?:peeing|urinating|pee) (?:all the time|constantly|nonstop|non stop|every (?:\d+|few"
    r"|ten|five|fifteen|twenty|half)|so much|so often)",
    r"(?:pee|peeing|urinating|urinate) (?:like |about |around |over )?\d+ times (?:a|an|per|each)"
    r" (?:day|hour|night)",
    r"blood (?:when i (?:wipe|pee|urinate)|on the (?:tissue|toilet paper))",
    r"(?:constantly|always|keep|keeps|constant) (?:\w+ ){0,3}?(?:need|needing|have|having"
    r"|urge) to (?:pee|urinate)",
    r"(?:uti|utis)", r"cystitis", r"bladder infection", r"urinary tract infection",
    r"(?:run|running|ran) to the bathroom every",
)

_DISSOCIATION_SIGN = _Phrases(
    r"unreal", r"not real", r"isn't real", r"(?:don't|doesn't|do not|does not|can't) feel real",
    r"shadow (?:people|figures)",
    r"(?:seeing|see|hearing|hear) (?:\w+ ){0,2}?(?:that|which) (?:aren't|are not|isn't|is not)"
    r" (?:there|real)", r"nothing (?:feels|seems|is|looks) real",
    r"nothing's real", r"like (?:a|i'm in a) dream", r"in a dream", r"dreamlike",
    r"detached", r"disconnected from (?:my body|myself|everything|reality|the world)",
    r"outside (?:of )?my body", r"out of my body", r"watching myself", r"dissociat\w*",
    r"dereali[sz]ation", r"depersonali[sz]ation", r"seeing things", r"hearing things",
    r"hearing voices", r"voices", r"hallucinat\w*", r"visuals", r"trails",
    r"patterns on the walls", r"walls (?:are )?(?:moving|breathing|melting)", r"distorted",
    r"warped", r"not in my body", r"floating outside", r"tripping", r"trippy", r"still high",
)
_PERSISTS = _rx(
    r"still", r"since (?:my |the )?(?:last |first )?session",
    r"since (?:yesterday|last night|then|sunday|monday"
    r"|tuesday|wednesday|thursday|friday|saturday|the weekend|last \w+)",
    r"(?:\d+|two|three|four|five|several|a few|few|couple of|couple) (?:days|weeks)",
    r"days later", r"for days", r"all week", r"(?:the )?next (?:day|morning)",
    r"(?:hasn't|haven't|won't|isn't|aren't|not|doesn't|don't) (?:stopped|stop|worn off"
    r"|wearing off|wear off|gone away|going away|go away|faded|fading)",
    r"keeps? (?:happening|coming back)", r"ever since", r"days? after", r"lasting",
)

_BP_READING = re.compile(r"\b(\d{2,3})\s*(?:/|over|\\)\s*(\d{2,3})\b")
_BP_CONTEXT = _rx(r"bp", r"blood pressure", r"pressure", r"reading", r"cuff", r"systolic",
                  r"mmhg", r"hypertension")
_BP_WORDS = _Phrases(
    r"(?:bp|blood pressure|pressure) (?:is |was |has been |reading |readings |numbers )?"
    r"(?:really |very |super |extremely |dangerously |crazy |sky |insanely )(?:high|elevated)",
    r"(?:bp|blood pressure) (?:is |was )?(?:through the roof|sky high|off the charts)",
    r"(?:very|really|dangerously|extremely|super) high (?:bp|blood pressure)",
)

_EXTRA_DOSE = _Phrases(
    r"(?:took|take|taken|taking|had|did|used|accidentally took) (?:another|an extra|extra"
    r"|a second|a double|double|an additional|one more|a 2nd|a third) (?:dose|doses|troche"
    r"|troches|lozenge|lozenges|tablet|pill|spray|one|hit|round|dosage)",
    r"(?:took|take|taken|taking|had|did|used) (?:two|2|both) (?:doses|troches|lozenges)",
    r"(?:double|doubled|doubling) (?:up|my dose|the dose)",
    r"(?:took|take|taking|did|used) (?:it|my dose|the dose|my medicine|my medication"
    r"|the medicine|the medication|my troche|my meds|my lozenge|a dose|my \w+ dose)"
    r" (?:\w+ ){0,2}?(?:early|too early|too soon|twice|ahead of time|ahead of schedule"
    r"|before i was supposed to)",
    r"(?:took|take|taking) (?:tomorrow's|next week's|\w+day's) (?:dose|troche|one|session)",
    r"re-?dos(?:e|ed|ing)",
    r"(?:took|take|taking|dosed|used) (?:it|my dose|a dose|the medicine) (?:\d+|two|three)"
    r" (?:days|nights|times) in a row", r"dosed (?:again|twice|early)", r"dose (?:again|twice)",
    r"(?:took|taken|take|taking|had|used|did|dosed)(?: \w+){0,4}? more than (?:i'm |i am |i was )?"
    r"(?:supposed to|prescribed|my prescription|i should)",
    r"(?:can|could|should) i (?:take|have|use) (?:another|an extra|a second|more|a double|two)",
    r"(?:is it ok|is it okay|is it safe) to (?:take|have|use) (?:another|an extra|a second"
    r"|more|a double|two)",
)

_ALCOHOL = _Phrases(
    r"alcohol", r"booze", r"(?:beer|beers)", r"wine", r"vodka", r"whiskey", r"whisky", r"tequila",
    r"rum", r"gin", r"bourbon", r"(?:cocktail|cocktails|margarita|margaritas)", r"shots of",
    r"liquor",
    r"(?:a few|some|couple|couple of|two|three|four|\d+|several) shots",
    r"drunk", r"tipsy", r"buzzed", r"hungover", r"hangover",
    r"(?:a|some|few|couple|couple of|two|three|\d+|several|many|too many) drinks?",
    r"drinking(?! (?:water|tea|coffee|juice|more water|lots of water|enough water|milk|soda"
    r"|electrolytes|a lot of water|plenty))",
    r"drank(?! (?:water|tea|coffee|juice|some water|some tea|a lot of water|lots of water"
    r"|milk|soda|plenty))",
    r"(?:can|could|should|may) i (?:drink|have a drink|have drinks|have a beer|have wine)",
    r"(?:ok|okay|safe|fine|alright) to (?:drink|have a drink|have drinks|have a beer|have wine)",
)
_BENZO_OPIOID = _Phrases(
    r"xanax", r"alprazolam", r"valium", r"diazepam", r"klonopin", r"clonazepam", r"ativan",
    r"lorazepam", r"restoril", r"temazepam", r"(?:benzo|benzos|benzodiazepine|benzodiazepines)",
    r"(?:opioid|opioids|opiate|opiates)", r"oxy", r"oxycodone", r"oxycontin",
    r"(?:percocet|percocets|perc|percs)",
    r"vicodin", r"hydrocodone", r"norco", r"morphine", r"fentanyl", r"codeine", r"tramadol",
    r"heroin", r"dilaudid", r"hydromorphone", r"methadone", r"kratom",
)
# Alcohol talk only matters next to the treatment; benzos and opioids always do.
_TREATMENT = _Phrases(
    r"(?:session|sessions|dose|doses|dosing|dosed|medicine|medication|meds|troche|troches"
    r"|lozenge|lozenges|treatment|treatments)", r"ketamine", r"spravato", r"mix", r"mixed",
    r"mixing", r"combine", r"combined", r"with it", r"on it", r"come down", r"coming down",
)

_CRAVING = _Phrases(
    r"(?<!food )(?<!sugar )(?<!sweet )(?<!carb )(?<!salt )(?<!snack )(?<!junk food )"
    r"crav(?:e|es|ed|ing|ings)(?! (?:for )?(?:pizza|chocolate|sugar|sweets|sugary|carbs|coffee"
    r"|food|ice cream|junk|salt|salty|snacks?|fries|burgers?|a burger|tacos?|bread|pasta"
    r"|cake|cookies|candy|fruit|water|sleep|rest|attention|connection|nature|sunlight|quiet"
    r"|peace|time|affection|touch|a nap|a hug|naps|hugs|\w+ food)\b)",
    r"(?:want|wanting|need|needing|crave|craving|desperate for|itching for) (?:more|another"
    r"|some more)(?: \w+)? (?:of )?(?:the |my |this |that )?(?:medicine|medication|meds|dose"
    r"|doses|troche|troches|lozenge|drug|stuff)",
    r"(?:keep|kept) wanting (?:more|to take more|another)",
    r"(?:use|using|take|taking) (?:it|the medicine|some|more) (?:outside (?:of )?(?:my |the )?"
    r"sessions?|between sessions|on my own|recreationally|for fun|to get high|just to feel)",
    r"(?:want|wanting|urge|urges) to use (?:it |the medicine |more )?(?:more|again|every day)",
    r"(?:addicted|hooked) (?:to|on) (?:it|the (?:medicine|medication|treatment|sessions?"
    r"|feeling|drug|troches?|doses?|high))",
    r"(?:getting|becoming|i'm|i am|feel) (?:addicted|hooked)(?= ?(?:$|[.!?,;]))",
    r"(?:want|wanting) to (?:take|use|do) (?:more|another|extra)(?! (?:walks|time|notes|breaks"
    r"|classes|sessions of therapy))",
    r"(?:can't stop|cannot stop|constantly|always|keep) (?:thinking about|think about"
    r"|obsessing over|obsessing about|fantasizing about) (?:my |the )?(?:next )?(?:dose|doses"
    r"|medicine|medication|troche|troches)",
)


# ---------------------------------------------------------------- assessment


@dataclass(frozen=True)
class _Finding:
    """One phrase that counts towards a level and category."""

    level: str
    category: str
    phrase: str
    position: int


def _crisis_findings(ctx: _Context) -> list[_Finding]:
    """Crisis and mention findings: self-directed phrases, topics and emergencies."""
    found: list[_Finding] = []
    for category, pattern in ((SUICIDE, _SUICIDE_SELF), (SELF_HARM, _SELF_HARM_SELF),
                              (OVERDOSE, _OVERDOSE_SELF)):
        for m in ctx.find(pattern):
            if ctx.idiom(m) or ctx.negated(m):
                continue
            if ctx.distant_past(m) or (ctx.about_someone_else(m) and category != OVERDOSE):
                found.append(_Finding(NONE, MENTION, m.group(0), m.start()))
            else:
                found.append(_Finding(CRISIS, category, m.group(0), m.start()))
    for m in ctx.find(_CRISIS_TOPIC):
        if not ctx.negated(m):
            found.append(_Finding(NONE, MENTION, m.group(0), m.start()))
    for m in ctx.find(_MEDICAL):
        if ctx.idiom(m) or ctx.negated(m) or ctx.distant_past(m):
            continue
        # "my dad had a stroke" is history; "she just had a seizure" is now.
        if _PAST_FORM.match(m.group(0)) and not ctx.recent(m):
            continue
        found.append(_Finding(CRISIS, MEDICAL_EMERGENCY, m.group(0), m.start()))
    return found


def _usable(ctx: _Context, m: re.Match[str], extra: re.Pattern[str] | None = None) -> bool:
    """True when an urgent match is the participant's own, current and not negated."""
    return not (
        ctx.negated(m, extra)
        or ctx.about_someone_else(m)
        or ctx.distant_past(m, whole_sentence=True)
    )


def _blood_pressure(ctx: _Context) -> list[_Finding]:
    """Readings at or above 180/120 (either number) and words like 'bp very high'."""
    found = []
    for m in _BP_READING.finditer(ctx.text):
        systolic, diastolic = int(m.group(1)), int(m.group(2))
        if not (60 <= systolic <= 300 and 30 <= diastolic <= 200 and systolic > diastolic):
            continue
        # Without a BP word, "10/12" is a date and "8/10" a score: need a 3-digit systolic.
        if systolic < 100 and not _BP_CONTEXT.search(ctx.sentence(m.start())):
            continue
        if systolic >= SYSTOLIC_ALERT or diastolic >= DIASTOLIC_ALERT:
            if _usable(ctx, m):
                found.append(_Finding(URGENT, BLOOD_PRESSURE, m.group(0), m.start()))
    for m in ctx.find(_BP_WORDS):
        if _usable(ctx, m):
            found.append(_Finding(URGENT, BLOOD_PRESSURE, m.group(0), m.start()))
    return found


def _dissociation(ctx: _Context) -> list[_Finding]:
    """Dissociation or hallucinations in a sentence that says they have not worn off."""
    found = []
    for m in ctx.find(_DISSOCIATION_SIGN):
        if _usable(ctx, m) and ctx.sentence_has(_PERSISTS, m.start()):
            found.append(_Finding(URGENT, DISSOCIATION, m.group(0), m.start()))
    return found


def _mixing(ctx: _Context) -> list[_Finding]:
    """Benzodiazepines or opioids at all; alcohol when the treatment is in the same text."""
    found = [
        _Finding(URGENT, MIXING, m.group(0), m.start())
        for m in ctx.find(_BENZO_OPIOID)
        if _usable(ctx, m, _SUBSTANCE_NEGATION)
    ]
    if _TREATMENT.search(ctx):
        found += [
            _Finding(URGENT, MIXING, m.group(0), m.start())
            for m in ctx.find(_ALCOHOL)
            if _usable(ctx, m, _SUBSTANCE_NEGATION)
        ]
    return found


def _urgent_findings(ctx: _Context) -> list[_Finding]:
    """Side effects and risky use the care team should hear about the same day."""
    found = _blood_pressure(ctx) + _dissociation(ctx) + _mixing(ctx)
    for category, pattern in ((BLADDER, _BLADDER), (EXTRA_DOSE, _EXTRA_DOSE),
                              (CRAVING, _CRAVING)):
        found += [
            _Finding(URGENT, category, m.group(0), m.start())
            for m in ctx.find(pattern)
            if _usable(ctx, m)
        ]
    return found


def _decide(found: list[_Finding]) -> Assessment:
    """Apply the precedence: crisis > urgent > mention > none."""
    for level, order in ((CRISIS, CRISIS_ORDER), (URGENT, URGENT_ORDER), (NONE, (MENTION,))):
        hits = sorted((f for f in found if f.level == level), key=lambda f: f.position)
        if hits:
            categories = {f.category for f in hits}
            category = next(c for c in order if c in categories)
            phrases = tuple(dict.fromkeys(f.phrase for f in hits))
            return Assessment(level, category, phrases)
    return NO_CONCERN


def assess(text: str) -> Assessment:
    """Assess one inbound text for crisis, same-day side effects, or a gentle mention."""
    if not text or not text.strip():
        return NO_CONCERN
    ctx = _Context(text)
    found = _crisis_findings(ctx)
    if any(f.level == CRISIS for f in found):
        return _decide(found)  # nothing urgent can outrank it
    return _decide(found + _urgent_findings(ctx))


def reply_key(assessment: Assessment) -> str | None:
    """Message key of the fixed template to answer with, or None when no safety reply is due.

    An overdose that has already happened is answered like a medical emergency
    (911 first), because it is one.
    """
    if assessment.level == CRISIS:
        if assessment.category in (MEDICAL_EMERGENCY, OVERDOSE):
            return "safety.emergency"
        return "safety.crisis"
    if assessment.level == URGENT:
        return "safety.urgent"
    if assessment.gentle:
        return "safety.gentle"
    return None
