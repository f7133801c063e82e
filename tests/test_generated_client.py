"""A generated client proves the contract: openapi-python-client builds a Python client from the live
server's /api/openapi.json (offline: from the fetched document, into a temporary directory), and a
coordinator's day runs through it: log in, create a lead, list tasks, complete the speed-to-lead task.

The app is served on a local port by a real HTTP server; Celery's embedded worker (`celery_worker`)
runs the lead's automation against the real Redis, so the task the client lists is the engine's own.
The client raises on any status the document does not declare, and parses every answer into the
generated models: an answer that drifted from its schema fails here.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD
from tests.workers import wait_for

PACKAGE = "followup_client"
# No post hooks (the generator would run ruff over the code it wrote: not needed to import it).
# CSV bodies are plain bytes to a Python client.
GENERATOR_CONFIG = {
    "project_name_override": PACKAGE,
    "package_name_override": PACKAGE,
    "post_hooks": [],
    "content_type_overrides": {"text/csv": "application/octet-stream"},
}


@pytest.fixture
def live_server(app):
    """The session's app on 127.0.0.1 (a free port), served by werkzeug's threaded HTTP server."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def generate_client(base_url: str, workdir: Path):
    """Generate the client from the server's document with the openapi-python-client command; import it."""
    spec = workdir / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{base_url}/api/openapi.json").raise_for_status().json()))
    config = workdir / "generator.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    output = workdir / PACKAGE
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            f"--path={spec}",  # a file: the generator fetches nothing
            f"--output-path={output}",
            f"--config={config}",
            "--meta=none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout, run.stdout  # every operation and schema was understood
    sys.path.insert(0, str(workdir))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))


@pytest.fixture
def generated(live_server, tmp_path):
    package = generate_client(live_server, tmp_path)
    yield package
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def api(name: str):
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models():
    return importlib.import_module(f"{PACKAGE}.models")


def test_login_create_a_lead_list_tasks_and_complete_through_the_generated_client(
    generated, live_server, tenant, celery_worker
):
    m = models()
    coordinator = tenant.users["treatment_coordinator"]
    anonymous = generated.Client(base_url=live_server, raise_on_unexpected_status=True)

    tokens = api("auth.log_in").sync(
        client=anonymous, body=m.LoginIn(email=coordinator.email, password=TEST_PASSWORD)
    )
    assert isinstance(tokens, m.TokenOut) and tokens.access_token
    client = generated.AuthenticatedClient(
        base_url=live_server, token=tokens.access_token, raise_on_unexpected_status=True
    )

    me = api("auth.get_me").sync(client=client)
    assert (me.id, me.role, me.clinic_id) == (coordinator.id, "treatment_coordinator", tenant.id)

    lead = api("intake.create_lead").sync(
        client=client,
        body=m.LeadIn(first_name="Maya", last_name="Cruz", phone="(415) 555-0199", email="maya@example.com"),
    )
    assert isinstance(lead, m.LeadCreatedOut)
    assert (lead.first_name, lead.phone, lead.pipeline_stage) == ("Maya", "+14155550199", "new_lead")
    assert lead.assigned_to_id == coordinator.id

    list_tasks = api("tasks.list_lead_tasks")
    tasks = wait_for(lambda: list_tasks.sync(lead.id, client=client), timeout=60)  # the worker made it
    [task] = tasks
    assert isinstance(task, m.TaskOut)
    assert (task.title, task.status, task.assigned_to_id) == ("Initial contact", "PENDING", coordinator.id)

    done = api("tasks.complete_task").sync(
        task.id, client=client, body=m.CompleteIn(notes="Spoke with Maya; consult booked")
    )
    assert isinstance(done, m.TaskOut)
    assert (done.id, done.status, done.completed_by) == (task.id, "COMPLETED", coordinator.id)
    assert [t.status for t in list_tasks.sync(lead.id, client=client)] == ["COMPLETED"]

    refused = api("tasks.complete_task").sync_detailed(task.id, client=client, body=m.CompleteIn())
    # Completing twice: a declared answer (an undeclared one would raise), in the API's error shape.
    assert refused.status_code == 409
    answer = json.loads(refused.content)
    assert (answer["code"], answer["message"]) == ("task_closed", f"task {task.id} is already completed")
