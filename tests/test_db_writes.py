"""New rows written without the ORM's flush (app/platform/db/writes.py): a unit's new rows of several
tables in one statement at its flush (PostgreSQL; SQLite flushes as the ORM does), `insert_now`,
`insert_once`.
Whatever the path, what a reader finds afterwards is what the ORM's flush would have stored."""

from __future__ import annotations

import gc
import itertools
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from app.platform.db import JSONType, UnitOfWork, UTCDateTime, insert_now, insert_once, make_engine
from app.platform.db.writes import WritesTogether
from tests.requirements import need_postgres

SUFFIX = uuid.uuid4().hex[:8]  # tables of this test run only


class _Base(DeclarativeBase):
    pass


class Note(_Base):
    __tablename__ = f"writes_note_{SUFFIX}"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(50), unique=True)
    tags: Mapped[list] = mapped_column(JSONType, default=list)
    pinned: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Mark(_Base):
    __tablename__ = f"writes_mark_{SUFFIX}"
    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(sa.ForeignKey(Note.id))
    word: Mapped[str | None] = mapped_column(sa.Text)


@pytest.fixture(scope="module")
def units(migrated_database):
    engine = make_engine(migrated_database)
    _Base.metadata.create_all(engine)
    sessions = sessionmaker(bind=engine, class_=WritesTogether, expire_on_commit=False)
    yield lambda: UnitOfWork(sessions(), database=None)
    _Base.metadata.drop_all(engine)
    engine.dispose()


def _stored(units, model) -> list[tuple]:
    with units() as uow:
        return [tuple(row) for row in uow.execute(sa.select(model.__table__).order_by(model.id))]


def _clear(units) -> None:
    with units() as uow:
        uow.execute(sa.delete(Mark.__table__))
        uow.execute(sa.delete(Note.__table__))
        uow.commit()


AT = datetime(2026, 11, 26, 9, 30, tzinfo=timezone(timedelta(hours=-5)))


def test_new_rows_of_several_tables_are_stored_with_their_defaults_and_ids_in_the_order_added(units):
    _clear(units)
    with units() as uow:
        first = insert_now(uow, Note(title="first", at=AT))  # its id needed now
        marks = [Mark(note_id=first.id, word=word) for word in ("a", "b", "c")]
        second = Note(title="second", tags=["x"], at=AT)
        uow.add(marks[0])
        uow.add(second)
        uow.add_all(marks[1:])
        uow.commit()
        assert all(sa.inspect(obj).persistent for obj in [first, second, *marks])
        assert not uow.dirty and not uow.new
    assert first.id < second.id
    assert [m.id for m in marks] == sorted(m.id for m in marks)
    assert _stored(units, Note) == [
        (first.id, "first", [], False, AT.astimezone(UTC)),
        (second.id, "second", ["x"], False, AT.astimezone(UTC)),
    ]
    assert _stored(units, Mark) == [(mark.id, first.id, mark.word) for mark in marks]
    assert [(m.note_id, m.word) for m in marks] == [(first.id, "a"), (first.id, "b"), (first.id, "c")]
    assert second.pinned is False and first.tags == []  # the defaults, on the objects too


def test_a_row_that_breaks_a_constraint_stores_none_of_the_units_rows(units):
    _clear(units)
    with units() as uow:
        uow.add(Note(title="kept", at=AT))
        uow.commit()
    with units() as uow:
        uow.add_all([Note(title="new", at=AT), Note(title="kept", at=AT)])
        with pytest.raises(sa.exc.IntegrityError):
            uow.commit()
        uow.rollback()
    assert [row[1] for row in _stored(units, Note)] == ["kept"]


def test_new_rows_beside_a_changed_one_are_stored_with_the_change(units):
    _clear(units)
    with units() as uow:
        note = Note(title="before", at=AT)
        uow.add(note)
        uow.commit()
    with units() as uow:
        loaded = uow.get(Note, note.id)
        loaded.title = "after"
        uow.add_all([Mark(note_id=note.id, word="one"), Mark(note_id=note.id, word="two")])
        uow.commit()
    assert [row[1] for row in _stored(units, Note)] == ["after"]
    assert [row[2] for row in _stored(units, Mark)] == ["one", "two"]


def test_a_new_row_may_take_a_unique_value_a_changed_row_gives_up_in_the_same_flush(units):
    _clear(units)
    with units() as uow:
        note = Note(title="current", at=AT)
        uow.add(note)
        uow.commit()
    with units() as uow:
        uow.get(Note, note.id).title = "archived"
        uow.add_all([Note(title="current", at=AT), Mark(note_id=note.id, word="moved")])
        uow.commit()
    assert [row[1] for row in _stored(units, Note)] == ["archived", "current"]


