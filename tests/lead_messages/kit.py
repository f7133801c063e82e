"""Helpers of the messaging tests: templates through the API, messages to a lead."""

from __future__ import annotations


def make_template(client, tenant, expect: int = 201, **fields) -> dict:
    body = {"name": "Welcome", "channel": "sms", "body": "Hi {{ first_name }}, this is {{ clinic_name }}."}
    body.update(fields)
    resp = client.post("/api/message-templates", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def email_template(client, tenant, name: str = "Consult reminder") -> dict:
    return make_template(
        client,
        tenant,
        name=name,
        channel="email",
        subject="Your visit to {{ clinic_name }}",
        body="Hi {{ first_name }}, we look forward to seeing {{ patient_first_name }}.",
    )


def send(client, tenant, lead_id: int, expect: int = 201, role: str = "treatment_coordinator", **body):
    resp = client.post(f"/api/leads/{lead_id}/messages", json=body, headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def template_counts(client, tenant, template_id: int) -> tuple[int, int]:
    resp = client.get(f"/api/message-templates/{template_id}", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    answer = resp.get_json()
    return answer["usage_count"], answer["reply_count"]
