"""A clinic's hours with a lunch break and dated exceptions, through the API: the speed-to-lead call
task (5 business minutes after capture: app/domains/automation/defaults.py) honours them."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.automation.kit import capture_at, run_events, tasks_of

NY = ZoneInfo("America/New_York")
LUNCH = [["09:00", "12:00"], ["13:00", "17:00"]]
HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), LUNCH) | {
    "exceptions": {"2026-12-24": [["09:00", "14:00"]], "2026-12-25": []}
}


def ny(*args):
    return datetime(*args, tzinfo=NY).astimezone(UTC)


def set_hours(client, tenant, hours):
    return client.put(
        "/api/clinic",
        json={"timezone": "America/New_York", "business_hours": hours, "holiday_country": None},
        headers=tenant.headers(),
    )


def call_due_of_lead_captured_at(app, tenant, when):
    lead_id = capture_at(app, tenant, when, email="jane@example.com")
    assert run_events(app, lead_id, when + timedelta(seconds=2)) == 1
    [task] = tasks_of(app, lead_id)
    assert task.title == "Initial contact"
    return task.due_at


def test_a_lead_captured_before_lunch_is_called_after_it(app, client, tenant):
    resp = set_hours(client, tenant, HOURS)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["business_hours"]["wed"] == LUNCH
    assert call_due_of_lead_captured_at(app, tenant, ny(2026, 11, 18, 11, 58)) == ny(2026, 11, 18, 13, 3)


def test_christmas_eve_closes_at_two(app, client, tenant):
    assert set_hours(client, tenant, HOURS).status_code == 200
    # 2 minutes before 14:00 on Thursday 24 December; closed on the 25th and the weekend.
    assert call_due_of_lead_captured_at(app, tenant, ny(2026, 12, 24, 13, 58)) == ny(2026, 12, 28, 9, 3)


def test_one_period_a_day_stays_valid(app, client, tenant):
    resp = set_hours(client, tenant, {"mon": ["08:00", "17:00"], "sat": None})
    assert resp.status_code == 200 and resp.get_json()["business_hours"]["mon"] == ["08:00", "17:00"]


def test_bad_hours_are_a_422_naming_the_field(app, client, tenant):
    for hours, words in [
        ({"mon": [["09:00", "12:00"], ["11:30", "17:00"]]}, "mon: periods overlap"),
        ({"fri": [["17:00", "09:00"]]}, "fri: opening 17:00 must be before closing 09:00"),
        ({"exceptions": {"24/12/2026": []}}, "exceptions.24/12/2026: not a date"),
    ]:
        resp = set_hours(client, tenant, hours)
        assert resp.status_code == 422, resp.get_json()
        assert words in str(resp.get_json()) and "business_hours" in str(resp.get_json())


def test_days_may_be_given_by_their_full_name_and_are_answered_by_their_key(app, client, tenant):
    """Issue 77: `monday` was refused; a person types the day's name, in any case."""
    resp = set_hours(client, tenant, {"Monday": ["08:00", "17:00"], "TUESDAY": LUNCH, "wed": None})
    assert resp.status_code == 200, resp.get_json()
    hours = resp.get_json()["business_hours"]
    assert hours["mon"] == ["08:00", "17:00"] and hours["tue"] == LUNCH
    assert not {"Monday", "TUESDAY", "monday"} & set(hours)
    # A provider's weekly hours are read the same way.
    made = client.post(
        "/api/availability/providers",
        json={"name": "Dr. Sunday", "hours": {"friday": ["09:00", "13:00"], "Saturday": None}},
        headers=tenant.headers(),
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["hours"]["fri"] == ["09:00", "13:00"] and "friday" not in made.get_json()["hours"]


def test_an_unknown_day_is_a_422_naming_the_field_and_the_day(app, client, tenant):
    for hours, words in [
        ({"funday": ["09:00", "17:00"]}, "unknown weekday 'funday'"),
        ({"mon": ["09:00", "17:00"], "Monday": ["10:00", "12:00"]}, "mon: given twice"),
    ]:
        resp = set_hours(client, tenant, hours)
        assert resp.status_code == 422, resp.get_json()
        assert words in str(resp.get_json()["errors"]["json"]["business_hours"])
    resp = client.post(
        "/api/availability/providers",
        json={"name": "Dr. Fun", "hours": {"funday": ["09:00", "17:00"]}},
        headers=tenant.headers(),
    )
    assert resp.status_code == 422 and "funday" in str(resp.get_json()["errors"]["json"]["hours"])
