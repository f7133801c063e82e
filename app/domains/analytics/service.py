"""The analytics reports. Every figure is aggregated in SQL (GROUP BY, percentiles); Python only
shapes the few result rows (one per stage, source or coordinator). Per-lead and per-message facts
that would need a probe per row (first contact, furthest stage, replied) are summary columns kept
by the outbox's consumers (app/domains/analytics/rollups.py), read with the cohort from covering indexes.
The reports lag the writes by the events job.

The cohort of a report is the clinic's leads created in [from, to) (not deleted), narrowed by the
optional coordinator (the lead's current owner) and source. Definitions:
- first contact: the earliest time a person of the clinic reached the lead, a contact or an attempt
  (app/domains/activities/rules.py) neither inbound nor automated (rollups.is_staff_contact);
  "within 5 minutes" means first contact at most 300 s after capture (created_at).
- conversion: the lead's status is CONVERTED.
- funnel: a lead reached a stage if it ever stayed in it or in a later one (stages can be skipped);
  days in stage: the median length of the cohort's completed stays (left_at set) in that stage.
- spend: the source's monthly_cost prorated over the range (days / 30.4375, the mean month).
- open / overdue tasks (coordinators): the coordinator's open tasks now, overdue = due before now.
- follow-up effectiveness: tasks due in the range; on time = completed at or before due_at;
  completed ones counted by their outcome (done, no_answer, rescheduled, not_needed).
  Automated messages: OUTBOUND emails and SMS the system logged (actor "system") in the range; one
  is replied to when the lead has an INBOUND activity within REPLY_WINDOW_HOURS after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import ActivityType, LeadActivity
from app.domains.analytics import bookings as booking_reports
from app.domains.analytics import consultations as consultation_reports
from app.domains.analytics import (
    coordination,
    figures,
    month_changes,
    monthly,
    queries,
    response,
    rollups,
    task_counts,
    trends,
)
from app.domains.analytics.figures import Cohort
from app.domains.analytics.models import MessageMonth
from app.domains.auth.models import User
from app.domains.leads.models import Lead, LeadSource
from app.domains.pipeline.models import LeadStageHistory, PipelineStage
from app.domains.pipeline.rules import LOST
from app.platform.db import UnitOfWork, plan_for_reports, read_report
from app.platform.errors import NotFound, ValidationFailed

MESSAGE_TYPES = (ActivityType.EMAIL, ActivityType.SMS, ActivityType.DIRECT_MESSAGE)
SPEED_TO_LEAD_SECONDS = queries.SPEED_TO_LEAD_SECONDS
REPLY_WINDOW_HOURS = rollups.REPLY_WINDOW_HOURS
SYSTEM_ACTOR = rollups.SYSTEM_ACTOR


# --- reports ---------------------------------------------------------------------------------------


def funnel(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Leads reaching each stage, stage-to-stage conversion, median days in stage."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    stages = session.execute(
        sa.select(PipelineStage.slug, PipelineStage.name, PipelineStage.position)
        .where(PipelineStage.clinic_id == clinic_id, PipelineStage.slug != LOST)
        .order_by(PipelineStage.position)
    ).all()
    positions = {slug: position for slug, _, position in stages}
    at_position: dict[int, int] = {}
    for (slug,), counts in monthly.cohort_counts(session, cohort, ("reached_stage",)).items():
        if slug in positions:  # the furthest non-lost stage (a lead never moved out of "lost" has none)
            at_position[positions[slug]] = at_position.get(positions[slug], 0) + counts["leads"]
    stays = _completed_stays(session, clinic_id, start, end, coordinator_id, source_id)
    medians = {
        stage: (figures.num(med / 86400.0) if med is not None else None, p90)
        for stage, (med, p90) in figures.percentiles(
            session, stays, stays.c.seconds, stays.c.stage, places=6
        ).items()
    }
    rows, previous = [], None
    for slug, name, position in stages:
        reached = sum(count for pos, count in at_position.items() if pos >= position)
        rows.append(
            {
                "stage": slug,
                "name": name,
                "reached": reached,
                "conversion_from_previous": None if previous is None else figures.ratio(reached, previous),
                "median_days_in_stage": medians.get(slug, (None, None))[0],
            }
        )
        previous = reached
    for index, row in enumerate(rows):
        row["conversion_to_next"] = (
            figures.ratio(rows[index + 1]["reached"], row["reached"]) if index + 1 < len(rows) else None
        )
    return {**figures.period(start, end, coordinator_id=coordinator_id, source_id=source_id), "rows": rows}


def _completed_stays(session: UnitOfWork, clinic_id: int, start, end, coordinator_id, source_id):
    """The cohort's completed stays (stage, days), by the lead's capture time kept on each stay."""
    stays = LeadStageHistory
    stmt = sa.select(stays.to_stage.label("stage"), stays.stay_seconds.label("seconds")).where(
        stays.clinic_id == clinic_id,
        stays.lead_created_at >= start,
        stays.lead_created_at < end,
        stays.stay_seconds.is_not(None),
    )
    if coordinator_id is None and source_id is None:  # no join, but deleted leads leave the cohort
        deleted = sa.select(Lead.id).where(Lead.clinic_id == clinic_id, Lead.deleted_at.is_not(None))
        stmt = stmt.where(stays.lead_id.not_in(deleted))
    else:
        cohort = figures.cohort_conditions(clinic_id, start, end, coordinator_id, source_id)
        stmt = stmt.join(Lead, Lead.id == stays.lead_id).where(*cohort)
    return stmt.subquery()


def sources(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Per source: leads, conversions, conversion rate, prorated spend, cost per lead and per acquisition."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    counts = monthly.cohort_counts(session, cohort, ("source_id",))
    stmt = (
        sa.select(LeadSource.id, LeadSource.name, LeadSource.category, LeadSource.monthly_cost)
        .where(LeadSource.clinic_id == clinic_id)
        .order_by(LeadSource.name)
    )
    if source_id is not None:
        stmt = stmt.where(LeadSource.id == source_id)
    rows = []
    for sid, name, category, monthly_cost in session.execute(stmt):
        found = counts.get((sid,), {})
        leads, conversions = found.get("leads", 0), found.get("converted", 0)
        spend = figures.prorated_spend(monthly_cost, start, end)
        rows.append(
            {
                "source_id": sid,
                "name": name,
                "category": category,
                "leads": leads,
                "conversions": conversions,
                "conversion_rate": figures.ratio(conversions, leads),
                "spend": figures.money(spend),
                "cost_per_lead": figures.money(spend / leads) if spend is not None and leads else None,
                "cost_per_acquisition": figures.money(spend / conversions)
                if spend is not None and conversions
                else None,
            }
        )
    return {**figures.period(start, end, coordinator_id=coordinator_id, source_id=source_id), "rows": rows}


def coordinators(*, session: UnitOfWork, cohort: Cohort, now) -> dict:
    """Per coordinator: leads, share contacted within 5 minutes, conversions, open and overdue tasks."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    lead_rows = [
        (user_id, c["leads"], c["within_5_min"], c["converted"])
        for (user_id,), c in monthly.cohort_counts(session, cohort, ("coordinator_id",)).items()
    ]
    task_rows = session.execute(task_counts.open_by_owner(cohort, now)).all()
    stats: dict = {}
    for user_id, leads, within5, conversions in lead_rows:
        stats[user_id] = {"leads": leads, "contacted_within_5_min": within5, "conversions": conversions}
    for user_id, open_tasks, overdue in task_rows:
        stats.setdefault(user_id, {"leads": 0, "contacted_within_5_min": 0, "conversions": 0})
        stats[user_id].update(open_tasks=open_tasks, overdue_tasks=overdue)
    known = [u for u in stats if u]
    names = dict(
        session.execute(
            sa.select(User.id, User.name).where(User.clinic_id == clinic_id, User.id.in_(known))
        ).all()
    )
    rows = []
    for user_id in sorted(stats, key=lambda u: (u is None, u or 0)):
        s = stats[user_id]
        rows.append(
            {
                "coordinator_id": user_id,
                "name": names.get(user_id) if user_id else "unassigned",
                "leads": s["leads"],
                "contacted_within_5_min": s["contacted_within_5_min"],
                "contacted_within_5_min_share": figures.ratio(s["contacted_within_5_min"], s["leads"]),
                "conversions": s["conversions"],
                "conversion_rate": figures.ratio(s["conversions"], s["leads"]),
                "open_tasks": s.get("open_tasks", 0),
                "overdue_tasks": s.get("overdue_tasks", 0),
            }
        )
    return {**figures.period(start, end, coordinator_id=coordinator_id, source_id=source_id), "rows": rows}


