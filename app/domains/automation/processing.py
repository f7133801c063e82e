"""Processing an event against the clinic's rules.

The events outbox hands each committed event to `process_event` once (the `events.process` ledger
job), as its type (`Delivered`); the rules' conditions read its fields by name, from the payload as
stored (`Delivered.payload()`). The clinic's active rules for the event's type are evaluated in
priority order; a matching
rule's actions become `AutomationStep` rows, run at once when due (in the same transaction that
marks the event processed) or put on the ledger for their time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.automation import rules, steps
from app.domains.automation.language.context import build_context
from app.domains.automation.models import AutomationRule, StepStatus
from app.domains.automation.service import ensure_default_rules
from app.domains.business_hours.rules import calendar_of, local_time_text, within_business_hours
from app.domains.intelligence import contact_times
from app.domains.lead_messages import booking_link, policy
from app.domains.leads.models import Lead, LeadSource
from app.platform.db import UnitOfWork, loaded
from app.platform.events.types import Delivered
from app.platform.scheduling.memo import Memo


@dataclass(frozen=True)
class ActiveRule:
    """A rule as the engine runs it: plain data, compiled once and shared across events."""

    id: int
    version: int
    name: str
    priority: int
    stop_processing: bool
    conditions: list
    actions: list
    compiled: tuple


# The rule cache (the engine's, app/bootstrap.py Caches.rules): (clinic, trigger) -> (stamp, rules).
# The stamp changes with any create, edit, (de)activation or delete in the clinic (count of live
# rules, sum of versions, last update), so a cached list is never served after a change: one cheap
# aggregate per event instead of loading every rule.
RuleCache = dict[tuple[int, str], tuple[tuple, list[ActiveRule]]]


@dataclass
class Reads:
    """What processing read once in a transaction and reads again (its part of the transaction's
    Memo, app/platform/scheduling/memo.py): the events of one transaction (created, assigned,
    logged) are mostly about one lead, and a drainer's batch is of a few clinics. Held, not left to
    the identity map, which is weak: `leads` and `clinics` by id (the actions read the clinic
    again), each clinic's rule-set `stamps` (forgotten when seeding changes the set), the lead's
    source's category by source id (read with the lead: the conditions' `lead.source_category`)."""

    leads: dict[int, Lead | None] = field(default_factory=dict)
    clinics: dict[int, Clinic] = field(default_factory=dict)
    stamps: dict[int, tuple] = field(default_factory=dict)
    categories: dict[int, str | None] = field(default_factory=dict)


_LIVE = sa.and_(AutomationRule.active.is_(True), AutomationRule.deleted_at.is_(None))
_OF_CLINIC = AutomationRule.clinic_id == Clinic.id  # correlated to the clinic of the outer query
_STAMP = (
    sa.select(sa.func.count().filter(_LIVE)).where(_OF_CLINIC).scalar_subquery(),
    sa.select(sa.func.sum(AutomationRule.version)).where(_OF_CLINIC).scalar_subquery(),
    sa.select(sa.func.max(AutomationRule.updated_at)).where(_OF_CLINIC).scalar_subquery(),
)
# The clinic comes with the stamp, and with the lead when processing starts from one: processing
# needs all three (the lead's fields, business hours, the rule set), and one round trip costs less
# than three. Built once.
_CLINIC_AND_STAMP = sa.select(Clinic, *_STAMP).where(Clinic.id == sa.bindparam("clinic_id"))
# On the tables, not the entities: two objects made from the row (db.loaded) cost less than the
# ORM's loading of two entities.
_LEADS, _CLINICS = Lead.__table__, Clinic.__table__
_LEAD_CLINIC_AND_STAMP = (
    sa.select(_LEADS, _CLINICS, *_STAMP)
    .join_from(_LEADS, _CLINICS, _CLINICS.c.id == _LEADS.c.clinic_id)
    .where(_LEADS.c.id == sa.bindparam("lead_id"))
)
_STAMP_AT = len(_LEADS.c) + len(_CLINICS.c)
# A lead of a clinic whose stamp this transaction already read (a drained batch's other leads).
_LEAD = sa.select(_LEADS).where(_LEADS.c.id == sa.bindparam("lead_id"))
# Read with the lead, last: every new lead's events ask it (the seeded referral rule), and a
# subquery costs less than a round trip of its own.
_CATEGORY = sa.select(LeadSource.category).where(LeadSource.id == _LEADS.c.source_id).scalar_subquery()
_LEAD_CLINIC_AND_STAMP, _LEAD = _LEAD_CLINIC_AND_STAMP.add_columns(_CATEGORY), _LEAD.add_columns(_CATEGORY)


def _hold_clinic_and_stamp(reads: Reads, clinic: Clinic, stamp: tuple) -> tuple:
    reads.clinics[clinic.id] = clinic
    reads.stamps[clinic.id] = stamp
    return stamp


def _rules_stamp(session: UnitOfWork, reads: Reads, clinic_id: int) -> tuple:
    row = session.execute(_CLINIC_AND_STAMP, {"clinic_id": clinic_id}).one()
    return _hold_clinic_and_stamp(reads, row[0], tuple(row[1:]))


def active_rules(
    *, session: UnitOfWork, clinic_id: int, trigger: str, cache: RuleCache, reads: Reads
) -> list[ActiveRule]:
    """The clinic's active rules for a trigger, in evaluation order.

    The stamp is read once per transaction (`reads`): the events of its processing jobs share it.
    """
    stamp = reads.stamps.get(clinic_id)
    if stamp is None:
        stamp = _rules_stamp(session, reads, clinic_id)
    cached = cache.get((clinic_id, trigger))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    rows = session.scalars(
        sa.select(AutomationRule)
        .where(
            AutomationRule.clinic_id == clinic_id,
            AutomationRule.trigger == trigger,
            AutomationRule.active.is_(True),
            AutomationRule.deleted_at.is_(None),
        )
        .order_by(AutomationRule.priority, AutomationRule.id)
    )
    compiled = [_compile(rule) for rule in rows]
    cache[(clinic_id, trigger)] = (stamp, compiled)
    return compiled


def _compile(rule: AutomationRule) -> ActiveRule:
    return ActiveRule(
        id=rule.id,
        version=rule.version,
        name=rule.name,
        priority=rule.priority,
        stop_processing=rule.stop_processing,
        conditions=list(rule.conditions),
        actions=list(rule.actions),
        compiled=rules.compile_conditions(rule.conditions),
    )


def _lead_of(session: UnitOfWork, reads: Reads, event: Delivered) -> Lead | None:
    lead_id = lead_id_of(event)
    if not lead_id:
        return None
    if lead_id not in reads.leads:
        reads.leads[lead_id] = _load_lead(session, reads, lead_id)
    return reads.leads[lead_id]


def _category_of(reads: Reads, lead: Lead) -> dict:
    """The conditions' `lead.source_category`, read with the lead (build_context's overrides; a
    source changed since in the transaction: none, build_context reads it when a condition asks)."""
    if lead.source_id not in reads.categories:
        return {}
    return {"lead.source_category": reads.categories[lead.source_id]}


def _load_lead(session: UnitOfWork, reads: Reads, lead_id: int) -> Lead | None:
    """The lead; with its clinic and the rule-set stamp the first time in a transaction."""
    if reads.stamps:
        # The stamp is read (active_rules reads another clinic's): the lead alone, as the ORM
        # would load it but without its per-query compile and cache key.
        row = session.connection().execute(_LEAD, {"lead_id": lead_id}).first()
    else:
        row = session.connection().execute(_LEAD_CLINIC_AND_STAMP, {"lead_id": lead_id}).first()
        if row is not None:
            _hold_clinic_and_stamp(reads, loaded(session, Clinic, row), tuple(row[_STAMP_AT:-1]))
    if row is None:
        return None
    reads.categories[row.source_id] = row[-1]
    return loaded(session, Lead, row)


def process_event(
    *,
    session: UnitOfWork,
    event: Delivered,
    now: datetime,
    rule_cache: RuleCache,
    seeded_clinics: set[int],
    memo: Memo,
) -> int:
    """Evaluate the clinic's active rules for this event, in priority order; returns how many matched.
    `rule_cache`, `seeded_clinics`: the engine's caches, bound by app/bootstrap.py; `memo`: the
    transaction's (its part: `Reads`), handed down by the events processing."""
    if not event.automation:
        return 0  # a historical import (POST /api/leads/import?automation=false): no rule fires
    reads = memo.part(Reads)
    lead = _lead_of(session, reads, event)
    if lead is None or lead.deleted_at is not None:
        return 0
    if ensure_default_rules(session=session, clinic_id=event.clinic_id, now=now, seeded=seeded_clinics):
        reads.stamps.pop(event.clinic_id, None)  # the seeding changed the rule set: its stamp is read again
    matches = matching_rules(session=session, event=event, lead=lead, rule_cache=rule_cache, reads=reads)
    for match in matches:
        _fire(session, match, event, lead, now, memo)
    return len(matches)


