"""The analytics summary columns through the write paths equal what the backfill computes from raw rows."""

import time
from datetime import timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import month_changes, rollups
from app.domains.analytics.models import MessageMonth
from app.domains.leads.models import SPAN_ENDS, Lead
from app.domains.pipeline.models import LeadStageHistory
from app.platform import clock
from tests.analytics.kit import process_outbox
from tests.leadkit import add_user, create_lead
from tests.requirements import need_postgres


def snapshot(db):
    with db.engine.connect() as conn:
        leads = conn.execute(
            sa.select(
                Lead.id,
                Lead.first_outbound_contact_at,
                Lead.first_task_at,
                Lead.first_attempt_at,
                Lead.first_contact_at,
                Lead.furthest_stage,
                *SPAN_COLUMNS,
            ).order_by(Lead.id)
        ).all()
        stays = conn.execute(
            sa.select(
                LeadStageHistory.id, LeadStageHistory.lead_created_at, LeadStageHistory.stay_seconds
            ).order_by(LeadStageHistory.id)
        ).all()
        replied = conn.execute(
            sa.select(LeadActivity.id, LeadActivity.replied, LeadActivity.replied_at).order_by(
                LeadActivity.id
            )
        ).all()
    return leads, stays, replied


SPAN_COLUMNS = [getattr(Lead, span) for span in SPAN_ENDS]


def spans_of(db, lead_id: int) -> dict:
    """The lead's kept spans and the stored ends they are worked out from."""
    columns = [Lead.created_at, *(getattr(Lead, end) for ends in SPAN_ENDS.values() for end in ends)]
    with db.engine.connect() as conn:
        return conn.execute(sa.select(*columns, *SPAN_COLUMNS).where(Lead.id == lead_id)).one()._asdict()


def expected_spans(lead: dict) -> dict:
    """The spans as the reports define them, worked out in Python from the stored ends."""

    def forward(start, end):
        return None if start is None or end is None or end < start else (end - start).total_seconds()

    routed = (
        max(lead["assigned_at"], lead["first_task_at"])
        if lead["assigned_at"] and lead["first_task_at"]
        else None
    )
    outbound = lead["first_outbound_contact_at"]
    return {
        "speed_to_lead_seconds": None
        if outbound is None
        else (outbound - lead["created_at"]).total_seconds(),
        "routing_seconds": forward(lead["created_at"], routed),
        "human_attempt_seconds": forward(lead["first_task_at"], lead["first_attempt_at"]),
        "human_contact_seconds": forward(lead["first_task_at"], lead["first_contact_at"]),
    }


def log(client, tenant, lead_id, type, direction, occurred_at=None):
    body = {"type": type, "direction": direction}
    if (type, direction) == ("PHONE_CALL", "OUTBOUND"):
        body["outcome"] = "spoke"
    if occurred_at:
        body["occurred_at"] = occurred_at.isoformat()
    resp = client.post(f"/api/leads/{lead_id}/activities", json=body, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()


def move(client, tenant, lead_id, stage):
    resp = client.post(f"/api/leads/{lead_id}/stage", json={"stage": stage}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def test_write_paths_keep_the_summaries_the_backfill_would_compute(app, client, db, tenant):
    now = clock.now()
    a, b = create_lead(client, tenant)["id"], create_lead(client, tenant)["id"]
    log(client, tenant, a, "NOTE", None)  # no contact
    log(client, tenant, a, "PHONE_CALL", "INBOUND")  # inbound: no outbound contact
    log(client, tenant, a, "EMAIL", "OUTBOUND", now - timedelta(minutes=1))
    log(client, tenant, a, "PHONE_CALL", "OUTBOUND", now - timedelta(minutes=3))  # earlier, logged later
    log(client, tenant, a, "SMS", "OUTBOUND")  # later: the first stays
    move(client, tenant, a, "contacted")
    move(client, tenant, a, "consultation_completed")  # skips a stage
    move(client, tenant, b, "contacted")
    client.post(f"/api/leads/{b}/lost", json={"reason": "OTHER"}, headers=tenant.headers())
    # An automated message answered later, and one logged after its answer (both ways round).
    with app.app_context(), db.unit_of_work() as session:
        from app.domains.activities import service as activities

        lead = session.get(Lead, b)
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(type="SMS", at=now - timedelta(hours=5), direction="OUTBOUND"),
        )
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(type="SMS", at=now - timedelta(hours=4), direction="INBOUND"),
        )
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(type="EMAIL", at=now - timedelta(hours=6), direction="OUTBOUND"),
        )
        activities.record(
            session=session,
            lead=lead,
            facts=activities.ActivityFacts(type="EMAIL", at=now - timedelta(days=4), direction="OUTBOUND"),
        )
    process_outbox(app, db)
    written = snapshot(db)
    with db.engine.begin() as connection:
        rollups.backfill(connection)
    backfilled = snapshot(db)
    assert (backfilled[0], backfilled[2]) == (written[0], written[2])
    # Stay lengths: SQLite's julianday arithmetic is exact to tens of microseconds only.
    for got, kept in zip(backfilled[1], written[1], strict=True):
        assert got[:2] == kept[:2] and (got[2] is None) == (kept[2] is None)
        assert got[2] is None or abs(got[2] - kept[2]) < 0.01
    leads, stays, replied = written
    by_id = {row.id: row for row in leads}
    assert abs((by_id[a].first_outbound_contact_at - (now - timedelta(minutes=3))).total_seconds()) < 1
    assert (by_id[a].furthest_stage, by_id[b].furthest_stage) == ("consultation_completed", "contacted")
    assert sum(1 for _, r, _ in replied if r) == 2  # the 4-day-old email was outside the 72 h window
    # Both answered messages keep when the family answered: the SMS 4 hours ago, either way round.
    answered = [when for _, r, when in replied if r]
    assert len(answered) == 2 and all(
        abs((w - (now - timedelta(hours=4))).total_seconds()) < 1 for w in answered
    )
    assert all(s.lead_created_at is not None for s in stays)


