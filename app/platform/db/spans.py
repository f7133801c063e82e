"""SQL for the time between two stored timestamps, rendered for the database the statement runs on
(timestamps are timestamptz on PostgreSQL, naive UTC text on SQLite): one definition, so a span
kept on a row by a write path and the same span worked out by a report are the same value to the
last bit."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class _SecondsBetween(FunctionElement):
    type = sa.Float()
    inherit_cache = True


class _LaterOf(FunctionElement):
    inherit_cache = True

    def __init__(self, a, b):
        super().__init__(a, b)
        self.type = a.type  # a timestamp, compared and subtracted as one


@compiles(_SecondsBetween, "postgresql")
def _seconds_postgresql(element, compiler, **kw):
    later, earlier = element.clauses
    # date_part gives float8 (EXTRACT gives numeric: slower)
    return compiler.process(sa.func.date_part(sa.literal_column("'epoch'"), later - earlier), **kw)


@compiles(_SecondsBetween)
def _seconds_sqlite(element, compiler, **kw):
    later, earlier = element.clauses
    return compiler.process((sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0, **kw)


@compiles(_LaterOf, "postgresql")
def _later_postgresql(element, compiler, **kw):
    a, b = element.clauses
    return compiler.process(sa.case((sa.and_(a.is_not(None), b.is_not(None)), sa.func.greatest(a, b))), **kw)


@compiles(_LaterOf)
def _later_sqlite(element, compiler, **kw):
    a, b = element.clauses
    return compiler.process(sa.func.max(a, b), **kw)  # SQLite's scalar max: null when an argument is


def seconds_between(later, earlier) -> sa.ColumnElement[float]:
    """SQL: seconds (float) from `earlier` to `later`; null when either is."""
    return _SecondsBetween(later, earlier)


def later_of(a, b) -> sa.ColumnElement:
    """SQL: the later of two timestamps; null when either is."""
    return _LaterOf(a, b)
