"""Bulk lead import: POST /api/leads/import (JSON or CSV) → 202, a bulk job to poll and a per-row report;
each row created once (external_id), automation on unless automation=false. Real Redis, real database,
and Celery's embedded worker (the `celery_worker` fixture, celery.contrib.pytest) running the chunks."""

from __future__ import annotations

import io

import sqlalchemy as sa

from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from tests.automation.kit import tasks_of
from tests.workers import wait_for


def start_import(
    client, tenant, body=None, *, query: str = "", role: str = "treatment_coordinator", **kwargs
):
    resp = client.post(f"/api/leads/import{query}", json=body, headers=tenant.headers(role), **kwargs)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()


def finished(client, tenant, bulk_id: int) -> dict:
    """Poll the bulk job until done, and until the leads' own jobs (events, rules) ran too."""
    url = f"/api/bulk-jobs/{bulk_id}"
    job = wait_for(
        lambda: (j := client.get(url, headers=tenant.headers()).get_json())["status"] == "done" and j,
        timeout=60,
    )
    db = tenant.app.extensions["followup.db"]
    wait_for(lambda: not _due_and_unfinished(db), timeout=60)
    return job


def _due_and_unfinished(db) -> int:
    """Jobs due by now still handed to a worker or running (a timer due later, such as an SLA
    warning, waits in the worker's queue dispatched: that is not unfinished work)."""
    with db.unit_of_work() as session:
        return session.scalar(
            sa.select(sa.func.count())
            .select_from(ScheduledJob)
            .where(
                ScheduledJob.status.not_in(("done", "cancelled", "pending")),
                ScheduledJob.due_at <= clock.now(),
            )
        )


