"""What the lead says about contact and what it keeps secret: `last_contacted_at` (issue 14 item 9,
from the one vocabulary of contact) and `notes` (health concerns) encrypted at rest (item 12)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.events.models import DomainEvent
from tests.leadkit import create_lead, get_lead

CONCERN = "Overbite; allergic to latex; anxious about braces"


def log(client, tenant, lead_id: int, **body) -> dict:
    resp = client.post(
        f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers("treatment_coordinator")
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def last_contacted(client, tenant, lead_id: int) -> datetime | None:
    value = get_lead(client, tenant, lead_id).get_json()["last_contacted_at"]
    return datetime.fromisoformat(value) if value else None


def test_last_contacted_at_moves_with_contacts_only(client, tenant):
    lead = create_lead(client, tenant)
    assert last_contacted(client, tenant, lead["id"]) is None
    now = clock.now().replace(microsecond=0)
    # Attempts and notes are no contact.
    log(client, tenant, lead["id"], type="PHONE_CALL", direction="OUTBOUND", outcome="voicemail")
    log(client, tenant, lead["id"], type="EMAIL", direction="OUTBOUND", notes="Brochure")
    log(client, tenant, lead["id"], type="NOTE", notes="Mum prefers afternoons")
    assert last_contacted(client, tenant, lead["id"]) is None
    inbound = now - timedelta(hours=2)
    log(client, tenant, lead["id"], type="SMS", direction="INBOUND", occurred_at=inbound.isoformat())
    assert last_contacted(client, tenant, lead["id"]) == inbound
    # A contact logged late, with an earlier time, does not move it back; a later one moves it on.
    log(client, tenant, lead["id"], type="IN_PERSON", occurred_at=(now - timedelta(days=1)).isoformat())
    assert last_contacted(client, tenant, lead["id"]) == inbound
    spoke = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "spoke"}
    log(client, tenant, lead["id"], **spoke, occurred_at=now.isoformat())
    assert last_contacted(client, tenant, lead["id"]) == now
    listed = client.get("/api/leads", headers=tenant.headers()).get_json()
    assert datetime.fromisoformat(listed[0]["last_contacted_at"]) == now


def _raw_notes(db, lead_id: int) -> str | None:
    with db.engine.connect() as conn:
        query = sa.text("SELECT notes_encrypted FROM leads WHERE id = :id")
        return conn.execute(query, {"id": lead_id}).scalar()


def test_notes_are_encrypted_at_rest_and_readers_get_them_back(app, client, tenant, db):
    lead = create_lead(client, tenant, notes=CONCERN)
    stored = _raw_notes(db, lead["id"])
    assert CONCERN not in stored and "latex" not in stored
    key = app.config["SETTINGS"].resolved_phi_key()
    assert Fernet(key.encode()).decrypt(stored.encode()).decode() == CONCERN
    for role in ("treatment_coordinator", "clinic_admin"):
        assert get_lead(client, tenant, lead["id"], role=role).get_json()["notes"] == CONCERN
    assert "notes" not in get_lead(client, tenant, lead["id"], role="front_desk").get_json()
    changed = client.put(f"/api/leads/{lead['id']}", json={"notes": "Underbite"}, headers=tenant.headers())
    assert changed.status_code == 200 and changed.get_json()["notes"] == "Underbite"
    assert "Underbite" not in _raw_notes(db, lead["id"])


def test_notes_never_reach_the_audit_trail_or_the_event_outbox(client, tenant, db):
    lead = create_lead(client, tenant, notes=CONCERN)
    client.put(f"/api/leads/{lead['id']}", json={"notes": "Underbite, latex"}, headers=tenant.headers())
    # Read decrypted (audit details and event payloads are encrypted at rest): not even there.
    with db.unit_of_work() as session:
        audit_rows = session.execute(sa.select(AuditEvent.action, AuditEvent.before, AuditEvent.after)).all()
        event_rows = session.execute(sa.select(DomainEvent.payload)).all()
    dump = json.dumps([[str(v) for v in row] for row in audit_rows + event_rows])
    assert "latex" not in dump and "Overbite" not in dump and "Underbite" not in dump
    [update] = [row for row in audit_rows if row[0] == "lead.update"]
    assert "[protected]" in str(update[2])
