"""The platform operator's API: only FOLLOWUP_PLATFORM_TOKEN opens it (never a clinic's token or
key, never an unset setting); bad input names the field and writes nothing; a clinic's admin sees
no other clinic's users."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.domains.auth.models import Clinic
from tests.onboarding.kit import bearer, login, set_password
from tests.outbound.kit import use

PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"
NEW_CLINIC = {
    "name": "Northside Ortho",
    "timezone": "America/Denver",
    "admin_email": "lead@northside.example",
}


@pytest.fixture
def platform(app, monkeypatch):
    use(monkeypatch, app.config["SETTINGS"], platform_token=PLATFORM_TOKEN)
    return bearer(PLATFORM_TOKEN)


def clinic_count(db) -> int:
    with db.unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Clinic))


def test_the_operator_creates_a_clinic_whose_admin_sets_a_password_and_logs_in(client, platform):
    created = client.post("/api/platform/clinics", headers=platform, json={**NEW_CLINIC, "admin_name": "Lee"})
    assert created.status_code == 201
    body = created.json
    assert body["clinic_id"] and body["admin_user_id"] and body["setup_link"].endswith(body["setup_token"])
    assert set_password(client, body["setup_token"]).status_code == 204
    me = client.get(
        "/api/me", headers=bearer(login(client, "lead@northside.example").json["access_token"])
    ).json
    assert (me["id"], me["clinic_id"], me["role"]) == (
        body["admin_user_id"],
        body["clinic_id"],
        "clinic_admin",
    )


def test_only_the_platform_token_opens_it(app, client, tenant, monkeypatch):
    def create(headers):
        return client.post("/api/platform/clinics", headers=headers, json=NEW_CLINIC).status_code

    # No token configured: refused whatever is sent.
    assert create(bearer(PLATFORM_TOKEN)) == 403
    use(monkeypatch, app.config["SETTINGS"], platform_token=PLATFORM_TOKEN)
    assert create({}) == 401
    assert create(bearer("wrong-" + PLATFORM_TOKEN)) == 403
    assert create(tenant.headers("clinic_admin")) == 403  # a clinic admin's JWT is not the operator's
    key = client.post(
        "/api/api-keys",
        headers=tenant.headers(),
        json={"name": "all", "permissions": ["lead:read", "lead:configure"]},
    ).json["key"]
    assert create({"X-API-Key": key}) == 403
    before = clinic_count(app.extensions["followup.db"])
    assert create(bearer(PLATFORM_TOKEN)) == 201
    assert clinic_count(app.extensions["followup.db"]) == before + 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Nowhere/Special"}, "timezone"),
        ({"name": "   "}, "name"),
        ({"name": ""}, "name"),
        ({"admin_email": "no-at-sign"}, "admin_email"),
        ({"admin_email": None}, "admin_email"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, db, platform, change, field):
    answer = client.post("/api/platform/clinics", headers=platform, json={**NEW_CLINIC, **change})
    assert answer.status_code == 422 and field in answer.json["errors"]["json"]
    assert clinic_count(db) == 0


def test_a_taken_email_is_409_and_writes_no_clinic(client, db, tenant, platform):
    taken = tenant.users["doctor"].email.upper()
    before = clinic_count(db)
    answer = client.post("/api/platform/clinics", headers=platform, json={**NEW_CLINIC, "admin_email": taken})
    assert answer.status_code == 409 and "admin_email" in answer.json["errors"]["json"]
    assert clinic_count(db) == before


def test_another_clinics_users_are_404(client, make_tenant):
    ours, theirs = make_tenant("Ours"), make_tenant("Theirs")
    stranger = theirs.users["treatment_coordinator"].id
    headers = ours.headers("clinic_admin")
    assert client.get(f"/api/users/{stranger}", headers=headers).status_code == 404
    assert client.put(f"/api/users/{stranger}", headers=headers, json={"name": "Mine now"}).status_code == 404
    listed = {u["id"] for u in client.get("/api/users", headers=headers).json}
    assert stranger not in listed and listed == {u.id for u in ours.users.values()}
