"""Protected fields (DOB, insurance member id): encrypted at rest, decrypted for readers, never logged."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.platform.audit.models import AuditEvent
from app.platform.events.models import DomainEvent
from tests.leadkit import create_lead, get_lead

DOB = "2012-06-15"
MEMBER_ID = "XZP-4471-0093"


def _raw_row(db, lead_id: int):
    with db.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT patient_dob_encrypted, insurance_member_id_encrypted, patient_dob_index "
                "FROM leads WHERE id = :id"
            ),
            {"id": lead_id},
        ).one()


def test_the_raw_columns_hold_fernet_tokens_not_the_plaintext(app, client, tenant, db):
    lead = create_lead(
        client, tenant, patient_dob=DOB, insurance_member_id=MEMBER_ID, insurance_carrier="Delta"
    )
    dob_cipher, member_cipher, dob_index = _raw_row(db, lead["id"])
    for cipher, plain in ((dob_cipher, DOB), (member_cipher, MEMBER_ID)):
        assert plain not in cipher
        assert plain.replace("-", "") not in cipher
        # It is a real Fernet token under the configured key, not an encoding.
        key = app.config["SETTINGS"].resolved_phi_key()
        assert Fernet(key.encode()).decrypt(cipher.encode()).decode() == plain
    assert DOB not in dob_index and len(dob_index) == 64


def test_the_same_value_encrypts_differently_each_time(client, tenant, db):
    a = create_lead(client, tenant, patient_dob=DOB)
    b = create_lead(client, tenant, first_name="Other", patient_dob=DOB)
    assert _raw_row(db, a["id"])[0] != _raw_row(db, b["id"])[0]
    # ... while the blind index is equal, which is what finds same-DOB leads.
    assert _raw_row(db, a["id"])[2] == _raw_row(db, b["id"])[2]


def test_blind_indexes_differ_between_clinics(client, tenant, make_tenant, db):
    other = make_tenant("Other")
    a = create_lead(client, tenant, patient_dob=DOB)
    b = create_lead(client, other, patient_dob=DOB)
    assert _raw_row(db, a["id"])[2] != _raw_row(db, b["id"])[2]


def test_readers_with_lead_phi_get_the_decrypted_values_and_the_front_desk_none(client, tenant):
    lead = create_lead(client, tenant, patient_dob=DOB, insurance_member_id=MEMBER_ID)
    for role in ("clinic_admin", "treatment_coordinator"):
        body = get_lead(client, tenant, lead["id"], role=role).get_json()
        assert (body["patient_dob"], body["insurance_member_id"]) == (DOB, MEMBER_ID)
        listed = client.get("/api/leads", headers=tenant.headers(role)).get_json()
        assert listed[0]["patient_dob"] == DOB
    body = get_lead(client, tenant, lead["id"], role="front_desk").get_json()
    listed = client.get("/api/leads", headers=tenant.headers("front_desk")).get_json()[0]
    for answer in (body, listed):
        assert answer["id"] == lead["id"]
        assert "patient_dob" not in answer and "insurance_member_id" not in answer


def test_protected_values_never_reach_the_audit_trail_or_the_event_outbox(client, tenant, db):
    lead = create_lead(client, tenant, patient_dob=DOB, insurance_member_id=MEMBER_ID)
    client.put(
        f"/api/leads/{lead['id']}",
        json={"patient_dob": "2012-06-16", "insurance_member_id": "NEW-123"},
        headers=tenant.headers(),
    )
    # Read decrypted (audit details and event payloads are encrypted at rest): not even there.
    with db.unit_of_work() as session:
        audit_rows = session.execute(sa.select(AuditEvent.action, AuditEvent.before, AuditEvent.after)).all()
        event_rows = session.execute(sa.select(DomainEvent.payload)).all()
    dump = json.dumps([[str(v) for v in row] for row in audit_rows + event_rows])
    for secret in (DOB, "2012-06-16", MEMBER_ID, "NEW-123"):
        assert secret not in dump
    updates = [row for row in audit_rows if row[0] == "lead.update"]
    assert len(updates) == 1
    assert "[protected]" in str(updates[0][2])
