"""sla_clocks: speed to lead and first response per lead, pending -> warning -> breached, met or cancelled

Revision ID: 0036_i36_sla_clocks
Revises: 0035_i36_goals_and_playbook
Create Date: 2026-11-25 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0036_i36_sla_clocks"
down_revision = "0035_i36_goals_and_playbook"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", moment, nullable=False),
        sa.Column("warn_at", moment, nullable=False),
        sa.Column("due_at", moment, nullable=False),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("warned_at", moment, nullable=True),
        sa.Column("breached_at", moment, nullable=True),
        sa.Column("settled_at", moment, nullable=True),
        sa.Column("settled_reason", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_sla_clocks_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_sla_clocks_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
        sa.UniqueConstraint("lead_id", "kind", name=op.f("uq_sla_clocks_lead_id_kind")),
    )
    op.create_index("ix_sla_clocks_clinic_kind_status", "sla_clocks", ["clinic_id", "kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_clinic_kind_status", table_name="sla_clocks")
    op.drop_table("sla_clocks")
