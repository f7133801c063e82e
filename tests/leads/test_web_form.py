"""POST /api/capture/web-form: HMAC signature, replay protection, idempotent submissions, mapping."""

from __future__ import annotations

import json
import time

import pytest

from tests.leadkit import count, get_lead, post_web_form, signed_headers, source_ids

FORM = {
    "submission_id": "wpforms-1001",
    "name": "Jane Q Public",
    "email": "jane@example.com",
    "phone": "(415) 555-2671",
    "child_name": "Emma",
    "message": "Does Emma need braces? She is 11.",
    "treatment_interest": "invisalign",
    "website": "",  # a honeypot field: ignored
}


def test_a_signed_form_becomes_a_lead_with_the_fields_mapped(client, tenant):
    resp = post_web_form(client, tenant.clinic, FORM)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["status"] == "created"
    lead = get_lead(client, tenant, resp.get_json()["lead_id"]).get_json()
    assert (lead["first_name"], lead["last_name"]) == ("Jane Q", "Public")
    assert (lead["patient_first_name"], lead["patient_last_name"]) == ("Emma", "Public")
    assert lead["patient_relationship"] == "CHILD"
    assert lead["phone"] == "+14155552671"
    assert lead["email"] == "jane@example.com"
    assert lead["notes"] == FORM["message"]
    assert lead["treatment_interest"] == ["INVISALIGN"]
    assert lead["pipeline_stage"] == "new_lead"
    assert lead["assigned_to_id"] == tenant.users["treatment_coordinator"].id
    # No source information: a website lead is attributed to the website.
    assert lead["source_id"] == source_ids(client, tenant)["WEB_ORGANIC"]


def test_the_signature_may_carry_a_sha256_prefix(client, tenant):
    body = json.dumps(FORM).encode()
    headers = signed_headers(tenant.clinic, body)
    headers["X-Followup-Signature"] = "sha256=" + headers["X-Followup-Signature"]
    assert client.post("/api/capture/web-form", data=body, headers=headers).status_code == 201


@pytest.mark.parametrize("missing", ["X-Followup-Clinic", "X-Followup-Timestamp", "X-Followup-Signature"])
def test_a_missing_header_is_a_401_and_stores_nothing(client, tenant, db, missing):
    body = json.dumps(FORM).encode()
    headers = signed_headers(tenant.clinic, body)
    del headers[missing]
    resp = client.post("/api/capture/web-form", data=body, headers=headers)
    assert resp.status_code == 401
    assert count(db, "leads") == 0


def test_a_wrong_signature_is_a_401(client, tenant, db):
    body = json.dumps(FORM).encode()
    wrong_secret = signed_headers(tenant.clinic, body, secret="not-the-clinic-secret")
    assert client.post("/api/capture/web-form", data=body, headers=wrong_secret).status_code == 401
    tampered = signed_headers(tenant.clinic, body)
    other_body = json.dumps({**FORM, "email": "evil@example.com"}).encode()
    assert client.post("/api/capture/web-form", data=other_body, headers=tampered).status_code == 401
    assert count(db, "leads") == 0


def test_a_signature_for_another_clinic_is_a_401(client, tenant, make_tenant, db):
    other = make_tenant("Other")
    body = json.dumps(FORM).encode()
    headers = signed_headers(other.clinic, body)
    headers["X-Followup-Clinic"] = str(tenant.clinic.id)  # other's signature, claiming to be tenant
    assert client.post("/api/capture/web-form", data=body, headers=headers).status_code == 401
    assert count(db, "leads") == 0


@pytest.mark.parametrize("clinic_ref", ["999999", "abc", "-1", "0", "99999999999", "1e3", " "])
def test_an_unknown_clinic_is_a_401_like_any_bad_signature(client, tenant, clinic_ref):
    body = json.dumps(FORM).encode()
    headers = signed_headers(tenant.clinic, body)
    headers["X-Followup-Clinic"] = clinic_ref
    resp = client.post("/api/capture/web-form", data=body, headers=headers)
    assert resp.status_code == 401
    wrong = signed_headers(tenant.clinic, body, secret="x")
    assert (
        resp.get_json()["message"]
        == client.post("/api/capture/web-form", data=body, headers=wrong).get_json()["message"]
    )


@pytest.mark.parametrize("age_seconds", [301, -301, 3600])
def test_a_stale_or_future_timestamp_is_a_401(client, tenant, db, age_seconds):
    resp = post_web_form(client, tenant.clinic, FORM, timestamp=int(time.time()) - age_seconds)
    assert resp.status_code == 401
    assert count(db, "leads") == 0


