"""Recurring tasks in the clinic's (or the lead's) local time, counted from the series' anchor:
a weekly 09:00 New York task stays at 09:00 across the clock change, and a monthly series of the
31st goes 31 Jan -> 28 Feb -> 31 Mar."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from app.domains.tasks.rules import nth_occurrence
from tests.tasks.taskkit import lead_for
from tests.tasks.test_task_reminders_series import at, complete, next_of
from tests.tasks.test_tasks_api import new_task

NY = ZoneInfo("America/New_York")


def in_new_york(client, tenant):
    resp = client.put("/api/clinic", json={"timezone": "America/New_York"}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def occurrences(client, tenant, lead_id, first, count):
    out, current = [first], first
    for _ in range(count - 1):
        complete(client, tenant, current["id"])
        current = next_of(client, tenant, lead_id, current["id"])
        out.append(current)
    return [at(task["due_at"]).astimezone(NY) for task in out]


def test_a_weekly_nine_o_clock_task_stays_at_nine_across_the_clock_change(client, tenant):
    in_new_york(client, tenant)
    lead = lead_for(client, tenant)
    # Thursday 30 October 2031, 09:00 EDT; the clocks go back on Sunday 2 November.
    first = new_task(client, tenant, lead["id"], due_at="2031-10-30T13:00:00+00:00", recurrence="weekly")
    due = occurrences(client, tenant, lead["id"], first, 3)
    assert [(d.date().isoformat(), d.strftime("%H:%M")) for d in due] == [
        ("2031-10-30", "09:00"),
        ("2031-11-06", "09:00"),
        ("2031-11-13", "09:00"),
    ]
    assert due[1].astimezone(UTC).hour == 14  # the UTC hour moved, the local one did not


def test_a_monthly_series_of_the_31st_comes_back_to_the_31st(client, tenant):
    in_new_york(client, tenant)
    lead = lead_for(client, tenant)
    first = new_task(client, tenant, lead["id"], due_at="2031-01-31T14:00:00+00:00", recurrence="monthly")
    due = occurrences(client, tenant, lead["id"], first, 4)
    assert [d.date().isoformat() for d in due] == ["2031-01-31", "2031-02-28", "2031-03-31", "2031-04-30"]
    assert {d.strftime("%H:%M") for d in due} == {"09:00"}  # across the March clock change too


def test_an_occurrence_edited_alone_leaves_the_cadence_on_its_anchor(client, tenant):
    in_new_york(client, tenant)
    lead = lead_for(client, tenant)
    first = new_task(client, tenant, lead["id"], due_at="2031-01-31T14:00:00+00:00", recurrence="monthly")
    complete(client, tenant, first["id"])
    february = next_of(client, tenant, lead["id"], first["id"])
    moved = client.put(
        f"/api/leads/tasks/{february['id']}",
        json={"due_at": "2031-02-27T15:00:00+00:00"},
        headers=tenant.headers(),
    )
    assert moved.status_code == 200, moved.get_json()
    complete(client, tenant, february["id"])
    march = next_of(client, tenant, lead["id"], february["id"])
    assert at(march["due_at"]).astimezone(NY) == datetime(2031, 3, 31, 9, 0, tzinfo=NY)


def test_occurrences_count_in_the_given_zone():
    anchor = datetime(2031, 1, 31, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    third = nth_occurrence(anchor, "monthly", 1, 2, "America/Los_Angeles")
    assert third.astimezone(ZoneInfo("America/Los_Angeles")) == datetime(
        2031, 3, 31, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles")
    )
    assert nth_occurrence(anchor, "daily", 3, 1, "UTC") == anchor.astimezone(UTC).replace(day=3, month=2)
