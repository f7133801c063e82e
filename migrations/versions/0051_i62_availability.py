"""availability (issue 62): consultation types, providers and chairs, closures, booking settings,
busy blocks from providers' calendar feeds, clashes; consultations gain their provider, type, end
and blocked range; no two scheduled consultations of one provider overlap (an exclusion constraint
on PostgreSQL, triggers on SQLite).

Revision ID: 0051_i62_availability
Revises: 0048_i60_branching_sequences
Create Date: 2026-11-27 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0051_i62_availability"
down_revision = "0048_i60_branching_sequences"
branch_labels = None
depends_on = None

# A scheduled consultation with a provider holds [starts_at, blocked_until) of that provider's time.
ACTIVE = "status = 'scheduled' AND provider_id IS NOT NULL AND NOT overlap_allowed"
# SQLite: the check runs inside the writer's lock (SQLite has one writer at a time), so two
# bookings of one slot cannot both pass it: the second sees the first's row.
_SQLITE_CHECK = """
CREATE TRIGGER consultations_no_overlap_{when} BEFORE {what} ON consultations
WHEN NEW.status = 'scheduled' AND NEW.provider_id IS NOT NULL AND NOT NEW.overlap_allowed
BEGIN
  SELECT RAISE(ABORT, 'consultations_no_overlap')
  WHERE EXISTS (
    SELECT 1 FROM consultations AS other
    WHERE other.provider_id = NEW.provider_id AND other.id IS NOT NEW.id
      AND other.status = 'scheduled' AND NOT other.overlap_allowed
      AND other.starts_at < NEW.blocked_until AND NEW.starts_at < other.blocked_until
  );
END
"""


def _stamps(moment):
    return [sa.Column("created_at", moment, nullable=False), sa.Column("updated_at", moment, nullable=False)]


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    clinic_fk = sa.ForeignKey("clinics.id")
    op.create_table(
        "availability_settings",
        sa.Column("clinic_id", sa.Integer(), clinic_fk, primary_key=True),
        sa.Column("buffer_minutes", sa.Integer(), nullable=False),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("slot_step_minutes", sa.Integer(), nullable=False),
        sa.Column("webhook_wins", sa.Boolean(), nullable=False),
        sa.Column("updated_at", moment, nullable=False),
    )
    op.create_table(
        "availability_providers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hours", app.platform.db.JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("feed_url", sa.Text(), nullable=True),
        sa.Column("feed_status", sa.String(16), nullable=True),
        sa.Column("feed_error", sa.String(300), nullable=True),
        sa.Column("feed_checked_at", moment, nullable=True),
        sa.Column("feed_ok_at", moment, nullable=True),
        *_stamps(moment),
        sa.UniqueConstraint("clinic_id", "name"),
    )
    op.create_index(op.f("ix_availability_providers_clinic_id"), "availability_providers", ["clinic_id"])
    op.create_table(
        "availability_consultation_types",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("provider_ids", app.platform.db.JSONType, nullable=False),
        sa.Column("buffer_minutes", sa.Integer(), nullable=True),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=True),
        sa.Column("horizon_days", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_stamps(moment),
        sa.UniqueConstraint("clinic_id", "name"),
    )
    op.create_index(
        op.f("ix_availability_consultation_types_clinic_id"), "availability_consultation_types", ["clinic_id"]
    )
    op.create_table(
        "availability_closures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("created_at", moment, nullable=False),
    )
    op.create_index(op.f("ix_availability_closures_clinic_id"), "availability_closures", ["clinic_id"])
    op.create_table(
        "availability_busy_blocks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider_id", sa.Integer(), sa.ForeignKey("availability_providers.id"), nullable=False),
        sa.Column("starts_at", moment, nullable=False),
        sa.Column("ends_at", moment, nullable=False),
    )
    op.create_index(
        "ix_availability_busy_blocks_provider_starts", "availability_busy_blocks", ["provider_id", "starts_at"]
    )
    _consultation_columns(moment)
    op.create_table(
        "availability_clashes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("clinic_id", sa.Integer(), sa.ForeignKey("clinics.id"), nullable=False),
        sa.Column("consultation_id", sa.Integer(), sa.ForeignKey("consultations.id"), nullable=False),
        sa.Column("clashes_with_id", sa.Integer(), sa.ForeignKey("consultations.id"), nullable=False),
        sa.Column("provider_id", sa.Integer(), sa.ForeignKey("availability_providers.id"), nullable=False),
        sa.Column("starts_at", moment, nullable=False),
        sa.Column("ends_at", moment, nullable=False),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("resolved_at", moment, nullable=True),
    )
    op.create_index(op.f("ix_availability_clashes_clinic_id"), "availability_clashes", ["clinic_id"])
    _no_overlap()


def _consultation_columns(moment) -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    references = {"provider_id": "availability_providers", "type_id": "availability_consultation_types"}
    postgresql = op.get_bind().dialect.name == "postgresql"
    for column, table in references.items():
        if postgresql:
            op.add_column("consultations", sa.Column(column, sa.Integer(), nullable=True))
            op.create_foreign_key(f"fk_consultations_{column}_{table}", "consultations", table, [column], ["id"])
        else:  # SQLite adds a referencing column in place (no constraint ALTER, no table rebuild)
            op.execute(f"ALTER TABLE consultations ADD COLUMN {column} INTEGER REFERENCES {table} (id)")
    op.add_column("consultations", sa.Column("ends_at", moment, nullable=True))
    op.add_column("consultations", sa.Column("blocked_until", moment, nullable=True))
    op.add_column(
        "consultations",
        sa.Column("overlap_allowed", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_consultations_provider_starts_at", "consultations", ["provider_id", "starts_at"])


def _no_overlap() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE consultations ADD CONSTRAINT consultations_no_overlap EXCLUDE USING gist "
            f"(provider_id WITH =, tstzrange(starts_at, blocked_until) WITH &&) WHERE ({ACTIVE})"
        )
        return
    op.execute(_SQLITE_CHECK.format(when="insert", what="INSERT"))
    op.execute(_SQLITE_CHECK.format(when="update", what="UPDATE"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE consultations DROP CONSTRAINT consultations_no_overlap")
    else:
        op.execute("DROP TRIGGER consultations_no_overlap_insert")
        op.execute("DROP TRIGGER consultations_no_overlap_update")
    op.drop_index(op.f("ix_availability_clashes_clinic_id"), table_name="availability_clashes")
    op.drop_table("availability_clashes")
    op.drop_index("ix_consultations_provider_starts_at", table_name="consultations")
    if op.get_bind().dialect.name == "postgresql":
        for column, table in (("provider_id", "availability_providers"), ("type_id", "availability_consultation_types")):
            op.drop_constraint(f"fk_consultations_{column}_{table}", "consultations", type_="foreignkey")
    for column in ("overlap_allowed", "blocked_until", "ends_at", "type_id", "provider_id"):
        with op.batch_alter_table("consultations") as batch:
            batch.drop_column(column)
    op.drop_index("ix_availability_busy_blocks_provider_starts", table_name="availability_busy_blocks")
    op.drop_table("availability_busy_blocks")
    op.drop_index(op.f("ix_availability_closures_clinic_id"), table_name="availability_closures")
    op.drop_table("availability_closures")
    op.drop_index(
        op.f("ix_availability_consultation_types_clinic_id"), table_name="availability_consultation_types"
    )
    op.drop_table("availability_consultation_types")
    op.drop_index(op.f("ix_availability_providers_clinic_id"), table_name="availability_providers")
    op.drop_table("availability_providers")
    op.drop_table("availability_settings")
