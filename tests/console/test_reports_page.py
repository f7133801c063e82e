"""The Reports page through Flask's test client: who may open it, each chart's numbers in its table,
the CSV links (the same rows as the API's CSV), the date range in the URL in the clinic's days."""

from __future__ import annotations

import csv
import html as html_lib
import io
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.leads.models import LeadSource
from app.platform import clock
from tests.analytics.test_follow_up_response import dataset  # noqa: F401 (the report's data set)
from tests.console.test_console_pages import log_in
from tests.sequences.figureskit import seed_follow_up_figures

JANUARY = {"from": "2026-01-01", "to": "2026-01-30"}


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _table(html: str, table_id: str) -> list[list[str]]:
    """The body rows of a table, as the text of their cells."""
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [
            html_lib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def source_name(app, tenant) -> str:
    """The name of the source the data set's leads came from (the clinic's first)."""
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalars(
            sa.select(LeadSource.name)
            .where(LeadSource.clinic_id == tenant.id)
            .order_by(LeadSource.id)
            .limit(1)
        ).one()


def test_an_anonymous_visitor_is_sent_to_log_in(console):
    for path in ("/console/reports", "/console/reports/funnel.csv"):
        resp = console.get(path)
        assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]


@pytest.mark.parametrize("role", ["front_desk", "treatment_coordinator"])
def test_roles_without_analytics_are_refused(console, tenant, role):
    log_in(console, tenant, role=role)
    assert console.get("/console/reports").status_code == 403
    assert console.get("/console/reports/follow-up-response.csv").status_code == 403
    assert 'href="/console/reports"' not in console.get("/console/").get_data(as_text=True)


def test_the_page_shows_each_reports_numbers_and_its_csv(app, console, tenant, dataset):  # noqa: F811
    log_in(console, tenant, role="doctor")
    resp = console.get("/console/reports", query_string=JANUARY)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'href="/console/reports"' in html  # the nav's link
    for section in ("funnel", "sources", "speed", "show-rate", "follow-up"):
        assert f'<section id="{section}"' in html
    assert html.count('<svg class="chart" role="img" aria-label=') == 6
    channels = _table(html, "follow-up-channels")
    assert channels == [
        ["Text", "1", "1", "100.0%", "2.0", "1", "1", "30.0"],  # channels by name (wording.CHANNELS)
        ["Email", "1", "0", "0.0%", "—", "0", "0", "—"],
        ["WhatsApp", "1", "1", "100.0%", "6.0", "1", "0", "—"],
        ["Instagram", "1", "0", "0.0%", "—", "1", "1", "10.0"],
    ]
    assert _table(html, "follow-up-sequences") == [
        ["Welcome", "3", "2", "66.7%", "4.0"],
        ["no sequence", "1", "0", "0.0%", "—"],
    ]
    funnel = _table(html, "funnel-table")
    assert funnel[0][:2] == ["New Lead", "3"]  # the data set's three leads, captured on 2 January
    assert [row[:3] for row in _table(html, "sources-table") if row[1] != "0"] == [
        [source_name(app, tenant), "3", "0"]
    ]
    link = html_lib.unescape(re.search(r'href="([^"]*follow-up-response\.csv[^"]*)"', html).group(1))
    assert "from=2026-01-01" in link and "to=2026-01-30" in link
    download = console.get(link)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [(r["name"], r["messages"], r["replied"]) for r in rows] == [
        ("sms", "1", "1"),
        ("email", "1", "0"),
        ("whatsapp", "1", "1"),
        ("instagram", "1", "0"),
        ("Welcome", "3", "2"),
        ("no sequence", "1", "0"),
    ]


def test_the_range_is_the_clinics_local_days(app, console, tenant, dataset):  # noqa: F811
    """The data set's Instagram message went at 00:00 UTC on 9 January: in New York that is still
    the 8th, so a range ending on the 8th (local) counts it and one starting on the 9th does not."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        session.get(Clinic, tenant.id).timezone = "America/New_York"
    log_in(console, tenant, role="doctor")
    up_to_8th = console.get("/console/reports", query_string={"from": "2026-01-08", "to": "2026-01-08"})
    from_9th = console.get("/console/reports", query_string={"from": "2026-01-09", "to": "2026-01-30"})
    assert _table(up_to_8th.get_data(as_text=True), "follow-up-channels")[3][:2] == ["Instagram", "1"]
    assert _table(from_9th.get_data(as_text=True), "follow-up-channels")[3][:2] == ["Instagram", "0"]


def test_the_default_range_is_the_last_30_days(console, tenant):
    log_in(console, tenant, role="clinic_admin")
    html = console.get("/console/reports").get_data(as_text=True)
    today = clock.now().astimezone(UTC).date()
    assert 'name="to" type="date" value="' in html
    last = re.search(r'name="to" type="date" value="([0-9-]+)"', html).group(1)
    first = re.search(r'name="from" type="date" value="([0-9-]+)"', html).group(1)
    days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days
    assert days == 29 and abs((datetime.fromisoformat(last).date() - today).days) <= 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
        ({"to": "tomorrow"}, "to"),
        ({"from": "2026-13-01"}, "from"),
    ],
)
def test_a_bad_range_is_422_naming_the_field(console, tenant, params, field):
    log_in(console, tenant, role="doctor")
    for path in ("/console/reports", "/console/reports/funnel.csv"):
        resp = console.get(path, query_string=params)
        assert resp.status_code == 422 and field in resp.get_data(as_text=True)


def test_an_unknown_report_has_no_csv(console, tenant):
    log_in(console, tenant, role="doctor")
    assert console.get("/console/reports/users.csv").status_code == 404


def test_the_follow_ups_section_shows_the_seeded_figures(app, console, tenant):
    seed_follow_up_figures(app.extensions["followup.db"], tenant.id, clock.now())
    log_in(console, tenant, role="doctor")
    html = console.get("/console/reports").get_data(as_text=True)  # the last 30 days, today's included
    assert '<section id="follow-ups"' in html and 'href="#follow-ups"' in html
    assert "Follow-ups sent today: 5." in html
    assert "Response rate 46.2%: 6 of 13 follow-ups sent in the range were answered within 72 hours." in html
    assert _table(html, "follow-ups-conversion") == [
        ["Nurture", "6", "2", "33.3%"],
        ["Revive", "1", "0", "0.0%"],
    ]
    assert _table(html, "follow-ups-top") == [
        ["Step 1 of Nurture", "6", "3", "50.0%"],
        ["Step 2 of Nurture", "5", "1", "20.0%"],
    ]
    assert _table(html, "follow-ups-steps") == [["Step 2 of Nurture", "4"], ["Step 1 of Revive", "1"]]


def test_the_follow_ups_section_says_when_there_is_nothing_yet(console, tenant):
    log_in(console, tenant, role="doctor")
    html = console.get("/console/reports").get_data(as_text=True)
    assert "Follow-ups sent today: 0." in html
    assert _table(html, "follow-ups-steps") == [["No lead is in a sequence now."]]
