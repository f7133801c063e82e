"""Behind PgBouncer in transaction pooling mode (FOLLOWUP_DATABASE_POOLER=transaction): a real
`pgbouncer` in front of the test database, the app and a worker process through it.

A transaction pooler hands a server session to another client after each transaction: nothing a
client leaves in its session (a prepared statement, a setting) may be relied on afterwards, nor
left for the next client to find."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa

from app import create_app
from app.domains.ops import queries as ops_queries
from app.domains.ops import service as ops
from app.domains.tasks.models import LeadTask
from app.platform import clock
from app.platform.config import ConfigError, Settings
from app.platform.db import make_engine
from tests.conftest import test_settings
from tests.leadkit import create_lead
from tests.pgbouncer import PgBouncer, need_pgbouncer
from tests.reliability.test_database_loss import terminate_every_connection
from tests.requirements import need_postgres
from tests.workers import subprocess_worker, wait_for

POOLED = {"FOLLOWUP_DATABASE_POOLER": "transaction"}
LEADS = 12  # each psycopg connection prepares a statement after its 5th run: names collide soon
REPORTS = ("funnel", "sources", "coordinators", "speed-to-lead", "follow-up")
NOTE_NUDGE = {
    "name": "Nudge after a note",
    "trigger": "activity.logged",
    "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
    "actions": [{"type": "notify", "lead_owner": True, "title": "Note on {{ first_name }}"}],
}


@pytest.fixture(scope="module")
def pgbouncer_binary(migrated_database):
    return need_pgbouncer(migrated_database)


@pytest.fixture(scope="module")
def pgbouncer(pgbouncer_binary, migrated_database, tmp_path_factory):
    """Fewer server sessions (3) than the clients taking turns on them (the web's connections, a
    worker process's, the test's)."""
    with PgBouncer(pgbouncer_binary, tmp_path_factory.mktemp("pgbouncer"), migrated_database, 3) as pooler:
        yield pooler


@pytest.fixture(scope="module")
def pooled_app(pgbouncer, redis_url):
    pooled = create_app(test_settings(pgbouncer.url, redis_url, database_pooler="transaction"))
    yield pooled
    pooled.extensions["followup.db"].engine.dispose()


def _call_tasks(app, lead_ids: list[int]) -> list[LeadTask]:
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(LeadTask).where(LeadTask.lead_id.in_(lead_ids), LeadTask.type == "CALL")
            )
        )


def a_user_session(client, tenant) -> list[int]:
    """The core journeys (leads captured, stage moves, a rule, the lists, analytics), each checked
    for its 2xx; the new leads' ids. Each statement runs more than psycopg's prepare_threshold times."""
    headers = tenant.headers()
    leads = [
        create_lead(client, tenant, first_name=f"Pat{n}", phone=f"(415) 555-{2600 + n}") for n in range(LEADS)
    ]
    for lead in leads[:4]:
        moved = client.post(f"/api/leads/{lead['id']}/stage", json={"stage": "contacted"}, headers=headers)
        assert moved.status_code < 300, moved.get_json()
    rule = client.post("/api/follow-up-rules", json=NOTE_NUDGE, headers=headers)
    assert rule.status_code == 201, rule.get_json()
    for path in ("/api/leads", "/api/leads?q=Pat3", "/api/follow-up-rules", "/api/leads/tasks"):
        listed = client.get(path, headers=headers)
        assert listed.status_code == 200, (path, listed.get_json())
    for report in REPORTS:
        answer = client.get(f"/api/leads/analytics/{report}", headers=headers)
        assert answer.status_code == 200, (report, answer.get_json())
    return [lead["id"] for lead in leads]


def test_a_user_session_through_pgbouncer_answers_2xx_and_a_worker_there_makes_each_call_task(
    app, pooled_app, make_tenant
):
    tenant = make_tenant()  # its tokens are signed with the same secret as the pooled app's
    with subprocess_worker(pooled_app.config["SETTINGS"], **POOLED):
        lead_ids = a_user_session(pooled_app.test_client(), tenant)
        # The worker, through the pooler too, did each new lead's processing: its call task.
        wait_for(lambda: len(_call_tasks(app, lead_ids)) >= LEADS, timeout=90, interval=0.2)
    assert sorted(task.lead_id for task in _call_tasks(app, lead_ids)) == sorted(lead_ids)


def test_behind_pgbouncer_without_the_pooler_setting_the_engine_finds_it_and_answers_no_5xx(
    app, pgbouncer, redis_url, make_tenant, caplog
):
    """FOLLOWUP_DATABASE_POOLER forgotten (issue 63): the engine's first connection finds the
    pooler (app/platform/db/engine.py `shares_server_sessions`), says which setting is missing, and
    prepares no statement on the server; the web and a worker process work as if it were set."""
    unset = create_app(test_settings(pgbouncer.url, redis_url))
    assert unset.config["SETTINGS"].database_pooler == "none"
    tenant = make_tenant()
    try:
        with subprocess_worker(unset.config["SETTINGS"]):
            lead_ids = a_user_session(unset.test_client(), tenant)
            wait_for(lambda: len(_call_tasks(app, lead_ids)) >= LEADS, timeout=90, interval=0.2)
        assert sorted(task.lead_id for task in _call_tasks(app, lead_ids)) == sorted(lead_ids)
        assert unset.extensions["followup.db"].engine.dialect.pooler_found is True
        assert "FOLLOWUP_DATABASE_POOLER=transaction" in caplog.text
    finally:
        unset.extensions["followup.db"].engine.dispose()


def test_direct_to_postgresql_the_engine_finds_no_pooler_and_prepares_its_hot_statements(db):
    need_postgres(db.url, "the pooler probe runs on PostgreSQL")
    engine = make_engine(db.url)
    try:
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.prepare_threshold == 5  # psycopg's default
        assert engine.dialect.pooler_found is False
    finally:
        engine.dispose()


def test_bulk_work_reminders_and_inbox_items_through_pgbouncer_each_once(pooled_app, make_tenant):
    """The background and realtime kinds through the pooler: a bulk follow-up's chunks (the bulk
    queue), a task's reminder (a timer on the ledger) and the in-app notification it sends."""
    tenant = make_tenant()
    client = pooled_app.test_client()
    headers = tenant.headers()
    leads = [create_lead(client, tenant, first_name=f"Bulk{n}") for n in range(6)]
    coordinator = tenant.users["treatment_coordinator"]
    soon = clock.now() + timedelta(minutes=15, seconds=4)  # its 15-minute reminder is due in 4 s
    task = client.post(
        f"/api/leads/{leads[0]['id']}/tasks",
        json={
            "title": "Call Bulk0",
            "type": "CALL",
            "due_at": soon.isoformat(),
            "assigned_to_id": coordinator.id,
        },
        headers=headers,
    )
    assert task.status_code == 201, task.get_json()
    body = {"lead_ids": [lead["id"] for lead in leads], "title": "After the expo", "type": "CALL"}
    with subprocess_worker(pooled_app.config["SETTINGS"], **POOLED):
        started = client.post("/api/leads/tasks/bulk", json={**body, "due_in_minutes": 60}, headers=headers)
        assert started.status_code == 202, started.get_json()

        def bulk_done():
            job = client.get(f"/api/bulk-jobs/{started.get_json()['id']}", headers=headers).get_json()
            return job if job["status"] == "done" else None

        job = wait_for(bulk_done, timeout=90, interval=0.3)

        def reminded():
            inbox = client.get("/api/me/notifications", headers=tenant.headers("treatment_coordinator"))
            assert inbox.status_code == 200, inbox.get_json()
            return [item for item in inbox.get_json() if item["kind"] == "reminder"]

        reminders = wait_for(reminded, timeout=90, interval=0.3)
    assert (job["total"], job["done"], job["failed"]) == (6, 6, 0)
    tasks = client.get("/api/leads/tasks?page_size=100", headers=headers).get_json()
    assert sorted(t["lead_id"] for t in tasks if t["title"] == "After the expo") == sorted(
        lead["id"] for lead in leads
    )
    assert len(reminders) == 1 and "Call Bulk0" in reminders[0]["title"]


