"""leads: patient_age_group, the patient's age group at capture (child, teen, adult; null: unknown),
backfilled from the encrypted date of birth

Revision ID: 0029_i19_lead_age_group
Revises: 0028_i17b_treatment_value
Create Date: 2026-11-23 09:20:00

The lead score reads the age group of every mature lead of a clinic each night; decrypting a date
of birth per lead was most of its cost. The bands are frozen here (app/domains/leads/rules.py defines them
for the code): under 13 a child, under 18 a teen, else an adult, by age in days / 365.25 at the
lead's capture (its created_at, UTC). Dates of birth are decrypted with the configured PHI key
(PHI_ENCRYPTION_KEY, else the key file under var/: the key the app itself uses), in batches.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from alembic import op
from cryptography.fernet import Fernet, MultiFernet

import app.platform.db

revision = "0029_i19_lead_age_group"
down_revision = "0028_i17b_treatment_value"
branch_labels = None
depends_on = None

BATCH = 1000


def _cipher() -> MultiFernet:
    from app.platform.config import load_phi_key

    keys = [k.strip() for k in load_phi_key().split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def _age_group(born: date, captured_on: date) -> str | None:
    age = (captured_on - born).days / 365.25
    if age < 0:
        return None
    return "child" if age < 13 else "teen" if age < 18 else "adult"


def _backfill(connection) -> None:
    leads = sa.table(
        "leads",
        sa.column("id", sa.Integer),
        sa.column("created_at", app.platform.db.UTCDateTime(timezone=True)),
        sa.column("patient_dob_encrypted", sa.Text),
        sa.column("patient_age_group", sa.String),
    )
    update = (
        leads.update()
        .where(leads.c.id == sa.bindparam("lead_id"))
        .values(patient_age_group=sa.bindparam("group"))
    )
    cipher, last = None, 0
    while True:
        rows = connection.execute(
            sa.select(leads.c.id, leads.c.created_at, leads.c.patient_dob_encrypted)
            .where(leads.c.id > last, leads.c.patient_dob_encrypted.is_not(None))
            .order_by(leads.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        cipher = cipher or _cipher()
        values = []
        for lead_id, created_at, token in rows:
            born = date.fromisoformat(cipher.decrypt(token.encode()).decode())
            values.append({"lead_id": lead_id, "group": _age_group(born, created_at.date())})
        connection.execute(update, values)  # one executemany per batch
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("patient_age_group", sa.String(length=8), nullable=True))
    _backfill(op.get_bind())


def downgrade() -> None:
    # SQLite: ALTER TABLE ... DROP COLUMN in place (a batch would copy the table; see 0025).
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE leads DROP COLUMN patient_age_group")
        return
    op.drop_column("leads", "patient_age_group")
