"""The unit of work (app/platform/db/uow.py): it holds a Session, and its `commit()` writes what it
collected (the events' one processing job, the jobs together), commits, then publishes; a
rollback forgets all of it. Nothing else hangs off it, and it stays short enough to read at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from app.platform.db import Database
from app.platform.db import uow as uow_module


class _Base(DeclarativeBase):
    pass


class Fact(_Base):
    __tablename__ = "uow_fact"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(20))


@dataclass(frozen=True)
class FakeJob:
    """A ledger job as the unit sees one: `write_all(uow, jobs)` writes the unit's jobs together."""

    name: str
    written: list = field(compare=False)

    @staticmethod
    def write_all(uow, jobs) -> None:
        jobs[0].written.append([job.name for job in jobs])


@dataclass
class Told:
    """A publication: what it saw when the unit published it."""

    db: Database
    seen: list = field(default_factory=list)

    def publish(self) -> None:
        with self.db.unit_of_work() as other:  # another transaction: only what was committed
            self.seen.append(sorted(other.scalars(sa.select(Fact.name))))


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'uow.db'}")
    _Base.metadata.create_all(database.engine)
    yield database
    database.engine.dispose()


def test_the_unit_holds_its_session_rather_than_being_one(db):
    with db.unit_of_work() as uow:
        assert not isinstance(uow, Session) and isinstance(uow.session, Session)
        fact = uow.add(Fact(name="held"))
        assert fact in uow and fact in uow.session and list(uow.new) == [fact]


def test_the_commit_writes_the_events_job_and_the_jobs_together_commits_then_publishes(db):
    written, told = [], Told(db)

    def processing_job(events):
        return FakeJob(f"events {[event.id for event in events]}", written)

    with db.unit_of_work() as uow:
        uow.schedule(FakeJob("first", written))
        kept = Fact(name="kept")
        uow.emit(kept, processing_job=processing_job)
        savepoint = uow.begin_nested()
        uow.emit(Fact(name="undone"), processing_job=processing_job)
        savepoint.rollback()  # its event is gone: the processing job does not name it
        uow.publish_after_commit(told)
        assert written == [] and told.seen == []  # nothing before the commit
    assert written == [["first", f"events {[kept.id]}"]]  # one statement for the unit's jobs
    assert told.seen == [["kept"]]  # published after the commit: another transaction sees the row


def test_a_rolled_back_unit_forgets_its_events_jobs_and_publications(db):
    written, told = [], Told(db)
    with db.unit_of_work() as uow:
        uow.schedule(FakeJob("dropped", written))
        uow.emit(Fact(name="dropped"), processing_job=lambda events: FakeJob("events", written))
        uow.publish_after_commit(told)
        uow.rollback()
        uow.add(Fact(name="after"))
    assert written == [] and told.seen == []
    with db.unit_of_work() as uow:
        assert list(uow.scalars(sa.select(Fact.name))) == ["after"]


def test_the_unit_carries_no_settings_client_or_cache(db):
    """A use case is handed the settings, a client or a memo of its transaction's reads (issue 61):
    none is on its unit, nor reached through it as the Session's."""
    with db.unit_of_work() as uow:
        for name in ("settings", "redis", "cache", "info", "dispatcher"):
            assert not hasattr(uow, name), name


def test_the_unit_of_work_reads_in_about_a_hundred_lines():
    assert len(Path(uow_module.__file__).read_text().splitlines()) <= 105
