"""The leads' two indexes that speed to lead's split reads (app/domains/analytics/coordination.py):
a range's leads by source and by owner, already in group order, with the firsts it takes medians of
included, so a long range reads no table page and sorts no lead by group (the analytics
queries.medians_by, migration 0066). The source one, older and then without the firsts, also serves
the lead list's filter by source. Part of `Lead.__table_args__`."""

from __future__ import annotations

import sqlalchemy as sa

SPLIT_FIRSTS = ["deleted_at", "assigned_at", "first_task_at", "first_attempt_at", "first_contact_at"]


SPLIT_INDEXES = (
    sa.Index(
        "ix_leads_clinic_source_created",
        "clinic_id",
        "source_id",
        "created_at",
        postgresql_include=SPLIT_FIRSTS,
    ),
    sa.Index(
        "ix_leads_analytics_owner_created",
        "clinic_id",
        "assigned_to_id",
        "created_at",
        postgresql_include=SPLIT_FIRSTS,
    ),
)