def report(client, tenant, bulk_id: int, query: str = "") -> list[dict]:
    resp = client.get(f"/api/bulk-jobs/{bulk_id}/rows?page_size=100{query}", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


EXPO = [
    {"external_id": "expo-1", "first_name": "Ana", "last_name": "Lima", "phone": "(415) 555-0101"},
    {"external_id": "expo-2", "first_name": "Ben", "last_name": "Ode", "email": "ben@example.com"},
    {"external_id": "expo-3", "last_name": "Nofirst", "phone": "(415) 555-0103"},  # first_name missing
    {"external_id": "expo-4", "first_name": "Cy", "last_name": "Vu", "phone": "12"},  # not a phone number
    {"external_id": "expo-1", "first_name": "Ana", "last_name": "Lima", "phone": "(415) 555-0101"},  # again
    {"first_name": "Di", "last_name": "Ng", "treatment_interest": ["INVISALIGN", "FLOSSING"]},
]


def test_a_json_import_creates_each_row_once_and_reports_every_row(client, tenant, celery_worker):
    started = start_import(client, tenant, EXPO)
    assert (started["kind"], started["total"], started["status"]) == ("leads.import", 6, "pending")
    job = finished(client, tenant, started["id"])
    assert (job["done"], job["failed"]) == (3, 3)
    assert job["outcomes"] == {"created": 2, "duplicate": 1, "invalid": 3}
    rows = report(client, tenant, started["id"])
    assert [(r["row"], r["outcome"], r["external_id"], r["field"]) for r in rows] == [
        (1, "created", "expo-1", None),
        (2, "created", "expo-2", None),
        (3, "invalid", "expo-3", "first_name"),
        (4, "invalid", "expo-4", "phone"),
        (5, "duplicate", "expo-1", None),
        (6, "invalid", None, "treatment_interest"),
    ]
    assert rows[4]["lead_id"] == rows[0]["lead_id"]  # the duplicate names the lead its first row made
    assert {e["row"]: e["field"] for e in job["errors"]} == {
        3: "first_name",
        4: "phone",
        6: "treatment_interest",
    }
    invalid = report(client, tenant, started["id"], "&outcome=invalid")
    assert [r["row"] for r in invalid] == [3, 4, 6]

    ana = client.get(f"/api/leads/{rows[0]['lead_id']}", headers=tenant.headers()).get_json()
    assert (ana["first_name"], ana["phone"], ana["external_id"]) == ("Ana", "+14155550101", "expo-1")
    assert ana["pipeline_stage"] == "new_lead" and ana["assigned_to_id"] is not None  # the one capture
    # Automation is on by default: the speed-to-lead rule gave each new lead its call task.
    for row in rows[:2]:
        assert [t.title for t in tasks_of(tenant.app, row["lead_id"])] == ["Initial contact"]


def test_the_same_rows_sent_again_are_duplicates_of_the_same_leads(client, tenant, celery_worker):
    first = finished(client, tenant, start_import(client, tenant, EXPO[:2])["id"])
    made = {r["external_id"]: r["lead_id"] for r in report(client, tenant, first["id"])}
    again = finished(client, tenant, start_import(client, tenant, EXPO[:2])["id"])
    assert again["outcomes"] == {"created": 0, "duplicate": 2, "invalid": 0}
    assert {r["external_id"]: r["lead_id"] for r in report(client, tenant, again["id"])} == made
    listed = client.get("/api/leads", headers=tenant.headers()).get_json()
    assert sorted(lead["id"] for lead in listed) == sorted(made.values())


def test_a_historical_import_with_automation_off_fires_no_rule(client, tenant, celery_worker):
    job = finished(client, tenant, start_import(client, tenant, EXPO[:2], query="?automation=false")["id"])
    assert job["outcomes"]["created"] == 2
    for row in report(client, tenant, job["id"]):
        assert tasks_of(tenant.app, row["lead_id"]) == []  # no speed-to-lead task, no reminder
    # The leads' events were processed all the same (consumers other than rules still see them).
    db = tenant.app.extensions["followup.db"]
    with db.unit_of_work() as session:
        kinds = set(session.scalars(sa.select(ScheduledJob.kind).where(ScheduledJob.status == "done")))
    assert "events.process" in kinds


def test_a_csv_import_as_a_body_or_as_an_uploaded_file(client, tenant, celery_worker):
    csv_text = (
        "external_id,first_name,last_name,phone,treatment_interest,source_id\n"
        'csv-1,Eva,Ruiz,(415) 555-0111,"BRACES_METAL;INVISALIGN",\n'
        "\n"
        "csv-2,Finn,,(415) 555-0112,,\n"
        "csv-3,Gus,Ho,(415) 555-0113,,999999\n"
    )
    resp = client.post(
        "/api/leads/import", data=csv_text, content_type="text/csv", headers=tenant.headers("front_desk")
    )
    assert resp.status_code == 202, resp.get_json()
    body = finished(client, tenant, resp.get_json()["id"])
    rows = report(client, tenant, body["id"])
    assert [(r["row"], r["outcome"], r["field"]) for r in rows] == [
        (1, "created", None),
        (2, "invalid", "last_name"),
        (3, "invalid", "source_id"),  # no such lead source in this clinic
    ]
    eva = client.get(f"/api/leads/{rows[0]['lead_id']}", headers=tenant.headers()).get_json()
    assert eva["treatment_interest"] == ["BRACES_METAL", "INVISALIGN"]

    upload = client.post(
        "/api/leads/import",
        data={"file": (io.BytesIO(csv_text.encode()), "expo.csv")},
        content_type="multipart/form-data",
        headers=tenant.headers("front_desk"),
    )
    assert upload.status_code == 202, upload.get_json()
    job = finished(client, tenant, upload.get_json()["id"])
    assert job["outcomes"] == {"created": 0, "duplicate": 1, "invalid": 2}  # csv-1 was imported above


def test_what_is_not_an_import_is_a_422_naming_what_is_wrong(client, tenant):
    headers = tenant.headers()
    cases = [
        ({"json": {"first_name": "Ana"}}, "json"),  # an object, not an array
        ({"json": []}, "body"),
        ({"json": [{"first_name": "x", "last_name": "y"}] * 10_001}, "body"),
        ({"data": "first_name\nAna", "content_type": "text/plain"}, "body"),
        ({"data": "", "content_type": "text/csv"}, "file"),
        ({"data": b"\xff\xfe,,", "content_type": "text/csv"}, "file"),
        ({"data": {}, "content_type": "multipart/form-data"}, "file"),
    ]
    for kwargs, field in cases:
        resp = client.post("/api/leads/import", headers=headers, **kwargs)
        assert resp.status_code == 422, (kwargs.get("content_type"), resp.get_json())
        assert field in resp.get_json()["errors"]["json"], resp.get_json()
    bad_flag = client.post("/api/leads/import?automation=maybe", json=EXPO, headers=headers)
    assert bad_flag.status_code == 422 and "automation" in bad_flag.get_json()["errors"]["query"]


def test_only_creators_import_and_a_report_is_the_clinics_own(client, tenant, make_tenant):
    assert client.post("/api/leads/import", json=EXPO, headers=tenant.headers("doctor")).status_code == 403
    started = start_import(client, tenant, EXPO[:1])
    other = make_tenant().headers()
    assert client.get(f"/api/bulk-jobs/{started['id']}/rows", headers=other).status_code == 404
    assert client.get(f"/api/bulk-jobs/{started['id']}", headers=other).status_code == 404


def test_the_rows_wait_in_the_ledger_sealed_not_in_clear(client, tenant, db):
    start_import(client, tenant, EXPO)
    with db.unit_of_work() as session:
        payloads = session.scalars(
            sa.select(ScheduledJob.payload).where(ScheduledJob.kind == "leads.import_chunk")
        ).all()
    assert len(payloads) == 1
    text = str(payloads)
    assert "Lima" not in text and "555" not in text and "ben@example.com" not in text


def test_an_imported_row_whose_email_smtp_would_refuse_is_invalid_naming_email(client, tenant, celery_worker):
    rows = [
        {"external_id": "ok-1", "first_name": "Ana", "last_name": "Lima", "email": "ana@example.com"},
        {"external_id": "bad-1", "first_name": "Bo", "last_name": "Vu", "email": "bo@localhost"},
    ]
    job = finished(client, tenant, start_import(client, tenant, rows)["id"])
    assert job["outcomes"] == {"created": 1, "duplicate": 0, "invalid": 1}
    assert {e["row"]: e["field"] for e in job["errors"]} == {2: "email"}
