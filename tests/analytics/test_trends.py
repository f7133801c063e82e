"""Time to convert, lead velocity, source trends, revenue and ROI (issue 17 item 10), through the API.

The data set is random (seeded) leads of two clinics; every expected figure is computed here from
the planted facts in plain Python (means, medians, week and month buckets), not copied from the
code's output.
"""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from app.domains.leads.models import Lead, LeadSource
from tests.leadkit import add_user
from tests.tasks.taskkit import lead_for

START, END = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)  # 59 days
RANGE = {"from": START.isoformat(), "to": END.isoformat()}
COST = Decimal("1000.00")  # the paid source's monthly_cost
REPORTS = ("time-to-convert", "lead-velocity", "source-trends", "revenue")


def plant(app, tenant, seed: int) -> dict:
    """~120 leads captured Dec 2025 .. Apr 2026 over three sources (a paid, a free, an uncosted); about
    half converted 0.5 .. 60 days later, most with a treatment value; one converted lead deleted."""
    rng = random.Random(seed)
    db = app.extensions["followup.db"]
    c1, c2 = tenant.users["treatment_coordinator"].id, add_user(app, tenant)
    facts = []
    with db.unit_of_work() as session:
        sources = []
        for name, cost in (("Paid search", COST), ("Referrals", None), ("Flyers", Decimal("0"))):
            source = LeadSource(
                clinic_id=tenant.id, name=f"{name} {seed}", category="OTHER", monthly_cost=cost,
                created_at=START, updated_at=START,
            )  # fmt: skip
            session.add(source)
            session.flush()
            sources.append(source.id)
        for index in range(120):
            created = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 150 * 24 * 60))
            converted = created + timedelta(hours=rng.randrange(12, 60 * 24)) if rng.random() < 0.5 else None
            value = Decimal(rng.randrange(150000, 900000)) / 100 if converted and rng.random() < 0.8 else None
            fact = {
                "created": created,
                "converted": converted,
                "value": value,
                "source": rng.choice(sources),
                "coordinator": rng.choice([c1, c2]),
                "deleted": index == 0,
            }
            if index == 0:  # deleted: counts nowhere
                fact.update(converted=START + timedelta(days=3), value=Decimal("99999.00"))
            session.add(
                Lead(
                    clinic_id=tenant.id, status="CONVERTED" if fact["converted"] else "ACTIVE",
                    pipeline_stage="treatment_started" if fact["converted"] else "new_lead",
                    stage_entered_at=created, first_name="Jane", last_name="Doe", preferred_contact="PHONE",
                    patient_relationship="SELF", source_id=fact["source"], treatment_interest=[],
                    assigned_to_id=fact["coordinator"], converted_at=fact["converted"],
                    treatment_value=fact["value"], created_at=created, updated_at=created,
                    deleted_at=created if fact["deleted"] else None, created_by="test", updated_by="test",
                )
            )  # fmt: skip
            facts.append(fact)
    return {"facts": [f for f in facts if not f["deleted"]], "sources": sources, "c1": c1, "c2": c2}


@pytest.fixture
def planted(app, tenant, make_tenant):
    other = make_tenant("Other clinic")
    theirs = plant(app, other, seed=2)  # same months, another clinic: never in the tenant's figures
    return plant(app, tenant, seed=1) | {"other": other, "other_facts": theirs["facts"]}


def get(client, tenant, name, role="doctor", **params):
    resp = client.get(
        f"/api/leads/analytics/{name}", query_string={**RANGE, **params}, headers=tenant.headers(role)
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def get_csv(client, tenant, name, **params) -> list[dict]:
    resp = client.get(
        f"/api/leads/analytics/{name}",
        query_string={**RANGE, **params},
        headers={**tenant.headers("clinic_admin"), "Accept": "text/csv"},
    )
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert f'filename="{name}.csv"' in resp.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))


def converted_in(facts, start=START, end=END, source="any"):
    return [
        f
        for f in facts
        if f["converted"] and start <= f["converted"] < end and (source == "any" or f["source"] == source)
    ]


