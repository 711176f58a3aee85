"""What the console's pages show, read from the database (no Flask here).

Names and message bodies are encrypted, so searching and sorting by name happens
in Python over the decrypted rows; a clinic's list is hundreds of people, not millions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.alerts import CATEGORY_WORDS
from bot.storage.models import (
    Alert,
    AlertNote,
    AlertPage,
    AlertSignal,
    CareConversation,
    CareReply,
    JournalEntry,
    JournalShare,
    Message,
    Participant,
    ScheduledMessage,
    Session,
    StaffUser,
)

SENT = ("sent", "delivered", "read")
"""Scheduled-message statuses that mean the nudge went out."""

FAILED = ("failed", "undelivered")

REPLY_WINDOW = timedelta(hours=24)
"""An inbound text within this long after a nudge counts as a reply to it."""

SAFETY_CHECK_LEVEL = "check"
"""The level flows/safety_talk.py gives alerts about the safety check (CHECK_ALERT)."""

SAFETY_CHECK_CATEGORIES = frozenset({"unanswered_check", "repeated_check"})
"""Alert categories listed under "unanswered safety checks" rather than with other alerts
(flows/safety_talk.py UNANSWERED and REPEATED; a YES to the check is a crisis alert)."""

HIDDEN_KEYS = ("journal.entries",)
"""Outbound texts that quote the participant's journal (hidden unless they share it)."""


def answered(sent: list[datetime], inbound: list[datetime]) -> set[int]:
    """Indexes of the nudges (by send time) that got a reply: each inbound text answers the
    latest nudge sent before it, within REPLY_WINDOW."""
    order = sorted(range(len(sent)), key=lambda i: sent[i])
    found = set()
    for at in inbound:
        latest = None
        for i in order:
            if sent[i] < at:
                latest = i
            else:
                break
        if latest is not None and at - sent[latest] <= REPLY_WINDOW:
            found.add(latest)
    return found