def test_the_kept_spans_follow_their_ends_through_every_writer(app, client, db, tenant):
    """Speed to lead's spans, kept on the lead: the task writer (first task), the rollups (first
    attempt, contact and outbound contact; an earlier call logged later) and a reassignment after the
    first task each leave the spans the backfill works out from the ends."""
    lead = create_lead(client, tenant, role="clinic_admin")["id"]
    assign(client, tenant, lead, tenant.users["treatment_coordinator"].id)
    task = {"title": "Call", "type": "CALL", "due_at": (clock.now() + timedelta(hours=1)).isoformat()}
    resp = client.post(f"/api/leads/{lead}/tasks", json=task, headers=tenant.headers())
    assert resp.status_code == 201, resp.get_json()
    time.sleep(0.05)  # apart by more than SQLite's milliseconds
    log(client, tenant, lead, "PHONE_CALL", "OUTBOUND")  # now: attempt, contact, outbound contact
    process_outbox(app, db)
    first = spans_of(db, lead)
    assert all(first[span] is not None for span in SPAN_ENDS), first

    time.sleep(0.05)
    assign(client, tenant, lead, add_user(app, tenant))  # after the first task: routing ends later
    earlier = first["first_task_at"] + (first["first_contact_at"] - first["first_task_at"]) / 2
    log(client, tenant, lead, "PHONE_CALL", "OUTBOUND", earlier)  # logged late: every first moves back
    process_outbox(app, db)
    kept = spans_of(db, lead)
    assert kept["routing_seconds"] > first["routing_seconds"]
    for span in ("speed_to_lead_seconds", "human_attempt_seconds", "human_contact_seconds"):
        assert kept[span] < first[span], (span, first, kept)
    for span, value in expected_spans(kept).items():
        # SQLite's julianday() keeps whole milliseconds (each end); PostgreSQL microseconds.
        assert abs(kept[span] - value) < (1e-6 if db.dialect == "postgresql" else 0.01), (span, kept)
    with db.engine.begin() as connection:
        rollups.stamp_spans(connection)
    assert spans_of(db, lead) == kept  # to the last bit: the same SQL


