"""The import takes the spreadsheet a clinic has (issue 77 item 3), through the API and the web app:
Excel's CSV export (Windows-1252, `;`) with the clinic's own headers, an XLSX workbook, a mapping
that names columns; and what is not a spreadsheet is a 4xx naming the problem, with nothing stored."""

from __future__ import annotations

import io

import openpyxl

from tests.leads.test_import import finished, report

GERMAN_HEADER = "Vorname;Nachname;Telefon;E-Mail;Behandlung"


def german_csv(count: int = 20) -> bytes:
    """Excel's CSV of a German clinic: cp1252, `;`, umlauts; row 7 repeats row 2's phone (a duplicate)
    and row 12 has no first name (refused)."""
    lines = [GERMAN_HEADER]
    for n in range(1, count + 1):
        first = "" if n == 12 else ("Jürgen", "Käthe", "Björn", "Grete")[n % 4]
        phone = "(415) 555-0102" if n == 7 else f"(415) 555-01{n:02d}"
        lines.append(f"{first};Müller-{n};{phone};patient{n}@example.com;Zahnspange, ästhetisch")
    return "\r\n".join(lines).encode("cp1252")


def xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def leads_named(client, tenant, last_name: str) -> list[dict]:
    found = client.get(f"/api/leads?q={last_name}", headers=tenant.headers()).get_json()
    return found["data"] if isinstance(found, dict) else found


def test_an_xlsx_workbook_imports_through_the_api(client, tenant, celery_worker):
    workbook = xlsx(
        [["First Name", "Last Name", "Mobile", "E-mail"], ["Zoë", "Ångström", 4155550199, "zoe@example.com"]]
    )
    resp = client.post(
        "/api/leads/import",
        data={"file": (io.BytesIO(workbook), "leads.xlsx")},
        content_type="multipart/form-data",
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 202, resp.get_json()
    job = finished(client, tenant, resp.get_json()["id"])
    assert job["outcomes"]["created"] == 1, report(client, tenant, job["id"])
    lead_id = report(client, tenant, job["id"])[0]["lead_id"]
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert (lead["first_name"], lead["last_name"], lead["email"]) == ("Zoë", "Ångström", "zoe@example.com")
    assert lead["phone"].endswith("4155550199")


def test_excels_german_csv_imports_through_the_api_with_a_mapping(client, tenant, celery_worker):
    resp = client.post(
        '/api/leads/import?mapping={"Behandlung": "notes"}',
        data=german_csv(),
        content_type="text/csv",
        headers=tenant.headers(),
    )
    assert resp.status_code == 202, resp.get_json()
    job = finished(client, tenant, resp.get_json()["id"])
    rows = report(client, tenant, job["id"])
    assert [(r["row"], r["field"]) for r in rows if r["outcome"] == "invalid"] == [(12, "first_name")]
    assert job["outcomes"]["created"] == 19
    lead = client.get(f"/api/leads/{rows[0]['lead_id']}", headers=tenant.headers()).get_json()
    assert (lead["first_name"], lead["last_name"], lead["notes"]) == (
        "Käthe",
        "Müller-1",
        "Zahnspange, ästhetisch",
    )


def test_what_is_not_a_spreadsheet_is_a_4xx_naming_the_problem_and_stores_nothing(client, tenant):
    cases = [
        (b"", 422, "the file is empty"),
        (bytes(range(256)) * 40, 422, "not a spreadsheet"),
        (
            b"Anna;Meier;(415) 555-0101\r\nBen;Ode;(415) 555-0102\r\n",
            422,
            "the first line must name the columns",
        ),
        (b"PK\x03\x04 not really a workbook", 422, "not a readable Excel workbook"),
        (b"Vorname;Nachname\r\n" + b"x" * (50 * 1024 * 1024), 413, "larger than"),
    ]
    for body, status, said in cases:
        resp = client.post(
            "/api/leads/import",
            data={"file": (io.BytesIO(body), "leads.csv")},
            content_type="multipart/form-data",
            headers=tenant.headers(),
        )
        assert resp.status_code == status, (said, resp.get_json())
        assert said in str(resp.get_json()), resp.get_json()
    bad_mapping = client.post(
        '/api/leads/import?mapping={"Vorname": "nickname"}', data=german_csv(2), content_type="text/csv",
        headers=tenant.headers(),
    )  # fmt: skip
    assert bad_mapping.status_code == 422 and "mapping" in bad_mapping.get_json()["errors"]["json"]
    jobs = client.get("/api/bulk-jobs", headers=tenant.headers()).get_json()
    assert (jobs["data"] if isinstance(jobs, dict) else jobs) == []
