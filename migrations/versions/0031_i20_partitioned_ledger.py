"""scheduled_jobs: partitioned by month of created_at on PostgreSQL, dedupe keys in a table of their
own (scheduled_job_keys), a partial index of the open rows by due time instead of (status, due_at)
over every row, and one of the failed and dead rows

Revision ID: 0031_i20_partitioned_ledger
Revises: 0030_i15analytics_counted_leads
Create Date: 2026-11-23 15:10:00

PostgreSQL: the table is rebuilt as `PARTITION BY RANGE (created_at)`, one partition per UTC month
(scheduled_jobs_pYYYY_MM) from the oldest row's month (at most 24 months back; older rows go to the
DEFAULT partition) to two months ahead, plus scheduled_jobs_default; the rows are copied, ids and
their sequence kept. Its primary key becomes (id, created_at) and dedupe_key loses its unique index,
since a partitioned table's unique indexes must include the partition key: scheduled_job_keys keeps
each key once instead, backfilled here. SQLite keeps one plain table (the keys table is the same).
The DDL is frozen in this file; app/platform/scheduling/partitions/queries.py makes the later months the same way.
"""

from alembic import op
import sqlalchemy as sa

revision = "0031_i20_partitioned_ledger"
down_revision = "0030_i15analytics_counted_leads"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'dispatched')")
GAVE_UP = sa.text("status IN ('failed', 'dead')")
MONTHS_BACK, MONTHS_AHEAD = 24, 2


def upgrade() -> None:
    op.create_table(
        "scheduled_job_keys",
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dedupe_key", name=op.f("pk_scheduled_job_keys")),
    )
    op.execute(
        "INSERT INTO scheduled_job_keys (dedupe_key, job_id) SELECT dedupe_key, id FROM scheduled_jobs"
    )
    if op.get_bind().dialect.name == "postgresql":
        _partition()
    else:
        with op.batch_alter_table("scheduled_jobs") as batch:
            batch.drop_constraint("uq_scheduled_jobs_dedupe_key", type_="unique")
            batch.drop_index("ix_scheduled_jobs_status_due_at")
        _create_indexes(partial_only=True)


