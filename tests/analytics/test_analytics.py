"""Every analytics figure against a hand-built data set (exact numbers); CSV, filters, bad input."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import coordination, rollups
from app.domains.analytics import service as analytics
from app.domains.leads.models import Lead, LeadSource
from app.domains.pipeline.models import LeadStageHistory
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.leadkit import add_user

RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"}  # 30 days


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def dataset(app, tenant):
    """Four leads in January (L1..L4) and one in December (L5, outside the range)."""
    db = app.extensions["followup.db"]
    c1, c2 = tenant.users["treatment_coordinator"].id, add_user(app, tenant)
    with db.unit_of_work() as session:
        s1, s2 = session.scalars(
            sa.select(LeadSource.id).where(LeadSource.clinic_id == tenant.id).order_by(LeadSource.id).limit(2)
        ).all()
        session.get(LeadSource, s1).monthly_cost = Decimal("304.38")  # 300.0041... for 30 days
        session.get(LeadSource, s2).monthly_cost = None

        def lead(created, coordinator, source, status="ACTIVE", reason=None, stage="new_lead"):
            row = Lead(
                clinic_id=tenant.id, status=status, pipeline_stage=stage, stage_entered_at=created,
                first_name="Jane", last_name="Doe", preferred_contact="PHONE", patient_relationship="SELF",
                source_id=source, treatment_interest=[], assigned_to_id=coordinator, lost_reason=reason,
                converted_at=created if status == "CONVERTED" else None, created_at=created,
                updated_at=created,
                created_by="test", updated_by="test",
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

        def stays(lead_id, *path):
            for (stage, entered), nxt in zip(path, [*path[1:], (None, None)], strict=True):
                session.add(
                    LeadStageHistory(
                        clinic_id=tenant.id, lead_id=lead_id, to_stage=stage, entered_at=entered,
                        left_at=nxt[1], by="test",
                    )
                )  # fmt: skip

        def activity(lead_id, when, type, direction, actor="user:1"):
            session.add(
                LeadActivity(
                    clinic_id=tenant.id, lead_id=lead_id, type=type, direction=direction, occurred_at=when,
                    created_at=when, actor=actor,
                )
            )  # fmt: skip

        def task(lead_id, due, status, completed=None, assignee=c1):
            session.add(
                LeadTask(
                    clinic_id=tenant.id, lead_id=lead_id, title="t", type="CALL", priority="NORMAL",
                    assigned_to_id=assignee, due_at=due, status=status, completed_at=completed, origin={},
                    revision=1, created_at=due, updated_at=due,
                )
            )  # fmt: skip

        l1 = lead(at(2, 10), c1, s1, "CONVERTED", stage="treatment_started")
        stays(l1, ("new_lead", at(2, 10)), ("contacted", at(3, 10)), ("consultation_scheduled", at(5, 10)),
              ("treatment_started", at(6, 10)))  # fmt: skip
        activity(l1, at(2, 10, 3), "PHONE_CALL", "OUTBOUND")  # 3 minutes
        l2 = lead(at(3, 9), c1, s1, "LOST", "COST_FINANCIAL", stage="lost")
        stays(l2, ("new_lead", at(3, 9)), ("contacted", at(4, 9)), ("lost", at(5, 9)))
        activity(l2, at(3, 9, 1), "NOTE", "OUTBOUND")  # a note is no contact
        activity(l2, at(3, 9, 2), "PHONE_CALL", "INBOUND")  # inbound is no outbound contact
        activity(l2, at(3, 9, 10), "EMAIL", "OUTBOUND")  # 10 minutes
        l3 = lead(at(4, 12), c2, s2)
        stays(l3, ("new_lead", at(4, 12)))
        activity(l3, at(5, 12), "EMAIL", "OUTBOUND", actor="system")  # automated: not a person reaching out
        activity(l3, at(6, 12), "SMS", "INBOUND")  # a reply within 72 h
        l4 = lead(at(10, 8), c2, s1, "LOST", "TIMING_NOT_RIGHT", stage="lost")
        stays(l4, ("new_lead", at(10, 8)), ("lost", at(12, 8)))
        activity(l4, at(10, 8, 5), "SMS", "OUTBOUND")  # exactly 5 minutes: within
        activity(l4, at(11, 8), "EMAIL", "OUTBOUND", actor="system")  # automated, never answered
        activity(l1, at(15), "SMS", "OUTBOUND", actor="system")  # automated; answered after 5 days only
        activity(l1, at(20), "PHONE_CALL", "INBOUND")
        l5 = lead(at(20, month=12, year=2025), c1, s2, "CONVERTED")
        stays(l5, ("new_lead", at(20, month=12, year=2025)))
        # Tasks due in January (follow-up effectiveness) and open ones around now (coordinators).
        task(l1, at(5, 10), "COMPLETED", at(5, 9))  # on time
        task(l1, at(6), "COMPLETED", at(7))  # late
        task(l2, at(7), "CANCELLED")
        task(l3, at(8), "OVERDUE", assignee=c1)  # open, overdue
        now = clock.now()
        task(l3, now - timedelta(hours=1), "PENDING")  # open, overdue
        task(l3, now + timedelta(hours=1), "PENDING")  # open
        task(l4, now - timedelta(hours=1), "COMPLETED", now, assignee=c2)
    # The rows above go around the write paths: compute their summaries as the migration does.
    with db.engine.begin() as connection:
        rollups.backfill(connection)
    return {"c1": c1, "c2": c2, "s1": s1, "s2": s2}


def get(client, tenant, name, role="doctor", **params):
    resp = client.get(
        f"/api/leads/analytics/{name}", query_string={**RANGE, **params}, headers=tenant.headers(role)
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_funnel(client, tenant, dataset):
    rows = get(client, tenant, "funnel")["rows"]
    assert [(r["stage"], r["reached"]) for r in rows] == [
        ("new_lead", 4), ("contacted", 2), ("consultation_scheduled", 1), ("consultation_completed", 1),
        ("pending_decision", 1), ("treatment_accepted", 1), ("treatment_started", 1),
    ]  # fmt: skip
    assert [r["conversion_from_previous"] for r in rows] == [None, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert [r["conversion_to_next"] for r in rows] == [0.5, 0.5, 1.0, 1.0, 1.0, 1.0, None]
    assert [r["median_days_in_stage"] for r in rows] == [1.0, 1.5, 1.0, None, None, None, None]


def test_sources(client, tenant, dataset):
    rows = {r["source_id"]: r for r in get(client, tenant, "sources")["rows"]}
    s1, s2 = rows[dataset["s1"]], rows[dataset["s2"]]
    assert (s1["leads"], s1["conversions"], s1["conversion_rate"]) == (3, 1, 0.3333)
    # 304.38 a month over 30 days: 304.38 * 30 / 30.4375 = 300.0049...
    assert (s1["spend"], s1["cost_per_lead"], s1["cost_per_acquisition"]) == ("300.00", "100.00", "300.00")
    assert (s2["leads"], s2["conversions"], s2["spend"], s2["cost_per_lead"]) == (1, 0, None, None)
    assert sum(r["leads"] for r in rows.values()) == 4
    only = get(client, tenant, "sources", source_id=dataset["s2"])["rows"]
    assert [r["source_id"] for r in only] == [dataset["s2"]]


def test_coordinators(client, tenant, dataset):
    rows = {r["coordinator_id"]: r for r in get(client, tenant, "coordinators")["rows"]}
    c1, c2 = rows[dataset["c1"]], rows[dataset["c2"]]
    assert (c1["leads"], c1["contacted_within_5_min"], c1["contacted_within_5_min_share"]) == (2, 1, 0.5)
    assert (c1["conversions"], c1["open_tasks"], c1["overdue_tasks"]) == (1, 3, 2)
    assert (c2["leads"], c2["contacted_within_5_min"], c2["conversions"], c2["open_tasks"]) == (2, 1, 0, 0)


def test_lost_reasons(client, tenant, dataset):
    data = get(client, tenant, "lost-reasons")
    assert (data["total_leads"], data["lost"], data["lost_rate"]) == (4, 2, 0.5)
    assert data["rows"] == [
        {"reason": "COST_FINANCIAL", "leads": 1, "share": 0.5},
        {"reason": "TIMING_NOT_RIGHT", "leads": 1, "share": 0.5},
    ]


def test_speed_to_lead(client, tenant, dataset):
    data = get(client, tenant, "speed-to-lead")
    # Speed to lead is the staff's: l3 had only an automated email, so it counts as not contacted.
    assert (data["leads"], data["contacted"], data["not_contacted"]) == (4, 3, 1)
    assert (data["median_minutes"], data["p90_minutes"]) == (5.0, 10.0)  # of 3, 5, 10
    assert (data["within_5_min"], data["within_5_min_share"]) == (2, 0.5)
    mine = get(client, tenant, "speed-to-lead", coordinator_id=dataset["c2"])  # l4 (5) and l3 (none)
    assert (mine["leads"], mine["median_minutes"], mine["p90_minutes"], mine["within_5_min"]) == (
        2,
        5.0,
        5.0,
        1,
    )


def test_speed_to_lead_by_week_gives_the_reports_figures_of_each_week_and_not_its_split(
    app, client, tenant, dataset, monkeypatch
):
    """The console's weekly chart: each week's figures are the speed-to-lead report's for that week,
    read without the split by coordinator and source the chart does not draw."""

    def no_split(**_):
        raise AssertionError("the weekly chart computed a split it does not draw")

    monkeypatch.setattr(coordination, "speed_split", no_split)
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        weeks = analytics.speed_to_lead_by_week(session=session, clinic_id=tenant.id, weeks=5, now=at(31))
    monkeypatch.undo()
    assert [week["week"] for week in weeks] == [
        "2025-12-27",
        "2026-01-03",
        "2026-01-10",
        "2026-01-17",
        "2026-01-24",
    ]
    assert sum(week["leads"] for week in weeks) == 4  # January's four (L5 was captured in December)
    for week in weeks:
        start = datetime.fromisoformat(week["week"]).replace(tzinfo=UTC)
        window = {"from": start.isoformat(), "to": (start + timedelta(weeks=1)).isoformat()}
        report = get(client, tenant, "speed-to-lead", **window)
        assert {key: week[key] for key in report["rows"][0]} == report["rows"][0]


def test_follow_up_effectiveness(client, tenant, dataset):
    data = get(client, tenant, "follow-up")
    assert (data["tasks_due"], data["tasks_completed"], data["tasks_completed_on_time"]) == (4, 2, 1)
    assert (data["tasks_cancelled"], data["tasks_open"], data["on_time_rate"]) == (1, 1, 0.3333)
    assert (data["automated_messages"], data["automated_messages_replied"], data["reply_rate"]) == (
        3,
        1,
        0.3333,
    )


def test_csv(client, tenant, dataset):
    resp = client.get(
        "/api/leads/analytics/lost-reasons",
        query_string=RANGE,
        headers={**tenant.headers("clinic_admin"), "Accept": "text/csv"},
    )
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.get_data(as_text=True).splitlines() == [
        "reason,leads,share", "COST_FINANCIAL,1,0.5", "TIMING_NOT_RIGHT,1,0.5",
    ]  # fmt: skip


def test_other_clinics_see_nothing_and_their_filters_are_404(client, tenant, make_tenant, dataset):
    other = make_tenant("Other")
    assert get(client, other, "speed-to-lead")["leads"] == 0
    resp = client.get(
        "/api/leads/analytics/funnel",
        query_string={**RANGE, "coordinator_id": dataset["c1"]},
        headers=other.headers("doctor"),
    )
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"coordinator_id": "abc"}, "coordinator_id"),
        ({"source_id": "0"}, "source_id"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, tenant, params, field):
    resp = client.get("/api/leads/analytics/sources", query_string=params, headers=tenant.headers("doctor"))
    assert resp.status_code == 422 and field in str(resp.get_json()["errors"]), resp.get_json()


def test_csv_cells_that_look_like_formulas_are_text(app, client, tenant, dataset):
    """A source named like a formula comes out quoted, so a spreadsheet shows it instead of running it."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        source = session.scalars(
            sa.select(LeadSource).where(LeadSource.clinic_id == tenant.id).order_by(LeadSource.id).limit(1)
        ).one()
        source.name = '=HYPERLINK("http://evil.example","open")'
    resp = client.get(
        "/api/leads/analytics/sources",
        query_string=RANGE,
        headers={**tenant.headers("clinic_admin"), "Accept": "text/csv"},
    )
    assert resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    names = [row["name"] for row in rows]
    assert '\'=HYPERLINK("http://evil.example","open")' in names
    assert not any(name.startswith(("=", "+", "-", "@", "\t", "\r")) for name in names)
