"""Every open lead always has a next step: the orphan sweep, GET /api/leads?next_step=none, the
followup_orphan_leads metric and the why-trail. The API and a real worker for what happens now;
the sweep run at chosen times."""

from datetime import timedelta

from app.domains.automation import orphans
from app.platform import clock
from tests.automation.kit import jobs, open_all_day, run_due_steps, run_events, tasks_of
from tests.leadkit import create_lead, set_user
from tests.tasks.taskkit import lead_for
from tests.workers import thread_worker, wait_for

FOLLOW_UP = orphans.FOLLOW_UP["title"]
# The planned follow-up is due when the clinic next opens (at once if it is open): within a week.
WHEN_THE_CLINIC_HAS_OPENED = timedelta(days=7)


def sweep(app, now, slice_size=1000):
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return orphans.find_orphan_leads(session=session, now=now, slice_size=slice_size)


def without_next_step(client, tenant):
    resp = client.get("/api/leads?next_step=none", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return [lead["id"] for lead in resp.get_json()]


def follow_ups(app, lead_id):
    return [t for t in tasks_of(app, lead_id) if t.title == FOLLOW_UP]


def orphan_metric(client, app, monkeypatch):
    monkeypatch.setattr(app.config["SETTINGS"], "metrics_token", "scrape-me")
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert resp.status_code == 200
    lines = resp.get_data(as_text=True).splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    return float(samples["followup_orphan_leads"]), float(samples["followup_orphan_sweep_last_pass_orphans"])


def test_a_lead_whose_last_task_was_completed_gets_one_follow_up_from_the_orphan_sweep(
    app, client, tenant, monkeypatch
):
    open_all_day(client, tenant, clock.now())
    lead = lead_for(client, tenant)
    busy = lead_for(client, tenant)  # keeps its initial call task open: never an orphan
    with thread_worker(app):
        for made in (lead, busy):
            wait_for(lambda made=made: jobs(app, made["id"], "events.process") == [], timeout=60)
        [initial] = tasks_of(app, lead["id"])
        done = client.post(
            f"/api/leads/tasks/{initial.id}/complete",
            json={"notes": "left a message"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert done.status_code == 200, done.get_json()
        wait_for(lambda: jobs(app, lead["id"], "events.process") == [], timeout=60)
    assert without_next_step(client, tenant) == [lead["id"]]

    completed_at = clock.now()
    # Within the clinic's delay (24 hours by default) it is counted, not yet given a task.
    assert sweep(app, completed_at + timedelta(hours=1)) == {
        "orphans": 1,
        "follow_ups": 0,
        "pass_ended": True,
    }
    assert follow_ups(app, lead["id"]) == []
    assert orphan_metric(client, app, monkeypatch) == (1, 1)  # one now; one found by the last pass

    found = completed_at + timedelta(hours=25)
    assert sweep(app, found)["follow_ups"] == 1
    # Planned on the ledger, it is a next step already; a worker makes the task.
    assert without_next_step(client, tenant) == []
    assert sweep(app, found + timedelta(minutes=1))["orphans"] == 0
    assert follow_ups(app, lead["id"]) == []
    assert run_due_steps(app, lead["id"], found) == 1
    for hours in (26, 50, 24 * 10):  # later sweeps: it has a next step now
        assert sweep(app, completed_at + timedelta(hours=hours)) == {
            "orphans": 0,
            "follow_ups": 0,
            "pass_ended": True,
        }
    [task] = follow_ups(app, lead["id"])
    assert task.assigned_to_id == lead["assigned_to_id"] and task.status == "PENDING"
    assert task.origin["sweep"] == orphans.SWEEP_NAME
    assert follow_ups(app, busy["id"]) == []
    assert without_next_step(client, tenant) == []
    assert orphan_metric(client, app, monkeypatch) == (0, 0)

    trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers()).get_json()
    [step] = [s for s in trail["past"] if s["sweep"]]
    assert step["sweep"] == "automation.find_orphan_leads" and step["result"]["task_id"] == task.id
    assert step["rule"] is None and "no next step since" in step["reason"]


def test_the_clinic_sets_how_long_a_lead_may_go_without_a_next_step(app, client, tenant):
    resp = client.put("/api/clinic", json={"settings": {"orphan_after_hours": 2}}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    # Speed to lead switched off: a new lead has nothing planned from the start.
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    off = client.patch(
        f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers()
    )
    assert off.status_code == 200
    lead = create_lead(client, tenant)
    captured = clock.now()
    assert sweep(app, captured + timedelta(days=2))["orphans"] == 0  # its events are still to process
    run_events(app, lead["id"], clock.now())
    assert sweep(app, captured + timedelta(hours=1))["follow_ups"] == 0
    assert sweep(app, captured + timedelta(hours=2, minutes=1))["follow_ups"] == 1
    run_due_steps(app, lead["id"], captured + WHEN_THE_CLINIC_HAS_OPENED)
    [task] = follow_ups(app, lead["id"])
    assert task.type == "FOLLOW_UP"


def test_the_sweep_walks_the_leads_a_slice_at_a_time_and_counts_a_whole_pass(app, client, tenant):
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    client.patch(f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers())
    made = [create_lead(client, tenant, phone=f"+1415555010{i}", first_name=f"L{i}")["id"] for i in range(5)]
    lost = client.post(
        f"/api/leads/{made[0]}/lost",
        json={"reason": "RELOCATED"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert lost.status_code == 200  # a closed lead is no orphan
    for lead_id in made:
        run_events(app, lead_id, clock.now())
    soon = clock.now() + timedelta(minutes=5)
    runs = [sweep(app, soon, slice_size=2) for _ in range(3)]
    assert [r["orphans"] for r in runs] == [1, 2, 1]
    assert [r["pass_ended"] for r in runs] == [False, False, True]
    with app.extensions["followup.db"].unit_of_work() as session:
        assert orphans.orphan_leads_metric(session=session) == 4


def test_a_backlog_of_orphans_is_worked_off_a_few_follow_ups_a_run(app, client, tenant):
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    client.patch(f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers())
    made = [create_lead(client, tenant, phone=f"+1415555010{i}", first_name=f"L{i}")["id"] for i in range(3)]
    for lead_id in made:
        run_events(app, lead_id, clock.now())
    later = clock.now() + timedelta(days=2)
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        runs = [
            orphans.find_orphan_leads(session=session, now=later, slice_size=100, max_follow_ups=2)
            for _ in range(3)
        ]
    assert [r["follow_ups"] for r in runs] == [2, 1, 0]
    assert [r["pass_ended"] for r in runs] == [False, True, True]
    for lead_id in made:
        run_due_steps(app, lead_id, later + WHEN_THE_CLINIC_HAS_OPENED)
    assert all(len(follow_ups(app, lead_id)) == 1 for lead_id in made)


def test_the_sweep_says_why_a_lead_has_no_next_step_and_gives_an_unowned_one_the_fallback_owner(
    app, client, tenant, monkeypatch
):
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    speed = next(r for r in rules if r["default_key"] == "speed_to_lead")
    off = client.patch(
        f"/api/follow-up-rules/{speed['id']}", json={"active": False}, headers=tenant.headers()
    )
    assert off.status_code == 200
    for role in ("treatment_coordinator", "clinic_admin"):  # nobody may be given a lead
        set_user(app, tenant.users[role].id, out_of_office=True)
    unowned = create_lead(client, tenant, first_name="Nobody")
    assert unowned["assigned_to_id"] is None
    unreachable = create_lead(client, tenant, first_name="Stop")
    dnc = client.put(
        f"/api/leads/{unreachable['id']}", json={"do_not_contact": True}, headers=tenant.headers()
    )
    assert dnc.status_code == 200, dnc.get_json()
    for lead in (unowned, unreachable):
        run_events(app, lead["id"], clock.now())
    later = clock.now() + timedelta(hours=25)
    assert sweep(app, later) == {"orphans": 2, "follow_ups": 0, "pass_ended": True}
    assert sweep(app, later + timedelta(hours=1))["follow_ups"] == 0  # counted once each

    def blocked(lead):
        shown = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers())
        return shown.get_json()["next_step_blocked"], shown.get_json()["assigned_to_id"]

    assert blocked(unowned) == ("no_owner", None)
    assert blocked(unreachable)[0] == "unreachable"
    assert sweep_metrics(client, app, monkeypatch) == (0, 2)

    desk = tenant.users["front_desk"].id
    refused = client.put(
        "/api/clinic", json={"settings": {"fallback_owner_id": 10**6}}, headers=tenant.headers()
    )
    assert refused.status_code == 422 and "fallback_owner_id" in str(refused.get_json())
    named = client.put(
        "/api/clinic", json={"settings": {"fallback_owner_id": desk}}, headers=tenant.headers()
    )
    assert named.status_code == 200, named.get_json()
    assert sweep(app, later + timedelta(hours=2))["follow_ups"] == 1
    assert blocked(unowned) == (None, desk)
    run_due_steps(app, unowned["id"], later + WHEN_THE_CLINIC_HAS_OPENED)
    [task] = follow_ups(app, unowned["id"])
    assert task.assigned_to_id == desk
    assert sweep_metrics(client, app, monkeypatch) == (1, 2)


def sweep_metrics(client, app, monkeypatch):
    """(leads given a next step, leads it could not help) as /metrics counts them."""
    monkeypatch.setattr(app.config["SETTINGS"], "metrics_token", "scrape-me")
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    lines = resp.get_data(as_text=True).splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    return (
        float(samples["followup_orphan_sweep_next_steps_given_total"]),
        float(samples["followup_orphan_sweep_not_helped_total"]),
    )
