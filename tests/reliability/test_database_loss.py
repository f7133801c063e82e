"""The database drops every connection (a failover, a restart) or cannot be reached: the API and
the workers carry on once it is back, and nothing is lost or done twice meanwhile (beat only sends
tasks: it uses no database)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from app import create_app
from app.domains.intake import service as intake
from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.roles import Actor
from app.platform.scheduling.models import ScheduledJob
from tests.brokers import TcpProxy
from tests.conftest import test_settings
from tests.ledger import schedule_many
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.reliability.handlers import EFFECT
from tests.requirements import need_postgres
from tests.test_db_pool import _wait_until_gone
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

TERMINATE_OTHERS = sa.text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def terminate_every_connection(url: str) -> int:
    """Every other backend of the test's database ended, as a failover does; how many."""
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool
    )
    try:
        with admin.connect() as connection:
            return len(connection.execute(TERMINATE_OTHERS).all())
    finally:
        admin.dispose()


def test_captures_right_after_every_connection_dropped_all_succeed(app, client, tenant, migrated_database):
    need_postgres(migrated_database, "terminating server connections needs PostgreSQL")
    headers = tenant.headers("front_desk")
    for n in range(5):  # the pool holds live connections, used a moment ago
        assert (
            client.post(
                "/api/leads", json={"first_name": f"Warm{n}", "last_name": "Up"}, headers=headers
            ).status_code
            == 201
        )
    assert terminate_every_connection(migrated_database) >= 1
    statuses = [
        client.post(
            "/api/leads", json={"first_name": f"After{n}", "last_name": "Drop"}, headers=headers
        ).status_code
        for n in range(20)
    ]
    print("statuses after the drop:", statuses)
    assert statuses == [201] * 20, statuses
    db = app.extensions["followup.db"]
    with db.engine.connect() as connection:
        names = (
            connection.execute(sa.text("SELECT first_name FROM leads WHERE last_name = 'Drop'"))
            .scalars()
            .all()
        )
    assert sorted(names) == sorted(f"After{n}" for n in range(20))


def _through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}"))


def test_the_api_answers_503_while_the_database_is_unreachable_then_serves_again(
    tenant, migrated_database, redis_url
):
    need_postgres(migrated_database, "a database behind a proxy needs PostgreSQL")
    parts = urlsplit(migrated_database)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    proxied = create_app(test_settings(_through(migrated_database, proxy), redis_url))
    client = proxied.test_client()
    headers = tenant.headers("front_desk")
    try:
        assert (
            client.post(
                "/api/leads", json={"first_name": "Before", "last_name": "Outage"}, headers=headers
            ).status_code
            == 201
        )
        proxy.stop()
        down = client.post(
            "/api/leads", json={"first_name": "During", "last_name": "Outage"}, headers=headers
        )
        assert down.status_code == 503, down.get_json()
        assert int(down.headers["Retry-After"]) >= 1
        assert down.get_json()["code"] == "unavailable" and down.get_json()["message"]
        again = client.post(
            "/api/leads", json={"first_name": "During", "last_name": "Outage"}, headers=headers
        )
        assert again.status_code == 503  # not connected meanwhile: still unavailable, still no 500
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "database" in ready.get_data(as_text=True)
        proxy.start()
        back = client.post("/api/leads", json={"first_name": "After", "last_name": "Outage"}, headers=headers)
        assert back.status_code == 201, back.get_json()
    finally:
        proxy.stop()
        proxied.extensions["followup.db"].engine.dispose()


def _capture_on_a_connection_ended(db, tenant, name: str, *, at_write: bool) -> list[int]:
    """A capture through `Database.run` whose connection the server ends during its first try:
    after its first statement, or once the work is done and only the write (the commit) is left.
    The pids its tries ran on."""
    pids: list[int] = []
    actor = Actor.engine(tenant.id, "test")

    def work(session):
        pid = session.connection().execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        pids.append(pid)
        if len(pids) == 1 and not at_write:
            _end(db, pid)
        made = intake.create_lead(
            session=session,
            actor=actor,
            new=intake.NewLead(data={"first_name": name, "last_name": "Run"}),
            now=clock.now(),
        )
        if len(pids) == 1 and at_write:
            _end(db, pid)
        return made

    db.run(work)
    return pids


