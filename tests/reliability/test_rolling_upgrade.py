"""A deploy while leads keep coming (issue 44 item 4, issue 63 item 1; docs/operations/upgrades.md):
the Procfile's processes serve 20 leads/s; the release's migration adds a column and builds its
index concurrently under them; then each web is reloaded in place (gunicorn's SIGHUP: new workers on
the same socket) and every other process is stopped (SIGTERM) and started again, one at a time.
Every capture is answered 201, each lead gets its one call task, nothing is done twice.

The migration is a test-only revision (tests/reliability/upgrade_versions/) on top of the product's
head: the online DDL an expand step is made of (a nullable column; CREATE INDEX CONCURRENTLY), which
the product itself has no column to add for. The new code is the same code: what a rolling restart
risks (a request cut, a job lost or run twice while its worker stops) does not depend on what
changed.

The client is an integrator's plain one (tests/steady_load.py): a new connection for each capture
(`Connection: close`), sent to the two webs in turn, one try, no retry. A connection reset or
refused is a capture lost to its user, as much as a 5xx.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from app import create_app
from app.devtools.local_redis import free_port
from app.platform import migrate
from tests.conftest import test_settings
from tests.databases import fresh_postgres_database
from tests.procfile import ProcfileProcess, wait_ready
from tests.requirements import need_postgres
from tests.steady_load import SteadyLoad, post_lead
from tests.workers import PROJECT_ROOT, wait_for, worker_env

pytestmark = pytest.mark.reliability

RATE = 20.0  # leads a second, the steady load
TEST_REVISIONS = Path(__file__).resolve().parent / "upgrade_versions"
# The order a deploy replaces them in: the two webs reloaded in place, the others restarted. Flower
# is left out: it keeps no work of its own.
ROLLING_ORDER = ("web.1", "web.2", "worker", "sender", "background", "webhooks", "sweeps", "beat")
STACK_ENV = {
    "WEB_CONCURRENCY": "1",  # two gunicorns of one worker each: the machine has two cores
    "WEBHOOK_CONCURRENCY": "1",
    "FOLLOWUP_RATE_LIMIT_PER_MINUTE": "1000000",  # one user sends every lead
    # The ledger's sweeps often enough that a message the broker lost is sent again within the test.
    "FOLLOWUP_PROMOTE_INTERVAL": "1",
    "FOLLOWUP_REDISPATCH_INTERVAL": "2",
    "FOLLOWUP_REDISPATCH_GRACE_SECONDS": "10",
}


@pytest.fixture(scope="module")
def upgraded_database(database_url):
    """A database of this module's own: the test adds a column to it, no other test's schema."""
    need_postgres(database_url, "CREATE INDEX CONCURRENTLY and an online ADD COLUMN need PostgreSQL")
    with fresh_postgres_database(database_url, "followup_rolling") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="module")
def app(upgraded_database, redis_url):
    """The app on that database (tenants are made there, tables emptied after the test)."""
    flask_app = create_app(test_settings(upgraded_database, redis_url))
    yield flask_app
    flask_app.extensions["followup.db"].engine.dispose()


def _expand(database_url: str) -> None:
    """The release's migration, run while the old processes serve: Alembic with the test-only
    revision directory beside the product's."""
    config = migrate.alembic_config(database_url)
    locations = [PROJECT_ROOT / "migrations" / "versions", TEST_REVISIONS]
    config.set_main_option("version_locations", os.pathsep.join(map(str, locations)))
    command.upgrade(config, "head")


def _expanded(engine) -> tuple:
    with engine.connect() as conn:
        column = conn.execute(
            sa.text(
                "SELECT is_nullable FROM information_schema.columns"
                " WHERE table_name = 'leads' AND column_name = 'upgrade_marker'"
            )
        ).scalar()
        index = conn.execute(
            sa.text(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE c.relname = 'ix_leads_upgrade_marker'"
            )
        ).scalar()
    return column, index


