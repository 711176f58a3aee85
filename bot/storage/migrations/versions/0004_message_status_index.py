"""Index messages by (status, updated_at): the clock looks for stuck and unsettled texts
every pass.

Revision ID: 0004
Revises: 0001
"""

from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_status_updated", "messages", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_status_updated", table_name="messages")
