"""What the nightly run reads: the patient's age group stored with the DOB (so no DOB is decrypted
per lead), the early-activity facts worked out in SQL (the same as the history's and as the Python
path that scores one lead), and the calls counted by local hour of week."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.intelligence import contact_time_rules, contact_times, queries, score_rules, scoring
from app.domains.leads import service as leads
from app.domains.leads.models import Lead
from tests.automation.kit import actor_of, capture_at
from tests.intelligence.kit import NIGHT, TIMEZONE, seed_history

CAPTURED = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def stored_age_group(db, lead_id: int) -> str | None:
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT patient_age_group FROM leads WHERE id = :id"), {"id": lead_id}
        ).scalar()


def test_the_age_group_at_capture_is_stored_with_the_date_of_birth(app, db, tenant):
    twelve = capture_at(app, tenant, CAPTURED, patient_dob=date(2013, 3, 2))  # 13 tomorrow
    fifteen = capture_at(app, tenant, CAPTURED, patient_dob=date(2011, 1, 1))
    grown = capture_at(app, tenant, CAPTURED, patient_dob=date(1990, 5, 5))
    unknown = capture_at(app, tenant, CAPTURED)
    assert [stored_age_group(db, i) for i in (twelve, fifteen, grown, unknown)] == [
        "child",
        "teen",
        "adult",
        None,
    ]


def test_a_changed_date_of_birth_changes_the_age_group_as_of_capture(app, db, tenant):
    lead_id = capture_at(app, tenant, CAPTURED, patient_dob=date(1990, 5, 5))
    two_years_on = CAPTURED + timedelta(days=730)

    def change_dob(dob: date | None) -> str | None:
        with app.app_context(), db.unit_of_work() as session:
            leads.update_lead(
                session=session,
                actor=actor_of(tenant),
                lead_id=lead_id,
                changes={"patient_dob": dob},
                now=two_years_on,
            )
        return stored_age_group(db, lead_id)

    # Twelve at capture, fourteen at the update: the score's feature is the age at capture.
    assert change_dob(date(2013, 3, 2)) == "child"
    assert change_dob(date(2010, 6, 1)) == "teen"
    assert change_dob(None) is None


def _same(got: score_rules.LeadFacts, want: score_rules.LeadFacts) -> bool:
    """Equal facts; hours to the first response to the second (SQLite's julianday keeps ms)."""
    if (got.response_hours is None) != (want.response_hours is None):
        return False
    if got.response_hours is not None and abs(got.response_hours - want.response_hours) > 1 / 3600:
        return False
    return replace(got, response_hours=None) == replace(want, response_hours=None)


def test_the_training_read_gives_each_mature_lead_the_facts_of_its_history(app, db, tenant):
    history, ids = seed_history(app, tenant)
    until = NIGHT - timedelta(days=score_rules.CONVERSION_DAYS)
    since = NIGHT - timedelta(days=scoring.TRAINING_MONTHS * 31)
    truth = {ids[lead.index]: lead for lead in history.leads if since <= lead.created_at < until}
    with app.app_context(), db.unit_of_work() as session:
        read = queries.training_facts(session=session, clinic_id=tenant.id, since=since, until=until)
        # The path that scores one lead (its activities read in Python), on the same leads.
        stored = {lead.id: lead for lead in session.scalars(sa.select(Lead).where(Lead.id.in_(truth)))}
        categories = queries.source_categories(session=session, clinic_id=tenant.id)
        activities = queries.fact_activities(session=session, lead_ids=list(truth))
        one_by_one = {
            lead_id: queries.facts_from(lead, categories[lead.source_id], activities.get(lead_id, []), NIGHT)
            for lead_id, lead in stored.items()
        }
    assert len(truth) > 300 and sorted(lead_id for lead_id, _, _ in read) == sorted(truth)
    for lead_id, facts, converted in read:
        want = truth[lead_id].facts()
        assert _same(facts, want), (facts, want)
        assert _same(one_by_one[lead_id], want), (one_by_one[lead_id], want)
        assert converted == truth[lead_id].converted_within()


def test_calls_are_counted_by_the_clinic_s_local_hour_of_week_across_clock_changes(app, db, tenant):
    history, _ids = seed_history(app, tenant)  # 18 months of calls in New York: four DST changes
    zone = ZoneInfo(TIMEZONE)
    since = NIGHT - timedelta(days=contact_times.CALL_HISTORY_DAYS)
    with app.app_context(), db.unit_of_work() as session:
        counted = queries.calls_by_hour(session=session, clinic_id=tenant.id, since=since, zone=zone)
        sources = queries.source_categories(session=session, clinic_id=tenant.id)
    expected = Counter(
        (category, contact_time_rules.hour_of_week(at, zone), answered)
        for at, answered, category in history.calls()
        if since <= at < NIGHT
    )
    by_category = {(sources[source_id], slot, yes): calls for source_id, slot, yes, calls in counted}
    assert by_category == expected
