"""API keys: shown once, stored hashed, carry only their listed permissions, revocable."""

import sqlalchemy as sa

from app.domains.auth.models import ApiKey


def create_key(client, tenant, permissions):
    resp = client.post(
        "/api/api-keys",
        json={"name": "website", "permissions": permissions},
        headers=tenant.headers("clinic_admin"),
    )
    assert resp.status_code == 201, resp.json
    return resp.json


def test_key_is_shown_once_and_stored_hashed(client, db, tenant):
    created = create_key(client, tenant, ["lead:read"])
    raw = created["key"]
    listed = client.get("/api/api-keys", headers=tenant.headers("clinic_admin")).json
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    with db.unit_of_work() as session:
        stored = session.scalar(sa.select(ApiKey.key_hash))
    assert raw not in stored and len(stored) == 64


def test_key_has_only_its_listed_permissions(client, tenant):
    raw = create_key(client, tenant, ["lead:read"])["key"]
    me = client.get("/api/me", headers={"X-API-Key": raw})
    assert me.status_code == 200
    assert me.json["permissions"] == ["lead:read"] and me.json["clinic_id"] == tenant.id
    assert client.get("/api/clinic", headers={"X-API-Key": raw}).status_code == 200
    assert client.put("/api/clinic", json={"name": "x"}, headers={"X-API-Key": raw}).status_code == 403
    assert client.get("/api/users", headers={"X-API-Key": raw}).status_code == 403


def test_revoked_key_is_401(client, tenant):
    created = create_key(client, tenant, ["lead:read"])
    assert client.delete(f"/api/api-keys/{created['id']}", headers=tenant.headers()).status_code == 204
    assert client.get("/api/me", headers={"X-API-Key": created["key"]}).status_code == 401
    assert client.get("/api/me", headers={"X-API-Key": "fk_made_up"}).status_code == 401


def test_unknown_permission_is_422_naming_the_field(client, tenant):
    resp = client.post(
        "/api/api-keys", json={"name": "x", "permissions": ["lead:everything"]}, headers=tenant.headers()
    )
    assert resp.status_code == 422
    assert "permissions" in resp.json["errors"]["json"]
