"""The engines `make_engine` builds: plain URLs in, our dialects out; a SQLite connection set up for
several writing processes (WAL, busy timeout, foreign keys, the write lock taken at BEGIN)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from app.platform.db import make_engine
from app.platform.db.engine import PsycopgPingedWhenIdle, SQLiteForManyWriters


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///followup.db",
        "sqlite+pysqlite:///followup.db",
        "sqlite://",
        "postgresql://postgres@127.0.0.1/followup",
        "postgres://postgres@127.0.0.1/followup",
        "postgresql+psycopg://postgres@127.0.0.1/followup",
    ],
)
def test_a_plain_url_gets_our_dialect_under_its_databases_name(url):
    engine = make_engine(url)  # connects to nothing until used
    try:
        if url.startswith("sqlite"):
            assert (type(engine.dialect), engine.dialect.name) == (SQLiteForManyWriters, "sqlite")
        else:
            assert (type(engine.dialect), engine.dialect.name) == (PsycopgPingedWhenIdle, "postgresql")
    finally:
        engine.dispose()


def test_a_url_of_another_database_is_refused_by_its_scheme():
    with pytest.raises(ValueError, match="'mysql'"):
        make_engine("mysql://root@127.0.0.1/followup")


@pytest.fixture
def sqlite_file(tmp_path):
    return tmp_path / "engine.db"


@pytest.fixture
def engine(sqlite_file):
    engine = make_engine(f"sqlite:///{sqlite_file}")
    yield engine
    engine.dispose()


def test_a_sqlite_connection_is_set_up_for_several_writers(engine):
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
        # SQLAlchemy's own setup of the connection still runs: its REGEXP function.
        matched = conn.exec_driver_sql("SELECT 'follow-up' REGEXP '^follow'").scalar_one()
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 1}
    assert matched == 1


def test_a_sqlite_transaction_holds_the_write_lock_from_its_begin(engine, sqlite_file):
    other = sqlite3.connect(sqlite_file, timeout=0, isolation_level=None)  # another process's writer
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            conn.commit()
            with conn.begin():
                conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()  # read only, so far
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_sqlite_savepoint_rolls_back_alone(engine):
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
        conn.commit()
        with conn.begin():
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            savepoint = conn.begin_nested()
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            savepoint.rollback()
        assert conn.execute(sa.text("SELECT n FROM t")).scalars().all() == [1]
