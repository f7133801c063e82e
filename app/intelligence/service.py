"""Use cases of follow-up intelligence: contact times, scoring, next best action, sentiment, forecast.

The math is in rules.py; here are the reads that feed it and the writes that keep its results.
"""

from __future__ import annotations

import logging
import time as timer
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.activities.models import ActivityDirection, ActivityType, LeadActivity
from app.auth import service as auth
from app.auth.models import Clinic
from app.auth.roles import Actor
from app.business_hours.rules import BusinessCalendar
from app.db import unit_of_work
from app.events import service as events
from app.intelligence import queries, rules, sentiment
from app.intelligence.models import ContactTally, ScoreModelRecord
from app.leads import service as leads
from app.leads.models import OPEN_STATUSES, Lead
from app.notifications import inbox as notifications

log = logging.getLogger(__name__)

LEAD_SCORE_CHANGED = "lead.score_changed"
# A score that moves less than this is not news: no event (rules would fire on noise).
SCORE_EVENT_DELTA = 0.05
# Below this many mature leads (or conversions) a clinic is scored by the global prior model.
MIN_HISTORY_LEADS = 200
MIN_HISTORY_CONVERSIONS = 20
TRAINING_MONTHS = 24
GLOBAL_SAMPLE_LIMIT = 200_000
CALL_HISTORY_DAYS = 365
# Clinic settings (PUT /api/clinic settings): "first_slot" (default) or "best_slot".
CALL_TIMING_SETTING, CALL_WINDOW_SETTING = "call_timing", "best_slot_window_hours"
BEST_SLOT, DEFAULT_WINDOW_HOURS = "best_slot", 24
CLOSING_EVENTS = (events.LEAD_CONVERTED, events.LEAD_LOST, events.LEAD_DELETED)


def calendar_of(clinic: Clinic) -> BusinessCalendar:
    return BusinessCalendar.from_settings(
        clinic.timezone, clinic.business_hours or {}, clinic.holiday_country
    )


# --- contact times --------------------------------------------------------------------------------


def _count_calls(session: Session, clinic: Clinic, now: datetime) -> dict[str, tuple[list, list]]:
    """(calls, answered) by hour of week of the clinic's outbound calls of the last year, per scope."""
    by_scope: dict[str, list[tuple[int, bool, int]]] = {"clinic": []}
    for source_id, slot, answered, calls in queries.calls_by_hour(
        session=session,
        clinic_id=clinic.id,
        since=now - timedelta(days=CALL_HISTORY_DAYS),
        zone=calendar_of(clinic).zone,
    ):
        by_scope["clinic"].append((slot, answered, calls))
        by_scope.setdefault(f"source:{source_id}", []).append((slot, answered, calls))
    return {scope: rules.tally_counts(counts) for scope, counts in by_scope.items()}


def _tally_rows(clinic: Clinic, counted: dict, now: datetime) -> list[ContactTally]:
    return [
        ContactTally(clinic_id=clinic.id, scope=scope, calls=calls, answered=answered, computed_at=now)
        for scope, (calls, answered) in counted.items()
    ]


def refresh_contact_tallies(*, session: Session, clinic: Clinic, now: datetime) -> int:
    """Recount the clinic's outbound calls of the last year by local hour of week (all, and by source)."""
    counted = _count_calls(session, clinic, now)
    session.execute(sa.delete(ContactTally).where(ContactTally.clinic_id == clinic.id))
    session.add_all(_tally_rows(clinic, counted, now))
    session.flush()
    return sum(counted["clinic"][0])


def _first_tallies(session: Session, clinic: Clinic, now: datetime) -> dict[str, tuple[list, list]]:
    """A clinic's first tallies, counted on demand (before its first night). Two concurrent first
    counts race on (clinic_id, scope): the loser keeps the winner's rows and uses its own count."""
    counted = _count_calls(session, clinic, now)
    try:
        with session.begin_nested():
            session.add_all(_tally_rows(clinic, counted, now))
    except IntegrityError:
        pass
    return counted


