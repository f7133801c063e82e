"""One vocabulary of contact (issue 14 item 1): what is a contact, what is an attempt, in Python and SQL."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from app.domains.activities import rules
from app.domains.activities import service as activities
from app.domains.activities.models import ActivityDirection, ActivityType, CallOutcome, LeadActivity
from app.domains.leads.models import Lead
from app.platform import clock
from tests.leadkit import create_lead

C = {"type": "PHONE_CALL", "direction": "OUTBOUND"}


@pytest.mark.parametrize(
    ("facts", "contact", "attempt"),
    [
        ({**C, "outcome": "spoke"}, True, False),
        ({**C, "outcome": "callback_requested"}, True, False),  # the lead answered and asked
        ({**C, "outcome": "voicemail"}, False, True),
        ({**C, "outcome": "no_answer"}, False, True),
        ({**C, "outcome": "wrong_number"}, False, True),
        ({**C, "outcome": None}, False, True),  # no answer recorded
        ({"type": "PHONE_CALL", "direction": "INBOUND"}, True, False),
        ({"type": "EMAIL", "direction": "INBOUND"}, True, False),
        ({"type": "SMS", "direction": "INBOUND"}, True, False),
        ({"type": "EMAIL", "direction": "OUTBOUND"}, False, True),
        ({"type": "SMS", "direction": "OUTBOUND"}, False, True),
        ({"type": "IN_PERSON", "direction": None}, True, False),
        ({"type": "NOTE", "direction": None}, False, False),
        ({"type": "STAGE_CHANGE", "direction": None}, False, False),
        ({"type": "DOCUMENT_SENT", "direction": None}, False, False),
    ],
)
def test_contact_and_attempt_as_the_spec_defines_them(facts, contact, attempt):
    assert rules.is_contact(**facts) is contact
    assert rules.is_attempt(**facts) is attempt


def test_the_break_up_email_is_not_an_attempt():
    email = {"type": "EMAIL", "direction": "OUTBOUND"}
    assert rules.is_attempt(**email, details={"notification_id": 4})
    assert not rules.is_attempt(**email, details={rules.BREAK_UP: True})


def test_the_sql_clauses_agree_with_the_functions_on_every_shape(app, client, db, tenant):
    lead_id = create_lead(client, tenant)["id"]
    now = clock.now()
    types = list(ActivityType)
    directions = [None, *ActivityDirection]
    outcomes = [None, *CallOutcome]
    details = [None, {"notification_id": 1}, {rules.BREAK_UP: True}]
    combos = list(itertools.product(types, directions, outcomes, details))
    with db.unit_of_work() as session:  # what capture logged already
        logged = sa.select(sa.func.max(LeadActivity.id)).where(LeadActivity.lead_id == lead_id)
        before = session.scalar(logged)
    with app.app_context(), db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        for type_, direction, outcome, detail in combos:
            activities.record(
                session=session,
                lead=lead,
                automation=False,
                facts=activities.ActivityFacts(
                    type=type_, at=now, direction=direction, outcome=outcome, details=detail
                ),
            )
    with db.unit_of_work() as session:
        rows = session.execute(
            sa.select(
                LeadActivity.type,
                LeadActivity.direction,
                LeadActivity.outcome,
                LeadActivity.details,
                rules.contact_clause(),
                rules.attempt_clause(),
            ).where(LeadActivity.lead_id == lead_id, LeadActivity.id > (before or 0))
        ).all()
    assert len(rows) == len(combos)
    for type_, direction, outcome, detail, contact, attempt in rows:
        facts = {"type": type_, "direction": direction, "outcome": outcome}
        assert bool(contact) is rules.is_contact(**facts), facts
        assert bool(attempt) is rules.is_attempt(**facts, details=detail), (facts, detail)
