"""Global keywords: the words that interrupt whatever flow is running.

The rule (also in the README): a message is a command only when the whole
message, after trimming whitespace and trailing punctuation and ignoring case,
is a keyword or one of its short aliases ("done", "Done!", "I'm done." are
DONE; "I'm done with my old job" is an answer). Opt-out is the exception:
plain-language requests aimed at the bot ("please stop texting me") are
honoured anywhere in a message, because the law says any reasonable way of
saying stop counts. Words like "stop" inside other sentences ("I want to stop
drinking") are not requests to the bot and stay answers.
"""

from __future__ import annotations

import re
import unicodedata

OPT_OUT = "STOP"
OPT_IN = "START"
HELP = "HELP"
DONE = "DONE"
JOURNAL = "JOURNAL"
INTENTION = "INTENTION"
SKIP = "SKIP"
PAUSE = "PAUSE"
RESUME = "RESUME"
TIMEZONE = "TIMEZONE"
BEDTIME = "BEDTIME"
THERAPIST = "THERAPIST"
SESSION = "SESSION"
FINISHED = "FINISHED"
DELETE = "DELETE"
MINDFULNESS = "MINDFULNESS"
CONTINUE = "CONTINUE"
PLAN = "PLAN"
YES = "YES"
NO = "NO"

# Twilio's own opt-out words, plus what people type.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout",
         "opt out", "opt-out", "stop all", "unsub", "please stop", "stop please", "stop it",
         "stop now"],
        OPT_OUT,
    ),
    **dict.fromkeys(["start", "unstop", "opt in", "optin", "resubscribe"], OPT_IN),
    **dict.fromkeys(["help", "info", "menu", "commands", "?"], HELP),
    **dict.fromkeys(
        ["done", "im done", "i am done", "all done", "finished session", "session done",
         "done session", "just finished", "i just finished", "session over", "im back"],
        DONE,
    ),
    **dict.fromkeys(["journal", "my journal", "notes", "my notes"], JOURNAL),
    **dict.fromkeys(["intention", "set intention", "new intention"], INTENTION),
    **dict.fromkeys(["skip", "next", "pass", "skip it"], SKIP),
    **dict.fromkeys(["pause"], PAUSE),
    **dict.fromkeys(["resume", "unpause"], RESUME),
    **dict.fromkeys(["timezone", "time zone", "tz"], TIMEZONE),
    **dict.fromkeys(["bedtime", "bed time", "sleep time"], BEDTIME),
    **dict.fromkeys(["therapist", "therapy"], THERAPIST),
    **dict.fromkeys(["session", "next session", "schedule"], SESSION),
    **dict.fromkeys(["mindfulness", "meditation", "meditate", "breathwork"], MINDFULNESS),
    **dict.fromkeys(["finished", "course done", "course finished", "course over"], FINISHED),
    **dict.fromkeys(["delete", "delete my data", "delete me", "erase"], DELETE),
    **dict.fromkeys(["continue", "carry on", "pick up", "go on"], CONTINUE),
    **dict.fromkeys(["plan", "my plan", "safety plan", "my safety plan"], PLAN),
    **dict.fromkeys(["yes", "y", "yes please", "yeah", "yep", "yup", "ok", "okay", "sure"], YES),
    **dict.fromkeys(["no", "n", "nope", "nah", "not yet", "no thanks"], NO),
}

