"""Use cases of follow-up intelligence: reply sentiment, the conversion forecast, the nightly run and
the re-scoring of leads after their events (a background job).

Contact times are in contact_times.py, the score and next best action in scoring.py; the math in the
*_rules.py modules.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.domains.auth import service as auth
from app.domains.auth.models import Clinic
from app.domains.intelligence import (
    forecast_rules,
    queries,
    sentiment,
)
from app.domains.intelligence.contact_times import refresh_contact_tallies
from app.domains.intelligence.scoring import forget_models, rescore_open_leads, score_leads, train
from app.domains.leads.models import Lead
from app.domains.outbound import service as notifications
from app.platform.db import Database, UnitOfWork
from app.platform.events.types import Delivered
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

log = logging.getLogger(__name__)


# --- reply sentiment ------------------------------------------------------------------------------

REPLY_TYPES = (ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE)


def classify_reply(*, session: UnitOfWork, activity: LeadActivity, now: datetime) -> str | None:
    """Label an inbound email or SMS once; a negative one notifies the lead's owner."""
    if activity.type not in REPLY_TYPES or activity.direction != ActivityDirection.INBOUND:
        return None
    if activity.sentiment is not None:
        return activity.sentiment
    activity.sentiment = sentiment.classify(activity.notes).label
    if activity.sentiment == sentiment.NEGATIVE:
        _notify_negative_reply(session, activity, now)
    return activity.sentiment


def reply_sentiment(*, session: UnitOfWork, activity_id: int | None, now: datetime) -> str | None:
    """The sentiment of an activity (classified now if it was not yet); None: not an inbound reply."""
    activity = session.get(LeadActivity, activity_id) if activity_id else None
    if activity is None:
        return None
    return classify_reply(session=session, activity=activity, now=now)


def _notify_negative_reply(session: UnitOfWork, activity: LeadActivity, now: datetime) -> None:
    lead = session.get(Lead, activity.lead_id)
    if lead is None or lead.assigned_to_id is None:
        return
    channel = "email" if activity.type == ActivityType.EMAIL else "SMS"
    notifications.notify_in_app(
        session=session,
        clinic_id=lead.clinic_id,
        user_id=lead.assigned_to_id,
        notice=notifications.StaffNotice(
            kind="negative_reply",
            title=f"Negative reply by {channel}: {lead.first_name} {lead.last_name}",
            body="The lead's reply reads negative: a personal call may save it.",
            link=f"/leads/{lead.id}",
            dedupe_key=f"negative_reply:{activity.id}",
            origin={"activity_id": activity.id},
        ),
        now=now,
    )


# --- conversion forecast --------------------------------------------------------------------------


def forecast(*, session: UnitOfWork, actor: Actor, now: datetime, months: int = 3) -> dict:
    """GET /api/leads/analytics/forecast: expected conversions per month for the next `months`."""
    first_month = date(now.year, now.month, 1)
    since = datetime(first_month.year, first_month.month, 1, tzinfo=UTC) - timedelta(
        days=(forecast_rules.HISTORY_MONTHS + 1) * 31
    )
    timelines = queries.timelines(session=session, clinic_id=actor.clinic_id, since=since)
    # The month under way is forecast whole; what already converted in it is added on top.
    result = forecast_rules.forecast_from(timelines, first_month, months)
    return {
        "generated_at": now,
        "history_leads": len(timelines),
        "months": [
            {
                "month": m.month,
                "expected_conversions": m.expected,
                "from_pipeline": m.from_pipeline,
                "from_new_leads": m.from_new_leads,
            }
            for m in result
        ],
    }


# --- the nightly run ------------------------------------------------------------------------------


def clinic_ids(*, session: UnitOfWork) -> list[int]:
    return list(session.scalars(sa.select(Clinic.id).order_by(Clinic.id)))


def nightly_for_clinic(*, session: UnitOfWork, clinic_id: int, now: datetime) -> dict:
    """One clinic's night: recount call tallies, train its model (if it has the history), rescore."""
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    calls = refresh_contact_tallies(session=session, clinic=clinic, now=now)
    record = train(session=session, clinic_id=clinic_id, now=now)
    forget_models(session)
    scored = rescore_open_leads(session=session, clinic_id=clinic_id, now=now)
    return {
        "clinic_id": clinic_id,
        "calls": calls,
        "model": record.version if record else None,
        "scored": scored,
    }


