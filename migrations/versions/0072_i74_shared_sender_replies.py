"""Every reply to the shared sender kept (issue 74 item 5).

`notifications.sender`: the From each message went from, so a reply to the platform's shared
SMS_FROM (or WhatsApp sender) finds the clinic that last texted that phone from it. Unset on older
rows: a reply to a text sent before this migration lands in the operator's queue.

`unclaimed_messages`: the platform operator's queue of messages to the shared sender that no clinic
texted lately; the sender and text encrypted like every other copy of a message.

Revision ID: 0072_i74_shared_sender_replies
Revises: 0071_i64_message_months_by_group
Create Date: 2026-11-29 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0072_i74_shared_sender_replies"
down_revision = "0071_i64_message_months_by_group"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("sender", sa.String(64), nullable=True))
    op.create_table(
        "unclaimed_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("sender_encrypted", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handed_to_clinic_id", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unclaimed_messages")),
        sa.ForeignKeyConstraint(
            ["handed_to_clinic_id"],
            ["clinics.id"],
            name=op.f("fk_unclaimed_messages_handed_to_clinic_id_clinics"),
        ),
        sa.UniqueConstraint("channel", "message_id", name=op.f("uq_unclaimed_messages_channel_message_id")),
    )
    op.create_index(op.f("ix_unclaimed_messages_received_at"), "unclaimed_messages", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_unclaimed_messages_received_at"), table_name="unclaimed_messages")
    op.drop_table("unclaimed_messages")
    op.drop_column("notifications", "sender")
