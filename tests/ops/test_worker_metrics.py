"""A worker container's own /metrics (FOLLOWUP_METRICS_PORT): under docker-compose each container keeps
its prometheus-client files to itself, so a worker process serves what it and its pool children
counted, behind the same bearer token as the web's."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest

from app.devtools.local_redis import free_port
from app.platform import clock
from tests.ledger import schedule
from tests.ops.test_metrics import TOKEN, get, sample, samples
from tests.reliability import handlers  # noqa: F401 - registers the test.* job kinds in this process
from tests.workers import subprocess_worker, wait_for


def test_a_worker_process_serves_the_job_runs_of_its_pool_children(app, db, tenant, tmp_path):
    port = free_port()
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="own", now=now, clinic_id=tenant.id
        )
    env = {
        "METRICS_TOKEN": TOKEN,
        "FOLLOWUP_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "FOLLOWUP_PLUGINS": "tests.reliability.handlers",
    }
    with subprocess_worker(app.config["SETTINGS"], **env):

        def done():
            try:
                found = samples(get(port, "/metrics", TOKEN).read().decode())
            except OSError:
                return None  # not listening yet
            return (
                found
                if sample(found, "followup_job_runs_total", kind="test.effect", outcome="done")
                else None
            )

        assert wait_for(done, timeout=60, interval=0.5)
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(port, "/metrics", "wrong-token")
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as elsewhere:
            get(port, "/healthz", TOKEN)
        assert elsewhere.value.code == 404


def test_nothing_listens_without_a_token(app):
    from app.platform.telemetry import exporter

    settings = dataclasses.replace(app.config["SETTINGS"], metrics_port=free_port(), metrics_token=None)
    assert exporter.start(settings=settings) is None
