"""Test-only revision (tests/reliability/test_rolling_upgrade.py): an expand step as a release ships
one, run online while the old processes serve. A nullable column without a default changes only the
catalog (no table rewrite); its index is built CONCURRENTLY (no lock that stops writes).

It sits on top of whatever the product's migrations end in, so it never needs bumping; it lives
here, not in migrations/versions, because the product has no use for the column."""

from pathlib import Path

import sqlalchemy as sa
from alembic import op
from alembic.script import ScriptDirectory

revision = "rolling_upgrade_expand"
down_revision = ScriptDirectory(str(Path(__file__).resolve().parents[3] / "migrations")).get_current_head()
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN takes the table's strongest lock for a moment; queued behind a long transaction it
    # would stop every capture meanwhile: give up after a few seconds instead (and run it again).
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("leads", sa.Column("upgrade_marker", sa.Text(), nullable=True))
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction: Alembic's autocommit block.
    with op.get_context().autocommit_block():
        op.create_index("ix_leads_upgrade_marker", "leads", ["upgrade_marker"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_leads_upgrade_marker", "leads", postgresql_concurrently=True)
    op.drop_column("leads", "upgrade_marker")