def test_rows_added_in_a_savepoint_that_rolled_back_are_not_stored(units):
    _clear(units)
    with units() as uow:
        uow.add_all([Note(title="outer", at=AT), Note(title="outer too", at=AT)])
        savepoint = uow.begin_nested()
        uow.add_all([Note(title="inner", at=AT), Note(title="inner too", at=AT)])
        uow.flush()
        savepoint.rollback()
        uow.add_all([Note(title="after", at=AT), Note(title="after too", at=AT)])
        uow.commit()
    assert [row[1] for row in _stored(units, Note)] == ["outer", "outer too", "after", "after too"]


def test_rows_written_in_a_savepoint_that_rolled_back_leave_the_unit(units):
    _clear(units)
    with units() as uow:
        savepoint = uow.begin_nested()
        inner = [Note(title="refused", at=AT), Note(title="refused too", at=AT)]
        uow.add_all(inner)
        uow.flush()  # written in the savepoint
        savepoint.rollback()  # a refusal: nothing of it stays
        assert not any(note in uow for note in inner)  # as if never added: no event of it is named
        uow.add(Note(title="after", at=AT))
        uow.commit()
    assert [row[1] for row in _stored(units, Note)] == ["after"]


def test_a_read_after_adding_sees_the_new_rows(units):
    _clear(units)
    with units() as uow:
        uow.add_all([Note(title="seen", at=AT), Note(title="seen too", at=AT)])
        titles = uow.scalars(sa.select(Note.title).order_by(Note.id)).all()  # autoflush
        uow.commit()
    assert titles == ["seen", "seen too"]


def test_insert_once_stores_a_row_once_and_answers_none_for_a_value_taken(units):
    """A redelivered job's notice: the second insert of a taken unique value adds nothing, and the
    unit goes on (on PostgreSQL no unique violation aborts it)."""
    _clear(units)
    with units() as uow:
        pending = Note(title="pending", at=AT)
        uow.add(pending)
        first = insert_once(uow, Note(title="once", at=AT), unique="title")
        assert first is not None and sa.inspect(first).persistent and first.id > pending.id
        assert first.tags == [] and first.pinned is False  # its defaults, read without a query
        assert insert_once(uow, Note(title="once", tags=["again"], at=AT), unique="title") is None
        uow.add(Note(title="after", at=AT))
        uow.commit()
    stored = [(row[1], row[2]) for row in _stored(units, Note)]
    assert stored == [("pending", []), ("once", []), ("after", [])]


def test_insert_once_in_a_savepoint_that_rolled_back_is_not_stored(units):
    _clear(units)
    with units() as uow:
        savepoint = uow.begin_nested()
        inner = insert_once(uow, Note(title="inner", at=AT), unique="title")
        savepoint.rollback()
        assert inner not in uow
        assert insert_once(uow, Note(title="inner", at=AT), unique="title") is not None  # free again
        uow.commit()
    assert [row[1] for row in _stored(units, Note)] == ["inner"]


def test_units_of_ever_new_sizes_do_not_grow_the_process(units, migrated_database):
    """A unit's rows go out in one statement compiled per shape (its tables and row counts). Units
    of ever new shapes (a sweep's batches, whose sizes vary run by run) must not keep a statement
    each for ever: the most recent shapes are kept, and a batch larger than a handful is flushed as
    the ORM flushes."""
    need_postgres(migrated_database, "one statement for a unit's rows is PostgreSQL's")
    _clear(units)
    titles = itertools.count()
    with units() as uow:
        note_id = insert_now(uow, Note(title="base", at=AT)).id
        uow.commit()

    def write(notes: int, marks: int, *, marks_first: bool = False) -> None:
        with units() as uow:
            new_notes = [Note(title=f"n{next(titles)}", at=AT) for _ in range(notes)]
            new_marks = [Mark(note_id=note_id, word="w") for _ in range(marks)]
            uow.add_all(new_marks + new_notes if marks_first else new_notes + new_marks)
            uow.commit()

    def retained(writes_of_a_round) -> int:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        writes_of_a_round()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before

    small = [(notes, marks) for notes in range(1, 11) for marks in range(1, 16)]  # 150 shapes
    tracemalloc.start()
    try:
        first = retained(lambda: [write(n, m) for n, m in small])
        # As many new shapes of the same sizes (another table first): kept instead of the first.
        again = retained(lambda: [write(n, m, marks_first=True) for n, m in small])
        large = retained(lambda: [write(n, 0) for n in range(100, 150)])  # 50 batches, as the ORM flushes
    finally:
        tracemalloc.stop()
    assert again < first / 2 and large < first / 2, (first, again, large)
    stored = sum(n + m for n, m in small) * 2 + sum(range(100, 150)) + 1
    assert len(_stored(units, Note)) + len(_stored(units, Mark)) == stored
