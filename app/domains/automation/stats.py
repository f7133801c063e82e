"""Rule statistics, aggregated in SQL from the why-trail (sequences' are app/domains/sequences/stats.py).

Per rule (its steps made in the range): runs (the events it fired on), steps by status, skipped
steps by reason, last run.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation.models import (
    AutomationRule,
    AutomationStep,
    StepStatus,
)
from app.platform.db import UnitOfWork


def in_range(column, start: datetime | None, end: datetime | None) -> list:
    where = []
    if start is not None:
        where.append(column >= start)
    if end is not None:
        where.append(column < end)
    return where


def rule_stats(
    *, session: UnitOfWork, clinic_id: int, start: datetime | None, end: datetime | None
) -> list[dict]:
    """One row per rule of the clinic (deleted ones too when they made steps in the range)."""
    where = [AutomationStep.clinic_id == clinic_id, AutomationStep.rule_id.is_not(None)]
    where += in_range(AutomationStep.created_at, start, end)
    reason = AutomationStep.result["reason"].as_string()
    by_status = session.execute(
        sa.select(AutomationStep.rule_id, AutomationStep.status, reason, sa.func.count())
        .where(*where)
        .group_by(AutomationStep.rule_id, AutomationStep.status, reason)
    ).all()
    runs = {
        rule_id: (n, last)
        for rule_id, n, last in session.execute(
            sa.select(
                AutomationStep.rule_id,
                sa.func.count(sa.distinct(AutomationStep.event_id)),
                sa.func.max(AutomationStep.created_at),
            )
            .where(*where)
            .group_by(AutomationStep.rule_id)
        )
    }
    rules = session.execute(
        sa.select(AutomationRule.id, AutomationRule.name, AutomationRule.active, AutomationRule.deleted_at)
        .where(AutomationRule.clinic_id == clinic_id)
        .order_by(AutomationRule.id)
    ).all()
    rows = {
        rule.id: _rule_row(rule, *runs.get(rule.id, (0, None)))
        for rule in rules
        if rule.deleted_at is None or rule.id in runs
    }
    for rule_id, status, why, n in by_status:
        row = rows[rule_id]
        row["steps"][status] = row["steps"].get(status, 0) + n
        if status == StepStatus.SKIPPED:
            key = why or "unspecified"
            row["skipped_reasons"][key] = row["skipped_reasons"].get(key, 0) + n
    return list(rows.values())


def _rule_row(rule, runs: int, last_run: datetime | None) -> dict:
    return {
        "rule_id": rule.id,
        "name": rule.name,
        "active": rule.active and rule.deleted_at is None,
        "runs": runs,
        "steps": {status.value: 0 for status in StepStatus},
        "skipped_reasons": {},
        "last_run_at": last_run,
    }
