"""Search as you type over a table's text columns: one expression, and the index that answers
`LIKE '%...%'` on it. A domain names the columns; the platform decides how they are indexed.

The expression is lower(coalesce(a, '') || ' ' || coalesce(b, '') ...), its constants inline (not
bound parameters) so that PostgreSQL recognises the indexed expression in a query. On PostgreSQL the
index is pg_trgm's GIN (a trusted extension since PostgreSQL 13); SQLite, the embedded default for a
laptop's few rows, has none and scans.
"""

from __future__ import annotations

import sqlalchemy as sa


def search_text(model, columns: tuple[str, ...]) -> sa.ColumnElement:
    """The lower-cased text of `columns` of `model`, space-separated, as the search index holds it."""
    parts = [sa.func.coalesce(getattr(model, column), sa.literal_column("''")) for column in columns]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.op("||")(sa.literal_column("' '")).op("||")(part)
    return sa.func.lower(joined)


def search_index(name: str, columns: tuple[str, ...]) -> sa.Index:
    """A trigram index over `search_text(columns)` for a model's `__table_args__`; PostgreSQL only."""
    text = " || ' ' || ".join(f"coalesce({column}, '')" for column in columns)
    index = sa.Index(name, sa.text(f"(lower({text})) gin_trgm_ops"), postgresql_using="gin")
    return index.ddl_if(dialect="postgresql")
