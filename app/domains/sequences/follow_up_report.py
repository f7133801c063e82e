"""The follow-up figures of the reports page and GET /api/leads/analytics/follow-ups (seed 004's dashboard):
follow-ups sent today, their response rate over the range, conversion by sequence, the best
messages and how many leads stand at each step of each sequence.

A follow-up is an automated message (analytics' `automated_message`) sent by a sequence's step,
the follow-up pass's among them; it is replied when a family answered within the reply window
(analytics' rollups mark it). Conversion by sequence is the sequence statistics' (enrolled in the
range, converted within 30 days of enrolling).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import figures, rollups
from app.domains.auth.models import Clinic
from app.domains.automation.models import AutomationStep, EnrollmentStatus, SequenceEnrollment
from app.domains.sequences import stats
from app.domains.sequences.models import Sequence
from app.platform.db import UnitOfWork

# A message needs this many sends before its reply rate ranks it among the best.
MIN_SAMPLE = 5
TOP_MESSAGES = 5
DEFAULT_RANGE = timedelta(days=30)


def follow_up_report(
    *, session: UnitOfWork, clinic_id: int, period: tuple[datetime | None, datetime | None], now: datetime
) -> dict:
    """The figures over `period` [start, end) (by default the 30 days to `now`); "today" is the
    clinic's local day at `now`."""
    end = period[1] or now
    start = period[0] or end - DEFAULT_RANGE
    period = (start, end)
    zone = ZoneInfo(session.get(Clinic, clinic_id).timezone)
    midnight = datetime.combine(now.astimezone(zone).date(), time(), tzinfo=zone)
    today = (midnight, midnight + timedelta(days=1))
    sent, replied = _sent_and_replied(session, clinic_id, period)
    by_step = _by_step(session, clinic_id, period)
    conversion = [
        {
            "sequence_id": row["sequence_id"],
            "name": row["name"],
            "enrolled": row["enrolled"],
            "converted": row[f"converted_within_{stats.CONVERTED_WITHIN_DAYS}_days"],
            "conversion_rate": figures.ratio(
                row[f"converted_within_{stats.CONVERTED_WITHIN_DAYS}_days"], row["enrolled"]
            ),
        }
        for row in stats.sequence_stats(session=session, clinic_id=clinic_id, start=start, end=end)
    ]
    ranked = [row for row in by_step if row["sent"] >= MIN_SAMPLE]
    ranked.sort(key=lambda row: (-row["reply_rate"], -row["sent"], row["sequence_id"], row["step"]))
    return {
        **figures.period(start, end),
        "sent_today": _sent_and_replied(session, clinic_id, today)[0],
        "sent": sent,
        "replied": replied,
        "response_rate": figures.ratio(replied, sent),
        "reply_window_hours": rollups.REPLY_WINDOW_HOURS,
        "conversion_by_sequence": conversion,
        "min_sample": MIN_SAMPLE,
        "top_messages": ranked[:TOP_MESSAGES],
        "leads_at_step": _leads_at_step(session, clinic_id),
    }


def _follow_ups(clinic_id: int, period: tuple[datetime, datetime]) -> sa.Select:
    """The clinic's follow-ups sent in `period`, joined to the sequence step that sent each."""
    start, end = period
    return (
        sa.select()
        .select_from(LeadActivity)
        .join(AutomationStep, AutomationStep.id == LeadActivity.details["automation_step_id"].as_integer())
        .join(SequenceEnrollment, SequenceEnrollment.id == AutomationStep.enrollment_id)
        .where(*rollups.automated_sent(clinic_id, start, end))
    )


def _sent_and_replied(
    session: UnitOfWork, clinic_id: int, period: tuple[datetime, datetime]
) -> tuple[int, int]:
    sent, replied = session.execute(
        _follow_ups(clinic_id, period).add_columns(
            sa.func.count(), sa.func.count(sa.case((LeadActivity.replied, 1)))
        )
    ).one()
    return sent, replied


def _by_step(session: UnitOfWork, clinic_id: int, period: tuple[datetime, datetime]) -> list[dict]:
    """Each sequence step's follow-ups in the period: sent, replied, reply rate (steps 1-based)."""
    names = _names(session, clinic_id)
    found = session.execute(
        _follow_ups(clinic_id, period)
        .add_columns(
            SequenceEnrollment.sequence_id,
            AutomationStep.sequence_step,
            sa.func.count(),
            sa.func.count(sa.case((LeadActivity.replied, 1))),
        )
        .where(AutomationStep.sequence_step.is_not(None))  # a step of old, before steps were numbered
        .group_by(SequenceEnrollment.sequence_id, AutomationStep.sequence_step)
    ).all()
    return [
        {
            "sequence_id": sequence_id,
            "name": names.get(sequence_id),
            "step": index + 1,
            "sent": sent,
            "replied": replied,
            "reply_rate": figures.ratio(replied, sent),
        }
        for sequence_id, index, sent, replied in found
    ]


def _leads_at_step(session: UnitOfWork, clinic_id: int) -> list[dict]:
    """How many leads stand at each step of each sequence now (active enrollments; steps 1-based)."""
    names = _names(session, clinic_id)
    found = session.execute(
        sa.select(SequenceEnrollment.sequence_id, SequenceEnrollment.current_step, sa.func.count())
        .where(
            SequenceEnrollment.clinic_id == clinic_id,
            SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(SequenceEnrollment.sequence_id, SequenceEnrollment.current_step)
        .order_by(SequenceEnrollment.sequence_id, SequenceEnrollment.current_step)
    ).all()
    return [
        {"sequence_id": sequence_id, "name": names.get(sequence_id), "step": index + 1, "leads": leads}
        for sequence_id, index, leads in found
    ]


def _names(session: UnitOfWork, clinic_id: int) -> dict[int, str]:
    return dict(
        session.execute(sa.select(Sequence.id, Sequence.name).where(Sequence.clinic_id == clinic_id)).all()
    )
