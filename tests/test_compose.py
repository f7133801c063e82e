"""The shipped docker-compose is a valid Compose file that deploys: every setting reaches the
containers (`.env`, from `.env.example`, which cannot drift from app/platform/config.py), every long-running
service restarts by itself and has a healthcheck that tells a live process from a stuck one, metrics
stay per container, beat's schedule survives a restart, and RabbitMQ is an optional profile. Beside it,
compose.try.yml runs the same processes on the development backends, with no .env and no credentials."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import PurePosixPath

import jsonschema
import pytest
import yaml

from app.devtools import env_example
from app.devtools.runner import long_running_processes
from app.platform.config import ConfigError, Settings, env_name
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


# --- compose.try.yml: `docker compose -f compose.try.yml up --build`, the system on the development backends


def _try_out() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose.try.yml").read_text())


def _try_app_services() -> dict[str, dict]:
    return {name: spec for name, spec in _try_out()["services"].items() if spec.get("image") == IMAGE}


def test_the_try_out_is_a_compose_project_of_its_own():
    try_out = _try_out()
    # Its own project name: in a checkout that also deploys docker-compose.yml, `up` on the try-out
    # never recreates the production containers nor mounts their volumes. (The vendored schema is
    # Compose 1.29's, older than the top-level `name`.)
    assert try_out["name"] == "followup-try" != PROJECT_ROOT.name
    schema = json.loads((PROJECT_ROOT / "tests/data/compose-spec.json").read_text())
    without_name = {key: value for key, value in try_out.items() if key != "name"}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(without_name)) == []
    # Nothing to fill in first: no .env, no variable that must be set.
    assert "${" not in (PROJECT_ROOT / "compose.try.yml").read_text()
    assert [n for n, s in try_out["services"].items() if "env_file" in s] == []
    # Published on this machine only.
    ports = [p for s in try_out["services"].values() for p in s.get("ports", [])]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_the_try_out_runs_every_procfile_process_on_the_development_backends():
    services = _try_app_services()
    assert set(long_running_processes(PROJECT_ROOT / "Procfile")) | {"release"} == set(services)
    production = _app_services()
    for name, spec in services.items():
        env = spec["environment"]
        assert (env["FOLLOWUP_ENV"], env["EMAIL_BACKEND"], env["SMS_BACKEND"]) == (
            "development",
            "console",
            "console",
        ), name
        # The same program and queues as the production service of that name.
        command = spec["command"] if isinstance(spec["command"], list) else shlex.split(spec["command"])
        if name in production and "celery" in command:
            queues = next(a for a in command if a.startswith("--queues=")) if "worker" in command else None
            assert queues is None or queues in production[name]["command"], name
    assert "seed-demo" in " ".join(services["release"]["command"])


def test_the_try_outs_settings_start_where_production_refuses_them(monkeypatch):
    """What every try-out process is given validates in development mode, and the same in production
    mode is refused: why docker-compose.yml cannot be tried without real SMTP and SMS credentials."""
    for name in {env_name(f.name) for f in fields(Settings)}:
        monkeypatch.delenv(name, raising=False)
    for name, value in _try_app_services()["web"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("SECRET_KEY", "s" * 43)
    monkeypatch.setenv("PHI_ENCRYPTION_KEY", "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ=")
    settings = Settings.from_env()
    settings.validate()
    assert (settings.email_backend, settings.sms_backend) == ("console", "console")
    monkeypatch.setenv("FOLLOWUP_ENV", "production")
    with pytest.raises(ConfigError, match="BACKEND=console is for development"):
        Settings.from_env().validate()


def test_each_try_out_process_starts_with_the_secrets_of_the_shared_volume(tmp_path):
    """The try-out's entrypoint, run as written: the development secrets are made once on the
    volume, and every process (each container runs the entrypoint anew) gets the same ones."""
    entrypoint = [part.replace("$$", "$") for part in _try_out()["x-try"]["entrypoint"]]
    env = {
        **os.environ,
        "FOLLOWUP_VAR_DIR": str(tmp_path),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    for name in ("SECRET_KEY", "PHI_ENCRYPTION_KEY", "FLOWER_BASIC_AUTH"):
        env.pop(name, None)
    show = ["sh", "-c", 'echo "$SECRET_KEY|$PHI_ENCRYPTION_KEY|$FLOWER_BASIC_AUTH"']
    runs = [
        subprocess.run(
            [*entrypoint, *show], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    secret_key, phi_key, flower = runs[0].stdout.strip().split("|")
    assert len(secret_key) >= 32 and flower.startswith("ops:")
    assert phi_key == (tmp_path / "phi.key").read_text().strip()
    assert runs[1].stdout == runs[0].stdout


def test_docker_compose_reads_the_try_out_as_written():
    """Compose itself, where this machine has it: the file loads, its project is its own, and the
    processes get the development backends."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("no `docker compose` here; the file is checked against the Compose schema above")
    loaded = subprocess.run(
        [docker, "compose", "-f", "compose.try.yml", "config", "--format", "json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loaded.returncode == 0, loaded.stderr
    config = json.loads(loaded.stdout)
    assert config["name"] == "followup-try"
    assert config["services"]["web"]["environment"]["EMAIL_BACKEND"] == "console"
    assert config["services"]["worker"]["environment"]["FOLLOWUP_ENV"] == "development"


def test_the_secrets_command_prints_its_help_and_makes_nothing(tmp_path):
    env = {**os.environ, "FOLLOWUP_VAR_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "app.devtools.dev_secrets", "--help"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m app.devtools.dev_secrets")
    assert list(tmp_path.iterdir()) == []