def assign(client, tenant, lead_id: int, user_id: int) -> None:
    resp = client.post(f"/api/leads/{lead_id}/assign", json={"user_id": user_id}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def test_reordering_stages_recomputes_the_furthest_stage(app, client, db, tenant):
    lead = create_lead(client, tenant)["id"]
    move(client, tenant, lead, "consultation_scheduled")  # skips contacted
    stages = client.get("/api/pipeline-stages", headers=tenant.headers()).get_json()
    ids = [s["id"] for s in stages]
    slugs = [s["slug"] for s in stages]
    i, j = slugs.index("new_lead"), slugs.index("consultation_scheduled")
    ids[i], ids[j] = ids[j], ids[i]
    resp = client.put("/api/pipeline-stages/reorder", json={"stage_ids": ids}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    process_outbox(app, db)
    with db.unit_of_work() as session:
        assert session.get(Lead, lead).furthest_stage == "new_lead"  # now the later of its two stays


def test_the_follow_up_report_counts_automated_messages_from_their_partial_index(app, client, tenant):
    """The report counts automated messages of every type rollups counts (Instagram's direct messages
    too); a type the partial index leaves out makes PostgreSQL read every activity of the clinic."""
    engine = app.extensions["followup.db"].engine
    need_postgres(str(engine.url), "a partial index's use is PostgreSQL's plan")
    statements = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if "lead_activities.replied" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", keep)
    try:
        assert client.get("/api/leads/analytics/follow-up", headers=tenant.headers()).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", keep)
    assert statements
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # can the index answer it, whatever the size
        for statement, parameters in statements:
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "ix_lead_activities_automated_messages" in plan, plan


def _message_months(db) -> dict:
    with db.engine.connect() as conn:
        return month_changes.kept(conn, MessageMonth.__table__)


def test_each_automated_message_and_its_reply_count_once_in_their_month(app, client, db, tenant):
    """The message months equal the messages counted by month: a message of an earlier month and its
    reply, a reply recorded before the message it answers, an unanswered one; every activity event
    delivered again (a replay) changes nothing; the follow-up report over whole months says the same."""
    from app.domains.activities import service as activities
    from app.domains.activities.events import ActivityLogged
    from app.platform.events.models import DomainEvent
    from app.platform.events.types import Delivered

    now = clock.now()
    lead_id = create_lead(client, tenant)["id"]
    recorded = [  # in this order: the second reply before the message it answers
        ("SMS", "OUTBOUND", timedelta(days=40)),
        ("SMS", "INBOUND", timedelta(days=40) - timedelta(hours=1)),
        ("SMS", "INBOUND", timedelta(hours=4)),
        ("EMAIL", "OUTBOUND", timedelta(hours=5)),
        ("EMAIL", "OUTBOUND", timedelta(hours=2)),
    ]
    with app.app_context(), db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        for type_, direction, ago in recorded:
            facts = activities.ActivityFacts(type=type_, at=now - ago, direction=direction)
            activities.record(session=session, lead=lead, facts=facts)
    process_outbox(app, db)
    kept = _message_months(db)
    with db.engine.connect() as conn:
        assert kept == rollups.recomputed_message_months(conn)
    assert [sum(counts) for counts in zip(*kept.values(), strict=True)] == [3, 2]

    with app.app_context(), db.unit_of_work() as session:  # a replay of every activity event
        for row in session.scalars(sa.select(DomainEvent).where(DomainEvent.type == ActivityLogged.NAME)):
            replayed = Delivered(
                id=row.id, clinic_id=row.clinic_id, subject_type=row.subject_type, subject_id=row.subject_id,
                occurred_at=row.occurred_at, data=ActivityLogged.from_stored(row.payload),
            )  # fmt: skip
            rollups.on_activity_logged(session=session, event=replayed, now=now)
    assert _message_months(db) == kept
    with db.engine.begin() as connection:
        rollups.backfill(connection)
    assert _message_months(db) == kept

    two_months = {"from": (now - timedelta(days=62)).isoformat(), "to": now.isoformat()}
    report = client.get("/api/leads/analytics/follow-up", query_string=two_months, headers=tenant.headers())
    assert report.status_code == 200, report.get_json()
    found = report.get_json()
    assert (found["automated_messages"], found["automated_messages_replied"]) == (3, 2)

    statements = []

    def keep(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        response = client.get(
            "/api/leads/analytics/follow-up-response", query_string=two_months, headers=tenant.headers()
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    assert response.status_code == 200, response.get_json()
    channels = {row["name"]: row for row in response.get_json()["channels"]}
    assert (channels["sms"]["messages"], channels["sms"]["replied"]) == (1, 1)
    assert (channels["email"]["messages"], channels["email"]["replied"]) == (2, 1)
    assert channels["sms"]["median_hours_to_reply"] == channels["email"]["median_hours_to_reply"] == 1.0
    [no_sequence] = response.get_json()["sequences"]
    assert (no_sequence["name"], no_sequence["messages"], no_sequence["replied"]) == ("no sequence", 3, 2)
    assert any("analytics_message_months" in statement for statement in statements)  # the whole months
