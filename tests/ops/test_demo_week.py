"""The demo clinic shows a working week (issue 77): after `followup seed-demo`, every page the demo
staff open has something true on it, its booking links show free times, and `followup demo reset`
starts it again. The seed runs in process against the session's app (fast); the command's own
run is tests/ops/test_seed_demo.py's."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from app.cli import main as followup
from app.devtools import demo
from app.devtools.instagram import GraphStandIn
from app.domains.lead_messages import booking_link
from app.platform import clock
from tests.console.test_console_pages import csrf_of
from tests.outbound.kit import use


@pytest.fixture
def seeded(app, tmp_path, monkeypatch):
    """The demo, seeded as `make run` seeds it: with its development stand-in for Meta's Graph API."""
    stand_in = GraphStandIn(development=True).start()
    use(monkeypatch, app.config["SETTINGS"], instagram_graph_url=stand_in.url)
    try:
        with app.app_context():
            seeded = demo.seed(now=clock.now(), var_dir=tmp_path)
        yield seeded  # outside the app context: each request of the test has its own
    finally:
        stand_in.stop()


def console_as(app, seeded, role: str):
    """A browser's session of the demo user of `role`, logged in through the console's form."""
    client = app.test_client()
    login = next(user for user in seeded["users"] if user["role"] == role)
    token = csrf_of(client.get("/console/login").get_data(as_text=True))
    resp = client.post(
        "/console/login", data={"email": login["email"], "password": login["password"], "csrf_token": token}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def page(client, path: str) -> str:
    resp = client.get(path)
    assert resp.status_code == 200, (path, resp.status_code)
    return resp.get_data(as_text=True)


def api_as(app, seeded, role: str) -> dict:
    login = next(user for user in seeded["users"] if user["role"] == role)
    token = (
        app.test_client()
        .post("/api/auth/login", json={"email": login["email"], "password": login["password"]})
        .get_json()["access_token"]
    )
    return {"Authorization": f"Bearer {token}"}


def test_every_page_of_the_demo_staff_shows_the_seeded_week_and_its_booking_links_offer_times(app, seeded):
    client = console_as(app, seeded, "treatment_coordinator")
    headers = api_as(app, seeded, "clinic_admin")
    leads = app.test_client().get("/api/leads?page_size=100", headers=headers).get_json()
    assert len(leads) >= 12
    # Leads in every stage of the pipeline: the board shows each column filled.
    stages = {lead["pipeline_stage"] for lead in leads}
    assert stages >= {
        "new_lead",
        "contacted",
        "consultation_scheduled",
        "consultation_completed",
        "pending_decision",
        "treatment_accepted",
        "treatment_started",
        "lost",
    }
    board = page(client, "/console/board")
    for lead in leads:
        if lead["pipeline_stage"] not in ("treatment_started", "lost"):
            assert lead["first_name"] in board, lead["first_name"]

    today = page(client, "/console/today")
    assert "Replies waiting" in today and "Tuesday after school would work" in today
    # Consultations today and this week, on the lead pages.
    booked = [lead for lead in leads if lead["pipeline_stage"] == "consultation_scheduled"]
    visits = page(client, f"/console/leads/{booked[0]['id']}")
    assert "Dr. Avery Example" in visits or "Dr. Blake Sample" in visits
    # The inbox holds the families' texts, emails and WhatsApp messages; a thread reads both ways.
    inbox = page(client, "/console/inbox")
    assert "Tuesday after school would work" in inbox or "insurance cover" in inbox
    assert "Could my son come on a Saturday?" in inbox  # a family's WhatsApp message, in the same inbox
    assert demo.INSTAGRAM_DM in inbox  # and a new family's first DM on Instagram, which made their lead
    threads = {
        lead["id"]: page(client, f"/console/inbox/leads/{lead['id']}")
        for lead in leads
        if lead["first_name"] in inbox
    }
    texted = next(
        lead
        for lead in leads
        if any(
            words in threads.get(lead["id"], "")
            for words in ("Thanks for writing to Demo", "what a first visit")
        )
    )
    # Calls logged with outcomes on the timeline.
    lead_page = page(client, f"/console/leads/{texted['id']}")
    assert re.search(r"[Ss]poke", lead_page), "the logged call's outcome"
    # The demo's admin opens on the clinic's day, as a clinic at work does, not on setup.
    admin = console_as(app, seeded, "clinic_admin")
    assert "/console/settings" not in admin.get("/console/").headers["Location"]
    # Reports count the week: leads captured, one converted.
    reports = page(admin, "/console/reports")
    funnel = app.test_client().get("/api/leads/analytics/funnel", headers=headers)
    assert funnel.status_code == 200, funnel.get_json()
    reached = {row["stage"]: row["reached"] for row in funnel.get_json()["rows"]}
    assert reached["new_lead"] == len(leads) and reached["treatment_started"] == 1
    assert f"New Lead {len(leads)}" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", reports))
    # A demo lead's booking link offers free times (the demo has providers, types and hours).
    fresh = next(lead for lead in leads if lead["pipeline_stage"] == "new_lead")
    settings = app.config["SETTINGS"]
    url = booking_link.booking_url(settings, seeded["clinic_id"], fresh["id"], clock.now())
    path = url.split("://", 1)[1].split("/", 1)[1]
    html = page(app.test_client(), f"/{path}")
    assert "Online booking is not open yet" not in html
    assert 'name="starts_at"' in html and "New patient consultation" in html, "no free time offered"


def test_seeding_twice_changes_nothing_and_reset_starts_again(app, seeded, tmp_path):
    headers = api_as(app, seeded, "clinic_admin")
    before = app.test_client().get("/api/leads?page_size=100", headers=headers).get_json()
    with app.app_context():
        again = demo.seed(now=clock.now(), var_dir=tmp_path)
    assert again == seeded
    after = app.test_client().get("/api/leads?page_size=100", headers=headers).get_json()
    assert after == before

    with app.app_context():
        fresh = demo.reset(now=clock.now(), var_dir=tmp_path)
    assert fresh["clinic_id"] != seeded["clinic_id"]
    old = next(user for user in seeded["users"] if user["role"] == "clinic_admin")
    refused = app.test_client().post(
        "/api/auth/login", json={"email": old["email"], "password": old["password"]}
    )
    assert refused.status_code == 401, refused.get_json()  # the retired demo's logins are off
    new_headers = api_as(app, fresh, "clinic_admin")
    anew = app.test_client().get("/api/leads?page_size=100", headers=new_headers).get_json()
    assert len(anew) == len(before) and {lead["id"] for lead in anew}.isdisjoint(
        lead["id"] for lead in before
    )
    # Same seed, same week: the same families, in the same stages.
    assert sorted((x["first_name"], x["last_name"], x["pipeline_stage"]) for x in anew) == sorted(
        (x["first_name"], x["last_name"], x["pipeline_stage"]) for x in before
    )


def test_demo_reset_is_refused_on_a_database_that_is_not_the_embedded_one_without_yes():
    done = CliRunner().invoke(
        followup, ["demo", "reset"], env={"DATABASE_URL": "postgresql://someone@db.example.com/clinics"}
    )
    assert done.exit_code == 2 and "--yes" in done.output, done.output
