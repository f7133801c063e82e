"""signing_secrets (one secret per integration, scoped to the endpoints it may call) and
clinics.webhook_secret_retired_at (the single web-form secret, retired once a clinic rotates)

Revision ID: 0047_i58_signing_secrets
Revises: 0046_i58_second_factor
Create Date: 2026-11-27 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0047_i58_signing_secrets"
down_revision = "0046_i58_second_factor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    op.add_column("clinics", sa.Column("webhook_secret_retired_at", moment, nullable=True))
    op.create_table(
        "signing_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("scopes", app.platform.db.JSONType, nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.Column("last_used_at", moment, nullable=True),
        sa.Column("expires_at", moment, nullable=True),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", moment, nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_signing_secrets_clinic_id_clinics")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_signing_secrets_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"],
            ["signing_secrets.id"],
            name=op.f("fk_signing_secrets_replaced_by_id_signing_secrets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_secrets")),
        sa.UniqueConstraint("key_id", name=op.f("uq_signing_secrets_key_id")),
    )
    op.create_index(op.f("ix_signing_secrets_clinic_id"), "signing_secrets", ["clinic_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_signing_secrets_clinic_id"), table_name="signing_secrets")
    op.drop_table("signing_secrets")
    op.drop_column("clinics", "webhook_secret_retired_at")
