"""Every process of the Procfile refuses to start without its secrets, naming the missing variable:
none has a built-in value that a forgotten setting would silently fall back to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.devtools.local_redis import free_port
from tests.workers import PROJECT_ROOT


def _procfile() -> dict[str, str]:
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def _start(process: str, tmp_path, missing: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != missing}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}",
    }
    return subprocess.run(
        ["sh", "-c", _procfile()[process]],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "PHI_ENCRYPTION_KEY"])
@pytest.mark.parametrize("process", ["web", "worker", "beat", "stream"])
def test_a_procfile_process_without_a_secret_refuses_to_start(tmp_path, process, missing):
    run = _start(process, tmp_path, missing)
    assert run.returncode != 0
    assert f"ConfigError: {missing}" in run.stdout + run.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "PHI_ENCRYPTION_KEY"])
def test_the_cli_without_a_secret_refuses_to_start(tmp_path, missing):
    env = {k: v for k, v in os.environ.items() if k != missing}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--json"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert missing in run.stderr
