"""The consultation reports over a planted month: the show rate is the planted rate (overall and
summed over every breakdown), treatment acceptance and no-show recovery likewise; on the console's
analytics page too."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.platform import clock
from tests.console.test_console_pages import log_in
from tests.consultations.kit import act, book
from tests.leadkit import create_lead

ATTENDED, MISSED, CANCELLED, CONVERTED, REBOOKED = 12, 4, 3, 3, 1


def plant_a_month(client, tenant) -> None:
    """ATTENDED attended and MISSED missed consultations over the last 28 days (one a day), CANCELLED
    cancelled ones (never due); CONVERTED of the attended families accepted treatment; REBOOKED of
    the missed ones booked again."""
    now = clock.now()
    outcomes = ["check-in"] * ATTENDED + ["no-show"] * MISSED + ["cancel"] * CANCELLED
    for day, outcome in enumerate(outcomes):
        lead = create_lead(client, tenant, phone=f"(415) 555-{1000 + day}")
        booked = book(client, tenant, lead["id"], now - timedelta(days=day + 1, hours=1))
        act(client, tenant, booked["id"], outcome)
        if outcome == "check-in" and day < CONVERTED:
            converted = client.post(f"/api/leads/{lead['id']}/convert", json={}, headers=tenant.headers())
            assert converted.status_code == 200, converted.get_json()
        if outcome == "no-show" and day < ATTENDED + REBOOKED:
            book(client, tenant, lead["id"], now + timedelta(days=2))
    # Still ahead, or not yet past its no-show check: no outcome, not counted.
    book(client, tenant, create_lead(client, tenant)["id"], now + timedelta(days=1))


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def test_the_show_rate_of_a_planted_month_is_the_planted_rate(client, tenant):
    plant_a_month(client, tenant)
    start = (clock.now() - timedelta(days=30)).isoformat()
    resp = client.get(
        "/api/leads/analytics/consultations", query_string={"from": start}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    report = resp.get_json()
    due = ATTENDED + MISSED
    assert (report["due"], report["attended"], report["no_show"]) == (due, ATTENDED, MISSED)
    assert report["show_rate"] == round(ATTENDED / due, 4)
    for group, rows in report["by"].items():  # every breakdown adds up to the whole
        assert sum(r["due"] for r in rows) == due and sum(r["attended"] for r in rows) == ATTENDED, group
    assert report["by"]["reminded"] == [
        {"key": "not reminded", "due": due, "attended": ATTENDED, "no_show": MISSED, "show_rate": 0.75}
    ]
    assert report["treatment_acceptance"] == {
        "attended_leads": ATTENDED,
        "accepted": CONVERTED,
        "rate": round(CONVERTED / ATTENDED, 4),
    }
    assert report["no_show_recovery"] == {
        "no_shows": MISSED,
        "rebooked_within_14_days": REBOOKED,
        "rate": 0.25,
    }
    csv = client.get(
        "/api/leads/analytics/consultations",
        query_string={"from": start},
        headers={**tenant.headers(), "Accept": "text/csv"},
    )
    assert csv.status_code == 200 and "show_rate" in csv.get_data(as_text=True)
    refused = client.get("/api/leads/analytics/consultations", headers=tenant.headers("front_desk"))
    assert refused.status_code == 403


def test_the_console_analytics_page_shows_the_consultation_figures(app, console, client, tenant):
    plant_a_month(client, tenant)
    log_in(console, tenant)
    html = console.get("/console/analytics").get_data(as_text=True)
    part = html.split('<section id="consultations">')[1].split("</section>")[0]
    assert "<svg" in part and "<table>" in part
    assert "Show rate 0.75 (12 of 16 attended, 4 missed)" in " ".join(part.split())
