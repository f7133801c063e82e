"""Refresh tokens rotate and a reused one ends its session everywhere; logout; changing one's own
password ends every other session."""

from __future__ import annotations

import sqlalchemy as sa

from app.platform.audit.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.onboarding.kit import bearer, login


def refresh(client, token: str):
    return client.post("/api/auth/refresh", json={"refresh_token": token})


def audit_actions(db, user_id: int) -> list[str]:
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(AuditEvent.action)
                .where(AuditEvent.subject_id == str(user_id))
                .order_by(AuditEvent.id)
            )
        )


def test_each_refresh_spends_its_token_and_a_reused_one_revokes_the_family(client, db, tenant):
    user = tenant.users["treatment_coordinator"]
    first = login(client, user.email).json
    other_device = login(client, user.email).json
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200 and second.json["refresh_token"] != first["refresh_token"]
    third = refresh(client, second.json["refresh_token"])
    assert third.status_code == 200

    # A copy of the first token comes back (a thief, or the user after the thief): refused, and the
    # legitimate newest token of that login stops working too.
    reused = refresh(client, first["refresh_token"])
    assert reused.status_code == 401 and "already used" in reused.json["message"]
    assert refresh(client, third.json["refresh_token"]).status_code == 401
    # Another login's session is its own family: untouched.
    assert refresh(client, other_device["refresh_token"]).status_code == 200
    assert "auth.refresh_family_revoked" in audit_actions(db, user.id)


def test_logout_ends_the_session_of_the_refresh_token(client, db, tenant):
    user = tenant.users["front_desk"]
    tokens = login(client, user.email).json
    rotated = refresh(client, tokens["refresh_token"]).json
    assert (
        client.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}).status_code == 204
    )
    assert refresh(client, rotated["refresh_token"]).status_code == 401
    # Logging out twice is harmless; an access token or garbage is not a refresh token.
    assert (
        client.post("/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}).status_code == 204
    )
    assert client.post("/api/auth/logout", json={"refresh_token": tokens["access_token"]}).status_code == 401
    assert client.post("/api/auth/logout", json={"refresh_token": "garbage"}).status_code == 401
    assert client.post("/api/auth/logout", json={}).status_code == 422
    assert "auth.logout" in audit_actions(db, user.id)


def test_changing_ones_own_password_ends_every_other_session(client, db, tenant):
    user = tenant.users["doctor"]
    here, elsewhere = login(client, user.email).json, login(client, user.email).json
    change = {"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"}
    wrong = client.post(
        "/api/me/password", headers=bearer(here["access_token"]), json={**change, "current_password": "nope"}
    )
    assert wrong.status_code == 400 and "current_password" in wrong.json["errors"]["json"]
    weak = client.post(
        "/api/me/password", headers=bearer(here["access_token"]), json={**change, "new_password": "short"}
    )
    assert weak.status_code == 422 and "new_password" in weak.json["errors"]["json"]
    own_email = client.post(
        "/api/me/password", headers=bearer(here["access_token"]), json={**change, "new_password": user.email}
    )
    assert own_email.status_code == 422 and "new_password" in own_email.json["errors"]["json"]

    changed = client.post("/api/me/password", headers=bearer(here["access_token"]), json=change)
    assert changed.status_code == 200
    assert client.get("/api/me", headers=bearer(changed.json["access_token"])).status_code == 200
    # Every token from before is refused: this device's old ones and the other device's.
    assert client.get("/api/me", headers=bearer(here["access_token"])).status_code == 401
    assert client.get("/api/me", headers=bearer(elsewhere["access_token"])).status_code == 401
    assert refresh(client, elsewhere["refresh_token"]).status_code == 401
    assert refresh(client, changed.json["refresh_token"]).status_code == 200
    assert login(client, user.email).status_code == 401
    assert login(client, user.email, "a brand new passphrase").status_code == 200
    assert "user.password_change" in audit_actions(db, user.id)


def test_wrong_current_passwords_are_throttled_like_logins(client, tenant):
    user = tenant.users["front_desk"]
    headers = bearer(login(client, user.email).json["access_token"])
    guess = {"current_password": "wrong guess", "new_password": "whatever passphrase"}
    statuses = [client.post("/api/me/password", headers=headers, json=guess).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]  # login_max_failures=3 in the test settings


def test_an_api_key_has_no_password_to_change(client, tenant):
    key = client.post(
        "/api/api-keys", headers=tenant.headers(), json={"name": "crm", "permissions": ["lead:read"]}
    ).json["key"]
    body = {"current_password": TEST_PASSWORD, "new_password": "a brand new passphrase"}
    assert client.post("/api/me/password", headers={"X-API-Key": key}, json=body).status_code == 403
