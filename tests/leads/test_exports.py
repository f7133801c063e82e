"""CSV exports of leads and tasks over the API: filters, PHI columns by role, audit, formulas, tenancy."""

import csv
import io

from tests.leadkit import create_lead
from tests.tasks.taskkit import lead_for
from tests.tasks.test_tasks_api import new_task


def export(client, tenant, path, query="", role="clinic_admin", expect=200):
    resp = client.get(f"/api/{path}/export{query}", headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_data(as_text=True)[:500]
    return resp


def table(resp) -> list[dict]:
    assert resp.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def audits(client, tenant, action):
    return client.get(f"/api/audit-events?action={action}", headers=tenant.headers()).get_json()


def test_lead_export_follows_the_list_filters_and_phi_follows_the_role(client, tenant):
    kept = create_lead(
        client, tenant, first_name="Ann", last_name="Lee", patient_first_name="Mia", insurance_carrier="Delta"
    )
    create_lead(client, tenant, first_name="Bob", last_name="Roe")
    rows = table(export(client, tenant, "leads", "?q=Lee"))
    assert [row["id"] for row in rows] == [str(kept["id"])]
    assert rows[0]["patient_first_name"] == "Mia" and rows[0]["insurance_carrier"] == "Delta"
    assert len(table(export(client, tenant, "leads"))) == 2

    desk = table(export(client, tenant, "leads", "?q=Lee", role="front_desk"))
    assert desk[0]["first_name"] == "Ann"
    assert not {"patient_first_name", "insurance_carrier", "notes"} & set(desk[0])
    exports = audits(client, tenant, "lead.export")
    assert len(exports) == 3
    assert {e["after"]["phi"] for e in exports} == {True, False}
    assert any(e["after"]["filters"] == {"q": "Lee"} for e in exports)


def test_a_formula_in_a_name_is_neutralised(client, tenant):
    create_lead(client, tenant, first_name="=HYPERLINK(1)", last_name="Doe")
    [row] = table(export(client, tenant, "leads"))
    assert row["first_name"] == "'=HYPERLINK(1)"


def test_task_export_follows_the_team_filters(client, tenant):
    lead = lead_for(client, tenant)
    email = new_task(client, tenant, lead["id"], type="EMAIL", description="asked about cost")
    new_task(client, tenant, lead["id"], type="CALL")
    rows = table(export(client, tenant, "leads/tasks", "?type=EMAIL"))
    assert [(row["id"], row["type"], row["description"]) for row in rows] == [
        (str(email["id"]), "EMAIL", "asked about cost")
    ]
    desk = table(export(client, tenant, "leads/tasks", "?type=EMAIL", role="front_desk"))
    assert "description" not in desk[0]
    assert len(audits(client, tenant, "task.export")) == 2


def test_exports_hold_no_other_clinics_rows_and_refuse_bad_filters(client, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    create_lead(client, other, first_name="Theirs")
    new_task(client, other, lead_for(client, other)["id"], role="clinic_admin")
    assert table(export(client, tenant, "leads")) == []
    assert table(export(client, tenant, "leads/tasks")) == []
    bad_status = export(client, tenant, "leads", "?status=NOPE", expect=422).get_json()
    assert "status" in bad_status["errors"]["query"]
    bad_sort = export(client, tenant, "leads/tasks", "?sort=x", expect=422).get_json()
    assert "sort" in bad_sort["errors"]["query"]
    assert client.get("/api/leads/export").status_code == 401
