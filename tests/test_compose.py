"""The shipped docker-compose is a valid Compose file that deploys: every setting reaches the
containers (`.env`, from `.env.example`, which cannot drift from app/platform/config.py), every long-running
service restarts by itself and has a healthcheck that tells a live process from a stuck one, metrics
stay per container, beat's schedule survives a restart, and RabbitMQ is an optional profile."""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import fields
from pathlib import PurePosixPath

import jsonschema
import yaml

from app.devtools import env_example
from app.platform.config import Settings, env_name
from tests.workers import PROJECT_ROOT, subprocess_worker

ONE_SHOT = {"release"}
IMAGE = "followup-engine"


def _compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _app_services() -> dict[str, dict]:
    """The services running this project's image."""
    return {name: spec for name, spec in _services().items() if spec.get("image") == IMAGE}


def test_the_compose_file_is_valid_against_the_compose_specification():
    schema = json.loads((PROJECT_ROOT / "tests/data/compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []
    # The schema does catch a mistake (a misspelt key, a wrong type).
    broken = _compose()
    broken["services"]["web"]["helthcheck"] = broken["services"]["web"].pop("healthcheck")
    broken["services"]["worker"]["restart"] = 1
    assert len(list(validator.iter_errors(broken))) == 2


def test_every_setting_reaches_every_app_container_from_the_env_file():
    services = _app_services()
    assert {"release", "web", "worker", "background", "webhooks", "sweeps", "beat", "flower"} <= set(services)
    for name, spec in services.items():
        assert ".env" in spec["env_file"], name
    listed = {
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {env_name(f.name) for f in fields(Settings)} <= listed


def test_env_example_is_generated_from_the_settings_and_holds_no_value():
    text = (PROJECT_ROOT / ".env.example").read_text()
    assert text == env_example.render(), "run `make env-example`"
    assert [
        line for line in text.splitlines() if line and not line.startswith("#") and not line.endswith("=")
    ] == []
    # Each variable has its comment.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# default:") and lines[i - 2].startswith("# "), line


def test_metrics_stay_in_each_container():
    """prometheus-client names its files by pid and every container has small pids: a directory shared
    by containers mixes their counters, and one container's exits delete another's gauges."""
    compose = _compose()
    named_volumes = set(compose.get("volumes") or {})
    for name, spec in _app_services().items():
        path = spec["environment"].get("PROMETHEUS_MULTIPROC_DIR")
        if path is None:
            continue
        assert path in spec.get("tmpfs", []), name
        for mount in spec.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert not PurePosixPath(path).is_relative_to(target), (name, mount)
            assert source not in named_volumes or not PurePosixPath(target).is_relative_to(path), (
                name,
                mount,
            )


def test_beat_keeps_its_schedule_on_a_volume_of_its_own():
    compose = _compose()
    beat = compose["services"]["beat"]
    schedule = next(a.split("=", 1)[1] for a in shlex.split(beat["command"]) if a.startswith("--schedule="))
    mounts = dict(m.split(":")[1::-1] for m in beat["volumes"])  # target -> source
    volume = mounts[str(PurePosixPath(schedule).parent)]
    assert volume in compose["volumes"]
    others = [
        n
        for n, s in compose["services"].items()
        if n != "beat" and any(volume in m for m in s.get("volumes", []))
    ]
    assert others == []


def test_rabbitmq_is_an_optional_profile():
    rabbitmq = _services()["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]
    assert rabbitmq["restart"] == "unless-stopped" and rabbitmq["healthcheck"]["test"]
    # Nothing started by default depends on it.
    assert [n for n, s in _services().items() if "rabbitmq" in (s.get("depends_on") or {})] == []


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
