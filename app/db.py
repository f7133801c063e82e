"""Engine, session factory, declarative Base and the unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, make_transient_to_detached, sessionmaker

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


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    """One engine and session factory per app."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(bind=self.engine, expire_on_commit=False)

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


# Called with (session, obj) after each `insert_now`: the ORM's flush hooks never see those rows,
# so code that watches new rows of a kind (analytics' monthly counts) registers here too.
INSERTED_NOW_HOOKS: list = []


def insert_now(session: Session, obj):
    """INSERT one new ORM object at once, with a cached Core statement, and make it persistent.

    Why not `session.add(obj); session.flush()`: the unit of work's bookkeeping costs more than
    the statement, and a flush also writes everything else pending, one statement per table; what
    is left pending instead goes out with the commit's flush, batched with rows of its kind.
    The RETURNING row (defaults included) becomes the object's loaded state: no SELECT after.
    Only for plain mapped rows (no relationships to cascade, no mapper events).
    """
    stmt, pairs = _insert_of(type(obj))
    state = obj.__dict__
    params = {column.key: state[key] for key, column in pairs if key in state}
    row = session.execute(stmt, params).one()
    for key, column in pairs:
        setattr(obj, key, row._mapping[column])
    make_transient_to_detached(obj)  # as if loaded: no pending changes, nothing expired
    session.add(obj)
    for hook in INSERTED_NOW_HOOKS:
        hook(session, obj)
    return obj
