"""PostgreSQL's table statistics: which tables changed enough since their last ANALYZE, and ANALYZE."""

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
