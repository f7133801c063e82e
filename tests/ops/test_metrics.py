"""/metrics through prometheus-client: request latency by URL rule and status, ledger job outcomes
and lateness by kind, orphan leads; and multiprocess mode, where gunicorn's workers and a Celery
worker process all count into one scrape."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.devtools.local_redis import free_port
from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.leadkit import create_lead
from tests.ledger import schedule
from tests.reliability import handlers  # noqa: F401 - registers the test.* job kinds in this process
from tests.workers import PROJECT_ROOT, gunicorn, subprocess_worker, wait_for, worker_env

TOKEN = "scrape-me"


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scrape(app, client, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "metrics_token", TOKEN)

    def read() -> dict:
        resp = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status_code == 200
        return samples(resp.get_data(as_text=True))

    return read


def test_request_latency_is_counted_by_url_rule_method_and_status(client, tenant, scrape):
    lead = create_lead(client, tenant)
    name, rule = "followup_http_request_duration_seconds_count", "/api/leads/<int:lead_id>"
    before = scrape()
    for _ in range(3):
        assert client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).status_code == 200
    assert client.get("/api/leads/999999", headers=tenant.headers()).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    after = scrape()
    ok = {"endpoint": rule, "method": "GET", "status": "200"}
    assert sample(after, name, **ok) - sample(before, name, **ok) == 3
    missing = {"endpoint": rule, "method": "GET", "status": "404"}
    assert sample(after, name, **missing) - sample(before, name, **missing) == 1
    unmatched = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    assert sample(after, name, **unmatched) - sample(before, name, **unmatched) == 1
    assert not any(f'lead_id="{lead["id"]}"' in str(key) or "/api/leads/9" in str(key) for key in after)


def test_job_outcomes_and_lateness_are_counted_by_kind(app, db, tenant, scrape):
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        ids = [
            schedule(
                session=session,
                kind=kind,
                due_at=now - timedelta(seconds=45),
                dedupe_key=kind,
                now=now,
                clinic_id=tenant.id,
            ).id
            for kind in ("test.effect", "test.fails")
        ]
    before = scrape()
    with app.app_context():
        assert [run_job(db=get_db(), job_id=i, now=now) for i in ids] == ["done", "retrying"]
        assert run_job(db=get_db(), job_id=ids[0], now=now) == "skipped"  # a second delivery
    after = scrape()

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    runs = "followup_job_runs_total"
    assert delta(runs, kind="test.effect", outcome="done") == 1
    assert delta(runs, kind="test.effect", outcome="skipped") == 1
    assert delta(runs, kind="test.fails", outcome="retrying") == 1
    lateness = "followup_job_lateness_seconds_bucket"
    assert delta("followup_job_lateness_seconds_count", kind="test.effect") == 1  # done only
    assert delta("followup_job_lateness_seconds_count", kind="test.fails") == 0
    assert delta(lateness, kind="test.effect", le="30.0") == 0  # 45 s late
    assert delta(lateness, kind="test.effect", le="60.0") == 1


def test_orphan_leads_dead_notifications_and_every_existing_figure(app, db, client, tenant, scrape):
    lead = create_lead(client, tenant)
    assert sample(scrape(), "followup_orphan_leads") == 0  # its events.process step is pending
    with db.unit_of_work() as session:  # the step gone, no task made: nothing will happen to the lead
        session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.subject_id == lead["id"]).values(status="cancelled")
        )
    found = scrape()
    assert sample(found, "followup_orphan_leads") == 1
    assert sample(found, "followup_jobs", status="cancelled", kind="events.process") == 1
    assert sample(found, "followup_broker_up") == 1
    for queue in ("realtime", "notifications", "bulk"):
        assert ("followup_queue_length", (("queue", queue),)) in found
    assert ("followup_due_job_lag_seconds", ()) in found


def test_multiprocess_gunicorn_workers_and_a_celery_worker_count_into_one_scrape(app, db, tenant, tmp_path):
    settings, port = app.config["SETTINGS"], free_port()
    env = worker_env(
        settings,
        METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        FOLLOWUP_PLUGINS="tests.reliability.handlers",
    )
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        schedule(
            session=session, kind="test.effect", due_at=now, dedupe_key="mp", now=now, clinic_id=tenant.id
        )
    healthz = ("followup_http_request_duration_seconds_count", {"endpoint": "/healthz", "method": "GET"})
    with gunicorn(env, port), subprocess_worker(settings, **_strings(env)):
        before = sample(scrape_http(port), healthz[0], **healthz[1], status="200")
        for _ in range(20):
            assert get(port, "/healthz").status == 200
        found = wait_for(lambda: _done(scrape_http(port)), timeout=60, interval=0.5)
    # Whichever of the two gunicorn workers answered each request and the scrape, all are counted;
    # the job's run was counted by a pool child of the Celery worker process.
    assert sample(found, healthz[0], **healthz[1], status="200") - before == 20
    assert len(list(tmp_path.glob("*.db"))) >= 2  # the web workers' and the Celery worker's files


def scrape_http(port: int) -> dict:
    return samples(get(port, "/metrics", TOKEN).read().decode())


def _done(found: dict) -> dict | None:
    """The samples once the worker process has counted its run of the job."""
    return (
        found if sample(found, "followup_job_runs_total", kind="test.effect", outcome="done") == 1 else None
    )


def _strings(env: dict) -> dict[str, str]:
    keep = ("METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR", "FOLLOWUP_PLUGINS")
    return {key: env[key] for key in keep}


def get(port: int, path: str, token: str | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    return urllib.request.urlopen(request, timeout=10)


def test_the_grafana_dashboard_reads_only_metrics_that_exist(app, client, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "metrics_token", TOKEN)
    dashboard = json.loads((PROJECT_ROOT / "ops" / "grafana-dashboard.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {
        re.sub(r"_(bucket|count|sum)$", "", name) for e in exprs for name in re.findall(r"followup_\w+", e)
    }
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    exposed = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    assert used and used <= exposed, used - exposed
