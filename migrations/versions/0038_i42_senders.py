"""Sender identity owned: clinics' SMS number, Messaging Service SID and email sender domain unique by
database; the platform's verified sender domains; provider deliveries remembered (replays refused)

Revision ID: 0038_i42_senders
Revises: 0037_i33_notification_opened_at
Create Date: 2026-11-26 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0038_i42_senders"
down_revision = "0037_i33_notification_opened_at"
branch_labels = None
depends_on = None

IDENTITY = (  # the settings key, its column
    ("sms_number", "sms_number"),
    ("sms_messaging_service_sid", "sms_messaging_service_sid"),
    ("email_from", "email_sender_domain"),
)

clinics_t = sa.table(
    "clinics",
    sa.column("id", sa.Integer),
    sa.column("settings", app.platform.db.JSONType),
    sa.column("sms_number", sa.String),
    sa.column("sms_messaging_service_sid", sa.String),
    sa.column("email_sender_domain", sa.String),
)


def upgrade() -> None:
    moment = app.platform.db.UTCDateTime(timezone=True)
    # Plain ADD COLUMN and CREATE INDEX on both engines: a batch rebuild would drop a table others reference.
    op.add_column("clinics", sa.Column("sms_number", sa.String(20), nullable=True))
    op.add_column("clinics", sa.Column("sms_messaging_service_sid", sa.String(34), nullable=True))
    op.add_column("clinics", sa.Column("email_sender_domain", sa.String(253), nullable=True))
    _copy_identities()
    for _, column in IDENTITY:
        op.create_index(f"uq_clinics_{column}", "clinics", [column], unique=True)
    op.create_table(
        "verified_sender_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("verified_at", moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_verified_sender_domains_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verified_sender_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_verified_sender_domains_domain")),
    )
    op.create_index(op.f("ix_verified_sender_domains_clinic_id"), "verified_sender_domains", ["clinic_id"])
    op.create_table(
        "provider_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("received_at", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_deliveries")),
        sa.UniqueConstraint(
            "provider", "delivery_id", name=op.f("uq_provider_deliveries_provider_delivery_id")
        ),
    )
    op.create_index(op.f("ix_provider_deliveries_received_at"), "provider_deliveries", ["received_at"])


def _copy_identities() -> None:
    """Each clinic's sender identity from its settings into the new columns. Where two clinics held
    the same one (the application never stopped it for a Messaging Service or a domain), the older
    clinic keeps it and the later one loses it from its settings: it sends from the shared sender
    until it sets one that is its own."""
    conn = op.get_bind()
    taken: set[tuple[str, str]] = set()
    for clinic_id, settings in conn.execute(sa.select(clinics_t.c.id, clinics_t.c.settings).order_by("id")):
        settings = dict(settings or {})
        values, dropped = {}, False
        for key, column in IDENTITY:
            value = settings.get(key)
            if not isinstance(value, str) or not value.strip():
                continue
            owned = value.rpartition("@")[2].strip().lower().rstrip(".") if key == "email_from" else value
            if (column, owned) in taken:
                settings.pop(key)
                dropped = True
                continue
            taken.add((column, owned))
            values[column] = owned
        if dropped:
            values["settings"] = settings
        if values:
            conn.execute(sa.update(clinics_t).where(clinics_t.c.id == clinic_id).values(**values))


def downgrade() -> None:
    op.drop_index(op.f("ix_provider_deliveries_received_at"), table_name="provider_deliveries")
    op.drop_table("provider_deliveries")
    op.drop_index(op.f("ix_verified_sender_domains_clinic_id"), table_name="verified_sender_domains")
    op.drop_table("verified_sender_domains")
    for _, column in IDENTITY:
        op.drop_index(f"uq_clinics_{column}", table_name="clinics")
        op.drop_column("clinics", column)