def _leads_and_their_work(engine, clinic_id: int) -> dict:
    queries = {
        "leads": "SELECT first_name, count(*) FROM leads WHERE clinic_id = :c GROUP BY first_name",
        "call_tasks": "SELECT lead_id, count(*) FROM lead_tasks WHERE clinic_id = :c AND type = 'CALL'"
        " GROUP BY lead_id",
        "told": "SELECT link || ' to ' || recipient_user_id, count(*) FROM notifications"
        " WHERE clinic_id = :c AND kind = 'new_lead' GROUP BY link, recipient_user_id",
        "jobs": "SELECT status, count(*) FROM scheduled_jobs GROUP BY status",
    }
    with engine.connect() as conn:
        found = {name: dict(conn.execute(sa.text(q), {"c": clinic_id}).all()) for name, q in queries.items()}
        found["lead_ids"] = set(
            conn.execute(sa.text("SELECT id FROM leads WHERE clinic_id = :c"), {"c": clinic_id}).scalars()
        )
    return found


def _stack(settings, tmp_path: Path) -> dict[str, ProcfileProcess]:
    env = worker_env(settings, **STACK_ENV, BEAT_SCHEDULE_FILE=str(tmp_path / "celerybeat-schedule"))
    processes = {}
    for name in ROLLING_ORDER:
        kind = name.split(".")[0]
        extra = {"PORT": str(free_port())} if kind == "web" else {}
        processes[name] = ProcfileProcess(kind, {**env, **extra}, tmp_path, name=name)
    return processes


@pytest.mark.timeout(900)  # a fresh database, seven processes started twice, a minute and more of load
def test_a_rolling_upgrade_under_steady_load_answers_every_capture_and_loses_or_doubles_no_lead(
    app, tenant, upgraded_database, tmp_path
):
    engine = app.extensions["followup.db"].engine
    sender = app.extensions["followup.dispatcher"].celery  # on the same broker: pings the workers
    stack = _stack(app.config["SETTINGS"], tmp_path)
    token = tenant.token("front_desk", lifetime=timedelta(hours=1))
    try:
        for process in stack.values():
            process.start()
        for process in stack.values():
            wait_ready(process, sender)
        webs = [stack[name].port for name in ROLLING_ORDER if name.startswith("web.")]
        with SteadyLoad(lambda n: post_lead(webs[n % len(webs)], token, n, "Roll"), RATE) as load:
            wait_for(lambda: load.answered() >= 2 * RATE, timeout=60)  # the old release serves
            _expand(upgraded_database)
            assert _expanded(engine) == ("YES", True)  # the column, and its index valid (built)
            for name in ROLLING_ORDER:
                process = stack[name]
                if name.startswith("web."):
                    process.reload()
                    continue
                assert process.stop() == 0, f"{name} did not stop cleanly:\n{process.log()[-3000:]}"
                process.start()
                wait_ready(process, sender)
            time.sleep(2)  # the new release serves too
        sent = load.sent
        print(
            f"\n{sent} leads sent at {load.rate:.1f}/s (paced at {RATE:g}/s); outcomes {dict(load.tally())}"
        )
        assert load.not_created() == {}, dict(load.tally())  # each capture 201, at its first try

        clinic = tenant.id
        wait_for(
            lambda: len(_leads_and_their_work(engine, clinic)["call_tasks"]) >= sent,
            timeout=240,
            interval=0.5,
        )
        made = _leads_and_their_work(engine, clinic)
    finally:
        for process in stack.values():
            process.kill()
    assert made["leads"] == {f"Roll{n}": 1 for n in range(sent)}  # each lead once, none lost
    assert made["call_tasks"] == dict.fromkeys(made["lead_ids"], 1)  # its one call task
    assert made["told"] and set(made["told"].values()) == {1}  # no coordinator told twice
    assert not {"failed", "dead"} & set(made["jobs"]), made["jobs"]
