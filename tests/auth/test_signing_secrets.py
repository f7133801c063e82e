"""One secret per integration: a clinic admin makes named signing secrets scoped to the endpoints
they may call, shown once, listed by name, scopes and last use, rotated with an overlap, revoked.
The signature covers method, path, timestamp and body; the clinic's single webhook secret of before
signs web forms only, until the clinic rotates."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from app.domains.auth.models import SigningSecret
from app.platform import clock
from app.platform.api import injection
from tests.leadkit import create_lead, key_signed_headers, post_web_form, signed_headers

PHONE, E164 = "(415) 555-2671", "+14155552671"
INBOUND, CALL, APPOINTMENT, WEB_FORM = (
    "/api/capture/inbound",
    "/api/capture/call",
    "/api/capture/appointment",
    "/api/capture/web-form",
)
FORM = {"submission_id": "s-1", "first_name": "Ann", "last_name": "Lee", "phone": "(415) 555-0100"}


def make_secret(client, tenant, *scopes, name="integration", expect=201) -> dict:
    resp = client.post(
        "/api/signing-secrets", json={"name": name, "scopes": list(scopes)}, headers=tenant.headers()
    )
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def send(client, key: dict, path: str, payload: dict, **sign_kwargs):
    body = json.dumps(payload).encode()
    return client.post(path, data=body, headers=key_signed_headers(key, path, body, **sign_kwargs))


def stop(message_id: str = "SM-stop") -> dict:
    return {"channel": "sms", "from": E164, "body": "STOP", "message_id": message_id}


def opted_out(client, tenant, lead_id: int) -> bool:
    return client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()["sms_opt_out"]


def at(monkeypatch, moment) -> None:
    """Requests are served at `moment` (the view's `now`, read once at the edge)."""
    monkeypatch.setattr(injection, "clock", SimpleNamespace(now=lambda: moment))


def test_a_forged_stop_signed_with_a_web_form_only_secret_is_refused(client, tenant):
    lead = create_lead(client, tenant, phone=PHONE)
    agency = make_secret(client, tenant, "web_form", name="Web agency")
    resp = send(client, agency, INBOUND, stop())
    assert resp.status_code == 403 and "inbound" in resp.get_json()["message"]
    assert opted_out(client, tenant, lead["id"]) is False
    # Its own door opens.
    assert send(client, agency, WEB_FORM, FORM).status_code == 201


def test_a_signature_covers_the_method_and_the_path(client, tenant):
    lead = create_lead(client, tenant, phone=PHONE)
    relay = make_secret(client, tenant, "inbound", "call")
    body = json.dumps(stop()).encode()
    for_calls = key_signed_headers(relay, CALL, body)
    assert client.post(INBOUND, data=body, headers=for_calls).status_code == 401
    as_put = key_signed_headers(relay, INBOUND, body, method="PUT")
    assert client.post(INBOUND, data=body, headers=as_put).status_code == 401
    assert opted_out(client, tenant, lead["id"]) is False
    assert (
        client.post(INBOUND, data=body, headers=key_signed_headers(relay, INBOUND, body)).status_code == 200
    )
    assert opted_out(client, tenant, lead["id"]) is True


def test_rotation_both_verify_during_the_overlap_then_only_the_new(client, tenant, monkeypatch):
    old = make_secret(client, tenant, "call", name="Phone system")
    rotated = client.post(
        f"/api/signing-secrets/{old['id']}/rotate", json={"overlap_hours": 2}, headers=tenant.headers()
    )
    assert rotated.status_code == 201, rotated.get_json()
    new = rotated.get_json()
    assert (new["name"], new["scopes"]) == ("Phone system", ["call"])
    assert new["key_id"] != old["key_id"] and new["secret"] != old["secret"]
    [listed_old] = [
        s
        for s in client.get("/api/signing-secrets", headers=tenant.headers()).get_json()
        if s["id"] == old["id"]
    ]
    assert listed_old["replaced_by_id"] == new["id"] and listed_old["expires_at"]

    def call(key, call_id, moment):
        at(monkeypatch, moment)
        payload = {"call_id": call_id, "from": E164}
        return send(client, key, CALL, payload, timestamp=int(moment.timestamp())).status_code

    soon, later = clock.now() + timedelta(hours=1), clock.now() + timedelta(hours=2, minutes=1)
    assert call(old, "CA1", soon) == 200 and call(new, "CA2", soon) == 200
    assert call(old, "CA3", later) == 401 and call(new, "CA4", later) == 200
    again = client.post(f"/api/signing-secrets/{old['id']}/rotate", json={}, headers=tenant.headers())
    assert again.status_code == 409  # rotated already: its successor is the one to rotate


def test_a_revoked_secret_is_refused(client, tenant):
    booking = make_secret(client, tenant, "appointment")
    lead = create_lead(client, tenant)
    event = {
        "external_id": "apt-1", "lead_id": lead["id"], "status": "booked",
        "starts_at": (clock.now() + timedelta(days=2)).isoformat(), "occurred_at": clock.now().isoformat(),
    }  # fmt: skip
    assert send(client, booking, APPOINTMENT, event).status_code == 201
    assert client.delete(f"/api/signing-secrets/{booking['id']}", headers=tenant.headers()).status_code == 204
    later = (clock.now() + timedelta(seconds=1)).isoformat()
    assert (
        send(client, booking, APPOINTMENT, {**event, "status": "cancelled", "occurred_at": later}).status_code
        == 401
    )
    [listed] = client.get("/api/signing-secrets", headers=tenant.headers()).get_json()
    assert listed["revoked_at"] is not None


def test_the_single_secret_signs_web_forms_only_until_the_clinic_rotates(client, tenant):
    lead = create_lead(client, tenant, phone=PHONE)
    for path, payload in ((INBOUND, stop()), (CALL, {"call_id": "CA1", "from": E164})):
        body = json.dumps(payload).encode()
        resp = client.post(path, data=body, headers=signed_headers(tenant.clinic, body))
        assert resp.status_code == 403, path
    assert opted_out(client, tenant, lead["id"]) is False
    assert client.get("/api/clinic/webhook-secret", headers=tenant.headers()).get_json() == {
        "scopes": ["web_form"],
        "retired_at": None,
    }
    assert post_web_form(client, tenant.clinic, FORM).status_code == 201
    # The clinic rotates: its first named secret with the web-form scope retires the single one.
    website = make_secret(client, tenant, "web_form", name="Website")
    assert post_web_form(client, tenant.clinic, {**FORM, "submission_id": "s-2"}).status_code == 401
    assert send(client, website, WEB_FORM, {**FORM, "submission_id": "s-3"}).status_code == 201
    assert client.get("/api/clinic/webhook-secret", headers=tenant.headers()).get_json()["retired_at"]


def test_the_single_secret_can_be_retired_by_asking(client, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    assert client.delete("/api/clinic/webhook-secret", headers=tenant.headers()).status_code == 204
    assert post_web_form(client, tenant.clinic, FORM).status_code == 401
    assert post_web_form(client, other.clinic, FORM).status_code == 201  # another clinic's still works


def test_the_secret_is_shown_once_and_stored_encrypted(app, client, tenant):
    made = make_secret(client, tenant, "inbound", name="SMS relay")
    assert made["secret"].startswith("fss_") and made["key_id"].startswith("fsk_")
    listing = client.get("/api/signing-secrets", headers=tenant.headers())
    assert listing.status_code == 200
    assert made["secret"] not in listing.get_data(as_text=True)
    [listed] = listing.get_json()
    assert "secret" not in listed
    assert (listed["name"], listed["scopes"], listed["last_used_at"]) == ("SMS relay", ["inbound"], None)
    with app.extensions["followup.db"].engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT secret_encrypted FROM signing_secrets")).scalar_one()
    assert made["secret"] not in stored
    assert send(client, made, INBOUND, stop()).status_code == 200
    [used] = client.get("/api/signing-secrets", headers=tenant.headers()).get_json()
    assert used["last_used_at"] is not None


def test_another_clinics_secrets_are_404_and_staff_cannot_manage_them(client, tenant, make_tenant):
    theirs = make_secret(client, make_tenant("Elsewhere"), "inbound")
    ours = tenant.headers()
    assert client.delete(f"/api/signing-secrets/{theirs['id']}", headers=ours).status_code == 404
    assert (
        client.post(f"/api/signing-secrets/{theirs['id']}/rotate", json={}, headers=ours).status_code == 404
    )
    assert client.get("/api/signing-secrets", headers=ours).get_json() == []
    assert client.get("/api/signing-secrets", headers=tenant.headers("front_desk")).status_code == 403
    bad = client.post("/api/signing-secrets", json={"name": "x", "scopes": ["everything"]}, headers=ours)
    assert bad.status_code == 422 and "scopes" in bad.get_json()["errors"]["json"]


def test_the_inbound_answer_does_not_say_whether_a_number_is_a_leads(client, tenant):
    create_lead(client, tenant, phone=PHONE)
    relay = make_secret(client, tenant, "inbound")
    known = send(client, relay, INBOUND, {**stop(), "body": "hi", "message_id": "SM-1"})
    unknown = send(
        client, relay, INBOUND, {**stop(), "body": "hi", "from": "+14155550000", "message_id": "SM-2"}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.get_json() == unknown.get_json() == {"received": True}
    assert "lead_id" not in known.get_data(as_text=True)


EXAMPLE_SECRET, EXAMPLE_TIME = "fss_Q2xpbmljLWV4YW1wbGUtc2VjcmV0LWRvLW5vdC11c2U", 1767225600
DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_examples() -> list[tuple[str, str, str]]:
    """The worked examples of the integration guides: (path, body, signature) as the docs print them."""
    guide = (DOCS / "guides" / "web-forms.md").read_text()
    rows = re.findall(r"^\| `(/api/capture/[a-z-]+)` \| `(\{.*\})` \| `([0-9a-f]{64})` \|$", guide, re.M)
    appointment = (DOCS / "features" / "consultations.md").read_text().replace("\n", " ")
    body = re.search(r"with the body `(\{.*?\})`", appointment).group(1)
    signature = re.search(r"is signed `([0-9a-f]{64})`", appointment).group(1)
    return [*rows, ("/api/capture/appointment", body, signature)]


def test_the_guides_worked_examples_are_what_the_engine_accepts(client, db, tenant, monkeypatch):
    examples = documented_examples()
    assert [path for path, _, _ in examples] == [WEB_FORM, INBOUND, CALL, APPOINTMENT]
    key = make_secret(client, tenant, "web_form", "inbound", "call", "appointment")
    with db.unit_of_work() as session:
        session.get(SigningSecret, key["id"]).secret = EXAMPLE_SECRET
    at(monkeypatch, datetime.fromtimestamp(EXAMPLE_TIME, UTC))
    for path, body, signature in examples:
        message = f"{EXAMPLE_TIME}.POST.{path}.{body}".encode()
        assert hmac.new(EXAMPLE_SECRET.encode(), message, hashlib.sha256).hexdigest() == signature, path
        headers = {
            "X-Followup-Key-Id": key["key_id"],
            "X-Followup-Timestamp": str(EXAMPLE_TIME),
            "X-Followup-Signature": signature,
            "Content-Type": "application/json",
        }
        resp = client.post(path, data=body.encode(), headers=headers)
        # Accepted: the call made the phone's lead, whose appointment the last example books.
        assert resp.status_code == {WEB_FORM: 201, INBOUND: 200, CALL: 200, APPOINTMENT: 201}[path], path
