"""queries.medians_by over the spans kept on the lead (speed to lead's split) gives the medians a
straightforward computation gives: every lead of the cohort read back, its spans worked out in
Python from its firsts, each group's values sorted. On PostgreSQL the medians come from one grouped
statement per group column (migrations 0066 and 0068's indexes), read together, on SQLite from the
rows in Python: both must agree with the plain definition."""

import math
import random
from datetime import timedelta
from statistics import median

import sqlalchemy as sa

from app.domains.analytics import queries, rollups
from app.domains.analytics.figures import cohort_conditions
from app.domains.leads.models import Lead, LeadSource
from app.platform import clock
from app.platform.db import plan_for_reports

LEADS = 600
SQLITE_SLACK = 0.002 / 60  # minutes: two milliseconds


def _leads(db, tenant, now) -> None:
    """LEADS leads around the write paths: owners (some none) and sources, firsts a few microseconds
    to days apart (some missing, some before the task: no span), a few deleted or outside the range."""
    rng = random.Random(64)
    owners = [*(user.id for user in tenant.users.values()), None]
    with db.engine.begin() as conn:
        sources = list(conn.scalars(sa.select(LeadSource.id).where(LeadSource.clinic_id == tenant.id)))

        def maybe_after(at, most_seconds):
            if rng.random() < 0.15:
                return None
            return at + timedelta(microseconds=rng.randrange(-(10**6), most_seconds * 10**6))

        rows = []
        for index in range(LEADS):
            created = now - timedelta(days=400 if index % 50 == 0 else 0, seconds=rng.randrange(360 * 86400))
            task = maybe_after(created, 3600)
            rows.append(
                {
                    "clinic_id": tenant.id, "status": "ACTIVE", "pipeline_stage": "new_lead",
                    "stage_entered_at": created, "first_name": "F", "last_name": "L",
                    "preferred_contact": "PHONE", "patient_relationship": "SELF",
                    "source_id": rng.choice(sources), "treatment_interest": [],
                    "assigned_to_id": rng.choice(owners), "created_at": created, "updated_at": created,
                    "assigned_at": maybe_after(created, 600), "first_task_at": task,
                    "first_attempt_at": maybe_after(task, 7200) if task else None,
                    "first_contact_at": maybe_after(task, 3 * 86400) if task else None,
                    "deleted_at": now if index % 37 == 0 else None,
                    "created_by": "test", "updated_by": "test",
                }
            )  # fmt: skip
        conn.execute(sa.insert(Lead), rows)
        rollups.stamp_spans(conn)  # kept from the firsts, as the write paths keep them


def _span_minutes(later, earlier):
    if later is None or earlier is None or later < earlier:
        return None
    return (later - earlier).total_seconds() / 60.0


def _straightforward(db, tenant, start, end) -> dict:
    """{group name: {value: (rows, routing, human to attempt, human to contact)}} from every lead."""
    with db.engine.connect() as conn:
        leads = conn.execute(
            sa.select(Lead).where(*cohort_conditions(tenant.id, start, end, None, None))
        ).all()
    found: dict = {}
    for name, group_of in (
        ("coordinator", lambda lead: lead.assigned_to_id),
        ("source", lambda lead: lead.source_id),
    ):
        by_value: dict = {}
        for lead in leads:
            routed = (
                max(lead.assigned_at, lead.first_task_at) if lead.assigned_at and lead.first_task_at else None
            )
            spans = (
                _span_minutes(routed, lead.created_at),
                _span_minutes(lead.first_attempt_at, lead.first_task_at),
                _span_minutes(lead.first_contact_at, lead.first_task_at),
            )
            by_value.setdefault(group_of(lead), []).append(spans)
        found[name] = {
            value: (
                len(spans),
                *[median(v) if (v := [s[i] for s in spans if s[i] is not None]) else None for i in range(3)],
            )
            for value, spans in by_value.items()
        }
    return found


def test_medians_by_group_are_the_medians_of_each_groups_values(app, tenant):
    db, now = app.extensions["followup.db"], clock.now()
    _leads(db, tenant, now)
    start, end = now - timedelta(days=365), now
    with app.app_context(), db.unit_of_work() as session:
        plan_for_reports(session)
        spans = {  # as speed to lead's split reads them (coordination.speed_split)
            "routing": Lead.routing_seconds / 60.0,
            "attempt": Lead.human_attempt_seconds / 60.0,
            "contact": Lead.human_contact_seconds / 60.0,
        }
        groups = {"coordinator": Lead.assigned_to_id, "source": Lead.source_id}
        found = queries.medians_by(
            session, groups, spans, cohort_conditions(tenant.id, start, end, None, None)
        )
    expected = _straightforward(db, tenant, start, end)
    slack = 1e-9 if db.dialect == "postgresql" else SQLITE_SLACK
    assert found.keys() == expected.keys()
    for name in groups:
        assert len(expected[name]) >= 3, expected[name]  # several groups (owners: the "none" one among them)
        assert found[name].keys() == expected[name].keys(), name
        for value, (rows, *medians) in expected[name].items():
            assert found[name][value][0] == rows, (name, value)
            for got, want in zip(found[name][value][1:], medians, strict=True):
                # SQLite's julianday() keeps whole milliseconds (each end); PostgreSQL microseconds.
                assert (got is None and want is None) or math.isclose(got, want, abs_tol=slack), (
                    name, value, got, want,
                )  # fmt: skip