def lost_reasons(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """The cohort's lost leads by reason: count and share of all lost."""
    by_reason = monthly.cohort_counts(session, cohort, ("lost_reason",))
    counts = [(reason, c["lost"]) for (reason,), c in by_reason.items() if c["lost"]]
    total_leads = sum(c["leads"] for c in by_reason.values())
    lost = sum(c for _, c in counts)
    rows = [
        {"reason": reason, "leads": count, "share": figures.ratio(count, lost)}
        for reason, count in sorted(counts, key=lambda rc: (-rc[1], rc[0] or ""))
    ]
    return {
        **figures.period(
            cohort.start, cohort.end, coordinator_id=cohort.coordinator_id, source_id=cohort.source_id
        ),
        "total_leads": total_leads,
        "lost": lost,
        "lost_rate": figures.ratio(lost, total_leads),
        "rows": rows,
    }


def speed_to_lead(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Minutes from capture to first outbound contact: median, p90, share within 5 minutes; and the
    split into routing and human time by coordinator and by source."""
    clinic_id, start, end, coordinator_id, source_id = cohort.parts()
    # Begun first: its percentiles read while the split's groupings do.
    figures_of = queries.begin_speed_to_lead_row(
        session, Lead.speed_to_lead_seconds, figures.cohort_conditions(*cohort.parts()), count_leads=False
    )
    split = coordination.speed_split(
        session=session, clinic_id=clinic_id, start=start, end=end,
        coordinator_id=coordinator_id, source_id=source_id,
    )  # fmt: skip
    # The split counts every lead of the cohort by coordinator: their sum is the cohort's size.
    row = _speed_to_lead_row(figures_of(sum(group["leads"] for group in split["by_coordinator"])))
    return {
        **figures.period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        **row,
        "split": split,
        "rows": [row],
    }


def speed_to_lead_by_week(*, session: UnitOfWork, clinic_id: int, weeks: int, now: datetime) -> list[dict]:
    """Speed to lead's figures (not its split) for each of the last `weeks` weeks, oldest first, each
    week ending `now` less a whole number of weeks: the console's weekly chart."""
    plan_for_reports(session)
    rows = []
    for back in range(weeks, 0, -1):
        end = now - timedelta(weeks=back - 1)
        start = end - timedelta(weeks=1)
        cohort = Cohort(clinic_id, start, end, None, None)
        conditions = figures.cohort_conditions(*cohort.parts())
        found = queries.speed_to_lead_row(session, Lead.speed_to_lead_seconds, conditions)
        rows.append({"week": start.date().isoformat(), **_speed_to_lead_row(found)})
    return rows


def _speed_to_lead_row(found: tuple) -> dict:
    """Minutes from capture to first outbound contact over the cohort (kept on each lead:
    `speed_to_lead_seconds`): median, p90, within 5 minutes, from queries.speed_to_lead_row's figures."""
    leads, contacted, within, median, p90 = found
    return {
        "leads": leads,
        "contacted": contacted,
        "not_contacted": leads - contacted,
        "median_minutes": figures.num(median),
        "p90_minutes": figures.num(p90),
        "within_5_min": within,
        "within_5_min_share": figures.ratio(within, leads),
    }


def follow_up(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Tasks due in the range completed on time; replies to automated messages sent in the range."""
    _, start, end, coordinator_id, source_id = cohort.parts()
    task_reads = month_changes.by_months(cohort, task_counts.summed, task_counts.between)
    message_reads = month_changes.by_months(cohort, _message_months, _messages_between)
    found = read_report(session, [*task_reads, *message_reads])
    tasks = _column_sums(found[: len(task_reads)])
    messages, replies = _column_sums(found[len(task_reads) :])
    figures_of = dict(zip(task_counts.COUNTS, tasks, strict=True))
    due, cancelled, on_time = figures_of["due"], figures_of["cancelled"], figures_of["on_time"]
    row = {
        "tasks_due": due,
        "tasks_completed": figures_of["completed"],
        "tasks_completed_on_time": on_time,
        "tasks_cancelled": cancelled,
        "tasks_open": figures_of["still_open"],
        "on_time_rate": figures.ratio(on_time, due - cancelled),
        # Completed tasks by the outcome they were closed with (flat: the CSV has one row).
        **{f"outcome_{outcome}": figures_of[outcome] for outcome in task_counts.OUTCOMES},
        "automated_messages": messages,
        "automated_messages_replied": replies,
        "reply_rate": figures.ratio(replies, messages),
        "reply_window_hours": REPLY_WINDOW_HOURS,
    }
    return {
        **figures.period(start, end, coordinator_id=coordinator_id, source_id=source_id),
        **row,
        "rows": [row],
    }


def _column_sums(rows: list[list]) -> list[int]:
    """Column by column, the sums of one-row results (a sum over no rows is null: 0)."""
    return [sum(value or 0 for value in column) for column in zip(*(found[0] for found in rows), strict=True)]


def _message_months(clinic_id: int, first, stop) -> sa.Select:
    """SQL: one row, (automated messages, those replied) of the clinic's months [first, stop)."""
    table = MessageMonth.__table__
    return sa.select(sa.func.sum(table.c.messages), sa.func.sum(table.c.replied)).where(
        table.c.clinic_id == clinic_id, table.c.month >= first, table.c.month < stop
    )


def _messages_between(cohort: Cohort, start: datetime, end: datetime) -> sa.Select:
    """SQL: (automated messages sent in [start, end), those answered), from the messages' index."""
    message = LeadActivity
    stmt = sa.select(sa.func.count(), sa.func.count(sa.case((message.replied, message.occurred_at)))).where(
        *rollups.automated_sent(cohort.clinic_id, start, end)
    )
    return figures.of_leads(stmt, message.lead_id, owner_id=cohort.coordinator_id, source_id=cohort.source_id)


REPORTS = {
    "funnel": funnel,
    "sources": sources,
    "coordinators": coordinators,
    "lost-reasons": lost_reasons,
    "speed-to-lead": speed_to_lead,
    "follow-up": follow_up,
    **trends.REPORTS,
    **coordination.REPORTS,
    **consultation_reports.REPORTS,
    **booking_reports.REPORTS,
    **response.REPORTS,
}


def report(*, session: UnitOfWork, clinic_id: int, name: str, args: dict, now: datetime) -> dict:
    """One report over the range (default: the 30 days before now), filters checked against the clinic."""
    end = args.get("end") or now
    start = args.get("start") or end - timedelta(days=30)
    if start >= end:
        raise ValidationFailed("from", "must be before to")
    coordinator_id, source_id = args.get("coordinator_id"), args.get("source_id")
    plan_for_reports(session)
    if coordinator_id is not None:
        user = session.get(User, coordinator_id)
        if user is None or user.clinic_id != clinic_id:
            raise NotFound(f"user {coordinator_id} not found")
    if source_id is not None:
        source = session.get(LeadSource, source_id)
        if source is None or source.clinic_id != clinic_id:
            raise NotFound(f"lead source {source_id} not found")
    cohort = Cohort(clinic_id, start, end, coordinator_id, source_id)
    return REPORTS[name](session=session, cohort=cohort, now=now)
