"""PostgreSQL's table statistics: which tables changed enough since their last ANALYZE, and ANALYZE."""

from __future__ import annotations

import sqlalchemy as sa

# The rule autovacuum applies by default (autovacuum_analyze_threshold 50, scale factor 0.1), read
# from the server's own counters: rows inserted, updated or deleted since the table's last ANALYZE
# (since its creation when it never had one).
_STALE = sa.text(
    """
    SELECT relname FROM pg_stat_user_tables
    WHERE schemaname = current_schema()
      AND n_mod_since_analyze > :floor + :fraction * GREATEST(n_live_tup, 0)
    ORDER BY relname
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
