"""Automation use cases: a clinic's rules (CRUD, versions, test, simulate), event processing, the why-trail.

Processing: the events outbox hands each committed event to `process_event` once (the
`events.process` ledger job). The clinic's active rules for the event's type are evaluated in
priority order; a matching rule's actions become `AutomationStep` rows, run at once when due
(in the same transaction that marks the event processed) or put on the ledger for their time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.activities import rules as activity_rules
from app.activities.models import LeadActivity
from app.audit import service as audit
from app.auth.models import Clinic, User
from app.auth.roles import Actor
from app.automation import rule_validation, rules, steps
from app.automation.actions import calendar_of, local_time_text, within_business_hours
from app.automation.defaults import DEFAULT_RULES
from app.automation.models import (
    AutomationRule,
    AutomationRuleVersion,
    AutomationStep,
    SequenceEnrollment,
    StepStatus,
)
from app.db import after_commit, loaded
from app.errors import NotFound, ValidationFailed
from app.events.models import DomainEvent
from app.intelligence import contact_times
from app.intelligence import service as intelligence_service
from app.leads.models import Lead, LeadSource
from app.messaging import service as message_templates
from app.pipeline.models import PipelineStage
from app.scheduling import service as scheduling

RULE_FIELDS = (
    "name",
    "description",
    "trigger",
    "conditions",
    "actions",
    "priority",
    "stop_processing",
    "active",
)
SYSTEM_ACTOR = "system"

# --- default rules --------------------------------------------------------------------------------

_SEEDED: set[int] = set()  # clinics whose defaults this process has already made sure of


def seed_default_rules(*, session: Session, clinic: Clinic, now: datetime) -> None:
    _add_missing_defaults(session, clinic.id, now)


def ensure_default_rules(*, session: Session, clinic_id: int, now: datetime) -> None:
    """Give a clinic made before the rules existed its defaults (checked once per process)."""
    if clinic_id not in _SEEDED:
        _add_missing_defaults(session, clinic_id, now)


def _add_missing_defaults(session: Session, clinic_id: int, now: datetime) -> None:
    """Add the default rules a clinic lacks (once per default: a deleted one stays deleted)."""
    have = set(
        session.scalars(
            sa.select(AutomationRule.default_key).where(
                AutomationRule.clinic_id == clinic_id, AutomationRule.default_key.is_not(None)
            )
        )
    )
    for definition in DEFAULT_RULES:
        if definition["default_key"] not in have:
            _insert_rule(session, clinic_id, definition, SYSTEM_ACTOR, now)
    session.flush()
    # Remembered only once committed: a rolled-back seeding must be redone by the next caller.
    after_commit(session, lambda: _SEEDED.add(clinic_id))


# --- rules: CRUD and versions ---------------------------------------------------------------------


def _definition(rule: AutomationRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


def _insert_rule(
    session: Session, clinic_id: int, data: dict, actor_ref: str, now: datetime
) -> AutomationRule:
    rule = AutomationRule(
        clinic_id=clinic_id,
        name=data["name"],
        description=data.get("description"),
        trigger=data["trigger"],
        conditions=data.get("conditions") or [],
        actions=data["actions"],
        priority=data.get("priority", 100),
        stop_processing=data.get("stop_processing", False),
        active=data.get("active", True),
        default_key=data.get("default_key"),
        version=1,
        created_at=now,
        updated_at=now,
        created_by=actor_ref,
        updated_by=actor_ref,
    )
    session.add(rule)
    session.flush()
    _save_version(session, rule, actor_ref, now)
    return rule


def _save_version(session: Session, rule: AutomationRule, actor_ref: str, now: datetime) -> None:
    session.info.pop("automation.rule_stamps", None)  # this transaction changed the rule set
    session.add(
        AutomationRuleVersion(
            rule_id=rule.id,
            version=rule.version,
            definition=_definition(rule),
            created_at=now,
            created_by=actor_ref,
        )
    )


def validate_rule(data: dict) -> None:
    """422 naming the first wrong part: an unknown trigger, field, operator or action type."""
    errors: dict = {}
    if "trigger" in data and data["trigger"] not in rules.TRIGGERS:
        errors["trigger"] = [f"unknown trigger {data['trigger']!r}; known: {', '.join(rules.TRIGGERS)}"]
    if "conditions" in data and (problems := rule_validation.validate_conditions(data["conditions"])):
        errors["conditions"] = problems
    if "actions" in data and (problems := rule_validation.validate_actions(data["actions"])):
        errors["actions"] = problems
    if errors:
        raise ValidationFailed(errors)


def list_rules(
    *, session: Session, clinic_id: int, now: datetime, active_only: bool = False
) -> list[AutomationRule]:
    ensure_default_rules(session=session, clinic_id=clinic_id, now=now)
    stmt = sa.select(AutomationRule).where(
        AutomationRule.clinic_id == clinic_id, AutomationRule.deleted_at.is_(None)
    )
    if active_only:
        stmt = stmt.where(AutomationRule.active.is_(True))
    return list(session.scalars(stmt.order_by(AutomationRule.priority, AutomationRule.id)))


def get_rule(*, session: Session, clinic_id: int, rule_id: int, for_update: bool = False) -> AutomationRule:
    stmt = sa.select(AutomationRule).where(
        AutomationRule.id == rule_id,
        AutomationRule.clinic_id == clinic_id,
        AutomationRule.deleted_at.is_(None),
    )
    rule = session.scalar(stmt.with_for_update() if for_update else stmt)
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def _check_message_templates(session: Session, clinic_id: int, actions: list[dict]) -> None:
    """422 naming the action whose message template is missing or of the other channel."""
    for index, action in enumerate(actions):
        if action.get("type") in rules.MESSAGE_ACTIONS and "template_id" in action:
            channel = "email" if action["type"] == "send_email" else "sms"
            try:
                message_templates.template_for(
                    session=session, clinic_id=clinic_id, template_id=action["template_id"], channel=channel
                )
            except ValidationFailed as wrong:
                raise ValidationFailed({"actions": {str(index): wrong.errors["json"]}}) from None


def create_rule(*, session: Session, actor: Actor, data: dict, now: datetime) -> AutomationRule:
    validate_rule(data)
    _check_message_templates(session, actor.clinic_id, data.get("actions") or [])
    rule = _insert_rule(session, actor.clinic_id, data, actor.ref, now)
    _audit(session, actor, "automation_rule.created", rule, None, _definition(rule), now)
    return rule


def update_rule(
    *, session: Session, actor: Actor, rule_id: int, changes: dict, now: datetime
) -> AutomationRule:
    """Edit a rule: a new version. Steps the old version scheduled keep running as that version."""
    validate_rule(changes)
    _check_message_templates(session, actor.clinic_id, changes.get("actions") or [])
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id, for_update=True)
    before = _definition(rule)
    for name, value in changes.items():
        setattr(rule, name, value)
    if _definition(rule) == before:
        return rule  # nothing changed: no new version
    rule.version += 1
    rule.updated_at, rule.updated_by = now, actor.ref
    _save_version(session, rule, actor.ref, now)
    _audit(session, actor, "automation_rule.updated", rule, *audit.changes(before, _definition(rule)), now)
    return rule


def delete_rule(*, session: Session, actor: Actor, rule_id: int, now: datetime) -> None:
    """Soft delete: the rule stops firing and its pending steps are cancelled; its history stays."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id, for_update=True)
    rule.deleted_at, rule.active, rule.updated_at, rule.updated_by = now, False, now, actor.ref
    pending = session.scalars(
        sa.select(AutomationStep).where(
            AutomationStep.rule_id == rule.id, AutomationStep.status == StepStatus.SCHEDULED
        )
    )
    for step in pending:
        steps.finish(step, StepStatus.CANCELLED, now, reason=f"rule {rule.id} was deleted")
        if step.job_id is not None:
            scheduling.cancel_job(session=session, job_id=step.job_id, now=now)
    _audit(session, actor, "automation_rule.deleted", rule, _definition(rule), None, now)


