"""notifications.to_address_index: a blind index of the recipient (the console's recipient filter);
an email whose outcome was unknown becomes `unknown` like such an SMS (never in a bulk retry)

The index is the keyed HMAC app/domains/outbound/recipients.py writes: of the address trimmed (an
email also lower-cased), within the clinic, under the first PHI key (PHI_ENCRYPTION_KEY, else the key
file under var/). Existing rows get it here, batch by batch. An email stored `failed` with an error
beginning "outcome unknown" (how the sender recorded it until now) is set `unknown`.

Revision ID: 0039_i42_unknown_outcome
Revises: 0038_i42_senders
Create Date: 2026-11-25 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0039_i42_unknown_outcome"
down_revision = "0038_i42_senders"
branch_labels = None
depends_on = None

BATCH = 1000
PURPOSE = "notification_to"  # app/domains/outbound/recipients.py
OUTCOME_UNKNOWN = "outcome unknown"  # app/domains/outbound/worker/sending.py

notifications = sa.table(
    "notifications",
    sa.column("id", sa.Integer),
    sa.column("clinic_id", sa.Integer),
    sa.column("to_address_encrypted", sa.Text),
    sa.column("to_address_index", sa.String),
    sa.column("channel", sa.String),
    sa.column("status", sa.String),
    sa.column("last_error", sa.Text),
)


def _normalized(address: str) -> str:
    address = address.strip()
    return address.lower() if "@" in address else address


def _backfill_indexes(connection) -> None:
    from app.platform import phi
    from app.platform.config import load_phi_key

    keys, last = None, 0
    while True:
        rows = connection.execute(
            sa.select(notifications.c.id, notifications.c.clinic_id, notifications.c.to_address_encrypted)
            .where(notifications.c.id > last, notifications.c.to_address_encrypted.is_not(None))
            .order_by(notifications.c.id)
            .limit(BATCH)
        ).all()
        for row_id, clinic_id, token in rows:
            keys = keys or load_phi_key()  # an empty database needs no key
            address = phi.decrypt(token, keys=keys).strip()
            if address:
                index = phi.blind_index(
                    keys=keys, purpose=PURPOSE, scope=str(clinic_id), value=_normalized(address)
                )
                connection.execute(
                    notifications.update().where(notifications.c.id == row_id).values(to_address_index=index)
                )
        if len(rows) < BATCH:
            return
        last = rows[-1][0]


def upgrade() -> None:
    # Plain ADD COLUMN on both engines: a batch rebuild would drop a table others reference.
    op.add_column("notifications", sa.Column("to_address_index", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_notifications_clinic_to_address_index", "notifications", ["clinic_id", "to_address_index"]
    )
    connection = op.get_bind()
    _backfill_indexes(connection)
    connection.execute(
        notifications.update()
        .where(
            notifications.c.channel == "email",
            notifications.c.status == "failed",
            notifications.c.last_error.startswith(OUTCOME_UNKNOWN, autoescape=True),
        )
        .values(status="unknown")
    )


def downgrade() -> None:
    connection = op.get_bind()
    connection.execute(
        notifications.update()
        .where(notifications.c.channel == "email", notifications.c.status == "unknown")
        .values(status="failed")
    )
    op.drop_index("ix_notifications_clinic_to_address_index", table_name="notifications")
    if connection.dialect.name == "sqlite":  # in place (3.35+): a batch copy would break references
        op.execute("ALTER TABLE notifications DROP COLUMN to_address_index")
    else:
        op.drop_column("notifications", "to_address_index")