def _ago(now: datetime, then: datetime | None) -> str:
    """'3 h 5 min' style duration."""
    if then is None:
        return "-"
    minutes = max(0, int((now - then).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def local(at: datetime | None, tz: str) -> str:
    """A time in a zone, e.g. 'Mon Nov 23 10:05 EST'."""
    if at is None:
        return "-"
    value = at.astimezone(ZoneInfo(tz))
    return f"{value:%a %b %d %H:%M %Z}"


# ---------------------------------------------------------------- Now


@dataclass
class NowPage:
    """The Now page: what needs a person, most urgent first."""

    alerts: list[dict] = field(default_factory=list)
    safety_checks: list[dict] = field(default_factory=list)
    silent: list[dict] = field(default_factory=list)
    conversations: list[dict] = field(default_factory=list)


def now_page(db, now: datetime, silent_after: int) -> NowPage:
    """Open alerts, unanswered safety checks, participants gone quiet, open conversations."""
    page = NowPage()
    rows = db.execute(select(Alert, Participant).join(
        Participant, Participant.id == Alert.participant_id).where(Alert.status == "open")
        .order_by((Alert.level == "crisis").desc(), Alert.created_at)).all()
    outcomes = page_outcomes(db, [alert.id for alert, _ in rows])
    for alert, p in rows:
        pages = outcomes.get(alert.id, {"accepted": 0, "failed": 0})
        item = {"id": alert.id, "level": alert.level, "category": alert.category or "-",
                "category_words": CATEGORY_WORDS.get(alert.category or "",
                                                     alert.category or "unspecified"),
                "open_for": _ago(now, alert.created_at), "rounds": alert.page_count,
                "signals": alert.signals or 1,
                "last_signal": _ago(now, alert.last_signal_at or alert.created_at),
                "attempted": pages["accepted"] + pages["failed"],
                "accepted": pages["accepted"], "failed": pages["failed"],
                "last_paged": _ago(now, alert.last_paged_at), "participant": _who(p)}
        target = page.safety_checks if is_safety_check(alert) else page.alerts
        target.append(item)
    page.silent = silent_participants(db, now, silent_after)
    page.conversations = open_conversations(db, now)
    return page


def is_safety_check(alert: Alert) -> bool:
    """Whether an alert is about the safety check question rather than a risky text."""
    return alert.level == SAFETY_CHECK_LEVEL or alert.category in SAFETY_CHECK_CATEGORIES


def page_outcomes(db, alert_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per alert: how many page attempts the SMS provider accepted and how many failed."""
    result: dict[int, dict[str, int]] = {i: {"accepted": 0, "failed": 0} for i in alert_ids}
    if not alert_ids:
        return result
    for alert_id, outcome, count in db.execute(
            select(AlertPage.alert_id, AlertPage.outcome, func.count())
            .where(AlertPage.alert_id.in_(alert_ids))
            .group_by(AlertPage.alert_id, AlertPage.outcome)):
        result[alert_id][outcome] = count
    return result


def _who(p: Participant) -> dict:
    """How the console names a participant in a list."""
    return {"id": p.id, "name": p.name or f"Participant #{p.id}", "last4": p.phone_last4,
            "status": p.status, "timezone": p.timezone}


def silent_participants(db, now: datetime, silent_after: int) -> list[dict]:
    """Active participants whose last `silent_after` nudges all went unanswered."""
    last_in = (select(Message.participant_id.label("pid"),
                      func.max(Message.created_at).label("at"))
               .where(Message.direction == "in").group_by(Message.participant_id).subquery())
    rows = db.execute(
        select(Participant, func.count(ScheduledMessage.id), last_in.c.at)
        .join(ScheduledMessage, ScheduledMessage.participant_id == Participant.id)
        .outerjoin(last_in, last_in.c.pid == Participant.id)
        .where(Participant.status == "active", ScheduledMessage.status.in_(SENT),
               (last_in.c.at.is_(None)) | (ScheduledMessage.sent_at > last_in.c.at))
        .group_by(Participant.id, last_in.c.at)
        .having(func.count(ScheduledMessage.id) >= silent_after)).all()
    return [{**_who(p), "unanswered": count, "last_reply": _ago(now, at) if at else "never"}
            for p, count, at in rows]


def open_conversations(db, now: datetime) -> list[dict]:
    """Every open inbox conversation with who opened it and the last text from the person."""
    rows = db.execute(select(CareConversation, Participant, StaffUser.email)
                      .join(Participant, Participant.id == CareConversation.participant_id)
                      .join(StaffUser, StaffUser.id == CareConversation.opened_by)
                      .where(CareConversation.status == "open")
                      .order_by(CareConversation.opened_at)).all()
    result = []
    for conversation, p, email in rows:
        last_in = db.scalar(select(func.max(Message.created_at)).where(
            Message.participant_id == p.id, Message.direction == "in",
            Message.created_at >= conversation.opened_at))
        result.append({**_who(p), "conversation": conversation.id, "opened_by": email,
                       "open_for": _ago(now, conversation.opened_at),
                       "last_text": _ago(now, last_in) if last_in else "none yet"})
    return result


# ---------------------------------------------------------------- Participants


SORTS = {
    "name": lambda r: (r["name"].lower(), r["id"]),
    "status": lambda r: (r["status"], r["id"]),
    "timezone": lambda r: (r["timezone"], r["id"]),
    "activity": lambda r: (r["last_activity_at"] is None, r["last_activity_at"] or 0),
    "sessions": lambda r: (r["sessions"], r["id"]),
    "mood": lambda r: (r["mood"] is None, r["mood"] or 0),
}


def participant_rows(db, now: datetime, *, search: str = "", sort: str = "activity",
                     descending: bool = True, page: int = 1,
                     per_page: int = 25) -> tuple[list[dict], int]:
    """One page of the searchable, sortable list, and the number of matching participants."""
    last_seen = dict(db.execute(select(Message.participant_id, func.max(Message.created_at))
                                .group_by(Message.participant_id)).all())
    sessions = dict(db.execute(select(Session.participant_id, func.count(Session.id))
                               .where(Session.done_at.is_not(None))
                               .group_by(Session.participant_id)).all())
    moods: dict[int, int] = {}
    for pid, mood in db.execute(select(Session.participant_id, Session.mood)
                                .where(Session.mood.is_not(None)).order_by(Session.id)):
        moods[pid] = mood  # the latest session's wins
    rows = []
    needle = search.strip().lower()
    for p in db.scalars(select(Participant).where(Participant.status != "deleted")):
        row = {**_who(p), "last_activity_at": last_seen.get(p.id),
               "sessions": sessions.get(p.id, 0), "mood": moods.get(p.id)}
        if needle and needle not in row["name"].lower() and needle not in p.phone_last4 \
                and needle != str(p.id):
            continue
        rows.append(row)
    rows.sort(key=SORTS.get(sort, SORTS["activity"]), reverse=descending)
    total = len(rows)
    start = (max(1, page) - 1) * per_page
    shown = rows[start:start + per_page]
    _add_adherence(db, shown)
    for row in shown:
        row["last_activity"] = _ago(now, row["last_activity_at"]) + " ago" \
            if row["last_activity_at"] else "never"
    return shown, total


def _add_adherence(db, rows: list[dict]) -> None:
    """Journal completion and nudges delivered / failed / replied for the shown rows."""
    ids = [r["id"] for r in rows]
    if not ids:
        return
    journaled = dict(db.execute(
        select(JournalEntry.participant_id, func.count(func.distinct(JournalEntry.session_id)))
        .where(JournalEntry.participant_id.in_(ids)).group_by(JournalEntry.participant_id)).all())
    stats = nudge_stats(db, ids)
    for row in rows:
        row["journaled"] = journaled.get(row["id"], 0)
        row.update(stats.get(row["id"], {"delivered": 0, "failed": 0, "replied": 0}))


def nudge_stats(db, ids: list[int]) -> dict[int, dict]:
    """Per participant: nudges delivered, failed, and answered (see `answered`)."""
    inbound = defaultdict(list)
    for pid, at in db.execute(select(Message.participant_id, Message.created_at).where(
            Message.participant_id.in_(ids), Message.direction == "in")):
        inbound[pid].append(at)
    stats: dict[int, dict] = defaultdict(lambda: {"delivered": 0, "failed": 0, "replied": 0})
    sent = defaultdict(list)
    for pid, status, sent_at in db.execute(
            select(ScheduledMessage.participant_id, ScheduledMessage.status,
                   ScheduledMessage.sent_at).where(ScheduledMessage.participant_id.in_(ids))):
        if status in SENT:
            stats[pid]["delivered"] += 1
            if sent_at:
                sent[pid].append(sent_at)
        elif status in FAILED:
            stats[pid]["failed"] += 1
    for pid, times in sent.items():
        stats[pid]["replied"] = len(answered(times, inbound[pid]))
    return stats


# ---------------------------------------------------------------- one participant


def shares_journal(db, participant_id: int, default: bool) -> bool:
    """Whether the participant agreed to show journal answers to the care team."""
    choice = db.get(JournalShare, participant_id)
    return default if choice is None else choice.share


def timeline(db, p: Participant, clinic_tz: str, share: bool, limit: int = 200) -> list[dict]:
    """Every text in and out and every scheduled nudge, newest first, with local and clinic time.

    The participant's own words are shown when they share their journal, when a text
    raised an alert, or when they wrote it during a conversation with the care team.
    """
    messages = db.scalars(select(Message).where(Message.participant_id == p.id)
                          .order_by(Message.created_at.desc(), Message.id.desc())
                          .limit(limit)).all()
    alerting = alert_message_ids(db, p.id)
    windows = [(c.opened_at, c.closed_at) for c in db.scalars(
        select(CareConversation).where(CareConversation.participant_id == p.id))]
    authors = dict(db.execute(select(CareReply.message_id, StaffUser.email)
                              .join(StaffUser, StaffUser.id == CareReply.staff_id)
                              .where(CareReply.message_id.in_([m.id for m in messages]))).all())
    items = []
    for m in messages:
        in_conversation = any(start <= m.created_at and (end is None or m.created_at <= end)
                              for start, end in windows)
        if m.direction == "in":
            visible = share or m.id in alerting or in_conversation
        else:
            visible = share or (m.key not in HIDDEN_KEYS)
        body = m.body if visible else None
        items.append({
            "at": m.created_at, "kind": "in" if m.direction == "in" else "out",
            "label": ("from participant" if m.direction == "in"
                      else f"from {authors[m.id]}" if m.id in authors
                      else f"bot ({m.key or 'reply'})"),
            "status": m.status, "error": m.error_code, "body": body,
            "deleted": m.body is None, "hidden": m.body is not None and not visible,
            "alert": m.id in alerting,
            "local": local(m.created_at, p.timezone), "clinic": local(m.created_at, clinic_tz),
        })
    for row in db.scalars(select(ScheduledMessage).where(ScheduledMessage.participant_id == p.id)
                          .order_by(ScheduledMessage.due_at.desc()).limit(limit)):
        if row.status in SENT:
            continue  # the sent text is already in the list as a message
        items.append({
            "at": row.due_at, "kind": "nudge", "label": f"nudge {row.kind} ({row.plan})",
            "status": row.status, "error": row.error_code, "body": row.body, "deleted": False,
            "hidden": False, "alert": False,
            "local": local(row.due_at, p.timezone), "clinic": local(row.due_at, clinic_tz),
        })
    items.sort(key=lambda item: item["at"], reverse=True)
    return items[:limit]


def alert_message_ids(db, participant_id: int) -> set[int]:
    """The inbound texts that raised an alert or attached to one: for each alert and each
    signal attached to it, the latest inbound text at or before that moment."""
    moments = set(db.scalars(select(Alert.created_at).where(
        Alert.participant_id == participant_id)))
    moments.update(db.scalars(select(AlertSignal.at).join(
        Alert, Alert.id == AlertSignal.alert_id).where(Alert.participant_id == participant_id)))
    ids = set()
    for at in moments:
        found = db.scalar(select(Message.id).where(
            Message.participant_id == participant_id, Message.direction == "in",
            Message.created_at <= at).order_by(Message.created_at.desc(),
                                               Message.id.desc()).limit(1))
        if found is not None:
            ids.add(found)
    return ids


def participant_alerts(db, participant_id: int, now: datetime) -> list[dict]:
    """The participant's alerts, newest first, with acknowledgement notes."""
    notes = defaultdict(list)
    for note, email in db.execute(select(AlertNote, StaffUser.email)
                                  .join(StaffUser, StaffUser.id == AlertNote.staff_id)
                                  .join(Alert, Alert.id == AlertNote.alert_id)
                                  .where(Alert.participant_id == participant_id)):
        notes[note.alert_id].append({"by": email, "note": note.note, "at": note.at})
    return [{"id": a.id, "level": a.level, "category": a.category or "-", "status": a.status,
             "created": a.created_at, "open_for": _ago(now, a.created_at),
             "pages": a.page_count, "signals": a.signals or 1,
             "acked_by": a.acked_by, "acked_at": a.acked_at,
             "notes": notes.get(a.id, [])}
            for a in db.scalars(select(Alert).where(Alert.participant_id == participant_id)
                                .order_by(Alert.id.desc()))]


def sessions_of(db, participant_id: int, share: bool) -> list[dict]:
    """Sessions with intention, DONE time, mood, and journal answers when shared."""
    result = []
    for s in db.scalars(select(Session).where(Session.participant_id == participant_id)
                        .order_by(Session.id.desc())):
        entries = [{"prompt": e.prompt, "text": e.text} for e in s.entries] if share else []
        result.append({"id": s.id, "scheduled_at": s.scheduled_at, "done_at": s.done_at,
                       "intention": s.intention, "mood": s.mood,
                       "therapy_booked": s.therapy_booked, "entries": entries,
                       "entry_count": len(s.entries)})
    return result


def weekly_replies(db, participant_id: int) -> list[tuple[str, int, int]]:
    """(week starting, nudges sent, nudges answered) per week, oldest first."""
    inbound = list(db.scalars(select(Message.created_at).where(
        Message.participant_id == participant_id, Message.direction == "in")))
    sent = list(db.scalars(select(ScheduledMessage.sent_at).where(
        ScheduledMessage.participant_id == participant_id,
        ScheduledMessage.status.in_(SENT), ScheduledMessage.sent_at.is_not(None))))
    replied = answered(sent, inbound)
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, sent_at in enumerate(sent):
        stats[week_start(sent_at)][0] += 1
        stats[week_start(sent_at)][1] += i in replied
    return [(week, count, answers) for week, (count, answers) in sorted(stats.items())]


def moods(db, participant_id: int, tz: str) -> list[tuple[str, int]]:
    """(local date, 1-5 score) of every mood check-in, oldest first."""
    rows = db.execute(select(Session.done_at, Session.created_at, Session.mood).where(
        Session.participant_id == participant_id, Session.mood.is_not(None))
        .order_by(Session.id)).all()
    return [(f"{(done or created).astimezone(ZoneInfo(tz)):%b %d}", mood)
            for done, created, mood in rows]


def week_start(at: datetime) -> str:
    """The Monday (UTC) of at's week, as YYYY-MM-DD."""
    day = at.date()
    return (day - timedelta(days=day.weekday())).isoformat()
