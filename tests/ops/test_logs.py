"""JSON log lines: a request's carry its request id, clinic and lead, a job's its job id and kind,
clinic and lead; none carries PHI; web, worker and beat write the same format."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling.runner import run_job
from app.platform.telemetry import logs
from tests.ledger import schedule
from tests.reliability import handlers  # noqa: F401 - registers the test.* job kinds in this process
from tests.workers import PROJECT_ROOT, wait_for, worker_env

PHI = {
    "first_name": "Zelda",
    "last_name": "Quixotic",
    "email": "zelda.quixotic@example.org",
    "phone": "+14155550199",
    "notes": "allergic to latex",
}


@pytest.fixture
def log_lines():
    """The JSON lines the root logger writes (the handler every process configures), as text."""
    buffer = io.StringIO()
    logs.configure(logging.INFO, stream=buffer)
    try:
        yield buffer.getvalue
    finally:
        logs.configure(logging.INFO)


def parsed(text: str) -> list[dict]:
    lines = []
    for line in filter(str.strip, text.splitlines()):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}; the whole output:\n{text}")
    return lines


def test_request_lines_carry_the_request_clinic_and_lead_and_no_phi(app, client, tenant, log_lines):
    created = client.post("/api/leads", json=PHI, headers={**tenant.headers(), "X-Request-ID": "req-7.a_b"})
    assert created.status_code == 201, created.get_json()
    assert created.headers["X-Request-ID"] == "req-7.a_b"
    lead_id = created.get_json()["id"]
    assert client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).status_code == 200
    assert client.get("/api/leads?q=Quixotic", headers=tenant.headers()).status_code == 200
    smuggled = client.get("/api/leads", headers={**tenant.headers(), "X-Request-ID": "Zelda Quixotic"})
    assert smuggled.headers["X-Request-ID"] != "Zelda Quixotic"  # not a plain token: replaced

    text = log_lines()
    lines = [line for line in parsed(text) if line["message"] == "request"]
    capture, read, search, _ = lines
    assert capture["request_id"] == "req-7.a_b" and capture["level"] == "INFO"
    assert (capture["method"], capture["endpoint"], capture["status"]) == ("POST", "/api/leads", 201)
    assert capture["clinic_id"] == tenant.id and capture["lead_id"] == lead_id
    assert read["endpoint"] == "/api/leads/<int:lead_id>" and read["lead_id"] == lead_id
    assert search["endpoint"] == "/api/leads" and "lead_id" not in search
    assert len({line["request_id"] for line in lines}) == 4
    for value in [*PHI.values(), "4155550199", "q="]:
        assert value not in text


def test_a_job_line_carries_the_job_clinic_and_lead(app, db, tenant, log_lines):
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        job = schedule(
            session=session,
            kind="test.fails",
            due_at=now,
            dedupe_key="logs-job",
            now=now,
            clinic_id=tenant.id,
            subject_type="lead",
            subject_id=77,
        )
    with app.app_context():
        assert run_job(db=get_db(), job_id=job.id, now=now) == "retrying"
    [failed] = [line for line in parsed(log_lines()) if line["message"].startswith(f"job {job.id} failed")]
    assert failed["level"] == "WARNING"
    assert (failed["job_id"], failed["job_kind"]) == (job.id, "test.fails")
    assert (failed["clinic_id"], failed["lead_id"]) == (tenant.id, 77)
    assert "request_id" not in failed


@pytest.mark.parametrize(
    ("command", "ready"), [(["worker", "--pool=solo"], "ready."), (["beat"], "beat: Starting...")]
)
def test_worker_and_beat_write_the_same_json_lines(app, tmp_path, command, ready):
    args = [sys.executable, "-m", "celery", "-A", "workers.main", *command, "--loglevel=INFO"]
    if command[0] == "beat":
        args.append(f"--schedule={tmp_path / 'schedule'}")
    out = open(tmp_path / "stderr", "wb")  # noqa: SIM115 - closed below
    # Log lines go to stderr; stdout has the worker's start-up banner for a person at a terminal.
    process = subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        env=worker_env(app.config["SETTINGS"]),
        stderr=out,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: ready in (tmp_path / "stderr").read_text(), timeout=60, interval=0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
        out.close()
    lines = parsed((tmp_path / "stderr").read_text())
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(ready in line["message"] for line in lines)


UNCAUGHT = """
import threading
from app.platform.telemetry import logs
logs.configure()
worker = threading.Thread(target=lambda: 1 / 0, name="sender")
worker.start()
worker.join()
raise LookupError("nothing caught this")
"""


def test_an_exception_nothing_caught_is_a_json_line_too(tmp_path):
    """A process's last words are read by the same log shipper: one JSON line with its traceback, from
    the main thread and from any other thread, never Python's raw multi-line traceback."""
    ended = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert ended.returncode == 1
    lines = parsed(ended.stderr)
    assert [(line["level"], line["message"]) for line in lines] == [
        ("CRITICAL", "uncaught ZeroDivisionError in thread sender"),
        ("CRITICAL", "uncaught LookupError"),
    ]
    assert "nothing caught this" in lines[1]["exc_info"] and "Traceback" in lines[1]["exc_info"]


def test_beat_stops_by_its_own_handler_from_the_moment_it_starts(app):
    """Celery installs beat's SIGTERM handler before it logs "beat: Starting...": the handler that ends
    the loop and keeps the schedule's file open for its final save must be the one it installs, or a
    SIGTERM at that moment closes the file under the loop (Celery's own handler)."""
    import signal
    import threading

    from workers.celery_app import worker_app

    celery = worker_app(app)
    beat = celery.Beat(schedule=None)
    closed = []

    class Service:
        _is_shutdown = threading.Event()

        def sync(self):
            closed.append(True)

    service = Service()
    before = signal.getsignal(signal.SIGTERM)
    try:
        beat.install_sync_handler(service)
        with pytest.raises(SystemExit):
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert service._is_shutdown.is_set() and not closed