def rule_versions(*, session: Session, clinic_id: int, rule_id: int) -> list[AutomationRuleVersion]:
    get_rule(session=session, clinic_id=clinic_id, rule_id=rule_id)
    stmt = sa.select(AutomationRuleVersion).where(AutomationRuleVersion.rule_id == rule_id)
    return list(session.scalars(stmt.order_by(AutomationRuleVersion.version.desc())))


def _audit(session, actor: Actor, action: str, rule: AutomationRule, before, after, now) -> None:
    audit.record(
        session=session,
        clinic_id=rule.clinic_id,
        actor=actor.ref,
        action=action,
        subject_type="automation_rule",
        subject_id=rule.id,
        before=before,
        after=after,
        at=now,
    )


# --- the context a rule sees ----------------------------------------------------------------------

_ATTEMPTS_LOOKBACK = 50


def failed_attempts_in_a_row(session: Session, lead_id: int, as_of: datetime | None = None) -> int:
    """Attempts (calls that failed, outbound emails and texts, staff's or automation's) since the
    lead's last contact (activities/rules.py defines both)."""
    stmt = sa.select(
        LeadActivity.type, LeadActivity.direction, LeadActivity.outcome, LeadActivity.details
    ).where(
        LeadActivity.lead_id == lead_id,
        sa.or_(activity_rules.contact_clause(), activity_rules.attempt_clause()),
    )
    if as_of is not None:
        stmt = stmt.where(LeadActivity.occurred_at <= as_of)
    recent = session.execute(
        stmt.order_by(LeadActivity.occurred_at.desc(), LeadActivity.id.desc()).limit(_ATTEMPTS_LOOKBACK)
    )
    return activity_rules.attempts_in_a_row(recent)


