"""outreach: inbound provider messages (once per message id)

Revision ID: 0009_outreach
Revises: 0008_automation
Create Date: 2026-11-22 09:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import app.platform.db

revision = '0009_outreach'
down_revision = '0008_automation'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('lead_id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('received_at', app.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', app.platform.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['lead_activities.id'], name=op.f('fk_inbound_messages_activity_id_lead_activities')),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_inbound_messages_clinic_id_clinics')),
    sa.ForeignKeyConstraint(['lead_id'], ['leads.id'], name=op.f('fk_inbound_messages_lead_id_leads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('clinic_id', 'channel', 'message_id', name=op.f('uq_inbound_messages_clinic_id_channel_message_id'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_lead_id'), ['lead_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_lead_id'))
    op.drop_table('inbound_messages')
