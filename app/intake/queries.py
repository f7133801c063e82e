"""What creating a lead reads before it writes, in one round trip: the clinic, the lead's source
(see sources.new_lead_source_join) and the default stage's slug. Core, not the ORM: loading two
entities through the ORM costs more than the rest of the reads of a capture together. On
PostgreSQL the same round trip also reserves the unit's new rows' ids and takes a round-robin
clinic's turn for a batched unit of work and, in a transaction, takes the clinic's availability
lock for the pick of an owner, each of which would otherwise be a round trip of its own."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.assignment import queries as assignment_queries
from app.auth.models import Clinic
from app.db import Frozen
from app.leads import sources
from app.leads.models import LeadSource
from app.pipeline import service as pipeline

CLINICS, SOURCES = Clinic.__table__, LeadSource.__table__
DEFAULT_STAGE = pipeline.default_stage_slug(CLINICS.c.id).label("default_stage")
_CONTEXT_COLUMNS = [*CLINICS.c, *SOURCES.c, DEFAULT_STAGE]
_AVAILABILITY_LOCK = assignment_queries.availability_lock(CLINICS.c.id)
_TURN = assignment_queries.round_robin_turn_columns()


def _capture_context(extra_columns: list) -> Frozen:
    return Frozen(
        sa.select(*_CONTEXT_COLUMNS, *extra_columns)
        .select_from(CLINICS.outerjoin(SOURCES, sources.new_lead_source_join(CLINICS.c.id)))
        .where(CLINICS.c.id == sa.bindparam("clinic_id"))
    )


# By where the capture runs: a PostgreSQL transaction, SQLite, and a batched unit (where a
# transaction's lock would end with the statement: its write is guarded instead), by the columns
# reserving its new rows' ids.
_IN_TRANSACTION = _capture_context([_AVAILABILITY_LOCK])
_ON_SQLITE = _capture_context([])
_BATCHED: dict[tuple, Frozen] = {}


def _batched_context(id_columns: list) -> Frozen:
    key = tuple(id_columns)
    read = _BATCHED.get(key)
    if read is None:
        read = _BATCHED[key] = _capture_context([*id_columns, *_TURN])
    return read


def capture_context(
    session, clinic_id: int, source_id: int | None, now: datetime
) -> tuple[dict, assignment_queries.TakenTurn | None]:
    """The clinic's and the source's columns and DEFAULT_STAGE, by column, and the round-robin
    turn this read took for the pick (a batched unit's, of a round-robin clinic; else None). A
    batched unit's new rows' ids are reserved by the same read; in a PostgreSQL transaction the
    clinic's availability lock is held from it on."""
    params = {"clinic_id": clinic_id, "source_id": source_id}
    if session.get_bind().dialect.name != "postgresql":
        [row] = _ON_SQLITE.execute(session.connection(), params)
        return dict(zip(_CONTEXT_COLUMNS, row, strict=True)), None
    if not session.batched:
        [row] = _IN_TRANSACTION.execute(session.connection(), params)
        assignment_queries.availability_held(session, clinic_id)
        return dict(zip(_CONTEXT_COLUMNS, row, strict=False)), None
    id_columns = session.id_columns()
    params.update(assignment_queries.turn_params(now))
    [row] = _batched_context(id_columns).execute(session.connection(), params)
    context = dict(zip(_CONTEXT_COLUMNS, row, strict=False))
    extra = row[len(_CONTEXT_COLUMNS) :]
    session.reserve_from(extra[: len(id_columns)])
    turn = assignment_queries.taken_turn(context[CLINICS.c.assignment_policy], *extra[len(id_columns) :])
    return context, turn
