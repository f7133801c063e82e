"""PHI at rest: free text and copies of a lead's data encrypted; erasure's tombstone mark, the
suppression list and its per-clinic key; the key rotation's progress

Every value that may hold health information becomes a Fernet token under the configured PHI key
(PHI_ENCRYPTION_KEY, else the key file under var/), as app/platform/db/protected.py writes them: text
columns in place, JSON columns in place as a JSON string holding the token, and narrow text
columns (task and message titles, message addresses, import row messages) moved to `*_encrypted`
text columns. Rows are rewritten in batches by primary key. TASK_COMPLETED activities no longer
copy the task's title into their (clear) details.

Revision ID: 0033_i34_phi_at_rest
Revises: 0032_i34_onboarding
Create Date: 2026-11-25 14:30:00
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0033_i34_phi_at_rest"
down_revision = "0032_i34_onboarding"
branch_labels = None
depends_on = None

BATCH = 1000
JSON = sa.JSON().with_variant(JSONB(), "postgresql")

# (table, primary key, column) of text columns encrypted in place.
TEXT_IN_PLACE = [
    ("lead_activities", ("id",), "notes"),
    ("lead_tasks", ("id",), "description"),
    ("lead_tasks", ("id",), "outcome_notes"),
    ("leads", ("id",), "lost_notes"),
    ("notifications", ("id",), "body"),
    ("notifications", ("id",), "body_html"),
    ("idempotency_keys", ("id",), "response_body"),
]
# JSON columns whose value becomes a JSON string holding the token of the value's JSON text.
JSON_IN_PLACE = [
    ("audit_events", ("id",), "before"),
    ("audit_events", ("id",), "after"),
    ("events", ("id",), "payload"),
    ("webhook_deliveries", ("id",), "payload"),
    ("notifications", ("id",), "context"),
    ("bulk_job_rows", ("bulk_job_id", "row"), "matches"),
]
# (table, primary key, old column, new column, NOT NULL) moved to a text column of its own.
MOVED = [
    ("lead_tasks", ("id",), "title", "title_encrypted", True),
    ("notifications", ("id",), "title", "title_encrypted", True),
    ("notifications", ("id",), "to_address", "to_address_encrypted", False),
    ("bulk_job_rows", ("bulk_job_id", "row"), "message", "message_encrypted", False),
    ("leads", ("id",), "address_line1", "address_line1_encrypted", False),
    ("leads", ("id",), "address_line2", "address_line2_encrypted", False),
    ("leads", ("id",), "source_detail", "source_detail_encrypted", False),
]


def _cipher():
    from cryptography.fernet import Fernet, MultiFernet

    from app.platform.config import load_phi_key

    keys = [k.strip() for k in load_phi_key().split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


class _Lazy:
    """The cipher, loaded on the first row that needs it: an empty database needs no key."""

    def __init__(self):
        self.cipher = None

    def encrypt(self, text: str) -> str:
        self.cipher = self.cipher or _cipher()
        return self.cipher.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        self.cipher = self.cipher or _cipher()
        return self.cipher.decrypt(token.encode()).decode()


def _rewrite(connection, name: str, key: tuple, source: str, target: str, change, type_=sa.Text) -> None:
    """Set `target` to change(`source`) on every row where `source` is not null, batch by batch."""
    columns = dict.fromkeys((*key, source, target))
    table = sa.table(name, *(sa.column(c, type_ if c in (source, target) else None) for c in columns))
    pk = [table.c[k] for k in key]
    last = None
    while True:
        query = sa.select(*pk, table.c[source]).where(table.c[source].is_not(None)).order_by(*pk).limit(BATCH)
        if last is not None:
            query = query.where(sa.tuple_(*pk) > sa.tuple_(*last) if len(pk) > 1 else pk[0] > last[0])
        rows = connection.execute(query).all()
        for row in rows:
            value = row[-1]
            where = [c == v for c, v in zip(pk, row[:-1])]
            connection.execute(table.update().where(*where).values({target: change(value)}))
        if len(rows) < BATCH:
            return
        last = list(rows[-1][:-1])


def _drop_column(table: str, name: str) -> None:
    # SQLite: ALTER TABLE ... DROP COLUMN (3.35+) in place; a batch would copy the table, and
    # dropping the old one fails on the rows that reference it (foreign keys are on).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
    else:
        op.drop_column(table, name)


def _strip_task_titles(connection) -> None:
    activities = sa.table("lead_activities", sa.column("id"), sa.column("type"), sa.column("details", JSON))
    rows = connection.execute(
        sa.select(activities.c.id, activities.c.details).where(activities.c.type == "TASK_COMPLETED")
    ).all()
    for activity_id, details in rows:
        if isinstance(details, dict) and "title" in details:
            kept = {k: v for k, v in details.items() if k != "title"}
            connection.execute(activities.update().where(activities.c.id == activity_id).values(details=kept))


def upgrade() -> None:
    op.add_column("leads", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("clinics", sa.Column("suppression_key", sa.Text(), nullable=True))
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_suppressions_clinic_id_clinics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("clinic_id", "digest", name=op.f("uq_suppressions_clinic_id_digest")),
    )
    op.create_table(
        "phi_rotation_progress",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("after", JSON, nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("table_name", name=op.f("pk_phi_rotation_progress")),
    )
    connection, cipher = op.get_bind(), _Lazy()
    for table, key, old, new, not_null in MOVED:
        op.add_column(
            table, sa.Column(new, sa.Text(), nullable=not not_null, server_default="" if not_null else None)
        )
        _rewrite(connection, table, key, old, new, cipher.encrypt)
        _drop_column(table, old)
    for table, key, column in TEXT_IN_PLACE:
        _rewrite(connection, table, key, column, column, cipher.encrypt)
    for table, key, column in JSON_IN_PLACE:
        _rewrite(connection, table, key, column, column, lambda v: cipher.encrypt(json.dumps(v)), type_=JSON)
    _strip_task_titles(connection)


def downgrade() -> None:
    connection, cipher = op.get_bind(), _Lazy()
    for table, key, column in JSON_IN_PLACE:
        _rewrite(connection, table, key, column, column, lambda v: json.loads(cipher.decrypt(v)), type_=JSON)
    for table, key, column in TEXT_IN_PLACE:
        _rewrite(connection, table, key, column, column, cipher.decrypt)
    lengths = {"lead_tasks.title": 200, "notifications.title": 300, "notifications.to_address": 254,
               "bulk_job_rows.message": 500,
               "leads.address_line1": 200, "leads.address_line2": 200, "leads.source_detail": 500}  # fmt: skip
    for table, key, old, new, not_null in MOVED:
        op.add_column(
            table,
            sa.Column(
                old,
                sa.String(length=lengths[f"{table}.{old}"]),
                nullable=not not_null,
                server_default="" if not_null else None,
            ),
        )
        _rewrite(connection, table, key, new, old, cipher.decrypt)
        _drop_column(table, new)
    op.drop_table("phi_rotation_progress")
    op.drop_table("suppressions")
    _drop_column("clinics", "suppression_key")
    _drop_column("leads", "erased_at")
