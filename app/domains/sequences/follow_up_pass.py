"""The follow-up pass (seed 004's Instagram follow-up worker): at each of a clinic's local send
windows (09:00, 14:00 and 18:00 by default) one ledger job per clinic and window sends the next
message of each paced sequence (`Sequence.paced_by_pass`) to the enrolled leads whose step is due
and who qualify: silent for 24 hours, a score in the clinic's band, fewer than the maximum
follow-ups, none within the minimum interval. Each is sent as the sequence's own step (the contact
policy, the outbound path); the pass only decides when.

Exactly once: the job's dedupe key is `followup-pass:<clinic>:<local date>:<window>`; the pass and
what it sent are written in the job's transaction (a worker killed mid-pass leaves nothing, and the
ledger runs the job again); a lead gets one follow-up per pass (`follow_up_sends`) and each step one
row (its dedupe key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth.instagram import service as instagram
from app.domains.auth.models import Clinic
from app.domains.automation import steps
from app.domains.automation.models import EnrollmentStatus, SequenceEnrollment
from app.domains.lead_messages import policy
from app.domains.leads.models import Lead
from app.domains.sequences import service as sequences
from app.domains.sequences.models import FollowUpPass, FollowUpSend, Sequence
from app.domains.tasks import creation as task_creation
from app.domains.tasks.models import LeadTaskType
from app.platform.db import UnitOfWork
from app.platform.scheduling import service as scheduling

PASS_KIND = "sequences.follow_up_pass"
SILENT_FOR = timedelta(hours=24)  # the spec's "no response in the last 24 hours"
# A window's pass may start this long after the window opens (beat's ticks, workers down briefly).
LATE_START = timedelta(hours=1)


@dataclass(frozen=True)
class PassSettings:
    windows: tuple[str, ...] = ("09:00", "14:00", "18:00")
    min_score: float = 0.2  # the spec's band of 2-6 out of 10, as P(conversion)
    max_score: float = 0.6
    max_follow_ups: int = 5
    min_interval_hours: int = 24

    @classmethod
    def of(cls, clinic_settings: dict | None) -> PassSettings:
        given = (clinic_settings or {}).get("follow_up_pass") or {}
        return cls(**{k: tuple(v) if k == "windows" else v for k, v in given.items()})


def pass_key(clinic_id: int, local_date: str, window: str) -> str:
    return f"followup-pass:{clinic_id}:{local_date}:{window}"


def open_window(now: datetime, zone: str, windows: tuple[str, ...]) -> tuple[str, str] | None:
    """(local date, window) of the send window open at `now` in `zone`, if one is."""
    local = now.astimezone(ZoneInfo(zone))
    for window in sorted(windows, reverse=True):
        starts = datetime.combine(local.date(), time.fromisoformat(window), tzinfo=local.tzinfo)
        if starts <= local < starts + LATE_START:
            return local.date().isoformat(), window
    return None


# --- beat: a pass job for each clinic whose window is open -----------------------------------------


def schedule_due(*, session: UnitOfWork, now: datetime) -> int:
    """A pass job for each clinic with a paced sequence whose send window is open; however many
    beats tick in the window, the dedupe key keeps it one."""
    clinics = session.execute(
        sa.select(Clinic.id, Clinic.timezone, Clinic.settings).where(
            Clinic.id.in_(sa.select(Sequence.clinic_id).where(Sequence.paced_by_pass))
        )
    ).all()
    scheduled = 0
    for clinic_id, zone, settings in clinics:
        window = open_window(now, zone, PassSettings.of(settings).windows)
        if window is None:
            continue
        local_date, at = window
        session.schedule(
            scheduling.Job(
                kind=PASS_KIND,
                due_at=now,
                dedupe_key=pass_key(clinic_id, local_date, at),
                now=now,
                clinic_id=clinic_id,
                subject_type="clinic",
                subject_id=clinic_id,
                payload={"local_date": local_date, "window": at},
            )
        )
        scheduled += 1
    return scheduled


# --- the job: select, send, summarise --------------------------------------------------------------


def run_pass(*, session: UnitOfWork, job, now: datetime) -> None:
    """One clinic's pass at one window: its summary and its follow-ups, in this transaction."""
    key = pass_key(job.clinic_id, job.payload["local_date"], job.payload["window"])
    if session.scalar(sa.select(FollowUpPass.id).where(FollowUpPass.dedupe_key == key)) is not None:
        return  # this window's pass ran already
    clinic = session.get(Clinic, job.clinic_id)
    settings = PassSettings.of(clinic.settings)
    summary = FollowUpPass(
        clinic_id=clinic.id,
        dedupe_key=key,
        local_date=job.payload["local_date"],
        window=job.payload["window"],
        ran_at=now,
        selected=0,
        sent=0,
        skipped=[],
    )
    session.add(summary)
    session.flush()
    skipped = []
    for enrollment, lead in _due(session, clinic.id, now):
        summary.selected += 1
        reason = why_not(session, lead, settings, now)
        handed_over = None if reason else _hand_over_on_instagram(session, summary, enrollment, lead, now)
        if handed_over is not None:
            skipped.append({"lead_id": lead.id, **handed_over})
            continue
        if reason is None and sequences.release_paced_step(
            session=session, enrollment=enrollment, lead=lead, now=now
        ):
            session.add(
                FollowUpSend(
                    pass_id=summary.id,
                    clinic_id=clinic.id,
                    lead_id=lead.id,
                    sequence_id=enrollment.sequence_id,
                    step_index=enrollment.current_step,
                    sent_at=now,
                )
            )
            summary.sent += 1
            continue
        skipped.append({"lead_id": lead.id, "reason": reason or "its next message is already on its way"})
    summary.skipped = skipped


