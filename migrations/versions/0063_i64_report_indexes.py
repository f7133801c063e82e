"""Reports over two years from covering indexes alone (issue 64 item 6). The automated messages'
partial index covers what the follow-up response report reads of each message (its type, when the
family replied, and the ids in `details` that name its thread message and automation step): the
report reads a range's messages from the index instead of a table page per message (285,000 over
two years in `bench analytics`; docs/performance.md, "Reports over two years"). `details` of an
automated message holds ids and flags only (notification, step, template, break-up), no message
text. The tasks' due index covers the outcome the follow-up report counts completed tasks by (added
after the index, it sent the report to the table's rows).

Revision ID: 0063_i64_report_indexes
Revises: 0062_i64_board_index
Create Date: 2026-11-28 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0063_i64_report_indexes"
down_revision = "0062_i64_board_index"
branch_labels = None
depends_on = None

AUTOMATED = "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"


def _automated_index(include: list[str]) -> None:
    op.drop_index("ix_lead_activities_automated_messages", table_name="lead_activities")
    op.create_index(
        "ix_lead_activities_automated_messages",
        "lead_activities",
        ["clinic_id", "occurred_at"],
        postgresql_include=include,
        postgresql_where=sa.text(AUTOMATED),
        sqlite_where=sa.text(AUTOMATED),
    )


def _tasks_due_index(include: list[str]) -> None:
    op.drop_index("ix_lead_tasks_clinic_due", table_name="lead_tasks")
    op.create_index(
        "ix_lead_tasks_clinic_due", "lead_tasks", ["clinic_id", "due_at"], postgresql_include=include
    )


TASKS_DUE = ["status", "completed_at", "assigned_to_id", "lead_id"]


def upgrade() -> None:
    _automated_index(["lead_id", "replied", "replied_at", "type", "details"])
    _tasks_due_index([*TASKS_DUE, "outcome"])


def downgrade() -> None:
    _tasks_due_index(TASKS_DUE)
    _automated_index(["lead_id", "replied"])
