"""SQL of the tasks domain that needs a dialect: the bulk insert of follow-up tasks, and the
candidate select and compare-and-sets of a task claim, taken and given back (my next call)."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.domains.tasks.models import OPEN_TASK_STATUSES, LeadTask
from app.platform import phi
from app.platform.db import UnitOfWork
from app.platform.db.protected import keys_of

# Bulk follow-ups insert thousands of tasks that differ only in lead, assignee and dedupe key: on
# PostgreSQL those go as three arrays (a short, constant statement) rather than as a multi-row
# VALUES list whose rendering costs more CPU than the insert itself.
_INSERT_TASKS_UNNEST = sa.text(
    """
    INSERT INTO lead_tasks (lead_id, assigned_to_id, dedupe_key, clinic_id, title_encrypted, description,
                            type, priority, template_id, due_at, reminder_at, status, origin, revision,
                            created_at, updated_at)
    SELECT r.lead_id, r.assigned_to_id, r.dedupe_key, CAST(:clinic_id AS integer), CAST(:title AS text),
           CAST(:description AS text), CAST(:type AS text), CAST(:priority AS text),
           CAST(:template_id AS integer), CAST(:due_at AS timestamptz),
           CAST(:reminder_at AS timestamptz), CAST(:status AS text), CAST(:origin AS jsonb),
           CAST(:revision AS integer), CAST(:created_at AS timestamptz), CAST(:updated_at AS timestamptz)
    FROM unnest(CAST(:lead_ids AS integer[]), CAST(:assignees AS integer[]),
                CAST(:dedupe_keys AS varchar[])) AS r(lead_id, assigned_to_id, dedupe_key)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
    """
)


_PER_ROW = ("lead_id", "assigned_to_id", "dedupe_key")


def insert_task_rows(session: UnitOfWork, rows: list[dict]) -> list[int]:
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING of the rows (values by column); the ids it
    created. On PostgreSQL rows that differ only in lead, assignee and dedupe key (a bulk chunk)
    go as the three arrays of one short statement."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and _same_but_targets(rows):
        common = rows[0]
        # Text SQL skips the columns' types: the protected values are encrypted here, as they would be.
        keys = keys_of(session)
        params = {
            **{key: common.get(key) for key in _COMMON},
            "title": None if common.get("title") is None else phi.encrypt(common["title"], keys=keys),
            "description": None
            if common.get("description") is None
            else phi.encrypt(common["description"], keys=keys),
            "priority": str(common["priority"]),  # plain strings: an Enum would be sent by its name
            "type": str(common["type"]),
            "status": str(common["status"]),
            "origin": json.dumps(common["origin"]),
            "lead_ids": [row["lead_id"] for row in rows],
            "assignees": [row["assigned_to_id"] for row in rows],
            "dedupe_keys": [row["dedupe_key"] for row in rows],
        }
        return list(session.scalars(_INSERT_TASKS_UNNEST, params))
    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    stmt = insert(LeadTask).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(LeadTask.id)
    return list(session.scalars(stmt, rows))


# The columns _INSERT_TASKS_UNNEST takes once for all its rows.
_COMMON = (
    "clinic_id", "title", "description", "type", "priority", "template_id", "due_at", "reminder_at",
    "status", "origin", "revision", "created_at", "updated_at",
)  # fmt: skip


def _same_but_targets(rows: list[dict]) -> bool:
    """Whether the rows differ only in lead, assignee and dedupe key, and set no column that the
    array statement leaves to its default."""
    first = {key: value for key, value in rows[0].items() if key not in _PER_ROW}
    if any(value is not None for key, value in first.items() if key not in _COMMON and key != "id"):
        return False
    return all({k: v for k, v in row.items() if k not in _PER_ROW} == first for row in rows[1:])


def claimable_task_ids(
    session: UnitOfWork, conditions: list, order_by: list, now: datetime, limit: int
) -> list[int]:
    """Ids of open tasks matching `conditions` that nobody else holds, most urgent first. On
    PostgreSQL the rows are locked and rows another caller is claiming are skipped (SKIP LOCKED), so
    two coordinators asking at once are handed different tasks without waiting on each other;
    SQLite's writers run one at a time (BEGIN IMMEDIATE)."""
    stmt = (
        sa.select(LeadTask.id)
        .where(*conditions, LeadTask.status.in_(OPEN_TASK_STATUSES))
        .order_by(*order_by)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=LeadTask)
    return list(session.scalars(stmt))


def set_claim(
    session: UnitOfWork, *, task_id: int, user_id: int, until: datetime, held: sa.ColumnElement
) -> bool:
    """Compare-and-set: the task is the user's until `until` if it is open and `held` is still true
    (free, or already the user's) when the UPDATE runs; whether it was."""
    result = session.execute(
        sa.update(LeadTask)
        .where(LeadTask.id == task_id, LeadTask.status.in_(OPEN_TASK_STATUSES), held)
        .values(claimed_by_id=user_id, claimed_until=until)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def drop_claim(session: UnitOfWork, *, task_id: int, user_id: int, now: datetime) -> bool:
    """Compare-and-set: the task is nobody's if the user still holds it when the UPDATE runs; whether
    they did (a claim lapsed, or taken over since, is left as it is)."""
    result = session.execute(
        sa.update(LeadTask)
        .where(
            LeadTask.id == task_id,
            LeadTask.claimed_by_id == user_id,
            LeadTask.claimed_until >= now,
            LeadTask.status.in_(OPEN_TASK_STATUSES),
        )
        .values(claimed_by_id=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
