"""`column IN (values)` for a page's worth of values (the ids of the leads a page shows, their phones).

SQLAlchemy renders an IN list as one bound parameter a value: for the board's few hundred cards that is
thousands of parameters rendered, sent and planned on every page (bench/workspace.py measured ~6 ms a
query over 400 ids). On PostgreSQL the values go as one array parameter (`column = ANY(:values)`);
other databases keep the IN list."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY


def among(session, column, values: Iterable) -> sa.ColumnElement[bool]:
    """`column` is one of `values`, said the fastest way for the session's database."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(column.type)))
