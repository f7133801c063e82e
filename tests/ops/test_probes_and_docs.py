"""Health probes, the OpenAPI document and the offline Swagger UI."""

from app import create_app
from tests.conftest import test_settings

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json == {"status": "ok"}
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_the_broken_dependency(migrated_database):
    broken = create_app(test_settings(migrated_database, "redis://127.0.0.1:1/0"))
    resp = broken.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json["checks"]["database"] == "ok"
    assert resp.json["checks"]["broker"].startswith("error")


def test_openapi_documents_every_operation(client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"bearerAuth", "apiKeyAuth"} <= set(spec["components"]["securitySchemes"])
    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            if not op.get("summary"):
                missing.append(f"{where}: summary")
            responses = op.get("responses", {})
            # A tracked link's success is its redirect (302): 2xx or 3xx.
            if not any(code.startswith(("2", "3")) for code in responses):
                missing.append(f"{where}: success response")
            secured = bool(op.get("security"))  # a public operation says `security: []`
            if path.startswith("/api") and secured and not {"401", "403"} <= set(responses):
                missing.append(f"{where}: 401/403 responses")
            if "requestBody" in op and "422" not in responses:
                missing.append(f"{where}: 422 response")
    assert not missing, "\n".join(missing)


def test_secured_operations_declare_security(client):
    spec = client.get("/api/openapi.json").json
    assert spec["paths"]["/api/me"]["get"]["security"]
    assert spec["paths"]["/api/auth/login"]["post"]["security"] == []  # public, and says so


def test_swagger_ui_is_served_offline(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
