"""Engine, session factory, declarative Base and the unit of work."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa
from flask import current_app, g, has_request_context
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.orm.instrumentation import manager_of_class

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Ids are 32-bit `integer` columns: a bigger number must be "not found" or "invalid", never a
# database error (PostgreSQL refuses to compare an integer column with an out-of-range value).
MAX_ID = 2**31 - 1


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.TypeDecorator):
    """Stores aware datetimes as UTC and always hands back aware UTC datetimes (SQLite included)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no zone type: store naive UTC so ordering and comparisons stay textual-safe.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _configure_sqlite(engine: sa.Engine) -> None:
    """WAL + busy timeout + BEGIN IMMEDIATE: web, worker and beat write at once without 'locked'."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let us emit BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY instead of
        # waiting; taking the write lock up front makes the busy timeout apply.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, ping_after_idle: float = 5.0) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # hide_parameters: a failed statement's error (logged, and in tracebacks) shows the SQL without
    # its bound values, which are names, phone numbers and notes (PHI).
    engine = sa.create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: sa.Engine, idle_seconds: float) -> None:
    """Test a pooled connection before use only if it sat idle: a restarted or idle-killed server
    shows up as a dead connection there, and the pool then connects anew.

    Why not `pool_pre_ping`: it pings on every checkout, a round trip per transaction, and a busy
    web process checks out a connection per transaction (two per request). One used a moment ago
    is alive; a disconnect during use still invalidates the pool, as SQLAlchemy always does.
    """

    @event.listens_for(engine, "checkin")
    def _stamp(dbapi_connection, record):
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy):
        if time.monotonic() - record.info.get("checked_in_at", 0.0) < idle_seconds:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # end the transaction the driver opened for it
        except Exception as error:
            raise sa.exc.DisconnectionError() from error  # the pool retries with a new connection


@functools.lru_cache(maxsize=16)
def autocommit(engine: sa.Engine) -> sa.Engine:
    """The same pool, its connections in autocommit while checked out from here (PostgreSQL)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


class Database:
    """One engine and session factory per app."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._autocommit = autocommit(self.engine) if self.dialect == "postgresql" else None

    @contextmanager
    def single_statement(self) -> Iterator[sa.Connection]:
        """A connection for statements that need no transaction: on PostgreSQL in autocommit, so
        no BEGIN and ROLLBACK round trips around them; in a request, the request's own (see
        `_request_connection`)."""
        shared = self._request_connection()
        if shared is not None:
            yield shared
            return
        with (self._autocommit or self.engine).connect() as connection:
            yield connection

    def _request_connection(self) -> sa.Connection | None:
        # PostgreSQL, in a request: one autocommit connection for all the request's work outside
        # transactions (authentication, an autocommit session), checked out of the pool once and
        # returned when the request ends (close_request_connection): a checkout and its return
        # cost about as much as a short statement.
        if self._autocommit is None or not has_request_context():
            return None
        connection = g.get(_REQUEST_CONNECTION)
        if connection is None or connection.invalidated:
            connection = self._autocommit.connect()
            setattr(g, _REQUEST_CONNECTION, connection)
        return connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any error, then run after-commit hooks."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        run_after_commit_hooks(session)

    @contextmanager
    def statements(self) -> Iterator[AutocommitSession]:
        """PostgreSQL: a session whose every statement commits by itself (autocommit), so no BEGIN
        and COMMIT round trips; after-commit hooks run once the block ends without error.

        For a use case whose writes are one statement (a `RowBatch`) and whose reads need no
        common snapshot nor a lock held across statements: each statement sees what has committed
        when it starts, and a lock ends with its statement.
        """
        if self._autocommit is None:
            raise NotImplementedError("autocommit sessions are a PostgreSQL feature")
        with self.single_statement() as connection:
            session = AutocommitSession(connection)
            yield session
        run_after_commit_hooks(session)


class AutocommitSession:
    """The part of a Session that code run in `Database.statements` uses: `connection()`,
    `get_bind()` (for its dialect) and `info` (after-commit hooks). There is no transaction to
    track and no ORM object to flush, and a real Session's bookkeeping around a connection in
    autocommit cost about as much as one of the statements it ran."""

    def __init__(self, connection: sa.Connection):
        self._connection = connection
        self.info: dict = {}

    def connection(self) -> sa.Connection:
        return self._connection

    def get_bind(self) -> sa.Connection:
        return self._connection


_REQUEST_CONNECTION = "followup_autocommit_connection"  # flask.g


def close_request_connection(_error=None) -> None:
    """Return the request's autocommit connection to the pool (a teardown_request handler)."""
    connection = g.pop(_REQUEST_CONNECTION, None)
    if connection is not None:
        connection.close()


