"""users.email unique within a clinic (uq_users_email_clinic_id), no longer across clinics

Revision ID: 0040_i42_user_email_per_clinic
Revises: 0039_i42_unknown_outcome
Create Date: 2026-11-25 23:00:00

A clinic's admin creating a user whose email another clinic uses got a 409: the platform-wide
constraint told one tenant about another's users. The new constraint leads with the email, so
login still finds an email's accounts (one per clinic) by index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0040_i42_user_email_per_clinic"
down_revision = "0039_i42_unknown_outcome"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot drop a constraint in place: batch mode rebuilds the table (as 0032 did).
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email", type_="unique")
        batch.create_unique_constraint("uq_users_email_clinic_id", ["email", "clinic_id"])


def downgrade() -> None:
    shared = op.get_bind().scalar(
        sa.text("SELECT email FROM users GROUP BY email HAVING COUNT(*) > 1 LIMIT 1")
    )
    if shared is not None:
        # Stop before the rebuild rather than fail inside it: which account keeps the email is a
        # person's decision (change or remove the others first).
        raise RuntimeError("cannot downgrade: an email has accounts in several clinics")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_email_clinic_id", type_="unique")
        batch.create_unique_constraint("uq_users_email", ["email"])