def contact_rates(
    *, session: Session, clinic: Clinic, source_id: int | None, now: datetime
) -> rules.ContactRates:
    """The clinic's smoothed answer rates; the source's own when it has enough calls."""
    scopes = ("clinic", f"source:{source_id}")
    counted = {
        t.scope: (t.calls, t.answered)
        for t in session.scalars(
            sa.select(ContactTally).where(ContactTally.clinic_id == clinic.id, ContactTally.scope.in_(scopes))
        )
    }
    if "clinic" not in counted:  # never counted (a new clinic, or before the first night)
        counted = _first_tallies(session, clinic, now)
    clinic_rates = rules.smooth(*counted["clinic"])
    own = counted.get(f"source:{source_id}")
    if own is not None and sum(own[0]) >= rules.MIN_SOURCE_CALLS:
        return rules.smooth(own[0], own[1], prior=clinic_rates.rates, scope="source")
    return clinic_rates


def best_contact_times(*, session: Session, actor: Actor, lead_id: int, now: datetime) -> dict:
    """GET /api/leads/:id/best-contact-times: the three best open hours of the coming week."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    rates = contact_rates(session=session, clinic=clinic, source_id=lead.source_id, now=now)
    slots = rules.best_upcoming(rates, calendar_of(clinic), now)
    return {
        "lead_id": lead.id,
        "timezone": clinic.timezone,
        "scope": rates.scope,
        "overall_rate": round(rates.overall, 4),
        "calls": sum(rates.calls),
        "slots": [_slot_out(slot, clinic) for slot in slots],
    }


def _slot_out(slot: rules.Slot, clinic: Clinic) -> dict:
    zone = calendar_of(clinic).zone
    local = slot.starts_at.astimezone(zone)
    return {
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "local_day": local.strftime("%a").lower(),
        "local_hour": local.hour,
        "rate": round(slot.rate, 4),
        "calls": slot.calls,
    }


def best_call_time(*, session: Session, clinic: Clinic, lead: Lead, earliest: datetime) -> datetime:
    """When an automated call task falls due: `earliest`, or with the clinic's `call_timing` set to
    `best_slot`, the start of the best-answered open hour within the window after it."""
    settings = clinic.settings or {}
    if settings.get(CALL_TIMING_SETTING) != BEST_SLOT:
        return earliest
    window = timedelta(hours=float(settings.get(CALL_WINDOW_SETTING, DEFAULT_WINDOW_HOURS)))
    rates = contact_rates(session=session, clinic=clinic, source_id=lead.source_id, now=earliest)
    best = rules.best_within(rates, calendar_of(clinic), earliest, window)
    return best if best is not None and best > earliest else earliest


# --- lead score -----------------------------------------------------------------------------------

# clinic id (None: global) -> (checked at, model). A new model is picked up within the TTL.
_MODELS: dict[int | None, tuple[float, rules.ScoreModel | None]] = {}
MODEL_CACHE_SECONDS = 60.0


def _latest_record(session: Session, clinic_id: int | None) -> ScoreModelRecord | None:
    owner = (
        ScoreModelRecord.clinic_id.is_(None) if clinic_id is None else ScoreModelRecord.clinic_id == clinic_id
    )
    return session.scalar(
        sa.select(ScoreModelRecord).where(owner).order_by(ScoreModelRecord.trained_at.desc()).limit(1)
    )


def _cached_model(session: Session, clinic_id: int | None) -> rules.ScoreModel | None:
    checked = _MODELS.get(clinic_id)
    if checked is not None and timer.monotonic() - checked[0] < MODEL_CACHE_SECONDS:
        return checked[1]
    record = _latest_record(session, clinic_id)
    model = rules.ScoreModel.from_json(record.version, record.parameters) if record else None
    _MODELS[clinic_id] = (timer.monotonic(), model)
    return model


def model_for(*, session: Session, clinic_id: int) -> rules.ScoreModel | None:
    """The clinic's own model, else the global prior model, else None (nothing trained yet)."""
    return _cached_model(session, clinic_id) or _cached_model(session, None)


