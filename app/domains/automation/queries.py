"""SQL of the automation domain that needs a dialect: step id reservation, time differences."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.analytics import queries as analytics_queries
from app.platform.db import UnitOfWork

# One round trip for the ids of all the steps a rule's match makes (the sequence of the serial id).
_RESERVE_IDS = sa.text(
    "SELECT nextval(pg_get_serial_sequence('automation_steps', 'id')) FROM generate_series(1, :count)"
)


def reserve_step_ids(session: UnitOfWork, count: int) -> list[int] | None:
    """Ids for `count` automation steps not written yet (PostgreSQL); None elsewhere, where a
    step is written at once and gets its id from the insert."""
    if count == 0 or session.get_bind().dialect.name != "postgresql":
        return None
    return list(session.scalars(_RESERVE_IDS, {"count": count}))


def seconds_between(session: UnitOfWork, later, earlier):
    """`later - earlier` in seconds, as a SQL expression of the session's dialect."""
    return analytics_queries.seconds_between(session, later, earlier)