def _end(db, pid: int) -> None:
    with db.engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    _wait_until_gone(db.engine, pid)


def _stored(db, name: str) -> int:
    with db.engine.connect() as connection:
        found = connection.execute(sa.text("SELECT count(*) FROM leads WHERE first_name = :n"), {"n": name})
        return found.scalar_one()


def test_a_capture_whose_connection_dropped_before_its_write_is_done_again_once(
    db, tenant, migrated_database
):
    need_postgres(migrated_database, "terminating server connections needs PostgreSQL")
    # In a transaction (a capture that needs one): no statement of it can be done again alone.
    pids = _capture_on_a_connection_ended(db, tenant, "Again", at_write=False)
    assert len(pids) == 2 and pids[0] != pids[1]  # the second try, on a new connection
    assert _stored(db, "Again") == 1


def test_a_capture_whose_connection_dropped_at_its_write_is_not_done_blindly_again(
    db, tenant, migrated_database
):
    need_postgres(migrated_database, "terminating server connections needs PostgreSQL")
    with pytest.raises(sa.exc.DBAPIError) as raised:
        # In a transaction: its rows are flushed and committed at the commit.
        _capture_on_a_connection_ended(db, tenant, "Once", at_write=True)
    assert raised.value.connection_invalidated  # the API answers 503: the client may try again
    assert _stored(db, "Once") == 0


def _ledger(db) -> tuple[dict[str, int], dict[int, int], int, int]:
    """(rows by status, rows by attempts, effects, jobs with an effect), read through `Database.run`
    (this process's connections are ended too)."""

    def read(session):
        jobs = ScheduledJob.__table__
        statuses = dict(
            session.execute(sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)).all()
        )
        attempts = dict(
            session.execute(sa.select(jobs.c.attempts, sa.func.count()).group_by(jobs.c.attempts)).all()
        )
        made = session.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(AuditEvent.subject_id))).where(
                AuditEvent.action == EFFECT
            )
        ).one()
        return statuses, attempts, made[0], made[1]

    return db.run(read)


def test_a_worker_whose_connections_are_all_dropped_mid_run_does_every_job_once(
    app, db, fast, tenant, migrated_database
):
    need_postgres(migrated_database, "terminating server connections needs PostgreSQL")
    total = 300
    settings = app.config["SETTINGS"]
    with subprocess_worker(
        settings, name="survivor", FOLLOWUP_TEST_HANDLER_SLEEP="0.02", **WORKER_ENV
    ) as worker:
        wait_until_consuming(app, "survivor")
        now = clock.now()
        jobs = [
            {
                "kind": EFFECT,
                "due_at": now + timedelta(seconds=1 + 2 * i / total),
                "dedupe_key": f"dbloss:{i}",
                "clinic_id": tenant.id,
            }
            for i in range(total)
        ]
        with app.app_context(), db.unit_of_work() as session:
            schedule_many(session=session, jobs=jobs, now=now)
        wait_for(lambda: _ledger(db)[0].get("done", 0) >= 20, timeout=60, interval=0.05)
        ended = 0
        for _ in range(3):  # mid-run: the worker is inside handlers, between them, claiming
            before = _ledger(db)[0].get("done", 0)
            ended += terminate_every_connection(migrated_database)
            wait_for(lambda before=before: _ledger(db)[0].get("done", 0) >= before + 10, timeout=60)
        assert ended >= 3
        with sweeping(app):
            wait_for(lambda: _ledger(db)[0].get("done", 0) == total, timeout=120, interval=0.2)
        assert worker.poll() is None  # the worker carried on
    statuses, attempts, made, jobs_with_effect = _ledger(db)
    assert statuses == {"done": total}
    assert (made, jobs_with_effect) == (total, total)  # each job's effect once
    assert attempts == {1: total}, attempts  # a dropped connection spent no job's attempt
