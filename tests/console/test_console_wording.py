"""The console speaks to people: a lead's page names its owner, source and stage, says codes and
lists as words and its times in the clinic's timezone (app/console/wording.py)."""

from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.console import wording
from tests.console.test_console_pages import log_in
from tests.leadkit import create_lead


def _row(page: str, heading: str) -> str:
    """The text of the lead table's row under `heading`."""
    cell = page.split(f"<th>{heading}</th><td>", 1)[1].split("</td>", 1)[0]
    return html_lib.unescape(cell)


def test_a_leads_page_names_its_owner_source_and_stage_and_says_codes_as_words(app, client, tenant):
    [source, *_] = client.get("/api/lead-sources", headers=tenant.headers()).get_json()
    interest = ["INVISALIGN", "BRACES_CLEAR"]
    lead = create_lead(
        client, tenant, role="clinic_admin", treatment_interest=interest, source_id=source["id"]
    )
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    with app.test_client() as console:
        log_in(console, tenant)
        page = console.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    owner = next(user for user in tenant.users.values() if user.id == lead["assigned_to_id"])
    assert _row(page, "Owner") == owner.name
    assert _row(page, "Source") == source["name"]
    stage = next(stage["name"] for stage in stages if stage["slug"] == lead["pipeline_stage"])
    assert _row(page, "Pipeline stage") == stage and stage != lead["pipeline_stage"]
    assert _row(page, "Treatment interest") == "Invisalign, Braces clear"
    assert "['INVISALIGN'" not in page and "{'action'" not in page and "assigned_to_id" not in page
    created = datetime.fromisoformat(lead["created_at"]).astimezone(ZoneInfo("America/New_York"))
    assert _row(page, "Created at") == created.strftime(wording.TIME_FORMAT)


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("next_best_action", {"action": "call_now", "reason": "new lead", "at": None}, "Call now (new lead)"),
        ("status", "ACTIVE", "Active"),
        ("insurance_member_id", "MEM-123", "MEM-123"),
        ("assigned_to_id", 7, "Dr. Ortho"),
        ("assigned_to_id", 8, "#8"),
        ("pipeline_stage", "consultation_scheduled", "Consultation booked"),
        ("email_opt_out", False, "no"),
        (
            "suggested_action",
            "mark_lost",
            "Close the file as lost: three tries and the break-up email went unanswered",
        ),
        ("suggested_action", "Offer the Saturday slot", "Offer the Saturday slot"),  # a rule's own words
        ("created_at", "2026-07-01T16:30:00+00:00", "Wed 01 Jul 2026, 12:30 EDT"),
    ],
)
def test_each_kind_of_value_is_said_as_a_person_reads_it(key, value, said):
    names = wording.Names(
        zone=ZoneInfo("America/New_York"),
        users={7: "Dr. Ortho"},
        stages={"consultation_scheduled": "Consultation booked"},
    )
    assert wording.say(key, value, names) == said


def test_a_time_is_shown_in_the_clinics_zone():
    moment = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)
    assert (
        wording.when(moment, wording.Names(zone=ZoneInfo("America/Los_Angeles")))
        == "Thu 15 Jan 2026, 06:00 PST"
    )


def test_the_bulk_jobs_page_shows_when_each_began_in_the_clinics_zone(app, client, tenant):
    lead = create_lead(client, tenant)
    started = client.post(
        "/api/leads/tasks/bulk",
        json={"lead_ids": [lead["id"]], "title": "Call", "type": "CALL", "due_in_minutes": 60},
        headers=tenant.headers(),
    )
    assert started.status_code == 202, started.get_json()
    began = datetime.fromisoformat(started.get_json()["created_at"]).astimezone(ZoneInfo("America/New_York"))
    with app.test_client() as console:
        log_in(console, tenant)
        page = console.get("/console/bulk-jobs").get_data(as_text=True)
    assert began.strftime(wording.TIME_FORMAT) in html_lib.unescape(page)
