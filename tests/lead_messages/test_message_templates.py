"""Message templates through the API: CRUD, validation at save, preview, permissions, tenancy, and
their use by rules and sequences."""

from __future__ import annotations

from app.platform.audit.models import AuditEvent
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    lead_with,
    make_sequence,
    messages_to,
    process_events,
    steps_of,
)
from tests.lead_messages.kit import email_template, make_template, template_counts


def errors_of(resp) -> dict:
    assert resp.status_code == 422, resp.get_json()
    return resp.get_json()["errors"]["json"]


def test_create_read_update_delete_a_template(client, tenant):
    made = email_template(client, tenant)
    assert made["channel"] == "email" and made["subject"] == "Your visit to {{ clinic_name }}"
    read = client.get(f"/api/message-templates/{made['id']}", headers=tenant.headers("front_desk"))
    assert read.status_code == 200 and read.headers["ETag"]
    assert (read.get_json()["usage_count"], read.get_json()["reply_count"]) == (0, 0)
    changed = client.put(
        f"/api/message-templates/{made['id']}",
        json={"body": "Hello {{ first_name }}"},
        headers={**tenant.headers(), "If-Match": read.headers["ETag"]},
    )
    assert changed.status_code == 200 and changed.get_json()["body"] == "Hello {{ first_name }}"
    stale = client.put(
        f"/api/message-templates/{made['id']}",
        json={"name": "Other"},
        headers={**tenant.headers(), "If-Match": read.headers["ETag"]},
    )
    assert stale.status_code == 412
    make_template(client, tenant, name="Text")
    listed = client.get("/api/message-templates?channel=sms", headers=tenant.headers("front_desk"))
    assert [t["name"] for t in listed.get_json()] == ["Text"]
    make_template(client, tenant, name="Text", expect=409)
    gone = client.delete(f"/api/message-templates/{made['id']}", headers=tenant.headers())
    assert gone.status_code == 204
    assert client.get(f"/api/message-templates/{made['id']}", headers=tenant.headers()).status_code == 404
    email_template(client, tenant)  # a deleted template's name is free again


def test_bad_templates_are_422_naming_the_field(client, tenant):
    post = lambda body: client.post("/api/message-templates", json=body, headers=tenant.headers())  # noqa: E731
    base = {"name": "T", "channel": "sms", "body": "Hi"}
    assert "body" in errors_of(post({**base, "body": "Hi {{ nickname }}"}))
    assert "nickname" in str(errors_of(post({**base, "body": "Hi {{ nickname }}"})))
    assert "body" in errors_of(post({**base, "body": "{% for i in range(9) %}x{% endfor %}"}))
    assert "body" in errors_of(post({**base, "body": "{{ first_name"}))
    assert "subject" in errors_of(post({**base, "channel": "email"}))
    assert "subject" in errors_of(post({**base, "subject": "An SMS has none"}))
    assert "channel" in errors_of(post({**base, "channel": "fax"}))
    assert "name" in errors_of(post({"channel": "sms", "body": "Hi"}))
    made = make_template(client, tenant)
    put = client.put(
        f"/api/message-templates/{made['id']}", json={"channel": "email"}, headers=tenant.headers()
    )
    assert "channel" in errors_of(put)
    put = client.put(
        f"/api/message-templates/{made['id']}", json={"body": "{{ 'x' * 99999 }}"}, headers=tenant.headers()
    )
    assert "body" in errors_of(put)


def test_permissions_and_another_clinics_template_is_404(client, tenant, make_tenant):
    made = make_template(client, tenant)
    for role in ("front_desk", "treatment_coordinator", "doctor"):
        resp = client.post(
            "/api/message-templates",
            json={"name": "X", "channel": "sms", "body": "Hi"},
            headers=tenant.headers(role),
        )
        assert resp.status_code == 403, role
        resp = client.delete(f"/api/message-templates/{made['id']}", headers=tenant.headers(role))
        assert resp.status_code == 403, role
    assert client.get("/api/message-templates").status_code == 401
    other = make_tenant("Other Clinic")
    for resp in (
        client.get(f"/api/message-templates/{made['id']}", headers=other.headers()),
        client.put(f"/api/message-templates/{made['id']}", json={"name": "Mine"}, headers=other.headers()),
        client.delete(f"/api/message-templates/{made['id']}", headers=other.headers()),
        client.post(f"/api/message-templates/{made['id']}/preview", json={}, headers=other.headers()),
    ):
        assert resp.status_code == 404, resp.get_json()
    assert client.get("/api/message-templates", headers=other.headers()).get_json() == []


