"""Reads run together (app/platform/db/together.py): a unit's independent statements at once, each on
a connection of its own, give what they give one after the other, all in the unit's one snapshot."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.leads.models import LeadSource
from app.platform import clock
from app.platform.db import plan_for_reports, read_later, read_together
from tests.requirements import need_postgres


def _sources(tenant) -> list:
    """Statements over the clinic's lead sources: their count, their names in order, the first by id."""
    mine = LeadSource.clinic_id == tenant.id
    return [
        sa.select(sa.func.count()).where(mine),
        sa.select(LeadSource.name).where(mine).order_by(LeadSource.name),
        sa.select(LeadSource.id, LeadSource.category).where(mine).order_by(LeadSource.id).limit(1),
    ]


def _add_source(db, tenant, name: str) -> None:
    now = clock.now()
    with db.engine.begin() as connection:
        connection.execute(
            sa.insert(LeadSource).values(
                clinic_id=tenant.id, name=name, category="OTHER", coordinator_ids=[],
                created_at=now, updated_at=now,
            )
        )  # fmt: skip


def test_reads_together_give_what_the_statements_give_one_after_the_other(db, tenant):
    with db.unit_of_work() as uow:
        plan_for_reports(uow)
        together = read_together(uow, _sources(tenant), plan_for_reports)
        one_by_one = [uow.execute(statement).all() for statement in _sources(tenant)]
    assert together == one_by_one
    assert together[0][0][0] == len(together[1]) > 1  # the clinic's seeded sources, read back


def test_reads_together_share_the_units_snapshot_whatever_commits_meanwhile(db, tenant):
    """Once a unit has read together, its later reads together see its snapshot of then: a source
    another transaction commits in between is in none of them (the unit's own reads, READ
    COMMITTED, see it)."""
    need_postgres(str(db.engine.url), "a snapshot shared by connections is PostgreSQL's")
    with db.unit_of_work() as uow:
        before = read_together(uow, _sources(tenant))
        _add_source(db, tenant, "Committed meanwhile")
        after = read_together(uow, _sources(tenant))
        assert after == before
        assert "Committed meanwhile" not in [name for (name,) in after[1]]
        assert uow.execute(_sources(tenant)[0]).scalar_one() == before[0][0][0] + 1
    with db.unit_of_work() as uow:  # a new unit, a new snapshot
        assert read_together(uow, _sources(tenant))[0][0][0] == before[0][0][0] + 1


def test_behind_a_transaction_pooler_the_reads_run_one_after_the_other_on_the_unit(db, tenant, monkeypatch):
    """A transaction pooler has few server sessions: a unit holding one while its reads wait for
    others could wait for ever. There no other connection is taken."""
    need_postgres(str(db.engine.url), "reading at once is PostgreSQL's")
    monkeypatch.setattr(db.engine.dialect, "server_prepared", False)  # as FOLLOWUP_DATABASE_POOLER says
    checkouts = []

    def count(*args):
        checkouts.append(args)

    sa.event.listen(db.engine, "checkout", count)
    try:
        with db.unit_of_work() as uow:
            uow.connection()
            checkouts.clear()
            together = read_together(uow, _sources(tenant))
            assert not checkouts  # no other connection: no snapshot to share
            assert together == [uow.execute(statement).all() for statement in _sources(tenant)]
    finally:
        sa.event.remove(db.engine, "checkout", count)


def test_a_lone_read_begun_later_runs_on_another_connection_while_the_unit_reads_on(db, tenant):
    """`read_later` of one statement (speed to lead's percentiles, begun before its split) does not
    run on the unit before returning: it runs on a connection of its own, in the unit's snapshot,
    while the unit goes on."""
    need_postgres(str(db.engine.url), "reading at once is PostgreSQL's")
    backend = sa.select(sa.func.pg_backend_pid())
    with db.unit_of_work() as uow:
        own = uow.execute(backend).scalar_one()
        later = read_later(uow, [sa.select(sa.func.pg_backend_pid(), sa.func.pg_sleep(0.3))])
        _add_source(db, tenant, "Committed meanwhile")
        [[(reader, _)]] = later.rows()
        [names] = read_together(uow, [_sources(tenant)[1]])  # a lone read after it: the same snapshot
    assert reader != own
    assert "Committed meanwhile" not in [name for (name,) in names]


def test_one_units_long_reads_never_queue_another_units(db, tenant):
    """Reads at once are not a queue shared by every request: while one clinic's report has five long
    reads running, another's read is answered before any of them ends."""
    need_postgres(str(db.engine.url), "reading at once is PostgreSQL's")
    long_reads = [sa.select(sa.func.pg_sleep(1.0)) for _ in range(5)]
    with db.unit_of_work() as busy, db.unit_of_work() as other:
        running = read_later(busy, long_reads)
        [[(count,)]] = read_later(other, [_sources(tenant)[0]]).rows()
        assert not any(read.done() for read in running._pending)
        assert count > 1 and len(running.rows()) == 5


def test_no_reads_after_the_snapshot_was_exported_are_no_rows(db, tenant):
    """A report whose second round has nothing to read (no group with a reply) gets no rows, not an
    error, though its first round exported the unit's snapshot."""
    with db.unit_of_work() as uow:
        read_together(uow, _sources(tenant))
        assert read_together(uow, []) == [] and read_later(uow, []).rows() == []
