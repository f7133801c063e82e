"""Every error answers the one JSON shape; bad input is never a 500."""


def test_unknown_path_is_json_404(client):
    resp = client.get("/api/nothing-here")
    assert resp.status_code == 404
    assert resp.json["code"] == "not_found" and resp.json["status"] == "Not Found"


def test_wrong_method_is_json_405(client):
    resp = client.delete("/api/auth/login")
    assert resp.status_code == 405
    assert resp.json["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"]


def test_malformed_json_is_400(client):
    resp = client.post("/api/auth/login", data="{not json", content_type="application/json")
    assert resp.status_code == 400
    assert resp.json["code"] == "bad_request"


def test_validation_error_names_the_field(client):
    resp = client.post("/api/auth/login", json={"password": "x"})
    assert resp.status_code == 422
    assert "email" in resp.json["errors"]["json"]
    assert "email" in resp.json["message"]


def test_no_credentials_is_401_json(client):
    resp = client.get("/api/me")
    assert resp.status_code == 401
    assert resp.json["code"] == "unauthorized"
