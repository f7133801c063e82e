"""Migration 0033 (issue 34 item 6): rows stored in clear before it are encrypted in place (text and
JSON columns) or moved to their `*_encrypted` columns, read back through the models unchanged, and
a downgrade gives the clear values back."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.domains.activities.models import LeadActivity
from app.domains.leads.models import Lead
from app.domains.outbound.models import Notification
from app.domains.tasks.models import LeadTask
from app.platform import migrate
from app.platform.audit.models import AuditEvent
from app.platform.db import make_engine
from app.platform.db.protected import use_keys
from app.platform.events.models import DomainEvent
from tests.test_data_migrations import NOW, insert
from tests.test_data_migrations import empty_database as empty_database  # the fixture

TABLES = ("leads", "lead_activities", "lead_tasks", "notifications", "audit_events", "events")
SECRETS = ("sleep apnoea", "jaw clicks", "Call Jane about her braces", "jane@example.org", "Hi Jane",
           "12 Orchard Lane", "DOB 2011-03-14", "latex", "Moved to Ohio")  # fmt: skip


def test_clear_rows_are_encrypted_by_the_upgrade_and_read_back_unchanged(empty_database, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PHI_ENCRYPTION_KEY", key)  # the key the app uses, as the migration reads it
    migrate.upgrade(empty_database, "0032_i34_onboarding")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic = insert(conn, "clinics", name="Old clinic", timezone="UTC")
            source = insert(conn, "lead_sources", clinic_id=clinic, name="Web", category="WEBSITE")
            user = insert(
                conn, "users", clinic_id=clinic, email="a@example.org", name="A", role="clinic_admin"
            )
            lead = insert(
                conn, "leads", clinic_id=clinic, source_id=source, status="LOST", pipeline_stage="new_lead",
                first_name="Jane", address_line1="12 Orchard Lane", source_detail="DOB 2011-03-14",
                lost_notes="Moved to Ohio",
            )  # fmt: skip
            insert(conn, "lead_activities", clinic_id=clinic, lead_id=lead, type="NOTE", notes="sleep apnoea",
                   occurred_at=NOW, created_at=NOW, actor="user:1")  # fmt: skip
            insert(conn, "lead_activities", clinic_id=clinic, lead_id=lead, type="TASK_COMPLETED",
                   details={"task_id": 1, "title": "Call Jane about her braces"}, occurred_at=NOW,
                   created_at=NOW, actor="user:1")  # fmt: skip
            insert(conn, "lead_tasks", clinic_id=clinic, lead_id=lead, title="Call Jane about her braces",
                   description="jaw clicks", assigned_to_id=user, type="CALL", priority="NORMAL",
                   status="PENDING", dedupe_key="t1", due_at=NOW)  # fmt: skip
            insert(conn, "notifications", clinic_id=clinic, lead_id=lead, to_address="jane@example.org",
                   channel="email", kind="message", title="Hi Jane", body="About the latex",
                   context={"first_name": "Jane", "lead_id": lead}, status="sent",
                   dedupe_key="n1")  # fmt: skip
            insert(conn, "audit_events", clinic_id=clinic, actor="user:1", action="lead.update",
                   subject_type="lead", subject_id=str(lead), before={"notes": "latex"}, after=None,
                   at=NOW)  # fmt: skip
            insert(conn, "events", clinic_id=clinic, type="lead.lost", subject_type="lead", subject_id=lead,
                   payload={"lead_id": lead, "notes": "Moved to Ohio"}, occurred_at=NOW)  # fmt: skip

        migrate.upgrade(empty_database)

        with engine.connect() as conn:
            raw = json.dumps(
                [[str(v) for v in row] for table in TABLES
                 for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]
            )  # fmt: skip
        assert [s for s in SECRETS if s in raw] == []

        use_keys(engine, key)  # what create_app does for its engine
        with sa.orm.Session(engine) as session:
            stored = session.get(Lead, lead)
            assert (stored.address_line1, stored.source_detail, stored.lost_notes) == (
                "12 Orchard Lane", "DOB 2011-03-14", "Moved to Ohio",
            )  # fmt: skip
            notes = dict(session.execute(sa.select(LeadActivity.type, LeadActivity.notes)).all())
            assert notes["NOTE"] == "sleep apnoea"
            details = session.scalar(
                sa.select(LeadActivity.details).where(LeadActivity.type == "TASK_COMPLETED")
            )
            assert details == {"task_id": 1}  # the title no longer copied into clear details
            task = session.scalars(sa.select(LeadTask)).one()
            assert (task.title, task.description) == ("Call Jane about her braces", "jaw clicks")
            message = session.scalars(sa.select(Notification)).one()
            assert (message.to_address, message.title, message.body) == (
                "jane@example.org",
                "Hi Jane",
                "About the latex",
            )
            assert message.context == {"first_name": "Jane", "lead_id": lead}
            audit = session.scalars(sa.select(AuditEvent)).one()
            assert (audit.before, audit.after) == ({"notes": "latex"}, None)
            assert session.scalars(sa.select(DomainEvent)).one().payload == {
                "lead_id": lead,
                "notes": "Moved to Ohio",
            }

        migrate.downgrade(empty_database, "0032_i34_onboarding")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT title, description FROM lead_tasks")).one() == (
                "Call Jane about her braces", "jaw clicks",
            )  # fmt: skip
            assert conn.execute(sa.text("SELECT address_line1, lost_notes FROM leads")).one() == (
                "12 Orchard Lane", "Moved to Ohio",
            )  # fmt: skip
    finally:
        engine.dispose()