def in_autocommit(session: Session | AutocommitSession) -> bool:
    return isinstance(session, AutocommitSession)


def get_db() -> Database:
    return current_app.extensions["followup.db"]


@contextmanager
def unit_of_work() -> Iterator[Session]:
    with get_db().unit_of_work() as session:
        yield session


# flask-smorest bounds page_size but not page; an offset past any real table is simply an empty
# page, while an unbounded one overflows the database's bigint (a 500 for a silly page number).
MAX_OFFSET = 2**31


def page_offset(page: int, page_size: int) -> int:
    """The row offset of a page, capped so a page far past the end is empty rather than an error."""
    return min((page - 1) * page_size, MAX_OFFSET)


def after_commit(session: Session, callback) -> None:
    """Run `callback()` once the session's transaction has committed (never on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


def run_after_commit_hooks(session: Session) -> None:
    callbacks = session.info.pop("after_commit", [])
    for callback in callbacks:
        callback()


_INSERTS: dict[type, tuple[sa.Insert, list[tuple[str, sa.Column]]]] = {}


def _insert_of(model: type) -> tuple[sa.Insert, list[tuple[str, sa.Column]]]:
    """The model's `INSERT ... RETURNING *` (built once) and its (attribute, column) pairs."""
    cached = _INSERTS.get(model)
    if cached is None:
        mapper = sa.inspect(model)
        table = mapper.local_table
        pairs = [(prop.key, prop.columns[0]) for prop in mapper.column_attrs]
        cached = _INSERTS[model] = (sa.insert(table).returning(*table.c), pairs)
    return cached


def insert_now(session: Session, obj):
    """INSERT one new ORM object at once, with a cached Core statement, and make it persistent.

    Why not `session.add(obj); session.flush()`: the unit of work's bookkeeping costs more than
    the statement, and a flush also writes everything else pending, one statement per table; what
    is left pending instead goes out with the commit's flush, batched with rows of its kind.
    The RETURNING row (defaults included) becomes the object's loaded state: no SELECT after.
    Only for plain mapped rows (no relationships to cascade, no mapper events), and not for leads:
    the monthly counts see only leads flushed by the ORM or written by capture's `RowBatch`.
    """
    stmt, pairs = _insert_of(type(obj))
    state = obj.__dict__
    params = {column.key: state[key] for key, column in pairs if key in state}
    row = session.execute(stmt, params).one()
    for key, column in pairs:
        obj.__dict__[key] = row._mapping[column]  # as the ORM loads a row: no setter, no history
    make_transient_to_detached(obj)  # as if loaded: no pending changes, nothing expired
    session.add(obj)
    return obj


# --- writing a batch of related rows in one round trip ------------------------------------------


_COLUMN_DEFAULTS: dict[type, list[tuple[str, str, object]]] = {}


