"""The admin's CSV: adherence and mood per participant and week."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from sqlalchemy import select

from bot.care.queries import FAILED, SENT, answered, week_start
from bot.storage.models import JournalEntry, Message, Participant, ScheduledMessage, Session

COLUMNS = ["participant", "name", "phone_last4", "week_start", "sessions_done",
           "journal_entries", "nudges_sent", "nudges_failed", "nudges_answered",
           "mood_checkins", "mood_mean"]
ANONYMOUS_COLUMNS = [c for c in COLUMNS if c not in ("name", "phone_last4")]


def weekly_rows(db) -> list[dict]:
    """One dict per participant and week (UTC Monday) with any activity."""
    weeks: dict[tuple[int, str], dict] = defaultdict(lambda: {
        "sessions_done": 0, "journal_entries": 0, "nudges_sent": 0, "nudges_failed": 0,
        "nudges_answered": 0, "moods": []})
    inbound = defaultdict(list)
    for pid, at in db.execute(select(Message.participant_id, Message.created_at)
                              .where(Message.direction == "in")):
        inbound[pid].append(at)
    for s in db.scalars(select(Session).where(Session.done_at.is_not(None))):
        row = weeks[(s.participant_id, week_start(s.done_at))]
        row["sessions_done"] += 1
        if s.mood is not None:
            row["moods"].append(s.mood)
    for pid, at in db.execute(select(JournalEntry.participant_id, JournalEntry.created_at)):
        weeks[(pid, week_start(at))]["journal_entries"] += 1
    sent = defaultdict(list)
    for pid, status, sent_at, due_at in db.execute(select(
            ScheduledMessage.participant_id, ScheduledMessage.status, ScheduledMessage.sent_at,
            ScheduledMessage.due_at)):
        if status in SENT and sent_at:
            weeks[(pid, week_start(sent_at))]["nudges_sent"] += 1
            sent[pid].append(sent_at)
        elif status in FAILED:
            weeks[(pid, week_start(sent_at or due_at))]["nudges_failed"] += 1
    for pid, times in sent.items():
        for i in answered(times, inbound[pid]):
            weeks[(pid, week_start(times[i]))]["nudges_answered"] += 1
    people = {p.id: p for p in db.scalars(select(Participant))}
    rows = []
    for (pid, week), row in sorted(weeks.items()):
        p = people.get(pid)
        if p is None or p.status == "deleted":
            continue
        moods = row.pop("moods")
        rows.append({"participant": pid, "name": p.name or "", "phone_last4": p.phone_last4,
                     "week_start": week, **row, "mood_checkins": len(moods),
                     "mood_mean": f"{sum(moods) / len(moods):.2f}" if moods else ""})
    return rows


def to_csv(rows: list[dict], *, anonymous: bool) -> str:
    """The rows as CSV text; anonymous leaves out names and phone digits."""
    columns = ANONYMOUS_COLUMNS if anonymous else COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _safe_cell(v) for k, v in row.items()})
    return out.getvalue()


def _safe_cell(value):
    """Neutralise spreadsheet formulas in text cells (a name like '=HYPERLINK(...)')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
