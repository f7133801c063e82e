"""GET /api/leads/search: the search box's answer. The first matches of what is typed (a phone's
digits in any format, part of a name, an email), newest first, no total; the list's PHI policy (a
patient's name answers only a reader who may see it), the clinic's leads only, audited; 422 naming
`q` or `limit`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.platform.audit.models import AuditEvent
from tests.leadkit import create_lead


@pytest.fixture
def families(client, tenant):
    return {
        "garcia": create_lead(
            client,
            tenant,
            first_name="Maria",
            last_name="Garcia",
            phone="(415) 555-0134",
            email="maria.garcia@example.com",
            patient_first_name="Lucia",
            patient_last_name="Garcia",
            patient_relationship="CHILD",
        ),
        "nguyen": create_lead(
            client,
            tenant,
            first_name="Thanh",
            last_name="Nguyen",
            phone="212-555-0199",
            email="thanh@nguyen.example",
            patient_first_name="Kim",
            patient_last_name="Pham",
            patient_relationship="CHILD",
        ),
    }


def _search(client, tenant, query: str, role: str = "treatment_coordinator"):
    return client.get(f"/api/leads/search?{query}", headers=tenant.headers(role))


def _found(client, tenant, q: str, role: str = "treatment_coordinator") -> list[int]:
    answer = _search(client, tenant, f"q={q}", role)
    assert answer.status_code == 200, answer.get_json()
    return [lead["id"] for lead in answer.get_json()]


def test_a_phone_found_by_the_first_digits_typed_in_any_format(client, tenant, families):
    garcia = families["garcia"]["id"]
    assert _found(client, tenant, "41555") == [garcia]
    assert _found(client, tenant, "(415) 55") == [garcia]
    assert _found(client, tenant, "415-555-01") == [garcia]


def test_part_of_a_name_or_an_email_finds_the_family(client, tenant, families):
    assert _found(client, tenant, "garc") == [families["garcia"]["id"]]
    assert _found(client, tenant, "Thanh Ngu") == [families["nguyen"]["id"]]
    assert _found(client, tenant, "nguyen.exam") == [families["nguyen"]["id"]]
    assert _found(client, tenant, "nobody-here") == []


def test_the_first_matches_newest_first_and_no_total(client, tenant, families):
    newest = create_lead(client, tenant, first_name="Marta", last_name="Garcia", phone="415-555-0777")
    answer = _search(client, tenant, "q=garcia&limit=1")
    assert [lead["id"] for lead in answer.get_json()] == [newest["id"]]
    assert "X-Total-Count" not in answer.headers
    both = _found(client, tenant, "garcia")
    assert both == [newest["id"], families["garcia"]["id"]]


def test_a_patients_name_finds_the_family_only_for_a_reader_who_may_see_it(client, tenant, families):
    nguyen = families["nguyen"]["id"]
    assert _found(client, tenant, "pham", role="treatment_coordinator") == [nguyen]
    assert _found(client, tenant, "pham", role="front_desk") == []
    [shown] = _search(client, tenant, "q=thanh", "front_desk").get_json()
    assert (shown["first_name"], shown["phone"]) == ("Thanh", "+12125550199")
    assert "patient_first_name" not in shown and "patient_last_name" not in shown
    [shown] = _search(client, tenant, "q=thanh").get_json()
    assert (shown["patient_first_name"], shown["patient_last_name"]) == ("Kim", "Pham")


def test_another_clinics_lead_is_never_found(client, tenant, make_tenant, families):
    other = make_tenant("Other Orthodontics")
    theirs = create_lead(client, other, first_name="Maria", last_name="Garcia", phone="(415) 555-0135")
    assert theirs["id"] not in _found(client, tenant, "garcia")
    assert _found(client, other, "garcia") == [theirs["id"]]


def test_each_search_is_audited_with_the_leads_it_showed(app, client, tenant, families):
    _found(client, tenant, "pham", role="treatment_coordinator")
    _found(client, tenant, "thanh", role="front_desk")
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "lead.search")).all()
        seen = [(e.actor, e.after["filters"]["q"], e.after["lead_ids"], e.after["phi"]) for e in events]
    coordinator, front_desk = (f"user:{tenant.users[r].id}" for r in ("treatment_coordinator", "front_desk"))
    nguyen = families["nguyen"]["id"]
    assert sorted(seen) == sorted(
        [(coordinator, "pham", [nguyen], True), (front_desk, "thanh", [nguyen], False)]
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [("q=a", "q"), ("q=%20a%20", "q"), ("", "q"), ("q=ab&limit=21", "limit"), ("q=ab&limit=0", "limit")],
)
def test_too_little_to_search_or_too_many_asked_is_a_422_naming_the_field(client, tenant, query, field):
    answer = _search(client, tenant, query)
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]["query"]


def test_searching_needs_a_login(client, families):
    assert client.get("/api/leads/search?q=garcia").status_code == 401
