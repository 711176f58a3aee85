"""partial indexes for the clock's queries

The clock process runs these every second: inbound texts waiting for an answer,
replies queued for the REST API, due pending timers in due order.
Each index holds only the rows its query looks for, so a pass stays flat however
many texts and timers have ever been stored. On PostgreSQL scheduled_messages also
keeps room on its pages for the clock's updates (fillfactor, below).

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-30 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"  # "0001" as assigned; chained after main's head (0005) when main was merged in
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_messages_inbound_waiting", "messages", ["updated_at"],
     "direction = 'in' AND status IN ('received', 'failed')"),
    ("ix_messages_outbound_queued", "messages", ["updated_at"],
     "direction = 'out' AND status = 'queued'"),
    ("ix_scheduled_pending_due", "scheduled_messages", ["due_at", "id"],
     "status = 'pending'"),
)
"""(name, table, columns, predicate): the same as bot/storage/models.py declares."""


SCHEDULED_FILLFACTOR = 85
"""PostgreSQL: leave 15% of each new page of scheduled_messages free, so the clock's
`enqueued_at` update (no indexed column changes) can write the new row version on the
same page (a HOT update) instead of inserting into all six indexes. Measured with
`python -m bench dispatch`: a full page made the 1,000-row hand-over about 3x slower."""


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, unique=False,
                        postgresql_where=sa.text(where), sqlite_where=sa.text(where))
    if op.get_bind().dialect.name == "postgresql":
        # Applies to pages written from now on (a VACUUM FULL would rewrite old ones).
        op.execute(f"ALTER TABLE scheduled_messages SET (fillfactor = {SCHEDULED_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE scheduled_messages RESET (fillfactor)")
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
