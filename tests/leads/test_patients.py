"""A lead's patients (issue 76 item 3): a parent enquires for one or more children. The API reads and
writes them as `patients` (the first is the lead's own patient_* fields, the others further rows);
an age becomes a year of birth; a bad entry is a 422 naming the entry's field; they are PHI (front
desk neither sees nor finds them); search finds the family by any patient's name; another clinic's
lead is a 404."""

from __future__ import annotations

from app.platform import clock
from tests.leadkit import create_lead, get_lead

DIEGO = {"first_name": "Diego", "age": 12, "relationship": "CHILD"}
SOFIA = {"first_name": "Sofia", "last_name": "Lopez", "birth_year": 2016, "relationship": "CHILD"}


def _maria(client, tenant, **fields):
    fields = {"first_name": "Maria", "last_name": "Lopez", "phone": "(415) 555-0188", **fields}
    return create_lead(client, tenant, role="treatment_coordinator", **fields)


def _year() -> int:
    return clock.now().year  # the tenant's clinic is in a US timezone: the same year but at New Year


def test_a_lead_is_created_with_two_patients_and_reads_them_back(client, tenant):
    made = _maria(client, tenant, patients=[DIEGO, SOFIA])
    diego = {"first_name": "Diego", "last_name": None, "birth_year": _year() - 12, "relationship": "CHILD"}
    sofia = {"first_name": "Sofia", "last_name": "Lopez", "birth_year": 2016, "relationship": "CHILD"}
    assert made["patients"] == [diego, sofia]
    # The first patient is the lead's own: what duplicates, rules and the export read.
    assert (made["patient_first_name"], made["patient_relationship"]) == ("Diego", "CHILD")
    assert made["patient_birth_year"] == _year() - 12
    read = get_lead(client, tenant, made["id"], role="treatment_coordinator").get_json()
    assert read["patients"] == [diego, sofia]


def test_a_patient_who_is_the_contact_takes_the_contacts_name(client, tenant):
    made = _maria(client, tenant, patients=[{"relationship": "SELF", "birth_year": 1988}])
    assert made["patients"] == [
        {"first_name": "Maria", "last_name": "Lopez", "birth_year": 1988, "relationship": "SELF"}
    ]


def test_changing_the_patients_replaces_the_list_and_keeps_the_etag_honest(client, tenant):
    made = _maria(client, tenant, patients=[DIEGO, SOFIA])
    read = get_lead(client, tenant, made["id"], role="treatment_coordinator")
    headers = {**tenant.headers("treatment_coordinator"), "If-Match": read.headers["ETag"]}
    changed = client.put(
        f"/api/leads/{made['id']}", json={"patients": [{**DIEGO, "age": None, "birth_year": 2014}]},
        headers=headers,
    )  # fmt: skip
    assert changed.status_code == 200, changed.get_json()
    assert [p["first_name"] for p in changed.get_json()["patients"]] == ["Diego"]
    again = get_lead(client, tenant, made["id"], role="treatment_coordinator")
    assert again.get_json()["patients"] == [
        {"first_name": "Diego", "last_name": None, "birth_year": 2014, "relationship": "CHILD"}
    ]
    assert again.headers["ETag"] == changed.headers["ETag"]
    stale = client.put(f"/api/leads/{made['id']}", json={"patients": [SOFIA]}, headers=headers)
    assert stale.status_code == 412


def test_a_bad_patient_is_a_422_naming_the_entry_and_its_field(client, tenant):
    def refused(patients):
        answer = client.post(
            "/api/leads", json={"first_name": "Maria", "last_name": "Lopez", "patients": patients},
            headers=tenant.headers("treatment_coordinator"),
        )  # fmt: skip
        assert answer.status_code == 422, answer.get_json()
        return answer.get_json()["errors"]["json"]["patients"]

    assert "first_name" in refused([DIEGO, {"relationship": "CHILD", "age": 9}])["1"]
    assert "relationship" in refused([{**DIEGO, "relationship": "COUSIN"}])["0"]
    assert "birth_year" in refused([{"first_name": "Ana", "birth_year": _year() + 1}])["0"]
    assert "birth_year" in refused([{"first_name": "Ana", "birth_year": 1850}])["0"]
    assert "age" in refused([{"first_name": "Ana", "age": 200}])["0"]
    assert "age" in refused([{"first_name": "Ana", "age": 3, "birth_year": 2020}])["0"]


def test_patients_are_phi_front_desk_neither_sees_nor_finds_them(client, tenant):
    made = _maria(client, tenant, patients=[DIEGO, SOFIA])
    as_desk = get_lead(client, tenant, made["id"], role="front_desk").get_json()
    assert "patients" not in as_desk and "patient_birth_year" not in as_desk
    desk = client.get("/api/leads/search?q=sofia", headers=tenant.headers("front_desk"))
    assert desk.get_json() == []


def test_search_finds_the_family_by_any_patients_name(client, tenant):
    made = _maria(client, tenant, patients=[DIEGO, SOFIA])
    _maria(client, tenant, phone="(415) 555-0999", email="other@example.com")
    headers = tenant.headers("treatment_coordinator")
    for q in ("sofia", "diego"):
        found = client.get(f"/api/leads/search?q={q}", headers=headers).get_json()
        assert [lead["id"] for lead in found] == [made["id"]]
        assert [p["first_name"] for p in found[0]["patients"]] == ["Diego", "Sofia"]
    listed = client.get("/api/leads?q=sofia", headers=headers).get_json()
    assert [lead["id"] for lead in listed] == [made["id"]]


def test_another_clinics_lead_and_its_patients_are_not_found(client, tenant, make_tenant):
    made = _maria(client, tenant, patients=[DIEGO, SOFIA])
    other = make_tenant()
    headers = other.headers("treatment_coordinator")
    assert client.get(f"/api/leads/{made['id']}", headers=headers).status_code == 404
    changed = client.put(f"/api/leads/{made['id']}", json={"patients": [SOFIA]}, headers=headers)
    assert changed.status_code == 404
    assert client.get("/api/leads/search?q=sofia", headers=headers).get_json() == []