def test_a_timestamp_within_five_minutes_is_accepted(client, tenant):
    assert post_web_form(client, tenant.clinic, FORM, timestamp=int(time.time()) - 240).status_code == 201


def test_a_replayed_signature_is_a_401(client, tenant, db):
    body = json.dumps(FORM).encode()
    headers = signed_headers(tenant.clinic, body)
    assert client.post("/api/capture/web-form", data=body, headers=headers).status_code == 201
    again = client.post("/api/capture/web-form", data=body, headers=headers)
    assert again.status_code == 401
    assert count(db, "leads") == 1


def test_the_same_submission_with_a_fresh_signature_gives_the_same_lead(client, tenant, db):
    first = post_web_form(client, tenant.clinic, FORM)
    # A second, freshly signed delivery of the same submission (the website retried).
    second = post_web_form(
        client, tenant.clinic, {**FORM, "message": "retry"}, timestamp=int(time.time()) + 1
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == {"lead_id": first.get_json()["lead_id"], "status": "already_received"}
    assert count(db, "leads") == 1


def test_submission_ids_are_per_clinic(client, tenant, make_tenant):
    other = make_tenant("Other")
    a = post_web_form(client, tenant.clinic, FORM)
    b = post_web_form(client, other.clinic, FORM)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.get_json()["lead_id"] != b.get_json()["lead_id"]


def test_a_repeated_web_lead_is_still_flagged_as_possible_duplicate_in_its_event(client, tenant, db):
    from tests.leadkit import events

    first = post_web_form(client, tenant.clinic, FORM).get_json()["lead_id"]
    second = post_web_form(client, tenant.clinic, {**FORM, "submission_id": "wpforms-1002"}).get_json()[
        "lead_id"
    ]
    created = events(db, "lead.created", lead_id=second)
    assert created[0].payload["possible_duplicate_ids"] == [first]
    assert created[0].payload["channel"] == "web_form"


@pytest.mark.parametrize(
    ("extra", "expected_category"),
    [
        ({"utm_source": "google", "utm_medium": "cpc"}, "WEB_PAID"),
        ({"utm_source": "bing", "utm_medium": "PPC"}, "WEB_PAID"),
        ({"utm_source": "facebook", "utm_medium": "social"}, "WEB_SOCIAL"),
        ({"utm_source": "google", "utm_medium": "organic"}, "WEB_ORGANIC"),
        ({"source": "school screening"}, "SCHOOL_SCREENING"),  # a source by name, any case
        ({"utm_source": "Print advertising", "utm_medium": "cpc"}, "PRINT_AD"),  # a name wins over the medium
        ({"source": "Billboard on 5th", "utm_medium": "email"}, "WEB_ORGANIC"),  # unknown: the website
    ],
)
def test_the_source_comes_from_the_forms_source_or_utm_fields(client, tenant, extra, expected_category):
    resp = post_web_form(client, tenant.clinic, {**FORM, **extra, "utm_campaign": "spring-smiles"})
    assert resp.status_code == 201
    lead = get_lead(client, tenant, resp.get_json()["lead_id"]).get_json()
    assert lead["source_id"] == source_ids(client, tenant)[expected_category]
    assert lead["source_campaign"] == "spring-smiles"
    for key, value in extra.items():
        assert f"{key}={value}" in lead["source_detail"]


def test_a_source_added_by_the_clinic_is_found_by_utm_source(client, tenant):
    made = client.post(
        "/api/lead-sources", json={"name": "Instagram", "category": "WEB_SOCIAL"}, headers=tenant.headers()
    ).get_json()
    resp = post_web_form(
        client, tenant.clinic, {**FORM, "utm_source": "instagram", "utm_medium": "paid_social"}
    )
    assert get_lead(client, tenant, resp.get_json()["lead_id"]).get_json()["source_id"] == made["id"]


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({**FORM, "phone": "12"}, "phone"),
        ({**FORM, "email": "nope"}, "email"),
        ({k: v for k, v in FORM.items() if k != "submission_id"}, "submission_id"),
        ({k: v for k, v in FORM.items() if k != "name"}, "name"),
        ({k: v for k, v in FORM.items() if k not in ("phone", "email")}, "phone"),
        ({**FORM, "treatment_interest": ["gold teeth"]}, "treatment_interest"),
        ({**FORM, "patient_dob": "2099-01-01"}, "patient_dob"),
    ],
)
def test_a_signed_but_invalid_form_is_a_422_naming_the_field(client, tenant, db, form, field):
    resp = post_web_form(client, tenant.clinic, form)
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["json"]
    assert count(db, "leads") == 0


def test_an_unsigned_garbage_body_is_a_401_not_a_parse_error(client, tenant):
    resp = client.post(
        "/api/capture/web-form", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 401