def _changed_fields(event_type: str, payload: dict) -> set[str]:
    if event_type == "lead.created":
        return {f"lead.{name}" for name in rules.LEAD_FIELDS}
    if event_type == "lead.stage_changed":
        return {"lead.pipeline_stage", "lead.status", "event.new_stage"}
    if event_type in ("lead.converted", "lead.lost"):
        return {"lead.pipeline_stage", "lead.status"}
    if event_type == "lead.assigned":
        return {"lead.assigned_to_id"}
    if event_type == "lead.updated":
        return {f"lead.{name}" for name in payload.get("changed") or []}
    if event_type == "lead.score_changed":
        return {"lead.score", "event.score"}
    return set()


def build_context(
    *,
    session: Session,
    lead: Lead,
    event_type: str,
    payload: dict,
    at: datetime,
    overrides: dict | None = None,
) -> rules.Context:
    """What conditions read: the lead's fields, the event's, and computed ones (resolved on demand)."""
    values = {f"lead.{name}": getattr(lead, name, None) for name in rules.LEAD_FIELDS if hasattr(lead, name)}
    values.update({f"event.{name}": value for name, value in payload.items()})
    values["event.type"] = event_type
    if "type" in payload:
        values["event.activity_type"] = payload["type"]
    values.update(overrides or {})
    computed = {
        "lead.source_category": lambda: session.scalar(
            sa.select(LeadSource.category).where(LeadSource.id == lead.source_id)
        ),
        "failed_attempts_in_a_row": lambda: failed_attempts_in_a_row(session, lead.id, at),
        # An inbound email or SMS's sentiment (labelled on first read, whichever consumer runs first).
        "reply_sentiment": lambda: intelligence_service.reply_sentiment(
            session=session, activity_id=payload.get("activity_id"), now=at
        ),
        "days_in_stage": lambda: (at - lead.stage_entered_at).days if lead.stage_entered_at else None,
        "hours_since_created": lambda: (
            (at - lead.created_at).total_seconds() / 3600 if lead.created_at else None
        ),
        # The stage the event entered, not the lead's stage now (it may have moved on since).
        "stage_task_template_id": lambda: session.scalar(
            sa.select(PipelineStage.task_template_id).where(
                PipelineStage.clinic_id == lead.clinic_id,
                PipelineStage.slug == (payload.get("new_stage") or lead.pipeline_stage),
            )
        ),
    }
    return rules.Context(values, computed, changed=_changed_fields(event_type, payload))


# --- processing events ----------------------------------------------------------------------------


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


# (clinic, trigger) -> (stamp, rules). The stamp changes with any create, edit, (de)activation or
# delete in the clinic (count of live rules, sum of versions, last update), so a cached list is
# never served after a change: one cheap aggregate per event instead of loading every rule.
_RULE_CACHE: dict[tuple[int, str], tuple[tuple, list[ActiveRule]]] = {}


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


def _hold_clinic_and_stamp(session: Session, clinic: Clinic, stamp: tuple) -> tuple:
    # Held for the transaction (the identity map is weak): the actions read the clinic again.
    session.info.setdefault("automation.clinics", {})[clinic.id] = clinic
    session.info.setdefault("automation.rule_stamps", {})[clinic.id] = stamp
    return stamp


