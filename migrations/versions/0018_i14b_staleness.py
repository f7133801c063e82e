"""Staleness kept on the lead (once per stay, once per quiet spell, whatever the ledger's purge);
the orphan sweep's position and counts; the default post-consultation follow-up and pending-decision
check-in become deferred steps in clinics that never edited them.

Revision ID: 0018_i14b_staleness
"""

import sqlalchemy as sa
from alembic import op

from datetime import UTC, datetime

from app.automation.defaults import DEFAULT_RULES
from app.db import JSONType, UTCDateTime

revision = "0018_i14b_staleness"
down_revision = "0017_i18b_lead_import"
branch_labels = None
depends_on = None

OPEN_LEAD_SQL = "status IN ('NEW', 'ACTIVE') AND deleted_at IS NULL"


def _open_where(column: str):
    return sa.text(f"{column} IS NULL AND {OPEN_LEAD_SQL}")


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("stage_stale_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_activity_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("quiet_flagged_at", UTCDateTime(timezone=True), nullable=True))
    # A lead's quiet spell starts at its newest activity by a person or the lead, else its capture.
    op.execute(
        """
        UPDATE leads SET last_activity_at = COALESCE(
            (SELECT MAX(a.occurred_at) FROM lead_activities a
             WHERE a.lead_id = leads.id AND a.actor <> 'system'),
            leads.created_at)
        """
    )
    # Stays already flagged by the old ledger-only sweep stay flagged.
    op.execute(
        """
        UPDATE leads SET stage_stale_at = stage_entered_at
        WHERE EXISTS (SELECT 1 FROM events e
                      WHERE e.type = 'lead.stale' AND e.subject_type = 'lead' AND e.subject_id = leads.id
                        AND e.occurred_at >= leads.stage_entered_at)
        """
    )
    # The sweep now flags the lead itself; the old per-lead flag jobs have nothing left to do.
    op.execute(
        "UPDATE scheduled_jobs SET status = 'cancelled' "
        "WHERE kind = 'lead.flag_stale' AND status IN ('pending', 'dispatched')"
    )
    op.create_index(
        "ix_leads_stage_stale_due",
        "leads",
        ["clinic_id", "pipeline_stage", "stage_entered_at"],
        postgresql_where=_open_where("stage_stale_at"),
        sqlite_where=_open_where("stage_stale_at"),
    )
    op.create_index(
        "ix_leads_quiet_due",
        "leads",
        ["clinic_id", "last_activity_at"],
        postgresql_where=_open_where("quiet_flagged_at"),
        sqlite_where=_open_where("quiet_flagged_at"),
    )


    op.create_table(
        "orphan_sweeps",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("after_lead_id", sa.BigInteger(), nullable=False),
        sa.Column("found_this_pass", sa.Integer(), nullable=False),
        sa.Column("found_last_pass", sa.Integer(), nullable=True),
        sa.Column("last_pass_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("tasks_made", sa.BigInteger(), nullable=False),
    )


    _upgrade_unedited_defaults(("consultation_follow_up", "pending_decision_check_in"))


RULE_FIELDS = ("name", "description", "trigger", "conditions", "actions", "priority")


def _upgrade_unedited_defaults(keys) -> None:
    """A default rule still at its seeded version 1 takes the new definition, as version 2 (a
    clinic's own edits, version 2 and up, are left alone)."""
    rules = sa.table(
        "automation_rules",
        sa.column("id", sa.Integer),
        sa.column("default_key", sa.String),
        sa.column("version", sa.Integer),
        sa.column("stop_processing", sa.Boolean),
        sa.column("active", sa.Boolean),
        sa.column("updated_at", UTCDateTime(timezone=True)),
        sa.column("updated_by", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("trigger", sa.String),
        sa.column("conditions", JSONType),
        sa.column("actions", JSONType),
        sa.column("priority", sa.Integer),
    )
    versions = sa.table(
        "automation_rule_versions",
        sa.column("rule_id", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("definition", JSONType),
        sa.column("created_at", UTCDateTime(timezone=True)),
        sa.column("created_by", sa.String),
    )
    conn, now = op.get_bind(), datetime.now(UTC)
    for definition in (d for d in DEFAULT_RULES if d["default_key"] in keys):
        new = {name: definition[name] for name in RULE_FIELDS}
        stale = conn.execute(
            sa.select(rules.c.id, rules.c.stop_processing, rules.c.active).where(
                rules.c.default_key == definition["default_key"], rules.c.version == 1
            )
        ).all()
        for rule_id, stop_processing, active in stale:
            conn.execute(
                sa.update(rules)
                .where(rules.c.id == rule_id)
                .values(**new, version=2, updated_at=now, updated_by="system")
            )
            conn.execute(
                sa.insert(versions).values(
                    rule_id=rule_id,
                    version=2,
                    definition={**new, "stop_processing": stop_processing, "active": active},
                    created_at=now,
                    created_by="system",
                )
            )


def downgrade() -> None:
    op.drop_table("orphan_sweeps")
    op.drop_index("ix_leads_quiet_due", table_name="leads")
    op.drop_index("ix_leads_stage_stale_due", table_name="leads")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("quiet_flagged_at")
        batch.drop_column("last_activity_at")
        batch.drop_column("stage_stale_at")