def _column_defaults(model: type) -> list[tuple[str, str, object]]:
    """(attribute, column, default factory) of each non-key column of `model`, worked out once."""
    cached = _COLUMN_DEFAULTS.get(model)
    if cached is None:
        cached = []
        for prop in sa.inspect(model).column_attrs:
            column = prop.columns[0]
            if column.primary_key:
                continue  # a key not given is the database's to assign
            default = column.default
            if default is None:
                factory = _no_value
            elif default.is_callable:
                factory = functools.partial(default.arg, None)
            else:
                factory = functools.partial(_constant, default.arg)
            cached.append((prop.key, column.key, factory))
        _COLUMN_DEFAULTS[model] = cached
    return cached


def _no_value():
    return None


def _constant(value):
    return value


def new_row(model: type, **values):
    """A new ORM object with every column set: the given values, else the column's Python default.

    Rows written by `RowBatch` skip the ORM's flush, which is what would apply the defaults; with
    every column set, the statement of a table has one shape, built and compiled once.
    """
    for key, _, factory in _column_defaults(model):
        if key not in values:
            values[key] = factory()
    return _instance(model, values)


def _instance(model: type, values: dict):
    """A transient `model` object holding `values` (by attribute), built as the ORM builds a loaded
    one: the values go straight into its __dict__ instead of through each attribute's setter
    (instrumented: tracked changes and events), which cost more than the rest of a capture's
    Python. The object reads like any other; it has no pending changes to flush."""
    obj = manager_of_class(model).new_instance()
    obj.__dict__.update(values)
    return obj


def row_values(model: type, **values) -> dict:
    """`new_row` without the ORM object: the row's values by column name (for `RowBatch.insert`)."""
    row = {}
    for key, column, factory in _column_defaults(model):
        row[column] = values.pop(key) if key in values else factory()
    if values:  # what is left is the key, or a mistake
        unknown = set(values) - {c.key for c in sa.inspect(model).primary_key}
        if unknown:
            raise TypeError(f"{model.__name__} has no column {', '.join(sorted(unknown))}")
        row.update(values)
    return row


def loaded(session: Session, model: type, row: sa.Row):
    """A `model` object from a RETURNING * or SELECT * `row`, persistent in `session` as if the ORM
    had loaded it (cheaper than the constructor: no setter, history or event per attribute)."""
    mapping = row._mapping
    values = {key: mapping[column] for key, column in _insert_of(model)[1]}
    mapper = sa.inspect(model)
    key = mapper.identity_key_from_primary_key(
        [values[mapper.get_property_by_column(column).key] for column in mapper.primary_key]
    )
    present = session.identity_map.get(key)
    if present is not None:
        return present  # as the ORM does: the session's object wins over a fresh row
    obj = _instance(model, values)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def detached_copy(model: type, values: dict):
    """A `model` object from its table's columns in `values` (by Column; other tables' may be
    there too), outside any session: for reading, when an ORM load would cost more than the query."""
    return _instance(model, {key: values[column] for key, column in _insert_of(model)[1]})


_PLAIN_INSERTS: dict[type, sa.Insert] = {}


def _plain_insert_of(model: type) -> sa.Insert:
    if model not in _PLAIN_INSERTS:
        _PLAIN_INSERTS[model] = sa.insert(model.__table__)
    return _PLAIN_INSERTS[model]


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
        stmt = _plain_insert_of(model)
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


def _column_values(obj) -> dict:
    state = obj.__dict__
    return {column.key: state[key] for key, column in _insert_of(type(obj))[1] if key in state}


_SEQUENCE_READS: dict[tuple, Frozen] = {}