def _rules_stamp(session: Session, clinic_id: int) -> tuple:
    row = session.execute(_CLINIC_AND_STAMP, {"clinic_id": clinic_id}).one()
    return _hold_clinic_and_stamp(session, row[0], tuple(row[1:]))


def active_rules(*, session: Session, clinic_id: int, trigger: str) -> list[ActiveRule]:
    """The clinic's active rules for a trigger, in evaluation order.

    The stamp is read once per transaction: the events of one processing job share it.
    """
    stamps = session.info.setdefault("automation.rule_stamps", {})
    stamp = stamps.get(clinic_id)
    if stamp is None:
        stamp = stamps[clinic_id] = _rules_stamp(session, clinic_id)
    cached = _RULE_CACHE.get((clinic_id, trigger))
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
    _RULE_CACHE[(clinic_id, trigger)] = (stamp, compiled)
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


def _lead_of(session: Session, event: DomainEvent) -> Lead | None:
    lead_id = _lead_id(event)
    if not lead_id:
        return None
    # Held for the transaction: the session's identity map is weak, and the events of one
    # transaction (created, assigned, logged) are mostly about the same lead.
    held = session.info.setdefault("automation.leads", {})
    if lead_id not in held:
        held[lead_id] = _load_lead(session, lead_id)
    return held[lead_id]


def _load_lead(session: Session, lead_id: int) -> Lead | None:
    """The lead; with its clinic and the rule-set stamp the first time in a transaction."""
    if session.info.get("automation.rule_stamps"):
        return session.get(Lead, lead_id)  # the stamp is read; a lead in the identity map costs nothing
    row = session.connection().execute(_LEAD_CLINIC_AND_STAMP, {"lead_id": lead_id}).first()
    if row is None:
        return None
    _hold_clinic_and_stamp(session, loaded(session, Clinic, row), tuple(row[_STAMP_AT:]))
    return loaded(session, Lead, row)


def process_event(*, session: Session, event: DomainEvent, now: datetime) -> int:
    """Evaluate the clinic's active rules for this event, in priority order; returns how many matched."""
    if (event.payload or {}).get("automation") is False:
        return 0  # a historical import (POST /api/leads/import?automation=false): no rule fires
    lead = _lead_of(session, event)
    if lead is None or lead.deleted_at is not None:
        return 0
    ensure_default_rules(session=session, clinic_id=event.clinic_id, now=now)
    matches = matching_rules(session=session, event=event, lead=lead)
    for rule, evaluation in matches:
        _fire(session, rule, event, lead, evaluation, now)
    return len(matches)


def matching_rules(
    *, session: Session, event: DomainEvent, lead: Lead
) -> list[tuple[AutomationRule, rules.Evaluation]]:
    """The active rules this event fires, in priority order, up to the first that stops processing."""
    context = build_context(
        session=session, lead=lead, event_type=event.type, payload=event.payload or {}, at=event.occurred_at
    )
    matches = []
    for rule in active_rules(session=session, clinic_id=event.clinic_id, trigger=event.type):
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
) -> list[tuple[dict, datetime]]:
    """Each action with the time it takes effect (a task's due time, a message's send time).

    A call task falls inside business hours; a notification after a task may quote its due time.
    """
    calendar = calendar_of(clinic)
    planned, task_due = [], None
    for action in rule.actions:
        at = rules.after_delay(start, rules.delay_of(action), calendar)
        if action["type"] == "create_task" and action.get("task_type", "CALL") == "CALL":
            at = within_business_hours(clinic, at)
            # The clinic may have calls wait for the best-answered hour (app/intelligence).
            at = call_time(at) if call_time is not None else at
        if action["type"] == "create_task" and task_due is None:
            task_due = at
        if action["type"] == "notify" and task_due is not None:
            action = {**action, "merge": {"task_due_at": local_time_text(clinic, task_due)}}
        planned.append((action, at))
    return planned


