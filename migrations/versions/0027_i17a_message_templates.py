"""message templates (a clinic's reusable email and SMS texts) and their uses (usage and reply counts)

Revision ID: 0027_i17a_message_templates
Revises: 0025_i14a_lead_contact_facts
Create Date: 2026-11-23 09:40:00
"""

import sqlalchemy as sa
from alembic import op

from app.platform.db import UTCDateTime

revision = "0027_i17a_message_templates"
down_revision = "0025_i14a_lead_contact_facts"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_message_templates_clinic_id", "message_templates", ["clinic_id"])
    op.create_index(
        "uq_message_templates_clinic_name",
        "message_templates",
        ["clinic_id", "name"],
        unique=True,
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_table(
        "message_template_uses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.Integer, sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("template_id", sa.Integer, sa.ForeignKey("message_templates.id"), nullable=False),
        sa.Column("lead_id", sa.Integer, sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("notification_id", sa.Integer, sa.ForeignKey("notifications.id"), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("sent_by", sa.String(64), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("notification_id", name="uq_message_template_uses_notification_id"),
    )
    op.create_index("ix_message_template_uses_template", "message_template_uses", ["template_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_message_template_uses_template", table_name="message_template_uses")
    op.drop_table("message_template_uses")
    op.drop_index("uq_message_templates_clinic_name", table_name="message_templates")
    op.drop_index("ix_message_templates_clinic_id", table_name="message_templates")
    op.drop_table("message_templates")
