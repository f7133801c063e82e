"""What creating a lead reads before it writes, in one round trip: the clinic, the lead's source
(see sources.new_lead_source_join) and the default stage's slug. Core, not the ORM: loading two
entities through the ORM cost more than the rest of the reads of a capture together. On
PostgreSQL the same round trip also reserves the new rows' ids and takes a round-robin clinic's
turn for a batched unit of work and, in a transaction, takes the clinic's availability lock for
the pick of an owner: each was a round trip of its own."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.activities.models import LeadActivity
from app.assignment import queries as assignment_queries
from app.auth.models import Clinic
from app.db import Frozen, ids_from, new_id_columns, writes
from app.events.models import DomainEvent
from app.leads import sources
from app.leads.models import Lead, LeadSource
from app.pipeline import service as pipeline
from app.scheduling.models import ScheduledJob

# The rows of a new lead that are given ids up front in a batched unit: the lead, its first
# ASSIGNMENT_CHANGE activity, its events (created, assigned, activity logged) and their job.
NEW_LEAD_ROWS = {Lead: 1, LeadActivity: 1, DomainEvent: 3, ScheduledJob: 1}

CLINICS, SOURCES = Clinic.__table__, LeadSource.__table__
DEFAULT_STAGE = pipeline.default_stage_slug(CLINICS.c.id).label("default_stage")
_CONTEXT_COLUMNS = [*CLINICS.c, *SOURCES.c, DEFAULT_STAGE]
_AVAILABILITY_LOCK = assignment_queries.availability_lock(CLINICS.c.id)
_NEW_IDS = new_id_columns(NEW_LEAD_ROWS)
_TURN = assignment_queries.round_robin_turn_columns()


def _capture_context(extra_columns: list) -> Frozen:
    return Frozen(
        sa.select(*_CONTEXT_COLUMNS, *extra_columns)
        .select_from(CLINICS.outerjoin(SOURCES, sources.new_lead_source_join(CLINICS.c.id)))
        .where(CLINICS.c.id == sa.bindparam("clinic_id"))
    )


# By where the capture runs: a PostgreSQL transaction, a batched unit (where a transaction's lock
# would end with the statement: its write is guarded instead), SQLite.
_CAPTURE_CONTEXT = {
    "transaction": _capture_context([_AVAILABILITY_LOCK]),
    "batched": _capture_context([*_NEW_IDS, *_TURN]),
    "sqlite": _capture_context([]),
}


def capture_context(session, clinic_id: int, source_id: int | None, now: datetime) -> dict:
    """The clinic's and the source's columns and DEFAULT_STAGE, by column; the new rows' ids
    reserved in the unit and a round-robin clinic's turn taken for its pick, or the clinic's
    availability lock held, where that is the way."""
    if session.get_bind().dialect.name != "postgresql":
        where = "sqlite"
    else:
        where = "batched" if writes.is_batched(session) else "transaction"
    params = {"clinic_id": clinic_id, "source_id": source_id}
    if where == "batched":
        params.update(assignment_queries.turn_params(now))
    [row] = _CAPTURE_CONTEXT[where].execute(session.connection(), params)
    context = dict(zip(_CONTEXT_COLUMNS, row, strict=False))
    if where == "batched":
        extra = row[len(_CONTEXT_COLUMNS) :]
        writes.reserve(session, ids_from(NEW_LEAD_ROWS, extra[: len(_NEW_IDS)]))
        policy = context[CLINICS.c.assignment_policy]
        assignment_queries.keep_taken_turn(session, clinic_id, policy, *extra[len(_NEW_IDS) :])
    elif where == "transaction":
        assignment_queries.availability_held(session, clinic_id)
    return context
