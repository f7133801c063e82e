"""Helpers of the onboarding tests: the CLI as a process of its own, setup links, logins."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit

from tests.conftest import TEST_PASSWORD
from tests.workers import PROJECT_ROOT, worker_env

PUBLIC_BASE_URL = "https://app.example.test"


def run_cli(app, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`followup <args>` against the session's database and Redis, as an operator runs it."""
    env = worker_env(
        app.config["SETTINGS"],
        FOLLOWUP_VAR_DIR=str(tmp_path),
        FOLLOWUP_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
    )
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )


def create_clinic(
    app, tmp_path, name="Bright Smiles", timezone="America/Chicago", email="owner@bright.example"
):
    done = run_cli(
        app,
        tmp_path,
        "clinics",
        "create",
        "--name",
        name,
        "--timezone",
        timezone,
        "--admin-email",
        email,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def token_of(link: str) -> str:
    """The token of a setup link (it travels in the fragment)."""
    fragment = urlsplit(link).fragment
    assert fragment.startswith("token="), link
    return fragment.removeprefix("token=")


def set_password(client, token: str, password: str = TEST_PASSWORD):
    return client.post("/api/auth/password-setup", json={"token": token, "password": password})


def login(client, email: str, password: str = TEST_PASSWORD):
    return client.post("/api/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
