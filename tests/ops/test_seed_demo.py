"""`followup seed-demo --json`: one demo clinic with a user per role, created once."""

import json
import subprocess
import sys

from tests.workers import PROJECT_ROOT, worker_env


def run_seed(app, tmp_path):
    env = worker_env(app.config["SETTINGS"], FOLLOWUP_VAR_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo", "--json"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_seed_demo_creates_once_and_logins_work(app, client, tmp_path):
    first = run_seed(app, tmp_path)
    assert {u["role"] for u in first["users"]} == {
        "front_desk",
        "treatment_coordinator",
        "clinic_admin",
        "doctor",
    }
    assert first["webhook_secret"]
    second = run_seed(app, tmp_path)
    assert second == first  # once: same clinic, same logins
    for user in first["users"]:
        resp = client.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
        assert resp.status_code == 200, user
        me = client.get("/api/me", headers={"Authorization": f"Bearer {resp.json['access_token']}"}).json
        assert me["clinic_id"] == first["clinic_id"] and me["role"] == user["role"]
