"""A lead's patients in the console (issue 76 item 3): quick entry takes the patient of a parent's
call ("Diego, 12"), the board's card reads "Maria Lopez for Diego (12)" (never "Maria Lopez for Maria
Lopez"), the lead page lists the patients with their ages and relationships in words, adds and
removes a family's further patients, and the search box finds the family by a patient's name. Patient
details are PHI: front desk sees none of them."""

from __future__ import annotations

import html as markup
import re

import pytest

from app.platform import clock
from tests.console.test_console_pages import csrf_of, log_in
from tests.leadkit import create_lead, get_lead


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def _text(answer) -> str:
    """The page's text as a person reads it: tags gone, spaces collapsed."""
    return re.sub(r"\s+", " ", markup.unescape(re.sub(r"<[^>]+>", " ", answer.get_data(as_text=True))))


def _quick_entry(console, **fields):
    page = console.get("/console/leads/new").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf_of(page), "idempotency_key": key, "first_name": "Maria", "last_name": "Lopez"}
    return console.post("/console/leads/new", data={**form, **fields})


def _etag(console, lead_id: int) -> tuple[str, str]:
    page = console.get(f"/console/leads/{lead_id}").get_data(as_text=True)
    return csrf_of(page), re.search(r'name="etag" value="([^"]+)"', page).group(1)


def test_quick_entry_takes_the_patient_and_the_card_says_whom_the_lead_is_for(client, console, tenant):
    log_in(console, tenant, "treatment_coordinator")
    form = console.get("/console/leads/new").get_data(as_text=True)
    assert "Age or year of birth" in form and ">Same as contact</option>" in form
    saved = _quick_entry(
        console, phone="(415) 555-0142", patient_relationship="CHILD", patient_first_name="Diego",
        patient_age="12",
    )  # fmt: skip
    assert saved.status_code == 303, saved.get_data(as_text=True)
    lead_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    patients = get_lead(client, tenant, lead_id).get_json()["patients"]
    assert patients == [
        {
            "first_name": "Diego",
            "last_name": None,
            "birth_year": clock.now().year - 12,
            "relationship": "CHILD",
        }
    ]
    board = _text(console.get("/console/board"))
    assert "Maria Lopez for Diego (12)" in board


def test_a_lead_whose_patient_is_the_contact_is_not_for_the_contact_again(client, console, tenant):
    create_lead(client, tenant, first_name="Maria", last_name="Lopez", phone="(415) 555-0143")
    log_in(console, tenant, "treatment_coordinator")
    board = _text(console.get("/console/board"))
    assert "Maria Lopez" in board and "Maria Lopez for" not in board


