"""Global keywords: the words that interrupt whatever flow is running.

The rule (also in the README): a message is a command only when the whole
message, after trimming whitespace and trailing punctuation and ignoring case,
is a keyword or one of its short aliases ("done", "Done!", "I'm done." are
DONE; "I'm done with my old job" is an answer). Opt-out is the exception:
plain-language requests aimed at the bot ("please stop texting me", "quiero
darme de baja") are honoured anywhere in a message, because the law says any
reasonable way of saying stop counts; flows/optout.py reads them (three
outcomes: opt out now, ask to confirm, offer a setting). Words like "stop"
inside other sentences ("I want to stop drinking") stay answers.
"""

from __future__ import annotations

import re
import unicodedata

from flows import optout

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
SHARE = "SHARE"
YES = "YES"
NO = "NO"

SPANISH_OPT_IN = frozenset({
    "alta", "alta por favor", "darme de alta", "dar de alta", "denme de alta",
    "quiero darme de alta", "volver", "quiero volver", "regresar", "quiero regresar",
    "reactivar", "suscribir", "suscribirme", "volver a suscribirme", "iniciar", "comenzar",
    "empezar de nuevo", "quiero volver a recibir mensajes"})
"""START in Spanish: a participant who opted out comes back (answered in Spanish)."""

# Twilio's own opt-out words, plus what people type.
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout",
         "opt out", "opt-out", "stop all", "unsub", "please stop", "stop please", "stop it",
         "stop now"],
        OPT_OUT,
    ),
    **dict.fromkeys(["start", "unstop", "opt in", "optin", "resubscribe"], OPT_IN),
    **dict.fromkeys(sorted(SPANISH_OPT_IN), OPT_IN),
    **dict.fromkeys(["help", "info", "menu", "commands", "?", "ayuda", "ayuda por favor",
                     "informacion", "información"], HELP),
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
    **dict.fromkeys(["share", "sharing", "share journal", "journal sharing"], SHARE),
    **dict.fromkeys(["finished", "course done", "course finished", "course over"], FINISHED),
    **dict.fromkeys(["delete", "delete my data", "delete me", "erase"], DELETE),
    **dict.fromkeys(["continue", "carry on", "pick up", "go on"], CONTINUE),
    **dict.fromkeys(["plan", "my plan", "safety plan", "my safety plan"], PLAN),
    **dict.fromkeys(["yes", "y", "yes please", "yeah", "yep", "yup", "ok", "okay", "sure", "si",
                     "sí"], YES),
    **dict.fromkeys(["no", "n", "nope", "nah", "not yet", "no thanks"], NO),
}

SPANISH_HELP = frozenset({"ayuda", "ayuda por favor", "informacion", "información"})
"""HELP asked in Spanish: the reply is the Spanish HELP text."""

SPANISH_YES = frozenset({"si"})
"""YES in Spanish (after STOP it opts back in, answered in Spanish)."""


def is_spanish_opt_in(text: str | None) -> bool:
    """True when the whole message is START (or YES) in Spanish: "ALTA", "volver", "sí"."""
    bare = "".join(ch for ch in unicodedata.normalize("NFD", _bare(text or ""))
                   if unicodedata.category(ch) != "Mn")  # "sí" -> "si"
    return bare in SPANISH_OPT_IN or bare in SPANISH_YES

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
    """True when the text asks to stop every text now (see flows.optout for the rules)."""
    return optout.classify(text).outcome == optout.IMMEDIATE


def is_spanish_help(text: str | None) -> bool:
    """True when the whole message asks for help in Spanish ("AYUDA", "ayuda por favor")."""
    return _bare(text or "") in SPANISH_HELP


SPELLED_OUT = frozenset(
    {OPT_OUT.lower(), OPT_IN.lower(), HELP.lower(), DONE.lower(), JOURNAL.lower(),
     INTENTION.lower(), SKIP.lower(), PAUSE.lower(), RESUME.lower(), TIMEZONE.lower(),
     BEDTIME.lower(), THERAPIST.lower(), SESSION.lower(), FINISHED.lower(), DELETE.lower(),
     MINDFULNESS.lower(), SHARE.lower(), CONTINUE.lower(), PLAN.lower(), "next", "info",
     "unstop", "ayuda"}
)
"""Keywords that interrupt even a free-text answer: the word itself, not its aliases."""


def is_spelled_out(text: str | None) -> bool:
    """True when the whole message is a keyword's own name ("SKIP", "help!", "Pause 3")."""
    bare = _bare(text or "")
    return bare in SPELLED_OUT or bool(_PAUSE_DAYS.match(bare) or _JOURNAL_PAGE.match(bare))
