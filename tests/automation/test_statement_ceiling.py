"""What a new lead costs the database, counted in statements: its capture (POST /api/leads, in the
web process) and its events job (the realtime worker's speed-to-lead work). Each count has a
ceiling that only goes down (issue 78): a feature that would add a statement to a new lead's path
finds room for it elsewhere, or does its work off that path (a derived row by the drain, a
background job), as the analytics counts and the re-scoring already do."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.db import batch
from app.platform.scheduling.runner import run_job
from tests.automation.kit import jobs, tasks_of
from tests.automation.test_realtime_path import statements
from tests.leadkit import create_lead

# (the web's, the realtime worker's) statements for one new lead, by database, as measured when set;
# lower them when a change makes a new lead cheaper.
CEILINGS = {"postgresql": (10, 19), "sqlite": (19, 26)}


@contextmanager
def sent(engine, monkeypatch):
    """Every statement sent to the database in the block: SQLAlchemy's, and on PostgreSQL the hot
    statements run on the driver's own cursor (app/platform/db/batch.py Frozen), which SQLAlchemy's
    cursor events do not see."""
    frozen_execute = batch.Frozen.execute

    def counted(frozen, connection, params=None, **kwargs):
        if connection.dialect.name == "postgresql":  # elsewhere SQLAlchemy runs it, and its event counts it
            seen.append(f"(on the driver) {frozen.statement}")
        return frozen_execute(frozen, connection, params, **kwargs)

    with statements(engine) as seen:
        monkeypatch.setattr(batch.Frozen, "execute", counted)
        try:
            yield seen
        finally:
            monkeypatch.setattr(batch.Frozen, "execute", frozen_execute)


def test_a_new_lead_costs_no_more_statements_than_its_ceiling(app, client, tenant, db, monkeypatch):
    web_ceiling, worker_ceiling = CEILINGS[db.engine.dialect.name]
    with sent(db.engine, monkeypatch) as web:
        lead = create_lead(client, tenant, first_name="Rosa", last_name="Diaz", phone="(415) 555-0134")
    [job] = jobs(app, lead["id"], "events.process")
    with app.app_context(), sent(db.engine, monkeypatch) as worker:
        assert run_job(db=get_db(), job_id=job.id, now=clock.now() + timedelta(seconds=1)) == "done"
    assert [task.title for task in tasks_of(app, lead["id"])] == ["Initial contact"]  # the work was done
    assert len(web) <= web_ceiling, "\n".join(web)
    assert len(worker) <= worker_ceiling, "\n".join(worker)
