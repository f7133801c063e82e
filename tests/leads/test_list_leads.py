"""GET /api/leads: filters, text search, sorting, pagination, and the one audit event per call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.domains.leads.models import Lead
from app.platform.audit.models import AuditEvent
from tests.leadkit import add_user, create_lead, source_ids
from tests.requirements import need_postgres


@pytest.fixture
def board(app, client, tenant):
    """Five leads: two coordinators (round robin), stages moved, one lost, two sources."""
    second = add_user(app, tenant)
    sources = source_ids(client, tenant)
    walk_in, print_ad = sources["WALK_IN"], sources["PRINT_AD"]
    made = [
        create_lead(
            client, tenant, first_name="Ann", last_name="Zimmer", phone="415-555-0101", source_id=walk_in
        ),
        create_lead(
            client, tenant, first_name="Bob", last_name="Young", email="bob@young.example", source_id=walk_in
        ),
        create_lead(
            client,
            tenant,
            first_name="Cara",
            last_name="Xu",
            patient_first_name="Dylan",
            patient_last_name="Xu",
            patient_relationship="CHILD",
        ),
        create_lead(client, tenant, first_name="Dan", last_name="White", phone="212-555-0100"),
        create_lead(client, tenant, first_name="Eve", last_name="Vance", source_id=print_ad),
    ]
    h = tenant.headers("treatment_coordinator")
    assert (
        client.post(f"/api/leads/{made[0]['id']}/stage", json={"stage": "contacted"}, headers=h).status_code
        == 200
    )
    assert (
        client.post(f"/api/leads/{made[1]['id']}/stage", json={"stage": "contacted"}, headers=h).status_code
        == 200
    )
    lost = client.post(f"/api/leads/{made[4]['id']}/lost", json={"reason": "RELOCATED"}, headers=h)
    assert lost.status_code == 200
    return {
        "leads": made,
        "sources": sources,
        "coordinators": [tenant.users["treatment_coordinator"].id, second],
    }


def _names(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [lead["first_name"] for lead in resp.get_json()]


def test_default_order_is_newest_first_and_the_list_is_paginated(client, tenant, board):
    h = tenant.headers("front_desk")
    assert _names(client.get("/api/leads", headers=h)) == ["Eve", "Dan", "Cara", "Bob", "Ann"]
    resp = client.get("/api/leads?page=2&page_size=2", headers=h)
    assert _names(resp) == ["Cara", "Bob"]
    pagination = json.loads(resp.headers["X-Pagination"])
    assert pagination["total"] == 5 and pagination["total_pages"] == 3 and pagination["page"] == 2


def test_filters_by_stage_status_source_and_owner(client, tenant, board):
    h = tenant.headers("front_desk")
    assert sorted(_names(client.get("/api/leads?stage=contacted", headers=h))) == ["Ann", "Bob"]
    assert _names(client.get("/api/leads?status=LOST", headers=h)) == ["Eve"]
    assert sorted(_names(client.get("/api/leads?status=NEW", headers=h))) == ["Cara", "Dan"]
    walk_in = board["sources"]["WALK_IN"]
    assert sorted(_names(client.get(f"/api/leads?source={walk_in}", headers=h))) == ["Ann", "Bob"]
    first, second = board["coordinators"]
    mine = _names(client.get(f"/api/leads?assigned_to={first}", headers=h))
    theirs = _names(client.get(f"/api/leads?assigned_to={second}", headers=h))
    assert sorted(mine + theirs) == ["Ann", "Bob", "Cara", "Dan", "Eve"]
    assert mine and theirs
    combined = _names(client.get(f"/api/leads?assigned_to={first}&stage=contacted", headers=h))
    assert set(combined) == set(mine) & {"Ann", "Bob"}
    as_me = _names(client.get("/api/leads?assigned_to=me", headers=tenant.headers("treatment_coordinator")))
    assert as_me == mine
    assert _names(client.get("/api/leads?assigned_to=none", headers=h)) == []


def test_text_search_over_names_email_phone_digits_and_patient_names_for_phi_readers(client, tenant, board):
    h = tenant.headers("front_desk")
    assert _names(client.get("/api/leads?q=zimm", headers=h)) == ["Ann"]
    # A patient's name is PHI: it answers a search only for a reader who may see it.
    assert _names(client.get("/api/leads?q=dylan", headers=h)) == []
    coordinator = tenant.headers("treatment_coordinator")
    assert _names(client.get("/api/leads?q=dylan", headers=coordinator)) == ["Cara"]
    assert _names(client.get("/api/leads?q=bob@young", headers=h)) == ["Bob"]
    assert _names(client.get("/api/leads?q=(212) 555", headers=h)) == ["Dan"]
    assert _names(client.get("/api/leads?q=Dan White", headers=h)) == ["Dan"]
    assert _names(client.get("/api/leads?q=a%25", headers=h)) == []  # a literal %, not a wildcard
    assert _names(client.get("/api/leads?q=_", headers=h)) == []


def test_sorting_by_a_field_and_descending(client, tenant, board):
    h = tenant.headers("front_desk")
    assert _names(client.get("/api/leads?sort=last_name", headers=h)) == ["Eve", "Dan", "Cara", "Bob", "Ann"]
    assert _names(client.get("/api/leads?sort=-last_name", headers=h)) == ["Ann", "Bob", "Cara", "Dan", "Eve"]
    assert _names(client.get("/api/leads?sort=created_at", headers=h)) == ["Ann", "Bob", "Cara", "Dan", "Eve"]
    by_update = _names(client.get("/api/leads?sort=-updated_at", headers=h))
    assert by_update[0] == "Eve"  # marked lost last


def test_created_range_by_datetime_and_by_whole_day_in_the_clinics_timezone(client, tenant, db, board):
    leads = board["leads"]
    # The clinic is in New York: Ann came at 23:30 local on March 10 (already March 11 in UTC),
    # Bob at 11:00 local on March 11.
    moments = {
        leads[0]["id"]: datetime(2024, 3, 11, 3, 30, tzinfo=UTC),
        leads[1]["id"]: datetime(2024, 3, 11, 15, 0, tzinfo=UTC),
    }
    with db.engine.begin() as conn:
        for lead_id, when in moments.items():
            value = when.replace(tzinfo=None) if db.dialect == "sqlite" else when
            conn.execute(
                sa.text("UPDATE leads SET created_at = :t WHERE id = :i"), {"t": value, "i": lead_id}
            )
    h = tenant.headers("front_desk")
    assert tenant.clinic.timezone == "America/New_York"
    assert _names(client.get("/api/leads?created_from=2024-03-10&created_to=2024-03-10", headers=h)) == [
        "Ann"
    ]
    assert _names(client.get("/api/leads?created_from=2024-03-11&created_to=2024-03-11", headers=h)) == [
        "Bob"
    ]
    assert _names(client.get("/api/leads?created_to=2024-03-11T04:00:00Z", headers=h)) == ["Ann"]
    between = "created_from=2024-03-11T04:00:00Z&created_to=2024-03-12T00:00:00"  # naive means UTC
    assert _names(client.get(f"/api/leads?{between}", headers=h)) == ["Bob"]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = _names(client.get("/api/leads", headers=h, query_string={"created_from": since}))
    assert sorted(recent) == ["Cara", "Dan", "Eve"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=favourite_colour", "sort"),
        ("sort=-password_hash", "sort"),
        ("status=MAYBE", "status"),
        ("assigned_to=someone", "assigned_to"),
        ("source=abc", "source"),
        ("created_from=yesterday", "created_from"),
        ("created_to=2024-13-45", "created_to"),
        ("page_size=1000", "page_size"),
        ("page=0", "page"),
    ],
)
def test_bad_query_parameters_are_a_422_naming_them(client, tenant, query, field):
    resp = client.get(f"/api/leads?{query}", headers=tenant.headers("front_desk"))
    assert resp.status_code == 422, resp.get_json()
    assert field in resp.get_json()["errors"]["query"]


def test_assigned_to_me_needs_a_user(client, tenant):
    key = client.post(
        "/api/api-keys", json={"name": "bi", "permissions": ["lead:read"]}, headers=tenant.headers()
    ).get_json()["key"]
    resp = client.get("/api/leads?assigned_to=me", headers={"X-API-Key": key})
    assert resp.status_code == 422 and "assigned_to" in resp.get_json()["errors"]["query"]


def test_each_list_call_writes_one_audit_event_naming_the_leads_shown(client, tenant, db, board):
    client.get("/api/leads?page_size=2", headers=tenant.headers("front_desk"))
    with db.unit_of_work() as session:
        lists = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "lead.list")).all()
    assert len(lists) == 1
    assert lists[0].actor == f"user:{tenant.users['front_desk'].id}"
    assert len(lists[0].after["lead_ids"]) == 2


def test_search_as_you_type_reads_the_trigram_index_on_postgresql(app, client, tenant, board):
    """Search over 100,000 leads must not read every lead (bench leads): on PostgreSQL the query the
    list runs for q can be answered from its trigram indexes, phone digits and names alike."""
    engine = app.extensions["followup.db"].engine
    need_postgres(str(engine.url), "pg_trgm indexes are PostgreSQL's; SQLite scans its few leads")
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "coalesce(leads.first_name" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        coordinator = tenant.headers("treatment_coordinator")
        assert _names(client.get("/api/leads?q=(212) 555-01", headers=coordinator)) == ["Dan"]
        assert _names(client.get("/api/leads?q=zimmer", headers=coordinator)) == ["Ann"]
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    assert len(statements) >= 2
    # The clinic grows to thousands of families (copies of Eve under other names), and the planner
    # learns it: then each search is answered from the trigram indexes, not by reading the clinic.
    columns = [c.name for c in Lead.__table__.columns if c.name != "id"]
    varied = {"first_name": "'Copy' || n", "last_name": "'Family' || n", "phone": "NULL", "email": "NULL"}
    varied |= {"submission_id": "NULL", "external_id": "NULL"}
    chosen = ", ".join(varied.get(name, name) for name in columns)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"INSERT INTO leads ({', '.join(columns)}) SELECT {chosen}"
                " FROM leads, generate_series(1, 30000) n WHERE leads.id = :id"
            ),
            {"id": board["leads"][4]["id"]},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # As autovacuum does on a live database: fresh statistics, and the GIN indexes' pending lists
        # merged (a long pending list makes an index scan look dearer than reading the table).
        conn.exec_driver_sql("VACUUM ANALYZE leads")
    with engine.connect() as conn:
        # The question is whether the indexes can answer the search (a plain btree path would name
        # another index): reading the whole table is left out of the planner's choices.
        conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in statements:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "ix_leads_contact_search" in plan, plan
            assert "ix_leads_patient_search" in plan, plan  # the coordinator may search patients' names
    # Emptied here at once: the suite's DELETE between tests checks every deleted lead against each
    # table that refers to it, a minute for these 30,000.
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE leads CASCADE")
