"""The two-year reports read their rows from covering indexes alone (PostgreSQL's plan): a table page
per lead or per message is what made speed to lead, follow-up and follow-up response slow over a
clinic's whole history (docs/performance-history.md, "Reports over two years")."""

import random
from datetime import timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import rollups
from app.domains.leads.models import Lead, LeadSource
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.requirements import need_postgres

LEADS = 3000  # enough rows over two years for the planner to weigh the indexes as on a real clinic


def _two_years_of_leads(db, tenant) -> None:
    """LEADS leads over two years (owners, sources, firsts), an automated email to each and a call
    task for each: the
    rows as `bench analytics` loads them, around the write paths (only their plans are looked at)."""
    now, rng = clock.now(), random.Random(7)
    owners = [user.id for user in tenant.users.values()]
    with db.engine.begin() as conn:
        sources = list(conn.scalars(sa.select(LeadSource.id).where(LeadSource.clinic_id == tenant.id)))
        rows = []
        for _ in range(LEADS):
            created = now - timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
            attempt = created + timedelta(minutes=rng.randrange(90))
            rows.append(
                {
                    "clinic_id": tenant.id, "status": "ACTIVE", "pipeline_stage": "new_lead",
                    "stage_entered_at": created, "first_name": "F", "last_name": "L",
                    "preferred_contact": "PHONE", "patient_relationship": "SELF",
                    "source_id": rng.choice(sources), "treatment_interest": [],
                    "assigned_to_id": rng.choice(owners), "created_at": created, "updated_at": created,
                    "first_task_at": created, "first_attempt_at": attempt,
                    "first_outbound_contact_at": attempt,
                    "created_by": "test", "updated_by": "test",
                }
            )  # fmt: skip
        conn.execute(sa.insert(Lead), rows)
        leads = conn.execute(
            sa.select(Lead.id, Lead.created_at, Lead.assigned_to_id).where(Lead.clinic_id == tenant.id)
        ).all()
        conn.execute(
            sa.insert(LeadActivity),
            [
                {
                    "clinic_id": tenant.id, "lead_id": lead_id, "type": "EMAIL", "direction": "OUTBOUND",
                    "occurred_at": created, "created_at": created, "actor": "system",
                }
                for lead_id, created, _ in leads
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(LeadTask),
            [
                {
                    "clinic_id": tenant.id, "lead_id": lead_id, "title": "Initial contact", "type": "CALL",
                    "priority": "HIGH", "assigned_to_id": owner, "status": "COMPLETED",
                    "due_at": created + timedelta(minutes=5),
                    "completed_at": created + timedelta(minutes=9), "outcome": "done",
                    "origin": {"kind": "speed_to_lead"}, "revision": 1,
                    "created_at": created, "updated_at": created,
                }
                for lead_id, created, owner in leads
            ],
        )  # fmt: skip
        rollups.stamp_spans(conn)  # the spans the write paths would have kept from those firsts


def _reply_to_half(db, tenant) -> None:
    """Half the automated emails replied, from a minute to three days after (seconds kept, as the
    rollups keep them)."""
    rng = random.Random(11)
    with db.engine.begin() as conn:
        messages = conn.execute(
            sa.select(LeadActivity.id, LeadActivity.occurred_at).where(LeadActivity.clinic_id == tenant.id)
        ).all()
        for message_id, sent in messages[::2]:
            seconds = rng.uniform(60, 3 * 86400)
            answered = {"replied_at": sent + timedelta(seconds=seconds), "reply_seconds": seconds}
            conn.execute(
                sa.update(LeadActivity)
                .where(LeadActivity.id == message_id)
                .values(replied=True, message_channel="email", **answered)
            )


def _plans_of(app, client, tenant, report: str, marker: str, seeded: bool = False) -> list[str]:
    """PostgreSQL's plans for the report's SELECTs containing `marker`, over two years (the rows
    loaded after the request unless `seeded` before it: then the report's statements are those it
    makes for the rows)."""
    engine = app.extensions["followup.db"].engine
    need_postgres(str(engine.url), "an index-only scan is PostgreSQL's plan")
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if marker in statement and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    now = clock.now()
    two_years = {"from": (now - timedelta(days=731)).isoformat(), "to": now.isoformat()}
    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        resp = client.get(f"/api/leads/analytics/{report}", query_string=two_years, headers=tenant.headers())
        assert resp.status_code == 200, resp.get_json()
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    assert statements
    if not seeded:
        _two_years_of_leads(app.extensions["followup.db"], tenant)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(
            "VACUUM ANALYZE leads, lead_activities, lead_tasks"
        )  # as a clinic's tables are kept
        conn.exec_driver_sql("SET enable_seqscan = off")  # what the indexes can answer, whatever the size
        conn.exec_driver_sql("SET random_page_cost = 1.1")  # as the reports run (db.plan_for_reports)
        return [
            "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            for statement, parameters in statements
        ]


def test_speed_to_lead_split_reads_each_group_in_order_from_its_covering_index_alone(app, client, tenant):
    """The split's medians by coordinator and by source: each grouping reads the range's leads already
    in its group's order from an index covering the firsts, not the leads' rows through another index
    (a page per lead), nor the whole cohort sorted by group (migration 0066)."""
    indexes = ("ix_leads_analytics_owner_created", "ix_leads_clinic_source_created")
    plans = _plans_of(app, client, tenant, "speed-to-lead", "GROUP BY leads.")
    read = [index for plan in plans for index in indexes if f"Index Only Scan using {index}" in plan]
    assert sorted(read) == sorted(indexes), plans  # each grouping from its own index
    for plan in plans:
        assert "Index Scan using" not in plan, plan
        assert "Sort" not in plan, plan


def test_follow_up_counts_the_tasks_due_from_their_index_alone(app, client, tenant):
    """Tasks due in the range by status, on time and by outcome: from the tasks' due index."""
    for plan in _plans_of(app, client, tenant, "follow-up", "lead_tasks.outcome"):
        assert "Index Only Scan using ix_lead_tasks_clinic_due" in plan, plan


def test_follow_up_response_reads_each_groups_median_from_its_index_in_reply_order(app, client, tenant):
    """Each group's median: read from the group's index of replied messages (migration 0071) in
    reply-time order, from the bucket the counts point to: index-only, no sort, no join to find
    them; the counts come from the message months and the messages' index, never a group index."""
    db = app.extensions["followup.db"]
    need_postgres(str(db.engine.url), "an index-only scan is PostgreSQL's plan")
    _two_years_of_leads(db, tenant)
    _reply_to_half(db, tenant)
    walks = _plans_of(app, client, tenant, "follow-up-response", "OFFSET", True)
    indexes = ("ix_lead_activities_replied_by_channel", "ix_lead_activities_replied_by_sequence_id")
    read = [index for plan in walks for index in indexes if f"Index Only Scan using {index}" in plan]
    assert sorted(read) == sorted(indexes), walks  # the channel's median, and the no-sequence group's
    for plan in walks:
        assert "Sort" not in plan and "Index Scan using" not in plan, plan
        assert "Join" not in plan and "Nested Loop" not in plan, plan


def test_speed_to_leads_median_and_p90_read_the_contacted_leads_in_order_of_their_speed(app, client, tenant):
    """Over two years the percentiles of speed to lead read the contacted leads from the partial
    index holding them in order of their kept speed (migration 0068): index-only, no `Sort` node, and
    the percentiles' own sort finds its input sorted; the uncontacted leads are not read."""
    plans = _plans_of(app, client, tenant, "speed-to-lead", "percentile_disc")
    assert len(plans) == 1, plans
    assert "Index Only Scan using ix_leads_speed_to_lead" in plans[0], plans
    assert "Sort" not in plans[0] and "Index Scan using" not in plans[0], plans