def _create_indexes(*, partial_only: bool) -> None:
    op.create_index(
        "ix_scheduled_jobs_live_due",
        "scheduled_jobs",
        ["status", "due_at"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )
    op.create_index(
        "ix_scheduled_jobs_gave_up",
        "scheduled_jobs",
        ["status"],
        postgresql_where=GAVE_UP,
        sqlite_where=GAVE_UP,
    )
    if partial_only:
        return
    op.create_index(
        "ix_scheduled_jobs_open_kind_due",
        "scheduled_jobs",
        ["kind", "due_at"],
        postgresql_where=OPEN,
    )
    op.create_index("ix_scheduled_jobs_subject", "scheduled_jobs", ["subject_type", "subject_id"])
    op.create_index("ix_scheduled_jobs_clinic_due_at", "scheduled_jobs", ["clinic_id", "due_at"])


def _partition() -> None:
    """Rebuild scheduled_jobs as a table partitioned by month, its rows copied (indexes built after)."""
    op.execute("LOCK TABLE scheduled_jobs IN ACCESS EXCLUSIVE MODE")
    op.execute("ALTER TABLE scheduled_jobs RENAME TO scheduled_jobs_unpartitioned")
    op.execute(
        "ALTER TABLE scheduled_jobs_unpartitioned RENAME CONSTRAINT pk_scheduled_jobs "
        "TO pk_scheduled_jobs_unpartitioned"
    )
    op.execute("ALTER TABLE scheduled_jobs_unpartitioned DROP CONSTRAINT uq_scheduled_jobs_dedupe_key")
    for index in (
        "ix_scheduled_jobs_status_due_at",
        "ix_scheduled_jobs_subject",
        "ix_scheduled_jobs_clinic_due_at",
        "ix_scheduled_jobs_open_kind_due",
    ):
        op.execute(f"DROP INDEX {index}")
    op.execute(
        "CREATE TABLE scheduled_jobs (LIKE scheduled_jobs_unpartitioned INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS) PARTITION BY RANGE (created_at)"
    )
    op.execute("ALTER TABLE scheduled_jobs ADD CONSTRAINT pk_scheduled_jobs PRIMARY KEY (id, created_at)")
    op.execute(
        "ALTER TABLE scheduled_jobs ADD CONSTRAINT fk_scheduled_jobs_clinic_id_clinics "
        "FOREIGN KEY (clinic_id) REFERENCES clinics (id)"
    )
    for lower, upper in _months():
        op.execute(
            f"CREATE TABLE scheduled_jobs_p{lower[:4]}_{lower[5:7]} PARTITION OF scheduled_jobs "
            f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
        )
    op.execute("CREATE TABLE scheduled_jobs_default PARTITION OF scheduled_jobs DEFAULT")
    op.execute("INSERT INTO scheduled_jobs SELECT * FROM scheduled_jobs_unpartitioned")
    _create_indexes(partial_only=False)
    op.execute("ALTER SEQUENCE scheduled_jobs_id_seq OWNED BY scheduled_jobs.id")
    op.execute("DROP TABLE scheduled_jobs_unpartitioned")


def _months() -> list[tuple[str, str]]:
    """The UTC months to make partitions for: their bounds as '2026-11-01 00:00:00+00' literals."""
    rows = op.get_bind().execute(
        sa.text(
            """
            WITH bounds AS (
                SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS this_month,
                       date_trunc('month', min(created_at) AT TIME ZONE 'UTC') AS oldest
                FROM scheduled_jobs_unpartitioned
            )
            SELECT to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(m + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00'
            FROM bounds, generate_series(
                greatest(coalesce(oldest, this_month), this_month - make_interval(months => :back)),
                this_month + make_interval(months => :ahead),
                interval '1 month') AS m
            """
        ),
        {"back": MONTHS_BACK, "ahead": MONTHS_AHEAD},
    )
    return [(row[0], row[1]) for row in rows]


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _unpartition()
    else:
        op.drop_index("ix_scheduled_jobs_gave_up", table_name="scheduled_jobs")
        op.drop_index("ix_scheduled_jobs_live_due", table_name="scheduled_jobs")
        with op.batch_alter_table("scheduled_jobs") as batch:
            batch.create_unique_constraint("uq_scheduled_jobs_dedupe_key", ["dedupe_key"])
            batch.create_index("ix_scheduled_jobs_status_due_at", ["status", "due_at"])
    op.drop_table("scheduled_job_keys")


def _unpartition() -> None:
    """One plain table again, with the rows of every partition (detached ones are not the ledger's)."""
    op.execute("LOCK TABLE scheduled_jobs IN ACCESS EXCLUSIVE MODE")
    op.execute(
        "CREATE TABLE scheduled_jobs_flat (LIKE scheduled_jobs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    op.execute("INSERT INTO scheduled_jobs_flat SELECT * FROM scheduled_jobs")
    op.execute("ALTER SEQUENCE scheduled_jobs_id_seq OWNED BY scheduled_jobs_flat.id")
    op.execute("DROP TABLE scheduled_jobs")
    op.execute("ALTER TABLE scheduled_jobs_flat RENAME TO scheduled_jobs")
    op.execute("ALTER TABLE scheduled_jobs ADD CONSTRAINT pk_scheduled_jobs PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE scheduled_jobs ADD CONSTRAINT fk_scheduled_jobs_clinic_id_clinics "
        "FOREIGN KEY (clinic_id) REFERENCES clinics (id)"
    )
    op.execute("ALTER TABLE scheduled_jobs ADD CONSTRAINT uq_scheduled_jobs_dedupe_key UNIQUE (dedupe_key)")
    op.create_index("ix_scheduled_jobs_status_due_at", "scheduled_jobs", ["status", "due_at"])
    op.create_index("ix_scheduled_jobs_subject", "scheduled_jobs", ["subject_type", "subject_id"])
    op.create_index("ix_scheduled_jobs_clinic_due_at", "scheduled_jobs", ["clinic_id", "due_at"])
    op.create_index(
        "ix_scheduled_jobs_open_kind_due", "scheduled_jobs", ["kind", "due_at"], postgresql_where=OPEN
    )
