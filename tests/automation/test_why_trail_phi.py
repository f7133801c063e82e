"""The why-trail and a rule test under the PHI policy (app/platform/phi_policy.py): a condition on a PHI
field of the lead shows what it saw, and whether it held, only to a reader with `lead:phi`."""

from app.platform import clock
from tests.automation.kit import open_all_day, run_events
from tests.leadkit import create_lead

CITY_NUDGE = {
    "name": "Nudge Springfield notes",
    "trigger": "activity.logged",
    "conditions": [
        {"field": "event.activity_type", "operator": "equals", "value": "NOTE"},
        {"field": "lead.city", "operator": "equals", "value": "Springfield"},
    ],
    "actions": [
        {"type": "notify", "lead_owner": True, "title": "Note", "delay": {"amount": 2, "unit": "hours"}}
    ],
}


def test_a_condition_on_a_phi_field_shows_its_value_only_with_lead_phi(app, client, tenant):
    open_all_day(client, tenant, clock.now())
    assert client.post("/api/follow-up-rules", json=CITY_NUDGE, headers=tenant.headers()).status_code == 201
    lead = create_lead(client, tenant, role="treatment_coordinator", city="Springfield")
    note = client.post(
        f"/api/leads/{lead['id']}/activities", json={"type": "NOTE", "notes": "n"}, headers=tenant.headers()
    )
    assert note.status_code == 201
    run_events(app, lead["id"], clock.now())

    def conditions(role):
        trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers(role)).get_json()
        [step] = [s for s in trail["pending"] if (s["rule"] or {}).get("name") == CITY_NUDGE["name"]]
        return {c["field"]: c for c in step["conditions"]}

    coordinator = conditions("treatment_coordinator")
    assert (coordinator["lead.city"]["seen"], coordinator["lead.city"]["result"]) == ("Springfield", True)
    desk = conditions("front_desk")
    # The step exists because the condition held: the value it compared with is the lead's city too.
    assert desk["lead.city"] == {"field": "lead.city", "operator": "equals"}
    assert (desk["event.activity_type"]["seen"], desk["event.activity_type"]["result"]) == ("NOTE", True)


def test_a_rule_test_shows_a_phi_condition_only_with_lead_phi(client, tenant):
    rule = client.post("/api/follow-up-rules", json=CITY_NUDGE, headers=tenant.headers()).get_json()
    lead = create_lead(client, tenant, role="treatment_coordinator", city="Springfield")
    key = client.post(
        "/api/api-keys",
        json={"name": "ops", "permissions": ["lead:read", "lead:configure"]},
        headers=tenant.headers(),
    ).get_json()["key"]
    body = {"lead_id": lead["id"], "event": {"activity_type": "NOTE"}}

    def city(headers):
        resp = client.post(f"/api/follow-up-rules/{rule['id']}/test", json=body, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        return next(c for c in resp.get_json()["conditions"] if c["field"] == "lead.city")

    assert (city(tenant.headers())["seen"], city(tenant.headers())["result"]) == ("Springfield", True)
    assert not {"value", "seen", "result"} & set(city({"X-API-Key": key}))


def test_a_group_holding_a_phi_condition_hides_its_result_too(app, client, tenant):
    """An `any` of one city condition and a condition that fails held only because of the city: the
    group's result would tell the front desk what the hidden condition did."""
    open_all_day(client, tenant, clock.now())
    grouped = {
        **CITY_NUDGE,
        "name": "Nudge Springfield notes, grouped",
        "conditions": [
            {"field": "event.activity_type", "operator": "equals", "value": "NOTE"},
            {
                "any": [
                    {"field": "lead.city", "operator": "equals", "value": "Springfield"},
                    {"field": "lead.status", "operator": "equals", "value": "LOST"},
                ]
            },
        ],
    }
    assert client.post("/api/follow-up-rules", json=grouped, headers=tenant.headers()).status_code == 201
    lead = create_lead(client, tenant, role="treatment_coordinator", city="Springfield")
    note = client.post(
        f"/api/leads/{lead['id']}/activities", json={"type": "NOTE", "notes": "n"}, headers=tenant.headers()
    )
    assert note.status_code == 201
    run_events(app, lead["id"], clock.now())

    def group(role):
        trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers(role)).get_json()
        [step] = [s for s in trail["pending"] if (s["rule"] or {}).get("name") == grouped["name"]]
        return step["conditions"][1]

    coordinator = group("treatment_coordinator")
    assert coordinator["result"] is True and coordinator["any"][0]["seen"] == "Springfield"
    desk = group("front_desk")
    assert "result" not in desk and desk["any"][0] == {"field": "lead.city", "operator": "equals"}
