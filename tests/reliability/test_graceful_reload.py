"""A graceful reload of the web tier under load (issue 63 item 1; docs/operations/upgrades.md): the
Procfile's web (gunicorn) is told to reload (SIGHUP: new workers on the new code, the old ones
finish what they have and exit) again and again while a plain client captures leads at a steady
pace, each on a connection of its own, one try each. Every capture is answered 201: a connection
an old worker had accepted is served, never closed unanswered ("Connection reset by peer").
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from app.devtools.local_redis import free_port
from tests.procfile import ProcfileProcess, wait_ready
from tests.requirements import need_postgres
from tests.steady_load import SteadyLoad, post_lead
from tests.workers import wait_for, worker_env

pytestmark = pytest.mark.reliability

RATE = 20.0  # leads a second
RELOADS = 6
WORKERS = 2  # gunicorn workers, each replaced on every reload


@pytest.mark.timeout(300)
def test_a_graceful_reload_under_load_answers_every_capture_of_a_client_that_connects_per_request(
    app, tenant, database_url, tmp_path
):
    need_postgres(database_url, "the web process' captures under load are checked on PostgreSQL")
    env = worker_env(
        app.config["SETTINGS"],
        PORT=str(free_port()),
        WEB_CONCURRENCY=str(WORKERS),
        FOLLOWUP_RATE_LIMIT_PER_MINUTE="1000000",  # one user sends every lead
    )
    web = ProcfileProcess("web", env, tmp_path)
    token = tenant.token("front_desk", lifetime=timedelta(hours=1))
    try:
        web.start()
        wait_ready(web, sender=None)
        with SteadyLoad(lambda n: post_lead(web.port, token, n, "Reload"), RATE) as load:
            wait_for(lambda: load.answered() >= 2 * RATE, timeout=60)
            for _ in range(RELOADS):
                web.reload()
                time.sleep(1)  # the new workers serve a while before the next reload
        print(
            f"\n{load.sent} leads sent at {load.rate:.1f}/s across {RELOADS} reloads; "
            f"outcomes {dict(load.tally())}"
        )
        assert load.sent >= RATE * RELOADS
        assert load.not_created() == {}, dict(load.tally())
        assert web.alive()
    finally:
        web.kill()