def test_quick_entry_says_a_bad_patient_beside_its_field_and_saves_nothing(client, console, tenant):
    log_in(console, tenant, "front_desk")
    refused = _quick_entry(
        console, patient_relationship="CHILD", patient_first_name="Diego", patient_age="twelve"
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert re.search(r'id="patient_age-error"[^>]*>Give an age \(12\) or a year of birth \(2014\)', page)
    assert 'value="twelve"' in page and 'value="Diego"' in page
    nameless = _quick_entry(console, patient_relationship="CHILD", patient_age="9")
    assert nameless.status_code == 422
    assert re.search(
        r'id="patient_first_name-error"[^>]*>a patient needs a first name', nameless.get_data(as_text=True)
    )
    listed = client.get("/api/leads", headers=tenant.headers("clinic_admin")).get_json()
    assert listed == []


def test_the_lead_page_lists_adds_and_removes_patients(client, console, tenant):
    made = create_lead(
        client, tenant, role="treatment_coordinator", first_name="Maria", last_name="Lopez",
        patients=[{"first_name": "Diego", "birth_year": clock.now().year - 12, "relationship": "CHILD"}],
    )  # fmt: skip
    log_in(console, tenant, "treatment_coordinator")
    page = _text(console.get(f"/console/leads/{made['id']}"))
    assert "Patients Diego (12), Child" in page
    csrf, etag = _etag(console, made["id"])
    added = console.post(
        f"/console/leads/{made['id']}/patients",
        data={"csrf_token": csrf, "etag": etag, "patient_relationship": "CHILD",
              "patient_first_name": "Sofia", "patient_last_name": "Lopez",
              "patient_age": str(clock.now().year - 10)},
    )  # fmt: skip
    assert added.status_code == 303, added.get_data(as_text=True)
    page = _text(console.get(f"/console/leads/{made['id']}"))
    assert "Diego (12), Child" in page and "Sofia Lopez (10), Child" in page
    assert "Maria Lopez for Diego (12) and Sofia Lopez (10)" in _text(console.get("/console/board"))

    csrf, etag = _etag(console, made["id"])
    nameless = console.post(
        f"/console/leads/{made['id']}/patients",
        data={"csrf_token": csrf, "etag": etag, "patient_relationship": "CHILD", "patient_age": "7"},
    )
    assert nameless.status_code == 422
    assert re.search(
        r'id="err-patient_first_name"[^>]*>a patient needs a first name', nameless.get_data(as_text=True)
    )

    removed = console.post(
        f"/console/leads/{made['id']}/patients/1/remove", data={"csrf_token": csrf, "etag": etag}
    )
    assert removed.status_code == 303
    assert [p["first_name"] for p in get_lead(client, tenant, made["id"]).get_json()["patients"]] == ["Diego"]
    gone = console.post(
        f"/console/leads/{made['id']}/patients/5/remove",
        data={"csrf_token": csrf, "etag": _etag(console, made["id"])[1]},
    )
    assert gone.status_code == 404


def test_front_desk_sees_no_patient_and_cannot_change_them(client, console, tenant):
    made = create_lead(
        client, tenant, first_name="Maria", last_name="Lopez",
        patients=[{"first_name": "Diego", "age": 12, "relationship": "CHILD"}],
    )  # fmt: skip
    log_in(console, tenant, "front_desk")
    shown = console.get(f"/console/leads/{made['id']}")
    assert "Diego" not in _text(shown) and "Add a patient" not in _text(shown)
    answer = console.post(
        f"/console/leads/{made['id']}/patients",
        data={
            "csrf_token": csrf_of(shown.get_data(as_text=True)),
            "etag": "any",
            "patient_first_name": "Sofia",
        },
    )
    assert answer.status_code == 403
    assert "Diego" not in _text(console.get("/console/board"))


def test_the_search_box_finds_the_family_by_a_patients_name(client, console, tenant):
    create_lead(
        client, tenant, first_name="Maria", last_name="Lopez",
        patients=[{"first_name": "Diego", "age": 12, "relationship": "CHILD"},
                  {"first_name": "Sofia", "age": 10, "relationship": "CHILD"}],
    )  # fmt: skip
    log_in(console, tenant, "treatment_coordinator")
    found = _text(console.get("/console/search?q=sofia"))
    assert "Maria Lopez (for Diego (12) and Sofia (10))" in found


def test_whom_a_lead_is_for_leaves_out_the_contact_and_says_the_others_with_their_ages():
    from app.console.wording import patients_for

    maria = {"first_name": "Maria", "last_name": "Lopez", "birth_year": 1988, "relationship": "SELF"}
    diego = {"first_name": "Diego", "last_name": None, "birth_year": 2014, "relationship": "CHILD"}
    sofia = {"first_name": "Sofia", "last_name": "Lopez", "birth_year": None, "relationship": "CHILD"}
    contact = ("Maria", "Lopez")
    assert patients_for([maria], 2026, contact) is None
    assert patients_for([maria, diego], 2026, contact) == "Diego (12)"
    assert patients_for([diego, sofia], 2026, contact) == "Diego (12) and Sofia Lopez"
    mia = {"first_name": "Mia", "last_name": "Diaz", "birth_year": None, "relationship": "SELF"}
    assert patients_for([mia], 2026, ("Rosa", "Doe")) == "Mia Diaz"  # named apart: said, whatever its code
