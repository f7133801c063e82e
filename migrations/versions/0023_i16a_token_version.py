"""users.token_version: carried by every token, raised when the password, role or status changes

Revision ID: 0023_i16a_token_version
Revises: 0022_i19_intelligence
Create Date: 2026-11-23 07:05:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0023_i16a_token_version"
down_revision = "0022_i19_intelligence"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("token_version")
