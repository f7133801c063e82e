"""conversation_media (issue 59 item 5): the images and videos of a conversation's messages, kept as
references (the provider's URL, encrypted like PHI, and its content type), never their bytes.

Expand-only: a new table.

Revision ID: 0058_i59_media
Revises: 0057_i59_whatsapp
Create Date: 2026-11-28 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0058_i59_media"
down_revision = "0057_i59_whatsapp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=True),
        sa.Column("url_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_conversation_media_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["conversation_messages.id"],
            name=op.f("fk_conversation_media_message_id_conversation_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_media")),
        sa.UniqueConstraint("message_id", "position", name="uq_conversation_media_message_id_position"),
    )


def downgrade() -> None:
    op.drop_table("conversation_media")
