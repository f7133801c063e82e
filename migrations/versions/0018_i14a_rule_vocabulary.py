"""stored rules and tasks speak the one vocabulary: the break-up rule counts attempts on every channel
(and its email is marked as no attempt); task types are the spec's LeadTaskType

Revision ID: 0018_i14a_rule_vocabulary
Revises: 0017_i18b_lead_import
Create Date: 2026-11-23 06:10:00

Frozen here (not imported from app/) so the migration means the same thing whatever the code
becomes:
- a clinic's seeded "three failed attempts" rule whose conditions are still the seeded ones
  (calls only) gets the new conditions (any attempt); its break-up email is marked `break_up`.
  A clinic that edited the conditions keeps its edit. Each changed rule gets a new version (the
  rule-set cache sees the change; the history keeps the old definition);
- task types outside LeadTaskType (MEETING, OTHER, from rules) become CUSTOM: in rules' create_task
  actions (a new version), in steps still waiting to run, in tasks and task templates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0018_i14a_rule_vocabulary"
down_revision = "0017_i18b_lead_import"
branch_labels = None
depends_on = None

OLD_BREAK_UP_CONDITIONS = [
    {"field": "event.outcome", "operator": "in", "value": ["no_answer", "voicemail", "wrong_number"]},
    {"field": "failed_attempts_in_a_row", "operator": "equals", "value": 3},
]
NEW_BREAK_UP_CONDITIONS = [
    {"field": "event.attempt", "operator": "equals", "value": True},
    {"field": "failed_attempts_in_a_row", "operator": "equals", "value": 3},
]
TASK_TYPES = ("CALL", "EMAIL", "SMS", "FOLLOW_UP", "CONSULTATION_CONFIRM", "PAPERWORK_REMINDER", "CUSTOM")
CUSTOM = "CUSTOM"
RULE_FIELDS = ("name", "description", "trigger", "conditions", "actions", "priority", "stop_processing", "active")

rules_t = sa.table(
    "automation_rules",
    sa.column("id", sa.Integer),
    sa.column("default_key", sa.String),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("trigger", sa.String),
    sa.column("conditions", app.platform.db.JSONType),
    sa.column("actions", app.platform.db.JSONType),
    sa.column("priority", sa.Integer),
    sa.column("stop_processing", sa.Boolean),
    sa.column("active", sa.Boolean),
    sa.column("version", sa.Integer),
    sa.column("updated_at", app.platform.db.UTCDateTime(timezone=True)),
    sa.column("updated_by", sa.String),
)
versions_t = sa.table(
    "automation_rule_versions",
    sa.column("rule_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("definition", app.platform.db.JSONType),
    sa.column("created_at", app.platform.db.UTCDateTime(timezone=True)),
    sa.column("created_by", sa.String),
)
steps_t = sa.table(
    "automation_steps",
    sa.column("id", sa.Integer),
    sa.column("action_type", sa.String),
    sa.column("action", app.platform.db.JSONType),
    sa.column("status", sa.String),
)


def _as_list(value):
    return json.loads(value) if isinstance(value, str) else (value or [])


def _custom_task_type(action: dict) -> dict:
    if action.get("type") == "create_task" and action.get("task_type", "CALL") not in TASK_TYPES:
        return {**action, "task_type": CUSTOM}
    return action


def _upgraded(row) -> tuple[list, list]:
    conditions, actions = _as_list(row.conditions), _as_list(row.actions)
    if row.default_key == "three_failed_attempts":
        if conditions == OLD_BREAK_UP_CONDITIONS:
            conditions = NEW_BREAK_UP_CONDITIONS
        actions = [
            {**a, "break_up": True} if a.get("type") == "send_email" and a.get("once_per_lead") else a
            for a in actions
        ]
    return conditions, [_custom_task_type(a) for a in actions]


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    for row in connection.execute(sa.select(rules_t)).all():
        conditions, actions = _upgraded(row)
        if (conditions, actions) == (_as_list(row.conditions), _as_list(row.actions)):
            continue
        version = row.version + 1
        connection.execute(
            rules_t.update()
            .where(rules_t.c.id == row.id)
            .values(conditions=conditions, actions=actions, version=version, updated_at=now, updated_by="system")
        )
        definition = {name: getattr(row, name) for name in RULE_FIELDS}
        definition.update(conditions=conditions, actions=actions)
        connection.execute(
            versions_t.insert().values(
                rule_id=row.id, version=version, definition=definition, created_at=now, created_by="system"
            )
        )
    pending = connection.execute(
        sa.select(steps_t.c.id, steps_t.c.action).where(
            steps_t.c.action_type == "create_task", steps_t.c.status == "scheduled"
        )
    ).all()
    for step_id, action in pending:
        action = json.loads(action) if isinstance(action, str) else action
        if _custom_task_type(action) != action:
            connection.execute(
                steps_t.update().where(steps_t.c.id == step_id).values(action=_custom_task_type(action))
            )
    for table in ("lead_tasks", "task_templates"):
        t = sa.table(table, sa.column("type", sa.String))
        connection.execute(t.update().where(t.c.type.not_in(TASK_TYPES)).values(type=CUSTOM))


def downgrade() -> None:
    """Nothing to undo: the new definitions are data a clinic may have edited since, and tasks
    always accepted CUSTOM; the rules' history keeps every earlier definition."""
