"""Rule and sequence statistics, aggregated in SQL from the why-trail and the enrollments.

Per rule (its steps made in the range): runs (the events it fired on), steps by status, skipped
steps by reason, last run. Per sequence (enrollments made in the range): enrolled, active,
completed, replied, unenrolled by reason, and enrollments whose lead converted within 30 days of
enrolling.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.automation import queries
from app.automation.models import (
    AutomationRule,
    AutomationStep,
    EnrollmentStatus,
    Sequence,
    SequenceEnrollment,
    StepStatus,
)
from app.automation.sequences import REPLIED
from app.leads.models import Lead

CONVERTED_WITHIN_DAYS = 30


def _in_range(column, start: datetime | None, end: datetime | None) -> list:
    where = []
    if start is not None:
        where.append(column >= start)
    if end is not None:
        where.append(column < end)
    return where


def rule_stats(
    *, session: Session, clinic_id: int, start: datetime | None, end: datetime | None
) -> list[dict]:
    """One row per rule of the clinic (deleted ones too when they made steps in the range)."""
    where = [AutomationStep.clinic_id == clinic_id, AutomationStep.rule_id.is_not(None)]
    where += _in_range(AutomationStep.created_at, start, end)
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


def sequence_stats(
    *, session: Session, clinic_id: int, start: datetime | None, end: datetime | None
) -> list[dict]:
    """One row per sequence of the clinic."""
    enrollment = SequenceEnrollment
    where = [enrollment.clinic_id == clinic_id, *_in_range(enrollment.enrolled_at, start, end)]
    counts = session.execute(
        sa.select(enrollment.sequence_id, enrollment.status, enrollment.end_reason, sa.func.count())
        .where(*where)
        .group_by(enrollment.sequence_id, enrollment.status, enrollment.end_reason)
    ).all()
    after = queries.seconds_between(session, Lead.converted_at, enrollment.enrolled_at)
    converted = dict(
        session.execute(
            sa.select(enrollment.sequence_id, sa.func.count())
            .join(Lead, Lead.id == enrollment.lead_id)
            .where(*where, Lead.converted_at.is_not(None), after >= 0, after <= CONVERTED_WITHIN_DAYS * 86400)
            .group_by(enrollment.sequence_id)
        ).all()
    )
    sequences = session.execute(
        sa.select(Sequence.id, Sequence.name, Sequence.active)
        .where(Sequence.clinic_id == clinic_id)
        .order_by(Sequence.id)
    ).all()
    rows = {
        seq.id: {
            "sequence_id": seq.id,
            "name": seq.name,
            "active": seq.active,
            "enrolled": 0,
            "active_enrollments": 0,
            "completed": 0,
            "replied": 0,
            "unenrolled_by_reason": {},
            f"converted_within_{CONVERTED_WITHIN_DAYS}_days": converted.get(seq.id, 0),
        }
        for seq in sequences
    }
    for sequence_id, status, end_reason, n in counts:
        row = rows[sequence_id]
        row["enrolled"] += n
        if status == EnrollmentStatus.ACTIVE:
            row["active_enrollments"] += n
        elif status == EnrollmentStatus.COMPLETED:
            row["completed"] += n
        else:
            key = end_reason or "unspecified"
            row["unenrolled_by_reason"][key] = row["unenrolled_by_reason"].get(key, 0) + n
            if end_reason == REPLIED:
                row["replied"] += n
    return list(rows.values())
