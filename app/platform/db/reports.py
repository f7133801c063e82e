"""A report's reads over a long range: PostgreSQL's planner settings for the rest of the report's
transaction, and its independent reads at once (together.py) under the same settings. Domains say
what a report reads; how the database is tuned to read it stays here."""

from __future__ import annotations

import sqlalchemy as sa

from app.platform.db.together import Reads, read_later, read_together


def plan_for_reports(bind) -> None:
    """PostgreSQL: planner settings for the rest of the transaction of `bind` (a unit of work, or a
    connection reading together); nothing elsewhere."""
    engine = bind.get_bind() if hasattr(bind, "get_bind") else bind
    if engine.dialect.name != "postgresql":
        return
    # Percentiles sort up to one row per lead of the range: in memory, not in temp files. The
    # reports read covering indexes (index-only scans); at the default random_page_cost (4, for
    # spinning disks) the planner prefers scanning the wider tables whole for a long range.
    bind.execute(sa.text("SET LOCAL work_mem = '32MB'"))
    bind.execute(sa.text("SET LOCAL random_page_cost = 1.1"))
    # psycopg prepares a statement run often; after five runs PostgreSQL may switch it to a
    # generic plan, blind to the range's bounds (one plan for a day and for two years).
    bind.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def read_report(session, statements: list) -> list[list]:
    """The rows of each of a report's `statements`, read at once in the unit's snapshot
    (read_together), each under the reports' planner settings."""
    return read_together(session, statements, plan_for_reports)


def begin_report_reads(session, statements: list) -> Reads:
    """`read_report`'s reads begun while the caller reads more (read_later): rows from `.rows()`."""
    return read_later(session, statements, plan_for_reports)
