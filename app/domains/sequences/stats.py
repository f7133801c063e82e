"""Sequence statistics, aggregated in SQL from the enrollments.

Per sequence (enrollments made in the range): enrolled, active, completed, replied, unenrolled by
reason, and enrollments whose lead converted within 30 days of enrolling.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import queries
from app.domains.automation.models import EnrollmentStatus, SequenceEnrollment
from app.domains.automation.stats import in_range
from app.domains.leads.models import Lead
from app.domains.sequences.models import Sequence
from app.domains.sequences.service import REPLIED
from app.platform.db import UnitOfWork

CONVERTED_WITHIN_DAYS = 30


def sequence_stats(
    *, session: UnitOfWork, clinic_id: int, start: datetime | None, end: datetime | None
) -> list[dict]:
    """One row per sequence of the clinic."""
    enrollment = SequenceEnrollment
    where = [enrollment.clinic_id == clinic_id, *in_range(enrollment.enrolled_at, start, end)]
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
