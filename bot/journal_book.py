"""A participant's journal as one book: every session with its intention, answers and mood.

The journal page, its text download and the SMS digest all read it from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select

from bot import journal_links
from bot.storage.models import AuditRecord, JournalEntry, Participant, Session
from flows import journal as digest

_SKIP_HINT = re.compile(r"\s*\((?:Reply )?SKIP[^)]*\)", re.IGNORECASE)
_LEAD_IN = re.compile(r"^[^:?]{1,20}:\s+(?=\w)")  # "When you're ready: ", "Last one: "


@dataclass(frozen=True)
class Answer:
    """One answer (or note) and what it answered; later additions follow it."""

    entry_id: int
    prompt: str
    label: str
    question: str
    text: str
    at: datetime
    additions: tuple[tuple[datetime, str], ...] = ()


@dataclass(frozen=True)
class SessionPage:
    """One session as the participant reads it."""

    id: int
    at: datetime  # done, else scheduled, else created
    done: bool
    intention: str | None
    action: str | None
    mood: int | None
    answers: tuple[Answer, ...]


def questions(definitions, variables: dict[str, str]) -> dict[str, str]:
    """Each journal prompt's question, as the journaling flow asks it."""
    flow = definitions.flows.get("journal")
    out = {}
    for step in flow.steps.values() if flow else ():
        if step.save and step.save.startswith("journal:"):
            text = definitions.render(step.say, variables)
            question = _LEAD_IN.sub("", _SKIP_HINT.sub("", text).strip())
            out[step.save.split(":", 1)[1]] = question[:1].upper() + question[1:]
    return out


def sessions(db, participant: Participant, definitions, variables) -> list[SessionPage]:
    """Every session with anything in it, newest first; answers in the order given."""
    asked = questions(definitions, variables)
    rows = db.scalars(select(Session).where(
        Session.participant_id == participant.id,
        or_(Session.done_at.is_not(None), Session.intention.is_not(None)),
    )).all()
    entries = db.scalars(select(JournalEntry).where(
        JournalEntry.participant_id == participant.id).order_by(JournalEntry.id)).all()
    by_session: dict[int, list[JournalEntry]] = {}
    for entry in entries:
        by_session.setdefault(entry.session_id, []).append(entry)
    pages = []
    for row in rows:
        answers = _answers(by_session.get(row.id, []), asked)
        at = row.done_at or row.scheduled_at or row.created_at
        pages.append(SessionPage(id=row.id, at=at, done=row.done_at is not None,
                                 intention=row.intention, action=row.action, mood=row.mood,
                                 answers=tuple(answers)))
    extra = {e.session_id for e in entries} - {r.id for r in rows}
    if extra:  # entries on a session without intention or DONE (should not happen)
        for row in db.scalars(select(Session).where(Session.id.in_(extra))):
            pages.append(SessionPage(id=row.id, at=row.created_at, done=False, intention=None,
                                     action=row.action, mood=row.mood,
                                     answers=tuple(_answers(by_session[row.id], asked))))
    return sorted(pages, key=lambda page: (page.at, page.id), reverse=True)


def _answers(entries: list[JournalEntry], asked: dict[str, str]) -> list[Answer]:
    """Entries of one session: a repeated prompt (added from the page) joins its answer."""
    answers: list[Answer] = []
    index: dict[str, int] = {}
    for entry in entries:
        if entry.prompt != "note" and entry.prompt in index:
            i = index[entry.prompt]
            first = answers[i]
            answers[i] = Answer(first.entry_id, first.prompt, first.label, first.question,
                                first.text, first.at,
                                first.additions + ((entry.created_at, entry.text),))
            continue
        index[entry.prompt] = len(answers)
        answers.append(Answer(entry.id, entry.prompt,
                              digest.LABELS.get(entry.prompt, entry.prompt.title()),
                              asked.get(entry.prompt, ""), entry.text, entry.created_at))
    return answers


def local_date(at: datetime, timezone: str) -> str:
    """'Mon Nov 23' in the participant's zone."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%a %b %-d")


def local_datetime(at: datetime, timezone: str) -> str:
    """'Mon Nov 23, 2026 at 3:05 PM' in the participant's zone."""
    local = at.astimezone(ZoneInfo(timezone))
    return local.strftime("%a %b %-d, %Y at %-I:%M %p")


def digest_sessions(pages: list[SessionPage], timezone: str) -> list[digest.SessionNotes]:
    """The sessions as the SMS digest shows them."""
    out = []
    for page in pages:
        entries = [(a.prompt, " ".join([a.text, *(text for _, text in a.additions)]))
                   for a in page.answers]
        out.append(digest.SessionNotes(date=local_date(page.at, timezone),
                                       intention=page.intention, entries=entries,
                                       mood=page.mood))
    return out


def as_text(pages: list[SessionPage], timezone: str, title: str) -> str:
    """The whole journal as a plain text file (the page's download)."""
    out = [title, "=" * len(title), ""]
    for page in pages:
        heading = f"Session of {local_datetime(page.at, timezone)}"
        out += [heading, "-" * len(heading)]
        if page.intention:
            out += ["Intention:", f"  {page.intention}", ""]
        for answer in page.answers:
            out.append(f"{answer.question or answer.label}")
            out.append(f"  {answer.text}")
            for at, text in answer.additions:
                out.append(f"  Added {local_date(at, timezone)}: {text}")
            out.append("")
        if page.action and not any(a.prompt == "action" for a in page.answers):
            out += ["Small action:", f"  {page.action}", ""]
        if page.mood is not None:
            out += [f"48-hour mood: {page.mood} of 5", ""]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def sms_reply(services, db, participant: Participant, page: int,
              now: datetime) -> list[tuple[str, str]]:
    """JOURNAL's answer as (message key, text): a private link when the bot has a public
    address, else the notes themselves, newest session first, page by page."""
    defs, variables = services.definitions, services.variables
    books = sessions(db, participant, defs, variables)
    if not books:
        return [("journal.empty", defs.render("journal.empty", variables))]
    settings = services.settings
    if settings.public_base_url:
        token = journal_links.issue(db, settings, participant, now)
        db.add(AuditRecord(at=now, actor="participant", action="journal.link",
                           participant_id=participant.id))
        url = journal_links.page_url(settings, token)
        return [("journal.link", defs.render("journal.link", {**variables, "url": url}))]
    lines = [defs.render("journal.header", variables)]
    for notes in digest_sessions(books, participant.timezone):
        lines += digest.session_lines(notes, defs.render("journal.session", {"date": notes.date}))
    pages = digest.paginate(lines, lambda n: defs.render("journal.older", {"page": str(n)}))
    if page > len(pages):
        return [("journal.no_more", defs.render("journal.no_more", variables))]
    return [("journal.entries", text) for text in pages[page - 1]]