def _fire(session: Session, rule: ActiveRule, event: DomainEvent, lead: Lead, evaluation, now) -> None:
    clinic = session.get(Clinic, lead.clinic_id)
    origin = {
        "rule_id": rule.id,
        "rule_version": rule.version,
        "event_id": event.id,
        "event_type": event.type,
    }
    planned = plan_actions(
        clinic=clinic,
        rule=rule,
        start=event.occurred_at,
        call_time=lambda earliest: contact_times.best_call_time(
            session=session, clinic=clinic, lead=lead, earliest=earliest
        ),
    )
    reserved = steps.reserve_ids(session=session, count=len(planned))
    for index, (action, at) in enumerate(planned):
        scope = f"lead:{lead.id}" if action.get("once_per_lead") else f"event:{event.id}"
        if action.get("deferred"):  # re-checked against the lead as it was at the event
            action = {**action, "event_at": event.occurred_at.isoformat()}
        step = steps.record(
            session=session,
            lead=lead,
            action=action,
            # A task exists from now on (due later); other actions happen at their time.
            run_at=at,
            dedupe_key=f"rule:{rule.id}:{scope}:action:{index}",
            now=now,
            origin=origin,
            conditions=evaluation.conditions,
            unique_by_construction=not action.get("once_per_lead"),
            reserved_id=reserved[index] if reserved else None,
        )
        if step is None:
            continue  # already done for this lead (once_per_lead) or this event (a retried job)
        # A task exists from now on (due later), unless deferred: then the step makes it at its time.
        at_once = action["type"] == "create_task" and not action.get("deferred")
        steps.run_new(session=session, step=step, lead=lead, now=now, at_once=at_once)


# --- test and simulate (no side effects) ---------------------------------------------------------


def try_rule(*, session: Session, actor: Actor, rule_id: int, sample: dict, now: datetime) -> dict:
    """Evaluate a rule against a sample lead and event: every condition with the value it saw, and
    the actions with their computed times. Reads only."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id)
    clinic = session.get(Clinic, actor.clinic_id)
    lead = _sample_lead(session, actor.clinic_id, sample)
    at = sample.get("occurred_at") or now
    event = sample.get("event") or {}
    overrides = {
        **{f"lead.{k}": v for k, v in (sample.get("lead") or {}).items()},
        **(sample.get("computed") or {}),
    }
    context = build_context(
        session=session, lead=lead, event_type=rule.trigger, payload=event, at=at, overrides=overrides
    )
    evaluation = rules.evaluate(rule.conditions, context, exhaustive=True)
    return {
        "rule_id": rule.id,
        "version": rule.version,
        "trigger": rule.trigger,
        "matched": evaluation.matched,
        "conditions": evaluation.conditions,
        "actions": [
            {"index": index, "type": action["type"], "at": when, "action": action}
            for index, (action, when) in enumerate(plan_actions(clinic=clinic, rule=rule, start=at))
        ]
        if evaluation.matched
        else [],
        "stops_processing": evaluation.matched and rule.stop_processing,
    }


def _sample_lead(session: Session, clinic_id: int, sample: dict) -> Lead:
    """The clinic's lead named by lead_id, or a transient lead made of the sample's fields."""
    if sample.get("lead_id") is not None:
        lead = session.get(Lead, sample["lead_id"])
        if lead is None or lead.clinic_id != clinic_id or lead.deleted_at is not None:
            raise NotFound(f"lead {sample['lead_id']} not found")
        return lead
    fields = sample.get("lead") or {}
    known = {name: fields[name] for name in rules.LEAD_FIELDS if name in fields and hasattr(Lead, name)}
    return Lead(id=0, clinic_id=clinic_id, first_name="Sample", last_name="Lead", **known)


def simulate_rule(*, session: Session, actor: Actor, rule_id: int, days: int, now: datetime) -> dict:
    """Replay the rule over the clinic's events of the last `days` days: what it would have made,
    per day and per coordinator. Reads only; computed fields are taken as of each event."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id)
    clinic = session.get(Clinic, actor.clinic_id)
    since = now - timedelta(days=days)
    past = list(
        session.scalars(
            sa.select(DomainEvent)
            .where(
                DomainEvent.clinic_id == actor.clinic_id,
                DomainEvent.type == rule.trigger,
                DomainEvent.occurred_at >= since,
                DomainEvent.occurred_at <= now,
            )
            .order_by(DomainEvent.occurred_at, DomainEvent.id)
        )
    )
    leads = _leads_by_id(session, {_lead_id(e) for e in past} - {None})
    per_day: dict[str, Counter] = defaultdict(Counter)
    per_user: dict[int | None, Counter] = defaultdict(Counter)
    matched = 0
    for event in past:
        lead = leads.get(_lead_id(event))
        if lead is None:
            continue
        context = build_context(
            session=session,
            lead=lead,
            event_type=event.type,
            payload=event.payload or {},
            at=event.occurred_at,
        )
        if not rules.evaluate(rule.conditions, context).matched:
            continue
        matched += 1
        for action, at in plan_actions(clinic=clinic, rule=rule, start=event.occurred_at):
            per_day[at.date().isoformat()][action["type"]] += 1
            per_user[lead.assigned_to_id][action["type"]] += 1
    return {
        "rule_id": rule.id,
        "version": rule.version,
        "days": days,
        "events_considered": len(past),
        "events_matched": matched,
        "totals": dict(sum((c for c in per_day.values()), Counter())),
        "per_day": [{"date": day, "actions": dict(counts)} for day, counts in sorted(per_day.items())],
        "per_coordinator": _per_coordinator(session, per_user),
    }


