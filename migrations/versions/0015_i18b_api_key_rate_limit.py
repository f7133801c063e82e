"""api_keys: a rate limit of their own (requests per minute), set by the clinic's admin

Revision ID: 0015_i18b_api_key_rate_limit
Revises: 0014_lead_phone_index
Create Date: 2026-11-23 06:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0015_i18b_api_key_rate_limit"
down_revision = "0014_lead_phone_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_keys", sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False, server_default="1000")
    )


def downgrade() -> None:
    op.drop_column("api_keys", "rate_limit_per_minute")
