"""The automated messages' monthly counts by channel and sequence, kept by triggers (issue 64 item 6).

`analytics_message_months` (0069) counted a clinic's messages and replies by UTC month, written by
the rollups' statements once a message's event was processed (`lead_activities.month_counted`).
Follow-up response groups the same counts by channel and by sequence and takes the median time to
the reply, so the table now holds them by (clinic, month, channel, sequence, reply-time bucket),
as rows of changes that the database's triggers on lead_activities add, in the writer's
transaction, whenever an automated message is written: sent, its channel or sequence stamped,
replied, its reply made earlier, erased. A month's counts are the sums of its rows; writers only
insert (none waits on another for a month's row) and a sweep folds a month's rows into one
(app/domains/analytics/month_changes.py). The rollups no longer count anything, and a message counts
from its insert on: `month_counted` goes. 0069 had not shipped in a release
(migrations/PREVIOUS_RELEASE predates it): its table and column are replaced here, not kept.

The buckets (a minute each in the first hour, then an hour each) let the report find the one that
holds a group's median from the counts, then read only that bucket's messages in reply-time order.

The report's medians read only the replied messages: the indexes by channel and by sequence
(0067, every automated message) become partial indexes over the replied ones (two thirds of
`bench analytics`' messages). Built in the migration's transaction, as 0067 built them, so a failed
upgrade or downgrade changes nothing (tests/test_migrations.py): on `bench analytics`' 1,000,000
activities the migration held the activities' writes for a few seconds.

Revision ID: 0071_i64_message_months_by_group
Revises: 0070_i64_task_months
Create Date: 2026-11-28 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0071_i64_message_months_by_group"
down_revision = "0070_i64_task_months"
branch_labels = None
depends_on = None

TABLE = "analytics_message_months"
AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"
GROUPS = ("channel", "sequence_id")
MONTH = {
    "postgresql": "CAST(date_trunc('month', timezone('UTC', {row}occurred_at)) AS DATE)",
    "sqlite": "date({row}occurred_at, 'start of month')",
}
# The whole number of `unit` seconds in a non-negative number of seconds (PostgreSQL's cast rounds).
WHOLE = {"postgresql": "CAST(floor({value}) AS INTEGER)", "sqlite": "CAST({value} AS INTEGER)"}
_COLUMNS = "clinic_id, month, channel, sequence_id, reply_bucket, messages, replied"
# The columns a message's counts depend on.
_WATCHED = (
    "clinic_id", "occurred_at", "direction", "actor", "type",
    "message_channel", "message_sequence_id", "replied", "reply_seconds",
)  # fmt: skip


def _automated(row: str) -> str:
    """SQL: the activity `row` (OLD or NEW) is an automated message."""
    return "(" + " AND ".join(f"{row}.{condition}" for condition in AUTOMATED.split(" AND ")) + ")"


def reply_bucket(dialect: str, row: str) -> str:
    """SQL: the bucket of a replied message's seconds to its reply: a minute each in the first hour
    (0-59), then an hour each (60: 1 h to 2 h, ...); -1 for a message not replied. Frozen here as
    app.domains.analytics.response counts it (a test compares the two)."""
    whole = WHOLE[dialect]
    seconds = f"{row}reply_seconds"
    minutes, hours = whole.format(value=f"{seconds} / 60.0"), whole.format(value=f"({seconds} - 3600) / 3600.0")
    return (
        f"CASE WHEN NOT {row}replied OR {seconds} IS NULL THEN -1 "
        f"WHEN {seconds} < 3600 THEN {minutes} ELSE 60 + {hours} END"
    )


def _counts(dialect: str, row: str, sign: str) -> str:
    """SQL values: (clinic, month, channel ('' for none), sequence (0 for none), reply bucket,
    messages, replied) of the message `row`, the counts times `sign`."""
    month = MONTH[dialect].format(row=f"{row}.")
    return (
        f"{row}.clinic_id, {month}, coalesce({row}.message_channel, ''), "
        f"coalesce({row}.message_sequence_id, 0), {reply_bucket(dialect, f'{row}.')}, "
        f"{sign}1, {sign}(CASE WHEN {row}.replied THEN 1 ELSE 0 END)"
    )


def _changed(dialect: str) -> str:
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in _WATCHED)


def _create_triggers(dialect: str) -> None:
    insert = f"INSERT INTO {TABLE} ({_COLUMNS})"
    when = {
        "inserted": ("INSERT", _automated("NEW")),
        "updated": (
            f"UPDATE OF {', '.join(_WATCHED)}",
            f"({_automated('OLD')} OR {_automated('NEW')}) AND ({_changed(dialect)})",
        ),
        "deleted": ("DELETE", _automated("OLD")),
    }
    if dialect == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # docs/operations/upgrades.md: short locks
        op.execute(f"""