# Plain-language opt-out requests aimed at the bot (FCC 2025: any reasonable way).
# "stop texting", "remove me" and "take me off" count only when the bot is their object
# (me/us, our texts, a list, or nothing after them): "I want to stop texting my ex" and
# "it helped remove me from old patterns" are journal answers, not opt-outs.
_OUR_TEXTS = r"(?:(?:these|the|your|any|all)\s+)?(?:texts|messages|msgs|txts|reminders)\b"
_OUR_LIST = r"(?:this|the|your)\s+(?:list|texts|messages|program|service)\b"
_OPT_OUT_REQUESTS = re.compile(
    r"\b(?:"
    r"(?:stop|quit|cease)\s+(?:texting|messaging|sending|contacting|txting|texing)"
    rf"(?:\s+(?:me|us)\b|\s+{_OUR_TEXTS}|$)"
    r"|(?:don'?t|do not|dont|never)\s+(?:text|message|contact|txt)\s+(?:me|us)\b"
    r"|no\s+more\s+(?:texts|messages|msgs|txts|reminders)\b"
    r"|unsubscribe(?:\s+me)?\b"
    r"|opt\s*me\s+out\b"
    rf"|remove\s+me(?:\s+from\s+{_OUR_LIST}|$)"
    rf"|take\s+me\s+off(?:\s+{_OUR_LIST}|$)"
    r")"
)
# A message that opens with a STOP word written in capitals, or set off as its own
# sentence, is aimed at the bot whatever follows ("STOP I want to die", "Stop. Leave me
# alone"); a lower-case "stop" running into a sentence ("stop drinking") is not.
_LEADING_STOP_WORDS = r"(?:stop|stopall|unsubscribe|optout|revoke)"
_LEADING_STOP = re.compile(
    rf"^[\W_]*(?:{_LEADING_STOP_WORDS.upper()}\b|(?i:{_LEADING_STOP_WORDS})\s*[.!]+(?:\s|$))"
)
_PAUSE_DAYS = re.compile(r"^pause\s+(\d{1,2})(?:\s*(?:d|day|days))?$")
_JOURNAL_PAGE = re.compile(r"^(?:my\s+)?(?:journal|notes)\s+(\d{1,2})$")
_TRAILING = re.compile(r"[\s\.\!\?,;:\-~\*]+$")


def normalize(text: str | None) -> str:
    """Fold a message for matching: NFKC, straight quotes, lower case, single spaces."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKC", text)
    folded = folded.replace("\u2019", "'").replace("\u2018", "'")
    folded = folded.replace("\u201c", '"').replace("\u201d", '"')
    # Drop emoji and other symbols so "Done 🙏" still reads as DONE.
    folded = "".join(ch for ch in folded if unicodedata.category(ch)[0] != "S" or ch in "+$")
    folded = " ".join(folded.casefold().split())
    return folded


def _bare(text: str) -> str:
    """Normalize, strip surrounding punctuation and drop apostrophes ("I'm" -> "im")."""
    return _TRAILING.sub("", normalize(text)).lstrip(" .!?,;:-~*\"'").replace("'", "")


def keyword(text: str | None) -> str | None:
    """The command a whole message names, or None when it is free text."""
    bare = _bare(text or "")
    if not bare and normalize(text).strip("?") == "" and "?" in (text or ""):
        bare = "?"  # a lone "?" asks for help; _bare strips it as trailing punctuation
    if bare in ALIASES:
        return ALIASES[bare]
    if _PAUSE_DAYS.match(bare):
        return PAUSE
    if _JOURNAL_PAGE.match(bare):
        return JOURNAL
    return None


def journal_page(text: str | None) -> int:
    """Which page of older notes 'JOURNAL 2' asks for (1 without a number)."""
    match = _JOURNAL_PAGE.match(_bare(text or ""))
    return max(1, int(match.group(1))) if match else 1


def pause_days(text: str | None, default: int = 3) -> int:
    """Days asked for in 'PAUSE 5' (default when no number; clamped to 1..30)."""
    match = _PAUSE_DAYS.match(_bare(text or ""))
    days = int(match.group(1)) if match else default
    return max(1, min(30, days))


def is_opt_out(text: str | None) -> bool:
    """True for the STOP family, a leading STOP, and plain requests to stop texting."""
    if keyword(text) == OPT_OUT:
        return True
    if _LEADING_STOP.match(unicodedata.normalize("NFKC", text or "")):
        return True
    # Trailing punctuation goes so "remove me!" ends where the pattern expects an end.
    return bool(_OPT_OUT_REQUESTS.search(_TRAILING.sub("", normalize(text))))


SPELLED_OUT = frozenset(
    {OPT_OUT.lower(), OPT_IN.lower(), HELP.lower(), DONE.lower(), JOURNAL.lower(),
     INTENTION.lower(), SKIP.lower(), PAUSE.lower(), RESUME.lower(), TIMEZONE.lower(),
     BEDTIME.lower(), THERAPIST.lower(), SESSION.lower(), FINISHED.lower(), DELETE.lower(),
     MINDFULNESS.lower(), CONTINUE.lower(), PLAN.lower(), "next", "info", "unstop"}
)
"""Keywords that interrupt even a free-text answer: the word itself, not its aliases."""


def is_spelled_out(text: str | None) -> bool:
    """True when the whole message is a keyword's own name ("SKIP", "help!", "Pause 3")."""
    bare = _bare(text or "")
    return bare in SPELLED_OUT or bool(_PAUSE_DAYS.match(bare) or _JOURNAL_PAGE.match(bare))