def matching_rules(
    *, session: UnitOfWork, event: Delivered, lead: Lead, rule_cache: RuleCache, reads: Reads
) -> list[tuple[AutomationRule, rules.Evaluation]]:
    """The active rules this event fires, in priority order, up to the first that stops processing."""
    context = build_context(
        session=session,
        lead=lead,
        event_type=event.type,
        payload=event.payload(),
        at=event.occurred_at,
        overrides=_category_of(reads, lead),
    )
    matches = []
    for rule in active_rules(
        session=session, clinic_id=event.clinic_id, trigger=event.type, cache=rule_cache, reads=reads
    ):
        if rules.matches(rule.compiled, context):
            matches.append((rule, rules.evaluate(rule.conditions, context)))  # the trail, for the match
            if rule.stop_processing:
                break
    return matches


def plan_actions(
    *,
    clinic: Clinic,
    rule: AutomationRule | ActiveRule,
    start: datetime,
    call_time: Callable[[datetime], datetime] | None = None,
    anchor: datetime | None = None,
    asked_at: datetime | None = None,
) -> list[tuple[dict, datetime]]:
    """Each action with the time it takes effect (a task's due time, a message's send time).

    A call task falls inside business hours; a notification after a task may quote its due time.
    `anchor`: the consultation's start the event names, which a delay `before` counts back from
    (the step keeps it as `not_after`: a reminder that cannot go before it is dropped).
    `asked_at`: the time the family asked to be called back (a call's `callback_at`): a call task
    is due then, whatever the delay says.
    """
    calendar = calendar_of(clinic)
    planned, task_due = [], None
    for action in rule.actions:
        delay = rules.delay_of(action)
        if delay.get("before"):  # counted back from the consultation's start (a reminder)
            if anchor is None:
                planned.append((action, start))  # nothing to count back from: _fire skips it
                continue
            at = rules.before_anchor(anchor, delay)
            planned.append(({**action, "not_after": anchor.isoformat()}, at))
            continue
        at = rules.after_delay(start, delay, calendar)
        a_call = action["type"] == "create_task" and action.get("task_type", "CALL") == "CALL"
        if a_call and asked_at is not None:
            at = asked_at
        elif a_call:
            at = within_business_hours(clinic, at)
            # The clinic may have calls wait for the best-answered hour (app/domains/intelligence).
            at = call_time(at) if call_time is not None else at
        if action["type"] == "create_task" and task_due is None:
            task_due = at
        if action["type"] == "notify" and task_due is not None:
            action = {**action, "merge": {"task_due_at": local_time_text(clinic, task_due)}}
        planned.append((action, at))
    return planned


