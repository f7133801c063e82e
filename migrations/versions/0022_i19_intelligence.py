"""intelligence: lead score, factors and next best action on the lead; reply sentiment on the activity;
fitted score models and answered-call tallies

Revision ID: 0022_i19_intelligence
Revises: 0021_i16a_job_dead
Create Date: 2026-11-23 06:10:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0022_i19_intelligence"
down_revision = "0021_i16a_job_dead"
branch_labels = None
depends_on = None


def _json():
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("score_factors", _json(), nullable=True))
        batch.add_column(sa.Column("score_model_version", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("next_action", _json(), nullable=True))
    with op.batch_alter_table("lead_activities") as batch:
        batch.add_column(sa.Column("sentiment", sa.String(length=16), nullable=True))
    op.create_table(
        "score_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("training_seconds", sa.Float(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    op.create_index("ix_score_models_clinic_trained", "score_models", ["clinic_id", "trained_at"])
    op.create_table(
        "contact_tallies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("calls", _json(), nullable=False),
        sa.Column("answered", _json(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("clinic_id", "scope"),
    )


def downgrade() -> None:
    op.drop_table("contact_tallies")
    op.drop_index("ix_score_models_clinic_trained", table_name="score_models")
    op.drop_table("score_models")
    with op.batch_alter_table("lead_activities") as batch:
        batch.drop_column("sentiment")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("next_action")
        batch.drop_column("score_model_version")
        batch.drop_column("score_factors")
        batch.drop_column("score")
