"""Speed to lead over two years from spans kept on the lead (issue 64 item 6): each lead keeps the
spans the report takes percentiles of, in seconds (leads.speed_to_lead_seconds, routing_seconds,
human_attempt_seconds, human_contact_seconds), worked out by whatever sets their ends
(leads.models.kept_spans), instead of the report working out each lead's spans from its firsts every
time. The split's two group indexes and the cohort index include the spans in place of the firsts
(same keys), and a partial index holds the contacted leads in order of their speed, so speed to
lead's median and p90 find their input sorted. Over `bench analytics`'s 100,000 leads the spans'
arithmetic was ~15 ms of each of the split's two statements, and the median and p90 ~33 ms
(docs/performance.md, "Speed to lead from spans kept on the lead").

Expand-only: four nullable columns, backfilled here (the statements frozen; the write paths keep
them after), three indexes with other included columns (same keys), one partial index new.

Revision ID: 0068_i64_speed_spans
Revises: 0067_i64_response_group_columns
Create Date: 2026-11-28 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0068_i64_speed_spans"
down_revision = "0067_i64_response_group_columns"
branch_labels = None
depends_on = None

SPANS = ["speed_to_lead_seconds", "routing_seconds", "human_attempt_seconds", "human_contact_seconds"]
COHORT_INCLUDE = [
    "deleted_at", "status", "assigned_to_id", "source_id", "lost_reason", "pipeline_stage",
    "furthest_stage",
]  # fmt: skip
FIRSTS = ["first_outbound_contact_at", "assigned_at", "first_task_at", "first_attempt_at", "first_contact_at"]
GROUP_INDEXES = {
    "ix_leads_clinic_source_created": ["clinic_id", "source_id", "created_at"],
    "ix_leads_analytics_owner_created": ["clinic_id", "assigned_to_id", "created_at"],
}
SPEED_INDEX = "ix_leads_speed_to_lead"
CONTACTED = "speed_to_lead_seconds IS NOT NULL"


def _backfill(seconds, later_of) -> str:
    """The UPDATE setting the four spans as the report worked them out (analytics.coordination and
    service before this revision), `seconds(later, earlier)` and `later_of(a, b)` the dialect's."""
    routed = later_of("assigned_at", "first_task_at")

    def forward(start: str, end: str) -> str:
        return f"CASE WHEN {end} >= {start} THEN {seconds(end, start)} END"

    return f"""
        UPDATE leads SET
            speed_to_lead_seconds = {seconds("first_outbound_contact_at", "created_at")},
            routing_seconds = {forward("created_at", routed)},
            human_attempt_seconds = {forward("first_task_at", "first_attempt_at")},
            human_contact_seconds = {forward("first_task_at", "first_contact_at")}
    """


BACKFILL = {
    "postgresql": _backfill(
        lambda later, earlier: f"date_part('epoch', {later} - {earlier})",
        lambda a, b: f"(CASE WHEN {a} IS NOT NULL AND {b} IS NOT NULL THEN greatest({a}, {b}) END)",
    ),
    "sqlite": _backfill(
        lambda later, earlier: f"((julianday({later}) - julianday({earlier})) * 86400.0)",
        lambda a, b: f"max({a}, {b})",
    ),
}


def _analytics_indexes(included: list[str]) -> None:
    """The cohort index and the split's two group indexes, including `included` (SPANS or FIRSTS:
    speed to lead's end first, read from the cohort index only, then the split's)."""
    split = ["deleted_at", *included[1:]]
    op.create_index(
        "ix_leads_analytics_cohort",
        "leads",
        ["clinic_id", "created_at"],
        postgresql_include=[*COHORT_INCLUDE, *included],
    )
    for name, key in GROUP_INDEXES.items():
        op.create_index(name, "leads", key, postgresql_include=split)


def _drop_analytics_indexes() -> None:
    for name in ["ix_leads_analytics_cohort", *GROUP_INDEXES]:
        op.drop_index(name, table_name="leads")


def upgrade() -> None:
    _drop_analytics_indexes()  # before the backfill: its UPDATE has three indexes fewer to write
    for span in SPANS:
        op.add_column("leads", sa.Column(span, sa.Float, nullable=True))
    op.execute(BACKFILL[op.get_bind().dialect.name])
    _analytics_indexes(SPANS)
    op.create_index(
        SPEED_INDEX,
        "leads",
        ["clinic_id", "speed_to_lead_seconds"],
        postgresql_include=["created_at", "deleted_at", "assigned_to_id", "source_id"],
        postgresql_where=sa.text(CONTACTED),
        sqlite_where=sa.text(CONTACTED),
    )


def downgrade() -> None:
    op.drop_index(SPEED_INDEX, table_name="leads")
    _drop_analytics_indexes()
    for span in reversed(SPANS):  # not in a batch: SQLite drops an unindexed column in place, where a
        op.drop_column("leads", span)  # batch copies the table (its foreign keys then block older downgrades)
    _analytics_indexes(FIRSTS)
