"""The rule action update_stage, run by a real worker (in-process thread worker on the real Redis)."""

from tests.automation.test_rules_api import post_rule
from tests.tasks.taskkit import lead_for
from tests.workers import thread_worker, wait_for

ON_A_CALL = {
    "name": "Contacted when we spoke",
    "trigger": "activity.logged",
    "conditions": [
        {"field": "event.activity_type", "operator": "equals", "value": "PHONE_CALL"},
        {"field": "event.outcome", "operator": "equals", "value": "spoke"},
    ],
    "actions": [{"type": "update_stage", "stage": "contacted", "notes": "moved by a rule"}],
}
BACK_ON_A_NOTE = {
    "name": "Back to new on a note",
    "trigger": "activity.logged",
    "conditions": [{"field": "event.activity_type", "operator": "equals", "value": "NOTE"}],
    "actions": [{"type": "update_stage", "stage": "new_lead"}],
}


def log(client, tenant, lead_id, **activity):
    resp = client.post(f"/api/leads/{lead_id}/activities", json=activity, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()


def trail_steps(client, tenant, lead_id, rule_id, status):
    trail = client.get(f"/api/leads/{lead_id}/automation", headers=tenant.headers()).get_json()
    return [s for s in trail["past"] if (s["rule"] or {}).get("id") == rule_id and s["status"] == status]


def test_a_rule_moves_the_stage_and_a_refused_move_is_on_the_why_trail(app, client, tenant):
    forward = post_rule(client, tenant, ON_A_CALL)
    backward = post_rule(client, tenant, BACK_ON_A_NOTE)
    lead = lead_for(client, tenant)
    with thread_worker(app):
        log(client, tenant, lead["id"], type="PHONE_CALL", direction="OUTBOUND", outcome="spoke")
        done = wait_for(lambda: trail_steps(client, tenant, lead["id"], forward["id"], "done"), timeout=60)
        log(client, tenant, lead["id"], type="NOTE", notes="called, will think")
        refused = wait_for(
            lambda: trail_steps(client, tenant, lead["id"], backward["id"], "skipped"), timeout=60
        )
    shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()
    assert shown["pipeline_stage"] == "contacted" and shown["status"] == "ACTIVE"
    assert done[0]["result"]["from_stage"] == "new_lead" and done[0]["result"]["to_stage"] == "contacted"
    assert len(refused) == 1 and "backwards" in refused[0]["reason"]
    timeline = client.get(
        f"/api/leads/{lead['id']}/activities?type=STAGE_CHANGE", headers=tenant.headers()
    ).get_json()
    assert [(a["previous_stage"], a["new_stage"], a["actor"]) for a in timeline] == [
        ("new_lead", "contacted", "automation")
    ]


def lead_if_lost(client, tenant, lead_id):
    body = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    return body if body["status"] == "LOST" else None


def test_update_stage_to_lost_closes_the_lead_with_its_reason(app, client, tenant):
    to_lost = {
        **BACK_ON_A_NOTE,
        "name": "Lost on a note",
        "actions": [{"type": "update_stage", "stage": "lost", "reason": "NO_RESPONSE"}],
    }
    post_rule(client, tenant, to_lost)
    lead = lead_for(client, tenant)
    with thread_worker(app):
        log(client, tenant, lead["id"], type="NOTE", notes="gave up")
        lost = wait_for(lambda: lead_if_lost(client, tenant, lead["id"]), timeout=60)
    assert lost["lost_reason"] == "NO_RESPONSE" and lost["pipeline_stage"] == "lost"


def test_bad_update_stage_actions_are_422_naming_the_part(client, tenant):
    for action, part in (
        ({"type": "update_stage"}, "stage"),
        ({"type": "update_stage", "stage": "treatment_started"}, "stage"),
        ({"type": "update_stage", "stage": "lost"}, "reason"),
        ({"type": "update_stage", "stage": "contacted", "reason": "OTHER"}, "reason"),
    ):
        body = post_rule(client, tenant, {**ON_A_CALL, "actions": [action]}, expect=422)
        assert part in str(body["errors"]), (action, body)
