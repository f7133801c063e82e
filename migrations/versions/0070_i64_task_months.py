"""The follow-up report's task counts over a long range from monthly counts (issue 64 item 6).

`analytics_task_months` holds changes to the counts of tasks due in a clinic's UTC month: tasks due,
completed, completed on time, cancelled, still open, and completed by each outcome. The counts of a
month are the sums of its rows. Triggers on lead_tasks add a row for every write that changes what
a task counts as, whoever writes it: the API's use cases, the overdue sweep, erasure, a bulk cancel,
a row deleted. Writers only ever insert, so two writers never wait on one month's row. A sweep
(analytics.task_months.fold) folds a month's rows into one.

PostgreSQL: a trigger per statement, over its transition tables: one row per month the statement
changed, none when it changed nothing counted (an open task turned OVERDUE stays open). SQLite: a
trigger per row, on the counted columns.

Over `bench analytics`'s two years the counts read ~100,000 tasks from their index (~40 ms of the
report); a range's whole months are now ~24 rows (docs/performance.md).

Revision ID: 0070_i64_task_months
Revises: 0069_i64_message_months
Create Date: 2026-11-28 19:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0070_i64_task_months"
down_revision = "0069_i64_message_months"
branch_labels = None
depends_on = None

TABLE = "analytics_task_months"
# Tasks due, completed, completed on time, cancelled, still open; then completed by each outcome.
COUNTS = (
    "due", "completed", "on_time", "cancelled", "still_open", "done", "no_answer", "rescheduled", "not_needed"
)  # fmt: skip
MONTH = {
    "postgresql": "CAST(date_trunc('month', timezone('UTC', {row}.due_at)) AS DATE)",
    "sqlite": "date({row}.due_at, 'start of month')",
}
# What one task counts as, in COUNTS' order (the follow-up report's definitions, frozen here as
# app.domains.analytics.service counts them: a test compares the two).
_COUNTED = (
    "1",
    "CASE WHEN {row}.status = 'COMPLETED' THEN 1 ELSE 0 END",
    "CASE WHEN {row}.status = 'COMPLETED' AND {row}.completed_at <= {row}.due_at THEN 1 ELSE 0 END",
    "CASE WHEN {row}.status = 'CANCELLED' THEN 1 ELSE 0 END",
    "CASE WHEN {row}.status IN ('PENDING', 'IN_PROGRESS', 'OVERDUE') THEN 1 ELSE 0 END",
    "CASE WHEN {row}.outcome = 'done' THEN 1 ELSE 0 END",
    "CASE WHEN {row}.outcome = 'no_answer' THEN 1 ELSE 0 END",
    "CASE WHEN {row}.outcome = 'rescheduled' THEN 1 ELSE 0 END",
    "CASE WHEN {row}.outcome = 'not_needed' THEN 1 ELSE 0 END",
)
_COLUMNS = ", ".join(("clinic_id", "month", *COUNTS))


def _counted(dialect: str, row: str, sign: str) -> str:
    """SQL select list: (clinic, month, each count) of the task `row`, each count times `sign`."""
    counts = (f"{sign}({expression.format(row=row)})" for expression in _COUNTED)
    return ", ".join((f"{row}.clinic_id", MONTH[dialect].format(row=row), *counts))


def _postgresql_function(name: str, parts: list[str]) -> str:
    sums = ", ".join(f"sum({count})" for count in COUNTS)
    changed = " OR ".join(f"sum({count}) <> 0" for count in COUNTS)
    rows = " UNION ALL ".join(parts)
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {TABLE} ({_COLUMNS})
  SELECT clinic_id, month, {sums} FROM ({rows}) AS changes ({_COLUMNS})
  GROUP BY clinic_id, month HAVING {changed}
  ORDER BY clinic_id, month;
  RETURN NULL;
END $$"""


# PostgreSQL: (trigger name, event, transition tables, what the statement's rows count as).
_POSTGRESQL = (
    ("analytics_task_months_inserted", "INSERT", "NEW TABLE AS new_tasks", [("new_tasks", "+")]),
    (
        "analytics_task_months_updated",
        "UPDATE",
        "OLD TABLE AS old_tasks NEW TABLE AS new_tasks",
        [("new_tasks", "+"), ("old_tasks", "-")],
    ),
    ("analytics_task_months_deleted", "DELETE", "OLD TABLE AS old_tasks", [("old_tasks", "-")]),
)
_SQLITE_UPDATED_WHEN = " OR ".join(
    f"OLD.{column} IS NOT NEW.{column}"
    for column in ("clinic_id", "due_at", "status", "completed_at", "outcome")
)
# SQLite: (trigger name, event, condition, what the row counts as).
_SQLITE = (
    ("analytics_task_months_inserted", "INSERT", "", [("NEW", "+")]),
    (
        "analytics_task_months_updated",
        "UPDATE OF clinic_id, due_at, status, completed_at, outcome",
        f"WHEN {_SQLITE_UPDATED_WHEN}",
        [("NEW", "+"), ("OLD", "-")],
    ),
    ("analytics_task_months_deleted", "DELETE", "", [("OLD", "-")]),
)


def create_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        for name, event, tables, parts in _POSTGRESQL:
            selects = [f"SELECT {_counted(dialect, row, sign)} FROM {row}" for row, sign in parts]
            op.execute(_postgresql_function(name, selects))
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON lead_tasks REFERENCING {tables} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        return
    for name, event, when, parts in _SQLITE:
        inserts = " ".join(
            f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_counted(dialect, row, sign)};" for row, sign in parts
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON lead_tasks FOR EACH ROW {when} BEGIN {inserts} END"
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.Integer, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        *(sa.Column(count, sa.Integer, nullable=False) for count in COUNTS),
    )
    op.create_index("ix_analytics_task_months_clinic_month", TABLE, ["clinic_id", "month"])
    create_triggers(dialect)
    counted = ", ".join(f"sum({expression.format(row='t')})" for expression in _COUNTED)
    month = MONTH[dialect].format(row="t")
    op.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT t.clinic_id, {month}, {counted} "
        f"FROM lead_tasks AS t GROUP BY t.clinic_id, {month}"
    )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, *_ in _POSTGRESQL:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON lead_tasks")
            op.execute(f"DROP FUNCTION {name}()")
        else:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table(TABLE)