def _fire(session: UnitOfWork, match: tuple, event: Delivered, lead: Lead, now: datetime, memo: Memo) -> None:
    """Plan the matched rule's actions for the lead and record them as steps (run now when due).
    `match`: the rule and its evaluation; `memo`: the transaction's, for the steps run now."""
    rule, evaluation = match
    clinic = session.get(Clinic, lead.clinic_id)
    origin = {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "event_id": event.id,
        "event_type": event.type,
    }
    anchor = consultation_start(event)
    planned = plan_actions(
        clinic=clinic,
        rule=rule,
        start=event.occurred_at,
        call_time=lambda earliest: contact_times.best_call_time(
            session=session, clinic=clinic, lead=lead, earliest=earliest
        ),
        anchor=anchor,
        asked_at=callback_time(event),
    )
    merge = event_merge(clinic, lead, event, anchor)
    consultation_id = getattr(event.data, "consultation_id", None) if anchor is not None else None
    if consultation_id:  # the family's own page to move or cancel it (the confirmation's link)
        # Signed with the engine's secret: its Database's settings, the route for work this deep.
        merge["consultation_link"] = booking_link.change_url(
            session.database.settings, clinic.id, consultation_id, now
        )
    reserved = steps.reserve_ids(session=session, count=len(planned))
    for index, (action, at) in enumerate(planned):
        scope = f"lead:{lead.id}" if action.get("once_per_lead") else f"event:{event.id}"
        if action.get("deferred") or action["type"] == "recurring_follow_up":  # re-checked at its time
            action = {**action, "event_at": event.occurred_at.isoformat()}
        if merge and action["type"] in rules.MESSAGE_ACTIONS:
            action = {**action, "merge": merge}
        step = steps.record(
            session=session,
            lead=lead,
            planned=steps.PlannedStep(
                action=action,
                # A task exists from now on (due later); other actions happen at their time.
                run_at=at,
                dedupe_key=f"rule:{rule.id}:{scope}:action:{index}",
                origin=origin,
                conditions=evaluation.conditions,
            ),
            now=now,
            unique_by_construction=not action.get("once_per_lead"),
            reserved_id=reserved[index] if reserved else None,
        )
        if step is None:
            continue  # already done for this lead (once_per_lead) or this event (a retried job)
        late = _too_late(action, at, anchor, now)
        if late is not None:
            steps.finish(step, StepStatus.SKIPPED, now, reason=late)
            if step not in session:
                session.add(step)
            continue
        # A task exists from now on (due later), unless deferred: then the step makes it at its time.
        at_once = action["type"] == "create_task" and not action.get("deferred")
        steps.run_new(session=session, step=step, lead=lead, now=now, at_once=at_once, memo=memo)


