"""A clinic goes live: the operator creates it with `followup clinics create` (a process of its own),
its admin sets a password through the printed link and logs in, invites a coordinator, who gets the
link by email (a real worker delivering through the notifications ledger to an SMTP server) and
sets theirs; bad input to the command writes nothing."""

from __future__ import annotations

import re

import sqlalchemy as sa

from app.domains.auth.models import Clinic, User
from tests.conftest import TEST_PASSWORD
from tests.onboarding.kit import (
    PUBLIC_BASE_URL,
    bearer,
    create_clinic,
    login,
    run_cli,
    set_password,
    token_of,
)
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.workers import thread_worker, wait_for

LINK = re.compile(re.escape(PUBLIC_BASE_URL) + r"/console/set-password#token=[A-Za-z0-9_-]+")


def _text_of(message) -> str:
    parts = message.get_payload() if message.is_multipart() else [message]
    plain = next(p for p in parts if p.get_content_type() == "text/plain")
    return plain.get_payload(decode=True).decode()


def test_a_new_clinic_its_admin_and_an_invited_coordinator_all_log_in(app, client, db, tmp_path, monkeypatch):
    created = create_clinic(app, tmp_path, name="Bright Smiles", email="Owner@Bright.example")
    assert LINK.fullmatch(created["setup_link"])
    assert created["setup_token"] == token_of(created["setup_link"])
    with db.unit_of_work() as session:
        clinic = session.get(Clinic, created["clinic_id"])
        assert (clinic.name, clinic.timezone) == ("Bright Smiles", "America/Chicago")
        admin = session.get(User, created["admin_user_id"])
        assert (admin.email, admin.role, admin.password_hash) == (
            "owner@bright.example",
            "clinic_admin",
            None,
        )
        # Only the token's hash is stored: the raw token appears nowhere in the database.
        stored = session.execute(sa.text("SELECT token_hash FROM password_setup_tokens")).scalars().all()
        assert stored and created["setup_token"] not in stored

    assert login(client, "owner@bright.example").status_code == 401  # no password yet
    assert set_password(client, created["setup_token"]).status_code == 204
    again = set_password(client, created["setup_token"], "another good password")
    assert again.status_code == 410 and "token" in again.json["errors"]["json"]
    signed_in = login(client, "owner@bright.example")
    assert signed_in.status_code == 200
    admin_headers = bearer(signed_in.json["access_token"])
    me = client.get("/api/me", headers=admin_headers).json
    assert (me["clinic_id"], me["role"]) == (created["clinic_id"], "clinic_admin")
    # The clinic has every domain's defaults, as a demo clinic does.
    assert client.get("/api/pipeline-stages", headers=admin_headers).json

    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        use(monkeypatch, settings, public_base_url=PUBLIC_BASE_URL, **FAST_DELIVERY, **smtp_settings(port))
        with thread_worker(app):
            invited = client.post(
                "/api/users",
                headers=admin_headers,
                json={
                    "email": "tc@bright.example",
                    "name": "Terry Coordinator",
                    "role": "treatment_coordinator",
                },
            )
            assert invited.status_code == 201 and invited.json["password_set"] is False
            wait_for(lambda: len(server.raw_messages) == 1, timeout=30)
    email = server.messages[0]
    assert email["To"] == "tc@bright.example" and "Bright Smiles" in email["Subject"]
    link = LINK.search(_text_of(email)).group(0)
    assert login(client, "tc@bright.example").status_code == 401
    assert set_password(client, token_of(link), "coordinator passphrase").status_code == 204
    assert set_password(client, token_of(link), "coordinator passphrase").status_code == 410
    coordinator = login(client, "tc@bright.example", "coordinator passphrase")
    assert coordinator.status_code == 200
    me = client.get("/api/me", headers=bearer(coordinator.json["access_token"])).json
    assert (me["clinic_id"], me["role"]) == (created["clinic_id"], "treatment_coordinator")
    shown = client.get(f"/api/users/{invited.json['id']}", headers=admin_headers).json
    assert shown["password_set"] is True

    events = client.get("/api/audit-events", headers=admin_headers, query_string={"page_size": 100}).json
    actions = [e["action"] for e in events]
    assert actions.count("user.password_set") == 2 and "clinic.create" in actions
    for event in events:  # no password, token or link in any audit detail
        detail = f"{event.get('before')} {event.get('after')}"
        assert TEST_PASSWORD not in detail and "token=" not in detail and created["setup_token"] not in detail


def test_the_command_prints_the_clinic_and_its_link_for_a_person(app, tmp_path):
    done = run_cli(
        app, tmp_path, "clinics", "create", "--name", "Plain Output", "--timezone", "Europe/Berlin",
        "--admin-email", "admin@plain.example", "--admin-name", "Pat Admin",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"Clinic \d+ created", done.stdout) and LINK.search(done.stdout)


def test_bad_input_names_the_option_exits_non_zero_and_writes_nothing(app, db, tmp_path):
    create_clinic(app, tmp_path, email="taken@clinic.example")
    with db.unit_of_work() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(Clinic))
    cases = [
        (["--name", "X", "--timezone", "Mars/Olympus", "--admin-email", "a@x.example"], "--timezone"),
        (["--name", "  ", "--timezone", "UTC", "--admin-email", "b@x.example"], "--name"),
        (["--name", "X", "--timezone", "UTC", "--admin-email", "not-an-email"], "--admin-email"),
        (["--name", "X", "--timezone", "UTC", "--admin-email", "Taken@Clinic.example"], "--admin-email"),
    ]
    for args, option in cases:
        done = run_cli(app, tmp_path, "clinics", "create", *args)
        assert done.returncode != 0, args
        assert f"error: {option}:" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    with db.unit_of_work() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Clinic)) == before
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
