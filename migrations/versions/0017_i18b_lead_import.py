"""Bulk lead import: leads.external_id (unique per clinic) and the per-row report of a bulk job

Revision ID: 0017_i18b_lead_import
Revises: 0016_i17_task_outcome
Create Date: 2026-11-23 06:20:00
"""

from alembic import op
import sqlalchemy as sa

from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0017_i18b_lead_import"
down_revision = "0016_i17_task_outcome"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("external_id", sa.String(200), nullable=True))
        batch.create_unique_constraint(op.f("uq_leads_clinic_id_external_id"), ["clinic_id", "external_id"])
    op.create_table(
        "bulk_job_rows",
        sa.Column("bulk_job_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("field", sa.String(100), nullable=True),
        sa.Column("message", sa.String(500), nullable=True),
        sa.Column(
            "matches",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["bulk_job_id"], ["bulk_jobs.id"], name=op.f("fk_bulk_job_rows_bulk_job_id_bulk_jobs")
        ),
        sa.PrimaryKeyConstraint("bulk_job_id", "row", name=op.f("pk_bulk_job_rows")),
    )


def downgrade() -> None:
    op.drop_table("bulk_job_rows")
    with op.batch_alter_table("leads") as batch:
        batch.drop_constraint("uq_leads_clinic_id_external_id", type_="unique")
        batch.drop_column("external_id")
