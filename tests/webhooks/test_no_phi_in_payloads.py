"""Webhook payloads carry no PHI (app/platform/phi_policy.py): a subscriber is a URL, not a reader with
`lead:phi`; it gets ids and states and fetches a lead's details with an API key."""

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.tasks.alerts import overdue as task_overdue
from app.domains.webhooks.models import WebhookDelivery
from app.platform import clock
from app.platform.events import service as events
from app.platform.events.types import Event
from tests.leadkit import create_lead
from tests.tasks.taskkit import run_at
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, subscribe

NOTES, LOST_NOTES, DESCRIPTION = "Cracked molar, anxious", "Chose a cheaper clinic", "Ask about the molar"
DOB, MEMBER_ID, ADDRESS = "2010-07-08", "MBR-31-8841", "4 Birch Road"
SECRETS = (NOTES, LOST_NOTES, DESCRIPTION, DOB, MEMBER_ID, ADDRESS)


@dataclass(frozen=True)
class FutureLeadCreated(Event):
    """A `lead.created` a later version might write, with PHI-named fields in it."""

    NAME = "lead.created"
    lead_id: int
    notes: str
    patient: dict


@pytest.fixture
def receiver():
    r = Receiver(failures=0)
    yield r
    r.close()


def test_every_event_a_subscriber_gets_is_free_of_phi(app, client, db, tenant, receiver):
    subscribe(client, tenant, receiver.url, ["lead.created", "lead.lost", "task.overdue"])
    lead = create_lead(
        client,
        tenant,
        role="treatment_coordinator",
        notes=NOTES,
        patient_dob=DOB,
        insurance_member_id=MEMBER_ID,
        address_line1=ADDRESS,
    )
    created = client.post(
        f"/api/leads/{lead['id']}/tasks",
        json={"title": "Call", "type": "CALL", "due_in_minutes": 1, "description": DESCRIPTION},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert created.status_code == 201, created.get_json()
    with app.app_context(), db.unit_of_work() as session:
        assert task_overdue.mark_overdue(session=session, now=clock.now() + timedelta(minutes=5)) >= 1
    lost = client.post(
        f"/api/leads/{lead['id']}/lost",
        json={"reason": "OTHER", "notes": LOST_NOTES},
        headers=tenant.headers(),
    )
    assert lost.status_code == 200, lost.get_json()
    process_events(app, db, at=clock.now() + timedelta(minutes=10))
    for job in deliveries(db):
        assert run_at(app, job, clock.now() + timedelta(minutes=10)) == "done"
    bodies = [body.decode() for _, body in receiver.accepted]
    assert sorted(json.loads(body)["type"] for body in bodies) == [
        "lead.created",
        "lead.lost",
        "task.overdue",
    ]
    for body in bodies:
        assert [secret for secret in SECRETS if secret in body] == []
        assert json.loads(body)["data"]["lead_id"] == lead["id"]  # enough to fetch the rest


def test_a_phi_field_in_an_event_never_reaches_a_delivery(app, client, db, tenant, receiver):
    """The guard at the door: whatever a future event carries, its PHI-named fields stay home."""
    subscribe(client, tenant, receiver.url, ["lead.created"])
    lead = create_lead(client, tenant)
    with db.unit_of_work() as session:
        events.emit(
            session=session,
            event=FutureLeadCreated(
                lead_id=lead["id"], notes=NOTES, patient={"patient_dob": DOB, "status": "NEW"}
            ),
            subject=events.Subject(tenant.id, "lead", lead["id"]),
            now=clock.now(),
        )
    process_events(app, db)
    with db.unit_of_work() as session:
        payloads = [row.payload for row in session.scalars(sa.select(WebhookDelivery))]
    assert len(payloads) == 2
    assert {"lead_id": lead["id"], "patient": {"status": "NEW"}} in [p["data"] for p in payloads]
    assert all(NOTES not in json.dumps(p) and DOB not in json.dumps(p) for p in payloads)
