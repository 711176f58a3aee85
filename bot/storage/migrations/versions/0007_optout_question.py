"""opt-out question: when "Reply STOP to stop all texts" was asked

Revision ID: 0007
Revises: 0006 (chained after main's 0006 when main was merged in)
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.add_column(sa.Column("optout_asked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("participants") as batch:
        batch.drop_column("optout_asked_at")