def test_captures_through_pgbouncer_right_after_every_server_connection_ended_all_succeed(
    pooled_app, make_tenant, migrated_database
):
    """The database-loss case behind the pooler: PostgreSQL ends every session (a failover, a
    restart), the pooler's included; the captures after it are all stored, none answers 5xx."""
    tenant = make_tenant()
    client = pooled_app.test_client()
    for n in range(5):  # the web's pool and the pooler's server sessions in use
        create_lead(client, tenant, first_name=f"Warm{n}", last_name="Pooled")
    # Signed now: making a token reads the user through the test's own (direct) pool, whose
    # connections the termination ends too; the app under test is what must survive it.
    headers = tenant.headers()
    assert terminate_every_connection(migrated_database) >= 1
    statuses = [
        client.post(
            "/api/leads", json={"first_name": f"After{n}", "last_name": "Pooled"}, headers=headers
        ).status_code
        for n in range(20)
    ]
    assert statuses == [201] * 20, statuses
    listed = client.get("/api/leads?q=Pooled&page_size=100", headers=tenant.headers()).get_json()
    assert sorted(lead["first_name"] for lead in listed if lead["first_name"].startswith("After")) == sorted(
        f"After{n}" for n in range(20)
    )


# --- the upkeep sweeps: settings for their statements only ----------------------------------------

