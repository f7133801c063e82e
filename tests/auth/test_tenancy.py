"""A user of clinic A gets 404 for every kind of resource of clinic B, and never its data."""


def test_users_and_api_keys_of_another_clinic_are_404(client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    key = client.post("/api/api-keys", json={"name": "b", "permissions": ["lead:read"]}, headers=b.headers())
    b_user = b.users["doctor"].id
    for method, path, body in [
        ("GET", f"/api/users/{b_user}", None),
        ("PUT", f"/api/users/{b_user}", {"name": "stolen"}),
        ("DELETE", f"/api/api-keys/{key.json['id']}", None),
    ]:
        resp = client.open(path, method=method, json=body, headers=a.headers())
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert "stolen" not in resp.get_data(as_text=True)
    # Nothing of B leaks into A's lists.
    assert {u["id"] for u in client.get("/api/users", headers=a.headers()).json} == {
        u.id for u in a.users.values()
    }
    assert client.get("/api/api-keys", headers=a.headers()).json == []
    assert client.get("/api/clinic", headers=a.headers()).json["id"] == a.id
    # B's key still works: A's attempt changed nothing.
    assert client.get("/api/me", headers={"X-API-Key": key.json["key"]}).status_code == 200


def test_audit_events_of_another_clinic_are_invisible(client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    client.put("/api/clinic", json={"name": "B renamed"}, headers=b.headers())
    events = client.get("/api/audit-events", headers=a.headers()).json
    assert all(e["subject_type"] != "clinic" or e["subject_id"] == str(a.id) for e in events)
    assert not any(e["action"] == "clinic.update" for e in events)
