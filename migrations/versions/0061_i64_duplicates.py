"""Duplicates to merge or dismiss (issue 64 item 3): the pairs staff said are not the same family
(`dismissed_duplicates`, ids only: no PHI) and the lead a merged lead was merged into.

Expand-only: a new table and a nullable column.

Revision ID: 0061_i64_duplicates
Revises: 0060_w2_reply_rollup
Create Date: 2026-11-28 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0061_i64_duplicates"
down_revision = "0060_w2_reply_rollup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("leads", sa.Column("merged_into_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_leads_merged_into_id_leads", "leads", "leads", ["merged_into_id"], ["id"])
    else:  # SQLite adds a referencing column in place (no constraint ALTER, no table rebuild)
        op.execute("ALTER TABLE leads ADD COLUMN merged_into_id INTEGER REFERENCES leads (id)")
    op.create_table(
        "dismissed_duplicates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("lead_low_id", sa.Integer(), nullable=False),
        sa.Column("lead_high_id", sa.Integer(), nullable=False),
        sa.Column("dismissed_by", sa.String(64), nullable=False),
        sa.Column("created_at", app.platform.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_dismissed_duplicates_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["lead_low_id"], ["leads.id"], name=op.f("fk_dismissed_duplicates_lead_low_id_leads")
        ),
        sa.ForeignKeyConstraint(
            ["lead_high_id"], ["leads.id"], name=op.f("fk_dismissed_duplicates_lead_high_id_leads")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dismissed_duplicates")),
        sa.UniqueConstraint(
            "clinic_id",
            "lead_low_id",
            "lead_high_id",
            name="uq_dismissed_duplicates_clinic_id_lead_low_id_lead_high_id",
        ),
    )
    op.create_index(
        op.f("ix_dismissed_duplicates_lead_high_id"), "dismissed_duplicates", ["lead_high_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dismissed_duplicates_lead_high_id"), table_name="dismissed_duplicates")
    op.drop_table("dismissed_duplicates")
    op.drop_column("leads", "merged_into_id")
