"""The shipped docker-compose supervises: every long-running service restarts by itself and has a
healthcheck that tells a live process from a stuck one."""

from __future__ import annotations

import time

import yaml

from tests.workers import PROJECT_ROOT, subprocess_worker

ONE_SHOT = {"release"}


def _services() -> dict[str, dict]:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["services"]


def test_every_long_running_service_restarts_and_has_a_healthcheck():
    services = {name: spec for name, spec in _services().items() if name not in ONE_SHOT}
    assert {"web", "worker", "background", "sweeps", "beat", "flower"} <= set(services)
    assert {name: spec.get("restart") for name, spec in services.items()} == dict.fromkeys(
        services, "unless-stopped"
    )
    assert [name for name, spec in services.items() if not spec.get("healthcheck", {}).get("test")] == []


def test_the_worker_healthcheck_reads_the_file_the_workers_touch():
    services = _services()
    liveness = services["worker"]["environment"]["FOLLOWUP_LIVENESS_FILE"]
    for name, spec in services.items():
        if "celery -A workers.main worker" in str(spec.get("command", "")):
            assert liveness in " ".join(spec["healthcheck"]["test"]), name


def test_a_worker_touches_its_liveness_file_while_its_consumer_runs(app, tmp_path):
    alive = tmp_path / "alive"
    with subprocess_worker(app.config["SETTINGS"], FOLLOWUP_LIVENESS_FILE=str(alive)) as worker:
        deadline = time.monotonic() + 60
        while not alive.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        assert alive.exists(), "the worker never touched its liveness file"
        first = alive.stat().st_mtime_ns
        while alive.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert alive.stat().st_mtime_ns > first, "the liveness file is not touched again"
