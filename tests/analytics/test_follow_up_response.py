"""The follow-up response report (per channel and per sequence) against a hand-built data set."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import rollups
from app.domains.automation.models import AutomationStep, SequenceEnrollment
from app.domains.conversations.models import Conversation, ConversationMessage
from app.domains.leads.models import Lead, LeadSource
from app.domains.sequences.models import Sequence
from app.platform import clock
from tests.analytics.kit import process_outbox
from tests.automation.outreachkit import configure_clinic, email, enroll, lead_with, make_sequence, sms

RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"}


def at(day: int, hour: int = 0, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def dataset(app, tenant):
    """Three leads: L1 and L2 in the "Welcome" sequence, L3 messaged by a rule (no sequence)."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        source = session.scalars(
            sa.select(LeadSource.id).where(LeadSource.clinic_id == tenant.id).order_by(LeadSource.id).limit(1)
        ).one()

        def lead():
            row = Lead(
                clinic_id=tenant.id, status="ACTIVE", pipeline_stage="new_lead", stage_entered_at=at(2),
                first_name="Jane", last_name="Doe", preferred_contact="PHONE", patient_relationship="SELF",
                source_id=source, treatment_interest=[], created_at=at(2), updated_at=at(2),
                created_by="test", updated_by="test",
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

        l1, l2, l3 = lead(), lead(), lead()
        welcome = Sequence(clinic_id=tenant.id, name="Welcome", steps=[], created_at=at(1), updated_at=at(1))
        session.add(welcome)
        session.flush()

        def step(lead_id, enrolled: bool):
            enrollment_id = None
            if enrolled:
                enrollment = SequenceEnrollment(
                    clinic_id=tenant.id, sequence_id=welcome.id, lead_id=lead_id, status="active",
                    enrolled_at=at(1), enrolled_by="test",
                )  # fmt: skip
                session.add(enrollment)
                session.flush()
                enrollment_id = enrollment.id
            row = AutomationStep(
                clinic_id=tenant.id, lead_id=lead_id, enrollment_id=enrollment_id, action_type="send_sms",
                action={}, run_at=at(1), status="done", dedupe_key=f"test:{lead_id}", created_at=at(1),
            )  # fmt: skip
            session.add(row)
            session.flush()
            return row.id

        s1, s2, s3 = step(l1, True), step(l2, True), step(l3, False)
        threads = {}
        for lead_id in (l1, l2, l3):
            threads[lead_id] = Conversation(
                clinic_id=tenant.id, lead_id=lead_id, created_at=at(1), updated_at=at(1)
            )
            session.add(threads[lead_id])
        session.flush()

        def message(lead_id, when, kind, details, direction="OUTBOUND", actor="system"):
            session.add(
                LeadActivity(
                    clinic_id=tenant.id, lead_id=lead_id, type=kind, direction=direction, occurred_at=when,
                    created_at=when, actor=actor, details=details,
                )
            )  # fmt: skip

        def in_thread(lead_id, when, channel, direction, notification_id=None):
            session.add(
                ConversationMessage(
                    clinic_id=tenant.id, conversation_id=threads[lead_id].id, channel=channel,
                    direction=direction,
                    sender_ref="system" if direction == "outbound" else "family", body="hello",
                    notification_id=notification_id, occurred_at=when, created_at=when,
                )
            )  # fmt: skip
            session.flush()

        # L1: an SMS of the sequence, answered 2 hours later; the family wrote first then, answered in 30 min.
        message(l1, at(5), "SMS", {"automation_step_id": s1, "notification_id": 101})
        in_thread(l1, at(5), "sms", "outbound", 101)
        message(l1, at(5, 2), "SMS", None, direction="INBOUND", actor="lead")
        in_thread(l1, at(5, 2), "sms", "inbound")
        threads[l1].first_inbound_at, threads[l1].first_reply_at = at(5, 2), at(5, 2, 30)
        # L2: a WhatsApp message of the sequence answered after 6 hours (the clinic never answered),
        # then an email of the sequence nobody answered (no thread row: its channel is its type's).
        message(l2, at(6), "DIRECT_MESSAGE", {"automation_step_id": s2, "notification_id": 102})
        in_thread(l2, at(6), "whatsapp", "outbound", 102)
        message(l2, at(6, 6), "DIRECT_MESSAGE", None, direction="INBOUND", actor="lead")
        in_thread(l2, at(6, 6), "whatsapp", "inbound")
        threads[l2].first_inbound_at = at(6, 6)
        message(l2, at(8), "EMAIL", {"automation_step_id": s2, "notification_id": 103})
        # L3: a rule's Instagram message, answered after 4 days (past the 72 h window: not replied).
        message(l3, at(9), "DIRECT_MESSAGE", {"automation_step_id": s3, "notification_id": 104})
        in_thread(l3, at(9), "instagram", "outbound", 104)
        message(l3, at(13), "DIRECT_MESSAGE", None, direction="INBOUND", actor="lead")
        in_thread(l3, at(13), "instagram", "inbound")
        threads[l3].first_inbound_at, threads[l3].first_reply_at = at(13), at(13, 0, 10)
        # Outside the range: not counted.
        message(l1, at(2, month=2), "SMS", {"automation_step_id": s1, "notification_id": 105})
        # A person's message is no automated one.
        message(l1, at(7), "SMS", None, actor="user:1")
    with db.engine.begin() as connection:  # the rows above go around the write paths
        rollups.backfill(connection)


def get(client, tenant, role="doctor", **params):
    return client.get(
        "/api/leads/analytics/follow-up-response",
        query_string={**RANGE, **params},
        headers=tenant.headers(role),
    )


def test_per_channel_and_per_sequence(client, tenant, dataset):
    resp = get(client, tenant)
    assert resp.status_code == 200, resp.get_json()
    data = resp.get_json()
    channels = {
        row["name"]: (
            row["messages"], row["replied"], row["reply_rate"], row["median_hours_to_reply"],
            row["conversations"], row["answered"], row["median_first_reply_minutes"],
        )
        for row in data["channels"]
    }  # fmt: skip
    assert channels == {
        "sms": (1, 1, 1.0, 2.0, 1, 1, 30.0),
        "email": (1, 0, 0.0, None, 0, 0, None),
        "whatsapp": (1, 1, 1.0, 6.0, 1, 0, None),
        "instagram": (1, 0, 0.0, None, 1, 1, 10.0),
    }
    sequences = {
        row["name"]: (row["messages"], row["replied"], row["reply_rate"], row["median_hours_to_reply"])
        for row in data["sequences"]
    }
    assert sequences == {"Welcome": (3, 2, 0.6667, 4.0), "no sequence": (1, 0, 0.0, None)}
    assert data["reply_window_hours"] == 72


def test_csv_has_a_row_per_channel_then_per_sequence(client, tenant, dataset):
    resp = client.get(
        "/api/leads/analytics/follow-up-response",
        query_string=RANGE,
        headers={**tenant.headers("clinic_admin"), "Accept": "text/csv"},
    )
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["group"], r["name"], r["messages"], r["replied"]) for r in rows] == [
        ("channel", "sms", "1", "1"),
        ("channel", "email", "1", "0"),
        ("channel", "whatsapp", "1", "1"),
        ("channel", "instagram", "1", "0"),
        ("sequence", "Welcome", "3", "2"),
        ("sequence", "no sequence", "1", "0"),
    ]


