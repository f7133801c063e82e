"""stream_events: each user's live stream, kept for the Last-Event-ID replay window

Revision ID: 0041_i47_stream_events
Revises: 0040_i42_user_email_per_clinic
Create Date: 2026-11-26 06:00:00

The stream process (app/streaming) sends these rows; Redis pub/sub only says that one was written.
A client reconnecting with Last-Event-ID is replayed the rows after it, from any process or host.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.platform.db

revision = "0041_i47_stream_events"
down_revision = "0040_i42_user_email_per_clinic"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        # Encrypted by the model (EncryptedJSON), stored in the JSON type it builds on: JSONB on PostgreSQL.
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_stream_events_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_stream_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_events")),
    )
    op.create_index(op.f("ix_stream_events_user_id_id"), "stream_events", ["user_id", "id"])
    op.create_index(op.f("ix_stream_events_created_at"), "stream_events", ["created_at"])
    op.create_index(op.f("ix_stream_events_lead_id"), "stream_events", ["lead_id"])
    op.create_index(op.f("ix_stream_events_notification_id"), "stream_events", ["notification_id"])


def downgrade() -> None:
    op.drop_table("stream_events")
