"""`flask --app bot keys rotate`: re-encrypt every stored text under the newest key.

Put the new key first in JOURNAL_ENCRYPTION_KEY (keep the old ones after it),
run the rotation, then drop the old keys. Reading an EncryptedText column
decrypts with any key of the ring; writing it back encrypts with the first.
"""

from __future__ import annotations

from sqlalchemy import select, update

from bot.storage.models import (
    JournalEntry,
    Message,
    Participant,
    SafetyPlan,
    ScheduledMessage,
    Session,
)

ENCRYPTED_COLUMNS = (
    (Participant, ("phone", "name")),
    (Session, ("intention", "action")),
    (JournalEntry, ("text",)),
    (Message, ("body",)),
    (ScheduledMessage, ("body",)),
    (SafetyPlan, ("sections",)),
)
"""Every column stored with EncryptedText."""


def rotate_all(services) -> dict[str, int]:
    """Re-encrypt each encrypted column in one transaction; returns rows per table."""
    counts: dict[str, int] = {}
    with services.db.engine.begin() as conn:
        for model, columns in ENCRYPTED_COLUMNS:
            table = model.__table__
            rows = conn.execute(select(table.c.id, *[table.c[c] for c in columns])).all()
            touched = 0
            for row in rows:
                values = {c: getattr(row, c) for c in columns if getattr(row, c) is not None}
                if values:
                    conn.execute(update(table).where(table.c.id == row.id).values(**values))
                    touched += 1
            counts[table.name] = touched
    return counts