def _hand_over_on_instagram(
    session: UnitOfWork, summary: FollowUpPass, enrollment: SequenceEnrollment, lead: Lead, now: datetime
) -> dict | None:
    """An Instagram step past Meta's human-agent window (seven days from the family's last DM, or
    no DM at all) becomes a task for the lead's owner, and the enrollment moves on: the summary's
    entry for it (`reason`, `task_id`). None: the step may go (with the human-agent tag)."""
    definition = sequences.paced_step(session=session, enrollment=enrollment, lead=lead)
    if definition.get("channel") != policy.INSTAGRAM:
        return None
    window = policy.instagram_window(policy.HUMAN_AGENT)
    closed = policy.window_reason(window, instagram.last_inbound_at(session, lead.id), now)
    if closed is None:
        return None
    step = sequences.hand_paced_step_over(
        session=session, enrollment=enrollment, lead=lead, reason=closed, now=now
    )
    if step is None:
        return {"reason": "its next message is already on its way", "task_id": None}
    task = task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title=f"Follow up on Instagram with {lead.first_name or 'the family'}",
            type=LeadTaskType.FOLLOW_UP,
            description=f"The follow-up pass could not send its Instagram message ({closed}). "
            "Reach them on Instagram if they write again, or another way.",
            due_at=now,
            dedupe_key=f"{summary.dedupe_key}:lead:{lead.id}",
            origin=steps.origin_of(step),
        ),
    )
    return {"reason": f"{closed}: a task for a person", "task_id": task.id if task is not None else None}


def _due(session: UnitOfWork, clinic_id: int, now: datetime) -> list[tuple[SequenceEnrollment, Lead]]:
    """Active enrollments of paced sequences whose next step is due, with their open leads, locked."""
    return list(
        session.execute(
            sa.select(SequenceEnrollment, Lead)
            .join(Sequence, Sequence.id == SequenceEnrollment.sequence_id)
            .join(Lead, Lead.id == SequenceEnrollment.lead_id)
            .where(
                SequenceEnrollment.clinic_id == clinic_id,
                SequenceEnrollment.status == EnrollmentStatus.ACTIVE,
                SequenceEnrollment.next_step_at <= now,
                Sequence.paced_by_pass,
                Lead.deleted_at.is_(None),
            )
            .order_by(SequenceEnrollment.id)
            .with_for_update(of=SequenceEnrollment)
        ).all()
    )


def why_not(session: UnitOfWork, lead: Lead, settings: PassSettings, now: datetime) -> str | None:
    """Why the lead gets no follow-up from this pass, in a sentence; None when it qualifies."""
    if not lead.is_open:
        return "the lead is closed"
    if (lead.last_contacted_at or lead.created_at) > now - SILENT_FOR:
        return "heard from in the last 24 hours"
    if lead.score is None:
        return "not scored yet"
    if not settings.min_score <= lead.score <= settings.max_score:
        return f"score {lead.score:.2f} is outside {settings.min_score:.2f}-{settings.max_score:.2f}"
    count, last = session.execute(
        sa.select(sa.func.count(), sa.func.max(FollowUpSend.sent_at)).where(FollowUpSend.lead_id == lead.id)
    ).one()
    if count >= settings.max_follow_ups:
        return f"already had the maximum of {settings.max_follow_ups} follow-ups"
    if last is not None and last > now - timedelta(hours=settings.min_interval_hours):
        return f"followed up within the last {settings.min_interval_hours} hours"
    return None


def list_passes(*, session: UnitOfWork, clinic_id: int, limit: int) -> list[FollowUpPass]:
    """The clinic's passes, newest first."""
    return list(
        session.scalars(
            sa.select(FollowUpPass)
            .where(FollowUpPass.clinic_id == clinic_id)
            .order_by(FollowUpPass.ran_at.desc(), FollowUpPass.id.desc())
            .limit(limit)
        )
    )
