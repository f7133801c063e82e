"""Entry and exit criteria of a sequence: rules' conditions (groups too), checked when a lead is
enrolled and while it is in the sequence; errors by path when saved."""

from __future__ import annotations

from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollments,
    lead_with,
    make_sequence,
    process_events,
    sms,
    steps_of,
)

ORTHODONTIC = {
    "any": [
        {"field": "lead.treatment_interest", "operator": "contains", "value": "INVISALIGN"},
        {"field": "lead.treatment_interest", "operator": "in", "value": ["BRACES_METAL", "BRACES_CLEAR"]},
    ]
}
JUST_ASKING = {"field": "lead.treatment_interest", "operator": "contains", "value": "GENERAL_INQUIRY"}


def _sequence(client, tenant, **criteria) -> dict:
    body = {"name": "Orthodontic nurture", "steps": [sms(), sms(amount=2, unit="days")], **criteria}
    resp = client.post("/api/sequences", json=body, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_entry_conditions_with_any_enroll_either_treatment_and_refuse_the_rest(client, db, tenant):
    configure_clinic(client, tenant)
    sequence = _sequence(client, tenant, entry_conditions=[ORTHODONTIC])
    assert sequence["entry_conditions"] == [ORTHODONTIC]
    for phone, interest in (("(415) 555-2671", "INVISALIGN"), ("(415) 555-2672", "BRACES_CLEAR")):
        lead = lead_with(client, tenant, phone=phone, treatment_interest=[interest])
        assert enroll(client, tenant, lead["id"], sequence["id"])["status"] == "active"
    other = lead_with(client, tenant, phone="(415) 555-2673", treatment_interest=["GENERAL_INQUIRY"])
    refused = enroll(client, tenant, other["id"], sequence["id"], expect=409)
    assert refused["code"] == "entry_conditions_not_met"
    assert "lead.treatment_interest" in refused["message"]  # why: the conditions as evaluated
    assert enrollments(client, tenant, other["id"]) == [] and steps_of(db, other["id"]) == []


def test_exit_conditions_end_the_enrollment_when_the_lead_comes_to_meet_them(app, client, db, tenant):
    configure_clinic(client, tenant)
    sequence = _sequence(client, tenant, exit_conditions=[JUST_ASKING])
    lead = lead_with(client, tenant, phone="(415) 555-2671", treatment_interest=["INVISALIGN"])
    enroll(client, tenant, lead["id"], sequence["id"])
    assert [s.status for s in steps_of(db, lead["id"])] == ["done", "scheduled"]
    changed = client.put(
        f"/api/leads/{lead['id']}",
        json={"treatment_interest": ["INVISALIGN", "GENERAL_INQUIRY"]},
        headers=tenant.headers(),
    )
    assert changed.status_code == 200, changed.get_json()
    process_events(app, db)
    [shown] = enrollments(client, tenant, lead["id"])
    assert (shown["status"], shown["end_reason"]) == ("unenrolled", "exit_conditions")
    assert [s.status for s in steps_of(db, lead["id"])] == ["done", "cancelled"]
    assert steps_of(db, lead["id"])[1].result["reason"] == "unenrolled: exit_conditions"


def test_criteria_are_checked_when_saved_with_errors_by_path(client, tenant):
    bad = {"any": [JUST_ASKING, {"field": "lead.treatment_interest", "operator": "in", "value": "BRACES"}]}
    resp = client.post(
        "/api/sequences",
        json={
            "name": "Bad",
            "steps": [sms()],
            "entry_conditions": [bad],
            "exit_conditions": [{"field": "x"}],
        },
        headers=tenant.headers(),
    )
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]["json"]
    assert errors["entry_conditions"] == {"0": {"any": {"1": {"value": ["in takes a list of values"]}}}}
    assert "unknown field" in errors["exit_conditions"]["0"]["field"][0]
    made = make_sequence(client, tenant, [sms()], name="Fine")
    url = f"/api/sequences/{made['id']}"
    cleared = client.put(url, json={"exit_conditions": None}, headers=tenant.headers())
    assert cleared.status_code == 200 and cleared.get_json()["exit_conditions"] is None