def allocate_ids(session: Session, counts: dict[type, int]) -> dict[type, list[int]]:
    """Reserve new ids for rows of these models, ascending, in one round trip.

    Rows given their ids up front can refer to each other (an event naming its lead, a job naming
    its events) and still be written together by a `RowBatch`. PostgreSQL takes them from the
    tables' serial sequences; SQLite from max(id), which is safe because the transaction already
    holds the database's write lock (BEGIN IMMEDIATE, see `_configure_sqlite`).
    """
    models = [model for model, count in counts.items() if count > 0]
    if session.get_bind().dialect.name != "postgresql":
        allocated = {}
        for model in models:
            table = model.__table__
            last = session.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
            allocated[model] = list(range(last + 1, last + 1 + counts[model]))
        return allocated
    key = tuple((model, counts[model]) for model in models)
    stmt = _SEQUENCE_READS.get(key)
    if stmt is None:
        stmt = _SEQUENCE_READS[key] = Frozen(sa.select(*new_id_columns(dict(key))))
    [row] = stmt.execute(session.connection())
    return ids_from(counts, row)


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
    otherwise parse a long statement (a `RowBatch`) for %(name)s placeholders on every execution
    (it caches only short ones). Returns plain tuples; a SELECT's values go through the result
    processors of its columns' types. Driver errors are raised as SQLAlchemy's (IntegrityError...).
    """

    def __init__(self, statement: sa.Executable):
        self.statement = statement
        self._compiled: dict[str, tuple] = {}

    def execute(self, connection: sa.Connection, params: dict | None = None) -> list[tuple]:
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
                raise sa.exc.DBAPIError.instance(sql, values, error, psycopg.Error) from error
            if cursor.pgresult is None or cursor.pgresult.status != psycopg.pq.ExecStatus.TUPLES_OK:
                return []
            rows, type_codes = cursor.fetchall(), self._type_codes(cursor, dialect)
        processors = self._result_processors(dialect, type_codes)
        if processors is None:
            return [tuple(row) for row in rows]
        return [tuple(v if p is None else p(v) for p, v in zip(processors, row, strict=True)) for row in rows]

    def _compile(self, dialect) -> tuple:
        cached = self._compiled.get(dialect.name)
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
            cached = self._compiled[dialect.name] = (compiled.string, binds)
        return cached

    def _type_codes(self, cursor, dialect) -> list | None:
        """The driver's column types, needed only until the result processors are made (psycopg
        builds `description` anew on every access)."""
        if ("results", dialect.name) in self._compiled:
            return None
        return [column.type_code for column in cursor.description]

    def _result_processors(self, dialect, type_codes: list | None) -> list | None:
        """A SELECT's column types' result processors (None: nothing to process), made on first use:
        some depend on the type the driver reports."""
        key = ("results", dialect.name)
        if key not in self._compiled:
            processors = None
            if isinstance(self.statement, sa.Select):
                columns = list(self.statement.selected_columns)
                codes = type_codes or [None] * len(columns)
                processors = [
                    column.type.dialect_impl(dialect).result_processor(dialect, code)
                    for column, code in zip(columns, codes, strict=True)
                ]
            self._compiled[key] = processors if processors and any(processors) else None
        return self._compiled[key]


def _raw_cursor(connection: sa.Connection) -> psycopg.RawCursor:
    """The driver connection's RawCursor for Frozen statements, made once per connection: making a
    cursor (and its adapters) for each statement was a visible part of a short statement's cost.
    Kept in the pool's record of the connection, which forgets it if the connection is replaced."""
    driver_connection = connection.connection.driver_connection
    cursor = connection.info.get(_RAW_CURSOR)
    if cursor is None or cursor.closed or cursor.connection is not driver_connection:
        cursor = connection.info[_RAW_CURSOR] = psycopg.RawCursor(driver_connection)
    return cursor


_RAW_CURSOR = "frozen.raw_cursor"
_BATCH_STATEMENTS: dict[tuple, Frozen] = {}
_MAX_BATCH_SHAPES = 512  # a bound on the cache; real code has a handful of shapes


