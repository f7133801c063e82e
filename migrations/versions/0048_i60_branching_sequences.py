"""Branching sequences and entry/exit criteria (issue 60): sequences.entry_conditions and
sequences.exit_conditions (condition lists, as rules'), sequence_enrollments.path (the steps an
enrollment took and what chose each branch)

Revision ID: 0048_i60_branching_sequences
Revises: 0047_i58_signing_secrets
Create Date: 2026-11-27 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.platform.db

revision = "0048_i60_branching_sequences"
down_revision = "0047_i58_signing_secrets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Expand only: nullable columns the previous release never reads (a null is "no criteria", "no path").
    op.add_column("sequences", sa.Column("entry_conditions", app.platform.db.JSONType, nullable=True))
    op.add_column("sequences", sa.Column("exit_conditions", app.platform.db.JSONType, nullable=True))
    op.add_column("sequence_enrollments", sa.Column("path", app.platform.db.JSONType, nullable=True))


def downgrade() -> None:
    op.drop_column("sequence_enrollments", "path")
    op.drop_column("sequences", "exit_conditions")
    op.drop_column("sequences", "entry_conditions")
