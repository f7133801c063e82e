"""Condition groups through the API: one rule says "Invisalign or braces, and not a referral" with
`any` and `not`; its why-trail shows the branch that matched; a malformed group is a 422 by path."""

from __future__ import annotations

from app.platform import clock
from tests.automation.kit import capture_at, run_events, steps_of
from tests.leadkit import source_ids

BRACES = ["BRACES_METAL", "BRACES_CLEAR"]
TREATMENT_NOT_REFERRAL = {
    "name": "Orthodontic interest, not a referral",
    "trigger": "lead.created",
    "conditions": [
        {
            "any": [
                {"field": "lead.treatment_interest", "operator": "contains", "value": "INVISALIGN"},
                {"field": "lead.treatment_interest", "operator": "in", "value": BRACES},
            ]
        },
        {
            "not": {
                "field": "lead.source_category",
                "operator": "in",
                "value": ["DOCTOR_REFERRAL", "PATIENT_REFERRAL"],
            }
        },
    ],
    "actions": [{"type": "notify", "lead_owner": True, "title": "Send the treatment guide"}],
}


def post_rule(client, tenant, body, expect=201):
    resp = client.post("/api/follow-up-rules", json=body, headers=tenant.headers("clinic_admin"))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def fired(app, lead_id: int, rule_id: int) -> list:
    run_events(app, lead_id, clock.now())
    return [s for s in steps_of(app, lead_id) if s.rule_id == rule_id]


def test_an_any_rule_fires_for_either_treatment_and_not_for_a_referral(app, client, tenant):
    rule = post_rule(client, tenant, TREATMENT_NOT_REFERRAL)
    sources = source_ids(client, tenant)
    web = (
        sources["WEBSITE"]
        if "WEBSITE" in sources
        else next(source for category, source in sources.items() if "REFERRAL" not in category)
    )
    now = clock.now()
    invisalign = capture_at(app, tenant, now, treatment_interest=["INVISALIGN"], source_id=web)
    braces = capture_at(app, tenant, now, treatment_interest=["BRACES_CLEAR"], source_id=web)
    referred = capture_at(
        app, tenant, now, treatment_interest=["INVISALIGN"], source_id=sources["DOCTOR_REFERRAL"]
    )
    neither = capture_at(app, tenant, now, treatment_interest=["GENERAL_INQUIRY"], source_id=web)

    [first] = fired(app, invisalign, rule["id"])
    [second] = fired(app, braces, rule["id"])
    assert fired(app, referred, rule["id"]) == []
    assert fired(app, neither, rule["id"]) == []
    # The why-trail shows which branch of the `any` matched: the first for Invisalign (the second
    # never asked), the second for braces; and the `not` around the source.
    any_trail = [[(c["value"], c["result"]) for c in step.conditions[0]["any"]] for step in (first, second)]
    assert any_trail == [[("INVISALIGN", True)], [("INVISALIGN", False), (BRACES, True)]]
    assert [step.conditions[1]["result"] for step in (first, second)] == [True, True]
    assert first.conditions[1]["not"]["result"] is False


def test_the_test_endpoint_shows_every_branch_of_a_group(client, tenant):
    rule = post_rule(client, tenant, TREATMENT_NOT_REFERRAL)
    answer = client.post(
        f"/api/follow-up-rules/{rule['id']}/test",
        json={"lead": {"treatment_interest": ["BRACES_METAL"], "source_category": "PATIENT_REFERRAL"}},
        headers=tenant.headers("clinic_admin"),
    ).get_json()
    assert answer["matched"] is False
    assert [c["result"] for c in answer["conditions"][0]["any"]] == [False, True]
    assert answer["conditions"][1]["result"] is False and answer["conditions"][1]["not"]["result"] is True


def test_a_malformed_group_is_a_422_naming_its_path_and_nothing_is_stored(client, tenant):
    bad_value = {
        **TREATMENT_NOT_REFERRAL,
        "conditions": [{"any": [{"field": "lead.status", "operator": "equals", "value": "NEW"},
                                {"field": "lead.status", "operator": "in", "value": "NEW"}]}],
    }  # fmt: skip
    errors = post_rule(client, tenant, bad_value, 422)["errors"]["json"]["conditions"]
    assert errors == {"0": {"any": {"1": {"value": ["in takes a list of values"]}}}}

    empty = {**TREATMENT_NOT_REFERRAL, "conditions": [{"all": []}]}
    assert "all" in post_rule(client, tenant, empty, 422)["errors"]["json"]["conditions"]["0"]

    leaf = {"field": "lead.status", "operator": "equals", "value": "NEW"}
    deep = {**TREATMENT_NOT_REFERRAL, "conditions": [{"not": {"any": [{"all": [{"not": leaf}]}]}}]}
    errors = post_rule(client, tenant, deep, 422)["errors"]["json"]["conditions"]
    assert errors == {
        "0": {"not": {"any": {"0": {"all": {"0": {"not": ["groups nest at most 3 levels deep"]}}}}}}
    }

    mixed = {**TREATMENT_NOT_REFERRAL, "conditions": [{"any": [leaf], "field": "lead.status"}]}
    assert "_schema" in post_rule(client, tenant, mixed, 422)["errors"]["json"]["conditions"]["0"]

    names = [r["name"] for r in client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()]
    assert TREATMENT_NOT_REFERRAL["name"] not in names
