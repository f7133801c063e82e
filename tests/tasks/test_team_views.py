"""Team task views over the API: the clinic's tasks filtered, sorted and paged; the summary."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.platform import clock
from tests.tasks.taskkit import in_minutes, iso, lead_for
from tests.tasks.test_tasks_api import new_task


def team(client, tenant, query="", role="clinic_admin", expect=200):
    resp = client.get(f"/api/leads/tasks{query}", headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp


def ids(resp) -> list[int]:
    return [task["id"] for task in resp.get_json()]


def test_filters_by_assignee_status_type_priority_lead_due_range_and_overdue(client, tenant):
    coordinator, admin = tenant.users["treatment_coordinator"].id, tenant.users["clinic_admin"].id
    first, second = lead_for(client, tenant), lead_for(client, tenant)
    late = new_task(client, tenant, first["id"], due_at=iso(in_minutes(-90)), type="EMAIL")
    soon = new_task(client, tenant, first["id"], due_at=iso(in_minutes(30)), priority="HIGH")
    admins = new_task(client, tenant, second["id"], due_at=iso(in_minutes(120)), assigned_to_id=admin)
    done = new_task(client, tenant, second["id"], due_at=iso(in_minutes(-30)))
    completed = client.post(f"/api/leads/tasks/{done['id']}/complete", json={}, headers=tenant.headers())
    assert completed.status_code == 200
    everything = {late["id"], soon["id"], admins["id"], done["id"]}

    assert everything <= set(ids(team(client, tenant, "?page_size=100")))
    assert set(ids(team(client, tenant, f"?assigned_to_id={admin}"))) == {admins["id"]}
    both = f"?assigned_to_id={admin}&assigned_to_id={coordinator}"
    assert set(ids(team(client, tenant, both))) >= everything
    assert set(ids(team(client, tenant, "?status=COMPLETED"))) == {done["id"]}
    assert set(ids(team(client, tenant, "?type=EMAIL"))) == {late["id"]}
    assert set(ids(team(client, tenant, "?priority=HIGH"))) == {soon["id"]}
    on_second = set(ids(team(client, tenant, f"?lead_id={second['id']}")))
    assert {admins["id"], done["id"]} <= on_second and late["id"] not in on_second
    start, end = (iso(in_minutes(m)).replace("+", "%2B") for m in (0, 60))
    window = f"?due_from={start}&due_to={end}"
    assert set(ids(team(client, tenant, window))) & everything == {soon["id"]}
    overdue = set(ids(team(client, tenant, "?overdue=true")))
    assert late["id"] in overdue and done["id"] not in overdue and soon["id"] not in overdue
    assert late["id"] not in set(ids(team(client, tenant, "?overdue=false&page_size=100")))


def test_sorting_and_paging(client, tenant):
    lead = lead_for(client, tenant)
    made = [
        new_task(client, tenant, lead["id"], due_at=iso(in_minutes(m)), priority=p)
        for m, p in ((30, "LOW"), (10, "URGENT"), (20, "NORMAL"))
    ]
    query = f"?lead_id={lead['id']}&status=PENDING"
    by_due = ids(team(client, tenant, query))
    assert by_due == [made[1]["id"], made[2]["id"], made[0]["id"]]
    assert ids(team(client, tenant, query + "&sort=-due_at")) == list(reversed(by_due))
    urgent_first = [made[1]["id"], made[2]["id"], made[0]["id"]]
    assert ids(team(client, tenant, query + "&sort=priority")) == urgent_first
    assert ids(team(client, tenant, query + "&sort=-priority"))[0] == made[0]["id"]
    page = team(client, tenant, query + "&page=2&page_size=2")
    assert ids(page) == [made[0]["id"]]
    assert '"total": 3' in page.headers["X-Pagination"]


def test_summary_counts_by_status_and_due_bucket_per_assignee(client, tenant):
    coordinator, admin = tenant.users["treatment_coordinator"].id, tenant.users["clinic_admin"].id
    empty = client.get("/api/leads/tasks/summary", headers=tenant.headers()).get_json()
    assert empty["totals"]["total"] == 0 and empty["assignees"] == []
    zone = ZoneInfo(empty["timezone"])
    today_ends = datetime.fromisoformat(empty["today_ends_at"])
    week_ends = datetime.fromisoformat(empty["week_ends_at"])
    # The bounds are midnights of the clinic's calendar: tomorrow's, and the coming Monday's.
    local_today = clock.now().astimezone(zone).date()
    assert today_ends.astimezone(zone).date() == local_today + timedelta(days=1)
    assert today_ends.astimezone(zone).time().isoformat() == "00:00:00"
    assert week_ends.astimezone(zone).weekday() == 0 and week_ends >= today_ends

    lead = lead_for(client, tenant)
    dues = {
        "overdue": clock.now() - timedelta(hours=2),
        "today": max(clock.now() + timedelta(seconds=90), today_ends - timedelta(minutes=1)),
        "later": week_ends + timedelta(days=2),
    }
    for due in dues.values():
        new_task(client, tenant, lead["id"], due_at=iso(due))
    new_task(client, tenant, lead["id"], due_at=iso(dues["later"]), assigned_to_id=admin)
    closed = new_task(client, tenant, lead["id"], due_at=iso(dues["overdue"]))
    assert client.post(f"/api/leads/tasks/{closed['id']}/cancel", headers=tenant.headers()).status_code == 200

    summary = client.get("/api/leads/tasks/summary", headers=tenant.headers()).get_json()
    people = {row["assigned_to_id"]: row for row in summary["assignees"]}
    mine = people[coordinator]
    assert mine["by_due"] == {"overdue": 1, "today": 1, "this_week": 0, "later": 1}
    assert mine["by_status"]["PENDING"] == 3 and mine["by_status"]["CANCELLED"] == 1
    assert mine["open"] == 3 and mine["total"] == 4
    assert people[admin]["by_due"]["later"] == 1 and people[admin]["name"]
    assert summary["totals"]["by_due"]["later"] == 2 and summary["totals"]["total"] == 5
    # The same filters as the list apply.
    only_admin = client.get(f"/api/leads/tasks/summary?assigned_to_id={admin}", headers=tenant.headers())
    assert [row["assigned_to_id"] for row in only_admin.get_json()["assignees"]] == [admin]


def test_another_clinics_tasks_are_invisible_and_bad_filters_are_422(client, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    theirs = new_task(client, other, lead_for(client, other)["id"], role="clinic_admin")
    assert theirs["id"] not in ids(team(client, tenant, "?page_size=100"))
    assert team(client, tenant, f"?lead_id={theirs['lead_id']}").get_json() == []
    summary = client.get("/api/leads/tasks/summary", headers=tenant.headers()).get_json()
    assert summary["totals"]["total"] == 0
    for query, field in (
        ("?status=DONE", "status"),
        ("?sort=colour", "sort"),
        ("?assigned_to_id=abc", "assigned_to_id"),
        ("?due_from=2026-01-02T00:00:00Z&due_to=2026-01-01T00:00:00Z", "due_to"),
        ("?overdue=maybe", "overdue"),
    ):
        body = team(client, tenant, query, expect=422).get_json()
        assert field in body["errors"]["query"], (query, body)
    assert client.get("/api/leads/tasks").status_code == 401
