"""The calendar feed: a user's open tasks as iCalendar at a secret URL that rotating invalidates."""

import sqlalchemy as sa
from icalendar import Calendar

from app.domains.consultations.calendar_feed.models import CalendarFeed
from tests.leadkit import create_lead


def make_task(client, tenant, lead, title, role="treatment_coordinator", **extra):
    resp = client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": title, "type": "CALL", "due_in_minutes": 60, **extra},
        headers=tenant.headers(role),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_the_feed_lists_exactly_my_open_tasks(client, db, tenant, make_tenant):
    me = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant)
    open1 = make_task(client, tenant, lead, "Call back", assigned_to_id=me)
    open2 = make_task(client, tenant, lead, "Send x-ray info", assigned_to_id=me)
    done = make_task(client, tenant, lead, "Done already", assigned_to_id=me)
    client.post(
        f"/api/leads/tasks/{done['id']}/complete", json={}, headers=tenant.headers("treatment_coordinator")
    )
    make_task(client, tenant, lead, "Someone else's", assigned_to_id=tenant.users["clinic_admin"].id)

    resp = client.post("/api/me/calendar-token", headers=tenant.headers("treatment_coordinator"))
    assert resp.status_code == 201
    url = resp.get_json()["url"]
    feed = client.get(url)
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    events = Calendar.from_ical(feed.data).walk("VEVENT")
    assert sorted(str(e["uid"]) for e in events) == sorted(
        f"task-{t['id']}@followup-engine" for t in (open1, open2)
    )
    assert all("Jane" not in str(e["summary"]) for e in events)  # no lead names in a third-party calendar
    with db.unit_of_work() as session:
        stored = session.scalar(sa.select(CalendarFeed.token_hash))
    assert resp.get_json()["token"] not in stored  # only a hash is kept

    rotated = client.post(
        "/api/me/calendar-token", headers=tenant.headers("treatment_coordinator")
    ).get_json()
    assert client.get(url).status_code == 404
    assert client.get(rotated["url"]).status_code == 200
    assert client.get("/api/calendar/not-a-token.ics").status_code == 404
