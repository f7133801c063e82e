"""The lead score and the next best action: models trained nightly per clinic (and a global prior),
cached per process; leads scored in batches, `lead.score_changed` when a score moves.

The math is in score_rules.py and next_action_rules.py."""

from __future__ import annotations

import time as timer
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.auth import service as auth
from app.domains.business_hours.rules import BusinessCalendar, calendar_of
from app.domains.intelligence import (
    contact_time_rules,
    next_action_rules,
    queries,
    score_rules,
)
from app.domains.intelligence.contact_times import contact_rates
from app.domains.intelligence.events import LeadScoreChanged
from app.domains.intelligence.models import ScoreModelRecord
from app.domains.leads.models import OPEN_STATUSES, Lead
from app.platform.db import UnitOfWork
from app.platform.events import service as events

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

# A score that moves less than this is not news: no event (rules would fire on noise).
SCORE_EVENT_DELTA = 0.05
# Below this many mature leads (or conversions) a clinic is scored by the global prior model.
MIN_HISTORY_LEADS = 200
MIN_HISTORY_CONVERSIONS = 20
TRAINING_MONTHS = 24
GLOBAL_SAMPLE_LIMIT = 200_000

# The engine's model cache (app/bootstrap.py Caches.score_models): clinic id (None: global) ->
# (checked at, model). A new model is picked up within the TTL. Read through the unit's Database
# (`_models`): a lead is scored deep under many use cases and consumers, and the Database, built
# with the engine, carries the cache there.
MODEL_CACHE_SECONDS = 60.0


def _models(session: UnitOfWork) -> dict[int | None, tuple[float, score_rules.ScoreModel | None]]:
    return session.database.wiring.caches.score_models


def _latest_record(session: UnitOfWork, clinic_id: int | None) -> ScoreModelRecord | None:
    owner = (
        ScoreModelRecord.clinic_id.is_(None) if clinic_id is None else ScoreModelRecord.clinic_id == clinic_id
    )
    return session.scalar(
        sa.select(ScoreModelRecord).where(owner).order_by(ScoreModelRecord.trained_at.desc()).limit(1)
    )


def _cached_model(session: UnitOfWork, clinic_id: int | None) -> score_rules.ScoreModel | None:
    models = _models(session)
    checked = models.get(clinic_id)
    if checked is not None and timer.monotonic() - checked[0] < MODEL_CACHE_SECONDS:
        return checked[1]
    record = _latest_record(session, clinic_id)
    model = score_rules.ScoreModel.from_json(record.version, record.parameters) if record else None
    models[clinic_id] = (timer.monotonic(), model)
    return model


def model_for(*, session: UnitOfWork, clinic_id: int) -> score_rules.ScoreModel | None:
    """The clinic's own model, else the global prior model, else None (nothing trained yet)."""
    return _cached_model(session, clinic_id) or _cached_model(session, None)


def forget_models(session: UnitOfWork) -> None:
    """Drop the engine's cached models (after training, so the new ones are read at once)."""
    _models(session).clear()


def _training_rows(session: UnitOfWork, clinic_id: int | None, now: datetime, limit: int | None):
    """Features and labels of mature leads: captured 90 days to 24 months ago."""
    until = now - timedelta(days=score_rules.CONVERSION_DAYS)
    since = now - timedelta(days=TRAINING_MONTHS * 31)
    found = queries.training_facts(
        session=session, clinic_id=clinic_id, since=since, until=until, limit=limit
    )
    return [score_rules.feature_vector(facts) for _, facts, _ in found], [int(label) for _, _, label in found]


def train(*, session: UnitOfWork, clinic_id: int | None, now: datetime) -> ScoreModelRecord | None:
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
    model = score_rules.fit(rows, labels, version=version)
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
    model: score_rules.ScoreModel | None
    categories: dict[int, str]
    # (source id, now) -> (the best upcoming slot, this hour's rate if open): the same for every
    # lead of a source scored at one moment.
    slots: dict[tuple, tuple[contact_time_rules.Slot | None, float | None]] = field(default_factory=dict)

    def slots_for(
        self, session: UnitOfWork, source_id: int | None, now: datetime
    ) -> tuple[contact_time_rules.Slot | None, float | None]:
        key = (source_id, now)
        if key not in self.slots:
            rates = contact_rates(session=session, clinic=self.clinic, source_id=source_id, now=now)
            upcoming = contact_time_rules.best_upcoming(rates, self.calendar, now, count=1)
            in_hours = contact_time_rules.is_open_at(self.calendar, now)
            current = (
                rates.rate(contact_time_rules.hour_of_week(now, self.calendar.zone)) if in_hours else None
            )
            self.slots[key] = (upcoming[0] if upcoming else None, current)
        return self.slots[key]


def clinic_view(
    *, session: UnitOfWork, clinic_id: int, model: score_rules.ScoreModel | None = None
) -> ClinicView:
    clinic = auth.get_clinic(session=session, clinic_id=clinic_id)
    return ClinicView(
        clinic=clinic,
        calendar=calendar_of(clinic),
        model=model or model_for(session=session, clinic_id=clinic_id),
        categories=queries.source_categories(session=session, clinic_id=clinic_id),
    )


def score_leads(
    *, session: UnitOfWork, leads: list[Lead], now: datetime, view: ClinicView | None = None
) -> None:
    """Score open leads (of one clinic) and choose their next best actions, reading their
    activities and open tasks in one query each; `lead.score_changed` where a score moved. `view`:
    the clinic's (read here if not given; a caller scoring its leads in chunks reads it once)."""
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
                _set_score(session, lead, score_rules.score(view.model, facts), view.model.version, now)
            lead.next_action = _next_action(
                session, view, lead, queries.reach_outs(mine), lead.id in with_open_task, now
            )


def _set_score(
    session: UnitOfWork, lead: Lead, result: score_rules.Score, version: str, now: datetime
) -> None:
    previous = lead.score
    lead.score = round(result.probability, 4)
    lead.score_factors = result.factors
    lead.score_model_version = version
    if previous is None or abs(lead.score - previous) >= SCORE_EVENT_DELTA:
        events.emit(
            session=session,
            event=LeadScoreChanged(
                lead_id=lead.id, score=lead.score, previous_score=previous, model_version=version
            ),
            subject=events.Subject.lead(lead),
            now=now,
        )


def rescore_open_leads(*, session: UnitOfWork, clinic_id: int, now: datetime, batch: int = 1000) -> int:
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
    session: UnitOfWork,
    view: ClinicView,
    lead: Lead,
    recent: queries.ReachOuts,
    has_open_task: bool,
    now: datetime,
) -> dict | None:
    """The lead's next best action as stored on it: {action, reason, at}."""
    best, current_rate = view.slots_for(session, lead.source_id, now)
    state = next_action_rules.LeadState(
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
    action = next_action_rules.next_best_action(state, now, current_rate, best)
    return action.as_json() if action else None
