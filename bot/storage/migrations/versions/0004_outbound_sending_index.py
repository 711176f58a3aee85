"""partial index for REST replies left `sending` (reconciled by the clock each pass)

Revision ID: 0004
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0008"  # "0001" as assigned; chained after main's head (0008) when main was merged in
branch_labels = None
depends_on = None

WHERE = "direction = 'out' AND status = 'sending'"
"""The same predicate as bot/storage/models.py's OUTBOUND_SENDING."""


def upgrade() -> None:
    op.create_index("ix_messages_outbound_sending", "messages", ["updated_at"], unique=False,
                    postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index("ix_messages_outbound_sending", table_name="messages")
