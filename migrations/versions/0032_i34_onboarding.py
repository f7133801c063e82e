"""onboarding: one-time password-setup tokens (stored hashed), refresh tokens tracked per family
(rotated on every use; a reused one revokes its family), and users without a password yet

Revision ID: 0032_i34_onboarding
Revises: 0031_i20_partitioned_ledger
Create Date: 2026-11-25 13:50:00
"""

from alembic import op
import sqlalchemy as sa

revision = "0032_i34_onboarding"
down_revision = "0031_i20_partitioned_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "password_setup_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_password_setup_tokens_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_password_setup_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_setup_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_setup_tokens_token_hash")),
    )
    op.create_index(op.f("ix_password_setup_tokens_clinic_id"), "password_setup_tokens", ["clinic_id"])
    op.create_index(op.f("ix_password_setup_tokens_user_id"), "password_setup_tokens", ["user_id"])
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=32), nullable=False),
        sa.Column("family_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinics.id"], name=op.f("fk_refresh_tokens_clinic_id_clinics")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_refresh_tokens_user_id_users")),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_refresh_tokens")),
    )
    op.create_index(op.f("ix_refresh_tokens_family_id"), "refresh_tokens", ["family_id"])
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"])
    with op.batch_alter_table("users") as batch:
        batch.alter_column("password_hash", existing_type=sa.String(length=255), nullable=True)


def downgrade() -> None:
    # A user still waiting for their setup link gets a hash no password matches (argon2 refuses it).
    op.execute("UPDATE users SET password_hash = '!' WHERE password_hash IS NULL")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("password_hash", existing_type=sa.String(length=255), nullable=False)
    op.drop_index(op.f("ix_refresh_tokens_user_id"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_family_id"), table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index(op.f("ix_password_setup_tokens_user_id"), table_name="password_setup_tokens")
    op.drop_index(op.f("ix_password_setup_tokens_clinic_id"), table_name="password_setup_tokens")
    op.drop_table("password_setup_tokens")
