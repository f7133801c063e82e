"""Clinic settings and users: validation with the field named, ETags, audit, out-of-office."""


def test_clinic_settings_round_trip_with_etag(client, tenant):
    got = client.get("/api/clinic", headers=tenant.headers("front_desk"))
    assert got.status_code == 200 and got.headers["ETag"]
    hours = {"mon": ["09:00", "18:00"], "sat": ["09:00", "12:00"], "sun": None}
    resp = client.put(
        "/api/clinic",
        headers={**tenant.headers(), "If-Match": got.headers["ETag"]},
        json={"timezone": "America/Chicago", "business_hours": hours, "holiday_country": "US"},
    )
    assert resp.status_code == 200
    assert resp.json["timezone"] == "America/Chicago"
    assert resp.json["business_hours"]["sat"] == ["09:00", "12:00"]
    # A second writer with the old ETag loses: 412, and nothing changes.
    stale = client.put(
        "/api/clinic",
        headers={**tenant.headers(), "If-Match": got.headers["ETag"]},
        json={"timezone": "Europe/Paris"},
    )
    assert stale.status_code == 412
    assert client.get("/api/clinic", headers=tenant.headers()).json["timezone"] == "America/Chicago"


def test_bad_clinic_settings_are_422_naming_the_field(client, tenant):
    cases = [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"business_hours": {"mon": ["17:00", "08:00"]}}, "business_hours"),
        ({"business_hours": {"funday": None}}, "business_hours"),
        ({"business_hours": {"mon": ["8am", "5pm"]}}, "business_hours"),
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"assignment_policy": "lottery"}, "assignment_policy"),
    ]
    for body, field in cases:
        resp = client.put("/api/clinic", json=body, headers=tenant.headers())
        assert resp.status_code == 422, body
        assert field in resp.json["errors"]["json"], body
    assert client.get("/api/clinic", headers=tenant.headers()).json["timezone"] == "America/New_York"


def test_user_crud_is_audited(client, tenant):
    resp = client.post(
        "/api/users",
        headers=tenant.headers(),
        json={
            "email": "New.Coord@Example.com",
            "name": "New Coord",
            "role": "treatment_coordinator",
            "password": "a long enough password",
        },
    )
    assert resp.status_code == 201
    user_id = resp.json["id"]
    assert resp.json["email"] == "new.coord@example.com" and "password" not in resp.json
    dup = client.post(
        "/api/users",
        headers=tenant.headers(),
        json={
            "email": "new.coord@example.com",
            "name": "X",
            "role": "doctor",
            "password": "a long enough password",
        },
    )
    assert dup.status_code == 409
    upd = client.put(f"/api/users/{user_id}", json={"out_of_office": True}, headers=tenant.headers())
    assert upd.status_code == 200 and upd.json["out_of_office"] is True
    events = client.get(f"/api/audit-events?subject=user:{user_id}", headers=tenant.headers()).json
    assert [e["action"] for e in events] == ["user.update", "user.create"]
    assert events[0]["before"] == {"out_of_office": False} and events[0]["after"] == {"out_of_office": True}
    login = client.post(
        "/api/auth/login", json={"email": "new.coord@example.com", "password": "a long enough password"}
    )
    assert login.status_code == 200


def test_bad_user_input_is_422(client, tenant):
    for body, field in [
        ({"email": "not-an-email", "name": "x", "role": "doctor", "password": "long enough pw"}, "email"),
        ({"email": "a@example.com", "name": "x", "role": "king", "password": "long enough pw"}, "role"),
        ({"email": "a@example.com", "name": "x", "role": "doctor", "password": "short"}, "password"),
        (
            {
                "email": "a@example.com",
                "name": "x",
                "role": "doctor",
                "password": "long enough pw",
                "timezone": "Nowhere/City",
            },
            "timezone",
        ),
    ]:
        resp = client.post("/api/users", json=body, headers=tenant.headers())
        assert resp.status_code == 422 and field in resp.json["errors"]["json"], body


def test_audit_filter_by_actor(client, tenant):
    client.put("/api/clinic", json={"name": "Renamed"}, headers=tenant.headers())
    admin = tenant.users["clinic_admin"].id
    events = client.get(f"/api/audit-events?actor=user:{admin}", headers=tenant.headers()).json
    assert [e["action"] for e in events] == ["clinic.update"]
    assert events[0]["after"] == {"name": "Renamed"}
    assert client.get("/api/audit-events?subject=lead", headers=tenant.headers()).status_code == 422