def _lead_id(event: DomainEvent) -> int | None:
    return event.subject_id if event.subject_type == "lead" else (event.payload or {}).get("lead_id")


def _leads_by_id(session: Session, ids: set[int]) -> dict[int, Lead]:
    if not ids:
        return {}
    return {lead.id: lead for lead in session.scalars(sa.select(Lead).where(Lead.id.in_(ids)))}


def _per_coordinator(session: Session, per_user: dict) -> list[dict]:
    names = dict(
        session.execute(sa.select(User.id, User.name).where(User.id.in_([u for u in per_user if u]))).all()
    )
    return [
        {"user_id": user_id, "name": names.get(user_id), "actions": dict(counts)}
        for user_id, counts in sorted(per_user.items(), key=lambda item: (item[0] is None, item[0] or 0))
    ]


# --- the why-trail --------------------------------------------------------------------------------


def lead_automation(*, session: Session, clinic_id: int, lead_id: int) -> dict:
    """A lead's automated steps, past and pending, with their reasons; what the policy held back."""
    lead = session.get(Lead, lead_id)
    if lead is None or lead.clinic_id != clinic_id or lead.deleted_at is not None:
        raise NotFound(f"lead {lead_id} not found")
    rows = list(
        session.scalars(
            sa.select(AutomationStep)
            .where(AutomationStep.lead_id == lead.id)
            .order_by(AutomationStep.run_at.desc(), AutomationStep.id.desc())
        )
    )
    names = _rule_names(session, {row.rule_id for row in rows} - {None})
    trail = [_step_view(row, names) for row in rows]
    enrollments = session.scalars(
        sa.select(SequenceEnrollment)
        .where(SequenceEnrollment.lead_id == lead.id)
        .order_by(SequenceEnrollment.enrolled_at.desc())
    )
    return {
        "lead_id": lead.id,
        "suggested_action": lead.suggested_action,
        "pending": [s for s in trail if s["status"] == StepStatus.SCHEDULED],
        "past": [s for s in trail if s["status"] != StepStatus.SCHEDULED],
        "held_back": [s for s in trail if s["status"] == StepStatus.SKIPPED or s["result"].get("moved")],
        "enrollments": list(enrollments),
    }


def _rule_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(
        session.execute(
            sa.select(AutomationRule.id, AutomationRule.name).where(AutomationRule.id.in_(ids))
        ).all()
    )


def _step_view(step: AutomationStep, names: dict[int, str]) -> dict:
    return {
        "id": step.id,
        "action_type": step.action_type,
        "status": step.status,
        "run_at": step.run_at,
        "finished_at": step.finished_at,
        "rule": None
        if step.rule_id is None
        else {"id": step.rule_id, "version": step.rule_version, "name": names.get(step.rule_id)},
        "sequence": None
        if step.enrollment_id is None
        else {"enrollment_id": step.enrollment_id, "step": step.sequence_step},
        "event": None if step.event_id is None else {"id": step.event_id, "type": step.event_type},
        "sweep": step.action.get("sweep"),  # a step a beat sweep made (e.g. the orphan sweep)
        "conditions": step.conditions,
        "action": step.action,
        "result": step.result,
        "reason": step.result.get("reason"),
    }
