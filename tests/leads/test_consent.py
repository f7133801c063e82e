"""Only the person undoes their own opt-out: a texted STOP only by their START, an unsubscribe only
by a new consent staff record with how the person gave it; staff record consent only with a
reason, which is audited (issue 58)."""

from __future__ import annotations

import pytest

from app.domains.auth import signing
from tests.automation.outreachkit import configure_clinic, lead_with
from tests.intake.test_twilio import AUTH_TOKEN, CLINIC_NUMBER, INBOUND, PHONE, signed_post, text
from tests.outbound.kit import use


@pytest.fixture
def twilio(app, monkeypatch):
    use(monkeypatch, app.config["SETTINGS"], sms_token=AUTH_TOKEN)


def put_lead(client, tenant, lead_id: int, role: str = "treatment_coordinator", **body):
    return client.put(f"/api/leads/{lead_id}", json=body, headers=tenant.headers(role))


def opted_out(client, tenant, lead_id: int) -> tuple[bool, bool]:
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    return lead["sms_opt_out"], lead["email_opt_out"]


def audit_of(client, tenant, lead_id: int, action: str) -> list[dict]:
    resp = client.get(f"/api/audit-events?action={action}", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return [e for e in resp.get_json() if e["subject_id"] == str(lead_id)]


def test_staff_cannot_undo_a_texted_stop_and_only_the_persons_start_reopens_texting(client, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    assert signed_post(client, INBOUND, text("STOP", sid="SM-stop")).status_code == 200
    assert opted_out(client, tenant, lead["id"])[0] is True
    # With lead:update, with a reason, with a consent source: never over a texted STOP.
    for body in (
        {"sms_opt_out": False},
        {"sms_opt_out": False, "consent_reason": "she asked at the front desk"},
        {"sms_opt_out": False, "consent_reason": "signed form", "consent_source": "written"},
    ):
        refused = put_lead(client, tenant, lead["id"], **body)
        assert refused.status_code == 409, refused.get_json()
        assert refused.get_json()["code"] == "opted_out_by_person"
        assert "sms_opt_out" in refused.get_json()["errors"]["json"]
    assert opted_out(client, tenant, lead["id"])[0] is True
    # The person's own START re-opens it.
    assert signed_post(client, INBOUND, text("START", sid="SM-start")).status_code == 200
    assert opted_out(client, tenant, lead["id"])[0] is False


def test_a_stop_over_an_opt_out_staff_had_set_becomes_the_persons(client, tenant, twilio):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    lead = lead_with(client, tenant, phone=PHONE)
    assert put_lead(client, tenant, lead["id"], sms_opt_out=True).status_code == 200
    assert signed_post(client, INBOUND, text("STOP", sid="SM-stop-2")).status_code == 200
    refused = put_lead(client, tenant, lead["id"], sms_opt_out=False, consent_reason="set by mistake")
    assert refused.status_code == 409 and "sms_opt_out" in refused.get_json()["errors"]["json"]
    assert opted_out(client, tenant, lead["id"])[0] is True


def test_staff_record_consent_with_a_reason_over_their_own_opt_out_and_it_is_audited(client, tenant, twilio):
    lead = lead_with(client, tenant, phone=PHONE)
    assert put_lead(client, tenant, lead["id"], sms_opt_out=True).status_code == 200
    no_reason = put_lead(client, tenant, lead["id"], sms_opt_out=False)
    assert no_reason.status_code == 422 and "consent_reason" in no_reason.get_json()["errors"]["json"]
    assert opted_out(client, tenant, lead["id"])[0] is True
    done = put_lead(
        client, tenant, lead["id"], sms_opt_out=False, consent_reason="opted out by mistake on the phone"
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["sms_opt_out"] is False
    [entry] = audit_of(client, tenant, lead["id"], "lead.consent_recorded")
    assert entry["actor"] == f"user:{tenant.users['treatment_coordinator'].id}"
    assert entry["after"]["opted_in"] == ["sms_opt_out"]
    assert entry["after"]["consent_reason"] == "opted out by mistake on the phone"


def test_an_unsubscribe_is_undone_only_by_the_persons_new_consent_recorded_with_how_it_was_given(
    app, client, tenant, twilio
):
    lead = lead_with(client, tenant, phone=PHONE)
    token = signing.unsubscribe_token(app.config["SETTINGS"].secret_key, lead["id"])
    assert client.post(f"/api/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert opted_out(client, tenant, lead["id"])[1] is True
    refused = put_lead(client, tenant, lead["id"], email_opt_out=False, consent_reason="wants the newsletter")
    assert refused.status_code == 409 and "email_opt_out" in refused.get_json()["errors"]["json"]
    assert opted_out(client, tenant, lead["id"])[1] is True
    done = put_lead(
        client,
        tenant,
        lead["id"],
        email_opt_out=False,
        consent_reason="signed the consent form at her visit",
        consent_source="written",
    )
    assert done.status_code == 200 and done.get_json()["email_opt_out"] is False
    [entry] = audit_of(client, tenant, lead["id"], "lead.consent_recorded")
    assert entry["after"]["consent_source"] == "written"