CREATE FUNCTION analytics_message_months_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    IF {_automated("OLD")} THEN {insert} VALUES ({_counts(dialect, "OLD", "-")}); END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    IF {_automated("NEW")} THEN {insert} VALUES ({_counts(dialect, "NEW", "+")}); END IF;
  END IF;
  RETURN NULL;
END $$""")
        for name, (event, condition) in when.items():
            op.execute(
                f"CREATE TRIGGER analytics_message_months_{name} AFTER {event} ON lead_activities "
                f"FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION analytics_message_months_changed()"
            )
        return
    bodies = {
        "inserted": [f"{insert} VALUES ({_counts(dialect, 'NEW', '+')});"],
        "updated": [
            f"{insert} SELECT {_counts(dialect, 'OLD', '-')} WHERE {_automated('OLD')};",
            f"{insert} SELECT {_counts(dialect, 'NEW', '+')} WHERE {_automated('NEW')};",
        ],
        "deleted": [f"{insert} VALUES ({_counts(dialect, 'OLD', '-')});"],
    }
    for name, (event, condition) in when.items():
        op.execute(
            f"CREATE TRIGGER analytics_message_months_{name} AFTER {event} ON lead_activities "
            f"FOR EACH ROW WHEN {condition} BEGIN {' '.join(bodies[name])} END"
        )


def _replace_group_indexes(dialect: str, *, replied_only: bool) -> None:
    """The indexes by channel and by sequence: over the replied automated messages (or, going down,
    over every automated message, as 0067 made them)."""
    old, new = ("automated", "replied") if replied_only else ("replied", "automated")
    where = f"{AUTOMATED} AND replied" if replied_only else AUTOMATED
    include = ["lead_id"] if replied_only else ["lead_id", "replied"]
    for group in GROUPS:
        op.create_index(
            f"ix_lead_activities_{new}_by_{group}",
            "lead_activities",
            ["clinic_id", f"message_{group}", "reply_seconds", "occurred_at"],
            postgresql_include=include,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
        op.drop_index(f"ix_lead_activities_{old}_by_{group}", table_name="lead_activities")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table(TABLE)
    # Counted from the message's insert on, whatever processed it: the marker is no longer needed.
    op.execute("ALTER TABLE lead_activities DROP COLUMN month_counted")
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clinic_id", sa.Integer, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sequence_id", sa.Integer, nullable=False),
        sa.Column("reply_bucket", sa.Integer, nullable=False),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("replied", sa.Integer, nullable=False),
    )
    op.create_index("ix_analytics_message_months_clinic_month", TABLE, ["clinic_id", "month"])
    _create_triggers(dialect)
    month = MONTH[dialect].format(row="")
    group = (
        f"clinic_id, {month}, coalesce(message_channel, ''), coalesce(message_sequence_id, 0), "
        f"{reply_bucket(dialect, '')}"
    )
    op.execute(
        f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {group}, count(*), count(CASE WHEN replied THEN 1 END) "
        f"FROM lead_activities WHERE {AUTOMATED} GROUP BY {group}"
    )
    _replace_group_indexes(dialect, replied_only=True)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace_group_indexes(dialect, replied_only=False)
    for name in ("inserted", "updated", "deleted"):
        on = " ON lead_activities" if dialect == "postgresql" else ""
        op.execute(f"DROP TRIGGER analytics_message_months_{name}{on}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION analytics_message_months_changed()")
    op.drop_table(TABLE)
    with op.batch_alter_table("lead_activities") as batch:
        batch.add_column(sa.Column("month_counted", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(f"UPDATE lead_activities SET month_counted = true WHERE {AUTOMATED} AND message_channel IS NOT NULL")
    op.create_table(
        TABLE,
        sa.Column("clinic_id", sa.Integer, primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("messages", sa.Integer, nullable=False),
        sa.Column("replied", sa.Integer, nullable=False),
    )
    month = MONTH[dialect].format(row="")
    op.execute(
        f"INSERT INTO {TABLE} (clinic_id, month, messages, replied) "
        f"SELECT clinic_id, {month}, count(*), count(CASE WHEN replied THEN 1 END) "
        f"FROM lead_activities WHERE {AUTOMATED} AND month_counted GROUP BY clinic_id, {month}"
    )