def lead_id_of(event: Delivered) -> int | None:
    """The lead the event is about: its subject, or the lead a task's or a consultation's names."""
    return event.subject_id if event.subject_type == "lead" else getattr(event.data, "lead_id", None)


def consultation_start(event: Delivered) -> datetime | None:
    """The start of the consultation a consultation.* event names (what reminders count back from)."""
    starts_at = getattr(event.data, "starts_at", None) if event.type.startswith("consultation.") else None
    return datetime.fromisoformat(starts_at) if starts_at else None


def callback_time(event: Delivered) -> datetime | None:
    """When the family asked to be called back, if the event is such a call."""
    asked = getattr(event.data, "callback_at", None)
    return datetime.fromisoformat(asked) if asked else None


def event_merge(clinic: Clinic, lead: Lead, event: Delivered, anchor: datetime | None) -> dict:
    """The merge values an event gives its rules' messages: a consultation's time in the family's
    zone; a records expiry reminder's last valid day."""
    merge = {}
    if anchor is not None:
        merge["consultation_time"] = family_time_text(clinic, lead, anchor)
    expires_on = getattr(event.data, "expires_on", None)  # a lead's timer's (records.expiring)
    if expires_on:
        merge["records_expire_on"] = f"{date.fromisoformat(expires_on):%a %d %b %Y}"
    return merge


def family_time_text(clinic: Clinic, lead: Lead, moment: datetime) -> str:
    """A consultation's time as the family reads it, in their timezone: "Fri 27 Nov 15:00"."""
    local = moment.astimezone(ZoneInfo(policy.timezone_for(lead.timezone, clinic.timezone)))
    return f"{local:%a %d %b %H:%M}"


def _too_late(action: dict, at: datetime, anchor: datetime | None, now: datetime) -> str | None:
    """Why a step counted back from a consultation's start is not planned at all, if it is not."""
    if not rules.delay_of(action).get("before"):
        return None
    if anchor is None:
        return "no consultation start to count back from"
    if at < now:
        return "its time had passed when the consultation was booked (the confirmation went instead)"
    return None