def train_global(*, session: UnitOfWork, now: datetime) -> str | None:
    record = train(session=session, clinic_id=None, now=now)
    forget_models(session)
    return record.version if record else None


def nightly(*, db: Database, now: datetime) -> dict:
    """The beat's nightly run: the global prior first (clinics without history are scored by it),
    then each clinic in its own transaction, so one clinic's failure spares the others."""
    with db.unit_of_work() as session:
        global_version = train_global(session=session, now=now)
        ids = clinic_ids(session=session)
    done, failed = 0, 0
    for clinic_id in ids:
        try:
            with db.unit_of_work() as session:
                nightly_for_clinic(session=session, clinic_id=clinic_id, now=now)
            done += 1
        except Exception:  # logged with the clinic id only; the next night retries
            log.exception("intelligence: nightly run failed for clinic %s", clinic_id)
            failed += 1
    return {"global_model": global_version, "clinics": done, "failed": failed}


RESCORE_KIND = "intelligence.rescore"


def label_reply(*, session: UnitOfWork, event: Delivered, now: datetime) -> None:
    """Event consumer: label an inbound reply (a negative one notifies the lead's owner). The event
    says what kind of activity it was: any other activity is not read at all."""
    logged = event.data
    is_reply = logged.type in REPLY_TYPES and logged.direction == ActivityDirection.INBOUND
    if is_reply and logged.activity_id:
        reply_sentiment(session=session, activity_id=logged.activity_id, now=now)


def lead_id_of(event) -> int | None:
    """The lead a delivered event names (every type re-scoring watches names one), else its subject's."""
    named = getattr(event.data, "lead_id", None)
    return named or (event.subject_id if event.subject_type == "lead" else None)


def queue_rescoring(
    *, session: UnitOfWork, events: list[Delivered], now: datetime, watched: tuple[str, ...], settings
) -> None:
    """Once per processing: one `intelligence.rescore` job per clinic naming the leads whose
    `watched` events were processed. Scoring is off a new lead's path: it runs on a background
    queue, so the realtime worker never waits on it, due `background_delay_seconds` after the events
    (the score lags them that long: the leads of those seconds are scored in one pass). `settings`:
    the engine's, bound by app/bootstrap.py."""
    by_clinic: dict[int, list[int]] = {}
    for event in events:
        lead_id = lead_id_of(event) if event.type in watched else None
        if lead_id and lead_id not in by_clinic.setdefault(event.clinic_id, []):
            by_clinic[event.clinic_id].append(lead_id)
    first_id = events[0].id
    due_at = now + timedelta(seconds=settings.background_delay_seconds)
    for clinic_id, lead_ids in by_clinic.items():
        if lead_ids:
            session.schedule(
                scheduling.Job(
                    kind=RESCORE_KIND,
                    due_at=due_at,
                    dedupe_key=f"rescore:{first_id}:{clinic_id}",
                    now=now,
                    clinic_id=clinic_id,
                    subject_type="lead",
                    subject_id=lead_ids[0],
                    payload={"lead_ids": lead_ids},
                    origin={"event_id": first_id},
                )
            )


def rescore_jobs(*, session: UnitOfWork, jobs: list, now: datetime) -> None:
    """The job handler (a kind run `together`): the leads named by the jobs of one transaction (a
    drainer's batch), each clinic's re-scored, and their next actions re-chosen, in one pass."""
    by_clinic: dict[int, set[int]] = {}
    for job in jobs:
        by_clinic.setdefault(job.clinic_id, set()).update(job.payload["lead_ids"])
    for clinic_id, lead_ids in by_clinic.items():
        rescore(session=session, clinic_id=clinic_id, lead_ids=sorted(lead_ids), now=now)


def rescore(*, session: UnitOfWork, clinic_id: int, lead_ids: list[int], now: datetime) -> None:
    """Re-score the clinic's named leads and re-choose their next actions (a closed lead's next
    action is cleared)."""
    leads = list(
        session.scalars(
            sa.select(Lead).where(Lead.id.in_(lead_ids), Lead.clinic_id == clinic_id).order_by(Lead.id)
        )
    )
    score_leads(session=session, leads=[lead for lead in leads if lead.deleted_at is None], now=now)
