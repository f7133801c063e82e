"""PostgreSQL's table upkeep: which tables changed enough since their last ANALYZE, and ANALYZE;
which hold enough dead row versions, and VACUUM."""

from __future__ import annotations

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