def days(fact) -> float:
    return (fact["converted"] - fact["created"]).total_seconds() / 86400


def cents(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def as_csv_cell(value) -> str:
    return "" if value is None else str(value)


def test_time_to_convert_overall_and_per_source(client, tenant, planted):
    facts = planted["facts"]
    data = get(client, tenant, "time-to-convert")
    conversions = converted_in(facts)
    assert data["conversions"] == len(conversions) > 10
    assert data["average_days"] == pytest.approx(statistics.mean(map(days, conversions)), abs=0.006)
    assert data["median_days"] == pytest.approx(statistics.median(map(days, conversions)), abs=0.006)
    by_source = {row["source_id"]: row for row in data["rows"]}
    assert set(by_source) == {f["source"] for f in conversions}
    for source, row in by_source.items():
        mine = converted_in(facts, source=source)
        assert row["conversions"] == len(mine)
        assert row["average_days"] == pytest.approx(statistics.mean(map(days, mine)), abs=0.006)
        assert row["median_days"] == pytest.approx(statistics.median(map(days, mine)), abs=0.006)
    rows = get_csv(client, tenant, "time-to-convert")
    assert [(r["source_id"], r["conversions"], r["average_days"]) for r in rows] == [
        (as_csv_cell(r["source_id"]), str(r["conversions"]), str(r["average_days"])) for r in data["rows"]
    ]


def test_time_to_convert_follows_the_range_and_the_coordinator(client, tenant, planted):
    facts = planted["facts"]
    march = datetime(2026, 3, 1, tzinfo=UTC)
    data = get(client, tenant, "time-to-convert", **{"from": march.isoformat()})
    assert data["conversions"] == len(converted_in(facts, start=march))
    mine = get(client, tenant, "time-to-convert", coordinator_id=planted["c2"])
    expected = [f for f in converted_in(facts) if f["coordinator"] == planted["c2"]]
    assert mine["conversions"] == len(expected)
    assert mine["average_days"] == pytest.approx(statistics.mean(map(days, expected)), abs=0.006)


def test_lead_velocity_per_week_against_the_previous_period(client, tenant, planted):
    facts = planted["facts"]
    length = END - START
    before = START - length
    data = get(client, tenant, "lead-velocity")
    week = timedelta(weeks=1)
    now_weeks = Counter((f["created"] - START) // week for f in facts if START <= f["created"] < END)
    then_weeks = Counter((f["created"] - before) // week for f in facts if before <= f["created"] < START)
    leads, previous = sum(now_weeks.values()), sum(then_weeks.values())
    assert (data["leads"], data["previous_leads"]) == (leads, previous)
    assert data["previous_from"] == before.isoformat() and data["previous_to"] == START.isoformat()
    assert data["weeks"] == pytest.approx(59 / 7, abs=0.0001)
    assert data["leads_per_week"] == pytest.approx(leads / (59 / 7), abs=0.006)
    assert data["previous_leads_per_week"] == pytest.approx(previous / (59 / 7), abs=0.006)
    assert data["change_pct"] == pytest.approx((leads - previous) * 100 / previous, abs=0.006)
    assert len(data["rows"]) == 9  # 8 whole weeks and 3 days
    assert [r["leads"] for r in data["rows"]] == [now_weeks[w] for w in range(9)]
    assert [r["previous_leads"] for r in data["rows"]] == [then_weeks[w] for w in range(9)]
    assert data["rows"][-1]["week_end"] == END.isoformat()
    assert data["rows"][1]["week_start"] == (START + week).isoformat()
    rows = get_csv(client, tenant, "lead-velocity")
    assert [(r["week_start"], r["leads"], r["previous_leads"]) for r in rows] == [
        (r["week_start"], str(r["leads"]), str(r["previous_leads"])) for r in data["rows"]
    ]


def test_lead_velocity_of_one_source(client, tenant, planted):
    source = planted["sources"][0]
    facts = [f for f in planted["facts"] if f["source"] == source]
    data = get(client, tenant, "lead-velocity", source_id=source)
    assert data["leads"] == sum(START <= f["created"] < END for f in facts)
    assert data["previous_leads"] == sum(START - (END - START) <= f["created"] < START for f in facts)


def test_source_trends_per_month(client, tenant, planted):
    facts = planted["facts"]
    expected: dict = defaultdict(lambda: {"leads": 0, "conversions": 0, "revenue": Decimal(0)})
    for f in facts:
        if START <= f["created"] < END:
            expected[(f["created"].strftime("%Y-%m"), f["source"])]["leads"] += 1
    for f in converted_in(facts):
        cell = expected[(f["converted"].strftime("%Y-%m"), f["source"])]
        cell["conversions"] += 1
        cell["revenue"] += f["value"] or 0
    data = get(client, tenant, "source-trends")
    got = {(r["month"], r["source_id"]): r for r in data["rows"]}
    assert set(got) == set(expected)
    assert {month for month, _ in got} == {"2026-02", "2026-03"}
    for key, cell in expected.items():
        row = got[key]
        assert (row["leads"], row["conversions"], row["revenue"]) == (
            cell["leads"], cell["conversions"], cents(cell["revenue"]),
        ), key  # fmt: skip
    rows = get_csv(client, tenant, "source-trends")
    assert [(r["month"], r["source_id"], r["leads"], r["revenue"]) for r in rows] == [
        (r["month"], as_csv_cell(r["source_id"]), str(r["leads"]), r["revenue"]) for r in data["rows"]
    ]


def test_revenue_and_roi_per_source(client, tenant, planted):
    facts = planted["facts"]
    paid, referrals, flyers = planted["sources"]
    data = get(client, tenant, "revenue")
    rows = {row["source_id"]: row for row in data["rows"]}
    spend = COST * Decimal(59) / Decimal("30.4375")  # the monthly cost over 59 days
    for source in (paid, referrals, flyers):
        mine = converted_in(facts, source=source)
        valued = [f["value"] for f in mine if f["value"] is not None]
        row = rows[source]
        assert (row["conversions"], row["conversions_with_value"]) == (len(mine), len(valued))
        assert row["revenue"] == cents(sum(valued, Decimal(0)))
        assert row["average_value"] == (cents(sum(valued) / len(valued)) if valued else None)
    paid_revenue = sum((f["value"] or 0 for f in converted_in(facts, source=paid)), Decimal(0))
    assert rows[paid]["spend"] == cents(spend)
    assert rows[paid]["roi"] == pytest.approx(float((paid_revenue - spend) / spend), abs=0.00006)
    assert (rows[referrals]["spend"], rows[referrals]["roi"]) == (None, None)  # no cost recorded
    assert (rows[flyers]["spend"], rows[flyers]["roi"]) == ("0.00", None)  # free: no ROI to divide
    total = sum((f["value"] or 0 for f in converted_in(facts)), Decimal(0))
    assert (data["conversions"], data["revenue"]) == (len(converted_in(facts)), cents(total))
    # Overall ROI over the sources with a recorded cost (paid and flyers), not the uncosted revenue.
    flyers_revenue = sum((f["value"] or 0 for f in converted_in(facts, source=flyers)), Decimal(0))
    costed = paid_revenue + flyers_revenue
    assert data["roi"] == pytest.approx(float((costed - spend) / spend), abs=0.00006)
    csv_rows = get_csv(client, tenant, "revenue")
    assert [(r["name"], r["revenue"], r["spend"], r["roi"]) for r in csv_rows] == [
        (r["name"], r["revenue"], as_csv_cell(r["spend"]), as_csv_cell(r["roi"])) for r in data["rows"]
    ]


def test_another_clinics_data_is_never_counted(client, tenant, planted):
    other = planted["other"]
    theirs = get(client, other, "revenue")
    mine = get(client, tenant, "revenue")
    assert {r["source_id"] for r in theirs["rows"]}.isdisjoint({r["source_id"] for r in mine["rows"]})
    assert mine["conversions"] == len(converted_in(planted["facts"]))  # not the sum of both clinics
    assert theirs["conversions"] == len(converted_in(planted["other_facts"]))
    velocity = get(client, tenant, "lead-velocity")
    assert velocity["leads"] == sum(START <= f["created"] < END for f in planted["facts"])
    for name in REPORTS:  # a filter naming the other clinic's source or user is a 404
        for params in ({"source_id": planted["sources"][0]}, {"coordinator_id": planted["c1"]}):
            resp = client.get(
                f"/api/leads/analytics/{name}",
                query_string={**RANGE, **params},
                headers=other.headers("doctor"),
            )
            assert resp.status_code == 404, (name, params)


@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize(
    ("role", "status"),
    [("doctor", 200), ("clinic_admin", 200), ("treatment_coordinator", 403), ("front_desk", 403)],
)
def test_permissions_follow_the_roles_table(client, tenant, name, role, status):
    resp = client.get(f"/api/leads/analytics/{name}", query_string=RANGE, headers=tenant.headers(role))
    assert resp.status_code == status
    assert client.get(f"/api/leads/analytics/{name}").status_code == 401


@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, "from"),
        ({"to": "soon"}, "to"),
        ({"source_id": "-3"}, "source_id"),
        ({"coordinator_id": "x"}, "coordinator_id"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, tenant, name, params, field):
    resp = client.get(f"/api/leads/analytics/{name}", query_string=params, headers=tenant.headers("doctor"))
    assert resp.status_code == 422 and field in str(resp.get_json()["errors"]), resp.get_json()


# --- treatment_value on convert ----------------------------------------------------------------------


def test_a_conversion_records_its_treatment_value_and_revenue_counts_it(client, tenant):
    coordinator = tenant.headers("treatment_coordinator")
    valued, plain = lead_for(client, tenant), lead_for(client, tenant)
    resp = client.post(
        f"/api/leads/{valued['id']}/convert", json={"treatment_value": "4850.5"}, headers=coordinator
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["treatment_value"] == "4850.50"
    resp = client.post(f"/api/leads/{plain['id']}/convert", headers=coordinator)  # no body: still fine
    assert resp.status_code == 200 and resp.get_json()["treatment_value"] is None
    today = datetime.now(UTC)
    span = {"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()}
    data = get(client, tenant, "revenue", **span)
    assert (data["conversions"], data["revenue"]) == (2, "4850.50")
    assert sum(r["conversions"] for r in data["rows"]) == 2
    assert sum(r["conversions_with_value"] for r in data["rows"]) == 1


@pytest.mark.parametrize("value", [-1, "-0.01", "abc", "NaN", "Infinity", 10**12, True, {"amount": 5}, [1]])
def test_a_bad_treatment_value_is_422_naming_it_and_converts_nothing(client, tenant, value):
    lead = lead_for(client, tenant)
    resp = client.post(
        f"/api/leads/{lead['id']}/convert",
        json={"treatment_value": value},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert resp.status_code == 422 and "treatment_value" in resp.get_json()["errors"].get("json", {}), (
        resp.get_json()
    )
    after = client.get(f"/api/leads/{lead['id']}", headers=tenant.headers("treatment_coordinator"))
    assert after.get_json()["status"] != "CONVERTED"


def test_deleted_leads_are_left_out(app, client, tenant, planted):
    """The planted deleted lead converted on Feb 4 with 99,999.00: no report has it."""
    data = get(client, tenant, "revenue")
    assert "99999.00" not in str(data) and data["conversions"] == len(converted_in(planted["facts"]))
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        deleted = session.scalar(
            sa.select(sa.func.count()).where(Lead.clinic_id == tenant.id, Lead.deleted_at.is_not(None))
        )
    assert deleted == 1
