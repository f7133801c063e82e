"""What creating a lead reads before it writes, in one round trip: the clinic, the lead's source
(see sources.new_lead_source_join) and the default stage's slug. Core, not the ORM: loading two
entities through the ORM costs more than the rest of the reads of a capture together. On
PostgreSQL the same round trip also takes the clinic's availability lock for the pick of an owner,
which would otherwise be a round trip of its own."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.assignment import queries as assignment_queries
from app.domains.auth.models import Clinic
from app.domains.leads import sources
from app.domains.leads.models import LeadSource
from app.domains.pipeline import service as pipeline
from app.platform.db import Frozen

CLINICS, SOURCES = Clinic.__table__, LeadSource.__table__
DEFAULT_STAGE = pipeline.default_stage_slug(CLINICS.c.id).label("default_stage")
_CONTEXT_COLUMNS = [*CLINICS.c, *SOURCES.c, DEFAULT_STAGE]
_AVAILABILITY_LOCK = assignment_queries.availability_lock(CLINICS.c.id)


def _capture_context(extra_columns: list) -> Frozen:
    return Frozen(
        sa.select(*_CONTEXT_COLUMNS, *extra_columns)
        .select_from(CLINICS.outerjoin(SOURCES, sources.new_lead_source_join(CLINICS.c.id)))
        .where(CLINICS.c.id == sa.bindparam("clinic_id"))
    )


# By where the capture runs: a PostgreSQL transaction (the availability lock taken by the same
# read), and SQLite.
_IN_TRANSACTION = _capture_context([_AVAILABILITY_LOCK])
_ON_SQLITE = _capture_context([])


def capture_context(session, clinic_id: int, source_id: int | None) -> tuple[dict, bool]:
    """The clinic's and the source's columns and DEFAULT_STAGE, by column; and whether the clinic's
    availability lock is held from this read on (on PostgreSQL), for the pick of an owner."""
    params = {"clinic_id": clinic_id, "source_id": source_id}
    if session.get_bind().dialect.name != "postgresql":
        [row] = _ON_SQLITE.execute(session.connection(), params)
        return dict(zip(_CONTEXT_COLUMNS, row, strict=True)), False
    [row] = _IN_TRANSACTION.execute(session.connection(), params)
    return dict(zip(_CONTEXT_COLUMNS, row, strict=False)), True