UPKEEP_SETTINGS = ("vacuum_cost_delay", "default_statistics_target")


@pytest.fixture
def one_session_pooler(pgbouncer_binary, migrated_database, tmp_path):
    """A pooler with one server session: whatever a client leaves in it, the next client finds."""
    with PgBouncer(pgbouncer_binary, tmp_path, migrated_database, pool_size=1) as pooler:
        yield pooler


def _settings_seen(url: str) -> tuple[str, ...]:
    """The upkeep settings as a new client of `url` finds them in its session."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        return tuple(conn.execute(f"SHOW {name}").fetchone()[0] for name in UPKEEP_SETTINGS)


class Observer:
    """While a sweep runs its first ANALYZE or VACUUM, another client of the pooler looks at the
    session it gets: a session setting the sweep made outside its own transaction is there."""

    def __init__(self, url: str):
        self.url, self.seen, self.threads, self.inside = url, [], [], []

    def around(self, run):
        def observed(conn, table):
            if not self.threads:
                thread = threading.Thread(target=lambda: self.seen.append(_settings_seen(self.url)))
                thread.start()
                self.threads.append(thread)
                # Unfixed, the sweep holds no session between its statements: the other client
                # gets it at once. Within the sweep's transaction it waits for its end.
                thread.join(timeout=2)
                self.inside.append(conn.exec_driver_sql("SHOW vacuum_cost_delay").scalar())
            return run(conn, table)

        return observed

    def finished(self) -> list[tuple[str, ...]]:
        for thread in self.threads:
            thread.join(timeout=60)
        return self.seen


def _touch_heartbeats(db, rows: int) -> None:
    for _ in range(2):  # each row written twice: its first version is dead
        with db.unit_of_work() as session:
            for n in range(rows):
                ops.record_heartbeat(session=session, name=f"pooled{n}", now=clock.now())


def _stat(db, column: str) -> int:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT {column} FROM pg_stat_user_tables WHERE relname = 'heartbeats'")
        ).scalar()


def test_the_upkeep_sweeps_through_pgbouncer_leave_no_setting_on_another_clients_session(
    app, db, redis_url, one_session_pooler, monkeypatch
):
    defaults = _settings_seen(db.url)
    pooled = create_app(test_settings(one_session_pooler.url, redis_url, database_pooler="transaction"))
    pooled_db = pooled.extensions["followup.db"]
    _touch_heartbeats(db, 1500)
    wait_for(lambda: _stat(db, "n_dead_tup") >= 1500 and _stat(db, "n_mod_since_analyze") >= 1500, timeout=30)

    analysing = Observer(one_session_pooler.url)
    monkeypatch.setattr(ops_queries, "analyze", analysing.around(ops_queries.analyze))
    assert "heartbeats" in ops.refresh_statistics(db=pooled_db)
    assert analysing.finished() == [defaults]
    assert analysing.inside == [f"{pooled.config['SETTINGS'].upkeep_cost_delay_ms:g}ms"]  # paced still

    vacuuming = Observer(one_session_pooler.url)
    monkeypatch.setattr(ops_queries, "vacuum", vacuuming.around(ops_queries.vacuum))
    assert "heartbeats" in ops.vacuum_dead_rows(db=pooled_db)
    assert vacuuming.finished() == [defaults]

    assert _settings_seen(one_session_pooler.url) == defaults  # nor after them
    pooled_db.engine.dispose()


def test_the_pooler_setting_takes_none_or_transaction():
    assert Settings().database_pooler == "none"
    with pytest.raises(ConfigError, match="FOLLOWUP_DATABASE_POOLER"):
        Settings(secret_key="x" * 32, phi_encryption_key="k", database_pooler="session").validate()


def test_migrations_go_to_postgresql_itself_not_through_the_pooler(monkeypatch):
    from click.testing import CliRunner

    from app import cli
    from app.platform import migrate

    upgraded = []
    monkeypatch.setattr(migrate, "upgrade", lambda url, revision: upgraded.append(url))
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@pgbouncer:6432/followup")
    monkeypatch.setenv("FOLLOWUP_DATABASE_POOLER", "transaction")
    monkeypatch.delenv("FOLLOWUP_MIGRATIONS_DATABASE_URL", raising=False)
    refused = CliRunner().invoke(cli.main, ["db", "upgrade"])
    assert refused.exit_code != 0 and "FOLLOWUP_MIGRATIONS_DATABASE_URL" in refused.output
    assert upgraded == []
    monkeypatch.setenv("FOLLOWUP_MIGRATIONS_DATABASE_URL", "postgresql://app@postgres:5432/followup")
    assert CliRunner().invoke(cli.main, ["db", "upgrade"]).exit_code == 0
    assert upgraded == ["postgresql://app@postgres:5432/followup"]
