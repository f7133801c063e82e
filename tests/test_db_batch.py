"""RowBatch, Frozen and allocate_ids: the write path of lead capture, on the test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.db import Frozen, JSONType, RowBatch, UTCDateTime, allocate_ids, make_engine, new_row

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


def _write_family(engine, name: str, children: int) -> int:
    with Session(engine) as session, session.begin():
        ids = allocate_ids(session, {Parent: 1, Child: children})
        batch = RowBatch()
        parent_id = ids[Parent][0]
        batch.add(new_row(Parent, id=parent_id, name=name, at=datetime(2026, 5, 1, 9, tzinfo=UTC)))
        for child_id in ids[Child]:
            batch.insert(Child, id=child_id, parent_id=parent_id, note=f"child {child_id}")
        batch.add_values(_upsert(engine.dialect.name), {"key": "families", "hits": 1})
        batch.write(session)
    return parent_id


def _count(engine, model) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(model.__table__)).scalar_one()


def test_a_batch_writes_rows_that_refer_to_each_other_and_upserts(engine):
    first = _write_family(engine, "first", children=2)
    second = _write_family(engine, "second", children=3)
    with engine.connect() as conn:
        children = conn.execute(sa.select(Child.parent_id, sa.func.count()).group_by(Child.parent_id)).all()
        hits = conn.execute(sa.select(Counter.hits).where(Counter.key == "families")).scalar_one()
        tags = conn.execute(sa.select(Parent.tags).where(Parent.id == first)).scalar_one()
    assert dict(children) == {first: 2, second: 3}
    assert hits == 2  # inserted by the first batch, incremented by the second
    assert tags == []  # the column's Python default, written explicitly


def test_a_failing_row_leaves_nothing_of_its_batch(engine):
    _write_family(engine, "taken", children=1)
    parents, children = _count(engine, Parent), _count(engine, Child)
    with pytest.raises(sa.exc.IntegrityError):
        _write_family(engine, "taken", children=4)  # the parent's name is unique
    assert (_count(engine, Parent), _count(engine, Child)) == (parents, children)


_PARENT_NAMED = (
    sa.select(Parent.id).where(Parent.name == sa.bindparam("guard_name")).with_for_update(read=True)
)


def _guarded_family(engine, guard_name: str, name: str) -> bool:
    with Session(engine) as session, session.begin():
        ids = allocate_ids(session, {Parent: 1, Child: 1})
        batch = RowBatch()
        batch.guard(_PARENT_NAMED, {"guard_name": guard_name})
        at = datetime(2026, 5, 1, 9, tzinfo=timezone(timedelta(hours=-7)))
        batch.add(new_row(Parent, id=ids[Parent][0], name=name, tags=["vip", 3], at=at))
        batch.insert(Child, id=ids[Child][0], parent_id=ids[Parent][0], note=None)
        batch.add_values(_upsert(engine.dialect.name), {"key": "guarded", "hits": 1})
        return batch.write(session)


def test_a_guarded_batch_is_written_only_if_its_guard_finds_a_row(engine):
    if engine.dialect.name != "postgresql":
        with pytest.raises(NotImplementedError):
            _guarded_family(engine, "anyone", "never")
        return
    _write_family(engine, "guardian", children=1)
    parents, children = _count(engine, Parent), _count(engine, Child)
    assert _guarded_family(engine, "nobody by that name", "unguarded") is False
    assert (_count(engine, Parent), _count(engine, Child)) == (parents, children)

    assert _guarded_family(engine, "guardian", "guarded") is True
    with engine.connect() as conn:
        tags, at = conn.execute(sa.select(Parent.tags, Parent.at).where(Parent.name == "guarded")).one()
        hits = conn.execute(sa.select(Counter.hits).where(Counter.key == "guarded")).scalar_one()
    # Every value went through its column's type: JSON, a time made UTC, the upsert's count.
    assert (tags, at, hits) == (["vip", 3], datetime(2026, 5, 1, 16, tzinfo=UTC), 1)
    assert (_count(engine, Parent), _count(engine, Child)) == (parents + 1, children + 1)


def test_reserved_ids_are_ascending_and_never_handed_out_twice(engine):
    with Session(engine) as session, session.begin():
        first = allocate_ids(session, {Child: 3})[Child]
        batch = RowBatch()
        parent_id = allocate_ids(session, {Parent: 1})[Parent][0]
        batch.add(new_row(Parent, id=parent_id, name="ids", at=datetime.now(UTC)))
        for child_id in first:
            batch.insert(Child, id=child_id, parent_id=parent_id)
        batch.write(session)
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