def forget_models() -> None:
    """Drop the process's cached models (after training, so the new ones are read at once)."""
    _MODELS.clear()


def _training_rows(session: Session, clinic_id: int | None, now: datetime, limit: int | None):
    """Features and labels of mature leads: captured 90 days to 24 months ago."""
    until = now - timedelta(days=rules.CONVERSION_DAYS)
    since = now - timedelta(days=TRAINING_MONTHS * 31)
    found = queries.training_facts(
        session=session, clinic_id=clinic_id, since=since, until=until, limit=limit
    )
    return [rules.feature_vector(facts) for _, facts, _ in found], [int(label) for _, _, label in found]


def train(*, session: Session, clinic_id: int | None, now: datetime) -> ScoreModelRecord | None:
    """Fit and store a model for the clinic (None: the global prior over every clinic).

    A clinic below the minimum history gets no model of its own (the global one scores it).
    """
    started = timer.perf_counter()
    limit = GLOBAL_SAMPLE_LIMIT if clinic_id is None else None
    rows, labels = _training_rows(session, clinic_id, now, limit)
    positives = sum(labels)
    if len(rows) < MIN_HISTORY_LEADS or positives < MIN_HISTORY_CONVERSIONS or positives == len(rows):
        return None
    scope = "global" if clinic_id is None else f"c{clinic_id}"
    version = f"{scope}-{now.strftime('%Y%m%dT%H%M%S')}-n{len(rows)}"
    model = rules.fit(rows, labels, version=version)
    record = ScoreModelRecord(
        clinic_id=clinic_id,
        version=version,
        parameters=model.as_json(),
        samples=len(rows),
        conversions=positives,
        training_seconds=round(timer.perf_counter() - started, 3),
        trained_at=now,
    )
    existing = session.scalar(sa.select(ScoreModelRecord).where(ScoreModelRecord.version == version))
    if existing is not None:  # a second beat in the same second: the model is already there
        return existing
    session.add(record)
    session.flush()
    return record


@dataclass
class ClinicView:
    """What scoring reads of a clinic once, however many of its leads it scores."""

    clinic: Clinic
    calendar: BusinessCalendar
    model: rules.ScoreModel | None
    categories: dict[int, str]
    # (source id, now) -> (the best upcoming slot, this hour's rate if open): the same for every
    # lead of a source scored at one moment.
    slots: dict[tuple, tuple[rules.Slot | None, float | None]] = field(default_factory=dict)

    def slots_for(
        self, session: Session, source_id: int | None, now: datetime
    ) -> tuple[rules.Slot | None, float | None]:
        key = (source_id, now)
        if key not in self.slots:
            rates = contact_rates(session=session, clinic=self.clinic, source_id=source_id, now=now)
            upcoming = rules.best_upcoming(rates, self.calendar, now, count=1)
            in_hours = rules.is_open_at(self.calendar, now)
            current = rates.rate(rules.hour_of_week(now, self.calendar.zone)) if in_hours else None
            self.slots[key] = (upcoming[0] if upcoming else None, current)
        return self.slots[key]


def clinic_view(*, session: Session, clinic_id: int, model: rules.ScoreModel | None = None) -> ClinicView:
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    return ClinicView(
        clinic=clinic,
        calendar=calendar_of(clinic),
        model=model or model_for(session=session, clinic_id=clinic_id),
        categories=queries.source_categories(session=session, clinic_id=clinic_id),
    )


def score_leads(
    *, session: Session, leads: list[Lead], now: datetime, view: ClinicView | None = None
) -> None:
    """Score open leads (of one clinic) and choose their next best actions, reading their
    activities and open tasks in one query each; `lead.score_changed` where a score moved."""
    live = [lead for lead in leads if lead.is_open]
    for lead in leads:
        if not lead.is_open and lead.next_action is not None:
            lead.next_action = None
    if not live:
        return
    view = view or clinic_view(session=session, clinic_id=live[0].clinic_id)
    ids = [lead.id for lead in live]
    with session.no_autoflush:  # the reads need none of this transaction's pending writes
        activities = queries.fact_activities(session=session, lead_ids=ids)
        with_open_task = queries.leads_with_open_task(session=session, lead_ids=ids)
        for lead in live:
            mine = activities.get(lead.id, [])
            facts = queries.facts_from(lead, view.categories.get(lead.source_id), mine, now)
            if view.model is not None:
                _set_score(session, lead, rules.score(view.model, facts), view.model.version, now)
            lead.next_action = _next_action(
                session, view, lead, queries.reach_outs(mine), lead.id in with_open_task, now
            )


