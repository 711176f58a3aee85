"""care-team console: staff accounts, login throttling, conversations, replies, alert notes

Revision ID: 0005
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("totp_secret", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("setup_token_hash", sa.String(length=64), nullable=True),
        sa.Column("setup_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_users_email")),
    )
    op.create_index(op.f("ix_staff_users_setup_token_hash"), "staff_users",
                    ["setup_token_hash"], unique=False)
    op.create_table(
        "staff_login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_login_failures")),
    )
    for column in ("email", "address", "at"):
        op.create_index(op.f(f"ix_staff_login_failures_{column}"), "staff_login_failures",
                        [column], unique=False)
    op.create_table(
        "care_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("opened_by", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold_set", sa.DateTime(timezone=True), nullable=True),
        sa.Column("prior_hold", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_care_conversations_participant_id_participants")),
        sa.ForeignKeyConstraint(["opened_by"], ["staff_users.id"],
                                name=op.f("fk_care_conversations_opened_by_staff_users")),
        sa.ForeignKeyConstraint(["closed_by"], ["staff_users.id"],
                                name=op.f("fk_care_conversations_closed_by_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_conversations")),
    )
    op.create_index(op.f("ix_care_conversations_participant_id"), "care_conversations",
                    ["participant_id"], unique=False)
    op.create_index(op.f("ix_care_conversations_status"), "care_conversations",
                    ["status"], unique=False)
    op.create_table(
        "care_replies",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_care_replies_message_id_messages")),
        sa.ForeignKeyConstraint(["conversation_id"], ["care_conversations.id"],
                                name=op.f("fk_care_replies_conversation_id_care_conversations")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"],
                                name=op.f("fk_care_replies_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_care_replies")),
    )
    op.create_table(
        "alert_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"],
                                name=op.f("fk_alert_notes_alert_id_alerts")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"],
                                name=op.f("fk_alert_notes_staff_id_staff_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notes")),
    )
    op.create_index(op.f("ix_alert_notes_alert_id"), "alert_notes", ["alert_id"], unique=False)
    op.create_table(
        "journal_shares",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("share", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"],
                                name=op.f("fk_journal_shares_participant_id_participants")),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_journal_shares")),
    )


def downgrade() -> None:
    op.drop_table("journal_shares")
    op.drop_index(op.f("ix_alert_notes_alert_id"), table_name="alert_notes")
    op.drop_table("alert_notes")
    op.drop_table("care_replies")
    op.drop_index(op.f("ix_care_conversations_status"), table_name="care_conversations")
    op.drop_index(op.f("ix_care_conversations_participant_id"), table_name="care_conversations")
    op.drop_table("care_conversations")
    for column in ("email", "address", "at"):
        op.drop_index(op.f(f"ix_staff_login_failures_{column}"), table_name="staff_login_failures")
    op.drop_table("staff_login_failures")
    op.drop_index(op.f("ix_staff_users_setup_token_hash"), table_name="staff_users")
    op.drop_table("staff_users")
