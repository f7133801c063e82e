"""PostgreSQL's table upkeep: which tables changed enough since their last ANALYZE, and ANALYZE;
which hold enough dead row versions, and VACUUM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

# Autovacuum's rule (autovacuum_analyze_threshold 50, a scale factor: its default 0.1), read from
# the server's own counters: rows inserted, updated or deleted since the table's last ANALYZE
# (since its creation when it never had one).
# The fraction is of the rows the table had at its last ANALYZE (pg_class.reltuples, -1 before the
# first), as autovacuum reads it: a table filling from empty qualifies at once.
_STALE = sa.text(
    """
    SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.schemaname = current_schema()
      AND s.n_mod_since_analyze > :floor + :fraction * GREATEST(c.reltuples, 0)
    ORDER BY s.relname
    """
)


def tables_with_stale_statistics(conn: sa.Connection, *, floor: int, fraction: float) -> list[str]:
    """PostgreSQL's tables changed past the threshold since their last ANALYZE; elsewhere none (no
    statistics to keep)."""
    if conn.dialect.name != "postgresql":
        return []
    return list(conn.execute(_STALE, {"floor": floor, "fraction": fraction}).scalars())


def analyze(conn: sa.Connection, table: str) -> None:
    conn.execute(sa.text(f"ANALYZE {conn.dialect.identifier_preparer.quote(table)}"))


# Dead row versions (an UPDATE or DELETE leaves one) past `floor` + `fraction` of the table's live
# rows, as the server counts them: autovacuum's rule (50 and 0.2 by default), with our own figures.
_DEAD = sa.text(
    """
    SELECT s.relname FROM pg_stat_user_tables s
    WHERE s.schemaname = current_schema()
      AND s.n_dead_tup > :floor + :fraction * s.n_live_tup
    ORDER BY s.relname
    """
)


def tables_with_dead_rows(conn: sa.Connection, *, floor: int, fraction: float) -> list[str]:
    """PostgreSQL's tables holding more dead row versions than the threshold; elsewhere none."""
    if conn.dialect.name != "postgresql":
        return []
    return list(conn.execute(_DEAD, {"floor": floor, "fraction": fraction}).scalars())


def vacuum(conn: sa.Connection, table: str) -> None:
    """VACUUM `table` (no transaction may be open: `conn` is in autocommit)."""
    conn.execute(sa.text(f"VACUUM {conn.dialect.identifier_preparer.quote(table)}"))


# How long ANALYZE and VACUUM sleep each time they have done `vacuum_cost_limit` (200) units of page
# work, and how many rows ANALYZE samples (300 times the target).
#
# For the transaction only (set_config's `true`, as SET LOCAL): behind a transaction pooler the
# next transaction may run on another server session, and this one's session goes to another
# client, so a session setting would pace, or leak into, someone else's statements. ANALYZE runs
# in the transaction that set them; nothing is left to reset.
_PACE_THIS_TRANSACTION = sa.text(
    "SELECT set_config('vacuum_cost_delay', :delay, true), "
    "set_config('default_statistics_target', :target, true)"
)


def pace_this_transaction(conn: sa.Connection, *, cost_delay_ms: float, statistics_target: int) -> None:
    """The ANALYZE in `conn`'s open transaction paced as autovacuum paces its own (PostgreSQL;
    elsewhere nothing)."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            _PACE_THIS_TRANSACTION, {"delay": f"{cost_delay_ms}ms", "target": str(statistics_target)}
        )


# VACUUM cannot run in a transaction block (nor in a multi-statement string, which is one), so
# its pacing can only be the session's: set before, reset after, on a connection that stays this
# session throughout, which only a direct connection is (app/domains/ops/service.py).
_PACE_THIS_SESSION = sa.text("SELECT set_config('vacuum_cost_delay', :delay, false)")


@contextmanager
def session_paced(conn: sa.Connection, *, cost_delay_ms: float) -> Iterator[None]:
    """VACUUM on `conn` (in autocommit, direct to PostgreSQL) paced as autovacuum paces its own;
    reset afterwards, for the connection goes back to the pool (elsewhere as is)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.execute(_PACE_THIS_SESSION, {"delay": f"{cost_delay_ms}ms"})
    try:
        yield
    finally:
        conn.exec_driver_sql("RESET vacuum_cost_delay")