class RowBatch:
    """Rows of several tables (inserts or upserts) written together by `write`.

    On PostgreSQL the whole batch is one statement, its rows' INSERTs chained as data-modifying
    CTEs: one round trip and one statement's overhead instead of one per row, which is most of
    what creating a lead costs. Foreign keys hold because PostgreSQL checks them at the end of the
    statement. Elsewhere (SQLite, in-process) the rows are written one by one, in the order added.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[sa.Insert, dict]] = []
        self._guard: tuple[sa.Select, dict] | None = None

    def guard(self, select: sa.Select, params: dict) -> None:
        """Write the rows only if `select` (with its bound `params`) finds a row when the batch runs;
        `write` then says whether it did. PostgreSQL only: the select is the statement's first CTE,
        so a row lock it takes (FOR SHARE) is waited for and its condition checked again on the
        row's newest version, as a statement's own locks are in READ COMMITTED."""
        self._guard = (select, params)

    def add(self, obj) -> None:
        """A new ORM object (see `new_row`; its id from `allocate_ids`) to write. It stays outside
        the session, as built: the caller reads it (to answer the request, say); attaching it to
        the session would cost more than the row's INSERT."""
        self._rows.append((_plain_insert_of(type(obj)), _column_values(obj)))

    def insert(self, model: type, **values) -> dict:
        """A row of `model` that is written and forgotten (no ORM object: cheaper); returns its values."""
        row = row_values(model, **values)
        self._rows.append((_plain_insert_of(model), row))
        return row

    def add_values(self, statement: sa.Insert, values: dict) -> None:
        """A row given as a Core INSERT (or upsert) and its values (the same keys on every call)."""
        self._rows.append((statement, values))

    def write(self, session: Session) -> bool:
        """Write the rows; False if a guard (see `guard`) found nothing and nothing was written."""
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            statement, params = self._one_statement()
            rows = statement.execute(connection, params)
            return self._guard is None or rows[0][0] > 0
        if self._guard is not None:
            raise NotImplementedError("a guarded RowBatch is written by one PostgreSQL statement")
        for statement, values in self._rows:
            connection.execute(statement, values)
        return True

    def _one_statement(self) -> tuple[Frozen, dict]:
        # The statements themselves (module constants) and the keys: a shape seen before is reused.
        guard, guard_params = self._guard or (None, {})
        shape = (guard, *((statement, tuple(values)) for statement, values in self._rows))
        params = {
            f"r{i}_{key}": value for i, (_, values) in enumerate(self._rows) for key, value in values.items()
        }
        statement = _BATCH_STATEMENTS.get(shape)
        if statement is None:
            if len(_BATCH_STATEMENTS) >= _MAX_BATCH_SHAPES:
                _BATCH_STATEMENTS.clear()
            # Frozen: an upsert in the batch would make SQLAlchemy compile it on every write.
            statement = _BATCH_STATEMENTS[shape] = Frozen(
                self._chained() if guard is None else self._guarded(guard.cte("guard"))
            )
        return statement, params | guard_params

    def _chained(self) -> sa.Insert:
        # INSERT ... VALUES of each row, all but the last as data-modifying CTEs.
        parts = [
            base.values({key: sa.bindparam(f"r{i}_{key}") for key in values})
            for i, (base, values) in enumerate(self._rows)
        ]
        *first, last = parts
        return last.add_cte(*(part.cte(f"row_{i}") for i, part in enumerate(first)))

    def _guarded(self, guard: sa.CTE) -> sa.Select:
        # Each row as INSERT ... SELECT <its values> FROM guard: one row if the guard found one,
        # none otherwise. The values are cast to their columns' types (a SELECT's parameters have
        # no column to take a type from). The statement answers how many rows the guard found.
        parts = []
        for i, (base, values) in enumerate(self._rows):
            types = {key: base.table.c[key].type for key in values}
            selected = [sa.cast(sa.bindparam(f"r{i}_{key}", type_=t), t) for key, t in types.items()]
            insert = base.from_select(list(values), sa.select(*selected).select_from(guard))
            parts.append(insert.cte(f"row_{i}"))
        return sa.select(sa.func.count()).select_from(guard).add_cte(*parts)