def score_lead(*, session: Session, lead: Lead, now: datetime) -> None:
    """One lead's score and next best action (see score_leads)."""
    score_leads(session=session, leads=[lead], now=now)


def _set_score(session: Session, lead: Lead, result: rules.Score, version: str, now: datetime) -> None:
    previous = lead.score
    lead.score = round(result.probability, 4)
    lead.score_factors = result.factors
    lead.score_model_version = version
    if previous is None or abs(lead.score - previous) >= SCORE_EVENT_DELTA:
        events.emit(
            session=session,
            clinic_id=lead.clinic_id,
            type=LEAD_SCORE_CHANGED,
            subject_type="lead",
            subject_id=lead.id,
            payload={
                "lead_id": lead.id,
                "score": lead.score,
                "previous_score": previous,
                "model_version": version,
            },
            now=now,
        )


def rescore_open_leads(*, session: Session, clinic_id: int, now: datetime, batch: int = 1000) -> int:
    """Score every open lead of the clinic (after a night's training), a batch at a time."""
    view = clinic_view(session=session, clinic_id=clinic_id)
    done, after = 0, 0
    while True:
        chunk = list(
            session.scalars(
                sa.select(Lead)
                .where(
                    Lead.clinic_id == clinic_id,
                    Lead.status.in_(OPEN_STATUSES),
                    Lead.deleted_at.is_(None),
                    Lead.id > after,
                )
                .order_by(Lead.id)
                .limit(batch)
            )
        )
        if not chunk:
            return done
        score_leads(session=session, leads=chunk, now=now, view=view)
        session.flush()
        done += len(chunk)
        after = chunk[-1].id


# --- next best action -----------------------------------------------------------------------------


def _next_action(
    session: Session,
    view: ClinicView,
    lead: Lead,
    recent: queries.ReachOuts,
    has_open_task: bool,
    now: datetime,
) -> dict | None:
    """The lead's next best action as stored on it: {action, reason, at}."""
    best, current_rate = view.slots_for(session, lead.source_id, now)
    state = rules.LeadState(
        is_open=lead.is_open,
        stage=lead.pipeline_stage,
        created_at=lead.created_at,
        failed_attempts_in_a_row=recent.attempts_in_a_row,
        contacts=recent.contacts,
        breakup_sent_at=recent.breakup_sent_at,
        last_contact_at=recent.last_contact_at,
        score=lead.score,
        has_open_task=has_open_task,
        do_not_contact=lead.do_not_contact,
        email_allowed=bool(lead.email) and not lead.email_opt_out,
    )
    action = rules.next_best_action(state, now, current_rate, best)
    return action.as_json() if action else None


# --- reply sentiment ------------------------------------------------------------------------------

REPLY_TYPES = (ActivityType.EMAIL, ActivityType.SMS)


def classify_reply(*, session: Session, activity: LeadActivity, now: datetime) -> str | None:
    """Label an inbound email or SMS once; a negative one notifies the lead's owner."""
    if activity.type not in REPLY_TYPES or activity.direction != ActivityDirection.INBOUND:
        return None
    if activity.sentiment is not None:
        return activity.sentiment
    activity.sentiment = sentiment.classify(activity.notes).label
    if activity.sentiment == rules.NEGATIVE:
        _notify_negative_reply(session, activity, now)
    return activity.sentiment


