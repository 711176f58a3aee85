"""partial indexes for the clock's queries

The clock process runs these every second: inbound texts waiting for an answer,
replies queued for the REST API, due pending timers in due order.
Each index holds only the rows its query looks for, so a pass stays flat however
many texts and timers have ever been stored.

Revision ID: 0008
Revises: 0001
Create Date: 2026-11-30 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0001"
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


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(name, table, columns, unique=False,
                        postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def downgrade() -> None:
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
