"""journal links: private, revocable links to a participant's journal page

Revision ID: 0006
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journal_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_journal_links_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_links")),
    )
    with op.batch_alter_table("journal_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journal_links_participant_id"), ["participant_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("journal_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_links_participant_id"))
    op.drop_table("journal_links")