def reply_sentiment(*, session: Session, activity_id: int | None, now: datetime) -> str | None:
    """The sentiment of an activity (classified now if it was not yet); None: not an inbound reply."""
    activity = session.get(LeadActivity, activity_id) if activity_id else None
    if activity is None:
        return None
    return classify_reply(session=session, activity=activity, now=now)


def _notify_negative_reply(session: Session, activity: LeadActivity, now: datetime) -> None:
    lead = session.get(Lead, activity.lead_id)
    if lead is None or lead.assigned_to_id is None:
        return
    channel = "email" if activity.type == ActivityType.EMAIL else "SMS"
    notifications.notify_in_app(
        session=session,
        clinic_id=lead.clinic_id,
        user_id=lead.assigned_to_id,
        kind="negative_reply",
        title=f"Negative reply by {channel}: {lead.first_name} {lead.last_name}",
        body="The lead's reply reads negative: a personal call may save it.",
        link=f"/leads/{lead.id}",
        dedupe_key=f"negative_reply:{activity.id}",
        now=now,
        origin={"activity_id": activity.id},
    )


# --- conversion forecast --------------------------------------------------------------------------


def forecast(*, session: Session, actor: Actor, now: datetime, months: int = 3) -> dict:
    """GET /api/leads/analytics/forecast: expected conversions per month for the next `months`."""
    first_month = date(now.year, now.month, 1)
    since = datetime(first_month.year, first_month.month, 1, tzinfo=UTC) - timedelta(
        days=(rules.HISTORY_MONTHS + 1) * 31
    )
    timelines = queries.timelines(session=session, clinic_id=actor.clinic_id, since=since)
    # The month under way is forecast whole; what already converted in it is added on top.
    result = rules.forecast_from(timelines, first_month, months)
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


def clinic_ids(*, session: Session) -> list[int]:
    return list(session.scalars(sa.select(Clinic.id).order_by(Clinic.id)))


def nightly_for_clinic(*, session: Session, clinic_id: int, now: datetime) -> dict:
    """One clinic's night: recount call tallies, train its model (if it has the history), rescore."""
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    calls = refresh_contact_tallies(session=session, clinic=clinic, now=now)
    record = train(session=session, clinic_id=clinic_id, now=now)
    forget_models()
    scored = rescore_open_leads(session=session, clinic_id=clinic_id, now=now)
    return {
        "clinic_id": clinic_id,
        "calls": calls,
        "model": record.version if record else None,
        "scored": scored,
    }


def train_global(*, session: Session, now: datetime) -> str | None:
    record = train(session=session, clinic_id=None, now=now)
    forget_models()
    return record.version if record else None


def nightly(*, now: datetime) -> dict:
    """The beat's nightly run: the global prior first (clinics without history are scored by it),
    then each clinic in its own transaction, so one clinic's failure spares the others."""
    with unit_of_work() as session:
        global_version = train_global(session=session, now=now)
        ids = clinic_ids(session=session)
    done, failed = 0, 0
    for clinic_id in ids:
        try:
            with unit_of_work() as session:
                nightly_for_clinic(session=session, clinic_id=clinic_id, now=now)
            done += 1
        except Exception:  # logged with the clinic id only; the next night retries
            log.exception("intelligence: nightly run failed for clinic %s", clinic_id)
            failed += 1
    return {"global_model": global_version, "clinics": done, "failed": failed}


def on_event(*, session: Session, event, now: datetime) -> None:
    """Event consumer: re-score the lead and re-choose its next action; label inbound replies."""
    payload = event.payload or {}
    lead_id = payload.get("lead_id") or (event.subject_id if event.subject_type == "lead" else None)
    if not lead_id:
        return
    lead = session.get(Lead, lead_id)
    if lead is None or lead.clinic_id != event.clinic_id:
        return
    if event.type == events.ACTIVITY_LOGGED and payload.get("activity_id"):
        reply_sentiment(session=session, activity_id=payload["activity_id"], now=now)
    if event.type in CLOSING_EVENTS or lead.status not in OPEN_STATUSES:
        lead.next_action = None
        return
    score_lead(session=session, lead=lead, now=now)
