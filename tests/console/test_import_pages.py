"""The web app's import from a spreadsheet (/console/import), through Flask's test client: upload,
columns guessed (and the clinic's choice remembered), preview with duplicates and refusals, the
import as a bulk job, the refused rows as a CSV; a bad file is a 422 saying why, storing nothing."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead
from tests.leads.test_import import finished
from tests.leads.test_spreadsheet_import import german_csv


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _upload(console, body: bytes, name: str = "Patienten.csv"):
    token = csrf_of(console.get("/console/import").get_data(as_text=True))
    return console.post(
        "/console/import",
        data={"csrf_token": token, "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


def _chosen(html: str) -> dict[str, str]:
    """Each column select's selected option, by the column's heading."""
    found = {}
    for heading, options in re.findall(r"Column “([^”]*)”\s*<select[^>]*>(.*?)</select>", html, re.S):
        found[heading] = re.search(r'<option value="([^"]*)" selected>', options).group(1)
    return found


def _form(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
    return fields | _chosen_fields(html)


def _chosen_fields(html: str) -> dict[str, str]:
    return {
        name: (re.search(r'<option value="([^"]*)" selected>', options) or [None, ""])[1]
        for name, options in re.findall(
            r'<select id="[^"]+" name="(column-\d+)"[^>]*>(.*?)</select>', html, re.S
        )
    }


def test_a_clinics_excel_csv_is_mapped_previewed_imported_and_its_refusals_downloaded(
    console, client, tenant, celery_worker
):
    create_lead(client, tenant, first_name="Eva", last_name="Alt", phone="(415) 555-0115")  # row 15's phone
    log_in(console, tenant, role="treatment_coordinator")
    columns_page = _upload(console, german_csv())
    html = columns_page.get_data(as_text=True)
    assert columns_page.status_code == 200, html
    assert _chosen(html) == {
        "Vorname": "first_name", "Nachname": "last_name", "Telefon": "phone", "E-Mail": "email",
        "Behandlung": "treatment_interest",
    }  # fmt: skip
    assert "First name" in html and "first_name</option>" not in html  # people's words on screen
    form = _form(html) | {"column-4": "notes"}  # Behandlung holds free text: the notes

    preview = console.post("/console/import/preview", data=form)
    shown = preview.get_data(as_text=True)
    assert preview.status_code == 200, shown
    assert "20 rows. 17 ready, 2 possible duplicates, 1 would be refused" in shown
    assert "the same phone as row 2" in shown and "may be open lead" in shown
    assert re.search(r"<td>12</td><td>Müller-12</td><td>Refused</td><td>First name</td>", shown)

    started = console.post("/console/import/start", data=_form(shown))
    assert started.status_code == 303, started.get_data(as_text=True)
    bulk_id = int(started.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    job = finished(client, tenant, bulk_id)
    assert job["outcomes"] == {"created": 19, "duplicate": 0, "invalid": 1}
    page = console.get(f"/console/import/{bulk_id}").get_data(as_text=True)
    assert 'data-status="done"' in page and "Download the refused rows" in page

    report = console.get(f"/console/import/{bulk_id}/refused.csv")
    assert report.status_code == 200 and report.mimetype == "text/csv"
    assert list(csv.reader(io.StringIO(report.get_data(as_text=True)))) == [
        ["Row", "Outcome", "Column", "Reason"],
        ["12", "Refused", "First name", "Missing data for required field."],
    ]
    # The next file with these headers opens with the clinic's choice: Behandlung is the notes.
    assert _chosen(_upload(console, german_csv(2)).get_data(as_text=True))["Behandlung"] == "notes"


def test_a_bad_file_is_refused_on_the_page_saying_why_and_nothing_is_stored(console, client, tenant):
    log_in(console, tenant, role="front_desk")
    for body, said in (
        (b"", "the file is empty"),
        (bytes(range(256)) * 10, "not a spreadsheet"),
        (b"Anna;Meier;(415) 555-0101\r\n", "the first line must name the columns"),
    ):
        resp = _upload(console, body)
        assert resp.status_code == 422 and said in resp.get_data(as_text=True), said
    tampered = console.post(
        "/console/import/start",
        data={"csrf_token": csrf_of(console.get("/console/import").get_data(as_text=True)), "draft": "x"},
    )
    assert tampered.status_code == 422 and "upload it again" in tampered.get_data(as_text=True)
    assert client.get("/api/bulk-jobs", headers=tenant.headers()).get_json() == []


def test_only_who_may_create_leads_imports_and_another_clinics_import_is_a_404(
    console, client, tenant, make_tenant, celery_worker
):
    log_in(console, tenant, role="doctor")
    assert console.get("/console/import").status_code == 403
    theirs = client.post(
        "/api/leads/import", data=german_csv(2), content_type="text/csv", headers=make_tenant().headers()
    ).get_json()["id"]
    log_in(console, tenant, role="clinic_admin")
    assert console.get(f"/console/import/{theirs}").status_code == 404
    assert console.get(f"/console/import/{theirs}/refused.csv").status_code == 404