def test_preview_renders_a_sample_or_a_real_lead(client, db, tenant, make_tenant):
    made = email_template(client, tenant)
    sample = client.post(
        f"/api/message-templates/{made['id']}/preview", json={}, headers=tenant.headers("front_desk")
    )
    assert sample.status_code == 200, sample.get_json()
    assert sample.get_json() == {
        "template_id": made["id"],
        "channel": "email",
        "lead_id": None,
        "subject": "Your visit to Smile Orthodontics",
        "body": "Hi Jane, we look forward to seeing Emma.",
    }
    lead = lead_with(client, tenant, first_name="Maria", patient_first_name="Leo")
    real = client.post(
        f"/api/message-templates/{made['id']}/preview", json={"lead_id": lead["id"]}, headers=tenant.headers()
    )
    assert real.get_json()["body"] == "Hi Maria, we look forward to seeing Leo."
    # The patient's name is PHI: the front desk's preview shows where it goes, not what it is.
    desk = client.post(
        f"/api/message-templates/{made['id']}/preview",
        json={"lead_id": lead["id"]},
        headers=tenant.headers("front_desk"),
    )
    assert desk.get_json()["body"] == "Hi Maria, we look forward to seeing [patient_first_name]."
    with db.unit_of_work() as session:
        audited = session.query(AuditEvent).filter_by(action="lead.read", subject_id=str(lead["id"])).count()
    assert audited >= 1
    other = make_tenant("Other Clinic")
    stranger = lead_with(client, other)
    resp = client.post(
        f"/api/message-templates/{made['id']}/preview",
        json={"lead_id": stranger["id"]},
        headers=tenant.headers(),
    )
    assert resp.status_code == 404


def test_a_sequence_step_and_a_rule_send_a_templates_text_and_count_its_use(app, client, db, tenant):
    configure_clinic(client, tenant)
    template = make_template(client, tenant, body="Hi {{ first_name }}, from {{ clinic_name }}")
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    step = {"delay": {"amount": 0, "unit": "minutes"}, "channel": "sms", "template_id": template["id"]}
    sequence = make_sequence(client, tenant, [step])
    assert sequence["steps"][0]["template_id"] == template["id"]
    enroll(client, tenant, lead["id"], sequence["id"])
    [done] = steps_of(db, lead["id"])
    [message] = messages_to(db, lead["id"])
    assert done.status == "done" and "Hi Jane, from Smile Orthodontics" in message.body
    assert template_counts(client, tenant, template["id"]) == (1, 0)

    # A template that is gone since: the step is skipped, the reason on the why-trail.
    client.delete(f"/api/message-templates/{template['id']}", headers=tenant.headers())
    again = make_sequence(
        client, tenant, [{**step, "template_id": email_template(client, tenant)["id"]}], expect=422
    )
    assert "template_id" in again["errors"]["json"]["steps"]["0"]


def test_rules_and_sequences_refuse_a_missing_or_wrong_channel_template(client, tenant, make_tenant):
    sms_template = make_template(client, tenant)
    foreign = make_template(client, make_tenant("Other Clinic"))
    delay = {"amount": 0, "unit": "minutes"}
    for template_id, channel in ((sms_template["id"], "email"), (foreign["id"], "sms"), (999_999, "sms")):
        resp = client.post(
            "/api/sequences",
            json={"name": "N", "steps": [{"delay": delay, "channel": channel, "template_id": template_id}]},
            headers=tenant.headers(),
        )
        assert "template_id" in errors_of(resp)["steps"]["0"], (template_id, channel)
        rule = {
            "name": "R",
            "trigger": "lead.created",
            "actions": [{"type": f"send_{channel}", "template_id": template_id}],
        }
        resp = client.post("/api/follow-up-rules", json=rule, headers=tenant.headers())
        assert "template_id" in errors_of(resp)["actions"]["0"], (template_id, channel)
    both = {"type": "send_sms", "template_id": sms_template["id"], "body": "Hi"}
    resp = client.post(
        "/api/follow-up-rules",
        json={"name": "R", "trigger": "lead.created", "actions": [both]},
        headers=tenant.headers(),
    )
    assert "body" in errors_of(resp)["actions"]["0"]
    ok = {
        "name": "R",
        "trigger": "lead.created",
        "actions": [{"type": "send_sms", "template_id": sms_template["id"]}],
    }
    assert client.post("/api/follow-up-rules", json=ok, headers=tenant.headers()).status_code == 201


def test_a_rule_naming_a_template_sends_its_text_when_it_fires(app, client, db, tenant):
    configure_clinic(client, tenant)
    template = make_template(client, tenant, body="Welcome {{ first_name }}!")
    rule = {
        "name": "Welcome",
        "trigger": "lead.created",
        "actions": [{"type": "send_sms", "template_id": template["id"]}],
    }
    assert client.post("/api/follow-up-rules", json=rule, headers=tenant.headers()).status_code == 201
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    process_events(app, db)
    [step] = steps_of(db, lead["id"])  # no delay: run as the rule fires
    [message] = messages_to(db, lead["id"])
    assert step.status == "done" and "Welcome Jane!" in message.body
    assert template_counts(client, tenant, template["id"]) == (1, 0)
