"""leads: trigram indexes for search as you type (GET /api/leads?q=), PostgreSQL only

`LIKE '%4155550134%'` over every lead of a clinic was a scan (bench leads: median 357 ms at 100,000
leads). pg_trgm's GIN index answers it from the index. The expressions are the ones
app/platform/db/search.py `search_text` builds over the columns app/domains/leads/models.py names:
the contact details, and the patient's name (read only for `lead:phi`). pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may
create it. SQLite keeps scanning (the embedded default holds a laptop's few leads).

Revision ID: 0053_i64_search_trigrams
Revises: 0052_i62_booked_via
Create Date: 2026-11-27 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0053_i64_search_trigrams"
down_revision = "0052_i62_booked_via"
branch_labels = None
depends_on = None

CONTACT = (
    "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '')"
    " || ' ' || coalesce(phone, '') || ' ' || coalesce(phone_alt, ''))"
)
PATIENT = "lower(coalesce(patient_first_name, '') || ' ' || coalesce(patient_last_name, ''))"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        f"CREATE INDEX IF NOT EXISTS ix_leads_contact_search ON leads USING gin (({CONTACT}) gin_trgm_ops)"
    )
    op.execute(
        f"CREATE INDEX IF NOT EXISTS ix_leads_patient_search ON leads USING gin (({PATIENT}) gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_leads_patient_search")
    op.execute("DROP INDEX IF EXISTS ix_leads_contact_search")
