"""The engine's psycopg cursor describes results as plain DB-API tuples, the same names and type
oids psycopg's own cursor gives, so SQLAlchemy maps every result as before."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from app.platform.db import make_engine
from tests.requirements import need_postgres

_SAMPLE = (
    "SELECT 1 AS n, 'x'::text AS word, now() AS at, '{\"a\": 1}'::jsonb AS doc, "
    "ARRAY[1, 2] AS numbers, NULL::date AS day"
)


@pytest.fixture
def engine(migrated_database):
    need_postgres(
        migrated_database, "the cursor factory is psycopg's (PostgreSQL); SQLite's driver has its own"
    )
    engine = make_engine(migrated_database)
    yield engine
    engine.dispose()


def _psycopg_description(url: str, sql: str):
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cursor = conn.execute(sql)
        return None if cursor.description is None else [(c.name, c.type_code) for c in cursor.description]


def test_a_result_is_described_by_plain_tuples_of_psycopgs_names_and_type_oids(engine, migrated_database):
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute(_SAMPLE)
        description = cursor.description
    assert all(type(column) is tuple and len(column) == 7 for column in description)
    assert [(name, oid) for name, oid, *_ in description] == _psycopg_description(migrated_database, _SAMPLE)


def test_sqlalchemy_reads_results_by_name_through_it(engine):
    with engine.connect() as conn:
        row = conn.execute(sa.text(_SAMPLE)).mappings().one()
    assert row["n"] == 1 and row["word"] == "x" and row["doc"] == {"a": 1} and row["numbers"] == [1, 2]
    assert row["day"] is None and row["at"].tzinfo is not None


def test_statements_without_columns_are_described_as_psycopg_describes_them(engine, migrated_database):
    with engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("CREATE TEMPORARY TABLE cursor_probe (id int)")
        assert cursor.description is None  # a command: no result set
        cursor.execute("SELECT")
        assert cursor.description == []  # a result set of no columns, as psycopg says
        cursor.execute("INSERT INTO cursor_probe VALUES (1) RETURNING id")
        assert [column[0] for column in cursor.description] == ["id"]
    assert _psycopg_description(migrated_database, "SELECT") == []
