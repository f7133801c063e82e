"""The fast write path: ids reserved up front (`allocate_ids`), compiled statements run on the driver
(`Frozen`), and many rows of one table loaded at once (`insert_rows`)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.platform.db.engine import is_disconnect
from app.platform.db.rows import plain_insert_of


def allocate_ids(session: Session, counts: dict[type, int]) -> dict[type, list[int]]:
    """Reserve new ids for rows of these models, ascending, in one round trip.

    Rows given their ids up front can refer to each other and still be written together.
    PostgreSQL takes them from the tables' serial sequences; SQLite from max(id), which is safe
    because the transaction already holds the database's write lock (BEGIN IMMEDIATE, see
    `SQLiteForManyWriters` in app/platform/db/engine.py).
    """
    models = [model for model, count in counts.items() if count > 0]
    if session.get_bind().dialect.name != "postgresql":
        allocated = {}
        for model in models:
            table = model.__table__
            last = session.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
            allocated[model] = list(range(last + 1, last + 1 + counts[model]))
        return allocated
    [row] = _sequence_read(tuple((model, counts[model]) for model in models)).execute(session.connection())
    return ids_from(counts, row)


# By models and counts: bulk work asks for ever new counts, so only the most recent are kept.
@functools.lru_cache(maxsize=128)
def _sequence_read(counts: tuple[tuple[type, int], ...]) -> Frozen:
    return Frozen(sa.select(*new_id_columns(dict(counts))))


def new_id_columns(counts: dict[type, int]) -> list[sa.ColumnElement]:
    """PostgreSQL: columns reserving new ids as `allocate_ids` does, for a caller to add to a read
    of its own (one round trip fewer); `ids_from` reads them back."""
    # Table names and counts come from code, never from a request.
    return [
        sa.literal_column(
            f"ARRAY(SELECT nextval('{model.__table__.name}_id_seq') FROM generate_series(1, {count}))",
            type_=ARRAY(sa.Integer),
        )
        for model, count in counts.items()
        if count > 0
    ]


def ids_from(counts: dict[type, int], values) -> dict[type, list[int]]:
    """The ids reserved by `new_id_columns(counts)`, from their values in a row, by model."""
    models = [model for model, count in counts.items() if count > 0]
    return {model: sorted(ids) for model, ids in zip(models, values, strict=True)}


class Frozen:
    """A hot statement: compiled once per dialect, run on the driver with its values processed.

    Why: SQLAlchemy 2.0 caches no statement with an ON CONFLICT clause (`on_conflict_do_update` /
    `_do_nothing`) and compiles one on every execution, which costs more than running it; and for
    the few statements every request runs, SQLAlchemy's per-execution bookkeeping costs more than
    the driver's work. Here the compiled SQL and the bind processors of its parameters (from their
    column types: dates to UTC, JSON, encryption) are kept, and a run only processes the values.
    On PostgreSQL the SQL uses the server's own $1 placeholders on a raw cursor: psycopg would
    otherwise parse a long statement for %(name)s placeholders on every execution
    (it caches only short ones). Returns plain tuples; a SELECT's values (or a text statement's
    with its `.columns()`) go through the result processors of its columns' types. Driver errors
    are raised as SQLAlchemy's (IntegrityError...). SQLAlchemy's cursor events do not see these
    statements (their listeners, OpenTelemetry's among them, need its execution context).
    """

    def __init__(self, statement: sa.Executable):
        self.statement = statement
        # By dialect instance, not name: processors may hold their engine's settings (the PHI key of
        # app/platform/db/protected.py), and a process may hold two engines (tests, tools).
        self._compiled: dict = {}

    def execute(
        self, connection: sa.Connection, params: dict | None = None, *, again: bool = True
    ) -> list[tuple]:
        dialect = connection.dialect
        sql, binds = self._compile(dialect)
        values = []
        for name, default, process in binds:
            value = params.get(name, default) if params else default
            values.append(value if process is None else process(value))
        if dialect.name != "postgresql":
            result = connection.exec_driver_sql(sql, tuple(values))
            if not result.returns_rows:
                return []
            rows, type_codes = result.all(), None
        else:
            cursor = _raw_cursor(connection)
            try:
                cursor.execute(sql, values)
            except psycopg.Error as error:
                gone = is_disconnect(connection, error)
                if gone and again and self._rereadable(connection):
                    # A read on its own (autocommit) changed nothing: read again, on the new
                    # connection the invalidated one takes from the pool once its (autocommit,
                    # so empty) transaction is ended; the caller's next statements use it too.
                    if connection.in_transaction():
                        connection.rollback()
                    _reconnect_in_autocommit(connection)
                    return self.execute(connection, params, again=False)
                raise sa.exc.DBAPIError.instance(
                    sql, values, error, psycopg.Error, connection_invalidated=gone
                ) from error
            if cursor.pgresult is None or cursor.pgresult.status != psycopg.pq.ExecStatus.TUPLES_OK:
                return []
            rows, type_codes = cursor.fetchall(), self._type_codes(cursor, dialect)
        processors = self._result_processors(dialect, type_codes)
        if processors is None:
            return [tuple(row) for row in rows]
        return [tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True)) for row in rows]

    def _rereadable(self, connection: sa.Connection) -> bool:
        """A SELECT run in autocommit: nothing it did outlives it, and no transaction spans it."""
        autocommitted = connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        return autocommitted and isinstance(self.statement, sa.Select)

    def _compile(self, dialect) -> tuple:
        cached = self._compiled.get(dialect)
        if cached is None:
            # Positional placeholders ($1 on PostgreSQL, ? on SQLite), in the order of `positiontup`.
            style = "numeric_dollar" if dialect.name == "postgresql" else "qmark"
            compiled = self.statement.compile(dialect=type(dialect)(paramstyle=style))
            by_name = {name: bind for bind, name in compiled.bind_names.items()}
            binds = []
            for name in compiled.positiontup or ():
                bind = by_name[name]
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                binds.append((name, bind.effective_value, process))
            cached = self._compiled[dialect] = (compiled.string, binds)
        return cached

    def _type_codes(self, cursor, dialect) -> list | None:
        """The driver's column types, needed only until the result processors are made (psycopg
        builds `description` anew on every access)."""
        if ("results", dialect) in self._compiled:
            return None
        return [column.type_code for column in cursor.description]

    def _result_processors(self, dialect, type_codes: list | None) -> list | None:
        """A SELECT's column types' result processors (None: nothing to process), made on first use:
        some depend on the type the driver reports."""
        key = ("results", dialect)
        if key not in self._compiled:
            processors = None
            if isinstance(self.statement, sa.Select | sa.TextualSelect):
                columns = list(self.statement.selected_columns)
                codes = type_codes or [None] * len(columns)
                processors = [
                    column.type.dialect_impl(dialect).result_processor(dialect, code)
                    for column, code in zip(columns, codes, strict=True)
                ]
            self._compiled[key] = processors if processors and any(processors) else None
        return self._compiled[key]


def _reconnect_in_autocommit(connection: sa.Connection) -> None:
    """Give an invalidated autocommit Connection its new DBAPI connection, in autocommit too.

    SQLAlchemy sets an engine's isolation level on a Connection once, when it is made; the DBAPI
    connection a revalidated Connection takes from the pool would be in the driver's default mode,
    so a later write on it would run in a transaction nobody commits."""
    level = connection.get_execution_options()["isolation_level"]
    connection.connection  # noqa: B018 (revalidates: a new DBAPI connection from the pool)
    connection.dialect.set_connection_execution_options(connection, {"isolation_level": level})


def _raw_cursor(connection: sa.Connection) -> psycopg.RawCursor:
    """The driver connection's RawCursor for Frozen statements, made once per connection: making a
    cursor (and its adapters) for each statement is a visible part of a short statement's cost.
    Kept in the pool's record of the connection, which forgets it if the connection is replaced."""
    driver_connection = connection.connection.driver_connection
    cursor = connection.info.get(_RAW_CURSOR)
    if cursor is None or cursor.closed or cursor.connection is not driver_connection:
        cursor = connection.info[_RAW_CURSOR] = psycopg.RawCursor(driver_connection)
    return cursor


_RAW_CURSOR = "frozen.raw_cursor"


# --- loading many rows of one table ---------------------------------------------------------------


def insert_rows(session: Session, model: type, rows: Sequence[dict], batch: int = 5000) -> None:
    """INSERT many rows of `model` (dicts by column key, each with the same keys, as `row_values`
    builds them): for loading a history (a bench, a seed) without the ORM's bookkeeping per
    object, which cost milliseconds per lead.

    PostgreSQL: one COPY of all rows, their values through the columns' bind processors (so
    encryption, UTC and JSON apply as in any INSERT). Elsewhere: `batch` rows per executemany.
    Mapper and session events (the monthly counts) see none of these rows.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        stmt = plain_insert_of(model)
        for start in range(0, len(rows), batch):
            connection.execute(stmt, list(rows[start : start + batch]))
        return
    table = model.__table__
    keys = list(rows[0])
    processors = [
        table.c[key].type.dialect_impl(connection.dialect).bind_processor(connection.dialect) for key in keys
    ]
    names = ", ".join(table.c[key].name for key in keys)  # from the model, never from input
    cursor = connection.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    row[key] if process is None else process(row[key])
                    for key, process in zip(keys, processors, strict=True)
                ]
            )
