"""the follow-up pass (issue 74 item 7): a sequence may be paced by the clinic's pass at its send
windows (`sequences.paced_by_pass`); each pass keeps its summary (`follow_up_passes`) and the
follow-ups it sent (`follow_up_sends`, one per pass and lead).

Expand-only: a column with a false default and two new tables.

Revision ID: 0076_i74_follow_up_pass
Revises: 0075_i74_held_messages
Create Date: 2026-11-29 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0076_i74_follow_up_pass"
down_revision = "0075_i74_held_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sequences") as batch:
        batch.add_column(sa.Column("paced_by_pass", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "follow_up_passes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("dedupe_key", sa.String(120), nullable=False, unique=True),
        sa.Column("local_date", sa.String(10), nullable=False),
        sa.Column("window", sa.String(5), nullable=False),
        sa.Column("ran_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("skipped", app.platform.db.JSONType, nullable=False),
    )
    op.create_index("ix_follow_up_passes_clinic_id", "follow_up_passes", ["clinic_id"])
    op.create_table(
        "follow_up_sends",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pass_id", sa.Integer(), sa.ForeignKey("follow_up_passes.id"), nullable=False),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("sequence_id", sa.Integer(), sa.ForeignKey("sequences.id"), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("sent_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("pass_id", "lead_id"),
    )
    op.create_index("ix_follow_up_sends_lead", "follow_up_sends", ["lead_id", "sent_at"])
    op.create_index("ix_follow_up_sends_clinic", "follow_up_sends", ["clinic_id", "sent_at"])


def downgrade() -> None:
    op.drop_table("follow_up_sends")
    op.drop_table("follow_up_passes")
    with op.batch_alter_table("sequences") as batch:
        batch.drop_column("paced_by_pass")
