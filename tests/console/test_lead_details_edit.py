"""The lead page's "Edit details" covers what a coordinator learns on a call: where the family heard
of the clinic (source, campaign, who referred them), the treatments they ask about, and what they
no longer want to receive. The edit goes through the API's own update (PUT /api/leads/{id})."""

from __future__ import annotations

import re

from tests.console.test_console_pages import csrf_of
from tests.console.test_console_pages import log_in as console_log_in
from tests.leadkit import create_lead, get_lead


def _source(client, tenant, name: str) -> int:
    made = client.post(
        "/api/lead-sources", json={"name": name, "category": "DOCTOR_REFERRAL"}, headers=tenant.headers()
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()["id"]


def _edit(console, lead_id: int, **form):
    html = console.get(f"/console/leads/{lead_id}").get_data(as_text=True)
    etag = re.search(r'name="etag" value="([^"]+)"', html).group(1)
    data = {"csrf_token": csrf_of(html), "etag": etag, **form}
    return console.post(f"/console/leads/{lead_id}/edit", data=data)


def test_a_coordinator_sets_the_source_the_treatments_and_a_families_no_texts(app, client, tenant):
    referral = _source(client, tenant, "Dr. Chen's office")
    lead = create_lead(client, tenant, phone="(415) 555-0142")
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
        assert "Dr. Chen&#39;s office" in page and "No texts" in page  # offered in words
        saved = _edit(
            console,
            lead["id"],
            source_id=str(referral),
            source_detail="Referred by Dr. Chen",
            treatment_interest=["", "INVISALIGN", "BRACES_METAL"],
            sms_opt_out=["false", "true"],
            email_opt_out="false",
        )
        assert saved.status_code == 303, saved.get_data(as_text=True)
        lead_now = get_lead(client, tenant, lead["id"]).get_json()
        assert lead_now["source_id"] == referral and lead_now["source_detail"] == "Referred by Dr. Chen"
        assert sorted(lead_now["treatment_interest"]) == ["BRACES_METAL", "INVISALIGN"]
        assert lead_now["sms_opt_out"] is True and lead_now["email_opt_out"] is False
        # Every treatment unticked: none named.
        saved = _edit(console, lead["id"], treatment_interest="")
        assert saved.status_code == 303, saved.get_data(as_text=True)
    lead_now = get_lead(client, tenant, lead["id"]).get_json()
    assert lead_now["treatment_interest"] in ([], None) and lead_now["sms_opt_out"] is True
    assert lead_now["source_id"] == referral  # what the form did not change stays


def test_an_unknown_treatment_is_refused_beside_its_field_and_nothing_is_saved(app, client, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0143")
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        refused = _edit(console, lead["id"], treatment_interest=["", "TEETH_WHITENING"], city="Reno")
        assert refused.status_code == 422
        assert 'id="err-treatment_interest"' in refused.get_data(as_text=True)
    lead_now = get_lead(client, tenant, lead["id"]).get_json()
    assert lead_now.get("city") is None and not lead_now.get("treatment_interest")


def test_texts_allowed_again_need_the_familys_word_said_on_the_form(app, client, tenant):
    lead = create_lead(client, tenant, phone="(415) 555-0144")
    with app.test_client() as console:
        console_log_in(console, tenant, "treatment_coordinator")
        assert _edit(console, lead["id"], sms_opt_out=["false", "true"]).status_code == 303
        refused = _edit(console, lead["id"], sms_opt_out="false")
        assert refused.status_code == 422
        assert 'id="err-consent_reason"' in refused.get_data(as_text=True)  # said beside its field
        assert get_lead(client, tenant, lead["id"]).get_json()["sms_opt_out"] is True
        saved = _edit(
            console,
            lead["id"],
            sms_opt_out="false",
            consent_reason="Asked for texts at the front desk",
            consent_source="in_person",
        )
        assert saved.status_code == 303, saved.get_data(as_text=True)
    assert get_lead(client, tenant, lead["id"]).get_json()["sms_opt_out"] is False
