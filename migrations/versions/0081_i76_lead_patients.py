"""patients in the family (issue 76 item 3): a lead's patients beyond its first, and the first
patient's year of birth when only it (or an age) is known.

The lead's own patient columns keep its first patient (duplicates, scoring, rules and the export read
them); `lead_patients` holds the others in order. A patient's name is PHI like the first patient's
(plain columns, served only to a reader with `lead:phi`, searched only for one); erasure deletes the
rows. On PostgreSQL their names get the trigram index of search as you type (as migration 0053 gave
the lead's own names).

Expand-only: one nullable column and a new table.

Revision ID: 0081_i76_lead_patients
Revises: 0080_i77_setup_dismissed
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0081_i76_lead_patients"
down_revision = "0080_i77_setup_dismissed"
branch_labels = None
depends_on = None

NAMES = "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"


def upgrade() -> None:
    op.add_column("leads", sa.Column("patient_birth_year", sa.SmallInteger(), nullable=True))
    op.create_table(
        "lead_patients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("lead_id", sa.Integer(), sa.ForeignKey("leads.id"), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("birth_year", sa.SmallInteger(), nullable=True),
        sa.Column("relationship", sa.String(16), nullable=False),
        sa.UniqueConstraint("lead_id", "position"),
    )
    op.create_index("ix_lead_patients_clinic_id", "lead_patients", ["clinic_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_lead_patients_search ON lead_patients "
            f"USING gin (({NAMES}) gin_trgm_ops)"
        )


def downgrade() -> None:
    op.drop_table("lead_patients")  # its indexes go with it
    # Not in a batch: SQLite drops an unindexed column in place, where a batch copies the table.
    op.drop_column("leads", "patient_birth_year")
