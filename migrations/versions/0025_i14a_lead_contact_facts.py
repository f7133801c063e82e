"""leads: last_contacted_at (backfilled from the activity log), escalated_at, and notes (health
concerns, PHI) encrypted at rest like patient_dob: existing notes are encrypted in place

Revision ID: 0025_i14a_lead_contact_facts
Revises: 0024_i14b_staleness
Create Date: 2026-11-23 06:50:00

The contact shapes are frozen here as SQL (app/domains/activities/rules.py defines them for the code):
an IN_PERSON meeting, an INBOUND call/email/SMS, an OUTBOUND call answered (spoke,
callback_requested). Notes are encrypted with the configured PHI key (PHI_ENCRYPTION_KEY, else the
key file under var/: the key the app itself uses), the first of several comma-separated keys, as
Fernet tokens (app/platform/phi.py's format), in batches.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet

import app.platform.db

revision = "0025_i14a_lead_contact_facts"
down_revision = "0024_i14b_staleness"
branch_labels = None
depends_on = None

CONTACT = (
    "(a.type = 'IN_PERSON'"
    " OR (a.type IN ('PHONE_CALL', 'EMAIL', 'SMS') AND a.direction = 'INBOUND')"
    " OR (a.type = 'PHONE_CALL' AND a.direction = 'OUTBOUND' AND a.outcome IN ('spoke', 'callback_requested')))"
)
BACKFILL = {
    "postgresql": f"""
        UPDATE leads SET last_contacted_at = f.last
        FROM (SELECT a.lead_id, max(a.occurred_at) AS last FROM lead_activities a
              WHERE {CONTACT} GROUP BY a.lead_id) AS f
        WHERE leads.id = f.lead_id
    """,
    "sqlite": f"""
        UPDATE leads SET last_contacted_at = (
            SELECT max(a.occurred_at) FROM lead_activities a WHERE a.lead_id = leads.id AND {CONTACT})
    """,
}
BATCH = 1000


def _cipher() -> MultiFernet:
    from app.platform.config import load_phi_key

    keys = [k.strip() for k in load_phi_key().split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _rewrite(connection, source: str, target: str, change) -> None:
    """Copy `source` into `target` through `change` (encrypt or decrypt), batch by batch by id."""
    leads = sa.table("leads", sa.column("id", sa.Integer), sa.column(source, sa.Text), sa.column(target, sa.Text))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(leads.c.id, leads.c[source])
            .where(leads.c.id > last, leads.c[source].is_not(None))
            .order_by(leads.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for lead_id, value in rows:
            connection.execute(leads.update().where(leads.c.id == lead_id).values({target: change(value)}))
        last = rows[-1][0]


def _drop_columns(*names: str) -> None:
    # SQLite: ALTER TABLE ... DROP COLUMN (3.35+) in place; a batch would copy the table, and
    # dropping the old one fails on the rows that reference leads (foreign keys are on).
    if op.get_bind().dialect.name == "sqlite":
        for name in names:
            op.execute(f"ALTER TABLE leads DROP COLUMN {name}")
        return
    for name in names:
        op.drop_column("leads", name)


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("last_contacted_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("escalated_at", app.platform.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("notes_encrypted", sa.Text(), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.text(BACKFILL[connection.dialect.name]))
    has_notes = connection.execute(sa.text("SELECT 1 FROM leads WHERE notes IS NOT NULL LIMIT 1")).first()
    if has_notes:
        cipher = _cipher()
        _rewrite(connection, "notes", "notes_encrypted", lambda text: cipher.encrypt(text.encode()).decode())
    _drop_columns("notes")


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
    connection = op.get_bind()
    has_notes = connection.execute(
        sa.text("SELECT 1 FROM leads WHERE notes_encrypted IS NOT NULL LIMIT 1")
    ).first()
    if has_notes:
        cipher = _cipher()
        _rewrite(connection, "notes_encrypted", "notes", lambda token: cipher.decrypt(token.encode()).decode())
    _drop_columns("notes_encrypted", "escalated_at", "last_contacted_at")
