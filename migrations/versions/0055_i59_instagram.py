"""instagram_accounts (a clinic's connected Instagram professional account, its token encrypted) and
instagram_contacts (the Instagram users who wrote to it, by scoped id, and their leads)

Revision ID: 0055_i59_instagram
Revises: 0054_i59_conversations
Create Date: 2026-11-27 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0055_i59_instagram"
down_revision = "0054_i59_conversations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    op.create_table(
        "instagram_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("token_hint", sa.String(8), nullable=False),
        sa.Column("connected_at", moment, nullable=False),
        sa.Column("connected_by", sa.String(64), nullable=False),
        sa.Column("last_used_at", moment, nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_instagram_accounts_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instagram_accounts")),
        sa.UniqueConstraint("clinic_id", name=op.f("uq_instagram_accounts_clinic_id")),
        sa.UniqueConstraint("account_id", name=op.f("uq_instagram_accounts_account_id")),
    )
    op.create_table(
        "instagram_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("igsid", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("handle", sa.String(64), nullable=True),
        sa.Column("last_inbound_at", moment, nullable=True),
        sa.Column("created_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_instagram_contacts_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_instagram_contacts_lead_id_leads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instagram_contacts")),
        sa.UniqueConstraint("clinic_id", "igsid", name=op.f("uq_instagram_contacts_clinic_id_igsid")),
    )
    op.create_index(op.f("ix_instagram_contacts_lead_id"), "instagram_contacts", ["lead_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_instagram_contacts_lead_id"), table_name="instagram_contacts")
    op.drop_table("instagram_contacts")
    op.drop_table("instagram_accounts")
