"""Every error body carries a machine-readable `code` beside its message (app/platform/errors.py ERROR_CODES):
a frontend branches on the code. The fuzz run checks that every error answer has one
(tests/test_fuzz.py); here, specific reasons through the API, and that no raise site names a code
the document does not list."""

from __future__ import annotations

import ast

from app.platform.errors import ERROR_CODES, STATUS_CODES
from tests.automation.outreachkit import configure_clinic, enroll, lead_with, make_sequence, sms
from tests.test_architecture import APP


def _error(resp, status: int) -> dict:
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["code"] in ERROR_CODES and body["message"] and body["status"], body
    return body


def test_a_converted_lead_refuses_changes_with_lead_converted(client, tenant):
    lead = lead_with(client, tenant)
    assert client.post(f"/api/leads/{lead['id']}/convert", headers=tenant.headers()).status_code == 200
    resp = client.put(f"/api/leads/{lead['id']}", json={"first_name": "Janet"}, headers=tenant.headers())
    assert _error(resp, 409)["code"] == "lead_converted"


def test_enrolling_a_do_not_contact_lead_is_do_not_contact_and_twice_is_already_enrolled(client, tenant):
    configure_clinic(client, tenant)
    sequence = make_sequence(client, tenant, [sms(amount=1, unit="days")])
    no_contact = lead_with(client, tenant, phone="(415) 555-2671", do_not_contact=True)
    assert enroll(client, tenant, no_contact["id"], sequence["id"], expect=409)["code"] == "do_not_contact"
    lead = lead_with(client, tenant, phone="(415) 555-2672")
    enroll(client, tenant, lead["id"], sequence["id"])
    twice = enroll(client, tenant, lead["id"], sequence["id"], expect=409)
    assert twice["code"] == "already_enrolled" and "already enrolled" in twice["message"]


def test_a_stale_if_match_is_stale_etag(client, tenant):
    lead = lead_with(client, tenant)
    read = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers())
    headers = {**tenant.headers(), "If-Match": read.headers["ETag"]}
    assert (
        client.put(f"/api/leads/{lead['id']}", json={"first_name": "Janet"}, headers=headers).status_code
        == 200
    )
    resp = client.put(f"/api/leads/{lead['id']}", json={"first_name": "Jo"}, headers=headers)
    assert _error(resp, 412)["code"] == "stale_etag"


def test_http_errors_get_the_code_of_their_status(client, tenant):
    assert _error(client.get("/api/leads/999999", headers=tenant.headers()), 404)["code"] == "not_found"
    assert _error(client.get("/api/leads"), 401)["code"] == "unauthorized"
    invalid = client.get("/api/leads?page_size=0", headers=tenant.headers())
    assert _error(invalid, 422)["code"] == "validation_error" and invalid.get_json()["errors"]
    broken = client.post("/api/leads", data="{", content_type="application/json", headers=tenant.headers())
    assert _error(broken, 400)["code"] == "bad_request"
    assert _error(client.delete("/api/me", headers=tenant.headers()), 405)["code"] == "method_not_allowed"


def _text(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _named_codes() -> dict[str, str]:
    """Every constant `code=` a call under app/ passes, and every `code = ...` of app/platform/errors.py's
    classes: {code: the file naming it}."""
    named: dict[str, str] = {}
    for path in APP.rglob("*.py"):
        where = str(path.relative_to(APP.parent))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                found = [_text(k.value) for k in node.keywords if k.arg == "code"]
            elif isinstance(node, ast.ClassDef) and path.name == "errors.py":
                found = [
                    _text(item.value)
                    for item in node.body
                    if isinstance(item, ast.Assign)
                    and [getattr(t, "id", None) for t in item.targets] == ["code"]
                ]
            else:
                found = []
            named.update({code: where for code in found if code})
    return named


def test_every_code_a_raise_site_names_is_listed():
    named = _named_codes()
    assert {"lead_converted", "already_enrolled", "invalid_transition"} <= set(named)  # the scan sees them
    unknown = {code: where for code, where in named.items() if code not in ERROR_CODES}
    assert not unknown, (
        f"add these to app/platform/errors.py ERROR_CODES (and docs/api-contract.md): {unknown}"
    )
    assert set(STATUS_CODES.values()) <= set(ERROR_CODES)


def test_the_contract_page_lists_every_code():
    page = (APP.parent / "docs" / "api-contract.md").read_text()
    missing = [code for code in ERROR_CODES if f"| `{code}` |" not in page]
    assert not missing, f"list these codes in docs/api-contract.md: {missing}"
