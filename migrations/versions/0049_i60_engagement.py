"""message_clicks and message_opens: a family's clicks on a message's links (through the engine's
own redirect) and the opens of an email (SendGrid's events, the SMTP pixel), machine opens apart

Revision ID: 0049_i60_engagement
Revises: 0053_i64_search_trigrams
Create Date: 2026-11-27 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0049_i60_engagement"
down_revision = "0053_i64_search_trigrams"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "message_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("link", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_clicked_at", moment, nullable=False),
        sa.Column("last_clicked_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_message_clicks_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_message_clicks_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_clicks")),
        sa.UniqueConstraint("notification_id", "link", name="uq_message_clicks_notification_link"),
    )
    op.create_index("ix_message_clicks_lead", "message_clicks", ["lead_id"])
    op.create_table(
        "message_opens",
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("opens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("machine_opens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_opened_at", moment, nullable=True),
        sa.Column("first_machine_open_at", moment, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_message_opens_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_message_opens_notification_id_notifications"),
        ),
        sa.PrimaryKeyConstraint("notification_id", name=op.f("pk_message_opens")),
    )
    op.create_index("ix_message_opens_lead", "message_opens", ["lead_id"])


def downgrade() -> None:
    op.drop_index("ix_message_opens_lead", table_name="message_opens")
    op.drop_table("message_opens")
    op.drop_index("ix_message_clicks_lead", table_name="message_clicks")
    op.drop_table("message_clicks")
