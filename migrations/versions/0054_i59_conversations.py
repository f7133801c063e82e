"""conversations (one per lead, or per unknown sender), conversation_messages (both directions, every
channel) and conversation_reads (each staff member's read mark)

Revision ID: 0054_i59_conversations
Revises: 0056_i62_booking_page
Create Date: 2026-11-27 23:30:00

New tables only (expand): the previous release never reads them. Messages sent or received before
this release are not copied in: a lead's thread starts with its first message after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0054_i59_conversations"
down_revision = "0056_i62_booking_page"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("contact_channel", sa.String(16), nullable=True),
        sa.Column("contact_address_encrypted", sa.Text(), nullable=True),
        sa.Column("contact_index", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("waiting_since", moment, nullable=True),
        sa.Column("last_message_at", moment, nullable=True),
        sa.Column("last_message_id", sa.Integer(), nullable=True),
        sa.Column("last_inbound_id", sa.Integer(), nullable=True),
        sa.Column("last_inbound_channel", sa.String(16), nullable=True),
        sa.Column("first_inbound_at", moment, nullable=True),
        sa.Column("first_reply_at", moment, nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("updated_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_conversations_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_conversations_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint("clinic_id", "lead_id", name="uq_conversations_clinic_id_lead_id"),
        sa.UniqueConstraint("clinic_id", "contact_index", name="uq_conversations_clinic_id_contact_index"),
    )
    op.create_index("ix_conversations_inbox", "conversations", ["clinic_id", "last_message_at", "id"])
    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("sender_user_id", sa.Integer(), nullable=True),
        sa.Column("sender_ref", sa.String(64), nullable=False),
        sa.Column("origin", app.platform.db.JSONType, nullable=True),
        sa.Column("subject_encrypted", sa.Text(), nullable=True),
        sa.Column("body_encrypted", sa.Text(), nullable=False),
        sa.Column("full_body_encrypted", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(200), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("auto_reply", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("occurred_at", moment, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_conversation_messages_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_messages_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["sender_user_id"], ["users.id"], name=op.f("fk_conversation_messages_sender_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
        sa.UniqueConstraint(
            "clinic_id",
            "channel",
            "direction",
            "provider_message_id",
            name="uq_conversation_messages_provider_id",
        ),
    )
    op.create_index("ix_conversation_messages_thread", "conversation_messages", ["conversation_id", "id"])
    op.create_index(
        op.f("ix_conversation_messages_notification_id"), "conversation_messages", ["notification_id"]
    )
    op.create_table(
        "conversation_reads",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("last_read_message_id", sa.Integer(), nullable=False),
        sa.Column("read_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reads_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_conversation_reads_user_id_users")),
        sa.PrimaryKeyConstraint("conversation_id", "user_id", name=op.f("pk_conversation_reads")),
    )


def downgrade() -> None:
    op.drop_table("conversation_reads")
    op.drop_index(op.f("ix_conversation_messages_notification_id"), table_name="conversation_messages")
    op.drop_index("ix_conversation_messages_thread", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index("ix_conversations_inbox", table_name="conversations")
    op.drop_table("conversations")
