"""Frozen and allocate_ids: the fast write path, on the test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.platform.db import Frozen, JSONType, UTCDateTime, allocate_ids, make_engine, new_row

SUFFIX = uuid.uuid4().hex[:8]  # tables of this test run only


class _Base(DeclarativeBase):
    pass


class Parent(_Base):
    __tablename__ = f"batch_parent_{SUFFIX}"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), unique=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Child(_Base):
    __tablename__ = f"batch_child_{SUFFIX}"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(sa.ForeignKey(Parent.id))
    note: Mapped[str | None] = mapped_column(sa.Text)


class Counter(_Base):
    __tablename__ = f"batch_counter_{SUFFIX}"
    key: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    hits: Mapped[int] = mapped_column(sa.Integer)


def _upsert(dialect: str) -> sa.Insert:
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(Counter.__table__)
    return insert.on_conflict_do_update(
        index_elements=["key"], set_={"hits": Counter.hits + insert.excluded.hits}
    )


@pytest.fixture(scope="module")
def engine(migrated_database):
    engine = make_engine(migrated_database)
    _Base.metadata.create_all(engine)
    yield engine
    _Base.metadata.drop_all(engine)
    engine.dispose()


def test_reserved_ids_are_ascending_and_never_handed_out_twice(engine):
    with Session(engine) as session, session.begin():
        first = allocate_ids(session, {Child: 3})[Child]
        parent_id = allocate_ids(session, {Parent: 1})[Parent][0]
        session.add(new_row(Parent, id=parent_id, name="ids", at=datetime.now(UTC)))
        session.flush()
        session.add_all(new_row(Child, id=child_id, parent_id=parent_id) for child_id in first)
    with Session(engine) as session, session.begin():
        second = allocate_ids(session, {Child: 2})[Child]
    assert first == sorted(first) and len(set(first)) == 3
    assert min(second) > max(first)


def test_frozen_statements_process_values_both_ways(engine):
    at = datetime(2026, 11, 22, 8, 30, tzinfo=timezone(timedelta(hours=-5)))
    insert = Frozen(
        sa.insert(Parent.__table__).values(
            name=sa.bindparam("name"), tags=sa.bindparam("tags"), at=sa.bindparam("at")
        )
    )
    select = Frozen(
        sa.select(Parent.__table__.c.tags, Parent.__table__.c.at).where(
            Parent.__table__.c.name == sa.bindparam("name")
        )
    )
    with engine.begin() as conn:
        insert.execute(conn, {"name": "frozen", "tags": ["a", "b"], "at": at})
        [(tags, stored_at)] = select.execute(conn, {"name": "frozen"})
    assert tags == ["a", "b"]
    assert stored_at == at and stored_at.tzinfo is not None and stored_at.utcoffset() == timedelta(0)


def test_frozen_upserts_run_again_and_driver_errors_are_sqlalchemys(engine):
    upsert = Frozen(_upsert(engine.dialect.name).values(key=sa.bindparam("key"), hits=sa.bindparam("hits")))
    with engine.begin() as conn:
        upsert.execute(conn, {"key": "frozen", "hits": 2})
        upsert.execute(conn, {"key": "frozen", "hits": 3})
        hits = conn.execute(sa.select(Counter.hits).where(Counter.key == "frozen")).scalar_one()
    assert hits == 5
    duplicate = Frozen(sa.insert(Counter.__table__).values(key=sa.bindparam("key"), hits=1))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        duplicate.execute(conn, {"key": "frozen"})