def test_another_clinics_messages_are_never_counted(client, tenant, make_tenant, dataset):
    other = make_tenant("Other")
    data = get(client, other).get_json()
    assert [row["messages"] for row in data["channels"]] == [0, 0, 0, 0]
    assert [row["conversations"] for row in data["channels"]] == [0, 0, 0, 0]
    assert data["sequences"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"), ({"to": "soon"}, "to")],
)
def test_a_bad_range_is_422_naming_the_field(client, tenant, params, field):
    resp = get(client, tenant, **params)
    assert resp.status_code == 422 and field in str(resp.get_json()["errors"]), resp.get_json()


def test_roles_without_analytics_are_refused(client, tenant):
    assert get(client, tenant, role="front_desk").status_code == 403


def test_the_range_moves_the_figures(client, tenant, dataset):
    """Only the messages sent in the range count: from the 7th, L2's email and L3's message remain."""
    data = get(client, tenant, **{"from": "2026-01-07T00:00:00Z"}).get_json()
    assert sum(row["messages"] for row in data["channels"]) == 2


def test_messages_sent_by_a_sequence_count_under_its_channel_and_name(app, client, db, tenant):
    """Through the write paths (a sequence's SMS and email sent at enrolment, their events processed):
    each message keeps its channel and sequence for the report, as the backfill computes them."""
    configure_clinic(client, tenant)
    lead = lead_with(client, tenant, phone="(415) 555-2671")
    sequence = make_sequence(client, tenant, [sms(), email()], name="Nurture")
    enroll(client, tenant, lead["id"], sequence["id"])
    answer = {"type": "SMS", "direction": "INBOUND"}  # the family answers at once
    resp = client.post(f"/api/leads/{lead['id']}/activities", json=answer, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    process_outbox(app, db)

    def kept():
        with db.engine.connect() as conn:
            return conn.execute(
                sa.select(
                    LeadActivity.type,
                    LeadActivity.message_channel,
                    LeadActivity.message_sequence_id,
                    LeadActivity.reply_seconds,
                )
                .where(LeadActivity.lead_id == lead["id"], rollups.automated_message())
                .order_by(LeadActivity.id)
            ).all()

    written = kept()
    assert [row[:3] for row in written] == [
        ("SMS", "sms", sequence["id"]),
        ("EMAIL", "email", sequence["id"]),
    ]
    assert all(0 < seconds < 60 for *_, seconds in written)  # both answered by the SMS
    with db.engine.begin() as connection:
        rollups.backfill(connection)
    assert kept() == written
    today = {
        "from": (clock.now() - timedelta(days=1)).isoformat(),
        "to": (clock.now() + timedelta(hours=1)).isoformat(),
    }
    data = get(client, tenant, **today).get_json()
    assert [(row["name"], row["messages"]) for row in data["sequences"]] == [("Nurture", 2)]
    assert {row["name"]: row["messages"] for row in data["channels"]} == {
        "sms": 1, "email": 1, "whatsapp": 0, "instagram": 0
    }  # fmt: skip
