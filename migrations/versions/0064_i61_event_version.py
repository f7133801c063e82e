"""Events as types (issue 61 item 2): each outbox row keeps its type's version beside its name, so a
type whose fields change meaning can still read the rows written before. The rows already stored
were written by version 1 of every type.

Expand-only: one column with a default; older code writing events without it stores 1.

Revision ID: 0064_i61_event_version
Revises: 0063_i64_report_indexes
Create Date: 2026-11-28 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0064_i61_event_version"
down_revision = "0063_i64_report_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("version", sa.SmallInteger(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("version")
